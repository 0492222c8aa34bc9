"""Rules a processor's new patch must follow on top of applying: the run keeps a plan.

``agentcore.core.fold.check_patch`` decides whether a patch applies; it also runs on stored events,
so it can never grow stricter without breaking the fold of logs recorded before (invariant 2).
These rules are checked only before a patch is recorded (``agentcore.roles.processor.process``):
a patch that breaks one is refused and fed back to the model, like any patch that does not apply.

- ``replace_plan`` may not leave the run with no plan at all (no steps, and no finished or running
  step kept): a model that wants to stop work marks steps ``skipped``.

Identifiers are not policed here: fact keys, question ids and step ids may hold any text a tool
returned (NUL, bidi controls, zero-width characters); every store keeps them and every view
shows them inert (``agentcore.cli.render``, the HTML view).
"""

from __future__ import annotations

from collections.abc import Sequence

from agentcore.core.fold import RunState
from agentcore.core.patches import PatchOp, ReplacePlan
from agentcore.core.state import KEPT_STATUSES
from agentcore.errors import PatchError

__all__ = ("check_new_patch",)


def check_new_patch(state: RunState, ops: Sequence[PatchOp]) -> None:
    """Refuse a new patch that breaks one of the module's rules (see the module docstring).

    Raises:
        PatchError: naming the op index, what is wrong and what to send instead.
    """
    for i, op in enumerate(ops):
        if isinstance(op, ReplacePlan) and not op.steps:
            if not any(s.status in KEPT_STATUSES for s in state.plan.values()):
                raise PatchError(
                    f"op {i} (replace_plan): the new plan has no steps, which would leave the run without a "
                    "plan; list the steps still to do, or mark steps that should not run with "
                    'set_step_status "skipped"',
                    op_index=i,
                    path="/plan",
                )
