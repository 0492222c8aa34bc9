"""Bad model output, fuzzed: whatever the models answer, a run goes on or fails with a reason.

Hypothesis builds answers for each role: arbitrary JSON, near misses of the expected shapes
(decisions, tool calls, patch ops, plans with cycles and unknown tools, RFC 6902 patches aimed at
any path of the state), truncated JSON, Markdown fences and plain junk. A ``FunctionChatModel``
hands them to a real ``Agent`` (or ``PlanRunner`` with a planner) on a real SQLite file. After each
example: no exception escaped, the run is ``succeeded``, ``waiting_for_user`` or ``failed`` with a
reason, and the log is intact (integrity ok, seqs 1..n, every event decodes, fold == ``state_at``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agentcore.models.base import ChatRequest, ChatResponse, ToolCallRequest
from agentcore.models.scripted import FunctionChatModel, say
from agentcore.runtime.agent import Agent, RunResult
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.base import tool
from tests.guarantees.test_crash_torture import check_log
from tests.support.strategies import json_values

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

# -- building blocks ------------------------------------------------------------------------------

names = st.sampled_from(["lookup", "ask_user", "read_artifact", "", "look up", "LOOKUP", "x" * 70]) | st.text(
    max_size=12
)
keys = st.sampled_from(["alpha", "beta", "", "a/b", "~0", "../x"]) | st.text(max_size=10)
loose = json_values | st.sampled_from([None, "", [], {}, 0, -1, 1e308, "null"])
step_ids = st.sampled_from(["a", "b", "c", "a/b", "~1", ""]) | st.text(alphabet=string.ascii_lowercase, max_size=3)
paths = st.sampled_from(
    [
        "",
        "/",
        "/status",
        "/reply",
        "/task",
        "/last_seq",
        "/known_facts",
        "/known_facts/alpha",
        "/known_facts/alpha/value",
        "/plan",
        "/plan/a",
        "/plan/a/status",
        "/plan/a/after/0",
        "/open_questions/q1",
        "/usage/controller/total_tokens",
        "/recent/0",
        "/recent/-",
        "/max_parallel",
        "/retry/max_attempts",
        "/nope/deeper",
        "known_facts",
        "/~2",
    ]
) | st.text(max_size=12)


def fenced(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([text, f"```json\n{text}\n```", f"```\n{text}", text[: len(text) // 2], f" {text} trailing"])


def as_text(values: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """JSON text of the values, sometimes fenced, truncated or padded; sometimes plain junk."""
    return values.map(lambda v: json.dumps(v, allow_nan=True)).flatmap(fenced) | st.text(max_size=40)


arguments = st.dictionaries(st.sampled_from(["key", "id", "offset", "limit", "question", "extra"]), loose, max_size=3)
call_dicts = st.fixed_dictionaries(
    {"name": names}, optional={"arguments": arguments | loose, "id": loose, "thought": loose}
)
decision_dicts = (
    st.fixed_dictionaries({}, optional={"tool_calls": st.lists(call_dicts, max_size=3) | loose, "thought": loose})
    | st.fixed_dictionaries({"reply": loose}, optional={"tool_calls": loose, "ask_user": loose})
    | st.fixed_dictionaries({"ask_user": loose}, optional={"content": loose})
    | st.dictionaries(st.text(max_size=8), loose, max_size=3)
)
native_calls = st.lists(
    st.builds(
        ToolCallRequest,
        id=st.text(max_size=6),
        name=names,
        arguments=as_text(arguments | loose) | st.sampled_from(["", "{", "{}", '{"key": "alpha"}']),
    ),
    min_size=1,
    max_size=3,
)
good_calls = st.one_of(
    st.builds(lambda k: {"name": "lookup", "arguments": {"key": k}}, keys),
    st.builds(lambda q: {"name": "ask_user", "arguments": {"question": q}}, st.text(max_size=20)),
    st.builds(lambda i: {"name": "read_artifact", "arguments": {"id": i}}, st.text(max_size=12)),
)
good_decisions = st.lists(good_calls, min_size=1, max_size=3).map(lambda calls: {"tool_calls": calls})
native_good_calls = st.lists(good_calls, min_size=1, max_size=3).map(
    lambda calls: ChatResponse(
        content=None,
        tool_calls=tuple(
            ToolCallRequest(id=f"call_{i}", name=c["name"], arguments=json.dumps(c["arguments"]))
            for i, c in enumerate(calls, start=1)
        ),
    )
)
asks = st.text(max_size=20).map(
    lambda q: ChatResponse(
        content=None, tool_calls=(ToolCallRequest(id="call_1", name="ask_user", arguments=json.dumps({"question": q})),)
    )
)
controller_answers = st.one_of(
    native_good_calls,
    native_good_calls,
    asks,
    as_text(good_decisions).map(lambda t: ChatResponse(content=t)),
    as_text(decision_dicts).map(lambda t: ChatResponse(content=t)),
    native_calls.map(lambda calls: ChatResponse(content=None, tool_calls=tuple(calls))),
    st.just(ChatResponse(content=None)),
)

facts = st.fixed_dictionaries(
    {"key": keys | loose, "value": loose}, optional={"source": loose, "confidence": loose, "artifact_id": loose}
)
good_facts = st.fixed_dictionaries(
    {
        "key": st.sampled_from(["alpha", "beta", "a/b", "~x"]) | st.text(min_size=1, max_size=8),
        "value": st.text(max_size=20),
    },
    optional={"source": st.sampled_from(["d1_call_1", "user", ""]), "confidence": st.floats(0, 1)},
)
raw_ops = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"]), "path": paths},
    optional={"value": loose, "from": paths},
)
state_values = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["running", "succeeded", "failed", "waiting_for_user", "bogus", None, 3, -1, [], {}]),
    good_facts.map(lambda f: {"source": "", "artifact_id": None, "confidence": 1.0, "seq": 0, **f}),
)
plausible_raw_ops = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "replace", "remove", "test"]), "path": paths, "value": state_values}
)
steps = st.fixed_dictionaries(
    {"id": step_ids},
    optional={
        "description": loose,
        "after": st.lists(step_ids, max_size=3) | loose,
        "tool": st.sampled_from(["lookup", "nope"]) | loose,
        "arguments": arguments | loose,
        "status": loose,
    },
)


@st.composite
def good_steps(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Steps that form a DAG (dependencies only on earlier steps), half of them ``lookup`` calls."""
    ids = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=4, unique=True))
    out = []
    for i, sid in enumerate(ids):
        step: dict[str, Any] = {"id": sid, "description": f"do {sid}"}
        if i:
            step["after"] = draw(st.lists(st.sampled_from(ids[:i]), max_size=2, unique=True))
        if draw(st.booleans()):
            step.update(tool="lookup", arguments={"key": draw(st.sampled_from(["alpha", "beta"]))})
        out.append(step)
    return out


