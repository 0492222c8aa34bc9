"""The runtime's write path: events of one run, appended in batches, folded as they land.

``RunLog`` keeps the run's state as the fold of every event it has appended (``apply`` in place:
O(event)), hands out seqs itself (``expected_seq`` is always the last seq it wrote) and commits one
batch per agent step in one ``store.append`` call. Events reach ``on_event`` only after their batch
is committed, so a progress callback never sees an event the log does not hold.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from agentcore.core.clock import Clock, SystemClock
from agentcore.core.events import BaseEvent, Event, LLMCalled, PatchRejected, StatePatched, TokenUsage, redacted
from agentcore.core.fold import RunState, apply
from agentcore.core.values import canonical_json, redacted_strings
from agentcore.models.base import ChatRequest, ChatResponse, request_body, request_digest
from agentcore.models.prices import PriceFn
from agentcore.roles.processor import PatchRefused, ProcessorOutcome, rejected_ops
from agentcore.roles.turn import Attempt
from agentcore.storage.artifacts import JSON
from agentcore.storage.base import EventStore

__all__ = ("RunLog", "open_run_log")

_logger = logging.getLogger("agentcore")

E = TypeVar("E", bound=BaseEvent)


class RunLog:
    """Appends events of one run and keeps its folded state.

    Args:
        store: Where the events go.
        state: The fold of the run's events so far (it is updated in place).
        clock: Gives each event's ``at`` (its ``now``); ``SystemClock`` by default.
        on_event: Called with each event once its batch is committed.
        price: Prices each ``LLMCalled`` as it is recorded (``cost_usd``); ``None`` leaves every
            cost unknown.
        on_batch: Called with each batch once it is committed, before ``on_event`` (the live
            OpenTelemetry tracer); an exception from it is logged, never raised into the run.
    """

    def __init__(
        self,
        store: EventStore,
        state: RunState,
        *,
        clock: Clock | None = None,
        on_event: Callable[[Event], None] | None = None,
        price: PriceFn | None = None,
        redact: Callable[[str], str] | None = None,
        on_batch: Callable[[Sequence[Event]], None] | None = None,
    ) -> None:
        self.store = store
        self.redact = redact
        self.price = price
        self.on_batch = on_batch
        self.state = state
        self.run_id = state.run_id
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.on_event = on_event
        self._pending: list[BaseEvent] = []

    @property
    def last_seq(self) -> int:
        """The seq of the last committed event."""
        return self.state.last_seq

    def add(self, cls: type[E], **fields: Any) -> E:
        """Queue an event of ``cls`` for the next commit and return it (its seq is set)."""
        return self.add_draft(partial(cls, **fields))

    def add_draft(self, draft: Callable[..., E]) -> E:
        """Queue the event ``draft(run_id=, seq=, at=)`` builds (a scheduler ``Draft``, a
        ``ToolResult.to_event``) and return it; the models' secrets are removed from it first."""
        event = draft(run_id=self.run_id, seq=self.last_seq + len(self._pending) + 1, at=self.clock.now())
        if self.redact is not None:  # no secret of a model reaches the log, whatever carried it here
            event = redacted(event, self.redact)  # in its strings, never its JSON syntax
        self._pending.append(event)
        return event

    def add_llm(
        self,
        *,
        role: str,
        model: str,
        request: ChatRequest,
        response: ChatResponse | None,
        latency_ms: float,
        attempt: int,
        error: str | None,
        caused_by: int | None,
        step_id: str | None = None,
    ) -> LLMCalled:
        """Queue the ``LLMCalled`` record of one model call; the request body goes to an artifact."""
        body_text = request_body(request)
        if self.redact is not None and self.redact(body_text) != body_text:  # a secret: out of its strings
            body_text = canonical_json(redacted_strings(json.loads(body_text), self.redact))
        body_bytes = body_text.encode("utf-8")
        ref = self.store.artifacts.put(body_bytes, JSON)
        body: dict[str, Any] = {}
        usage = TokenUsage()
        if response is not None:
            # ``problem`` only when set, so the records of usable answers keep their recorded shape
            body = response.model_dump(mode="json", exclude={"usage"} if response.problem else {"usage", "problem"})
            usage = response.usage
        cost = self.price(model, usage, None) if self.price is not None and response is not None else None
        return self.add(
            LLMCalled,
            role=role,
            model=model,
            request_digest=request_digest(request, body_text),
            request_artifact=ref,
            response=body,
            usage=usage,
            latency_ms=round(latency_ms, 3),
            attempt=attempt,
            ok=error is None,
            error=error,
            caused_by=caused_by,
            step_id=step_id,
            cost_usd=cost,
        )

    def add_attempts(
        self,
        *,
        role: str,
        model: str,
        attempts: Sequence[Attempt[Any]],
        caused_by: int | None,
        step_id: str | None = None,
    ) -> list[LLMCalled]:
        """Queue one ``LLMCalled`` per attempt of a model turn, numbered from 1."""
        return [
            self._add_attempt(role, model, a, number, caused_by, step_id) for number, a in enumerate(attempts, start=1)
        ]

    def _add_attempt(
        self, role: str, model: str, attempt: Attempt[Any], number: int, caused_by: int | None, step_id: str | None
    ) -> LLMCalled:
        return self.add_llm(
            role=role,
            model=model,
            request=attempt.request,
            response=attempt.response,
            latency_ms=attempt.latency_ms,
            attempt=number,
            error=attempt.error,
            caused_by=caused_by,
            step_id=step_id,
        )

    def add_processor_outcome(
        self, outcome: ProcessorOutcome, *, model: str, caused_by: int, step_id: str | None = None
    ) -> LLMCalled | None:
        """Queue the records of one processor turn and return the last ``LLMCalled`` (if any).

        Each attempt is an ``LLMCalled``, followed by the ``StatePatched`` it produced or the
        ``PatchRejected`` that sent it back; all are caused by the input at seq ``caused_by``.
        """
        llm = None
        for number, attempt in enumerate(outcome.attempts, start=1):
            llm = self._add_attempt("processor", model, attempt, number, caused_by, step_id)
            if attempt.value is not None and attempt.accepted:
                self.add(StatePatched, ops=attempt.value.ops, source="processor", caused_by=caused_by)
            elif attempt.response is not None:
                refused = attempt.problem if isinstance(attempt.problem, PatchRefused) else None
                self.add(
                    PatchRejected,
                    ops=rejected_ops(attempt),
                    error=attempt.error or "rejected",
                    op_index=refused.op_index if refused else None,
                    path=refused.path if refused else None,
                    attempt=number,
                    caused_by=caused_by,
                )
        return llm

    def start(self, task: str, created: datetime | None = None) -> int:
        """Create the run with the queued events (its ``RunStarted``) in one transaction.

        So no crash can leave the run without its first event. Returns the last seq.

        Raises:
            ConcurrencyError: a run with this id exists already; nothing was written.
            StoreError: the store failed; nothing was written.
        """
        batch, self._pending = self._pending, []
        if self.redact is not None:
            task = self.redact(task)
        self.store.create_run(task, run_id=self.run_id, created=created, events=batch)
        return self._committed(batch)

    def commit(self) -> int:
        """Append the queued events in one batch, fold them, tell ``on_event``; returns the last seq.

        Raises:
            ConcurrencyError: another writer appended to the run; nothing was written.
            StoreError: the store failed; nothing was written.
        """
        batch, self._pending = self._pending, []
        if not batch:
            return self.last_seq
        self.store.append(self.run_id, batch, expected_seq=self.last_seq)
        return self._committed(batch)

    def _committed(self, batch: list[BaseEvent]) -> int:
        for event in batch:
            apply(self.state, event)  # type: ignore[arg-type]
        if self.on_batch is not None:
            try:
                self.on_batch(batch)  # type: ignore[arg-type]
            except Exception:  # tracing is an observer: the committed run goes on
                _logger.exception("agentcore: the on_batch observer of run %s failed", self.run_id)
        if self.on_event is not None:
            for event in batch:
                self.on_event(event)  # type: ignore[arg-type]
        return self.last_seq


def open_run_log(
    store: EventStore,
    state: RunState,
    events: Sequence[Event] = (),
    *,
    clock: Clock,
    on_event: Callable[[Event], None] | None,
    price: PriceFn | None,
    redact: Callable[[str], str] | None,
    tracer_provider: Any = None,
    trace_content: bool = False,
) -> RunLog:
    """The ``RunLog`` a runner writes a run with; with a ``tracer_provider``, each committed batch
    also becomes OpenTelemetry spans (``agentcore.export.otel.RunTracer``, told of the run's earlier
    ``events`` so a resumed run does not emit their spans again; ``trace_content`` adds raw content).
    """
    on_batch = None
    if tracer_provider is not None:
        from agentcore.export.otel import RunTracer

        tracer = RunTracer(tracer_provider, state.run_id, content=trace_content)
        tracer.prime(events)
        on_batch = tracer.on_batch
    return RunLog(store, state, clock=clock, on_event=on_event, price=price, redact=redact, on_batch=on_batch)
