"""Typed patch ops: semantics, atomicity, errors for the model, and agreement with RFC 6902."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agentcore.core.events import ArtifactRef, RunStarted, StatePatched, StepSucceeded
from agentcore.core.fold import (
    Fact,
    Question,
    RunState,
    apply,
    apply_json_patch,
    apply_patch,
    check_patch,
    compile_patch,
    fold,
)
from agentcore.core.json_patch import json_equal
from agentcore.core.patches import (
    PATCH_OP_ADAPTER,
    AddOpenQuestions,
    AnswerQuestion,
    AppendKnownFacts,
    FactInput,
    JsonPatch,
    QuestionInput,
    ReplacePlan,
    SetStepStatus,
    StatePatch,
)
from agentcore.core.plans import Plan, Step, validate_plan
from agentcore.errors import PatchError, PlanError
from tests.support.strategies import event_logs, json_values, patch_ops

AT = datetime(2025, 1, 1, tzinfo=timezone.utc)
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fact(key: str, value: str = "v", **kw: Any) -> FactInput:
    return FactInput(key=key, value=value, **kw)


def steps(*spec: str) -> tuple[Step, ...]:
    """``steps("a", "b<a", "c<a,b")``: ids with their dependencies after ``<``."""
    out = []
    for s in spec:
        sid, _, deps = s.partition("<")
        out.append(Step(id=sid, after=tuple(d for d in deps.split(",") if d)))
    return tuple(out)


def state_with(*spec: str, facts: tuple[str, ...] = (), questions: tuple[str, ...] = ()) -> RunState:
    state = fold([RunStarted(run_id="r", seq=1, at=AT, task="t", plan=Plan(steps=steps(*spec)))])
    ops: list[Any] = []
    if facts:
        ops.append(AppendKnownFacts(facts=tuple(fact(k) for k in facts)))
    if questions:
        ops.append(AddOpenQuestions(questions=tuple(QuestionInput(id=q, text=f"{q}?") for q in questions)))
    return apply_patch(state, ops, 2) if ops else state


def succeed(state: RunState, step_id: str, seq: int = 50) -> RunState:
    ref = ArtifactRef(id="sha256:" + "a" * 64, size=1)
    return apply(state, StepSucceeded(run_id="r", seq=seq, at=AT, step_id=step_id, attempt=1, payload="ok", result=ref))


# --------------------------------------------------------------------------------------------
# each op


def test_append_known_facts_adds_and_supersedes_with_the_seq() -> None:
    state = state_with()
    apply_patch(state, [AppendKnownFacts(facts=(fact("a", "1"), fact("b", "2", source="call_1")))], 5)
    apply_patch(state, [AppendKnownFacts(facts=(fact("a", "1b", confidence=0.5),))], 9)
    assert state.known_facts["a"] == Fact(key="a", value="1b", confidence=0.5, seq=9)
    assert state.known_facts["b"] == Fact(key="b", value="2", source="call_1", seq=5)
    assert list(state.known_facts) == ["a", "b"]


def test_add_and_answer_questions() -> None:
    state = state_with()
    apply_patch(state, [AddOpenQuestions(questions=(QuestionInput(id="q1", text="where?"),))], 3)
    assert state.open_questions["q1"] == Question(id="q1", text="where?")
    apply_patch(state, [AnswerQuestion(id="q1", answer="here")], 4)
    assert state.open_questions["q1"] == Question(id="q1", text="where?", status="answered", answer="here")


def test_question_ids_must_be_new() -> None:
    state = state_with(questions=("q1",))
    with pytest.raises(PatchError, match="'q1' already exists") as info:
        check_patch(state, [AddOpenQuestions(questions=(QuestionInput(id="q1", text="again?"),))])
    assert info.value.path == "/open_questions/q1"
    twice = AddOpenQuestions(questions=(QuestionInput(id="q2", text="a"), QuestionInput(id="q2", text="b")))
    with pytest.raises(PatchError, match="'q2' already exists"):
        check_patch(state, [twice])
    assert set(state.open_questions) == {"q1"}


def test_answering_an_unknown_question_is_rejected_listing_the_open_ones() -> None:
    state = state_with(questions=("q1", "q2"))
    with pytest.raises(PatchError, match=r"no question 'q9'; open questions: q1, q2") as info:
        check_patch(state, [AnswerQuestion(id="q9", answer="x")])
    assert (info.value.op_index, info.value.path) == (0, "/open_questions/q9")


def test_set_step_status() -> None:
    state = state_with("a", "b<a")
    apply_patch(state, [SetStepStatus(step_id="a", status="failed", error="bad file")], 3)
    assert (state.plan["a"].status, state.plan["a"].error) == ("failed", "bad file")
    apply_patch(state, [SetStepStatus(step_id="a", status="pending")], 4)
    assert (state.plan["a"].status, state.plan["a"].error) == ("pending", "bad file")
    with pytest.raises(PatchError, match="no step 'zz'; steps: a, b") as info:
        check_patch(state, [SetStepStatus(step_id="zz", status="running")])
    assert info.value.path == "/plan/zz/status"


@pytest.mark.parametrize("status", ["pending", "running", "failed", "skipped"])
def test_a_succeeded_step_cannot_be_set_back(status: str) -> None:
    state = succeed(state_with("a"), "a")
    before = state.to_json()
    with pytest.raises(PatchError, match="'a' already succeeded") as info:
        apply_patch(state, [SetStepStatus(step_id="a", status=status)], 60)  # type: ignore[arg-type]
    assert (info.value.op_index, info.value.path) == (0, "/plan/a/status")
    assert state.to_json() == before


def test_replace_plan_replaces_pending_steps_and_the_failure_policy() -> None:
    state = state_with("a", "b<a")
    apply_patch(state, [ReplacePlan(steps=steps("x", "y<x"), on_failure="continue")], 3)
    assert list(state.plan) == ["x", "y"] and state.on_failure == "continue"
    assert state.plan["y"].after == ("x",) and state.plan["y"].status == "pending"


def test_replace_plan_keeps_completed_steps_completed() -> None:
    state = succeed(state_with("a", "b<a", "c"), "a")
    done = state.plan["a"]
    # "a" redefined in the new plan: its finished state wins
    apply_patch(state, [ReplacePlan(steps=(Step(id="a", description="again"), *steps("d<a")))], 60)
    assert state.plan["a"] is done and state.plan["a"].status == "succeeded" and state.plan["a"].result is not None
    assert set(state.plan) == {"a", "d"}


def test_completed_steps_may_be_depended_on_when_omitted() -> None:
    state = succeed(state_with("a", "b<a"), "a")
    apply_patch(state, [ReplacePlan(steps=steps("c<a"))], 60)
    assert list(state.plan) == ["a", "c"], "the finished step stays in the plan"
    assert state.plan["a"].status == "succeeded"
    validate_plan([s for s in state.plan.values() if s.status == "pending"], known=["a"])


def test_a_step_whose_dependencies_left_the_plan_cannot_go_back_to_pending() -> None:
    state = state_with("a", "b<a")
    apply_patch(state, [SetStepStatus(step_id="b", status="running")], 3)
    apply_patch(state, [ReplacePlan(steps=steps("c"))], 4)
    assert list(state.plan) == ["b", "c"], "the running step is kept"
    with pytest.raises(PatchError, match=r"depends on 'a', which the plan no longer has") as info:
        check_patch(state, [SetStepStatus(step_id="b", status="pending")])
    assert info.value.path == "/plan/b/status"
    apply_patch(state, [SetStepStatus(step_id="b", status="succeeded")], 5)
    assert state.plan["b"].status == "succeeded"


def test_a_failed_step_is_not_kept_and_cannot_be_depended_on_when_omitted() -> None:
    state = state_with("a", "b")
    apply_patch(state, [SetStepStatus(step_id="a", status="failed")], 3)
    with pytest.raises(PatchError, match="unknown step 'a'"):
        check_patch(state, [ReplacePlan(steps=steps("c<a"))])


@pytest.mark.parametrize(
    ("new_steps", "message"),
    [
        (steps("x", "x"), "duplicate step id 'x'"),
        (steps("x<nope"), "depends on unknown step 'nope'"),
        (steps("x<x"), "depends on itself"),
        (steps("x<z", "y<x", "z<y"), r"cycle: (x -> y -> z -> x|y -> z -> x -> y|z -> x -> y -> z)"),
    ],
)
def test_replace_plan_rejects_invalid_plans(new_steps: tuple[Step, ...], message: str) -> None:
    state = state_with("a")
    before = state.to_json()
    with pytest.raises(PatchError, match=message) as info:
        apply_patch(state, [ReplacePlan(steps=new_steps)], 3)
    assert (info.value.op_index, info.value.path) == (0, "/plan")
    assert state.to_json() == before


def test_raw_json_patch_applies_to_the_state_document() -> None:
    state = state_with("a", facts=("k",))
    apply_patch(state, [JsonPatch(patch=({"op": "replace", "path": "/on_failure", "value": "abort"},))], 3)
    apply_patch(state, [JsonPatch(patch=({"op": "remove", "path": "/known_facts/k"},))], 4)
    assert state.on_failure == "abort" and state.known_facts == {}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/status", "succeeded"),
        ("/reply", "forged"),
        ("/task", "another"),
        ("/usage", {"controller": {"total_tokens": 5}}),
        ("/pending_calls", {"x": {"id": "x", "name": "rm", "arguments": {}}}),
    ],
)
def test_a_raw_patch_cannot_rewrite_the_runs_own_record(path: str, value: object) -> None:
    state = state_with("a", facts=("k",))
    before = state.to_json()
    with pytest.raises(PatchError, match="a json_patch may change only known_facts"):
        apply_patch(state, [JsonPatch(patch=({"op": "replace", "path": path, "value": value},))], 3)
    assert state.to_json() == before


def test_a_raw_patch_cannot_reopen_a_succeeded_step() -> None:
    state = state_with("a")
    apply_patch(state, [SetStepStatus(step_id="a", status="succeeded")], 3)
    for patch in (
        {"op": "replace", "path": "/plan/a/status", "value": "pending"},
        {"op": "remove", "path": "/plan/a"},
    ):
        with pytest.raises(PatchError, match="finished steps stay finished"):
            apply_patch(state, [JsonPatch(patch=(patch,))], 4)
    assert state.plan["a"].status == "succeeded"


def test_facts_set_by_a_raw_patch_carry_its_seq() -> None:
    state = state_with(facts=("old",))
    raw = JsonPatch(patch=({"op": "add", "path": "/known_facts/k", "value": {"key": "k", "value": "v", "seq": 1}},))
    compiled = compile_patch(state, [raw], 7)
    apply_patch(state, [raw], 7)
    assert state.known_facts["k"].seq == 7, "provenance: the fact points at the event that set it"
    assert state.known_facts["old"].seq == 2, "untouched facts keep theirs"
    assert compiled[0] == raw.patch[0]
    assert compiled[-1] == {"op": "replace", "path": "/known_facts/k/seq", "value": 7}


def test_a_raw_patch_may_lean_on_defaults_and_compiles_to_what_it_did() -> None:
    state = state_with(facts=("k",))
    ops = [
        JsonPatch(patch=({"op": "add", "path": "/known_facts/n", "value": {"key": "n", "value": "v"}},)),
        JsonPatch(patch=({"op": "remove", "path": "/open_questions"},)),
    ]
    before = state.to_json()
    compiled = compile_patch(state, ops, 5)
    apply_patch(state, ops, 5)
    assert state.known_facts["n"] == Fact(key="n", value="v", seq=5) and state.open_questions == {}
    assert jsonpatch.apply_patch(before, compiled) == state.to_json()


@pytest.mark.parametrize(
    ("patch", "message", "path"),
    [
        ({"op": "replace", "path": "/status", "value": "sleeping"}, "invalid.*status", "/status"),
        ({"op": "add", "path": "/known_facts/x", "value": {"key": "x"}}, "invalid.*value", "/known_facts/x/value"),
        ({"op": "add", "path": "/bogus", "value": 1}, "invalid.*bogus", "/bogus"),
        ({"op": "add", "path": "/known_facts/x", "value": {"key": "y", "value": "v"}}, "key must equal", None),
        ({"op": "add", "path": "/plan/b", "value": {"id": "b", "after": ["zz"]}}, "unknown step 'zz'", "/plan"),
        ({"op": "add", "path": "/plan/a/after/0", "value": "a"}, "depends on itself", "/plan"),
        ({"op": "remove", "path": "/plan/nope"}, "no member 'nope'", "/plan/nope"),
        ({"op": "test", "path": "/task", "value": "other"}, "test failed", "/task"),
    ],
)
def test_raw_json_patch_producing_an_invalid_state_is_rejected(patch: dict[str, Any], message: str, path: str) -> None:
    state = state_with("a", facts=("k",))
    before = state.to_json()
    ops = [AppendKnownFacts(facts=(fact("fine"),)), JsonPatch(patch=(patch,))]
    with pytest.raises(PatchError, match=message) as info:
        apply_patch(state, ops, 3)
    assert info.value.op_index == 1
    if path is not None:
        assert info.value.path == path
    assert state.to_json() == before


# --------------------------------------------------------------------------------------------
# atomicity and errors


@pytest.mark.parametrize(
    "failing",
    [
        AnswerQuestion(id="missing", answer="x"),
        SetStepStatus(step_id="nope", status="running"),
        ReplacePlan(steps=steps("p<p")),
        JsonPatch(patch=({"op": "replace", "path": "/decisions", "value": "many"},)),
    ],
)
def test_a_patch_whose_third_op_fails_leaves_the_state_exactly_as_before(failing: Any) -> None:
    state = state_with("a", "b<a", facts=("k",), questions=("q",))
    before = state.to_json()
    ops = [
        ReplacePlan(steps=steps("x", "y<x"), on_failure="abort"),
        AppendKnownFacts(facts=(fact("k", "changed"), fact("new"))),
        failing,
        AnswerQuestion(id="q", answer="never applied"),
    ]
    with pytest.raises(PatchError) as info:
        apply_patch(state, ops, 3)
    assert info.value.op_index == 2
    assert info.value.reason and failing.op in str(info.value)
    assert state.to_json() == before
    # the same through the fold's path: a failing stored event leaves an applied-to state untouched
    with pytest.raises(PatchError):
        apply(state, StatePatched(run_id="r", seq=3, at=AT, ops=tuple(ops)))
    assert state.to_json() == before


def test_patch_error_names_op_index_path_and_reason() -> None:
    state = state_with("a")
    ops = [
        AppendKnownFacts(facts=(fact("x"),)),
        SetStepStatus(step_id="a", status="running"),
        AnswerQuestion(id="q", answer="a"),
    ]
    with pytest.raises(PatchError) as info:
        check_patch(state, ops)
    err = info.value
    assert err.op_index == 2
    assert err.path == "/open_questions/q"
    assert "op 2 (answer_question)" in str(err) and "no question 'q'" in err.reason


def test_check_patch_never_changes_the_state() -> None:
    state = state_with("a", facts=("k",))
    before = state.to_json()
    check_patch(state, [AppendKnownFacts(facts=(fact("z"),)), ReplacePlan(steps=steps("n"), on_failure="abort")])
    assert state.to_json() == before


def test_ops_are_strict_about_their_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        PATCH_OP_ADAPTER.validate_python({"op": "answer_question", "id": "q", "answer": "a", "confidence": 1})
    with pytest.raises(ValidationError):
        PATCH_OP_ADAPTER.validate_python({"op": "append_known_facts", "facts": []})
    with pytest.raises(ValidationError, match=r"union_tag_invalid|does not match any of the expected tags"):
        PATCH_OP_ADAPTER.validate_python({"op": "delete_everything"})
    parsed = StatePatch.model_validate_json('{"ops": [{"op": "answer_question", "id": "q", "answer": "a"}]}')
    assert parsed.ops == (AnswerQuestion(id="q", answer="a"),)


# --------------------------------------------------------------------------------------------
# compile_patch and random sequences


def test_compile_patch_escapes_keys_in_paths() -> None:
    state = state_with("a/b")
    ops = [AppendKnownFacts(facts=(fact("x/y~z"),)), SetStepStatus(step_id="a/b", status="running")]
    compiled = compile_patch(state, ops, 2)
    assert [(o["op"], o["path"]) for o in compiled] == [("add", "/known_facts/x~1y~0z"), ("replace", "/plan/a~1b")]
    assert compiled[0]["value"]["seq"] == 2


@PROPS
@given(log=event_logs(max_events=12), data=st.data())
def test_compile_patch_agrees_with_the_fast_path(log: list[Any], data: st.DataObject) -> None:
    before = fold(log)
    ops = data.draw(st.lists(patch_ops(before), min_size=1, max_size=3))
    snapshot = before.to_json()
    try:
        compiled = compile_patch(before, ops, before.last_seq + 1)
    except PatchError:
        with pytest.raises(PatchError):
            check_patch(before, ops)
        assert before.to_json() == snapshot
        return
    assert before.to_json() == snapshot, "compile_patch leaves the state as it was"
    after = apply_patch(before.clone(), ops, before.last_seq + 1)
    # our strict RFC 6902 path: jsonpatch 1.33 wrongly reads an object member named '-' as 'append'
    assert apply_json_patch(snapshot, compiled) == after.to_json()


@PROPS
@given(log=event_logs(max_events=6), data=st.data())
def test_random_patch_sequences_never_leave_an_invalid_state(log: list[Any], data: st.DataObject) -> None:
    state = fold(log)
    for seq in range(state.last_seq + 1, state.last_seq + 6):
        ops = data.draw(st.lists(patch_ops(state), min_size=1, max_size=3))
        before = state.to_json()
        try:
            check_patch(state, ops, seq)
        except PatchError as e:
            assert e.op_index is not None and 0 <= e.op_index < len(ops) and e.reason
            assert state.to_json() == before
            continue
        plan_was_sound = plan_is_sound(state)
        apply_patch(state, ops, seq)
        assert RunState.model_validate(state.to_json()) == state
        for field, attr in (("plan", "id"), ("known_facts", "key"), ("open_questions", "id")):
            assert all(getattr(v, attr) == k for k, v in getattr(state, field).items())
        if plan_was_sound:
            assert plan_is_sound(state), "an accepted patch left steps to run with unknown dependencies"


def plan_is_sound(state: RunState) -> bool:
    """Every step still to run (or rerun) depends only on steps in the plan, without cycles."""
    kept = [s for s, v in state.plan.items() if v.status in ("succeeded", "running")]
    try:
        validate_plan([v for v in state.plan.values() if v.status not in ("succeeded", "running")], known=kept)
    except PlanError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# JSON equality, not Python's: True == 1 in Python, never in a state


_TWINS = [(1, True), (0, False), (True, 1), (False, 0), (1.0, True), ([1], [True]), ({"n": 0}, {"n": False})]


@pytest.mark.parametrize(("old", "new"), _TWINS)
def test_a_raw_replace_by_a_python_equal_value_still_changes_the_state(old: Any, new: Any) -> None:
    state = fold([RunStarted(run_id="r", seq=1, at=AT, task="t",
                             plan=Plan(steps=(Step(id="a", tool="t", arguments={"v": old}),)))])  # fmt: skip
    ops = [JsonPatch(patch=({"op": "replace", "path": "/plan/a/arguments/v", "value": new},))]
    compiled = compile_patch(state, ops, 2)
    apply_patch(state, ops, 2)
    assert json_equal(state.plan["a"].arguments["v"], new) and not json_equal(new, old)
    assert any(op["path"].startswith("/plan") for op in compiled)


@settings(max_examples=150, deadline=None)
@given(old=json_values, new=json_values)
def test_a_raw_replace_leaves_exactly_the_new_json_value(old: Any, new: Any) -> None:
    state = fold([RunStarted(run_id="r", seq=1, at=AT, task="t",
                             plan=Plan(steps=(Step(id="a", tool="t", arguments={"v": old}),)))])  # fmt: skip
    before = state.to_json()
    ops = [JsonPatch(patch=({"op": "replace", "path": "/plan/a/arguments/v", "value": new},))]
    compiled = compile_patch(state, ops, 2)
    via_event = apply(state.clone(), StatePatched(run_id="r", seq=2, at=AT, ops=tuple(ops)))
    apply_patch(state, ops, 2)
    assert json_equal(state.plan["a"].arguments["v"], new)
    assert json_equal(via_event.to_json()["plan"], state.to_json()["plan"])  # the fold of the stored event agrees
    assert json_equal(apply_json_patch(before, compiled), state.to_json())  # and so does the RFC 6902 form


@settings(max_examples=200, deadline=None)
@given(a=json_values, b=json_values)
def test_json_equal_is_python_equality_that_tells_booleans_from_numbers(a: Any, b: Any) -> None:
    import json as _json

    same_text = _json.dumps(a, sort_keys=True) == _json.dumps(b, sort_keys=True)
    assert json_equal(a, a)
    if same_text:
        assert json_equal(a, b)
    if json_equal(a, b):
        assert a == b  # never looser than Python
