"""Tools: ``@tool`` turns a typed function into a ``Tool``; ``ToolRunner`` runs tool calls.

A tool's parameters, their types and defaults come from its signature; its description and each
parameter's description come from its Google-style docstring. The runner validates the arguments
the model sent, runs the tool (sync tools in a thread) under a timeout, stores the raw output once as
a content-addressed artifact and returns a ``ToolResult`` whose ``payload`` stays short however big
the output is (see ``agentcore.tool_payloads``). Nothing a tool does crashes the runner: ``ToolError``
is a message for the model, any other exception is recorded as a failure.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any, Literal, overload

from pydantic import BaseModel, Field, ValidationError

from agentcore.artifacts import ArtifactStore
from agentcore.errors import ArtifactNotFound, ConfigError, ToolError, ToolTimeout
from agentcore.events import ArtifactRef, ToolCall, ToolFinished
from agentcore.tool_payloads import (
    IDEMPOTENCY_PARAM,
    WINDOW_SLACK,
    arguments_model,
    bound_text,
    clean_schema,
    natural_key,
    parse_docstring,
    render_payload,
    store_output,
    tool_output_payload,
    unknown_tool_message,
    validation_message,
    whole_chars,
)

__all__ = ("ResultKind", "Tool", "ToolContext", "ToolOutput", "ToolResult", "ToolRunner", "read_artifact", "tool")

ResultKind = Literal["ok", "validation", "unknown_tool", "tool_error", "timeout", "error"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """What the runner passes to a tool that declares a ``ToolContext`` parameter."""

    call_id: str
    tool: str
    idempotency_key: str | None
    """``run_id/step_id/attempt`` when the runtime gave one: the same key on a retried call, so the
    tool can skip side effects it already made."""
    artifacts: ArtifactStore
    payload_chars: int
    """The runner's payload bound, for tools that write their own ``ToolOutput``."""


@dataclass(frozen=True, kw_only=True)
class ToolOutput:
    """A payload a tool wrote itself: returned as is (bounded), and nothing new is stored.

    For tools whose output already is an artifact (``read_artifact``) or that point at one.
    """

    text: str
    artifact: ArtifactRef | None = None
    note: str = ""
    """A line appended after ``text`` (e.g. where to continue), within ``PAYLOAD_NOTE_CHARS``."""


@dataclass(frozen=True, kw_only=True)
class ToolResult:
    """The outcome of one tool call."""

    call_id: str
    name: str
    ok: bool
    payload: str
    """The short text the controller sees (the error message when ``ok`` is false)."""
    artifact: ArtifactRef | None = None
    """The raw output, stored whole."""
    error: str | None = None
    kind: ResultKind = "ok"
    """``ok``, or why not: ``validation``, ``unknown_tool``, ``tool_error``, ``timeout``, ``error``."""
    duration_ms: float = 0.0
    output_size: int = 0
    """Bytes of the raw output."""

    def to_event(
        self, *, run_id: str, seq: int, at: datetime, caused_by: int | None = None, step_id: str | None = None
    ) -> ToolFinished:
        """The ``ToolFinished`` event recording this result."""
        return ToolFinished(
            run_id=run_id, seq=seq, at=at, caused_by=caused_by, call_id=self.call_id, name=self.name,
            ok=self.ok, payload=self.payload, artifact=self.artifact, error=self.error,
            duration_ms=self.duration_ms, step_id=step_id,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True, eq=False)
