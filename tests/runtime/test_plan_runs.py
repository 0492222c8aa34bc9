"""Plan runs end to end: tool steps, agent steps as child runs, the planner, plan-and-revise."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import (
    LLMCalled,
    PatchRejected,
    RunFinished,
    RunStarted,
    StatePatched,
    StepFailed,
    StepSkipped,
    StepStarted,
    StepSucceeded,
)
from agentcore.core.plans import Plan, RetryPolicy, Step
from agentcore.errors import ConfigError, ModelUnavailable, ToolError
from agentcore.models.scripted import ScriptedChatModel, respond_json, say
from agentcore.runtime.plan_runner import PlanRunner, child_run_id
from agentcore.storage.base import EventStore
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing.clock import FakeClock
from agentcore.tools.base import Tool, tool


@pytest.fixture(params=["memory", "sqlite"])
def plan_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "memory":
        yield MemoryEventStore()
    else:
        s = SQLiteEventStore(tmp_path / "plans.db")
        try:
            yield s
        finally:
            s.close()


class Ops:
    """Tools that log every invocation (name and idempotency key) and can be told to fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.failures: dict[str, list[BaseException]] = {}

    def tools(self) -> list[Tool]:
        ops = self

        @tool
        async def provision(name: str, idempotency_key: str | None = None) -> str:
            """Do one operation step.

            Args:
                name: Which operation.
            """
            ops.calls.append((name, idempotency_key))
            queue = ops.failures.get(name)
            if queue:
                raise queue.pop(0)
            await asyncio.sleep(0)
            return f"{name}: ok\n" + "log line\n" * 5

        return [provision]

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def op(step_id: str, *after: str, **kw: Any) -> Step:
    return Step(
        id=step_id, description=f"do {step_id}", after=after, tool="provision", arguments={"name": step_id}, **kw
    )


DEPLOY = Plan(
    steps=(
        op("vm"),
        op("deps", "vm"),
        op("net", "vm"),
        op("deploy", "deps", "net"),
        op("monitor", "deploy"),
    ),
    max_parallel=4,
)


def events(store: EventStore, run_id: str) -> list[Any]:
    return list(store.read(run_id))


def test_a_tool_plan_runs_in_dependency_order_and_records_everything(plan_store: EventStore) -> None:
    ops = Ops()
    runner = PlanRunner(plan_store, tools=ops.tools())
    result = asyncio.run(runner.run("deploy the shop", DEPLOY, run_id="deploy-1"))
    assert result.status == "succeeded", result.reason
    log = events(plan_store, "deploy-1")
    assert isinstance(log[0], RunStarted) and log[0].config["runner"] == "plan"
    assert isinstance(log[-1], RunFinished) and log[-1].status == "succeeded"
    assert "monitor: ok" in (result.reply or "")
    starts = [e for e in log if isinstance(e, StepStarted)]
    assert [e.step_id for e in starts] == ["vm", "deps", "net", "deploy", "monitor"]
    assert starts[2].seq == starts[1].seq + 1  # deps and net started in one wave, in id order
    assert sorted(ops.calls) == sorted((s, f"deploy-1/{s}/1") for s in ("vm", "deps", "net", "deploy", "monitor"))
    done = {e.step_id: e for e in log if isinstance(e, StepSucceeded)}
    assert done["vm"].result is not None
    assert plan_store.artifacts.get_text(done["vm"].result.id).startswith("vm: ok\nlog line")
    assert done["vm"].payload.startswith("vm: ok")
    assert plan_store.state_at("deploy-1").to_json() == result.state.to_json()


class LinkDown(ConnectionError):
    """A connection error of the tool's own, whose message names no exception class."""


