"""The run loop: the one place that wires the store, the controller, the tools and the processor.

One agent step is a few batches, each committed in one ``store.append`` (``runtime.turns``): the
controller's turn, the tool results, and per result the processor's turn.

The run ends when the controller replies (``succeeded``), asks the user (``waiting_for_user``:
``answer`` continues it), runs out of budget, keeps giving unusable answers, or a model fails for
good. Budgets and failures end the run with status ``failed`` and a reason (``"budget: ..."``,
``"controller output invalid ..."``, ``"controller model failed: ..."``); ``cancelled`` is left for
runs stopped from outside. No model error escapes ``run``: it is recorded and the run is finished.

Resume (``resume``) folds the log and carries on. Tool calls with a recorded ``ToolFinished`` are
never run again. A call that was started but has no result (the process died during it) is run
again with the SAME idempotency key ``run_id/step_id-or-main/call_id``: delivery is at least once,
and tools with side effects should use the key to do their work once. A result (or user answer)
with no processor outcome yet is handed to the processor before the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from agentcore import event_loop
from agentcore.core.clock import Clock, SystemClock
from agentcore.core.events import (
    Event,
    PatchRejected,
    RunFinished,
    RunStarted,
    StatePatched,
    ToolCall,
    ToolFinished,
    ToolStarted,
    UserMessaged,
)
from agentcore.core.fold import RunState, fold
from agentcore.core.plans import Plan
from agentcore.errors import ConfigError, StorageUnavailable
from agentcore.models.base import ChatModel, ClosableChatModel, ToolSpec
from agentcore.models.prices import check_cost_budget, parse_prices, pricer
from agentcore.roles.controller import ASK_USER, ReplyValidator
from agentcore.roles.processor import ProcessorInput
from agentcore.roles.validators import not_a_prompt_echo
from agentcore.runtime.agent_settings import RECORDED_SETTINGS, budget_reason, check_settings, payload_chars_for
from agentcore.runtime.log import RunLog, open_run_log
from agentcore.runtime.redaction import RedactingArtifacts, redactor
from agentcore.runtime.run_result import RunResult
from agentcore.runtime.turns import controller_turn, processor_turn, run_calls
from agentcore.storage.artifacts import ArtifactStore
from agentcore.storage.base import EventStore, new_run_id
from agentcore.storage.memory import MemoryEventStore
from agentcore.tools.base import Tool, as_tool_spec
from agentcore.tools.runner import ToolRunner

__all__ = ("Agent", "RunResult")

T = TypeVar("T")


class Agent:
    """An agent: a controller model, a processor model, tools and an event store.

    Args:
        controller_model: Decides the next action from the compact state.
        processor_model: Turns each tool result into a state patch; defaults to
            ``controller_model``.
        tools: The tools the controller may call (``read_artifact`` is always added).
        runner: Runs the controller's tool calls instead of a ``ToolRunner`` built from ``tools``
            (replay passes one that answers from a trace; or pass your own ``top_k``/``clock``).
            Give ``tools`` or ``runner``, not both; the runner's ``payload_chars``, ``clock`` and
            artifact store apply as given (build it on ``store.artifacts``; the agent removes model
            keys from the artifacts of the runner it builds itself, not from yours).
        store: Where runs are recorded; a fresh ``MemoryEventStore`` by default.
        max_steps: Most controller decisions per run; then the run fails with a ``budget:`` reason.
        max_tokens: Most tokens (all roles) per run, checked before each controller turn; ``None``
            for no limit.
        max_output_retries: Attempts (the first included) the controller gets per turn to give a
            usable answer; each unusable one is sent back with its error. Then the run fails.
        max_patch_retries: Attempts (the first included) the processor gets per input to give a
            patch that applies; after the last one the input is recorded as rejected and the run
            goes on.
        clock: The ``Clock`` for event timestamps and, when the agent builds its runner, tool
            durations (``SystemClock`` by default; tests pass ``agentcore.testing.FakeClock``).
        payload_chars: Characters of each tool output the models see (the rest stays in the
            output's artifact); 2000 by default, or the given runner's.
        on_event: Called with every event once it is committed (for live progress).
        metadata: JSON-ready facts about the set-up recorded in ``RunStarted.config["metadata"]``
            (for example the repository a code-search agent works on), so tools like the CLI can
            rebuild the agent to resume or replay the run. Never put secrets here.
        prices: Your own prices, ``{model name: ModelPrice(input_mtok=..., output_mtok=...)}`` (or
            the same as ``{"input_mtok": x, "output_mtok": y}``; dollars per million tokens). Each
            ``LLMCalled`` records ``cost_usd`` from these, then from ``genai-prices``; ``None`` when
            neither knows the model.
        max_cost_usd: Most dollars (all roles) per run, checked before each controller turn; then
            the run fails with a ``budget:`` reason. Both models must have a known price.
        reply_validators: Checks ``(reply, state) -> reason | None`` a final reply must pass (see
            ``agentcore.roles.validators``; ``not_a_prompt_echo`` always applies). A refused reply
            goes back to the controller with the reason, within ``max_output_retries``; then the
            run fails with it.
        tracer_provider: An OpenTelemetry ``TracerProvider``: each run becomes one trace, its
            spans emitted as their events commit (see ``agentcore.export.otel``; needs the
            ``otel`` extra).
        trace_content: Put raw content (prompts, responses, tool payloads) in the spans too.

    Raises:
        ConfigError: a setting is invalid, a tool is named ``ask_user`` (reserved), both ``tools``
            and ``runner`` are given (or a ``payload_chars`` other than the runner's), or
            ``max_cost_usd`` is set for a model with no known price.
    """

    def __init__(
        self,
        controller_model: ChatModel,
        processor_model: ChatModel | None = None,
        tools: Sequence[Tool] = (),
        store: EventStore | None = None,
        *,
        max_steps: int = 20,
        max_tokens: int | None = None,
        max_output_retries: int = 3,
        max_patch_retries: int = 3,
        runner: ToolRunner | None = None,
        clock: Clock | None = None,
        payload_chars: int | None = None,
        on_event: Callable[[Event], None] | None = None,
        metadata: Mapping[str, Any] | None = None,
        prices: Mapping[str, Any] | None = None,
        max_cost_usd: float | None = None,
        reply_validators: Sequence[ReplyValidator] = (),
        tracer_provider: Any = None,
        trace_content: bool = False,
    ) -> None:
        payload_chars = payload_chars_for(payload_chars, tools, runner)
        check_settings(
            max_steps=max_steps, max_output_retries=max_output_retries, max_patch_retries=max_patch_retries,
            payload_chars=payload_chars, max_tokens=max_tokens, reply_validators=reply_validators,
            models=(("controller_model", controller_model), ("processor_model", processor_model)),
        )  # fmt: skip
        self.controller_model = controller_model
        self.processor_model = processor_model if processor_model is not None else controller_model
        self.store: EventStore = store if store is not None else MemoryEventStore()
        self.max_steps = max_steps
        self.max_tokens = max_tokens
        self.max_output_retries = max_output_retries
        self.max_patch_retries = max_patch_retries
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.payload_chars = payload_chars
        self.on_event = on_event
        self.metadata = dict(metadata or {})
        self.prices = parse_prices(prices)
        self.tracer_provider = tracer_provider
        self.trace_content = trace_content
        self.max_cost_usd = check_cost_budget(
            max_cost_usd, (self.controller_model.name, self.processor_model.name), self.prices
        )
        self.reply_validators: tuple[ReplyValidator, ...] = (not_a_prompt_echo, *reply_validators)
        self.redact = redactor((self.controller_model, self.processor_model))
        """Removes the models' secrets (API keys) from everything the run records."""
        artifacts: ArtifactStore = self.store.artifacts
        if self.redact is not None:
            artifacts = RedactingArtifacts(artifacts, self.redact)
        if runner is None:
            runner = ToolRunner(list(tools), artifacts, payload_chars=payload_chars, clock=self.clock)
        self.runner = runner
        self.specs: list[ToolSpec] = [as_tool_spec(s) for s in self.runner.specs()]
        if any(s.name == ASK_USER for s in self.specs):
            raise ConfigError(f"the tool name {ASK_USER!r} is reserved for asking the user; rename the tool")

    def __repr__(self) -> str:
        return (
            f"Agent(controller={self.controller_model.name!r}, processor={self.processor_model.name!r}, "
            f"tools={[s.name for s in self.specs]!r})"
        )

    def config(self) -> dict[str, Any]:
        """How runs are set up, as recorded in ``RunStarted.config``: names and budgets, no secrets."""
        return {
            "controller_model": self.controller_model.name,
            "processor_model": self.processor_model.name,
            "tools": [s.name for s in self.specs],
            "max_steps": self.max_steps,
            "max_tokens": self.max_tokens,
            "max_output_retries": self.max_output_retries,
            "max_patch_retries": self.max_patch_retries,
            "payload_chars": self.payload_chars,
            "metadata": self.metadata,
        } | self._cost_config()

    @staticmethod
    def recorded_settings(config: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``Agent`` that ``config()`` recorded (budgets, metadata, prices),
        read back from a ``RunStarted.config`` so a recorded run can be set up again."""
        return {k: config[k] for k in RECORDED_SETTINGS if k in config}

    def _cost_config(self) -> dict[str, Any]:
        """The cost settings, recorded only when set (older traces replay unchanged)."""
        out: dict[str, Any] = {}
        if self.max_cost_usd is not None:
            out["max_cost_usd"] = self.max_cost_usd
        if self.prices:
            out["prices"] = {model: price.to_json() for model, price in sorted(self.prices.items())}
        return out

    # -- public API ------------------------------------------------------------------------------

    async def run(self, task: str, *, run_id: str | None = None, plan: Plan | None = None) -> RunResult:
        """Start a run on ``task`` and drive it until it finishes or waits for the user.

        Raises:
            ConfigError: ``task`` is empty, or ``run_id`` is one no store takes (NUL, longer than
                ``storage.run_ids.MAX_RUN_ID_BYTES``); nothing was written.
            StorageUnavailable: the store is read-only.
            StoreError: the store failed (the log stays consistent; ``resume`` continues it).
        """
        if not isinstance(task, str) or not task.strip():
            raise ConfigError(f"task must be a non-empty string, got {task!r}")
        self._check_writable("start a run", "run")
        log = self._log(RunState(run_id=run_id or new_run_id()))
        log.add(RunStarted, task=task, plan=plan, config=self.config())
        log.start(task, created=self.clock.now())  # the run and its RunStarted in one transaction
        return await self._drive(log)

    async def resume(self, run_id: str) -> RunResult:
        """Continue a run from its log (after a crash, or in another process).

        A finished run (or one waiting for an answer) is returned as it is, and nothing is written
        (this works on a read-only store too). A run with no event (the process died between
        creating it and recording ``RunStarted``) is started with the task it was created with.

        Raises:
            RunNotFound: no such run.
            StorageUnavailable: the run would go on but the store is read-only; nothing was run.
        """
        log, events = self._open(run_id)
        if log.state.finished or log.state.status == "waiting_for_user":
            return RunResult.of(log.state)
        self._check_writable(f"resume run {run_id!r}", "resume")
        if not events:
            log.add(RunStarted, task=self.store.run(run_id).task, config=self.config())
            log.commit()
        await self._recover(log, events)
        return await self._drive(log)

    async def answer(self, run_id: str, text: str) -> RunResult:
        """Give the user's answer to a run waiting on a question, and continue the run.

        Raises:
            ConfigError: the run is not waiting for an answer, or ``text`` is empty.
            RunNotFound: no such run.
            StorageUnavailable: the store is read-only; nothing was run.
        """
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"the answer must be a non-empty string, got {text!r}")
        self._check_writable(f"answer run {run_id!r}", "answer")
        log, events = self._open(run_id)
        if log.state.status != "waiting_for_user":
            raise ConfigError(
                f"run {run_id!r} is not waiting for an answer (status {log.state.status!r}); "
                "answer only runs whose status is 'waiting_for_user'"
            )
        message = log.add(UserMessaged, text=text, question=log.state.waiting_on, caused_by=log.last_seq)
        log.commit()
        await self._recover(log, [*events, message])
        return await self._drive(log)

    def run_sync(self, task: str, *, run_id: str | None = None, plan: Plan | None = None) -> RunResult:
        """``run`` for code without an event loop (in a loop of its own, whose model connections
        are closed before it ends; the agent and its models can be used again)."""
        return self._sync(self.run(task, run_id=run_id, plan=plan), "run")

    def resume_sync(self, run_id: str) -> RunResult:
        """``resume`` for code without an event loop (see ``run_sync``)."""
        return self._sync(self.resume(run_id), "resume")

    def answer_sync(self, run_id: str, text: str) -> RunResult:
        """``answer`` for code without an event loop (see ``run_sync``)."""
        return self._sync(self.answer(run_id, text), "answer")

    async def aclose(self) -> None:
        """Close the connections the models opened in the running event loop.

        Calls ``aclose()`` of each model that has one (``OpenAIChatModel`` does). The models stay
        usable. The ``*_sync`` methods call this at the end of their own loop.
        """
        models = {id(m): m for m in (self.controller_model, self.processor_model)}
        for model in models.values():
            if isinstance(model, ClosableChatModel):
                await model.aclose()

    # -- the loop --------------------------------------------------------------------------------

    def _sync(self, coro: Coroutine[Any, Any, T], name: str) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return event_loop.run(self._closing_models(coro))
        coro.close()
        raise ConfigError(f"Agent.{name}_sync() was called inside a running event loop; use `await agent.{name}(...)`")

    async def _closing_models(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro``, then close the models' connections in this loop (before it closes)."""
        try:
            result = await coro
        except BaseException:
            with contextlib.suppress(Exception):  # the run's own error is the one to report
                await self.aclose()
            raise
        await self.aclose()
        return result

    def _check_writable(self, doing: str, method: str) -> None:
        """Refuse before anything runs when the store cannot record what would happen."""
        if self.store.read_only:
            raise StorageUnavailable(
                f"cannot {doing}: the store {self.store!r} is read-only, and tool calls and model "
                f"answers could not be recorded; nothing was run. Open it writable (without "
                f"read_only=True) to {method}."
            )

    def _log(self, state: RunState, events: Sequence[Event] = ()) -> RunLog:
        return open_run_log(
            self.store, state, events, clock=self.clock, on_event=self.on_event, price=pricer(self.prices),
            redact=self.redact, tracer_provider=self.tracer_provider, trace_content=self.trace_content,
        )  # fmt: skip

    def _open(self, run_id: str) -> tuple[RunLog, list[Event]]:
        self.store.run(run_id)  # RunNotFound with a clear message
        events = list(self.store.read(run_id))
        state = fold(events)
        state.run_id = run_id  # a fork's inherited events carry the parent's id
        return self._log(state, events), events

    async def _drive(self, log: RunLog) -> RunResult:
        while not log.state.finished and log.state.status != "waiting_for_user":
            reason = budget_reason(
                log.state, max_steps=self.max_steps, max_tokens=self.max_tokens, max_cost_usd=self.max_cost_usd
            )
            if reason is not None:
                log.add(RunFinished, status="failed", reason=reason, caused_by=log.last_seq)
                log.commit()
                break
            started = await self._controller_turn(log)
            if started:
                finished = await self._execute(log, started)
                for event in finished:
                    if log.state.finished:
                        break
                    await self._process_result(log, event, next(s.call for s in started if s.call.id == event.call_id))
        return RunResult.of(log.state)

    async def _controller_turn(self, log: RunLog) -> list[ToolStarted]:
        return await controller_turn(
            log, self.controller_model, self.specs, max_attempts=self.max_output_retries,
            reply_validators=self.reply_validators,
        )  # fmt: skip

    async def _execute(self, log: RunLog, started: Sequence[ToolStarted]) -> list[ToolFinished]:
        return await run_calls(log, self.runner, started)

    async def _process_result(self, log: RunLog, finished: ToolFinished, call: ToolCall | None) -> None:
        await self._process(log, finished.seq, ProcessorInput.tool_result(finished, call))

    async def _process(self, log: RunLog, source_seq: int, source: ProcessorInput) -> None:
        tools = [s.name for s in self.specs]  # the steps of a plan patch may name only these
        await processor_turn(log, self.processor_model, source_seq, source, max_attempts=self.max_patch_retries, tools=tools)

    async def _recover(self, log: RunLog, events: Sequence[Event]) -> None:
        """Finish what a crash interrupted: re-run started calls, process unprocessed inputs."""
        started: dict[str, ToolStarted] = {}
        handled: set[int] = set()
        inputs: list[ToolFinished | UserMessaged] = []
        for event in events:
            if isinstance(event, ToolStarted):
                started[event.call.id] = event
            elif isinstance(event, (StatePatched, PatchRejected)) and event.caused_by is not None:
                handled.add(event.caused_by)
            elif isinstance(event, ToolFinished) and event.step_id is None:
                inputs.append(event)
            elif isinstance(event, UserMessaged):
                inputs.append(event)
        pending = [started[call_id] for call_id in log.state.pending_calls if call_id in started]
        if pending:
            inputs.extend(await self._execute(log, pending))
        for event in sorted(inputs, key=lambda e: e.seq):
            if event.seq in handled or log.state.finished:
                continue
            if isinstance(event, UserMessaged):
                await self._process(log, event.seq, ProcessorInput.user_answer(event.text, event.question))
            else:
                call = started[event.call_id].call if event.call_id in started else None
                await self._process_result(log, event, call)
