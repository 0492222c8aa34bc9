"""Replay: re-run an agent against a trace, with models (and tools) answered from the recording.

Invariant 7: re-running the agent code against a recorded trace produces the same events, ignoring
wall-clock fields (``at``, ``latency_ms``, ``duration_ms``) and the run id. ``replay_trace`` checks
it event by event and reports the first divergence.

- Models and tools are answered from the trace by ``agentcore.replay.recorded`` (``RecordedModels``,
  ``ReplayChatModel``, ``ReplayToolRunner``): a request or tool call the trace did not record raises
  ``ReplayMismatch``; with ``live_tools=True`` the real tools run instead.
- Counterfactual replay: ``live={"processor": model}`` lets one role talk to a live model while the
  other roles replay by digest, falling back to the recorded order once the run has moved away from
  the recording (a different processor makes different facts, so the controller's prompts change).
  The report then carries the RFC 6902 diff between the recorded and the new final state.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar

from agentcore import event_loop
from agentcore.core.events import Event, RunStarted, UserMessaged
from agentcore.core.fold import diff_states, fold
from agentcore.core.text import clip
from agentcore.errors import ConfigError, ReplayMismatch, RunNotFound
from agentcore.models.base import ChatModel
from agentcore.replay.recorded import (
    RecordedModels,
    ReplayChatModel,
    ReplaySetup,
    ReplayToolRunner,
    recorded_tools,
)
from agentcore.storage.base import EventStore, new_run_id
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.run_ids import run_id_problem
from agentcore.storage.trace import Trace, read_trace
from agentcore.storage.trace.records import RESERVED_RUN_IDS
from agentcore.tools.base import Tool
from agentcore.tools.runner import ToolRunner

__all__ = (
    "IGNORED_FIELDS",
    "AgentFactory",
    "Divergence",
    "RecordedModels",
    "ReplayChatModel",
    "ReplayReport",
    "ReplayToolRunner",
    "compare_events",
    "recorded_tools",
    "replay_trace",
    "replay_trace_async",
)

IGNORED_FIELDS = frozenset({"at", "latency_ms", "duration_ms", "next_attempt_at", "run_id", "worker"})
"""Event fields a replay may change: wall-clock times (a retry's due time included), the run id and
the worker that ran a plan step (a replay runs every step in one process)."""


class AgentFactory(Protocol):
    """Builds the agent to replay: called like ``Agent(controller_model, processor_model, tools, store, runner=)``.

    When the tools are answered from the trace, ``tools`` is empty and ``runner`` is the
    ``ReplayToolRunner`` to pass on to ``Agent(runner=...)``; with live tools, ``runner`` is ``None``
    and ``tools`` are the real tools. ``agentcore.runtime.agent.Agent`` itself fits; pass your own
    factory (a function or a ``functools.partial(Agent, max_steps=...)``) to replay with your
    agent's settings.
    """

    def __call__(
        self,
        controller_model: ChatModel,
        processor_model: ChatModel,
        tools: Sequence[Tool],
        store: EventStore,
        /,
        *,
        runner: ToolRunner | None,
    ) -> Any: ...


# --------------------------------------------------------------------------------------------
# comparing runs


@dataclass(frozen=True, kw_only=True)
class Divergence:
    """The first event where the replay differs from the recording."""

    seq: int
    expected: dict[str, Any] | None
    """The recorded event (``None``: the replay wrote more events than the recording)."""
    actual: dict[str, Any] | None
    """The replayed event (``None``: the replay stopped before this seq)."""
    fields: tuple[str, ...] = ()
    """The fields that differ (when both events exist)."""

    def describe(self) -> str:
        """A few lines saying where and how the replay diverged."""
        if self.actual is None:
            assert self.expected is not None
            kind = self.expected.get("type")
            return f"seq {self.seq}: the replay stopped; the recording has {kind} here: {_short(self.expected)}"
        if self.expected is None:
            return f"seq {self.seq}: the replay wrote an extra {self.actual.get('type')}: {_short(self.actual)}"
        lines = [f"seq {self.seq}: {self.expected.get('type')} differs in {', '.join(self.fields)}"]
        for name in self.fields:
            lines.append(f"  {name}: expected {_short(self.expected.get(name))}")
            lines.append(f"  {' ' * len(name)}  actual   {_short(self.actual.get(name))}")
        return "\n".join(lines)


def _short(value: Any, limit: int = 300) -> str:
    return clip(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str), limit, mark="ellipsis")


def _normal(event: Event, run_ids: set[str]) -> dict[str, Any]:
    body = event.model_dump(mode="json", exclude=set(IGNORED_FIELDS))
    key = body.get("idempotency_key")
    if isinstance(key, str):
        for rid in run_ids:
            key = key.replace(rid, "<run>")
        body["idempotency_key"] = key
    return body


def compare_events(expected: Sequence[Event], actual: Sequence[Event]) -> Divergence | None:
    """The first divergence between two runs' events, ignoring ``IGNORED_FIELDS``; ``None`` if equal.

    Run ids inside idempotency keys are ignored too, so a replay under a new run id can match.
    """
    ids = {e.run_id for e in expected} | {e.run_id for e in actual}
    for i in range(max(len(expected), len(actual))):
        a = _normal(expected[i], ids) if i < len(expected) else None
        b = _normal(actual[i], ids) if i < len(actual) else None
        if a != b:
            fields = (
                tuple(sorted(k for k in (a or {}).keys() | (b or {}).keys() if (a or {}).get(k) != (b or {}).get(k)))
                if a and b
                else ()
            )
            return Divergence(seq=i + 1, expected=a, actual=b, fields=fields)
    return None


@dataclass(frozen=True, kw_only=True)
class ReplayReport:
    """What a replay found."""

    original_run_id: str
    run_id: str
    """The replay's own run (in ``store``)."""
    store: EventStore = field(repr=False)
    status: str
    expected_events: int
    actual_events: int
    divergence: Divergence | None
    mismatch: str | None
    """The first ``ReplayMismatch`` (a request or tool call the trace did not record)."""
    unused: list[dict[str, Any]]
    """Recorded model calls the replay never asked for (live roles excluded)."""
    loose_matches: list[dict[str, Any]]
    """Calls answered by recorded order because their digest was not recorded (counterfactual)."""
    live_roles: tuple[str, ...]
    state_diff: list[dict[str, Any]]
    """RFC 6902 from the recorded final state to the replay's final state (run id ignored)."""

    @property
    def ok(self) -> bool:
        """Whether the replay matched the recording exactly and used every recorded response."""
        return self.divergence is None and self.mismatch is None and not self.unused

    def describe(self) -> str:
        """A human summary: divergence, mismatch, unused responses, state changes."""
        if self.ok:
            return f"replay of {self.original_run_id} matches: {self.actual_events} events, status {self.status}"
        lines = [f"replay of {self.original_run_id} (as {self.run_id}) diverged; status {self.status}"]
        if self.divergence is not None:
            lines.append(self.divergence.describe())
        if self.mismatch is not None:
            lines.append(f"mismatch: {self.mismatch}")
        if self.unused:
            shown = ", ".join(f"seq {u['seq']} ({u['role']})" for u in self.unused[:10])
            lines.append(f"{len(self.unused)} recorded responses never used: {shown}")
        if self.state_diff:
            lines.append(
                f"final state differs by {len(self.state_diff)} RFC 6902 operations: {_short(self.state_diff, 600)}"
            )
        return "\n".join(lines)


def _default_factory(config: Mapping[str, Any]) -> AgentFactory:
    from agentcore.runtime.agent import Agent

    settings = Agent.recorded_settings(config)  # the recorded budgets and metadata

    def build(
        controller: ChatModel,
        processor: ChatModel,
        tools: Sequence[Tool],
        store: EventStore,
        /,
        *,
        runner: ToolRunner | None,
    ) -> Any:
        return Agent(controller, processor, tools, store, runner=runner, **settings)

    return build


async def replay_trace_async(
    trace: str | Path | Trace,
    agent_factory: AgentFactory | None = None,
    *,
    tools: Sequence[Tool] | None = None,
    live_tools: bool = False,
    live: Mapping[str, ChatModel] | None = None,
    store: EventStore | None = None,
) -> ReplayReport:
    """Re-run the agent of a trace offline and report how its events compare with the recording.

    ``replay_trace`` does the same from synchronous code (outside a running event loop).

    The original run is not touched: the replay is a NEW run in ``store`` (a fresh memory store by
    default), under the recorded run id when it is free there.

    Args:
        trace: The trace file (or a ``Trace`` from ``read_trace``).
        agent_factory: Builds the agent, called ``factory(controller_model, processor_model, tools,
            store, runner=)`` like ``Agent`` (see ``AgentFactory``). Default: ``Agent`` with the
            budgets recorded in ``RunStarted``.
        tools: The agent's tools (their specs go into the controller's requests). Default: stand-ins
            rebuilt from the recorded requests, so a trace replays with no code of the original app.
        live_tools: Run the tools for real (needs ``tools``) instead of answering from the trace.
        live: Roles answered by a live model instead of the recording (counterfactual replay), e.g.
            ``{"processor": new_model}``; the other roles then fall back to the recorded order when
            a request's digest was not recorded.
        store: Where the replay run is written.

    Returns:
        A ``ReplayReport``; ``report.ok`` is true when the events match and every recorded
        response was used.

    Raises:
        TraceError: the trace file is not sound.
        ConfigError: bad arguments (unknown live role, ``live_tools`` without ``tools``).
    """
    t = trace if isinstance(trace, Trace) else read_trace(trace)
    live = dict(live or {})
    started = _check_replay(t, live, agent_factory, live_tools=live_tools, tools=tools)
    target, run_id = _replay_store(t, trace_run_id(t), store)
    setup = ReplaySetup(
        trace=t, started=started, run_id=run_id, store=target, recorded=RecordedModels(t.events), live=live,
        tools=tools, live_tools=live_tools,
    )  # fmt: skip
    if started.run_config().runner == "plan":
        from agentcore.replay.plans import replay_plan_run

        await replay_plan_run(setup)
    else:
        await _replay_agent_run(setup, agent_factory or _default_factory(started.config))
    return _report(setup)


P = ParamSpec("P")
T = TypeVar("T")


def _blocking(fn: Callable[P, Coroutine[Any, Any, T]], name: str) -> Callable[P, T]:
    """``fn`` run to completion from synchronous code (refused inside a running event loop)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return event_loop.run(fn(*args, **kwargs))
        raise ConfigError(f"{name}() was called inside a running event loop; use `await {fn.__name__}(...)`")

    run.__name__ = run.__qualname__ = name
    return run


replay_trace = _blocking(replay_trace_async, "replay_trace")
"""``replay_trace_async`` from synchronous code: the same arguments, the ``ReplayReport`` returned."""


async def _replay_agent_run(setup: ReplaySetup, factory: AgentFactory) -> None:
    """Re-run an agent run: each role's model live or recorded, tools real or answered from the trace,
    the agent's questions answered with the recorded user messages."""
    t, run_id = setup.trace, setup.run_id
    tools = list(setup.tools) if setup.tools is not None else recorded_tools(t)
    runner = None
    if not setup.live_tools:
        payload_chars = setup.started.run_config().payload_chars or 2000
        runner = ReplayToolRunner(
            tools, setup.store.artifacts, t.events, payload_chars=payload_chars, mismatches=setup.recorded.mismatches
        )
    agent = factory(
        setup.model("controller"),
        setup.model("processor"),
        [] if runner is not None else tools,
        setup.store,
        runner=runner,
    )
    answers = [e for e in t.events if isinstance(e, UserMessaged)]
    try:
        result = await agent.run(setup.started.task, run_id=run_id, plan=setup.started.plan)
        while result.status == "waiting_for_user" and answers:
            result = await agent.answer(run_id, answers.pop(0).text)
    except ReplayMismatch:
        pass  # recorded in `recorded.mismatches`; the events written so far are compared below


def _check_replay(
    t: Trace,
    live: Mapping[str, ChatModel],
    agent_factory: AgentFactory | None,
    *,
    live_tools: bool,
    tools: Sequence[Tool] | None,
) -> RunStarted:
    """The trace's ``RunStarted``, once the trace and the arguments make a replay possible.

    Raises:
        ConfigError: no ``run_started`` event, an ``agent_factory`` for a plan run, an unknown live
            role, or ``live_tools`` without ``tools``.
    """
    started = next((e for e in t.events if isinstance(e, RunStarted)), None)
    if started is None:
        raise ConfigError("the trace has no run_started event; there is nothing to replay")
    if agent_factory is not None and started.run_config().runner == "plan":
        raise ConfigError("agent_factory replays Agent runs; this trace records a PlanRunner run")
    if unknown := sorted(set(live) - {"controller", "processor", "planner"}):
        raise ConfigError(f"live roles must be controller, processor or planner; got {', '.join(unknown)}")
    if live_tools and tools is None:
        raise ConfigError("live_tools=True needs the real tools: pass tools=[...] (the agent's tools)")
    return started


def trace_run_id(t: Trace) -> str:
    """The id of the run a trace records: the header's, else its first event's.

    A trace of a fork holds its parent's events up to the fork point, whose ``run_id`` is the
    parent's: the header names the run that was exported.
    """
    recorded = t.run.get("id")
    if isinstance(recorded, str) and recorded not in RESERVED_RUN_IDS and run_id_problem(recorded) is None:
        return recorded
    return t.events[0].run_id


def _replay_store(t: Trace, original: str, store: EventStore | None) -> tuple[EventStore, str]:
    """The store the replay writes to (a fresh memory store by default), holding the trace's
    artifacts, and the replay's run id: the recorded one when it is free there, else a new one."""
    target: EventStore = store if store is not None else MemoryEventStore()
    # recorded tool outputs must be readable in the replay's store
    target.artifacts.put_many((art.data, art.media_type) for art in t.artifacts.values())
    try:
        target.run(original)
    except RunNotFound:
        return target, original
    return target, new_run_id()


def _report(setup: ReplaySetup) -> ReplayReport:
    t, recorded, live = setup.trace, setup.recorded, setup.live
    actual = list(setup.store.read(setup.run_id))
    before = fold(t.events)
    after = fold(actual)
    after.run_id = before.run_id
    return ReplayReport(
        original_run_id=trace_run_id(t),
        run_id=setup.run_id,
        store=setup.store,
        status=after.status,
        expected_events=len(t.events),
        actual_events=len(actual),
        divergence=compare_events(t.events, actual),
        mismatch=recorded.mismatches[0] if recorded.mismatches else None,
        unused=recorded.unused([r for r in ("controller", "processor", "planner") if r not in live]),
        loose_matches=list(recorded.loose),
        live_roles=tuple(sorted(live)),
        state_diff=diff_states(before, after),
    )
