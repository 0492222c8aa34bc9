"""The run loop with scripted models: events, batches, failures, budgets, resume and answers."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import Event, LLMCalled, PatchRejected, RunFinished, RunStarted, ToolFinished, ToolStarted
from agentcore.core.fold import fold
from agentcore.core.values import TokenUsage
from agentcore.errors import ConfigError, ModelRequestError, ModelUnavailable, StorageUnavailable
from agentcore.models.base import ChatRequest, ChatResponse, ToolCallRequest, request_digest
from agentcore.models.scripted import FunctionChatModel, ScriptedChatModel, call, respond_json, say
from agentcore.runtime.agent import Agent
from agentcore.storage.base import EventStore
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing.clock import FakeClock
from agentcore.tools.base import call_idempotency_key, tool
from agentcore.tools.runner import ToolRunner

NO_OPS = respond_json({"ops": []})


class Counter:
    """A real tool that counts its invocations and remembers the idempotency keys it got."""

    def __init__(self, output: str = "calc.py:3: def add(a, b):") -> None:
        self.output = output
        self.calls: list[dict[str, Any]] = []

        @tool
        def grep(pattern: str, idempotency_key: str | None = None) -> str:
            """Search the fixture for a pattern.

            Args:
                pattern: The text to look for.
            """
            self.calls.append({"pattern": pattern, "key": idempotency_key})
            return self.output

        self.tool = grep


def fact_patch(source: str = "d1_call_1", key: str = "add") -> ChatResponse:
    fact = {"key": key, "value": "add is defined in calc.py:3", "source": source}
    return respond_json({"ops": [{"op": "append_known_facts", "facts": [fact]}]})


def types(store: EventStore, run_id: str) -> list[str]:
    return [e.type for e in store.read(run_id)]


def events_of(store: EventStore, run_id: str, kind: type) -> list[Any]:
    return [e for e in store.read(run_id) if isinstance(e, kind)]


def record_batches(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    batches: list[list[str]] = []
    append = store.append

    def spy(run_id: str, events: Any, expected_seq: int) -> int:
        last = append(run_id, events, expected_seq)
        batches.append([e.type for e in events])
        return last

    create_run = store.create_run

    def spy_create(task: str, **kwargs: Any) -> str:  # a run starts with its first batch
        run_id = create_run(task, **kwargs)
        batches.append([e.type for e in kwargs.get("events", ())])
        return run_id

    monkeypatch.setattr(store, "append", spy)
    monkeypatch.setattr(store, "create_run", spy_create)
    return batches


# -- the happy path --------------------------------------------------------------------------


def test_a_run_records_each_step_in_one_batch(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    grep = Counter()
    controller = ScriptedChatModel([call("grep", pattern="def add"), say("add is in calc.py:3")], name="ctl")
    processor = ScriptedChatModel([fact_patch()], name="proc")
    seen: list[Event] = []
    agent = Agent(controller, processor, tools=[grep.tool], store=store, on_event=seen.append)
    batches = record_batches(store, monkeypatch)

    result = agent.run_sync("Where is add defined?")

    assert (result.status, result.reply, result.reason) == ("succeeded", "add is in calc.py:3", None)
    assert batches == [
        ["run_started"],
        ["llm_called", "decided", "tool_started"],
        ["tool_finished"],
        ["llm_called", "state_patched"],
        ["llm_called", "decided", "run_finished"],
    ]
    events = list(store.read(result.run_id))
    assert [e.seq for e in events] == list(range(1, 11)) and seen == events
    by_seq = {e.seq: e for e in events}
    started, finished = (
        events_of(store, result.run_id, ToolStarted)[0],
        events_of(store, result.run_id, ToolFinished)[0],
    )
    assert started.idempotency_key == call_idempotency_key(result.run_id, "d1_call_1") == f"{result.run_id}/main/d1_call_1"
    assert by_seq[started.caused_by].type == "decided"
    assert finished.caused_by == started.seq
    patched = next(e for e in events if e.type == "state_patched")
    assert patched.caused_by == finished.seq
    processor_call = next(e for e in events if e.type == "llm_called" and e.role == "processor")
    assert processor_call.caused_by == finished.seq and processor_call.model == "proc"
    assert grep.calls == [{"pattern": "def add", "key": started.idempotency_key}]
    assert result.state == fold(events) == store.state_at(result.run_id)
    assert result.state.known_facts["add"].source == "d1_call_1"
    controller.assert_consumed()
    processor.assert_consumed()


def test_llm_calls_are_recorded_with_their_request(store: EventStore) -> None:
    usage = TokenUsage(prompt_tokens=100, completion_tokens=5, total_tokens=105)
    controller = ScriptedChatModel([say("nothing to do", usage=usage)])
    result = Agent(controller, store=store).run_sync("Say hi")
    llm = events_of(store, result.run_id, LLMCalled)[0]
    request = controller.requests[0]
    assert llm.request_digest == request_digest(request)
    assert llm.request_artifact is not None
    stored = json.loads(store.artifacts.read(llm.request_artifact.id))
    assert ChatRequest.model_validate(stored) == request
    assert llm.response["content"] == "nothing to do"
    assert llm.usage.total_tokens == 105 and result.state.tokens == 105
    config = events_of(store, result.run_id, RunStarted)[0].config
    assert config["controller_model"] == "scripted" and "read_artifact" in config["tools"]


def test_repeated_model_call_ids_become_unique_and_every_call_runs_once(store: EventStore) -> None:
    grep = Counter()

    def req(call_id: str, pattern: str) -> ToolCallRequest:
        return ToolCallRequest(id=call_id, name="grep", arguments=json.dumps({"pattern": pattern}))

    batch = ChatResponse(
        content=None, tool_calls=(req("x_3", "a"), req("x", "b"), req("x", "c")), finish_reason="tool_calls"
    )
    controller = ScriptedChatModel([batch, say("done")])
    processor = ScriptedChatModel([NO_OPS, NO_OPS, NO_OPS])
    result = Agent(controller, processor, tools=[grep.tool], store=store).run_sync("find a, b and c")

    assert result.status == "succeeded" and result.reply == "done"
    started = [e.call.id for e in events_of(store, result.run_id, ToolStarted)]
    assert len(started) == 3 and len(set(started)) == 3
    assert started[0] == "d1_x_3" and set(started) >= {"d1_x_3", "d1_x"}
    finished = [e.call_id for e in events_of(store, result.run_id, ToolFinished)]
    assert sorted(finished) == sorted(started)
    assert sorted(c["pattern"] for c in grep.calls) == ["a", "b", "c"]
    assert sorted(c["key"] for c in grep.calls) == sorted(call_idempotency_key(result.run_id, i) for i in started)


# -- unusable model output -------------------------------------------------------------------


def test_unusable_controller_answers_are_fed_back_then_the_run_goes_on(store: EventStore) -> None:
    grep = Counter()
    controller = ScriptedChatModel(
        [
            say('{"tool_calls": [{"name": "grep", "arguments": {"pattern": '),  # bad JSON
            call("grpe", pattern="x"),  # unknown tool
            say('{"reply": 42}'),  # schema violation
            call("grep", pattern=5),  # wrong argument type: the tool runner answers
            call("grep", pattern="def add"),
            say("found it"),
        ]
    )
    processor = ScriptedChatModel([NO_OPS, fact_patch(source="d2_call_1")])
    agent = Agent(controller, processor, tools=[grep.tool], store=store, max_output_retries=4)
    result = agent.run_sync("find add")
    assert result.status == "succeeded" and result.reply == "found it"
    llm = [e for e in events_of(store, result.run_id, LLMCalled) if e.role == "controller"]
    assert [(e.attempt, e.ok) for e in llm[:4]] == [(1, False), (2, False), (3, False), (4, True)]
    assert "not valid JSON" in (llm[0].error or "")
    assert "unknown tool 'grpe'" in (llm[1].error or "") and "grep" in (llm[1].error or "")
    assert '"reply" must be a non-empty string' in (llm[2].error or "")
    assert "unknown tool 'grpe'" in (controller.requests[2].messages[-1].content or "")
    bad_call, good_call = events_of(store, result.run_id, ToolFinished)
    assert not bad_call.ok and "pattern" in (bad_call.error or "")
    assert good_call.ok and grep.calls == [{"pattern": "def add", "key": f"{result.run_id}/main/d2_call_1"}]
    assert result.state.known_facts["add"].source == "d2_call_1"


def test_controller_output_retries_exhausted_fail_the_run(store: EventStore) -> None:
    controller = ScriptedChatModel([say("{nope"), say("{nope")])
    result = Agent(controller, store=store, max_output_retries=2).run_sync("task")
    assert result.status == "failed"
    assert result.reason is not None and result.reason.startswith("controller output invalid after 2 attempts")
    assert types(store, result.run_id) == ["run_started", "llm_called", "llm_called", "run_finished"]
    assert store.state_at(result.run_id) == result.state
    assert store.run(result.run_id).status == "failed"


@pytest.mark.parametrize(
    "error",
    [
        ModelUnavailable("model 'm' unavailable after 5 attempts"),
        ModelRequestError("HTTP 404: no model", status_code=404),
    ],
)
def test_model_failures_end_the_run_cleanly(store: EventStore, error: Exception) -> None:
    result = Agent(ScriptedChatModel([error]), store=store).run_sync("task")
    assert result.status == "failed"
    assert result.reason == f"controller model failed: {error}"
    llm = events_of(store, result.run_id, LLMCalled)[0]
    assert not llm.ok and llm.response == {} and llm.error == str(error)
    assert types(store, result.run_id)[-1] == "run_finished"


def test_processor_model_failure_ends_the_run(store: EventStore) -> None:
    controller = ScriptedChatModel([call("grep", pattern="x")])
    processor = ScriptedChatModel([ModelUnavailable("down")])
    result = Agent(controller, processor, tools=[Counter().tool], store=store).run_sync("task")
    assert result.status == "failed" and result.reason == "processor model failed: down"


# -- patches ---------------------------------------------------------------------------------


def test_rejected_patches_are_recorded_and_the_run_goes_on(store: EventStore) -> None:
    bad = respond_json({"ops": [{"op": "set_step_status", "step_id": "nope", "status": "succeeded"}]})
    controller = ScriptedChatModel([call("grep", pattern="x"), say("done anyway")])
    processor = ScriptedChatModel([bad, say("not json"), bad])
    result = Agent(controller, processor, tools=[Counter().tool], store=store, max_patch_retries=3).run_sync("t")
    assert result.status == "succeeded" and result.reply == "done anyway"
    rejected = events_of(store, result.run_id, PatchRejected)
    finished = events_of(store, result.run_id, ToolFinished)[0]
    assert [r.attempt for r in rejected] == [1, 2, 3]
    assert all(r.caused_by == finished.seq for r in rejected)
    assert "no step 'nope'" in rejected[0].error and rejected[0].op_index == 0
    assert rejected[0].ops == ({"op": "set_step_status", "step_id": "nope", "status": "succeeded", "error": None},)
    assert "not valid JSON" in rejected[1].error
    assert "no step 'nope'" in (processor.requests[1].messages[-1].content or "")
    assert result.state.patches_rejected == 3 and result.state.known_facts == {}
    assert types(store, result.run_id).count("state_patched") == 0


# -- budgets ---------------------------------------------------------------------------------


def test_max_steps_ends_the_run_with_the_reason(store: EventStore) -> None:
    controller = FunctionChatModel(lambda request: call("grep", pattern="again"))
    processor = FunctionChatModel(lambda request: NO_OPS)
    grep = Counter()
    result = Agent(controller, processor, tools=[grep.tool], store=store, max_steps=3).run_sync("loop")
    assert result.status == "failed"
    assert result.reason == "budget: max_steps=3 decisions made without a reply"
    assert result.state.decisions == 3 and len(grep.calls) == 3 and len(controller.requests) == 3
    last = list(store.read(result.run_id))[-1]
    assert isinstance(last, RunFinished) and last.caused_by == last.seq - 1


def test_max_tokens_ends_the_run_with_the_reason(store: EventStore) -> None:
    usage = TokenUsage(prompt_tokens=400, completion_tokens=100, total_tokens=500)
    controller = FunctionChatModel(
        lambda request: ChatResponse(content=None, tool_calls=call("grep", pattern="x").tool_calls, usage=usage)
    )
    processor = FunctionChatModel(lambda request: NO_OPS)
    result = Agent(controller, processor, tools=[Counter().tool], store=store, max_tokens=1200).run_sync("loop")
    assert result.status == "failed"
    assert result.reason == "budget: 1500 tokens used, max_tokens=1200"
    assert len(controller.requests) == 3


# -- the context bound (W5) ------------------------------------------------------------------


def controller_prompt_bytes(output_size: int) -> int:
    grep = Counter(output="m" * output_size)
    controller = ScriptedChatModel([call("grep", pattern="x"), say("done")])
    store = MemoryEventStore()
    result = Agent(controller, ScriptedChatModel([NO_OPS]), tools=[grep.tool], store=store).run_sync("t")
    assert result.status == "succeeded"
    finished = events_of(store, result.run_id, ToolFinished)[0]
    assert finished.artifact is not None and finished.artifact.size == output_size  # the whole output is kept
    return len(json.dumps(controller.requests[1].model_dump(mode="json")))


def test_a_50_mb_output_leaves_the_controller_prompt_bounded() -> None:
    small, huge = controller_prompt_bytes(10_000), controller_prompt_bytes(50_000_000)
    assert small < 16_000 and huge < 16_000
    assert abs(huge - small) < 100


# -- asking the user -------------------------------------------------------------------------


def test_ask_user_then_answer_continues_the_run(store: EventStore) -> None:
    controller = ScriptedChatModel([call("ask_user", question="Which repo?"), say("It is in shop/cart.py:5")])
    answer_patch = respond_json(
        {"ops": [{"op": "append_known_facts", "facts": [{"key": "repo", "value": "shop", "source": "user"}]}]}
    )
    processor = ScriptedChatModel([answer_patch])
    agent = Agent(controller, processor, store=store)
    waiting = agent.run_sync("Where is TAX_RATE?")
    assert (waiting.status, waiting.reason) == ("waiting_for_user", "Which repo?")
    assert agent.resume_sync(waiting.run_id).status == "waiting_for_user"  # nothing to do until answered
    done = agent.answer_sync(waiting.run_id, "the shop repo")
    assert (done.status, done.reply) == ("succeeded", "It is in shop/cart.py:5")
    assert done.state.known_facts["repo"].source == "user"
    message = next(e for e in store.read(done.run_id) if e.type == "user_messaged")
    assert (message.text, message.question) == ("the shop repo", "Which repo?")
    assert "the shop repo" in (processor.requests[0].messages[-1].content or "")
    assert "repo: shop" in (controller.requests[1].messages[1].content or "")
    with pytest.raises(ConfigError, match="not waiting for an answer"):
        agent.answer_sync(done.run_id, "again")


# -- resume ----------------------------------------------------------------------------------


class Crash(Exception):
    pass


def crash_after(kind: str):
    def on_event(event: Event) -> None:
        if event.type == kind:
            raise Crash(kind)

    return on_event


def test_resume_after_a_tool_result_runs_nothing_twice(store: EventStore) -> None:
    grep = Counter()
    first = Agent(ScriptedChatModel([call("grep", pattern="def add")]), tools=[grep.tool], store=store,
                  on_event=crash_after("tool_finished"))  # fmt: skip
    with pytest.raises(Crash):
        first.run_sync("find add")
    run_id = store.runs()[-1].id
    assert types(store, run_id)[-1] == "tool_finished"

    controller = ScriptedChatModel([say("add is in calc.py:3")])
    processor = ScriptedChatModel([fact_patch()])
    result = Agent(controller, processor, tools=[grep.tool], store=store).resume_sync(run_id)
    assert result.status == "succeeded" and result.reply == "add is in calc.py:3"
    assert len(grep.calls) == 1  # the recorded result was not executed again
    assert types(store, run_id).count("tool_started") == 1
    assert result.state.known_facts["add"].source == "d1_call_1"
    assert "calc.py:3: def add" in (processor.requests[0].messages[1].content or "")


def test_resume_reruns_a_started_call_with_the_same_key(store: EventStore) -> None:
    grep = Counter()
    first = Agent(ScriptedChatModel([call("grep", pattern="def add")]), tools=[grep.tool], store=store,
                  on_event=crash_after("tool_started"))  # fmt: skip
    with pytest.raises(Crash):
        first.run_sync("find add")
    run_id = store.runs()[-1].id
    assert grep.calls == [] and "d1_call_1" in store.state_at(run_id).pending_calls

    agent = Agent(ScriptedChatModel([say("done")]), ScriptedChatModel([fact_patch()]), tools=[grep.tool], store=store)
    result = agent.resume_sync(run_id)
    assert result.status == "succeeded"
    assert grep.calls == [{"pattern": "def add", "key": f"{run_id}/main/d1_call_1"}]
    assert types(store, run_id).count("tool_started") == 1 and types(store, run_id).count("tool_finished") == 1
    assert result.state.pending_calls == {}

    before = list(store.read(run_id))
    again = agent.resume_sync(run_id)  # finished: returned unchanged, nothing written
    assert again.status == "succeeded" and list(store.read(run_id)) == before


def test_a_read_only_store_refuses_to_resume_or_answer_before_anything_runs(db_path: Path) -> None:
    grep = Counter()
    with SQLiteEventStore(db_path) as store:
        crashing = Agent(ScriptedChatModel([call("grep", pattern="def add")]), tools=[grep.tool], store=store,
                         on_event=crash_after("tool_started"))  # fmt: skip
        with pytest.raises(Crash):
            crashing.run_sync("find add", run_id="pending")  # a started call, not yet run
        asking = Agent(ScriptedChatModel([call("ask_user", question="Which repo?")]), store=store)
        assert asking.run_sync("where?", run_id="asking").status == "waiting_for_user"
        done = Agent(ScriptedChatModel([say("hi")]), store=store).run_sync("greet", run_id="done")
    before = db_path.read_bytes()

    controller, processor = ScriptedChatModel([say("x")] * 3), ScriptedChatModel([fact_patch()] * 3)
    with SQLiteEventStore(db_path, read_only=True) as ro:
        agent = Agent(controller, processor, tools=[grep.tool], store=ro)
        for attempt, method in (
            (lambda: agent.resume_sync("pending"), "resume"),
            (lambda: agent.answer_sync("asking", "the shop repo"), "answer"),
            (lambda: agent.run_sync("a new task"), "run"),
        ):
            with pytest.raises(
                StorageUnavailable, match=rf"read-only.*nothing was run.*Open it writable.* to {method}"
            ):
                attempt()
        assert grep.calls == [] and controller.requests == [] and processor.requests == []
        assert ro.state_at("pending").pending_calls  # still pending: left for a writable resume
        again = agent.resume_sync("done")  # finished: only read, so a read-only store is fine
        assert again.status == "succeeded" and again.state == done.state
    assert db_path.read_bytes() == before

    with SQLiteEventStore(db_path) as store:  # opened writable, the pending call runs once
        agent = Agent(
            ScriptedChatModel([say("done")]), ScriptedChatModel([fact_patch()]), tools=[grep.tool], store=store
        )
        assert agent.resume_sync("pending").status == "succeeded"
    assert len(grep.calls) == 1


class ClosableModel(FunctionChatModel):
    """A scripted model that counts ``aclose()`` calls and the event loops it was closed in."""

    def __init__(self, reply: ChatResponse) -> None:
        super().__init__(lambda request: reply, name="closable")
        self.closed_in: list[asyncio.AbstractEventLoop] = []

    async def aclose(self) -> None:
        self.closed_in.append(asyncio.get_running_loop())


def test_sync_calls_close_the_models_in_their_own_loop_and_stay_reusable() -> None:
    model = ClosableModel(say("done"))
    agent = Agent(model)  # the processor is the same model: closed once per call, not twice
    loops: list[asyncio.AbstractEventLoop] = []
    agent.on_event = lambda event: loops.append(asyncio.get_running_loop())
    assert agent.run_sync("one").status == "succeeded"
    assert agent.run_sync("two").status == "succeeded"
    assert len(model.closed_in) == 2 and model.closed_in[0] is not model.closed_in[1]
    assert {id(loop) for loop in loops} == {id(loop) for loop in model.closed_in}  # closed in the run's loop

    failing = Agent(FunctionChatModel(lambda request: say("x"), name="ctl"), model, on_event=crash_after("run_started"))
    with pytest.raises(Crash):  # closed on the way out too, and the run's error is the one raised
        failing.run_sync("three")
    assert len(model.closed_in) == 3


# -- settings --------------------------------------------------------------------------------


def test_settings_are_checked() -> None:
    model = ScriptedChatModel([])
    with pytest.raises(ConfigError, match="max_steps must be an integer >= 1"):
        Agent(model, max_steps=0)
    with pytest.raises(ConfigError, match="max_tokens must be None or an integer >= 1"):
        Agent(model, max_tokens=-5)
    with pytest.raises(ConfigError, match="must be a ChatModel"):
        Agent("gpt-4")  # type: ignore[arg-type]

    @tool
    def ask_user(question: str) -> str:
        """Shadow the pseudo-tool."""
        return question

    with pytest.raises(ConfigError, match="'ask_user' is reserved"):
        Agent(model, tools=[ask_user])
    with pytest.raises(ConfigError, match="task must be a non-empty string"):
        Agent(model).run_sync("  ")


def test_sync_api_refuses_a_running_loop() -> None:
    agent = Agent(ScriptedChatModel([]))

    async def inside() -> None:
        agent.run_sync("t")

    with pytest.raises(ConfigError, match=r"use `await agent\.run"):
        asyncio.run(inside())


def test_one_fake_clock_drives_the_agent_and_its_tool_runner() -> None:
    clock = FakeClock(datetime(2030, 5, 1, 12, 0, tzinfo=timezone.utc))

    @tool
    async def build(target: str) -> str:
        """Build a target (three virtual seconds)."""
        await clock.sleep(3)
        return f"built {target}"

    script = iter([call("build", target="app"), say("built")])

    async def think(request: ChatRequest) -> ChatResponse:
        await clock.sleep(0.5)  # the controller takes half a virtual second per answer
        return next(script)

    agent = Agent(FunctionChatModel(think), ScriptedChatModel([NO_OPS]), tools=[build], clock=clock)
    assert agent.runner.clock is clock
    result = agent.run_sync("build the app")
    assert result.status == "succeeded"
    events = list(agent.store.read(result.run_id))
    start = clock.now() - timedelta(seconds=4)
    assert start == datetime(2030, 5, 1, 12, 0, tzinfo=timezone.utc)
    started = next(e for e in events if isinstance(e, ToolStarted))
    finished = next(e for e in events if isinstance(e, ToolFinished))
    assert events[0].at == start and started.at == start + timedelta(seconds=0.5)  # from the clock's now()
    assert finished.at == start + timedelta(seconds=3.5) and events[-1].at == start + timedelta(seconds=4)
    assert finished.duration_ms == 3000.0  # the runner measured with the same clock's monotonic()
    latencies = [(e.role, e.latency_ms) for e in events if isinstance(e, LLMCalled)]
    assert latencies == [("controller", 500.0), ("processor", 0.0), ("controller", 500.0)]  # the roles too


def test_an_agent_runs_its_calls_with_the_runner_it_is_given(store: EventStore) -> None:
    grep = Counter()
    runner = ToolRunner([grep.tool], store.artifacts, payload_chars=120)
    controller = ScriptedChatModel([call("grep", pattern="x"), say("done")])
    agent = Agent(controller, ScriptedChatModel([NO_OPS]), store=store, runner=runner)
    assert agent.runner is runner and agent.payload_chars == 120
    assert [s.name for s in agent.specs] == ["grep", "read_artifact"]
    result = agent.run_sync("find x")
    assert result.status == "succeeded" and len(grep.calls) == 1
    assert events_of(store, result.run_id, RunStarted)[0].config["payload_chars"] == 120
    with pytest.raises(ConfigError, match=r"tools=.* or runner=.*not both"):
        Agent(controller, tools=[grep.tool], runner=runner)
    with pytest.raises(ConfigError, match="payload_chars=50 differs from the runner's 120"):
        Agent(controller, runner=runner, payload_chars=50)
    with pytest.raises(ConfigError, match="runner must be a ToolRunner"):
        Agent(controller, runner=[grep.tool])  # type: ignore[arg-type]
