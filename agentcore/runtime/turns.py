"""One agent step's turns, each written to the log as one batch (one ``store.append``).

1. ``controller_turn``: every ``LLMCalled`` of the controller's turn (unusable answers included,
   ``ok=False``), the ``Decided`` and a ``ToolStarted`` per decided call (or the ``RunFinished`` of a
   reply, or of a controller that failed);
2. ``run_calls``: one ``ToolFinished`` per call, in call-id order, each ``caused_by`` its
   ``ToolStarted``;
3. ``processor_turn``, per result: the processor's ``LLMCalled`` records (``caused_by`` the
   ``ToolFinished``), a ``PatchRejected`` per rejected patch and the ``StatePatched`` that applied
   (both ``caused_by`` the ``ToolFinished``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import partial

from agentcore.core.events import Decided, RunFinished, ToolFinished, ToolStarted
from agentcore.models.base import ChatModel, ToolSpec
from agentcore.roles.controller import ReplyValidator, decide_with_retries
from agentcore.roles.processor import ProcessorInput, process
from agentcore.runtime.log import RunLog
from agentcore.tools.base import call_idempotency_key
from agentcore.tools.runner import ToolRunner

__all__ = ("controller_turn", "processor_turn", "run_calls")


async def controller_turn(
    log: RunLog,
    model: ChatModel,
    specs: Sequence[ToolSpec],
    *,
    max_attempts: int,
    reply_validators: Sequence[ReplyValidator],
) -> list[ToolStarted]:
    """One controller turn, committed in one batch; returns the calls it started (none when the
    controller replied or failed: then the batch holds the ``RunFinished``)."""
    seen = log.state.last_seq
    outcome = await decide_with_retries(
        model, log.state, specs, max_attempts=max_attempts, reply_validators=reply_validators, clock=log.clock
    )
    llm = log.add_attempts(role="controller", model=model.name, attempts=outcome.attempts, caused_by=seen)[-1]
    decision = outcome.value
    if outcome.fatal is not None or decision is None:
        last = outcome.attempts[-1].error
        reason = (
            f"controller model failed: {last}"
            if outcome.fatal is not None
            else f"controller output invalid after {len(outcome.attempts)} attempts: {last}"
        )
        log.add(RunFinished, status="failed", reason=reason, caused_by=llm.seq)
        log.commit()
        return []
    decided = log.add(Decided, decision=decision, caused_by=llm.seq)
    if decision.kind == "reply":
        log.add(RunFinished, status="succeeded", reply=decision.reply, caused_by=decided.seq)
    started = [
        log.add(
            ToolStarted, call=call, idempotency_key=call_idempotency_key(log.run_id, call.id), caused_by=decided.seq
        )
        for call in decision.tool_calls
    ]
    log.commit()
    return started


async def run_calls(log: RunLog, runner: ToolRunner, started: Sequence[ToolStarted]) -> list[ToolFinished]:
    """Run started calls concurrently; their results are committed in one batch, by call id."""
    by_id = {s.call.id: s for s in started}
    keys = {s.call.id: s.idempotency_key for s in started}
    results = await runner.run_many([s.call for s in started], idempotency_keys=keys)  # sorted by call id
    finished = [
        log.add_draft(partial(r.to_event, caused_by=by_id[r.call_id].seq, step_id=by_id[r.call_id].step_id))
        for r in results
    ]
    log.commit()
    return finished


async def processor_turn(
    log: RunLog,
    model: ChatModel,
    source_seq: int,
    source: ProcessorInput,
    *,
    max_attempts: int,
    tools: Collection[str] | None = None,
) -> None:
    """The processor's turn for one input (recorded at ``source_seq``), committed in one batch; a
    processor model that failed for good finishes the run. ``tools``: the names plan steps may call."""
    outcome = await process(model, log.state, source, max_attempts=max_attempts, clock=log.clock, tools=tools)
    llm = log.add_processor_outcome(outcome, model=model.name, caused_by=source_seq)
    if outcome.fatal is not None:
        assert llm is not None
        reason = f"processor model failed: {outcome.attempts[-1].error}"
        log.add(RunFinished, status="failed", reason=reason, caused_by=llm.seq)
    log.commit()
