"""The fold: split law, purity, determinism, per-event effects, and O(event) in-place application."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agentcore.core.event_codec import decode_event, encode_event
from agentcore.core.events import (
    ArtifactRef,
    BaseEvent,
    Decided,
    Decision,
    LLMCalled,
    PatchRejected,
    RunFinished,
    RunStarted,
    StatePatched,
    StepFailed,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    TokenUsage,
    ToolCall,
    ToolFinished,
    ToolStarted,
    UserMessaged,
)
from agentcore.core.fold import RECENT_WINDOW, Fact, RunState, apply, diff_states, fold
from agentcore.core.patches import AppendKnownFacts, FactInput
from agentcore.core.plans import Plan, RetryPolicy, Step
from agentcore.core.state import StepState, step_state, step_with
from tests.support.strategies import event_logs

AT = datetime(2025, 1, 1, tzinfo=timezone.utc)
LOGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Log:
    """Builds a run's events with consecutive seqs."""

    def __init__(self, run_id: str = "r1") -> None:
        self.run_id = run_id
        self.events: list[BaseEvent] = []

    def __call__(self, cls: type[BaseEvent], **fields: Any) -> BaseEvent:
        seq = len(self.events) + 1
        event = cls(run_id=self.run_id, seq=seq, at=AT + timedelta(seconds=seq), **fields)
        self.events.append(event)
        return event


def facts(*pairs: tuple[str, str]) -> AppendKnownFacts:
    return AppendKnownFacts(facts=tuple(FactInput(key=k, value=v) for k, v in pairs))


# --------------------------------------------------------------------------------------------
# laws


@LOGS
@given(log=event_logs(), data=st.data())
def test_split_law(log: list[BaseEvent], data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(log)), label="split")
    whole = fold(log)
    assert fold(log[k:], start=fold(log[:k])) == whole
    assert fold(log[k:], start=fold(log[:k])).to_json() == whole.to_json()


@LOGS
@given(log=event_logs(), data=st.data())
def test_fold_does_not_change_start(log: list[BaseEvent], data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(log)), label="split")
    start = fold(log[:k])
    before = start.to_json()
    containers = {name: id(getattr(start, name)) for name in ("plan", "known_facts", "open_questions", "recent")}
    fold(log[k:], start=start)
    assert start.to_json() == before
    assert {name: id(getattr(start, name)) for name in containers} == containers


@LOGS
@given(log=event_logs())
def test_fold_is_deterministic_and_the_stored_form_folds_the_same(log: list[BaseEvent]) -> None:
    a, b = fold(log), fold(list(log))
    assert a == b and a.to_json() == b.to_json()
    assert fold(decode_event(encode_event(e)) for e in log) == a
    assert a.last_seq == len(log)


@LOGS
@given(log=event_logs())
def test_folded_state_is_valid_json_state(log: list[BaseEvent]) -> None:
    state = fold(log)
    assert RunState.model_validate(state.to_json()) == state
    for key, fact in state.known_facts.items():
        assert fact.key == key and 1 <= fact.seq <= state.last_seq


@LOGS
@given(log=event_logs(), data=st.data())
def test_apply_event_by_event_equals_fold(log: list[BaseEvent], data: st.DataObject) -> None:
    state = RunState()
    for event in log:
        assert apply(state, event) is state, "apply works in place"
    assert state == fold(log)
    k = data.draw(st.integers(0, len(log)), label="split")
    a, b = fold(log[:k]), fold(log)
    assert jsonpatch.apply_patch(a.to_json(), diff_states(a, b)) == b.to_json()


# --------------------------------------------------------------------------------------------
# O(event): apply touches only what the event names


def test_apply_touches_only_the_changed_fact() -> None:
    log = Log()
    log(RunStarted, task="t", plan=Plan(steps=(Step(id="a"), Step(id="b", after=("a",)))))
    log(StatePatched, ops=(facts(*((f"k{i}", f"v{i}") for i in range(500))),))
    state = fold(log.events)
    containers = (state.known_facts, state.plan, state.open_questions)
    before = dict(state.known_facts)
    plan_before = dict(state.plan)

    apply(state, log(StatePatched, ops=(facts(("k7", "new"), ("fresh", "x")),)))

    assert (state.known_facts, state.plan, state.open_questions) == containers
    assert all(a is b for a, b in zip(containers, (state.known_facts, state.plan, state.open_questions), strict=True))
    changed = {k for k, f in state.known_facts.items() if before.get(k) is not f}
    assert changed == {"k7", "fresh"}
    assert state.known_facts["k7"] == Fact(key="k7", value="new", seq=3)
    assert all(state.plan[s] is plan_before[s] for s in plan_before)

    apply(state, log(StepStarted, step_id="a", attempt=1, idempotency_key="r1/a/1"))
    assert state.plan["b"] is plan_before["b"] and state.plan["a"] is not plan_before["a"]
    assert sum(1 for k, f in state.known_facts.items() if before.get(k) is f) == 499