@st.composite
def near_plans(draw: st.DrawFn) -> dict[str, Any]:
    """A good plan, or one with a single mistake: a cycle, an unknown tool, bad arguments, a duplicate id..."""
    plan = draw(good_steps())
    mistake = draw(
        st.sampled_from([None, None, None, "cycle", "unknown tool", "bad arguments", "duplicate", "dangling"])
    )
    first, last = plan[0], plan[-1]
    if mistake == "cycle":
        first["after"] = [last["id"]]
    elif mistake == "unknown tool":
        last.update(tool="nope", arguments={})
    elif mistake == "bad arguments":
        last.update(tool="lookup", arguments={"key": 3, "extra": True})
    elif mistake == "duplicate":
        plan.append(dict(first))
    elif mistake == "dangling":
        last["after"] = ["zz"]
    return {"steps": plan}


good_ops = st.one_of(
    st.lists(good_facts, min_size=1, max_size=3).map(lambda fs: {"op": "append_known_facts", "facts": fs}),
    st.lists(plausible_raw_ops, min_size=1, max_size=2).map(lambda ps: {"op": "json_patch", "patch": ps}),
    good_steps().map(lambda ss: {"op": "replace_plan", "steps": ss}),
    st.builds(lambda t: {"op": "add_open_questions", "questions": [{"id": "q1", "text": t}]}, st.text(min_size=1)),
    st.builds(lambda a: {"op": "answer_question", "id": "q1", "answer": a}, st.text(max_size=10)),
    st.builds(
        lambda sid, status: {"op": "set_step_status", "step_id": sid, "status": status},
        st.sampled_from(["a", "b", "zz"]),
        st.sampled_from(["pending", "running", "succeeded", "failed", "skipped", "bogus"]),
    ),
)
patch_ops = st.one_of(
    good_ops,
    good_ops,
    st.fixed_dictionaries({"op": st.just("append_known_facts"), "facts": st.lists(facts, max_size=3) | loose}),
    st.fixed_dictionaries({"op": st.just("json_patch"), "patch": st.lists(raw_ops, max_size=3) | loose}),
    st.fixed_dictionaries({"op": st.just("replace_plan"), "steps": st.lists(steps, max_size=4) | loose}),
    st.fixed_dictionaries(
        {"op": st.sampled_from(["set_step_status", "answer_question", "add_open_questions", "nope"])},
        optional={"step_id": step_ids, "status": loose, "id": loose, "answer": loose, "questions": loose},
    ),
    st.dictionaries(st.text(max_size=6), loose, max_size=2),
)
processor_answers = st.one_of(
    st.lists(good_ops, min_size=1, max_size=3).map(lambda ops: ChatResponse(content=json.dumps({"ops": ops}))),
    as_text(
        st.fixed_dictionaries({"ops": st.lists(patch_ops, max_size=3)}) | st.lists(patch_ops, max_size=2) | loose
    ).map(lambda t: ChatResponse(content=t)),
)

