"""How step attempts and a whole schedule end: the drafts of ``StepSucceeded``/``StepFailed``, the
outcome of a finished attempt's task, the ``ScheduleResult`` with its reason, and the outcome a
crash cut short (for ``PlanRunner`` to finish on resume).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Literal

from agentcore.core.events import Event, StepFailed, StepSkipped, StepSucceeded
from agentcore.core.fold import RunState
from agentcore.core.plans import RetryPolicy
from agentcore.core.state import StepState
from agentcore.scheduling.steps import Draft, StepResult, classify_error

__all__ = (
    "ScheduleResult",
    "attempt_outcome",
    "failed_draft",
    "failed_result",
    "interrupted_drafts",
    "outcome_cut_short",
    "own_outcome_draft",
    "schedule_result",
    "succeeded_draft",
)


@dataclass(frozen=True, kw_only=True)
class ScheduleResult:
    """How a call of ``Scheduler.run`` ended."""

    status: Literal["succeeded", "failed"]
    reason: str
    failed: tuple[str, ...] = ()
    """Steps that failed for good and were not tolerated (``continue``)."""
    tolerated: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


def schedule_result(
    plan: Mapping[str, StepState], policy: Callable[[str], str], *, aborted: str | None, deadline: str | None
) -> ScheduleResult:
    """How a schedule ended, from the plan's step statuses: ``succeeded`` only when every step
    succeeded or was tolerated; the reason names what failed, was skipped, tolerated or never started.

    Args:
        plan: The steps, by id, after the run.
        policy: The failure policy of a step id.
        aborted: Why the run was aborted (a step failed under ``abort``), if it was.
        deadline: That the run's deadline passed, if it did.
    """
    by_status: dict[str, list[str]] = {"failed": [], "skipped": [], "pending": []}
    done = 0
    for s, st in plan.items():  # one pass: it is on the run's critical path, after its last step
        if st.status == "succeeded":
            done += 1
        elif st.status in by_status:
            by_status[st.status].append(s)
    gone = by_status["failed"]
    failed = tuple(s for s in gone if policy(s) != "continue")
    tolerated = tuple(s for s in gone if policy(s) == "continue")
    skipped = tuple(by_status["skipped"])
    pending = by_status["pending"]

    def errors(ids: Sequence[str]) -> str:
        return "; ".join(f"{s!r} ({plan[s].error})" for s in ids)

    parts: list[str] = []
    if aborted:
        parts.append(aborted + " (on_failure=abort)")
    elif failed:
        parts.append(f"{len(failed)} step(s) failed: {errors(failed)}")
    if deadline:
        parts.insert(0, deadline)
        if pending:
            parts.append(f"not started: {', '.join(pending)}")
    if skipped:
        parts.append(f"skipped {len(skipped)} step(s) that could not run: {', '.join(skipped)}")
    if tolerated:
        parts.append(f"tolerated failures (on_failure=continue): {errors(tolerated)}")
    ok = not (failed or aborted or deadline or pending)
    if ok:
        parts.insert(0, f"{done} of {len(plan)} step(s) succeeded")
    elif pending and not deadline:
        parts.append(f"blocked: {', '.join(pending)}")
    return ScheduleResult(
        status="succeeded" if ok else "failed", reason="; ".join(parts), failed=failed, tolerated=tolerated,
        skipped=skipped,
    )  # fmt: skip


def succeeded_draft(sid: str, attempt: int, started_seq: int, res: StepResult) -> Draft:
    """The ``StepSucceeded`` of an attempt (``caused_by`` its ``StepStarted``)."""
    return partial(
        StepSucceeded, step_id=sid, attempt=attempt, caused_by=started_seq, payload=res.payload,
        result=res.result, worker=res.worker,
    )  # fmt: skip


def failed_draft(
    sid: str,
    attempt: int,
    started_seq: int,
    kind: str,
    error: str,
    retryable: bool,
    next_attempt_at: datetime | None = None,
    worker: str | None = None,
) -> Draft:
    """The ``StepFailed`` of an attempt (``caused_by`` its ``StepStarted``; ``worker``: who ran it)."""
    return partial(
        StepFailed, step_id=sid, attempt=attempt, caused_by=started_seq, kind=kind, error=error,
        retryable=retryable, next_attempt_at=next_attempt_at, worker=worker,
    )  # fmt: skip


def own_outcome_draft(sid: str, attempt: int, started_seq: int, res: StepResult, policy: RetryPolicy) -> Draft:
    """The draft of an attempt that returned before its run was stopped: it keeps its real outcome
    (``StepSucceeded`` with its result, or ``StepFailed`` of its own kind), and is never retried."""
    if res.ok:
        return succeeded_draft(sid, attempt, started_seq, res)
    kind = res.kind if res.kind != "ok" else "error"
    error = res.error or f"step {sid!r} failed ({kind})"
    return failed_draft(sid, attempt, started_seq, kind, error, kind in policy.retry_on, worker=res.worker)


def interrupted_drafts(
    plan: Mapping[str, StepState], retry_policy: Callable[[str], RetryPolicy], now: datetime
) -> tuple[list[Draft], list[tuple[str, str]]]:
    """The ``StepFailed`` (kind ``interrupted``) of every attempt a crash left ``running``.

    Each is retryable and due ``now`` while the step's policy has attempts left. Returns the drafts
    and the ``(step id, error)`` of the steps with no attempts left (their failure policy applies).
    """
    drafts: list[Draft] = []
    given_up: list[tuple[str, str]] = []
    for sid, step in plan.items():
        if step.status != "running":
            continue
        again = step.attempts < retry_policy(sid).max_attempts
        error = (
            f"attempt {step.attempts} was interrupted (the process running it stopped before recording "
            "an outcome)" + ("" if again else "; no attempts left")
        )
        drafts.append(
            partial(StepFailed, step_id=sid, attempt=max(step.attempts, 1), kind="interrupted", retryable=True,
                    error=error, next_attempt_at=now if again else None)
        )  # fmt: skip
        if not again:
            given_up.append((sid, error))
    return drafts, given_up


def attempt_outcome(task: asyncio.Task[StepResult]) -> StepResult:
    """The ``StepResult`` of a finished attempt's task (an exception is classified into a kind)."""
    try:
        return task.result()
    except asyncio.CancelledError:
        return StepResult(ok=False, kind="cancelled", error="the attempt was cancelled")
    except Exception as e:
        return failed_result(e)


def failed_result(e: BaseException) -> StepResult:
    """The ``StepResult`` of an attempt that raised ``e`` (its kind from ``classify_error``)."""
    return StepResult(ok=False, kind=classify_error(e), error=f"{type(e).__name__}: {e}")


def outcome_cut_short(events: Sequence[Event], state: RunState) -> StepSucceeded | StepFailed | None:
    """The step outcome whose ``on_outcome`` hook a crash cut short, if any.

    ``Scheduler`` runs the hook as soon as an outcome is committed, before it writes anything else,
    so such an outcome ends the log (followed only by the ``StepSkipped`` committed with it). The
    outcomes the hook never sees give ``None``: an interrupted attempt, a step stopped by the
    deadline, and any outcome once a step has failed under ``abort``.

    Args:
        events: A run's log, in seq order.
        state: Its fold.
    """
    if any(s.status == "failed" and (s.on_failure or state.on_failure) == "abort" for s in state.plan.values()):
        return None
    last = next((e for e in reversed(events) if not isinstance(e, StepSkipped)), None)
    if isinstance(last, StepSucceeded):
        return last
    if isinstance(last, StepFailed) and last.kind not in ("interrupted", "deadline"):
        return last
    return None