def test_apply_reads_a_stored_body() -> None:
    state = RunState()
    apply(state, {"type": "run_started", "run_id": "r9", "seq": 1, "at": AT.isoformat(), "task": "count"})
    assert (state.run_id, state.task, state.last_seq) == ("r9", "count", 1)


def test_an_event_type_without_a_fold_case_is_named() -> None:
    class Unknown(BaseEvent):
        type: str = "unknown"

    odd = Unknown(run_id="r", seq=1, at=AT)
    with pytest.raises(TypeError, match="Unknown"):
        apply(RunState(), odd)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Unknown"):
        fold([odd])  # type: ignore[list-item]


# --------------------------------------------------------------------------------------------
# what each event does


def test_run_started_loads_the_plan_and_its_defaults() -> None:
    plan = Plan(steps=(Step(id="a"), Step(id="b", after=("a",))), on_failure="abort", max_parallel=2)
    state = fold([RunStarted(run_id="r1", seq=1, at=AT, task="find x", plan=plan)])
    assert (state.run_id, state.task, state.status) == ("r1", "find x", "running")
    assert list(state.plan) == ["a", "b"]
    assert state.plan["b"].after == ("a",) and state.plan["b"].status == "pending"
    assert (state.on_failure, state.max_parallel, state.retry) == ("abort", 2, plan.retry)


def test_llm_calls_add_up_per_role() -> None:
    log = Log()
    log(RunStarted, task="t")
    for role, n in (("controller", 10), ("processor", 5), ("controller", 1)):
        usage = TokenUsage(prompt_tokens=n, completion_tokens=1, total_tokens=n + 1)
        log(LLMCalled, role=role, model="m", request_digest="d", usage=usage)
    state = fold(log.events)
    assert state.llm_calls == 3
    assert state.usage["controller"] == TokenUsage(prompt_tokens=11, completion_tokens=2, total_tokens=13)
    assert state.usage["processor"].total_tokens == 6
    assert state.tokens == 19


def test_asking_the_user_waits_until_the_user_answers() -> None:
    log = Log()
    log(RunStarted, task="t")
    log(Decided, decision=Decision(kind="ask_user", question="which repo?"))
    waiting = fold(log.events)
    assert (waiting.status, waiting.waiting_on, waiting.decisions) == ("waiting_for_user", "which repo?", 1)
    log(UserMessaged, text="agentcore", question="which repo?")
    answered = fold(log.events)
    assert (answered.status, answered.waiting_on) == ("running", None)


def test_tool_calls_are_pending_until_finished_and_recent_payloads_are_bounded() -> None:
    log = Log()
    log(RunStarted, task="t")
    for i in range(RECENT_WINDOW + 3):
        log(ToolStarted, call=ToolCall(id=f"c{i}", name="search", arguments={"q": i}), idempotency_key=f"r1/c{i}")
    assert set(fold(log.events).pending_calls) == {f"c{i}" for i in range(RECENT_WINDOW + 3)}
    ref = ArtifactRef(id="sha256:" + "0" * 64, size=3)
    for i in range(RECENT_WINDOW + 2):
        log(ToolFinished, call_id=f"c{i}", name="search", ok=i % 2 == 0, payload=f"p{i}", artifact=ref)
    state = fold(log.events)
    assert set(state.pending_calls) == {f"c{RECENT_WINDOW + 2}"}
    assert [r.payload for r in state.recent] == [f"p{i}" for i in range(2, RECENT_WINDOW + 2)]
    assert state.recent[-1].artifact_id == ref.id and state.recent[-1].seq == log.events[-1].seq


