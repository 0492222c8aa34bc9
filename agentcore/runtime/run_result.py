"""``RunResult``: where a run stands when ``Agent`` or ``PlanRunner`` hands control back."""

from __future__ import annotations

from dataclasses import dataclass, field

from agentcore.core.events import RunStatus
from agentcore.core.fold import RunState

__all__ = ("RunResult",)


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """Where a run stands after ``run``, ``resume`` or ``answer`` returned."""

    run_id: str
    status: RunStatus
    """``succeeded``, ``failed``, ``cancelled`` or ``waiting_for_user``."""
    reply: str | None
    """The final reply, when the run succeeded."""
    reason: str | None
    """Why the run failed (or the question it waits on)."""
    state: RunState = field(repr=False)
    """The state: the fold of the run's whole log."""

    @classmethod
    def of(cls, state: RunState) -> RunResult:
        """The result a state stands for (``reason`` is the pending question while waiting)."""
        reason = state.reason if state.status != "waiting_for_user" else state.waiting_on
        return cls(run_id=state.run_id, status=state.status, reply=state.reply, reason=reason, state=state)