@pytest.mark.parametrize("exc", [ConnectionResetError("peer reset"), LinkDown("uplink is down")])
def test_a_crashing_tool_with_a_connection_error_is_retried(plan_store: EventStore, exc: Exception) -> None:
    ops = Ops()
    ops.failures["net"] = [exc]
    clock = FakeClock()
    runner = PlanRunner(plan_store, tools=ops.tools(), clock=clock)
    result = asyncio.run(runner.run("deploy", DEPLOY, run_id="r"))
    assert result.status == "succeeded", result.reason
    failed = [e for e in events(plan_store, "r") if isinstance(e, StepFailed)]
    assert [(f.step_id, f.kind, f.retryable) for f in failed] == [("net", "connection", True)]
    assert ("net", "r/net/2") in ops.calls
    assert clock.elapsed > 0  # the backoff took virtual time only


def test_a_tool_error_fails_the_step_at_once_and_skips_its_dependents(plan_store: EventStore) -> None:
    ops = Ops()
    ops.failures["deps"] = [ToolError("package mirror has no python3.12")]
    runner = PlanRunner(plan_store, tools=ops.tools(), clock=FakeClock())
    result = asyncio.run(runner.run("deploy", DEPLOY, run_id="r"))
    assert result.status == "failed"
    assert "'deps'" in (result.reason or "") and "python3.12" in (result.reason or "")
    log = events(plan_store, "r")
    skipped = [e.step_id for e in log if isinstance(e, StepSkipped)]
    assert skipped == ["deploy", "monitor"]
    assert ops.names().count("deps") == 1
    assert result.state.plan["net"].status == "succeeded"


def test_a_step_timeout_through_the_runner_is_kind_timeout() -> None:
    store = MemoryEventStore()
    gate = asyncio.Event()

    @tool(timeout=None)
    async def wait_forever(name: str) -> str:
        """Wait for a signal that never comes.

        Args:
            name: Label.
        """
        await gate.wait()
        return name

    plan = Plan(
        steps=(Step(id="w", tool="wait_forever", arguments={"name": "w"}, timeout_s=3),),
        retry=RetryPolicy(max_attempts=1),
    )
    result = asyncio.run(PlanRunner(store, tools=[wait_forever], clock=FakeClock()).run("t", plan, run_id="r"))
    assert result.status == "failed"
    fail = next(e for e in events(store, "r") if isinstance(e, StepFailed))
    assert fail.kind == "timeout" and "timeout of 3s" in fail.error


# ------------------------------------------------------------------------------------------
# agent steps


FACT = {"key": "vm-ip", "value": "10.0.0.5", "source": "vm"}


def test_a_description_step_runs_an_agent_as_a_child_run(plan_store: EventStore) -> None:
    ops = Ops()
    plan = Plan(steps=(op("vm"), Step(id="check", description="check the VM answers on port 22", after=("vm",))))
    controller = ScriptedChatModel([say("port 22 is open on web1")], name="ctrl")
    processor = ScriptedChatModel(
        [
            respond_json(
                {
                    "ops": [
                        {"op": "append_known_facts", "facts": [{"key": "vm-ip", "value": "10.0.0.5", "source": "vm"}]}
                    ]
                }
            ),
            respond_json({"ops": []}),
        ],
        name="proc",
    )
    runner = PlanRunner(
        plan_store, tools=ops.tools(), controller_model=controller, processor_model=processor, revise=True
    )
    with controller, processor:
        result = asyncio.run(runner.run("set up web1", plan, run_id="p"))
    assert result.status == "succeeded", result.reason
    child = child_run_id("p", "check", 1)
    assert child == "p.check.1"
    child_state = plan_store.state_at(child)
    assert child_state.status == "succeeded" and child_state.reply == "port 22 is open on web1"
    sub_task = plan_store.run(child).task
    assert "check the VM answers on port 22" in sub_task and "set up web1" in sub_task
    assert "vm-ip: 10.0.0.5" in sub_task  # the parent's known facts reach the sub-agent
    done = next(e for e in events(plan_store, "p") if isinstance(e, StepSucceeded) and e.step_id == "check")
    assert "port 22 is open" in done.payload and child in done.payload
    assert done.result is not None and plan_store.artifacts.get_json(done.result.id)["child_run_id"] == child
    revisions = [e for e in events(plan_store, "p") if isinstance(e, LLMCalled)]
    assert [(e.role, e.step_id) for e in revisions] == [("processor", "vm"), ("processor", "check")]
    assert result.state.known_facts["vm-ip"].value == "10.0.0.5"


