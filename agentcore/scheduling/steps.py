"""The contract between the scheduler and whatever runs a step.

An executor gets a ``StepRun`` (one attempt of one step, with its idempotency key
``run_id/step_id/attempt``) and returns a ``StepResult``, or raises: ``classify_error`` turns the
exception into a failure kind that retry policies match (``RetryPolicy.retry_on``):

=============================================  ================  ===============
failure                                        kind              retried by default
=============================================  ================  ===============
HTTP 429, ``ModelUnavailable``                 ``rate_limit``    yes
``TimeoutError``, ``ToolTimeout``, HTTP 408    ``timeout``       yes
HTTP 5xx                                       ``server_error``  yes
``ConnectionError``                            ``connection``    yes
an exception with ``kind = "transient"``       ``transient``     yes
``ModelOutputError``, pydantic validation      ``validation``    no
other HTTP 4xx                                 ``client_error``  no
``ToolError``                                  ``tool_error``    no
anything else                                  ``error``         no
=============================================  ================  ===============

Any exception with a string attribute ``kind`` is taken at its word. A failed ``ToolResult`` is
mapped by ``classify_result_kind`` from its kind and the class of the exception the tool raised
(``unknown_tool`` counts as ``validation``; a tool that crashed with a ``ConnectionError`` or a
``TimeoutError`` counts as ``connection`` or ``timeout``): no error text is parsed.

Events reach the log through an ``EventSink``: ``MemorySink`` folds them onto a state with no
store (tests, benchmarks); the plan runner's sink appends them to an ``EventStore`` first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from agentcore.core.clock import Clock, SystemClock
from agentcore.core.events import ArtifactRef, BaseEvent
from agentcore.core.fold import RunState, StepState, apply
from agentcore.errors import ModelOutputError, ModelRequestError, ModelUnavailable, ToolError, ToolTimeout

__all__ = (
    "Draft",
    "EventSink",
    "MemorySink",
    "StepExecutor",
    "StepResult",
    "StepRun",
    "classify_error",
    "classify_result_kind",
    "run_attempt",
)


class Draft(Protocol):
    """An event to append, short of what the sink stamps on it: ``draft(run_id=, seq=, at=)`` builds it.

    Make one with ``functools.partial(StepStarted, step_id=..., attempt=..., ...)``: the event
    class types the fields (mypy checks the keywords against its signature; pydantic validates
    them when the sink builds the event).
    """

    def __call__(self, *, run_id: str, seq: int, at: datetime) -> BaseEvent: ...


# --------------------------------------------------------------------------------------------
# classifying failures

_RESULT_KINDS = {
    "timeout": "timeout",
    "validation": "validation",
    "unknown_tool": "validation",
    "tool_error": "tool_error",
    "error": "error",
}


def classify_result_kind(kind: str, exception: type[BaseException] | None = None) -> str:
    """The failure kind of a failed ``ToolResult`` from its ``kind`` and ``exception`` class.

    A tool that crashed (kind ``error``) with a ``ConnectionError`` or a ``TimeoutError`` (the
    ``ToolResult.exception`` the runner recorded) counts as ``connection`` or ``timeout``; unknown
    kinds pass through.
    """
    if kind == "error" and exception is not None:
        if issubclass(exception, (TimeoutError, asyncio.TimeoutError)):
            return "timeout"
        if issubclass(exception, ConnectionError):
            return "connection"
    return _RESULT_KINDS.get(kind, kind)


def _status_kind(status: int) -> str:
    if status == 429:
        return "rate_limit"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server_error"
    return "client_error"


def classify_error(exc: BaseException) -> str:
    """The failure kind of an exception raised while running a step.

    An exception with a string attribute ``kind`` (e.g. one a tool raises) is taken at its word.
    """
    kind = getattr(exc, "kind", None)
    if isinstance(kind, str) and kind:
        return kind
    if isinstance(exc, (ToolTimeout, TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    if isinstance(exc, ModelUnavailable):
        return "rate_limit"
    if isinstance(exc, ModelRequestError):
        return _status_kind(exc.status_code) if exc.status_code else "client_error"
    if isinstance(exc, ModelOutputError):
        return "validation"
    if isinstance(exc, ToolError):
        return "tool_error"
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 400:
        return _status_kind(status)
    if isinstance(exc, ConnectionError):
        return "connection"
    if type(exc).__name__ == "ValidationError":  # pydantic's, without importing pydantic here
        return "validation"
    return "error"


# --------------------------------------------------------------------------------------------
# values


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """What an executor returns for one attempt of a step."""

    ok: bool
    payload: str = ""
    """Short text for the state (and the model reading it)."""
    result: ArtifactRef | None = None
    """Raw output, stored as an artifact."""
    error: str | None = None
    kind: str = "ok"
    """Failure kind when not ok (see ``classify_error``)."""
    worker: str | None = None
    """The worker that ran the attempt, when it was not the process driving the run."""


@dataclass(frozen=True, kw_only=True)
class StepRun:
    """One attempt of one step, as handed to an executor."""

    run_id: str
    step: StepState
    attempt: int
    idempotency_key: str
    state: RunState = field(repr=False)
    """The live run state (read it; never change it)."""


StepExecutor = Callable[[StepRun], Awaitable[StepResult]]
"""Runs one attempt of a step; may raise (the exception is classified into a failure kind)."""


class EventSink(Protocol):
    """Where the scheduler's events go: appended to the log, then folded onto ``state``."""

    @property
    def state(self) -> RunState: ...

    def emit(self, drafts: Sequence[Draft]) -> int:
        """Append ``drafts`` as one batch and fold them; return the seq of the first one."""
        ...


class MemorySink:
    """An ``EventSink`` with no store: events are built and folded onto a state in memory.

    Args:
        state: The state to fold onto (changed in place).
        clock: Stamps ``at``.
        keep: Keep the events in ``events`` (off for benchmarks).
    """

    def __init__(self, state: RunState, *, clock: Clock | None = None, keep: bool = True) -> None:
        self._state = state
        self.clock = clock or SystemClock()
        self.keep = keep
        self.events: list[BaseEvent] = []

    @property
    def state(self) -> RunState:
        return self._state

    def emit(self, drafts: Sequence[Draft]) -> int:
        first = self._state.last_seq + 1
        at = self.clock.now()
        for i, draft in enumerate(drafts):
            event = draft(run_id=self._state.run_id, seq=first + i, at=at)
            apply(self._state, event)  # type: ignore[arg-type]
            if self.keep:
                self.events.append(event)
        return first


async def run_attempt(execute: StepExecutor, run: StepRun, clock: Clock) -> StepResult:
    """One attempt of a step under its ``timeout_s`` (measured on ``clock``): past it the attempt
    is cancelled and fails with kind ``timeout``."""
    timeout = run.step.timeout_s
    if timeout is None:
        return await execute(run)
    work = asyncio.ensure_future(execute(run))
    timer = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not work.done():
            work.cancel()
            await asyncio.wait({work})
    if work.cancelled():
        return StepResult(
            ok=False, kind="timeout", error=f"step {run.step.id!r} ran longer than its timeout of {timeout:g}s"
        )
    return work.result()