class Tool:
    """A function the model can call, with the JSON schema of its arguments.

    Build one with ``@tool``. Calling a ``Tool`` calls the function itself.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments object."""
    fn: Callable[..., Any] = field(repr=False)
    args_model: type[BaseModel] = field(repr=False)
    timeout: float | None = 30.0
    summarize: Callable[[Any], str] | None = field(default=None, repr=False)
    top_k: int | None = None
    is_async: bool = False
    context_params: tuple[str, ...] = ()
    """Parameters filled by the runner: a ``ToolContext`` or the ``idempotency_key``."""
    field_params: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """(model field, function parameter) pairs."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def spec(self) -> dict[str, Any]:
        """``{name, description, parameters}``: what a model is shown of this tool."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def bind(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the model's arguments into keyword arguments for the function.

        Raises:
            pydantic.ValidationError: the arguments do not fit the parameters.
        """
        model = self.args_model.model_validate(arguments)
        return {param: getattr(model, name) for name, param in self.field_params}

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = 30.0,
        summarize: Callable[[Any], str] | None = None,
        top_k: int | None = None,
    ) -> Tool:
        """Build a tool from a typed function (what ``@tool`` does).

        Raises:
            ConfigError: a parameter has no type hint or a type pydantic cannot validate, the
                name is not ``[A-Za-z0-9_-]{1,64}``, the docstring documents a parameter that does
                not exist, or a setting is out of range.
        """
        if not callable(fn):
            raise ConfigError(f"@tool decorates a function, got {type(fn).__name__}")
        tool_name = name if name is not None else getattr(fn, "__name__", "")
        if not isinstance(tool_name, str) or not _NAME.match(tool_name):
            raise ConfigError(f"tool name {tool_name!r} must be 1-64 letters, digits, '_' or '-'; pass name=...")
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"tool {tool_name!r}: timeout must be > 0 seconds or None, got {timeout!r}")
        if top_k is not None and top_k < 1:
            raise ConfigError(f"tool {tool_name!r}: top_k must be >= 1, got {top_k}")
        if inspect.isasyncgenfunction(fn):
            raise ConfigError(f"tool {tool_name!r} is an async generator; return a list instead")
        summary, arg_docs = parse_docstring(inspect.getdoc(fn) or "")
        model, field_params, context_params = arguments_model(fn, tool_name, arg_docs, ToolContext)
        try:
            schema = clean_schema(model.model_json_schema())
        except Exception as e:
            raise ConfigError(f"tool {tool_name!r}: cannot build the JSON schema of its parameters: {e}") from e
        schema.setdefault("properties", {})
        call = getattr(fn, "__call__", None)  # noqa: B004 - async callable objects count too
        return cls(
            name=tool_name, description=description if description is not None else summary, parameters=schema,
            fn=fn, args_model=model, timeout=timeout, summarize=summarize, top_k=top_k,
            is_async=inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call),
            context_params=context_params, field_params=field_params,
        )  # fmt: skip


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = 30.0,
    summarize: Callable[[Any], str] | None = None,
    top_k: int | None = None,
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = 30.0,
    summarize: Callable[[Any], str] | None = None,
    top_k: int | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a function (sync or async) a ``Tool``; use bare (``@tool``) or with options.

    Every parameter needs a type hint. A parameter named ``idempotency_key`` or typed
    ``ToolContext`` is not shown to the model: the runner fills it.

    Args:
        fn: The function, when used bare.
        name: The tool's name; the function's name by default.
        description: What the tool does; the docstring's first paragraph by default.
        timeout: Seconds before the call is abandoned (``None``: no limit). A sync tool runs in a
            worker thread that cannot be killed: on timeout the runner stops waiting for it, but the
            thread runs on until the function returns.
        summarize: ``summarize(output) -> str`` writes the payload the model sees.
        top_k: How many items of a list output the payload shows (the runner's default if None).

    Raises:
        ConfigError: see ``Tool.from_function``.
    """
    options = {"name": name, "description": description, "timeout": timeout, "summarize": summarize, "top_k": top_k}
    if fn is None:
        return lambda f: Tool.from_function(f, **options)
    return Tool.from_function(fn, **options)