plan_dicts = st.fixed_dictionaries(
    {"steps": st.lists(steps, max_size=5) | loose}, optional={"on_failure": loose, "max_parallel": loose}
) | st.dictionaries(st.text(max_size=6), loose, max_size=2)
planner_answers = st.one_of(
    near_plans().map(lambda p: ChatResponse(content=json.dumps(p))),
    near_plans().map(lambda p: ChatResponse(content=json.dumps(p))),
    as_text(near_plans() | plan_dicts).map(lambda t: ChatResponse(content=t)),
)


# -- the run under test ---------------------------------------------------------------------------


@tool(timeout=5)
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: The key.
    """
    return f"{key} = 42"


def playing(answers: list[ChatResponse], then: ChatResponse, name: str) -> FunctionChatModel:
    """A model that gives ``answers`` in order, then ``then`` for ever."""
    queue = iter(answers)

    def answer(request: ChatRequest) -> ChatResponse:
        return next(queue, then)

    return FunctionChatModel(answer, name=name)


@pytest.fixture(scope="module")
def db() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp) / "fuzz.db"


_runs = itertools.count()


def check_outcome(result: RunResult, db: Path, where: str) -> None:
    assert result.status in ("succeeded", "failed", "waiting_for_user"), where
    if result.status == "failed":
        assert result.reason, f"{where}: a failed run must say why"
    events = check_log(db, result.run_id, where)
    why = (result.reason or "")[:25] if result.status != "waiting_for_user" else ""
    event(f"status: {result.status} {why}".strip())  # --hypothesis-show-statistics: how far the fuzzing got
    for kind in ("state_patched", "patch_rejected", "tool_finished", "step_succeeded"):
        if any(e.type == kind for e in events):
            event(f"has {kind}")


@FUZZ
@given(
    controller=st.lists(controller_answers, min_size=1, max_size=5),
    processor=st.lists(processor_answers, min_size=1, max_size=5),
    user_answer=st.text(max_size=20),
)
def test_any_controller_and_processor_output(
    db: Path, controller: list[ChatResponse], processor: list[ChatResponse], user_answer: str
) -> None:
    run_id = f"agent-{next(_runs)}"
    with SQLiteEventStore(db) as store:
        agent = Agent(
            playing(controller, say("done"), "fuzz-controller"),
            playing(processor, ChatResponse(content='{"ops": []}'), "fuzz-processor"),
            tools=[lookup],
            store=store,
            max_steps=4,
            max_output_retries=2,
            max_patch_retries=2,
        )
        result = agent.run_sync("Look up alpha and beta.", run_id=run_id)  # nothing may escape
        if result.status == "waiting_for_user" and user_answer.strip():
            result = agent.answer_sync(run_id, user_answer)
        check_outcome(result, db, f"{run_id}: {result.status} {result.reason}")
        assert store.state_at(run_id) == result.state


@FUZZ
@given(planner=st.lists(planner_answers, min_size=2, max_size=3), processor=st.lists(processor_answers, max_size=4))
def test_any_planner_and_reviser_output(db: Path, planner: list[ChatResponse], processor: list[ChatResponse]) -> None:
    run_id = f"plan-{next(_runs)}"
    with SQLiteEventStore(db) as store:
        runner = PlanRunner(
            store,
            tools=[lookup],
            planner_model=playing(planner, ChatResponse(content="not a plan"), "fuzz-planner"),
            processor_model=playing(processor, ChatResponse(content='{"ops": []}'), "fuzz-processor"),
            controller_model=playing([], say("step done"), "fuzz-controller"),
            revise=True,
            max_planner_tries=3,
            max_agent_steps=2,
            max_patch_retries=2,
        )
        result = asyncio.run(runner.run("Plan the lookups of alpha and beta.", run_id=run_id))
        check_outcome(result, db, f"{run_id}: {result.status} {result.reason}")
        assert result.status != "waiting_for_user"
        assert store.state_at(run_id) == result.state