def test_step_events_move_a_step_through_its_life() -> None:
    log = Log()
    plan = Plan(steps=(Step(id="a"), Step(id="b"), Step(id="c"), Step(id="d")))
    log(RunStarted, task="t", plan=plan)
    log(StepStarted, step_id="a", attempt=1, idempotency_key="r1/a/1")
    assert (fold(log.events).plan["a"].status, fold(log.events).plan["a"].attempts) == ("running", 1)
    log(StepFailed, step_id="a", attempt=1, error="timeout", kind="timeout", retryable=True, next_attempt_at=AT)
    a = fold(log.events).plan["a"]
    assert (a.status, a.error) == ("pending", "timeout"), "a failure with a next attempt leaves the step pending"
    log(StepStarted, step_id="a", attempt=2, idempotency_key="r1/a/2")
    ref = ArtifactRef(id="sha256:" + "1" * 64, size=9)
    log(StepSucceeded, step_id="a", attempt=2, payload="found it", result=ref)
    log(StepFailed, step_id="b", attempt=1, error="bad input", kind="validation")
    log(StepSkipped, step_id="c", reason="b failed")
    log(StepStarted, step_id="ghost", attempt=1, idempotency_key="r1/ghost/1")  # dropped from the plan: ignored
    state = fold(log.events)
    a = state.plan["a"]
    assert (a.status, a.attempts, a.payload, a.result, a.error) == ("succeeded", 2, "found it", ref, None)
    assert (state.plan["b"].status, state.plan["b"].error) == ("failed", "bad input")
    assert (state.plan["c"].status, state.plan["c"].error) == ("skipped", "b failed")
    assert state.plan["d"].status == "pending" and "ghost" not in state.plan


def test_a_step_status_change_copies_the_record_like_model_copy_and_leaves_the_old_one() -> None:
    """The fold's cheap copy of a frozen step record (``step_with``) gives what ``model_copy(update=)``
    gives: equal values, the same set fields, still frozen; the record it copied is unchanged."""
    step = step_state(Step(id="a", after=("b",), tool="t", arguments={"x": [1, 2]}))
    for update in ({"status": "running", "attempts": 2}, {"status": "failed", "error": "boom"}):
        fast, slow = step_with(step, update), step.model_copy(update=update)
        assert fast == slow and fast.model_dump_json() == slow.model_dump_json()
        assert fast.__pydantic_fields_set__ == slow.__pydantic_fields_set__
        assert (step.status, step.attempts, step.error) == ("pending", 0, None)
        with pytest.raises(ValidationError):
            fast.status = "succeeded"  # type: ignore[misc]


@pytest.mark.parametrize(
    "step",
    [
        Step(id="a"),
        Step(id="b", description="d", after=("a",), tool="t", arguments={"x": [1, {"y": None}]},
             retry=RetryPolicy(max_attempts=2), on_failure="continue", timeout_s=3.0),
    ],
)  # fmt: skip
def test_a_new_step_record_is_what_validating_the_step_gives_and_owns_its_arguments(step: Step) -> None:
    """``step_state`` builds the record without validating again: the same values and set fields
    as ``StepState.model_validate`` of the step's fields, and arguments of its own."""
    record = step_state(step)
    validated = StepState.model_validate({k: v for k, v in step.__dict__.items() if v is not None})
    assert record == validated and record.model_dump_json() == validated.model_dump_json()
    assert record.__pydantic_fields_set__ == validated.__pydantic_fields_set__
    assert (record.status, record.attempts) == ("pending", 0)
    if step.arguments:
        assert record.arguments == step.arguments and record.arguments["x"] is not step.arguments["x"]
        assert record.arguments["x"][1] is not step.arguments["x"][1]  # a dict inside a list: copied too


def test_patch_rejections_are_counted_and_change_nothing_else() -> None:
    log = Log()
    log(RunStarted, task="t")
    before = fold(log.events)
    log(PatchRejected, ops=({"op": "answer_question", "id": "q"},), error="no question 'q'", op_index=0)
    after = fold(log.events)
    assert after.patches_rejected == 1
    assert after.model_copy(update={"patches_rejected": 0, "last_seq": 1}) == before


def test_run_finished_sets_status_reason_and_reply() -> None:
    log = Log()
    log(RunStarted, task="t")
    log(Decided, decision=Decision(kind="reply", reply="draft"))
    assert fold(log.events).reply == "draft" and not fold(log.events).finished
    log(RunFinished, status="failed", reason="budget exhausted")
    state = fold(log.events)
    assert (state.status, state.reason, state.reply, state.finished) == ("failed", "budget exhausted", "draft", True)


def test_clone_is_independent() -> None:
    log = Log()
    log(RunStarted, task="t", plan=Plan(steps=(Step(id="a"),)))
    log(StatePatched, ops=(facts(("k", "v")),))
    original = fold(log.events)
    copy = original.clone()
    apply(copy, log(StatePatched, ops=(facts(("k2", "v2")),)))
    apply(copy, log(StepStarted, step_id="a", attempt=1, idempotency_key="r1/a/1"))
    assert set(original.known_facts) == {"k"} and original.plan["a"].status == "pending"
    assert set(copy.known_facts) == {"k", "k2"} and copy.plan["a"].status == "running"
