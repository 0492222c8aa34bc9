"""Events: JSON round trips of every type, immutability, strict fields, versions and upcasting."""

from __future__ import annotations

import json
import typing
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agentcore.core import event_codec as codec
from agentcore.core import events as ev
from agentcore.core.event_codec import EVENT_ADAPTER, decode_event, encode_event, upcast
from agentcore.core.events import (
    EVENT_TYPES,
    LLMCalled,
    RunStarted,
    StepFailed,
    StepSucceeded,
    TokenUsage,
    UserMessaged,
)
from agentcore.errors import EventError, UnknownEventType, UnsupportedEventVersion
from tests.support.strategies import event_of

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

# the smallest valid body of each type, beyond the common fields
MINIMAL: dict[str, dict[str, Any]] = {
    "run_started": {"task": "t"},
    "user_messaged": {"text": "hi"},
    "llm_called": {"role": "controller", "model": "m", "request_digest": "d"},
    "decided": {"decision": {"kind": "reply", "reply": "done"}},
    "tool_started": {"call": {"id": "c1", "name": "search"}, "idempotency_key": "r/c1"},
    "tool_finished": {"call_id": "c1", "name": "search", "ok": True, "payload": "3 hits"},
    "state_patched": {"ops": [{"op": "answer_question", "id": "q", "answer": "a"}]},
    "patch_rejected": {"error": "no question 'q'"},
    "step_started": {"step_id": "s", "attempt": 1, "idempotency_key": "r/s/1"},
    "step_succeeded": {"step_id": "s", "attempt": 1},
    "step_failed": {"step_id": "s", "attempt": 1, "error": "boom"},
    "step_skipped": {"step_id": "s", "reason": "dependency failed"},
    "run_finished": {"status": "succeeded"},
}


def body(tag: str, **extra: Any) -> dict[str, Any]:
    return {"type": tag, "run_id": "r1", "seq": 1, "at": AT.isoformat(), **MINIMAL[tag], **extra}


def test_minimal_bodies_cover_every_type_and_the_union() -> None:
    assert set(MINIMAL) == set(EVENT_TYPES)
    union_members = typing.get_args(typing.get_args(ev.Event)[0])
    assert set(union_members) == set(EVENT_TYPES.values())
    for tag, cls in EVENT_TYPES.items():
        assert cls.model_fields["type"].default == tag
        assert isinstance(decode_event(body(tag)), cls)


@pytest.mark.parametrize("tag", sorted(EVENT_TYPES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_json_round_trip_of_every_type(tag: str, data: st.DataObject) -> None:
    event = data.draw(event_of(EVENT_TYPES[tag]))
    assert EVENT_ADAPTER.validate_json(EVENT_ADAPTER.dump_json(event)) == event
    text = encode_event(event)
    assert decode_event(text) == event
    assert decode_event(text.encode()) == event
    assert decode_event(json.loads(text)) == event
    assert encode_event(decode_event(text)) == text, "the encoding is canonical: it survives a round trip"


@pytest.mark.parametrize("tag", sorted(EVENT_TYPES))
def test_events_are_frozen(tag: str) -> None:
    event = decode_event(body(tag))
    with pytest.raises(ValidationError, match="frozen"):
        event.seq = 2  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        event.run_id = "other"  # type: ignore[misc]
    assert event.seq == 1 and event.run_id == "r1"


@pytest.mark.parametrize("tag", sorted(EVENT_TYPES))
def test_extra_fields_are_rejected_naming_the_field(tag: str) -> None:
    with pytest.raises(EventError, match="sneaky"):
        decode_event(json.dumps(body(tag, sneaky=1)))
    with pytest.raises(EventError, match="sneaky"):
        decode_event(body(tag, sneaky=1))
    with pytest.raises(ValidationError):
        EVENT_ADAPTER.validate_python(body(tag, sneaky=1))


def test_nested_extra_fields_are_rejected_too() -> None:
    bad = body("decided", decision={"kind": "reply", "reply": "x", "confidence": 0.3})
    with pytest.raises(EventError, match="confidence"):
        decode_event(json.dumps(bad))
    bad_op = body("state_patched", ops=[{"op": "answer_question", "id": "q", "answer": "a", "typo": 1}])
    with pytest.raises(EventError, match="typo"):
        decode_event(bad_op)


@pytest.mark.parametrize("as_text", [True, False])
def test_unknown_type_is_named(as_text: bool) -> None:
    raw = {**body("user_messaged"), "type": "tool_exploded"}
    with pytest.raises(UnknownEventType, match="tool_exploded") as info:
        decode_event(json.dumps(raw) if as_text else raw)
    assert "user_messaged" in str(info.value), "the message lists the known types"
    with pytest.raises(UnknownEventType, match="None"):
        decode_event({k: v for k, v in raw.items() if k != "type"})


@pytest.mark.parametrize("as_text", [True, False])
def test_newer_version_is_refused_naming_it(as_text: bool) -> None:
    raw = body("user_messaged", v=7)
    with pytest.raises(UnsupportedEventVersion, match="version 7") as info:
        decode_event(json.dumps(raw) if as_text else raw)
    assert "user_messaged" in str(info.value) and "upgrade agentcore" in str(info.value)


@pytest.mark.parametrize("bad", [0, -1, "2", None])
def test_invalid_version_is_an_event_error(bad: object) -> None:
    with pytest.raises(EventError, match="schema version"):
        decode_event(json.dumps(body("user_messaged", v=bad)))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        ("[1, 2]", "JSON object, got list"),
        ('"text"', "JSON object, got str"),
        (json.dumps({**MINIMAL["user_messaged"], "type": "user_messaged", "run_id": "r", "seq": 0, "at": "x"}), "seq"),
    ],
)
def test_unreadable_bodies_fail_with_event_errors(data: str | bytes, match: str) -> None:
    with pytest.raises(EventError, match=match):
        decode_event(data)


