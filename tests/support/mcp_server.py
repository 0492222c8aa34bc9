"""A real MCP server for the tests, written with the official ``mcp`` SDK (``MCPServer``).

``python -m tests.support.mcp_server [stdio|http PORT]``. Its tools: ``add`` (structured output),
``echo``, ``idempotency_key`` (the key the client put in the request's ``_meta``), ``fail`` (an MCP
error result), ``big`` (100 kB of text), ``slow`` and ``die`` (the process exits mid-call). Each
call is appended to the file named by ``MCP_TEST_LOG`` when that is set.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("agentcore-test-server")


def _log(name: str, **fields: Any) -> None:
    path = os.environ.get("MCP_TEST_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"tool": name, **fields}) + "\n")


@server.tool()
def add(a: int, b: int) -> dict[str, int]:
    """Add two integers."""
    _log("add", a=a, b=b)
    return {"sum": a + b}


@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    _log("echo", text=text)
    return f"echo: {text}"


@server.tool()
def idempotency_key(ctx: Context) -> str:
    """The idempotency key this call carried in its _meta."""
    meta = ctx.request_context.meta or {}
    key = dict(meta).get("agentcore/idempotency_key")
    _log("idempotency_key", key=key)
    return f"key={key}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the reason."""
    raise ToolError(f"refused: {reason}")


@server.tool()
def big() -> str:
    """100 kB of text."""
    return "".join(f"line {i:05d} of the big output\n" for i in range(3500))


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "slept"


@server.tool()
def die() -> str:
    """The server process exits in the middle of this call."""
    _log("die")
    sys.stdout.flush()
    os._exit(3)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
