"""Replay: golden traces reproduce exactly, divergences are found at the right seq, counterfactuals."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import agentcore.roles.controller as controller_module
import agentcore.roles.processor as processor_module
from agentcore.core.events import LLMCalled, ToolCall
from agentcore.errors import ConfigError, ModelOutputError, ModelUnavailable, ReplayMismatch
from agentcore.models.base import ChatModel
from agentcore.models.openai import OpenAIChatModel
from agentcore.replay.recorded import RecordedModels, ReplayToolRunner
from agentcore.replay.replayer import compare_events, replay_trace
from agentcore.runtime.agent import Agent
from agentcore.storage.base import EventStore
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.trace import export_run, read_trace
from agentcore.testing import (
    CONTROLLER_USAGE,
    ScriptedChatModel,
    assert_replays,
    call,
    demo_agent,
    lookup_tool,
    say,
)
from agentcore.tools.base import Tool
from agentcore.tools.runner import ToolRunner
from tests.support.openai_server import OpenAIServer, json_answer

TRACES = Path(__file__).resolve().parents[2] / "traces"
BASIC = TRACES / "basic.jsonl"
TABLE = {"alpha": "Paris has 2.1 million people", "beta": "Lyon has 0.5 million", "gamma": "Nice: 0.34 million"}


def first_seq(path: Path, type_: str, **fields: Any) -> int:
    return next(
        e.seq for e in read_trace(path).events if e.type == type_ and all(getattr(e, k) == v for k, v in fields.items())
    )


def record(tmp_path: Path, controller: ChatModel | None = None, run_id: str = "r1") -> Path:
    store = MemoryEventStore()
    asyncio.run(demo_agent(TABLE, store=store, controller=controller).run("Look up every key", run_id=run_id))
    path = tmp_path / f"{run_id}.jsonl"
    export_run(store, run_id, path)
    return path


@pytest.mark.parametrize("name", ["basic", "recovery", "ask_user"])
def test_golden_traces_replay_offline(name: str) -> None:
    path = TRACES / f"{name}.jsonl"
    report = assert_replays(path)  # models and tools from the trace, tools rebuilt from recorded specs
    assert report.expected_events == report.actual_events == len(read_trace(path).events)
    assert report.status == "succeeded" and report.unused == [] and report.state_diff == []


def test_replay_with_the_real_tools_and_a_custom_factory_matches(tmp_path: Path) -> None:
    path = record(tmp_path)
    built: list[Agent] = []

    def factory(
        c: ChatModel, p: ChatModel, tools: Sequence[Tool], store: EventStore, *, runner: ToolRunner | None
    ) -> Agent:
        built.append(Agent(c, p, tools, store, runner=runner, max_steps=len(TABLE) + 1))
        return built[-1]

    report = replay_trace(path, factory, tools=[lookup_tool(TABLE)], live_tools=True)
    assert report.ok, report.describe()
    assert not isinstance(built[0].runner, ReplayToolRunner)  # the tools really ran


def test_replay_hands_the_recorded_tool_runner_to_the_factory(tmp_path: Path) -> None:
    path = record(tmp_path)
    got: list[tuple[list[str], ToolRunner | None]] = []

    def factory(
        c: ChatModel, p: ChatModel, tools: Sequence[Tool], store: EventStore, *, runner: ToolRunner | None
    ) -> Agent:
        got.append(([t.name for t in tools], runner))
        return Agent(c, p, tools, store, runner=runner, max_steps=len(TABLE) + 1)

    report = replay_trace(path, factory)  # tools answered from the trace
    assert report.ok, report.describe()
    (names, runner), = got
    assert names == [] and isinstance(runner, ReplayToolRunner)
    assert runner.names == ("lookup", "read_artifact") and len(runner.answered) == len(TABLE)


def test_replay_into_the_original_store_uses_a_new_run_and_leaves_the_original_alone(tmp_path: Path) -> None:
    store = MemoryEventStore()
    asyncio.run(demo_agent(TABLE, store=store).run("Look up every key", run_id="orig"))
    path = tmp_path / "orig.jsonl"
    export_run(store, "orig", path)
    before = [e.model_dump_json() for e in store.read("orig")]
    report = replay_trace(path, store=store)
    assert report.ok, report.describe()  # idempotency keys differ only by the run id, which is ignored
    assert report.run_id != "orig" and report.store is store
    assert [e.model_dump_json() for e in store.read("orig")] == before
    keys = [e.idempotency_key for e in store.read(report.run_id) if e.type == "tool_started"]
    assert keys and all(k.startswith(report.run_id + "/") for k in keys)


def test_changed_processor_prompt_diverges_at_the_first_processor_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processor_module, "load_prompt", lambda name: "You are a processor. (reworded)")
    report = replay_trace(BASIC)
    seq = first_seq(BASIC, "llm_called", role="processor")
    assert not report.ok and report.divergence is not None
    assert report.divergence.seq == seq == 6
    assert report.divergence.actual is None and report.divergence.expected["role"] == "processor"
    assert report.mismatch is not None
    assert f"processor call after seq {seq - 1}: no recorded response for request sha256:" in report.mismatch
    assert f"next unused processor call is seq {seq}" in report.mismatch and "re-record the trace" in report.mismatch


def test_changed_controller_prompt_fails_assert_replays_at_seq_2(monkeypatch: pytest.MonkeyPatch) -> None:
    original = controller_module.load_prompt
    monkeypatch.setattr(controller_module, "load_prompt", lambda name: original(name) + "\nBe brief.")
    with pytest.raises(AssertionError) as info:
        assert_replays(BASIC)
    text = str(info.value)
    assert "seq 2: the replay stopped; the recording has llm_called here" in text
    assert "controller call after seq 1: no recorded response" in text


def test_changed_tool_output_diverges_at_its_tool_finished(tmp_path: Path) -> None:
    path = record(tmp_path)
    changed = dict(TABLE, beta="Lyon has 0.52 million")
    report = replay_trace(path, tools=[lookup_tool(changed)], live_tools=True)
    seq = first_seq(path, "tool_finished", call_id="d2_call_1")
    assert report.divergence is not None and report.divergence.seq == seq == 11
    assert report.divergence.fields == ("artifact", "payload")
    assert report.divergence.actual is not None and report.divergence.actual["payload"] == "Lyon has 0.52 million"
    # the processor then sees a request the trace never recorded
    assert report.mismatch is not None and f"after seq {seq}" in report.mismatch


def test_changed_scripted_response_diverges_at_its_llm_call(tmp_path: Path) -> None:
    path = record(tmp_path)
    script = [call("lookup", key=k).model_copy(update={"usage": CONTROLLER_USAGE}) for k in TABLE]
    script.append(say("A different final answer.", usage=CONTROLLER_USAGE))
    live = ScriptedChatModel(script, name="demo-controller")
    report = replay_trace(path, live={"controller": live})
    last_call = max(e.seq for e in read_trace(path).events if isinstance(e, LLMCalled) and e.role == "controller")
    assert report.divergence is not None and report.divergence.seq == last_call
    assert report.divergence.fields == ("response",)
    assert report.divergence.actual is not None
    assert report.divergence.actual["response"]["content"] == "A different final answer."
    assert report.unused == []  # the live role's recorded calls are not counted as unused
    assert report.state_diff == [{"op": "replace", "path": "/reply", "value": "A different final answer."}]


def test_unused_recorded_responses_are_reported(tmp_path: Path) -> None:
    path = record(tmp_path)

    report = replay_trace(path, functools.partial(Agent, max_steps=2))
    assert report.status == "failed" and not report.ok
    assert report.divergence is not None and report.divergence.seq == 1
    assert report.divergence.fields == ("config",)  # max_steps is part of the recorded setup
    calls = [e for e in read_trace(path).events if isinstance(e, LLMCalled)]
    assert [u["seq"] for u in report.unused] == [e.seq for e in calls[4:]]
    assert {u["role"] for u in report.unused} == {"controller", "processor"}
    assert "recorded responses never used" in report.describe()


def test_counterfactual_processor_on_a_local_openai_server() -> None:
    def shout(body: Any) -> Any:
        text = body["messages"][-1]["content"]
        key = json.loads(text.split("arguments: ", 1)[1].split("\n", 1)[0])["key"]
        payload = text.split("payload:\n", 1)[1]
        return json_answer({"ops": [{"op": "append_known_facts", "facts": [{"key": key, "value": payload.upper()}]}]})

    with OpenAIServer(handler=shout) as server:
        live = OpenAIChatModel("local-processor", base_url=server.base_url)
        report = replay_trace(BASIC, live={"processor": live})
        assert len(server.completion_requests) == 3  # one processor call per tool result, all live
    assert report.status == "succeeded" and report.live_roles == ("processor",)
    changed = {op["path"]: op["value"] for op in report.state_diff}
    assert changed["/known_facts/alpha/value"] == "PARIS HAS 2.1 MILLION PEOPLE"
    assert changed["/known_facts/gamma/value"] == "NICE: 0.34 MILLION"
    assert "/known_facts/alpha/artifact_id" in {op["path"] for op in report.state_diff}
    # the controller saw different facts, so its later prompts were answered by recorded order
    assert [m["role"] for m in report.loose_matches] == ["controller"] * 3
    assert report.divergence is not None and report.divergence.seq == 1  # config names the live model
    assert report.unused == []


def test_recorded_model_failures_replay(tmp_path: Path) -> None:
    unusable = ScriptedChatModel(
        [ModelOutputError("the decision is malformed"), *[call("lookup", key=k) for k in TABLE], say("done")],
        name="demo-controller",
    )
    assert_replays(record(tmp_path, unusable, run_id="unusable"))
    down = ScriptedChatModel([ModelUnavailable("server down after 5 attempts")], name="demo-controller")
    path = record(tmp_path, down, run_id="down")
    report = assert_replays(path)
    assert report.status == "failed"
    assert read_trace(path).events[-1].reason == "controller model failed: server down after 5 attempts"  # type: ignore[union-attr]


def test_replay_tool_runner_refuses_calls_it_did_not_record() -> None:
    trace = read_trace(BASIC)
    mismatches: list[str] = []
    runner = ReplayToolRunner([lookup_tool(TABLE)], MemoryEventStore().artifacts, trace.events, mismatches=mismatches)
    result = asyncio.run(runner.run(ToolCall(id="d1_call_1", name="lookup", arguments={"key": "alpha"})))
    assert result.ok and result.payload == "Paris has 2.1 million people"
    with pytest.raises(ReplayMismatch, match=r"lookup\(\{'key': 'beta'\}\): the recording called lookup"):
        asyncio.run(runner.run(ToolCall(id="d1_call_1", name="lookup", arguments={"key": "beta"})))
    with pytest.raises(ReplayMismatch, match=r"d9_call_1 .*the trace has no result for it; replay with live_tools"):
        asyncio.run(runner.run(ToolCall(id="d9_call_1", name="lookup", arguments={"key": "alpha"})))
    assert len(mismatches) == 2


def test_recorded_models_report_what_was_not_asked() -> None:
    recorded = RecordedModels(read_trace(BASIC).events)
    assert recorded.name_of("controller") == "demo-controller" and recorded.name_of("processor") == "demo-processor"
    assert len(recorded.unused()) == 7 and len(recorded.unused(["processor"])) == 3


def test_compare_events_ignores_only_wall_clock_fields_and_run_ids(tmp_path: Path) -> None:
    a = read_trace(BASIC).events
    b = [e.model_copy(update={"run_id": "other", "at": e.at.replace(year=2030)}) for e in a]
    assert compare_events(a, b) is None
    c = list(b)
    c[4] = c[4].model_copy(update={"caused_by": 1})
    found = compare_events(a, c)
    assert found is not None and found.seq == 5 and found.fields == ("caused_by",)
    shorter = compare_events(a, a[:-1])
    assert shorter is not None and shorter.seq == len(a) and shorter.actual is None


def test_bad_replay_arguments() -> None:
    with pytest.raises(ConfigError, match="live_tools=True needs the real tools"):
        replay_trace(BASIC, live_tools=True)
    with pytest.raises(ConfigError, match="live roles must be controller, processor or planner; got critic"):
        replay_trace(BASIC, live={"critic": ScriptedChatModel([])})


def test_replay_trace_is_the_blocking_twin_of_replay_trace_async() -> None:
    from agentcore.replay.replayer import replay_trace_async

    assert replay_trace.__name__ == "replay_trace" and replay_trace.__doc__ == replay_trace_async.__doc__

    async def inside_a_loop() -> None:
        with pytest.raises(ConfigError, match=r"replay_trace\(\) was called inside a running event loop.*replay_trace_async"):
            replay_trace(BASIC)
        assert (await replay_trace_async(BASIC)).ok  # the async form works there

    asyncio.run(inside_a_loop())
    assert replay_trace(BASIC).ok


def test_a_plan_run_trace_replays_and_an_agent_factory_is_refused_for_it(tmp_path: Path) -> None:
    from agentcore.core.plans import Plan, Step
    from agentcore.runtime.plan_runner import PlanRunner
    from agentcore.storage.memory import MemoryEventStore
    from agentcore.storage.trace import export_run
    from agentcore.tools.base import tool

    @tool
    def ping() -> str:
        """Answer pong."""
        return "pong"

    store = MemoryEventStore()
    result = PlanRunner(store, tools=[ping]).run_sync("ping once", Plan(steps=(Step(id="a", tool="ping"),)))
    assert result.status == "succeeded"
    path = tmp_path / "plan.jsonl"
    export_run(store, result.run_id, path)
    report = replay_trace(path)
    assert report.ok and report.status == "succeeded", report.describe()
    with pytest.raises(ConfigError, match="agent_factory replays Agent runs; this trace records a PlanRunner run"):
        replay_trace(path, agent_factory=lambda *a: None)
