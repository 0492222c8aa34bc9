"""An MCP server's tools as agentcore ``Tool`` objects (the official ``mcp`` SDK, client side).

``mcp_tools(server)`` connects to a server -- a command started over stdio (``["npx", "-y",
"@modelcontextprotocol/server-filesystem", "/data"]``) or a streamable HTTP URL
(``http://127.0.0.1:8000/mcp``) -- lists its tools and returns one ``Tool`` per MCP tool, with the
server's JSON schema as its parameters. Calls go through the ``ToolRunner`` like any tool: the
arguments are checked against that schema first, the call runs under the tool's timeout, the output
is stored as an artifact and the model sees a bounded payload; the idempotency key travels in the
request's ``_meta`` (``agentcore/idempotency_key``). The run records each call as usual, so a run
that used MCP tools replays offline from its trace with no server.

One ``MCPConnection`` per server keeps one session open, in a daemon thread with an event loop of
its own (so tools work from any loop: ``run_sync`` makes a new one per run). A server that exits
or breaks the connection fails the calls in flight as tool failures (``ToolError``); the next call
connects again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from agentcore.core.text import shown_url
from agentcore.errors import ConfigError, ToolError, ToolTimeout
from agentcore.event_loop import new_event_loop
from agentcore.tools.base import Tool
from agentcore.tools.mcp.schema import MCPArguments, check_arguments, output_of

__all__ = ("IDEMPOTENCY_META_KEY", "MCPConnection", "MCPTool", "mcp_tools")

IDEMPOTENCY_META_KEY = "agentcore/idempotency_key"
"""The ``_meta`` entry of a ``tools/call`` request that carries the call's idempotency key."""

T = TypeVar("T")
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


