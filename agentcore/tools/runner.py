"""``ToolRunner``: validate a call's arguments, run the tool under a timeout, store the raw output as an
artifact and return a bounded payload. Nothing a tool does crashes the runner: ``ToolError`` is a
message for the model, any other exception is recorded as a failure.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from agentcore.core.clock import Clock, SystemClock
from agentcore.core.events import ToolCall
from agentcore.core.json_text import repair_text
from agentcore.errors import ConfigError, ToolError, ToolTimeout
from agentcore.storage.artifacts import ArtifactStore
from agentcore.tools.base import ResultKind, Tool, ToolContext, ToolOutput, ToolResult
from agentcore.tools.builtin import read_artifact
from agentcore.tools.payloads import (
    bound_text,
    natural_key,
    render_payload,
    store_output,
    tool_output_payload,
    unknown_tool_message,
    validation_message,
)
from agentcore.tools.signature import IDEMPOTENCY_PARAM

MAX_ERROR_CHARS = 4000
"""Most characters of a failure message kept in a result's ``error`` (and so in ``ToolFinished`` and
``StepFailed``); a longer one is stored whole as an artifact that the kept head names."""


class ToolRunner:
    """Runs tool calls: validate, execute under a timeout, store the raw output, return a payload.

    Args:
        tools: The tools the model may call; ``read_artifact`` is added unless
            ``include_read_artifact`` is false.
        artifacts: Where raw outputs are stored.
        payload_chars: Most characters of output a payload shows, plus a note of at most
            ``tool_payloads.PAYLOAD_NOTE_CHARS`` saying what was left out and where it is.
        top_k: How many items of a list output a payload shows, unless the tool sets its own.
        clock: Measures ``duration_ms`` (its ``monotonic``); ``SystemClock`` by default. A tool's
            ``timeout`` stays real time: a tool running in a thread looks idle to a fake clock.
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
        clock: Clock | None = None,
        include_read_artifact: bool = True,
    ) -> None:
        if payload_chars < 1:
            raise ConfigError(f"payload_chars must be >= 1, got {payload_chars}")
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        self.artifacts = artifacts
        self.payload_chars = payload_chars
        self.top_k = top_k
        self.clock: Clock = clock if clock is not None else SystemClock()
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
        if t.context_params:  # built only for the tools that declare one
            ctx = ToolContext(
                call_id=call.id, tool=t.name, idempotency_key=idempotency_key, artifacts=self.artifacts,
                payload_chars=self.payload_chars,
            )  # fmt: skip
            for param in t.context_params:
                kwargs[param] = idempotency_key if param == IDEMPOTENCY_PARAM else ctx
        start = self.clock.monotonic()
        try:
            # without a timeout the tool is awaited in this task (no task of its own to watch):
            # cancelling the caller cancels it all the same
            value = await (_settle(t, kwargs) if t.timeout is None else _execute(t, kwargs))
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
            return replace(self._failed(call, "error", f"Tool {t.name!r} failed: {what}", start), exception=type(e))
        return self._succeeded(call, t, value, start)

    def _succeeded(self, call: ToolCall, t: Tool, value: Any, start: float) -> ToolResult:
        """The result of a call that returned ``value``: stored (unless it is a ``ToolOutput``) and
        summarized into a payload; a value that cannot be stored or summarized is a failure."""
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
        return 0.0 if start is None else max(0.0, (self.clock.monotonic() - start) * 1000.0)

    def _failed(self, call: ToolCall, kind: ResultKind, message: str, start: float | None = None) -> ToolResult:
        """A failed result. A message longer than ``MAX_ERROR_CHARS`` (a command's whole stderr, an
        echoed argument) is stored whole as a text artifact, and the result's ``error`` shows its head
        with a note naming that artifact, so no event (nor a plan step's state) holds all of it."""
        ref = None
        if len(message) > MAX_ERROR_CHARS:
            message = repair_text(message)  # lone surrogates have no UTF-8 form
            ref = self.artifacts.put_text(message)
        return ToolResult(
            call_id=call.id, name=call.name, ok=False, kind=kind, artifact=ref, duration_ms=self._ms(start),
            payload=bound_text(message, ref, self.payload_chars, aligned=ref is not None),
            error=bound_text(message, ref, MAX_ERROR_CHARS, aligned=True),
        )  # fmt: skip


class _Abandoned(Exception):
    """The runner's timeout fired (kept apart from any ``TimeoutError`` the tool raises itself)."""


class _Exited(Exception):
    """A tool raised ``SystemExit`` (or another ``BaseException``): a failure of the call, not the loop's."""

    @classmethod
    def wrap(cls, e: BaseException) -> BaseException:
        return e if isinstance(e, (Exception, asyncio.CancelledError)) else cls(f"{type(e).__name__}: {e}")


async def _execute(t: Tool, kwargs: dict[str, Any]) -> Any:
    """Run the tool under its timeout (``t.timeout`` is set); raises ``_Abandoned`` when it fired."""
    assert t.timeout is not None
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


_PLAIN = frozenset({str, bytes, int, float, bool, dict, list, tuple, type(None)})
"""Result types that are never awaitable: no ``isawaitable`` check (an ABC check) for them."""


async def _settle(t: Tool, kwargs: dict[str, Any]) -> Any:
    try:
        value = await t.fn(**kwargs) if t.is_async else await _in_thread(t.fn, kwargs, t.name)
        while type(value) not in _PLAIN and inspect.isawaitable(value):
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
