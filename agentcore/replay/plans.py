"""Replay of a plan run: the ``PlanRunner`` again, with models and step outcomes answered from the trace.

- The planner (and, with ``revise``, the processor) are ``ReplayChatModel``s answering by request
  digest, so a planned run gets the same plan and the same revisions.
- Each step attempt is answered with the recorded outcome of the same step and attempt
  (``StepSucceeded`` with its payload and artifact, or ``StepFailed`` with its kind and error);
  with ``live_tools=True`` tool steps run the real tools instead. Agent steps are always answered
  from the trace: their sub-agents' events live in child runs that a trace of the plan run does
  not hold.
- A step attempt the trace did not record is a ``ReplayMismatch`` (noted, and the step fails).
- Waits are skipped (``SkippingClock``) unless tools run live: a retry's backoff of 30 s (or a
  day) replays at once, since the trace, not the wait, decides what the retry does; replays
  ignore wall-clock fields anyway.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from agentcore.core.clock import SystemClock
from agentcore.core.events import Event, LLMCalled, Role, StepFailed, StepSucceeded
from agentcore.core.plans import Plan
from agentcore.errors import ReplayMismatch
from agentcore.models.base import ChatModel, ChatRequest, ToolSpec, request_digest
from agentcore.replay.recorded import ReplaySetup, stub_tool
from agentcore.roles.planner import build_planner_request
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.scheduling.steps import StepResult, StepRun
from agentcore.storage.base import EventStore
from agentcore.storage.trace import Trace
from agentcore.tools.base import Tool

__all__ = ("SkippingClock", "plan_tools", "replay_plan_run")


class SkippingClock:
    """Real time that jumps over every wait: ``sleep(s)`` moves the clock ``s`` seconds on at once.

    A sleeper's wake time is the clock's reading when it went to sleep plus ``s``; the clock moves
    to the latest wake time any sleeper asked for. Suits a replay whose step outcomes come from
    the trace (nothing there really waits); not live tools, whose timeouts would fire at once.
    """

    def __init__(self) -> None:
        self._real = SystemClock()
        self._skipped = 0.0
        """Seconds the clock is ahead of real time."""

    def now(self) -> datetime:
        """Real UTC time plus the waits skipped so far."""
        return self._real.now() + timedelta(seconds=self._skipped)

    def monotonic(self) -> float:
        """Real monotonic seconds plus the waits skipped so far."""
        return self._real.monotonic() + self._skipped

    async def sleep(self, seconds: float) -> None:
        """Yield to the event loop once, then skip time to this sleeper's wake time (if not past it).

        A sleep cancelled during its yield (an attempt ended first) moves nothing."""
        target = self._skipped + max(0.0, seconds)
        await asyncio.sleep(0)
        self._skipped = max(self._skipped, target)

_GAVE_UP = re.compile(r" \(gave up after \d+ of \d+ attempts\)$")


class _ReplayPlanRunner(PlanRunner):
    """A ``PlanRunner`` whose step attempts are answered from recorded outcomes."""

    def __init__(
        self, store: EventStore, outcomes: dict[tuple[str, int], Event], mismatches: list[str], live_tools: bool,
        **options: Any,
    ) -> None:  # fmt: skip
        super().__init__(store, **options)
        self.outcomes = outcomes
        self.mismatches = mismatches
        self.live_tools = live_tools

    def _check_new_plan(self, plan: Plan) -> None:
        """Nothing: the recorded plan started the run then (an empty plan or a delay over a year
        recorded before those were refused replays as it ran)."""

    async def _execute(self, run: StepRun) -> StepResult:
        if self.live_tools and run.step.tool:
            return await super()._execute(run)
        recorded = self.outcomes.get((run.step.id, run.attempt))
        if isinstance(recorded, StepSucceeded):
            return StepResult(ok=True, payload=recorded.payload or "", result=recorded.result)
        if isinstance(recorded, StepFailed):
            # the scheduler adds its own "gave up" note to a final failure: give it the executor's words
            error = (
                _GAVE_UP.sub("", recorded.error)
                if recorded.retryable and recorded.next_attempt_at is None
                else recorded.error
            )
            return StepResult(ok=False, kind=recorded.kind, error=error)
        message = (
            f"step {run.step.id!r} attempt {run.attempt}: the trace records no outcome for it, so the plan run "
            "went another way (a different plan or retry)"
        )
        self.mismatches.append(message)
        raise ReplayMismatch(message)


def plan_tools(trace: Trace, names: Sequence[str]) -> list[Tool]:
    """Stand-ins for a plan run's tools: specs from its recorded requests, else bare names.

    Controller requests carry the specs as ``tools``; the planner shows them in its prompt, so they
    are read back from the first planner request and kept only when rebuilding that request gives
    the recorded digest (never a guess that could answer a different request).
    """
    specs: dict[str, ToolSpec] = {}
    for e in trace.events:
        if isinstance(e, LLMCalled) and e.request_artifact is not None:
            art = trace.artifacts.get(e.request_artifact.id)
            if art is None:
                continue
            request = ChatRequest.model_validate_json(art.data)
            for spec in request.tools:
                specs.setdefault(spec.name, spec)
            if e.role == "planner" and e.attempt == 1 and not specs:
                specs.update(_planner_specs(request, e.request_digest, names))
    return [stub_tool(specs[n]) if n in specs else stub_tool(None, name=n) for n in names]


_PLANNER_TOOL = re.compile(r"^- ([^:\n]+): (.*?)\n  parameters: (\{[^\n]*\})$", re.M | re.S)


def _planner_specs(request: ChatRequest, digest: str, names: Sequence[str]) -> dict[str, ToolSpec]:
    task = request.inputs.get("task") if isinstance(request.inputs, dict) else None
    text = request.messages[1].content if len(request.messages) > 1 else None
    if not isinstance(task, str) or not isinstance(text, str):
        return {}
    specs: dict[str, ToolSpec] = {}
    for name, description, params in _PLANNER_TOOL.findall(text.split("# Tools a step may call directly\n", 1)[-1]):
        try:
            specs[name] = ToolSpec(name=name, description=description, parameters=json.loads(params))
        except ValueError:
            return {}
    rebuilt = build_planner_request(task, [stub_tool(specs[n]) for n in names if n in specs])
    return specs if request_digest(rebuilt) == digest else {}


async def replay_plan_run(setup: ReplaySetup) -> None:
    """Re-run the plan run of ``setup.trace`` as ``setup.run_id`` in ``setup.store`` (see the module docstring)."""
    trace, started, tools = setup.trace, setup.started, setup.tools
    config = started.run_config()
    names = [n for n in config.tools if n not in ("read_artifact", "ask_user")]

    def model(role: Role) -> ChatModel | None:
        return setup.model(role) if config.model_name(role) else None

    outcomes: dict[tuple[str, int], Event] = {
        (e.step_id, e.attempt): e for e in trace.events if isinstance(e, (StepSucceeded, StepFailed))
    }
    extra = config.model_extra or {}
    seed = extra.get("seed", 0)
    runner = _ReplayPlanRunner(
        setup.store,
        outcomes,
        setup.recorded.mismatches,
        setup.live_tools,
        tools=list(tools) if tools is not None else plan_tools(trace, names),
        controller_model=model("controller"),
        processor_model=model("processor"),
        planner_model=model("planner"),
        revise=bool(extra.get("revise")),
        seed=seed if isinstance(seed, (int, str)) else 0,
        clock=None if setup.live_tools else SkippingClock(),
    )
    try:
        await runner.run(started.task, started.plan, run_id=setup.run_id)
    except ReplayMismatch:
        pass  # noted in `recorded.mismatches`; the events written so far are compared
