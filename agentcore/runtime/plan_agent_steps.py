"""Description-only plan steps: a sub-agent carries out the step, recorded as a child run.

The child run of one attempt is ``child_run_id(run_id, step_id, attempt)``; its sub-task is made of
the run's task, the step's description, the newest known facts and the finished steps' results
(``sub_task``). A crash between creating the child and recording the step's outcome is resumed
from the child's log (``existing_child``). The models are watched so that a failure is classified
by the model error that caused it (rate limit, timeout, ...), not by the text of the reply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentcore.core.fold import RunState
from agentcore.errors import ModelError, ModelOutputError, RunNotFound
from agentcore.models.base import ChatModel, ChatRequest, ChatResponse, Redacting
from agentcore.roles.facts import fact_line, newest_facts
from agentcore.roles.turn import clip
from agentcore.runtime.agent import Agent
from agentcore.scheduling.scheduler import StepResult, StepRun, classify_error
from agentcore.storage.base import EventStore

if TYPE_CHECKING:
    from agentcore.runtime.plan_runner import PlanRunner

MAX_FACTS_IN_SUBTASK = 30
MAX_REPLY_CHARS = 1500


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace(".", "%2E").replace("\x00", "%00")  # no store takes a NUL in an id


def child_run_id(run_id: str, step_id: str, attempt: int) -> str:
    """The id of the child run that carries out one attempt of a description-only step.

    ``"{run_id}.{step_id}.{attempt}"`` with ``%`` and ``.`` inside ``run_id`` and ``step_id``
    percent-encoded (``%25``, ``%2E``): the dots that remain separate exactly three parts, so the
    id names one (run, step, attempt) and no other. Run ``nightly`` step ``report.daily`` gets
    ``nightly.report%2Edaily.1``; run ``nightly.report`` step ``daily`` gets
    ``nightly%2Ereport.daily.1``. Ids without dots or ``%`` read as before (``p.check.1``); a NUL
    (which no store takes in a run id) is ``%00``.
    """
    return f"{_escape(run_id)}.{_escape(step_id)}.{attempt}"


def legacy_child_run_id(run_id: str, step_id: str, attempt: int) -> str:
    """The child id older agentcore versions used (plain dots, ambiguous); read only to resume their runs."""
    return f"{run_id}.{step_id}.{attempt}"


class _Watched:
    """A chat model whose last model error (not an output error) is kept, to classify failures."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.name = model.name
        self.error: ModelError | None = None

    async def complete(self, request: ChatRequest) -> ChatResponse:
        try:
            return await self.model.complete(request)
        except ModelError as e:
            if not isinstance(e, ModelOutputError):
                self.error = e
            raise


class _WatchedRedacting(_Watched):
    """A ``_Watched`` model that holds a secret: the child run redacts it like the parent."""

    def redact(self, text: str) -> str:
        assert isinstance(self.model, Redacting)
        return self.model.redact(text)


def watched(model: ChatModel) -> _Watched:
    return _WatchedRedacting(model) if isinstance(model, Redacting) else _Watched(model)


async def run_agent_step(self: PlanRunner, run: StepRun) -> StepResult:
    """Carry out a description-only step with a sub-agent recorded as the attempt's child run."""
    if self.controller_model is None:
        return StepResult(
            ok=False,
            kind="validation",
            error=f"step {run.step.id!r} has no tool and this PlanRunner has no controller_model to run an agent",
        )
    controller = watched(self.controller_model)
    processor = watched(self.processor_model or self.controller_model)
    agent = Agent(
        controller,
        processor,
        self.tools,
        self.store,
        max_steps=self.max_agent_steps,
        max_patch_retries=self.max_patch_retries,
        clock=self.clock,
        payload_chars=self.payload_chars,
        on_event=self.on_event,
        prices=self.prices,
        tracer_provider=self.tracer_provider,
    )
    child = existing_child(self.store, run)
    if child is None:
        child = child_run_id(run.run_id, run.step.id, run.attempt)
        result = await agent.run(sub_task(run), run_id=child)
    else:  # a crash between creating the child run and recording the step's outcome
        result = await agent.resume(child)
    if result.status == "succeeded":
        facts = {k: f.value for k, f in result.state.known_facts.items()}
        body = {"child_run_id": child, "status": result.status, "reply": result.reply, "facts": facts}
        ref = self.store.artifacts.put_json(body)
        return StepResult(
            ok=True, payload=f"{clip(result.reply or '', MAX_REPLY_CHARS)} [child run {child}]", result=ref
        )
    cause = controller.error or processor.error
    if cause is not None:
        kind = classify_error(cause)
    else:
        kind = "needs_user" if result.status == "waiting_for_user" else "agent_failed"
    return StepResult(ok=False, kind=kind, error=f"sub-agent run {child} ended {result.status}: {result.reason}")


def existing_child(store: EventStore, run: StepRun) -> str | None:
    """The child run an earlier process started for this attempt, if any.

    A run recorded by an older agentcore has its child under the legacy (plain-dot) id; it is
    taken only when its sub-task names this step, so a colliding run's child never is.
    """
    child = child_run_id(run.run_id, run.step.id, run.attempt)
    legacy = legacy_child_run_id(run.run_id, run.step.id, run.attempt)
    for candidate in dict.fromkeys((child, legacy) if "\x00" not in legacy else (child,)):  # never a NUL id
        try:
            info = store.run(candidate)
        except RunNotFound:
            continue
        if candidate == child or f"# Your step: {run.step.id}\n" in info.task:
            return candidate
    return None


def sub_task(run: StepRun) -> str:
    state = run.state
    lines = [
        f"You carry out one step of a larger task.\n\n# Overall task\n{clip(state.task, 4000)}",
        f"# Your step: {run.step.id}\n{run.step.description or '(no description)'}",
    ]
    if state.known_facts:
        newest = newest_facts(state, MAX_FACTS_IN_SUBTASK)
        more = len(state.known_facts) - len(newest)
        facts = [fact_line(f, key_chars=150, value_chars=300) for f in newest]
        head = "# Known so far" + (f" (newest {len(newest)}; {more} older not shown)" if more else "")
        lines.append(head + "\n" + "\n".join(facts))
    done = [s for s in state.plan.values() if s.status == "succeeded" and s.payload]
    if done:
        lines.append(
            "# Results of finished steps\n" + "\n".join(f"- {s.id}: {clip(s.payload or '', 300)}" for s in done[-10:])
        )
    lines.append("Do only this step, then reply with its result in a few sentences.")
    # a fact or a tool's output may hold NUL, a run's task may not (PostgreSQL's text cannot): shown
    return "\n\n".join(lines).replace("\x00", "\\u0000")


def reply_of(state: RunState) -> str | None:
    """The payloads of the plan's last steps (those nothing depends on), when they succeeded."""
    needed = {dep for s in state.plan.values() for dep in s.after}
    leaves = [s for sid, s in state.plan.items() if sid not in needed and s.status == "succeeded"]
    if not leaves:
        return None
    return clip("\n".join(f"{s.id}: {s.payload or 'done'}" for s in leaves), MAX_REPLY_CHARS)
