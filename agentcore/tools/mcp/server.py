"""agentcore tools served over MCP (the official ``mcp`` SDK, server side): ``agentcore mcp-serve``.

``tool_server(tools)`` is an MCP server whose tools are the given agentcore tools, with their own
JSON schemas. Each call runs through a ``ToolRunner`` exactly as in an agent run: arguments checked,
the tool's timeout, the raw output stored as an artifact, a bounded payload returned as the MCP
text result (``isError`` for any failure, with the message the model would see). The built-in
``read_artifact`` tool reads the rest of a clipped output. With a ``CallLog`` each call is recorded
in an agentcore database as a ``ToolStarted``/``ToolFinished`` pair of one run per server session,
so ``agentcore events RUN`` lists what clients asked.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from agentcore.core.clock import Clock, SystemClock
from agentcore.core.events import BaseEvent, RunFinished, RunStarted, ToolCall, ToolStarted, redacted
from agentcore.storage.artifacts import ArtifactStore
from agentcore.storage.base import EventStore, new_run_id
from agentcore.tools.base import Tool, ToolResult
from agentcore.tools.mcp.client import IDEMPOTENCY_META_KEY
from agentcore.tools.runner import ToolRunner

__all__ = ("CallLog", "serve_stdio", "tool_server")

E = TypeVar("E", bound=BaseEvent)


class CallLog:
    """Records every call a server answers as one run of ``store`` (created now).

    Args:
        store: The agentcore database.
        task: The run's task (``"mcp-serve /path/to/repo"``).
        config: What the server serves (names only), recorded in ``RunStarted.config``.
        clock: Gives the events' times (``SystemClock`` by default).
        redact: Applied to every string of every event before it is stored (the environment's
            ``OPENAI_API_KEY`` in a file a client read: ``agentcore.runtime.redaction.redactor``);
            ``None`` stores them as they are.
    """

    def __init__(
        self,
        store: EventStore,
        task: str,
        config: dict[str, Any],
        *,
        clock: Clock | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.store = store
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.redact = redact
        self.run_id = new_run_id()
        first = self._clean(RunStarted(run_id=self.run_id, seq=1, at=self.clock.now(), task=task, config=config))
        store.create_run(task, run_id=self.run_id, created=first.at, events=[first])
        self.seq = 1

    def record(self, call: ToolCall, key: str, started: datetime, result: ToolResult) -> None:
        """Append the call and its result in one batch."""
        start = ToolStarted(run_id=self.run_id, seq=self.seq + 1, at=started, call=call, idempotency_key=key)
        end = result.to_event(run_id=self.run_id, seq=self.seq + 2, at=self.clock.now(), caused_by=start.seq)
        self.store.append(self.run_id, [self._clean(start), self._clean(end)], expected_seq=self.seq)
        self.seq += 2

    def _clean(self, event: E) -> E:
        return redacted(event, self.redact) if self.redact is not None else event

    def close(self) -> None:
        """Finish the run (the server stopped)."""
        done = RunFinished(
            run_id=self.run_id, seq=self.seq + 1, at=self.clock.now(), status="succeeded", reason="server stopped"
        )
        self.store.append(self.run_id, [done], expected_seq=self.seq)
        self.seq += 1


def tool_server(
    tools: Sequence[Tool],
    artifacts: ArtifactStore,
    *,
    name: str = "agentcore",
    instructions: str | None = None,
    log: CallLog | None = None,
    payload_chars: int = 4000,
) -> Any:
    """An MCP server (``mcp.server.lowlevel.Server``) offering ``tools`` and ``read_artifact``.

    Args:
        tools: The agentcore tools to offer.
        artifacts: Where outputs are stored (``read_artifact`` reads them back).
        name: The server's name in the MCP handshake.
        instructions: What the server tells clients about itself.
        log: Records each call (see ``CallLog``); its clock times the calls too.
        payload_chars: Bound of each result's text.
    """
    import mcp.types as types
    from mcp.server.lowlevel import Server

    clock = log.clock if log is not None else SystemClock()
    runner = ToolRunner(tools, artifacts, payload_chars=payload_chars, clock=clock)
    listed = [
        types.Tool(name=s["name"], description=s["description"], input_schema=s["parameters"]) for s in runner.specs()
    ]
    numbers = itertools.count(1)

    async def list_tools(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Any, params: Any) -> Any:
        call = ToolCall(id=f"mcp_{next(numbers)}", name=params.name, arguments=dict(params.arguments or {}))
        meta = dict(getattr(ctx, "meta", None) or {})
        key = meta.get(IDEMPOTENCY_META_KEY)
        started = clock.now()
        result = await runner.run(call, idempotency_key=key if isinstance(key, str) else None)
        if log is not None:
            log.record(call, key if isinstance(key, str) else "", started, result)
        text = types.TextContent(type="text", text=result.payload)  # a clipped one says how to read the rest
        return types.CallToolResult(content=[text], is_error=not result.ok)

    return Server(name, instructions=instructions, on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(server: Any) -> None:
    """Serve ``server`` over this process's stdin and stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