def test_an_agent_step_whose_model_is_unavailable_is_retried_as_a_rate_limit() -> None:
    store = MemoryEventStore()
    controller = ScriptedChatModel([ModelUnavailable("429 after 5 attempts"), say("done on the second try")])
    plan = Plan(steps=(Step(id="think", description="think hard"),), retry=RetryPolicy(max_attempts=2, base_delay=1))
    runner = PlanRunner(store, controller_model=controller, clock=FakeClock())
    result = asyncio.run(runner.run("t", plan, run_id="r"))
    assert result.status == "succeeded", result.reason
    fail = next(e for e in events(store, "r") if isinstance(e, StepFailed))
    assert fail.kind == "rate_limit" and "r.think.1" in fail.error
    assert store.state_at("r.think.1").status == "failed"
    assert store.state_at("r.think.2").status == "succeeded"


# ------------------------------------------------------------------------------------------
# planner and plan-and-revise

GOOD = {
    "steps": [
        {"id": "vm", "description": "create the VM", "tool": "provision", "arguments": {"name": "vm"}},
        {"id": "deps", "description": "install", "after": ["vm"], "tool": "provision", "arguments": {"name": "deps"}},
    ]
}
CYCLE = {
    "steps": [
        {"id": "vm", "after": ["deps"], "tool": "provision", "arguments": {"name": "vm"}},
        {"id": "deps", "after": ["vm"], "tool": "provision", "arguments": {"name": "deps"}},
    ]
}


def test_a_planned_run_records_each_planner_call_and_the_plan(plan_store: EventStore) -> None:
    ops = Ops()
    planner = ScriptedChatModel([respond_json(CYCLE), respond_json(GOOD)], name="planner-model")
    runner = PlanRunner(plan_store, tools=ops.tools(), planner_model=planner)
    defaults = Plan(max_parallel=2, retry=RetryPolicy(max_attempts=7))
    with planner:
        result = asyncio.run(runner.run("deploy", run_id="planned", defaults=defaults))
    assert result.status == "succeeded", result.reason
    log = events(plan_store, "planned")
    assert isinstance(log[0], RunStarted) and log[0].plan is None
    calls = [e for e in log if isinstance(e, LLMCalled)]
    assert [(c.role, c.ok, c.attempt, c.model) for c in calls] == [
        ("planner", False, 1, "planner-model"),
        ("planner", True, 2, "planner-model"),
    ]
    assert "cycle" in (calls[0].error or "")
    assert calls[0].request_artifact is not None
    stored = plan_store.artifacts.get_json(calls[1].request_artifact.id)
    assert "cycle" in json.dumps(stored)  # the re-ask carried the error
    patched = next(e for e in log if isinstance(e, StatePatched))
    assert patched.source == "planner" and patched.caused_by == calls[1].seq
    assert ops.names() == ["vm", "deps"]
    assert result.state.max_parallel == 2 and result.state.retry.max_attempts == 7


def test_a_planner_that_never_gives_a_valid_plan_fails_the_run() -> None:
    store = MemoryEventStore()
    planner = ScriptedChatModel([respond_json(CYCLE), say("no idea")])
    runner = PlanRunner(store, tools=Ops().tools(), planner_model=planner, max_planner_tries=2)
    result = asyncio.run(runner.run("deploy", run_id="r"))
    assert result.status == "failed"
    assert (result.reason or "").startswith("planner: no valid plan after 2 attempt(s)")
    assert sum(isinstance(e, LLMCalled) for e in events(store, "r")) == 2


