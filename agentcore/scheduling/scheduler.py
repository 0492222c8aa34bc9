"""Running a plan: ready steps, parallel execution, retries with backoff, failure policies.

The scheduler keeps no truth of its own. Everything it decides from comes from ``RunState.plan``
(the fold of the log): a step's dependencies count as met when they ``succeeded`` (or ``failed``
under ``on_failure="continue"``), attempts are ``StepState.attempts`` (the last ``StepStarted``),
and every transition it makes is an event it emits (``StepStarted``, ``StepSucceeded``,
``StepFailed``, ``StepSkipped``). So a run resumed from its log carries on where it stopped.

Readiness is incremental (``ReadyTracker``): in-degree counters are built once from the plan,
O(V + E), then each finished step decrements its dependents' counters, so a whole run costs
O((V + E) log V) (the log is the heap of ready steps: longest remaining chain first, then plan
order; a function of the plan only). The counters are rebuilt only when the plan itself changes (a
processor's ``replace_plan``).

Recording order, so a replay of the same outcomes gives the same log:

- A step's ``StepStarted`` is appended before its attempt begins. The steps started together
  (one dispatch, up to ``max_parallel`` running) go in two appends when more than one is ready
  and the first in priority order (longest remaining chain, then plan order) heads a chain of
  two steps or more: first that head's ``StepStarted`` alone, and its attempt begins and runs up
  to its first wait (for a tool that sleeps or does I/O, its timer or request is under way); then
  the ``StepStarted`` of the others as one batch in step-id order, and their attempts begin in
  priority order. Otherwise (one step, or only chains of one) they are one batch in step-id order.
  So the critical path does not wait for the rest of a wave to be recorded: with timer waits
  finer than a millisecond (``agentcore.event_loop``) that halves what a level of W4 (b) costs
  beyond its step (the gap from a step's end to its critical successor's sleep: 660-773 → 322-349
  µs median, wall time, load ~2). The recorded order is a function of the plan and of which
  outcomes the scheduler saw together in a wake-up, as it was before. A step's idempotency key is
  ``run_id/step_id/attempt`` (attempt numbers never repeat for a step id, even when a revised plan
  re-creates the step).
- Each outcome is appended as soon as the scheduler sees it; outcomes seen in the same wake-up
  are appended in step-id order (when they all succeeded and nothing revises the plan, in the
  next dispatch's first append, before the ``StepStarted`` it holds). A failure's consequences (the ``StepSkipped`` of its dependents,
  or the cancellation of the other steps under ``abort``) go in the same batch as its
  ``StepFailed``, so a crash never leaves half a decision in the log.

Retries: an executor's exception or failed result has a failure kind (see ``agentcore.scheduling.steps``);
the step is tried again when its ``RetryPolicy`` retries that kind and has attempts left. A
``ToolError`` is a message meant for a model; a plan step that calls a tool directly has no model
to read it, so it fails the step at once unless the step's ``retry_on`` lists ``"tool_error"``
(that is how a plan marks a tool's errors as transient). The wait before try ``n + 1`` is
``RetryPolicy.delay(n, rng)`` with ``rng`` seeded from ``seed/run_id/step_id/n``: backoff is
reproducible and does not depend on the order in which steps fail. An attempt that a crash
interrupted (``StepStarted`` with no outcome) is recorded as failed with kind ``interrupted`` on
resume and tried again at once if ``max_attempts`` allows, whatever ``retry_on`` says.

Failure policies (``Step.on_failure``, else the plan's ``on_failure``), applied once a step has
failed for good:

- ``abort``: the running steps are cancelled (``StepFailed`` kind ``cancelled``; a step whose
  attempt has already returned keeps its real outcome, ``StepSucceeded`` with its result), every
  pending step is skipped, and the run fails naming the step.
- ``skip_dependents``: every transitive dependent is skipped (the reason names the failed step);
  independent branches go on; the run ends ``failed``, naming the failed step(s).
- ``continue``: the failure is tolerated: dependents run as if the step had succeeded (they can
  read its error in the state); the run can still end ``succeeded``, its reason listing the
  tolerated failures.

Timeouts: ``Step.timeout_s`` limits one attempt (kind ``timeout``, retried under the policy); a
``deadline_s`` limits one call of ``Scheduler.run``: when it passes, the running steps fail with
kind ``deadline`` (an attempt that has already returned keeps its outcome) and the run fails;
pending steps are left pending.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from agentcore.core.clock import Clock, SystemClock
from agentcore.core.events import StepSkipped
from agentcore.core.fold import RunState
from agentcore.core.plans import RetryPolicy, check_deadline
from agentcore.scheduling.attempts import InFlight, Running
from agentcore.scheduling.outcomes import (
    ScheduleResult,
    attempt_outcome,
    failed_draft,
    interrupted_drafts,
    outcome_cut_short,
    own_outcome_draft,
    schedule_result,
    succeeded_draft,
)
from agentcore.scheduling.readiness import ReadyTracker
from agentcore.scheduling.steps import (
    Draft,
    EventSink,
    MemorySink,
    StepExecutor,
    StepResult,
    StepRun,
    classify_error,
    classify_result_kind,
)

__all__ = (
    "Draft",
    "EventSink",
    "MemorySink",
    "ReadyTracker",
    "ScheduleResult",
    "Scheduler",
    "StepExecutor",
    "StepResult",
    "StepRun",
    "classify_error",
    "classify_result_kind",
    "outcome_cut_short",
)


# --------------------------------------------------------------------------------------------
# the scheduler

OnOutcome = Callable[[str], Awaitable[None]]
"""Called with a step id after each recorded attempt outcome (the step's status tells whether it
succeeded, failed for good, or waits for a retry); it may emit events, e.g. a processor's
``replace_plan``, and the scheduler then rebuilds its readiness from the new plan."""


@dataclass(kw_only=True)
class _Flags:
    aborted: str | None = None
    deadline: str | None = None
    skipped: list[str] = field(default_factory=list)


class Scheduler:
    """Runs the pending steps of ``sink.state.plan`` until none can run.

    Args:
        sink: Where events go; its ``state`` is the run's state (folded as events are emitted).
        execute: Runs one attempt of a step.
        clock: Time for backoff, timeouts, the deadline and event timestamps.
        seed: Seeds the backoff jitter (with ``run_id/step_id/attempt``).
        deadline_s: Time limit for this call of ``run``, in seconds.
        on_outcome: Hook after each recorded step outcome (plan-and-revise).
        not_before: Steps still waiting out a backoff, with the time they may start (a resumed
            run reads these from its last ``StepFailed`` events).
        attempts_seen: Highest attempt started per step over the whole log. A step that a
            revised plan re-created starts at attempt 1 in the state; numbering carries on from
            here instead, so an idempotency key is never given to two different attempts.

    Raises:
        ConfigError: ``deadline_s`` is not a number of seconds in (0, ``MAX_DELAY_S``].
    """

    def __init__(
        self,
        sink: EventSink,
        execute: StepExecutor,
        *,
        clock: Clock | None = None,
        seed: int | str = 0,
        deadline_s: float | None = None,
        on_outcome: OnOutcome | None = None,
        not_before: Mapping[str, datetime] | None = None,
        attempts_seen: Mapping[str, int] | None = None,
    ) -> None:
        check_deadline(deadline_s)
        self.sink = sink
        self.execute = execute
        self.clock = clock or SystemClock()
        self.seed = seed
        self.deadline_s = deadline_s
        self.on_outcome = on_outcome
        self._backoff: list[tuple[datetime, str]] = [(t, sid) for sid, t in (not_before or {}).items()]
        heapq.heapify(self._backoff)
        self._inflight = InFlight(execute, self.clock, attempts_seen)
        self._running = self._inflight.running
        self._succeeded: list[Draft] = []
        """``StepSucceeded`` drafts of the last wake-up, appended by the next dispatch."""
        self._flags = _Flags()
        self._tracker = self._new_tracker()

    @property
    def state(self) -> RunState:
        return self.sink.state

    def _new_tracker(self) -> ReadyTracker:
        held = {sid for _, sid in self._backoff if self.state.plan.get(sid, None) is not None}
        return ReadyTracker(self.state.plan, self.state.on_failure, held)

    def rng(self, step_id: str, attempt: int) -> random.Random:
        """The jitter source for the wait after ``attempt`` of ``step_id`` failed."""
        return random.Random(f"{self.seed}/{self.state.run_id}/{step_id}/{attempt}")

    def retry_policy(self, step_id: str) -> RetryPolicy:
        """The retry policy that applies to a step."""
        return self.state.plan[step_id].retry or self.state.retry

    async def run(self) -> ScheduleResult:
        """Run steps until every step has finished or none can start; emit their events.

        Cancelling this coroutine cancels the running steps and writes nothing more: the log
        then looks like a crash, and a resume gives those steps a new attempt.
        """
        started = self.clock.now()
        deadline = started + timedelta(seconds=self.deadline_s) if self.deadline_s is not None else None
        try:
            self._recover()
            while self._flags.aborted is None:
                now = self.clock.now()
                if deadline is not None and now >= deadline:
                    if self._succeeded:
                        self.sink.emit(self._succeeded)
                    self._hit_deadline()
                    break
                self._release_due(now)
                await self._dispatch()
                if not self._running and not self._backoff:
                    break
                await self._wait(deadline)
        finally:
            await self._inflight.close()
        return self._result()

    # -- steps of the loop ---------------------------------------------------------------

    def _recover(self) -> None:
        """Settle what an earlier process left: interrupted attempts and blocked steps."""
        if all(step.status == "pending" for step in self.state.plan.values()):
            return  # nothing has started yet (a new run): nothing was left
        drafts, given_up = interrupted_drafts(self.state.plan, self.retry_policy, self.clock.now())
        if drafts:
            self.sink.emit(drafts)
            self._tracker = self._new_tracker()
            for sid, error in given_up:
                self._after_final_failure(sid, error, [])
        blocked = self._tracker.blocked()
        if blocked:
            self._skip(blocked, "a step it depends on failed or was skipped")
        for sid, step in self.state.plan.items():
            if step.status == "failed" and self._tracker.policy(sid) == "abort":
                self._flags.aborted = self._flags.aborted or f"step {sid!r} failed: {step.error}"

    def _release_due(self, now: datetime) -> None:
        while self._backoff and self._backoff[0][0] <= now:
            _, sid = heapq.heappop(self._backoff)
            self._tracker.release(sid)

    async def _dispatch(self) -> None:
        room = self.state.max_parallel - len(self._running)
        ready = self._tracker.pop_ready(room) if room > 0 and self._tracker.has_ready else []
        succeeded, self._succeeded = self._succeeded, []
        if not ready:
            if succeeded:
                self.sink.emit(succeeded)
            return
        if len(ready) == 1 or self._tracker.height.get(ready[0], 1) <= 1:
            # one StepStarted batch in step-id order, in the same append as the successes that
            # made them ready (after them); the attempts begin longest remaining chain first
            self._inflight.start(self.sink, ready, after=succeeded)
            return
        # the head of the longest remaining chain is recorded and begun first: its attempt runs up
        # to its first wait (its timer is set) before the rest of the wave is recorded, so the
        # critical path does not wait behind the rest's append (see "Recording order")
        self._inflight.start(self.sink, ready[:1], after=succeeded)
        await asyncio.sleep(0)
        self._inflight.start(self.sink, ready[1:])

    async def _wait(self, deadline: datetime | None) -> None:
        wake = min(
            (t for t in (deadline, self._backoff[0][0] if self._backoff else None) if t is not None), default=None
        )
        await self._inflight.wait(wake)
        done = self._inflight.finished()
        if done and self.on_outcome is None:
            outcomes = [(r, attempt_outcome(r.task)) for r in done]
            if all(res.ok for _, res in outcomes):
                # every finished step succeeded and nothing revises the plan in between: their
                # StepSucceeded events go in the next dispatch's append, before the StepStarted of
                # the steps they made ready (the same events in the same order, one commit)
                for r in done:
                    del self._running[r.step_id]
                    self._tracker.done(r.step_id)
                self._succeeded = [succeeded_draft(r.step_id, r.attempt, r.started_seq, res) for r, res in outcomes]
                return
        for r in done:
            if self._running.get(r.step_id) is r:  # an abort earlier in this loop may have settled it
                del self._running[r.step_id]
                await self._settle(r.step_id, r)

    async def _settle(self, sid: str, running: Running) -> None:
        res = attempt_outcome(running.task)
        if res.ok:
            self.sink.emit([succeeded_draft(sid, running.attempt, running.started_seq, res)])
            self._tracker.done(sid)
        else:
            self._record_failure(sid, res, running)
        if self.on_outcome is not None and self._flags.aborted is None:
            before = self.state.last_seq
            plan_before = self.state.plan
            await self.on_outcome(sid)
            if self.state.last_seq != before or self.state.plan is not plan_before:
                self._tracker = self._new_tracker()
                blocked = self._tracker.blocked()
                if blocked:
                    self._skip(blocked, "a step it depends on failed or was skipped")

    def _record_failure(self, sid: str, res: StepResult, running: Running) -> None:
        policy = self.retry_policy(sid)
        kind = res.kind if res.kind != "ok" else "error"
        error = res.error or f"step {sid!r} failed ({kind})"
        attempt, retryable = running.attempt, kind in policy.retry_on
        draft = partial(failed_draft, sid, attempt, running.started_seq, kind, worker=res.worker)
        if policy.should_retry(kind, attempt):
            next_at = self.clock.now() + timedelta(seconds=policy.delay(attempt, self.rng(sid, attempt)))
            self.sink.emit([draft(error, retryable, next_attempt_at=next_at)])
            self._tracker.requeue(sid)
            heapq.heappush(self._backoff, (next_at, sid))
            return
        if retryable:
            error = f"{error} (gave up after {attempt} of {policy.max_attempts} attempts)"
        self._after_final_failure(sid, error, [draft(error, retryable)])

    def _after_final_failure(self, sid: str, error: str, drafts: list[Draft]) -> None:
        """Apply the failure policy of ``sid``; emit ``drafts`` (its StepFailed) with the fallout."""
        policy = self._tracker.policy(sid)
        if policy == "continue":
            if drafts:
                self.sink.emit(drafts)
            self._tracker.done(sid)
            return
        if policy == "abort":
            self._flags.aborted = f"step {sid!r} failed: {error}"
            drafts += self._cancel_running(
                "cancelled", f"cancelled: step {sid!r} failed and the plan's failure policy is abort"
            )
            victims = self._tracker.pending()
            reason = f"run aborted: step {sid!r} failed"
        else:
            victims = self._tracker.dependents_closure([sid])
            reason = f"step {sid!r} failed"
        drafts += [partial(StepSkipped, step_id=v, reason=f"{reason}: {error}") for v in victims]
        if drafts:
            self.sink.emit(drafts)
        self._tracker.remove(victims)
        self._flags.skipped += victims
        self._backoff = [(t, s) for t, s in self._backoff if s not in set(victims)]
        heapq.heapify(self._backoff)

    def _skip(self, step_ids: list[str], reason: str) -> None:
        self.sink.emit([partial(StepSkipped, step_id=s, reason=reason) for s in step_ids])
        self._tracker.remove(step_ids)
        self._flags.skipped += step_ids

    def _hit_deadline(self) -> None:
        self._flags.deadline = f"the run's deadline of {self.deadline_s:g}s passed"
        drafts = self._cancel_running("deadline", f"stopped: the run's deadline of {self.deadline_s:g}s passed")
        if drafts:
            self.sink.emit(drafts)

    def _cancel_running(self, kind: str, error: str) -> list[Draft]:
        """Stop every running step (in step-id order) and return the drafts of their outcomes.

        An attempt that has already returned (its task is done but not yet settled: it finished in
        the same wake-up as the failure that stops the run) keeps its real outcome: a
        ``StepSucceeded`` with its result, or its own failure, never retried. Only attempts still
        running are cancelled and recorded as ``StepFailed`` of ``kind``.
        """
        drafts: list[Draft] = []
        for sid in sorted(self._running):
            r = self._inflight.cancel(sid)
            if r.task.done():  # it returned before the stop: it keeps its real outcome
                drafts.append(
                    own_outcome_draft(sid, r.attempt, r.started_seq, attempt_outcome(r.task), self.retry_policy(sid))
                )
                continue
            drafts.append(failed_draft(sid, r.attempt, r.started_seq, kind, error, retryable=False))
        return drafts

    def _result(self) -> ScheduleResult:
        return schedule_result(
            self.state.plan, self._tracker.policy, aborted=self._flags.aborted, deadline=self._flags.deadline
        )
