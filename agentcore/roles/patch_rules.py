"""Rules a processor's new patch must follow on top of applying: the run keeps a plan of known tools.

``agentcore.core.fold.check_patch`` decides whether a patch applies; it also runs on stored events,
so it can never grow stricter without breaking the fold of logs recorded before (invariant 2).
These rules are checked only before a patch is recorded (``agentcore.roles.processor.process``):
a patch that breaks one is refused and fed back to the model, like any patch that does not apply.

- ``replace_plan`` may not leave the run with no plan at all (no steps, and no finished or running
  step kept): a model that wants to stop work marks steps ``skipped``.
- ``replace_plan`` may not give a retry delay over ``MAX_DELAY_S`` (one year); stored plans with
  one still fold (``RetryPolicy.delay`` caps the wait).
- When the caller says which tools exist, a new or changed step may only name one of them (a
  step naming a tool that does not exist would fail when it runs, after the model could fix it).

Identifiers are not policed here: fact keys, question ids and step ids may hold any text a tool
returned (NUL, bidi controls, zero-width characters); every store keeps them and every view
shows them inert (``agentcore.cli.render``, the HTML view).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from agentcore.core.fold import RunState
from agentcore.core.patches import PatchOp, ReplacePlan
from agentcore.core.plans import MAX_DELAY_S, long_delays, retry_policies
from agentcore.core.state import KEPT_STATUSES
from agentcore.errors import PatchError

__all__ = ("check_new_patch",)


def _check_step_tools(i: int, op: ReplacePlan, state: RunState, tools: Collection[str]) -> None:
    for step in op.steps:
        old = state.plan.get(step.id)
        if step.tool is None or step.tool in tools or (old is not None and old.tool == step.tool):
            continue
        choices = ", ".join(sorted(tools)) or "none (leave tool out: an agent carries the step out)"
        raise PatchError(
            f"op {i} (replace_plan): step {step.id[:100]!r} names unknown tool {step.tool[:100]!r}; "
            f"tools: {choices}. Name one of these, or leave tool out",
            op_index=i,
            path="/plan",
        )


def check_new_patch(state: RunState, ops: Sequence[PatchOp], tools: Collection[str] | None = None) -> None:
    """Refuse a new patch that breaks one of the module's rules (see the module docstring).

    Args:
        state: The state the patch would apply to.
        ops: The patch.
        tools: The names of the tools steps may call; ``None`` skips that rule.

    Raises:
        PatchError: naming the op index, what is wrong and what to send instead.
    """
    for i, op in enumerate(ops):
        if isinstance(op, ReplacePlan):
            if too_long := long_delays(retry_policies(op.retry, op.steps)):
                raise PatchError(
                    f"op {i} (replace_plan): retry delays over {MAX_DELAY_S:g} seconds (one year): "
                    f"{', '.join(too_long)}; give shorter delays, or leave retry out",
                    op_index=i,
                    path="/plan",
                )
        if isinstance(op, ReplacePlan) and tools is not None:
            _check_step_tools(i, op, state, tools)
        if isinstance(op, ReplacePlan) and not op.steps:
            if not any(s.status in KEPT_STATUSES for s in state.plan.values()):
                raise PatchError(
                    f"op {i} (replace_plan): the new plan has no steps, which would leave the run without a "
                    "plan; list the steps still to do, or mark steps that should not run with "
                    'set_step_status "skipped"',
                    op_index=i,
                    path="/plan",
                )
