"""Hostile processor patches: an empty plan, invisible identifiers, numbers that overflow, prose.

The unit tests drive ``process`` with a scripted model; the end-to-end test sends the same patches
over the real openai client to a loopback server, into a real SQLite file, and checks the log.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import PatchRejected, StatePatched
from agentcore.core.fold import RunState, apply_patch
from agentcore.core.json_text import JSONTextError, NotJSON, read_json
from agentcore.core.patches import ReplacePlan, StatePatch
from agentcore.core.plans import Step
from agentcore.errors import ModelOutputError, PatchError
from agentcore.models.openai import OpenAIChatModel
from agentcore.roles.patch_rules import check_new_patch
from agentcore.roles.processor import ProcessorInput, ProcessorOutcome, process
from agentcore.roles.turn import read_model_json
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing import ScriptedChatModel, lookup_tool, respond_json, say
from tests.support.hostile import check_log
from tests.support.openai_server import OpenAIServer, json_answer, openai_server, text, tool_calls  # noqa: F401

SOURCE = ProcessorInput.user_answer("the total is 12", question="what is the total?")
GOOD = {"ops": [{"op": "append_known_facts", "facts": [{"key": "total", "value": "12"}]}]}


def facts(*items: tuple[str, str]) -> dict[str, Any]:
    return {"ops": [{"op": "append_known_facts", "facts": [{"key": k, "value": v} for k, v in items]}]}


def run_process(state: RunState, *answers: Any) -> ProcessorOutcome:
    model = ScriptedChatModel([say(a) if isinstance(a, str) else respond_json(a) for a in answers])
    return asyncio.run(process(model, state, SOURCE, max_attempts=len(answers)))


def state_with_plan(*statuses: str) -> RunState:
    state = RunState(run_id="r", task="t")
    steps = tuple(Step(id=f"s{i}") for i in range(len(statuses)))
    apply_patch(state, [ReplacePlan(steps=steps)], seq=1)
    for sid, status in zip(state.plan, statuses, strict=True):
        state.plan[sid] = state.plan[sid].model_copy(update={"status": status})
    return state


@pytest.mark.parametrize(
    "key",
    [
        "total\u200b",  # zero-width space
        "to\u202etal",  # right-to-left override
        "total\x00",  # NUL
        "total\x1b[31m",  # a terminal escape
        "line\u2028break",  # line separator
        "k" * 500,  # the longest key
    ],
)
def test_odd_characters_in_keys_and_values_are_kept_as_written(key: str) -> None:
    state = RunState(run_id="r", task="t")
    value = "right\u202eto-left, zero\u200bwidth, NUL\x00, -0.0, 2**70 = 1180591620717411303424 " + "v" * 100_000
    patch = facts((key, value), ("prix total (€) — שלום 日本", "12"))
    outcome = run_process(state, patch)
    assert outcome.value == StatePatch.model_validate(patch)
    apply_patch(state, outcome.value.ops, seq=2)
    assert state.known_facts[key].value == value


def test_a_key_longer_than_500_characters_is_refused_and_fed_back() -> None:
    outcome = run_process(RunState(run_id="r", task="t"), facts(("k" * 501, "v")), GOOD)
    error = outcome.attempts[0].error
    assert error is not None and "at most 500 characters" in error
    assert outcome.value == StatePatch.model_validate(GOOD)


@pytest.mark.parametrize("statuses", [(), ("pending",), ("pending", "failed", "skipped")])
def test_a_plan_replaced_by_no_steps_is_refused(statuses: tuple[str, ...]) -> None:
    state = state_with_plan(*statuses)
    outcome = run_process(state, {"ops": [{"op": "replace_plan", "steps": []}]}, GOOD)
    error = outcome.attempts[0].error
    assert error is not None and "the new plan has no steps" in error and "set_step_status" in error
    assert outcome.value is not None


def test_no_new_steps_is_allowed_when_finished_work_is_kept() -> None:
    state = state_with_plan("succeeded", "pending")
    outcome = run_process(state, {"ops": [{"op": "replace_plan", "steps": []}]})
    assert outcome.value is not None and outcome.attempts[0].error is None


@pytest.mark.parametrize(
    "answer",
    [
        '{"ops": [{"op": "append_known_facts", "facts": [{"key": "x", "value": "v", "confidence": 1e309}]}]}',
        '{"ops": [{"op": "replace_plan", "steps": [{"id": "a", "timeout_s": -1e400}]}]}',
        '{"ops": [{"op": "json_patch", "patch": [{"op": "add", "path": "/max_parallel", "value": 1E999}]}]}',
    ],
)
def test_a_number_beyond_a_double_is_refused_by_name_not_turned_into_infinity(answer: str) -> None:
    outcome = run_process(RunState(run_id="r", task="t"), answer, GOOD)
    error = outcome.attempts[0].error
    assert error is not None and "is too large to store" in error
    assert outcome.value is not None


def test_check_new_patch_errors_carry_the_op_index() -> None:
    state = RunState(run_id="r", task="t")
    ops = StatePatch.model_validate({"ops": [GOOD["ops"][0], {"op": "replace_plan", "steps": []}]}).ops
    with pytest.raises(PatchError) as caught:
        check_new_patch(state, ops)
    assert caught.value.op_index == 1 and str(caught.value).startswith("op 1 (replace_plan)")


@pytest.mark.parametrize("where", ["plan", "step"])
def test_a_new_patch_with_a_retry_delay_over_a_year_is_refused_but_a_stored_one_applies(where: str) -> None:
    step: dict[str, Any] = {"id": "s", "tool": "lookup"}
    op: dict[str, Any] = {"op": "replace_plan", "steps": [step]}
    (step if where == "step" else op)["retry"] = {"max_delay": 1e9}
    ops = StatePatch.model_validate({"ops": [op]}).ops  # a policy may hold it: logs stored it before
    state = RunState(run_id="r", task="t")
    with pytest.raises(PatchError, match=r"op 0 \(replace_plan\): retry delays over .*max_delay=1e\+09"):
        check_new_patch(state, ops)
    apply_patch(state, ops, seq=1)  # the fold of a stored patch is unchanged
    policy = state.plan["s"].retry if where == "step" else state.retry
    assert policy is not None and policy.max_delay == 1e9


def test_hostile_patches_over_http_leave_a_log_that_folds_and_replays(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    answers = [
        text('{"ops": [{"op": "replace_plan", "steps": []}]}'),
        text("Here you go:\n```json\n" + json.dumps(facts(("total\u200b\u202e", "12 \u202e!\x00"))) + "\n```"),
    ]
    openai_server.enqueue(tool_calls([("lookup", {"key": "total"})]), *answers, text("The total is 12."))
    model = OpenAIChatModel(base_url=openai_server.base_url, api_key="test-key", model="test", max_attempts=1)
    store = SQLiteEventStore(db_path)
    result = Agent(model, tools=[lookup_tool({"total": "12"})], store=store).run_sync("What is the total?")
    log = list(store.read(result.run_id))
    store.close()

    assert result.status == "succeeded" and result.reply == "The total is 12."
    rejected = [e.error for e in log if isinstance(e, PatchRejected)]
    assert len(rejected) == 1 and "the new plan has no steps" in rejected[0]
    patched = next(e for e in log if isinstance(e, StatePatched))
    fact = result.state.known_facts["total\u200b\u202e"]
    assert (fact.seq, fact.value) == (patched.seq, "12 \u202e!\x00")
    assert result.state.plan == {}
    check_log(db_path, result.run_id, tmp_path)


def test_a_plan_among_prose_is_read_and_an_overflowing_number_is_named() -> None:
    from agentcore.roles.planner import parse_plan

    plan = {"steps": [{"id": "a", "description": "look"}, {"id": "b", "after": ["a"]}]}
    answer = "Here is the plan:\n```json\n" + json.dumps(plan) + "\n```\nGood luck!"
    assert [s.id for s in parse_plan(say(answer)).steps] == ["a", "b"]
    with pytest.raises(ModelOutputError, match=r"not a valid plan: .*1e999 is too large"):
        parse_plan(say('{"steps": [{"id": "a", "arguments": {"n": 1e999}}]}'))
    with pytest.raises(ModelOutputError, match=r"not a valid plan: .*2 separate JSON objects"):
        parse_plan(say(json.dumps(plan) + " or " + json.dumps(plan)))


def test_a_json_decision_with_null_arguments_calls_the_tool_with_none() -> None:
    from agentcore.roles.decisions import parse_decision

    content = '{"tool_calls": [{"name": "lookup", "arguments": null}]}'
    decision = parse_decision(say(content), ["lookup"], call_prefix="d1_")
    assert [(c.id, c.name, c.arguments) for c in decision.tool_calls] == [("d1_call_1", "lookup", {})]


def test_a_plan_step_naming_an_unknown_tool_is_refused_when_the_tools_are_known() -> None:
    state = RunState(run_id="r", task="t")
    bad = {"ops": [{"op": "replace_plan", "steps": [{"id": "a", "tool": "rm_rf"}, {"id": "b", "tool": "lookup"}]}]}
    fixed = {"ops": [{"op": "replace_plan", "steps": [{"id": "a"}, {"id": "b", "tool": "lookup"}]}]}
    model = ScriptedChatModel([respond_json(bad), respond_json(fixed)])
    outcome = asyncio.run(process(model, state, SOURCE, max_attempts=2, tools=["lookup", "read_artifact"]))
    error = outcome.attempts[0].error
    assert error is not None and "step 'a' names unknown tool 'rm_rf'; tools: lookup, read_artifact" in error
    assert outcome.value == StatePatch.model_validate(fixed)
    # without a tool list (a caller that cannot know them) the step is not judged
    unchecked = asyncio.run(process(ScriptedChatModel([respond_json(bad)]), state, SOURCE, max_attempts=1))
    assert unchecked.value == StatePatch.model_validate(bad)


def test_a_plan_runner_revision_naming_an_unknown_tool_is_fed_back(db_path: Path, tmp_path: Path) -> None:
    from agentcore.core.plans import Plan
    from agentcore.runtime.plan_runner import PlanRunner

    bad = {"ops": [{"op": "replace_plan", "steps": [{"id": "next", "after": ["first"], "tool": "nope"}]}]}
    good = {"ops": [{"op": "replace_plan", "steps": [{"id": "next", "after": ["first"], "tool": "lookup", "arguments": {"key": "b"}}]}]}  # fmt: skip
    processor = ScriptedChatModel([respond_json(bad), respond_json(good), respond_json({"ops": []})])
    store = SQLiteEventStore(db_path)
    runner = PlanRunner(store, tools=[lookup_tool({"a": "1", "b": "2"})], processor_model=processor, revise=True)
    plan = Plan(steps=(Step(id="first", tool="lookup", arguments={"key": "a"}),))
    result = runner.run_sync("look up a then b", plan)
    log = list(store.read(result.run_id))
    store.close()
    assert result.status == "succeeded"
    assert [s.status for s in result.state.plan.values()] == ["succeeded", "succeeded"]
    rejected = [e.error for e in log if isinstance(e, PatchRejected)]
    assert len(rejected) == 1 and "names unknown tool 'nope'" in rejected[0]
    check_log(db_path, result.run_id, tmp_path)


def test_only_text_that_is_not_json_is_searched_for_an_object_among_prose() -> None:
    with pytest.raises(NotJSON, match="not valid JSON"):
        read_json('Here: {"a": 1}')
    for refused in ('{"a": 1e309}', '{"a": NaN}', "[" * 100 + "]" * 100):
        with pytest.raises(JSONTextError) as caught:
            read_json(refused)
        assert not isinstance(caught.value, NotJSON)  # JSON, refused for what it holds: no prose to search
    assert read_model_json('Here is the patch: {"ops": []} Let me know!') == {"ops": []}
    with pytest.raises(ModelOutputError, match="cannot be used: the number 1e309 is too large"):
        read_model_json('{"a": 1e309}')
    with pytest.raises(ModelOutputError, match="cannot be used: the number 1e309 is too large"):
        read_model_json('Here: {"a": 1e309} ok')
    with pytest.raises(ModelOutputError, match="your answer is not valid JSON"):
        read_model_json("no JSON here")
