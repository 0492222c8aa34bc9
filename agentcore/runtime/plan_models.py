"""The model turns of a plan run: the planner writing the plan, the processor revising it.

``PlanRunner`` calls ``write_plan`` when ``run`` is given no plan (and when ``resume`` finds a run
without one): every planner call is recorded as ``LLMCalled(role="planner")``, the plan as
``StatePatched(source="planner")``, or the run fails with ``RunFinished`` naming why. With
``revise=True`` it calls ``revise_after_step`` after each recorded step outcome: the processor is
shown the finished step and its calls and patch (``StatePatched`` / ``PatchRejected``) are recorded,
caused by the outcome's seq.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentcore.core.events import RunFinished, StatePatched
from agentcore.core.patches import PatchOp, ReplacePlan
from agentcore.core.plans import Plan
from agentcore.roles.planner import plan_with_attempts
from agentcore.roles.processor import ProcessorInput, process
from agentcore.runtime.log import RunLog

if TYPE_CHECKING:
    from agentcore.runtime.plan_runner import PlanRunner

__all__ = ("revise_after_step", "write_plan")


async def write_plan(runner: PlanRunner, log: RunLog, defaults: Plan | None) -> bool:
    """Ask ``runner.planner_model`` for a plan and record every call; ``False`` when the run had to
    fail (no valid plan, or steps without a tool and no controller model), recorded as ``RunFinished``.

    Args:
        runner: The plan runner (its planner model, tools, clock and ``max_planner_tries``).
        log: The run's log; the run's ``RunStarted`` is committed.
        defaults: A plan whose ``on_failure``, ``retry`` and ``max_parallel`` the new plan takes.
    """
    assert runner.planner_model is not None
    outcome = await plan_with_attempts(
        runner.planner_model, log.state.task, runner.tools, max_tries=runner.max_planner_tries, defaults=defaults,
        clock=runner.clock,
    )  # fmt: skip
    calls = log.add_attempts(
        role="planner", model=runner.planner_model.name, attempts=outcome.attempts, caused_by=log.last_seq
    )
    plan = outcome.value
    reason: str | None = None
    if plan is None:
        what = "planner model failed" if outcome.fatal is not None else "no valid plan"
        reason = f"planner: {what} after {len(outcome.attempts)} attempt(s): {outcome.attempts[-1].error}"
    elif runner.controller_model is None and any(not s.tool for s in plan.steps):
        reason = "planner: the plan has steps without a tool and this PlanRunner has no controller_model"
    if plan is None or reason is not None:
        log.add(RunFinished, status="failed", reason=reason, caused_by=calls[-1].seq)
        log.commit()
        return False
    ops: list[PatchOp] = [
        ReplacePlan(steps=plan.steps, on_failure=plan.on_failure, retry=plan.retry, max_parallel=plan.max_parallel)
    ]
    log.add(StatePatched, ops=tuple(ops), source="planner", caused_by=calls[-1].seq)
    log.commit()
    return True


async def revise_after_step(runner: PlanRunner, log: RunLog, step_id: str, source: int) -> None:
    """Show ``runner.processor_model`` a finished step (its outcome at seq ``source``) and record its
    calls and the patch (plan-and-revise). A step that is not finished, or no processor model: nothing."""
    state = log.state
    step = state.plan.get(step_id)
    model = runner.processor_model
    if step is None or step.status not in ("succeeded", "failed") or model is None:
        return
    outcome = await process(
        model,
        state,
        ProcessorInput.step_outcome(step),
        max_attempts=runner.max_patch_retries,
        clock=runner.clock,
        tools=runner.runner.names,
    )
    log.add_processor_outcome(outcome, model=model.name, caused_by=source, step_id=step_id)
    log.commit()