class MCPConnection:
    """One MCP server and one open session to it, usable from any thread or event loop.

    Args:
        server: A streamable HTTP URL (``http(s)://...``) or a command and its arguments, run as a
            subprocess speaking MCP over stdio (never through a shell).
        env: Extra environment variables for a stdio server.
        cwd: Working directory of a stdio server.
        connect_timeout: Seconds to wait for the server to start and answer ``initialize``.

    Raises:
        ConfigError: ``server`` is neither an http(s) URL nor a non-empty command.
    """

    def __init__(
        self,
        server: str | Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        connect_timeout: float = 60.0,
    ) -> None:
        if isinstance(server, str):
            if not re.match(r"^https?://", server):
                raise ConfigError(
                    f"an MCP server is an http(s) URL or a command as a list of strings, got {server!r} "
                    "(a command line in one string is never run through a shell: split it)"
                )
            self.target: Any = server
        else:
            argv = list(server)
            if not argv or not all(isinstance(a, str) and a for a in argv):
                raise ConfigError(f"an MCP server command must be a non-empty list of strings, got {server!r}")
            from mcp import StdioServerParameters

            self.target = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(env or {}) or None, cwd=cwd)
        # what messages (and so the log) show: a URL without its password or query values (a token)
        self.describe = shown_url(server) if isinstance(server, str) else " ".join(server)
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Future[Any] | None = None
        self._owner: asyncio.Future[None] | None = None
        self._stop: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"MCPConnection({self.describe!r})"

    # -- the session, in its own thread --------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = new_event_loop()
                threading.Thread(target=_serve, args=(loop,), name="agentcore-mcp", daemon=True).start()
                self._loop = loop
            return self._loop

    async def _connected(self) -> Any:
        """The open client, connecting first if there is none (runs in the connection's loop)."""
        ready = self._ready
        if ready is None or (ready.done() and ready.exception() is not None) or (self._owner and self._owner.done()):
            ready = self._ready = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._owner = asyncio.ensure_future(self._hold(ready, self._stop))
        try:
            return await asyncio.wait_for(asyncio.shield(ready), self.connect_timeout)
        except asyncio.TimeoutError:
            self._drop()
            raise ToolError(f"MCP server {self.describe!r} did not answer within {self.connect_timeout:g} s") from None

    async def _hold(self, ready: asyncio.Future[Any], stop: asyncio.Event) -> None:
        """Own the session: enter it, publish it, keep it until ``stop`` or until it breaks."""
        from mcp import Client

        try:
            async with Client(self.target) as client:
                ready.set_result(client)
                await stop.wait()
        except BaseException as e:  # the server exited, or the transport broke
            if not ready.done():
                ready.set_exception(ToolError(f"cannot connect to MCP server {self.describe!r}: {_reason(e)}"))
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise

    async def _guarded(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``op(client)``; a session that ends meanwhile fails it with a ``ToolError``, and the
        next call connects again."""
        client = await self._connected()
        owner = self._owner
        assert owner is not None
        task = asyncio.ensure_future(op(client))
        try:
            done, _ = await asyncio.wait({task, owner}, return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
        except asyncio.CancelledError:  # the runner gave up on the call (its timeout)
            task.cancel()
            raise
        if task not in done:
            task.cancel()
            self._drop()
            raise ToolError(f"MCP server {self.describe!r} exited or closed the connection during the call")
        try:
            return task.result()
        except ToolError:
            raise
        except Exception as e:
            if owner.done() or _connection_lost(e):
                self._drop()
                raise ToolError(f"MCP server {self.describe!r} went away during the call: {_reason(e)}") from None
            if "timed out" in str(e):
                raise ToolTimeout(f"MCP tool call timed out: {_reason(e)}") from None
            raise ToolError(f"MCP call failed: {_reason(e)}") from None

    def _drop(self) -> None:
        """Forget a broken session (its owner task ends it); the next call connects again."""
        self._ready = None
        if self._stop is not None:
            self._stop.set()

    def submit(self, op: Callable[[Any], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Schedule ``op(client)`` in the connection's loop."""
        return asyncio.run_coroutine_threadsafe(self._guarded(op), self._ensure_loop())

    def run(self, op: Callable[[Any], Awaitable[T]], timeout: float | None = None) -> T:
        """``op(client)``, waited for from synchronous code."""
        return self.submit(op).result(timeout)

    async def arun(self, op: Callable[[Any], Awaitable[T]]) -> T:
        """``op(client)``, awaited from any event loop."""
        return await asyncio.wrap_future(self.submit(op))

    def close(self) -> None:
        """End the session (a stdio server is stopped) and the connection's thread."""
        loop = self._loop
        if loop is None:
            return

        async def stop() -> None:
            if self._stop is not None:
                self._stop.set()
            if self._owner is not None:
                await asyncio.wait({self._owner}, timeout=10)

        try:
            asyncio.run_coroutine_threadsafe(stop(), loop).result(15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._loop = None

    def __enter__(self) -> MCPConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- tools ---------------------------------------------------------------------------------

    def tools(self, *, prefix: str = "", timeout: float | None = 30.0, only: Sequence[str] | None = None) -> list[Tool]:
        """One ``Tool`` per tool the server lists (see ``mcp_tools``)."""
        listed = self.run(_list_all, timeout=self.connect_timeout + 30)
        wanted = set(only) if only is not None else None
        if wanted is not None and (missing := wanted - {t.name for t in listed}):
            raise ConfigError(f"MCP server {self.describe!r} has no tool named {sorted(missing)}")
        out = [self._tool(t, prefix, timeout) for t in listed if wanted is None or t.name in wanted]
        names = [t.name for t in out]
        if len(set(names)) != len(names):
            raise ConfigError(f"MCP tool names collide once made safe: {names}; pass only= or prefix=")
        return out

    def _tool(self, listed: Any, prefix: str, timeout: float | None) -> Tool:
        remote = listed.name
        name = (prefix + _BAD_NAME_CHARS.sub("_", remote))[:64]
        schema = dict(listed.input_schema or {"type": "object"})
        schema.setdefault("properties", {})
        connection = self

        async def call(arguments: dict[str, Any], idempotency_key: str | None = None) -> Any:
            meta = {IDEMPOTENCY_META_KEY: idempotency_key} if idempotency_key else None

            async def op(client: Any) -> Any:
                return await client.call_tool(remote, arguments, read_timeout_seconds=timeout, meta=meta)

            return output_of(await connection.arun(op), remote)

        return MCPTool(
            name=name, description=(listed.description or listed.title or remote).strip(), parameters=schema,
            fn=call, args_model=MCPArguments, timeout=timeout, is_async=True, context_params=("idempotency_key",),
            remote_name=remote, connection=self,
        )  # fmt: skip


class MCPTool(Tool):
    """A tool of an MCP server: its arguments are checked against the server's JSON schema."""

    def __init__(self, *, remote_name: str, connection: MCPConnection, **fields: Any) -> None:
        super().__init__(**fields)
        object.__setattr__(self, "remote_name", remote_name)
        object.__setattr__(self, "connection", connection)

    def bind(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """``{"arguments": arguments}`` once they fit the schema.

        Raises:
            pydantic.ValidationError: they do not (the runner turns it into a message for the model).
        """
        return {"arguments": check_arguments(self.name, self.parameters, arguments)}


def mcp_tools(
    server: str | Sequence[str],
    *,
    prefix: str = "",
    only: Sequence[str] | None = None,
    timeout: float | None = 30.0,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> list[Tool]:
    """Connect to an MCP server and return its tools as agentcore tools.

    Args:
        server: A streamable HTTP URL, or a stdio server's command as a list (``["python",
            "server.py"]``; never a shell string).
        prefix: Put before every tool name (``"fs_"``), to keep tools of several servers apart.
            Characters outside ``[A-Za-z0-9_-]`` in a server's tool name become ``_``.
        only: Take just these tools (by the server's names).
        timeout: Seconds per call (``None``: no limit); a call still running then is a timeout.
        env: Extra environment variables of a stdio server.
        cwd: Working directory of a stdio server.

    Returns:
        The tools; they share one ``MCPConnection`` (``tools[0].connection.close()`` ends it; it
        also ends with the process).

    Raises:
        ConfigError: a bad ``server``, a tool named in ``only`` that the server does not have.
        ToolError: the server could not be started or reached, or did not answer.
    """
    connection = MCPConnection(server, env=env, cwd=cwd)
    try:
        return connection.tools(prefix=prefix, timeout=timeout, only=only)
    except BaseException:
        connection.close()
        raise


async def _list_all(client: Any) -> list[Any]:
    tools: list[Any] = []
    cursor = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


def _connection_lost(e: BaseException) -> bool:
    from mcp.types import CONNECTION_CLOSED

    return getattr(e, "code", None) == CONNECTION_CLOSED or type(e).__name__ in (
        "ClosedResourceError", "BrokenResourceError", "EndOfStream",
    )  # fmt: skip


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """The connection's thread: run ``loop`` until ``close`` stops it, then close it (else it is
    reported unclosed when collected)."""
    try:
        loop.run_forever()
    finally:
        loop.close()


def _reason(e: BaseException) -> str:
    group = getattr(e, "exceptions", None)  # an ExceptionGroup from the SDK's task groups
    if isinstance(group, tuple) and group:
        return "; ".join(_reason(x) for x in group)
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