def test_plan_and_revise_replaces_pending_steps_and_keeps_finished_ones(plan_store: EventStore) -> None:
    ops = Ops()
    plan = Plan(steps=(op("survey"), op("old", "survey")))
    bad_revision = {"ops": [{"op": "replace_plan", "steps": [{"id": "x", "after": ["x"]}]}]}
    revision = {
        "ops": [
            {
                "op": "replace_plan",
                "steps": [
                    {"id": "survey", "description": "do survey"},
                    {"id": "fix", "after": ["survey"], "tool": "provision", "arguments": {"name": "fix"}},
                ],
            }
        ]
    }
    processor = ScriptedChatModel([respond_json(bad_revision), respond_json(revision), respond_json({"ops": []})])
    runner = PlanRunner(plan_store, tools=ops.tools(), processor_model=processor, revise=True)
    with processor:
        result = asyncio.run(runner.run("survey then fix", plan, run_id="rev"))
    assert result.status == "succeeded", result.reason
    assert ops.names() == ["survey", "fix"]  # survey ran once; "old" was dropped before it started
    assert list(result.state.plan) == ["survey", "fix"]
    assert result.state.plan["survey"].payload is not None  # kept with its result
    log = events(plan_store, "rev")
    rejected = [e for e in log if isinstance(e, PatchRejected)]
    assert len(rejected) == 1 and "depends on itself" in rejected[0].error
    assert "depends on itself" in (processor.requests[1].messages[-1].content or "")


# ------------------------------------------------------------------------------------------
# settings and finished runs


def test_bad_settings_are_refused_with_what_to_do() -> None:
    runner = PlanRunner(tools=Ops().tools())
    with pytest.raises(ConfigError, match="no plan given and no planner_model"):
        asyncio.run(runner.run("t"))
    with pytest.raises(ConfigError, match=r"'think' have no tool.*controller_model"):
        asyncio.run(runner.run("t", Plan(steps=(Step(id="think", description="ponder"),))))
    with pytest.raises(ConfigError, match="task must be a non-empty string"):
        asyncio.run(runner.run("  ", DEPLOY))
    with pytest.raises(ConfigError, match="revise=True needs a processor_model"):
        PlanRunner(revise=True)


def test_resuming_a_finished_run_changes_nothing() -> None:
    store = MemoryEventStore()
    ops = Ops()
    runner = PlanRunner(store, tools=ops.tools())
    first = asyncio.run(runner.run("deploy", DEPLOY, run_id="r"))
    before = store.last_seq("r")
    again = asyncio.run(runner.resume("r"))
    assert again.status == first.status == "succeeded"
    assert store.last_seq("r") == before
    assert len(ops.calls) == 5


@pytest.mark.parametrize(("recorded", "patched"), [(1, True), (0, False), (True, 1), ([1, 0], [True, False])])
def test_a_json_patch_turning_1_into_true_reaches_the_tool(
    plan_store: EventStore, recorded: Any, patched: Any
) -> None:
    # Python says True == 1; JSON (and the tool) must not: the revision changes the state and the call
    got: list[Any] = []

    @tool
    def flag(value: Any) -> str:
        """Record what arrives.

        Args:
            value: Any JSON value.
        """
        got.append(value)
        return "ok"

    plan = Plan(steps=(Step(id="first", tool="flag", arguments={"value": "x"}),
                       Step(id="then", after=("first",), tool="flag", arguments={"value": recorded})))  # fmt: skip
    revision = {"ops": [{"op": "json_patch", "patch": [
        {"op": "replace", "path": "/plan/then/arguments/value", "value": patched}]}]}  # fmt: skip
    processor = ScriptedChatModel([respond_json(revision), respond_json({"ops": []})])
    runner = PlanRunner(plan_store, tools=[flag], processor_model=processor, revise=True)
    with processor:
        result = asyncio.run(runner.run("flag twice", plan, run_id="flip"))
    assert result.status == "succeeded", result.reason
    assert json.dumps(got) == json.dumps(["x", patched])
    patches = [e for e in events(plan_store, "flip") if isinstance(e, StatePatched) and e.ops]
    assert len(patches) == 1
    stored = plan_store.state_at("flip").plan["then"].arguments["value"]
    assert json.dumps(stored) == json.dumps(patched)  # the fold of the log agrees