def test_float_fields_must_be_finite() -> None:
    # JSON has no NaN or infinity: such an event could be written but never read back
    with pytest.raises(ValidationError, match="finite"):
        LLMCalled(run_id="r", seq=1, at=AT, role="controller", model="m", request_digest="d", latency_ms=float("nan"))
    with pytest.raises(ValidationError, match="finite"):
        RunStarted(run_id="r", seq=1, at=AT, task="t", plan={"retry": {"max_delay": float("inf")}})


def test_token_usage_adds_field_by_field() -> None:
    total = TokenUsage(prompt_tokens=1, completion_tokens=2, total_tokens=3) + TokenUsage(
        prompt_tokens=10, completion_tokens=20, total_tokens=30
    )
    assert total == TokenUsage(prompt_tokens=11, completion_tokens=22, total_tokens=33)


# --------------------------------------------------------------------------------------------
# upcasting


@pytest.fixture
def v2_user_messaged(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Pretend ``user_messaged`` is at version 2; version 1 called the field ``message``."""
    seen: list[dict[str, Any]] = []

    def v1_to_v2(old: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(old))
        new = {k: v for k, v in old.items() if k != "message"}
        new["text"] = old.get("message", old.get("text"))
        new["v"] = 2
        return new

    monkeypatch.setitem(codec.CURRENT_VERSION, "user_messaged", 2)
    monkeypatch.setitem(codec.UPCASTERS, ("user_messaged", 1), v1_to_v2)
    return seen


@pytest.mark.parametrize("as_text", [True, False])
def test_old_bodies_are_upcast_on_read(v2_user_messaged: list[dict[str, Any]], as_text: bool) -> None:
    old = {"type": "user_messaged", "v": 1, "run_id": "r1", "seq": 4, "at": AT.isoformat(), "message": "hello"}
    event = decode_event(json.dumps(old) if as_text else old)
    assert isinstance(event, UserMessaged)
    assert (event.text, event.v, event.seq) == ("hello", 2, 4)
    assert v2_user_messaged == [old]


def test_old_bodies_that_validate_as_is_are_still_upcast(v2_user_messaged: list[dict[str, Any]]) -> None:
    # a v1 body shaped like v2 must not slip through the fast path un-upcast
    old = body("user_messaged", v=1)
    event = decode_event(json.dumps(old))
    assert event.v == 2
    assert len(v2_user_messaged) == 1


def test_current_bodies_skip_the_upcasters(v2_user_messaged: list[dict[str, Any]]) -> None:
    event = decode_event(json.dumps(body("user_messaged", v=2)))
    assert event.v == 2 and event.text == "hi"
    assert v2_user_messaged == []
    other = decode_event(json.dumps(body("run_finished")))
    assert other.v == 1


def test_upcast_chains_versions_and_reports_gaps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(codec.CURRENT_VERSION, "step_skipped", 3)
    monkeypatch.setitem(codec.UPCASTERS, ("step_skipped", 1), lambda b: {**b, "v": 2, "reason": "v2:" + b["reason"]})
    with pytest.raises(UnsupportedEventVersion, match="no upcaster for event type 'step_skipped' version 2"):
        upcast(body("step_skipped", v=1))
    monkeypatch.setitem(codec.UPCASTERS, ("step_skipped", 2), lambda b: {**b, "v": 3, "reason": "v3:" + b["reason"]})
    assert upcast(body("step_skipped", v=1))["reason"] == "v3:v2:dependency failed"
    assert decode_event(body("step_skipped", v=2)).reason == "v3:dependency failed"


def test_an_upcaster_that_does_not_bump_the_version_fails_instead_of_looping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(codec.CURRENT_VERSION, "run_finished", 2)
    monkeypatch.setitem(codec.UPCASTERS, ("run_finished", 1), lambda b: dict(b))
    with pytest.raises(EventError, match="must return a version 2 body"):
        decode_event(body("run_finished", v=1))


def test_run_config_reads_what_agent_and_plan_runner_write() -> None:
    from agentcore.core.events import RunStarted
    from agentcore.runtime.agent import Agent
    from agentcore.testing import demo_agent

    agent: Agent = demo_agent({"a": "1"})
    at = datetime(2024, 1, 1, tzinfo=timezone.utc)
    started = RunStarted(run_id="r", seq=1, at=at, task="t", config=agent.config())
    config = started.run_config()
    assert config.runner == "agent" and config.max_steps == agent.max_steps
    assert config.model_name("controller") == agent.controller_model.name
    assert config.model_name("processor") == agent.processor_model.name
    plan = RunStarted(run_id="r", seq=1, at=at, task="t", config={"runner": "plan", "planner_model": "p", "seed": 3})
    assert plan.run_config().runner == "plan" and plan.run_config().model_name("planner") == "p"
    assert plan.run_config().model_extra == {"seed": 3}  # keys this version does not know are kept


def test_run_config_of_the_wrong_type_is_an_event_error_naming_the_run() -> None:
    from agentcore.core.events import RunStarted

    bad = RunStarted(
        run_id="r9", seq=1, at=datetime(2024, 1, 1, tzinfo=timezone.utc), task="t", config={"max_steps": "many"}
    )
    with pytest.raises(EventError, match=r"(?s)run .r9.*max_steps"):
        bad.run_config()


@pytest.mark.parametrize(
    ("kind", "error", "upcast_kind"),
    [
        ("timeout", "stopped: the run's deadline of 30s passed", "deadline"),
        ("timeout", "step 'a' ran longer than its timeout of 5s", "timeout"),
        ("cancelled", "stopped: the run's deadline of 30s passed", "cancelled"),
        ("error", "boom", "error"),
    ],
)
def test_v1_step_failed_deadline_stops_are_upcast_to_kind_deadline(kind: str, error: str, upcast_kind: str) -> None:
    """v1 logs wrote a deadline stop as kind ``timeout`` with a telltale error; v2 has kind ``deadline``."""
    old = {"type": "step_failed", "v": 1, "run_id": "r1", "seq": 3, "at": AT.isoformat(),
           "step_id": "a", "attempt": 1, "error": error, "kind": kind}  # fmt: skip
    for data in (old, json.dumps(old)):
        e = decode_event(data)
        assert (
            isinstance(e, StepFailed) and e.v == 3 and e.kind == upcast_kind and e.error == error and e.worker is None
        )
    assert json.loads(encode_event(e))["v"] == 3


def test_older_step_outcomes_upcast_to_no_worker() -> None:
    """``step_succeeded`` v1 and ``step_failed`` v2 name no worker: the driving process ran the step."""
    done = {"type": "step_succeeded", "v": 1, "run_id": "r1", "seq": 3, "at": AT.isoformat(), "step_id": "a",
            "attempt": 1, "payload": "ok"}  # fmt: skip
    failed = {"type": "step_failed", "v": 2, "run_id": "r1", "seq": 4, "at": AT.isoformat(), "step_id": "a",
              "attempt": 1, "error": "boom", "kind": "error"}  # fmt: skip
    for data in (done, json.dumps(done), failed, json.dumps(failed)):
        e = decode_event(data)
        assert isinstance(e, (StepSucceeded, StepFailed)) and e.worker is None and e.v == codec.CURRENT_VERSION[e.type]