class ToolRunner:
    """Runs tool calls: validate, execute under a timeout, store the raw output, return a payload.

    Args:
        tools: The tools the model may call; ``read_artifact`` is added unless
            ``include_read_artifact`` is false.
        artifacts: Where raw outputs are stored.
        payload_chars: Most characters of output a payload shows, plus a note of at most
            ``tool_payloads.PAYLOAD_NOTE_CHARS`` saying what was left out and where it is.
        top_k: How many items of a list output a payload shows, unless the tool sets its own.
        clock: Seconds as a float, for ``duration_ms``.
        include_read_artifact: Offer the built-in ``read_artifact`` tool.

    Raises:
        ConfigError: a tool is not a ``Tool``, two tools share a name, or a setting is out of range.
    """

    def __init__(
        self,
        tools: Iterable[Tool],
        artifacts: ArtifactStore,
        *,
        payload_chars: int = 2000,
        top_k: int = 10,
        clock: Callable[[], float] = time.perf_counter,
        include_read_artifact: bool = True,
    ) -> None:
        if payload_chars < 1:
            raise ConfigError(f"payload_chars must be >= 1, got {payload_chars}")
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        self.artifacts = artifacts
        self.payload_chars = payload_chars
        self.top_k = top_k
        self._clock = clock
        self._tools: dict[str, Tool] = {}
        for t in (*tools, *((read_artifact,) if include_read_artifact else ())):
            if not isinstance(t, Tool):
                raise ConfigError(f"ToolRunner takes Tool objects, got {t!r}; decorate the function with @tool")
            if t.name in self._tools:
                raise ConfigError(f"two tools are named {t.name!r}; tool names must be unique (pass name=...)")
            self._tools[t.name] = t

    @property
    def names(self) -> tuple[str, ...]:
        """The tool names, in the order the tools were given."""
        return tuple(self._tools)

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, or ``None``."""
        return self._tools.get(name)

    def specs(self) -> list[dict[str, Any]]:
        """``Tool.spec()`` of every tool, in order."""
        return [t.spec() for t in self._tools.values()]

    async def run(self, call: ToolCall, *, idempotency_key: str | None = None) -> ToolResult:
        """Run one call; every failure of the call or the tool comes back as a result, never raised.

        Args:
            call: The call the model (or a plan step) made.
            idempotency_key: Passed to the tool's ``idempotency_key`` / ``ToolContext`` parameter.

        Raises:
            StoreError: the artifact store could not store the output (not the tool's fault).
        """
        t = self._tools.get(call.name)
        if t is None:
            return self._failed(call, "unknown_tool", unknown_tool_message(call.name, self._tools))
        try:
            kwargs = t.bind(call.arguments)
        except ValidationError as e:
            return self._failed(call, "validation", validation_message(t.name, e, t.parameters))
        ctx = ToolContext(
            call_id=call.id, tool=t.name, idempotency_key=idempotency_key, artifacts=self.artifacts,
            payload_chars=self.payload_chars,
        )  # fmt: skip
        for param in t.context_params:
            kwargs[param] = idempotency_key if param == IDEMPOTENCY_PARAM else ctx
        start = self._clock()
        try:
            value = await _execute(t, kwargs)
        except _Abandoned:
            message = (
                f"Tool {t.name!r} timed out after {t.timeout:g} s and was abandoned; "
                "try narrower arguments or another approach"
            )
            return self._failed(call, "timeout", message, start)
        except ToolTimeout as e:
            return self._failed(call, "timeout", str(e) or f"Tool {t.name!r} timed out", start)
        except ToolError as e:
            return self._failed(call, "tool_error", str(e) or f"Tool {t.name!r} failed (no message)", start)
        except Exception as e:
            what = str(e) if isinstance(e, _Exited) else f"{type(e).__name__}: {e}"
            return self._failed(call, "error", f"Tool {t.name!r} failed: {what}", start)
        duration = self._ms(start)
        if isinstance(value, ToolOutput):
            payload = tool_output_payload(value.text, value.note, self.payload_chars)
            return ToolResult(
                call_id=call.id, name=t.name, ok=True, payload=payload, artifact=value.artifact,
                duration_ms=duration, output_size=len(value.text.encode("utf-8")),
            )  # fmt: skip
        try:
            out = store_output(value, self.artifacts)
        except (TypeError, ValueError) as e:
            message = f"Tool {t.name!r} returned a {type(value).__name__} that cannot be stored: {e}"
            return self._failed(call, "error", message, start)
        size = out.ref.size if out.ref is not None else 0
        try:
            payload = render_payload(
                out, payload_chars=self.payload_chars, top_k=self.top_k, summarize=t.summarize, tool_top_k=t.top_k
            )
        except Exception as e:
            message = f"Tool {t.name!r} ran, but summarizing its output failed: {type(e).__name__}: {e}"
            return replace(self._failed(call, "error", message, start), artifact=out.ref, output_size=size)
        return ToolResult(
            call_id=call.id, name=t.name, ok=True, payload=payload, artifact=out.ref, duration_ms=duration,
            output_size=size,
        )  # fmt: skip

    async def run_many(
        self, calls: Sequence[ToolCall], *, idempotency_keys: Mapping[str, str] | None = None
    ) -> list[ToolResult]:
        """Run calls concurrently; results come back sorted by call id (``call_2`` before ``call_10``).

        Args:
            calls: The calls, with distinct ids.
            idempotency_keys: Key per call id.

        Raises:
            ConfigError: two calls share an id, or a key names no call.
        """
        keys = dict(idempotency_keys or {})
        ids = [c.id for c in calls]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ConfigError(f"tool call ids must be unique within a batch; repeated: {', '.join(dupes)}")
        if stray := sorted(set(keys) - set(ids)):
            raise ConfigError(f"idempotency_keys name calls that are not in the batch: {', '.join(stray)}")
        results = await asyncio.gather(*(self.run(c, idempotency_key=keys.get(c.id)) for c in calls))
        return sorted(results, key=lambda r: natural_key(r.call_id))

    def _ms(self, start: float | None) -> float:
        return 0.0 if start is None else max(0.0, (self._clock() - start) * 1000.0)

    def _failed(self, call: ToolCall, kind: ResultKind, message: str, start: float | None = None) -> ToolResult:
        payload = bound_text(message, None, self.payload_chars, aligned=False)
        return ToolResult(
            call_id=call.id, name=call.name, ok=False, payload=payload, error=message, kind=kind,
            duration_ms=self._ms(start),
        )  # fmt: skip


class _Abandoned(Exception):
    """The runner's timeout fired (kept apart from any ``TimeoutError`` the tool raises itself)."""


class _Exited(Exception):
    """A tool raised ``SystemExit`` (or another ``BaseException``): a failure of the call, not the loop's."""

    @classmethod
    def wrap(cls, e: BaseException) -> BaseException:
        return e if isinstance(e, (Exception, asyncio.CancelledError)) else cls(f"{type(e).__name__}: {e}")


async def _execute(t: Tool, kwargs: dict[str, Any]) -> Any:
    """Run the tool under its timeout; raises ``_Abandoned`` when the timeout fired."""
    task = asyncio.ensure_future(_settle(t, kwargs))
    try:
        done, _ = await asyncio.wait({task}, timeout=t.timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_retrieve)
        raise _Abandoned
    return task.result()


async def _settle(t: Tool, kwargs: dict[str, Any]) -> Any:
    try:
        value = await t.fn(**kwargs) if t.is_async else await _in_thread(t.fn, kwargs, t.name)
        while inspect.isawaitable(value):
            value = await value
    except (SystemExit, KeyboardInterrupt) as e:  # asyncio would re-raise these out of the loop
        raise _Exited.wrap(e) from e
    return value


def _in_thread(fn: Callable[..., Any], kwargs: dict[str, Any], name: str) -> Awaitable[Any]:
    """Run ``fn`` in a daemon thread (like ``asyncio.to_thread``, with the context copied).

    A thread of its own, not the loop's executor: a call that timed out keeps running (threads
    cannot be killed) and must neither hold an executor slot nor keep ``asyncio.run`` from exiting.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def work() -> None:
        try:
            value = context.run(fn, **kwargs)
            if isinstance(value, Iterator) and not isinstance(value, (str, bytes)):
                value = list(value)  # a generator's body is tool code: run it here, not in the loop
        except BaseException as e:
            outcome: tuple[Any, BaseException | None] = (None, _Exited.wrap(e))
        else:
            outcome = (value, None)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:  # the loop closed while the tool ran: nobody is waiting
            pass

    threading.Thread(target=work, name=f"agentcore-tool-{name}", daemon=True).start()
    return future


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


@tool(timeout=None)
async def read_artifact(
    ctx: ToolContext,
    id: str,
    offset: Annotated[int, Field(ge=0)] = 0,
    limit: Annotated[int, Field(ge=1)] = 4000,
) -> ToolOutput:
    """Read part of a stored artifact (the full output of an earlier tool call) as text.

    Offsets and lengths count bytes of the artifact, decoded as UTF-8 (undecodable bytes become
    U+FFFD). A page never starts or ends inside a character and holds at least one whole
    character, even when limit is smaller than it. Each page ends with "bytes X..Y of Z; next:
    offset=Y": call again with that offset for the next page.

    Args:
        id: The artifact id exactly as a tool result gave it (sha256:...).
        offset: Byte offset to start reading at.
        limit: Most bytes to read; capped at the runner's payload size.
    """
    try:
        ref = ctx.artifacts.info(id)
    except ArtifactNotFound as e:
        raise ToolError(f"{e}; pass an artifact id exactly as a tool result gave it (sha256:...)") from None
    if offset > ref.size:
        raise ToolError(f"offset {offset} is past the end of artifact {ref.id} ({ref.size} bytes); use 0..{ref.size}")
    limit = min(limit, ctx.payload_chars)
    start, raw = whole_chars(ctx.artifacts.read(ref.id, offset, limit + WINDOW_SLACK), offset, limit)
    end = start + len(raw)
    after = f"next: offset={end}" if end < ref.size else "end of artifact"
    note = f"{ref.media_type}, bytes {start}..{end} of {ref.size}; {after}"
    return ToolOutput(text=raw.decode("utf-8", errors="replace"), artifact=ref, note=note)
