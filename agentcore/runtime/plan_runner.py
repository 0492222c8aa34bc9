"""Plan runs: a plan (given, or from the planner model) executed by the scheduler, on the log.

``PlanRunner`` wires an ``EventStore``, the ``Scheduler`` and two executors:

- a step with a ``tool`` runs that one call through the ``ToolRunner`` (raw output stored as an
  artifact, the short payload kept on ``StepSucceeded``), with the attempt's idempotency key
  ``run_id/step_id/attempt`` passed to the tool;
- a step with only a description is carried out by an agent sub-loop (``agentcore.runtime.agent.Agent``:
  controller, tools, processor) on a sub-task made of the run's task, the step's description and
  the run's known facts. The sub-loop is recorded as a **child run** with id
  ``"{run_id}.{step_id}.{attempt}"``, where ``.`` and ``%`` inside the run id and the step id are
  written ``%2E`` and ``%25`` so two different (run, step, attempt) never share a child (see
  ``child_run_id``; the agent writes whole runs of its own, so its events do not go into the
  parent's log); the parent's ``StepSucceeded`` names the child run in its payload and
  its ``result`` artifact (``{"child_run_id", "status", "reply", "facts"}``).

A run's events: ``RunStarted`` (with the plan, or without one and then each planner call as
``LLMCalled(role="planner")`` and the plan as ``StatePatched(source="planner")``), the scheduler's
``Step*`` events, with ``revise=True`` after each finished step the processor's ``LLMCalled`` and
``StatePatched`` / ``PatchRejected`` (plan-and-revise: its ``replace_plan`` keeps finished steps;
the scheduler picks the new plan up), then ``RunFinished``. A processor that fails during a
revision is recorded and the run goes on with its plan.

``resume(run_id)`` folds the log and carries on: succeeded steps never run again; an attempt that
was running when the process died is recorded as ``interrupted`` and tried again under its retry
policy with a new idempotency key; a step waiting out a backoff waits until its recorded
``next_attempt_at``; with ``revise=True``, a revision that the crash cut short (the log ends with
a step's outcome, before the processor's events) is done first. A deadline (``deadline_s``)
limits one call of ``run`` or ``resume``.

The planner's and the processor's turns are ``agentcore.runtime.plan_models``; description-only
steps are ``agentcore.runtime.plan_agent_steps``.

A run is created together with its ``RunStarted`` (and so its plan) in one transaction. A run with
no event at all (made by ``store.create_run`` alone, or by an older agentcore) is refused by
``resume`` (``RunNotStarted``, a ``RunNotFound``), and ``run`` with its id and task starts it:
``try: resume(id) except RunNotFound: run(task, plan, run_id=id)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from agentcore import event_loop
from agentcore.core.clock import Clock, SystemClock
from agentcore.core.events import (
    Event,
    RunFinished,
    RunStarted,
    StepFailed,
    StepStarted,
    StepSucceeded,
    ToolCall,
)
from agentcore.core.fold import RunState, fold
from agentcore.core.plans import MAX_DELAY_S, Plan, check_deadline, long_delays, retry_policies
from agentcore.errors import ConcurrencyError, ConfigError, RunNotFound, RunNotStarted
from agentcore.models.base import ChatModel
from agentcore.models.prices import parse_prices, pricer
from agentcore.roles.turn import clip
from agentcore.runtime.agent import RunResult
from agentcore.runtime.log import RunLog, open_run_log
from agentcore.runtime.plan_agent_steps import (
    child_run_id,
    legacy_child_run_id,
    reply_of,
    run_agent_step,
)
from agentcore.runtime.plan_models import revise_after_step, write_plan
from agentcore.runtime.redaction import RedactingArtifacts, redactor
from agentcore.scheduling.scheduler import (
    Draft,
    Scheduler,
    StepExecutor,
    StepResult,
    StepRun,
    classify_result_kind,
    outcome_cut_short,
)
from agentcore.storage.artifacts import ArtifactStore
from agentcore.storage.base import EventStore, new_run_id
from agentcore.storage.memory import MemoryEventStore
from agentcore.tools.base import Tool
from agentcore.tools.runner import ToolRunner

__all__ = ("PlanRunner", "child_run_id", "legacy_child_run_id")


class _LogSink:
    """The scheduler's ``EventSink`` over the runtime's ``RunLog``: one commit per batch."""

    def __init__(self, log: RunLog) -> None:
        self.log = log
        self.outcome_seq: dict[str, int] = {}

    @property
    def state(self) -> RunState:
        return self.log.state

    def emit(self, drafts: Sequence[Draft]) -> int:
        first = self.log.last_seq + 1
        for draft in drafts:
            event = self.log.add_draft(draft)
            if isinstance(event, (StepSucceeded, StepFailed)):
                self.outcome_seq[event.step_id] = event.seq
        self.log.commit()
        return first


class PlanRunner:
    """Runs plans on an event store, with retries, failure policies, revision and resume.

    Args:
        store: Where runs are recorded (a fresh ``MemoryEventStore`` by default).
        tools: Tools for ``tool`` steps and for the sub-agents of description-only steps.
        controller_model: Drives the sub-agent of each description-only step.
        processor_model: The sub-agents' processor (defaults to ``controller_model``) and, with
            ``revise``, the model that may revise the plan after each step.
        planner_model: Writes the plan when ``run`` is given none.
        revise: After each finished step, let the processor patch the state (plan-and-revise).
        clock: Time for timestamps, backoff, timeouts and deadlines (``SystemClock`` by default).
        seed: Seeds the backoff jitter.
        max_planner_tries: Attempts the planner gets to produce a valid plan.
        max_agent_steps: ``max_steps`` of each sub-agent.
        max_patch_retries: Attempts the processor gets per revision.
        payload_chars: Bound on tool payloads.
        on_event: Called with every committed event of the run and of its child runs.
        prices: Your own prices by model name (``{model: ModelPrice}``), used before
            ``genai-prices`` to record each LLM call's ``cost_usd``.
        tracer_provider: An OpenTelemetry ``TracerProvider``: the plan run and each child run
            become traces as their events commit (``otel`` extra).

    Raises:
        ConfigError: a setting is invalid.
    """

    def __init__(
        self,
        store: EventStore | None = None,
        *,
        tools: Sequence[Tool] = (),
        controller_model: ChatModel | None = None,
        processor_model: ChatModel | None = None,
        planner_model: ChatModel | None = None,
        revise: bool = False,
        clock: Clock | None = None,
        seed: int | str = 0,
        max_planner_tries: int = 3,
        max_agent_steps: int = 10,
        max_patch_retries: int = 3,
        payload_chars: int = 2000,
        on_event: Callable[[Event], None] | None = None,
        prices: Mapping[str, Any] | None = None,
        tracer_provider: Any = None,
    ) -> None:
        for name, value in (
            ("max_planner_tries", max_planner_tries),
            ("max_agent_steps", max_agent_steps),
            ("max_patch_retries", max_patch_retries),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if revise and processor_model is None and controller_model is None:
            raise ConfigError("revise=True needs a processor_model (or a controller_model) to revise the plan")
        self.store: EventStore = store if store is not None else MemoryEventStore()
        self.tools = tuple(tools)
        self.controller_model = controller_model
        self.processor_model = processor_model or controller_model
        self.planner_model = planner_model
        self.redact = redactor((controller_model, processor_model, planner_model))
        """Removes the models' secrets (API keys) from everything the run records."""
        artifacts: ArtifactStore = self.store.artifacts
        if self.redact is not None:
            artifacts = RedactingArtifacts(artifacts, self.redact)
        self.runner = ToolRunner(self.tools, artifacts, payload_chars=payload_chars, clock=clock)
        self.revise = revise
        self.clock = clock or SystemClock()
        self.seed = seed
        self.max_planner_tries = max_planner_tries
        self.max_agent_steps = max_agent_steps
        self.max_patch_retries = max_patch_retries
        self.payload_chars = payload_chars
        self.on_event = on_event
        self.prices = parse_prices(prices)
        self.price = pricer(self.prices)
        self.tracer_provider = tracer_provider
        self.step_dispatcher: StepExecutor | None = None
        """Where the scheduler sends each ready step attempt: ``None`` runs it here
        (``execute_step``); a worker sets it to queue attempts for any worker (see ``runtime.worker``)."""

    def __repr__(self) -> str:
        return f"PlanRunner(tools={list(self.runner.names)!r}, revise={self.revise})"

    def config(self) -> dict[str, Any]:
        """How runs are set up, as recorded in ``RunStarted.config``: names only, no secrets."""
        return {
            "runner": "plan",
            "tools": list(self.runner.names),
            "controller_model": getattr(self.controller_model, "name", None),
            "processor_model": getattr(self.processor_model, "name", None),
            "planner_model": getattr(self.planner_model, "name", None),
            "revise": self.revise,
            "seed": self.seed,
        }

    # -- public API ------------------------------------------------------------------------------

    async def run(
        self,
        task: str,
        plan: Plan | None = None,
        *,
        run_id: str | None = None,
        deadline_s: float | None = None,
        defaults: Plan | None = None,
    ) -> RunResult:
        """Run ``plan`` (or a plan the planner model writes for ``task``) to the end.

        Args:
            task: What the run is for.
            plan: The plan; ``None`` asks ``planner_model`` for one.
            run_id: Id of the new run (generated by default). A run of this id and task that has
                no event yet (its process died before recording ``RunStarted``) is started.
            deadline_s: Time limit of this call; the run fails when it passes.
            defaults: For a planned run: a plan whose ``on_failure``, ``retry`` and
                ``max_parallel`` the planner's plan takes.

        Raises:
            ConfigError: empty task, a plan with no steps, no plan and no planner model, description-only steps
                and no controller model, a retry delay over ``MAX_DELAY_S``, or a ``deadline_s`` that is not a number of seconds
                in (0, ``MAX_DELAY_S``]; nothing was written.
            ConcurrencyError: a run ``run_id`` has already started, or exists for another task.
            StoreError: the store failed (the log stays consistent; ``resume`` continues it).
        """
        if not isinstance(task, str) or not task.strip():
            raise ConfigError(f"task must be a non-empty string, got {task!r}")
        if plan is None and self.planner_model is None:
            raise ConfigError("no plan given and no planner_model to write one: pass plan=... or planner_model=...")
        if plan is not None:
            self._check_new_plan(plan)
            self._check_executable(plan.steps)
        check_deadline(deadline_s)
        existing = self._existing_empty_run(task, run_id)
        log = self._log(RunState(run_id=existing or run_id or new_run_id()))
        log.add(RunStarted, task=task, plan=plan, config=self.config())
        if existing:  # RunStarted goes in with expected_seq=0: if two processes start it, one wins
            log.commit()
        else:  # the run and its RunStarted (with the plan) in one transaction: no window without them
            log.start(task, created=self.clock.now())
        if plan is None and not await write_plan(self, log, defaults):
            return RunResult.of(log.state)
        return await self._drive(log, {}, deadline_s, {})

    async def resume(self, run_id: str, *, deadline_s: float | None = None) -> RunResult:
        """Continue a plan run from its log; a finished run is returned as it is.

        Raises:
            ConfigError: ``deadline_s`` is not a number of seconds in (0, ``MAX_DELAY_S``]; nothing was written.
            RunNotStarted: the run has no event: it never started (start it with ``run``).
            RunNotFound: no such run.
        """
        check_deadline(deadline_s)
        info = self.store.run(run_id)
        events = list(self.store.read(run_id))
        if not events:
            raise RunNotStarted(
                f"run {run_id!r} never started: the process that created it stopped before recording "
                "RunStarted, so its plan is not in the log and nothing ran. Start it with "
                f"PlanRunner.run({clip(info.task, 60)!r}, plan, run_id={run_id!r}) (same task; the plan it was given)"
            )
        state = fold(events)
        state.run_id = run_id
        if state.finished:
            return RunResult.of(state)
        not_before: dict[str, datetime] = {}
        attempts: dict[str, int] = {}
        for e in events:
            if isinstance(e, StepFailed) and e.next_attempt_at is not None:
                not_before[e.step_id] = e.next_attempt_at
            elif isinstance(e, StepStarted):
                not_before.pop(e.step_id, None)
                attempts[e.step_id] = max(attempts.get(e.step_id, 0), e.attempt)
        log = self._log(state, events)
        if not state.plan:
            if self.planner_model is None:
                log.add(RunFinished, status="failed", reason="the run has no plan and no planner_model to write one")
                log.commit()
                return RunResult.of(log.state)
            if not await write_plan(self, log, None):
                return RunResult.of(log.state)
        cut_short = outcome_cut_short(events, log.state) if self.revise else None
        if cut_short is not None:
            await revise_after_step(self, log, cut_short.step_id, cut_short.seq)
        return await self._drive(log, not_before, deadline_s, attempts)

    def run_sync(self, task: str, plan: Plan | None = None, **kwargs: Any) -> RunResult:
        """``run`` for code without an event loop (on ``agentcore.event_loop.run``: sub-millisecond timers)."""
        return event_loop.run(self.run(task, plan, **kwargs))

    def resume_sync(self, run_id: str, **kwargs: Any) -> RunResult:
        """``resume`` for code without an event loop (on ``agentcore.event_loop.run``)."""
        return event_loop.run(self.resume(run_id, **kwargs))

    # -- internals -------------------------------------------------------------------------------

    def _log(self, state: RunState, events: Sequence[Event] = ()) -> RunLog:
        return open_run_log(
            self.store, state, events, clock=self.clock, on_event=self.on_event, price=self.price,
            redact=self.redact, tracer_provider=self.tracer_provider,
        )  # fmt: skip

    def _existing_empty_run(self, task: str, run_id: str | None) -> str | None:
        """``run_id`` when it names a run with no event (left by older versions or by hand) to take over.

        Raises:
            ConcurrencyError: the run exists and has started, or is for another task.
        """
        if run_id is None:
            return None
        try:
            info = self.store.run(run_id)
        except RunNotFound:
            return None
        if info.last_seq > 0 or info.task != task:
            why = "has started: resume it" if info.last_seq else f"is for another task, {clip(info.task, 80)!r}"
            raise ConcurrencyError(f"run {info.id!r} already exists and {why}; or choose another run_id")
        return info.id

    def _check_new_plan(self, plan: Plan) -> None:
        """Refuse a plan given to ``run`` that this version would not start: no steps, or a retry delay
        over ``MAX_DELAY_S``. A replay overrides this: a recorded run is re-run with its plan as it was."""
        if not plan.steps:
            raise ConfigError(
                "the plan has no steps, so the run would have nothing to do; give at least one Step, "
                "or pass plan=None with a planner_model to have one written"
            )
        if too_long := long_delays(retry_policies(plan.retry, plan.steps)):
            raise ConfigError(
                f"retry delays over {MAX_DELAY_S:g} seconds (one year): {', '.join(too_long)}; "
                "give shorter delays (RetryPolicy base_delay and max_delay)"
            )

    def _check_executable(self, steps: Sequence[Any]) -> None:
        agent_steps = [s.id for s in steps if not s.tool]
        if agent_steps and self.controller_model is None:
            raise ConfigError(
                f"steps {', '.join(map(repr, agent_steps))} have no tool, so an agent must carry them out, but "
                "this PlanRunner has no controller_model; pass controller_model=... or give each step a tool"
            )

    async def _drive(
        self,
        log: RunLog,
        not_before: Mapping[str, datetime],
        deadline_s: float | None,
        attempts_seen: Mapping[str, int],
    ) -> RunResult:
        sink = _LogSink(log)

        async def revise(step_id: str) -> None:
            await revise_after_step(self, log, step_id, sink.outcome_seq.get(step_id, log.last_seq))

        scheduler = Scheduler(
            sink,
            self._executor(),
            clock=self.clock,
            seed=self.seed,
            deadline_s=deadline_s,
            on_outcome=revise if self.revise else None,
            not_before=not_before,
            attempts_seen=attempts_seen,
        )
        result = await scheduler.run()
        log.add(
            RunFinished, status=result.status, reason=result.reason, reply=reply_of(log.state), caused_by=log.last_seq
        )
        log.commit()
        return RunResult.of(log.state)

    def _executor(self) -> StepExecutor:
        """What the scheduler calls per attempt: ``execute_step`` itself when no dispatcher is set
        (one coroutine layer fewer on every step's path), else ``_execute``."""
        if self.step_dispatcher is None and type(self)._execute is PlanRunner._execute:
            return self.execute_step
        return self._execute

    async def _execute(self, run: StepRun) -> StepResult:
        if self.step_dispatcher is not None:
            return await self.step_dispatcher(run)
        return await self.execute_step(run)

    async def execute_step(self, run: StepRun) -> StepResult:
        """Run one attempt of a step in this process: its tool call (with the attempt's idempotency
        key) or, for a description-only step, its sub-agent's child run."""
        if run.step.tool:
            call = ToolCall(id=run.step.id, name=run.step.tool, arguments=dict(run.step.arguments))
            res = await self.runner.run(call, idempotency_key=run.idempotency_key)
            if res.ok:
                return StepResult(ok=True, payload=res.payload, result=res.artifact)
            return StepResult(
                ok=False, kind=classify_result_kind(res.kind, res.exception), error=res.error or res.payload
            )
        return await self._run_agent_step(run)

    async def _run_agent_step(self, run: StepRun) -> StepResult:
        return await run_agent_step(self, run)
