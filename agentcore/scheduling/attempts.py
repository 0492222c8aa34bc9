"""Step attempts in flight: numbered, recorded as ``StepStarted``, run each in its own asyncio
task, and the scheduler is woken as soon as one ends.

Attempt numbers carry on from the highest one the log holds for a step (``attempts_seen``), so an
idempotency key ``run_id/step_id/attempt`` is never given to two attempts.

An attempt that ends (returns, raises or is cancelled) puts itself on the finished list and wakes
the waiter, so a wake-up costs O(attempts that ended) rather than O(attempts running), which is
what an ``asyncio.wait`` over every running task costs (its callbacks are added to and removed
from each task per call).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from agentcore.core.clock import Clock
from agentcore.core.events import StepStarted
from agentcore.scheduling.steps import Draft, EventSink, StepExecutor, StepResult, StepRun, run_attempt
from agentcore.tools.base import step_idempotency_key

__all__ = ("InFlight", "Running")


@dataclass(eq=False, kw_only=True)
class Running:
    """One attempt in flight: its step, attempt number, the seq of its ``StepStarted``, its task."""

    step_id: str
    attempt: int
    started_seq: int
    task: asyncio.Task[StepResult] = field(init=False)


class InFlight:
    """The attempts of one schedule that are running, by step id.

    Args:
        execute: Runs one attempt (under its ``timeout_s``, see ``run_attempt``).
        clock: Measures timeouts and the waits of ``wait``.
        attempts_seen: Highest attempt started per step over the whole log.
    """

    def __init__(self, execute: StepExecutor, clock: Clock, attempts_seen: Mapping[str, int] | None = None) -> None:
        self.execute = execute
        self.clock = clock
        self.attempts: dict[str, int] = dict(attempts_seen or {})
        self.running: dict[str, Running] = {}
        self.cancelled: list[asyncio.Task[StepResult]] = []
        """Tasks cancelled while running (``cancel``); ``close`` waits for them to end."""
        self._finished: list[Running] = []
        self._wakeup: asyncio.Future[None] | None = None

    def start(self, sink: EventSink, step_ids: list[str], *, after: Sequence[Draft] = ()) -> None:
        """Record the ``StepStarted`` of ``step_ids`` (in step-id order, in one append after the
        drafts ``after``), then start each attempt in a task of its own, in the order given (tasks
        begin in the order they start)."""
        if not step_ids:
            if after:
                sink.emit(after)
            return
        state = sink.state
        plan, run_id = state.plan, state.run_id
        runs: dict[str, tuple[Running, str]] = {}
        for sid in sorted(step_ids):
            attempt = max(plan[sid].attempts, self.attempts.get(sid, 0)) + 1
            self.attempts[sid] = attempt
            runs[sid] = (
                Running(step_id=sid, attempt=attempt, started_seq=0),
                step_idempotency_key(run_id, sid, attempt),
            )
        started = [partial(StepStarted, step_id=s, attempt=r.attempt, idempotency_key=k) for s, (r, k) in runs.items()]
        first = sink.emit([*after, *started]) + len(after)
        for i, (r, _) in enumerate(runs.values()):
            r.started_seq = first + i
        state = sink.state  # after the fold: the started steps' records are new objects
        loop = asyncio.get_running_loop()
        for sid in step_ids:
            r, key = runs[sid]
            run = StepRun(run_id=run_id, step=state.plan[sid], attempt=r.attempt, idempotency_key=key, state=state)
            r.task = loop.create_task(self._attempt(r, run))
            self.running[sid] = r

    async def _attempt(self, running: Running, run: StepRun) -> StepResult:
        try:
            if run.step.timeout_s is None:  # what run_attempt does then, one coroutine layer fewer
                return await self.execute(run)
            return await run_attempt(self.execute, run, self.clock)
        finally:  # however the attempt ends, the waiter hears of it
            self._finished.append(running)
            if self._wakeup is not None:
                _wake(self._wakeup)

    def finished(self) -> list[Running]:
        """The attempts that ended since the last call and are still in flight, in step-id order
        (an attempt cancelled with ``cancel`` is no longer in flight). They stay in ``running``
        until the caller pops them."""
        ended, self._finished = self._finished, []
        return sorted((r for r in ended if self.running.get(r.step_id) is r), key=lambda r: r.step_id)

    async def wait(self, until: datetime | None) -> None:
        """Return once an attempt has ended (at once if one has since ``finished`` was last
        called), or when ``until`` has come on the clock."""
        if self._finished:
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wakeup = woken
        timer = None
        if until is not None:
            timer = asyncio.ensure_future(self.clock.sleep((until - self.clock.now()).total_seconds()))
            timer.add_done_callback(lambda _: _wake(woken))
        try:
            await woken
        finally:
            self._wakeup = None
            if timer is not None:
                timer.cancel()

    def cancel(self, step_id: str) -> Running:
        """Take an attempt out of flight and cancel its task (unless it has already ended)."""
        r = self.running.pop(step_id)
        if not r.task.done():
            r.task.cancel()
            self.cancelled.append(r.task)
        return r

    async def close(self) -> None:
        """Cancel every attempt still running and wait until all cancelled tasks have ended."""
        for r in self.running.values():
            r.task.cancel()
        leftover = self.cancelled + [r.task for r in self.running.values()]
        if leftover:
            await asyncio.wait(leftover)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
