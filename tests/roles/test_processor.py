"""The processor role: its request, the parsing of patches and the dry run before anything is kept."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest

from agentcore.core.events import ArtifactRef, RunStarted, ToolCall, ToolFinished
from agentcore.core.fold import RunState, fold
from agentcore.core.patches import AppendKnownFacts, StatePatch
from agentcore.errors import ConfigError, ModelOutputError, ModelRequestError
from agentcore.models.base import ChatResponse
from agentcore.models.scripted import ScriptedChatModel, respond_json, say
from agentcore.roles.processor import (
    PatchRefused,
    ProcessorInput,
    build_processor_request,
    parse_patch,
    process,
    rejected_ops,
)

AT = datetime(2024, 1, 1, tzinfo=timezone.utc)
ART = "sha256:" + "b" * 64
FACT = {"key": "add", "value": "add is defined in calc.py:3", "source": "d1_call_1", "artifact_id": ART}
GOOD = {"ops": [{"op": "append_known_facts", "facts": [FACT]}]}
UNKNOWN_QUESTION = {"ops": [{"op": "answer_question", "id": "q9", "answer": "x"}]}


def state() -> RunState:
    return fold([RunStarted(run_id="r", seq=1, at=AT, task="Where is add defined?")])


def finished(payload: str = "calc.py:3: def add(a, b):", ok: bool = True) -> ToolFinished:
    return ToolFinished(
        run_id="r", seq=2, at=AT, call_id="d1_call_1", name="grep", ok=ok, payload=payload,
        artifact=ArtifactRef(id=ART, size=len(payload)), error=None if ok else "boom",
    )  # fmt: skip


def result(payload: str = "calc.py:3: def add(a, b):", ok: bool = True, call: ToolCall | None = None) -> ProcessorInput:
    return ProcessorInput.tool_result(finished(payload, ok), call)


def text_of(request) -> str:
    return "\n".join(m.content or "" for m in request.messages if m.role == "user")


# -- the request -----------------------------------------------------------------------------


def test_request_carries_the_result_the_schema_and_the_prompt() -> None:
    call = ToolCall(id="d1_call_1", name="grep", arguments={"pattern": "def add"})
    request = build_processor_request(state(), result(call=call))
    assert request.role == "processor"
    assert request.schema_name == "state_patch"
    assert request.response_schema == StatePatch.model_json_schema()
    assert not request.tools
    system = request.messages[0].content or ""
    assert "append_known_facts" in system and "file:line" in system and "artifact_id" in system
    text = text_of(request)
    for needle in ("call id: d1_call_1", "tool: grep", '"pattern": "def add"', f"artifact: {ART}", "calc.py:3"):
        assert needle in text
    assert "Where is add defined?" in text
    assert request.inputs == {
        "input": "tool_result", "call_id": "d1_call_1", "tool": "grep", "arguments": {"pattern": "def add"},
        "ok": True, "artifact": ART, "error": None, "payload": "calc.py:3: def add(a, b):",
    }  # fmt: skip
    assert "inputs" not in json.dumps([m.model_dump() for m in request.messages])


def test_inputs_do_not_depend_on_the_prompt_wording() -> None:
    """The structured inputs carry every field a rule-based model needs, error and failure included."""
    bad = build_processor_request(state(), result(payload="x", ok=False))
    assert bad.inputs["ok"] is False and bad.inputs["error"] == "boom" and bad.inputs["arguments"] is None


def test_payload_is_bounded() -> None:
    request = build_processor_request(state(), result(payload="z" * 5_000_000))
    assert len(text_of(request)) < 10_000
    assert "more chars not shown" in text_of(request)
    assert len(str(request.inputs["payload"])) < 10_000


def test_user_answer_request() -> None:
    request = build_processor_request(state(), ProcessorInput.user_answer("the repo is shop", "Which repo?"))
    text = text_of(request)
    assert "question: Which repo?" in text and "the repo is shop" in text and "source: user" in text
    assert request.inputs == {"input": "user_answer", "question": "Which repo?", "answer": "the repo is shop"}


def test_feedback_is_included() -> None:
    request = build_processor_request(state(), result(), feedback="op 0 (answer_question): no question")
    assert "no question" in (request.messages[-1].content or "")


# -- parsing ---------------------------------------------------------------------------------


def test_parse_patch_accepts_fences_and_a_bare_list() -> None:
    assert parse_patch(respond_json(GOOD)).ops[0].facts[0].key == "add"  # type: ignore[union-attr]
    fenced = say("```json\n" + json.dumps(GOOD) + "\n```")
    assert isinstance(parse_patch(fenced).ops[0], AppendKnownFacts)
    assert len(parse_patch(respond_json(GOOD["ops"])).ops) == 1
    assert parse_patch(respond_json({"ops": []})).ops == ()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "empty"),
        ("not json", "not valid JSON"),
        (
            json.dumps({"ops": [{"op": "append_known_facts", "facts": [{"key": "k"}]}]}),
            r"ops\.0\..*value.*Field required",
        ),
        (json.dumps({"ops": [{"op": "delete_everything"}]}), "does not match the schema"),
        (json.dumps({"ops": [], "extra": 1}), "extra.*not permitted"),
    ],
)
def test_parse_patch_errors_are_for_the_model(content: str | None, message: str) -> None:
    with pytest.raises(ModelOutputError, match=message):
        parse_patch(ChatResponse(content=content))


# -- the processor loop ----------------------------------------------------------------------


def test_a_good_patch_is_accepted_on_the_first_try() -> None:
    model = ScriptedChatModel([respond_json(GOOD)])
    before = state()
    outcome = asyncio.run(process(model, before, result()))
    assert outcome.value is not None and len(outcome.attempts) == 1
    assert outcome.attempts[0].accepted
    assert before.known_facts == {}  # a dry run only


def test_rejected_patches_go_back_with_the_error() -> None:
    model = ScriptedChatModel([respond_json(UNKNOWN_QUESTION), say("{oops"), respond_json(GOOD)])
    outcome = asyncio.run(process(model, state(), result(), max_attempts=3))
    first, second, third = outcome.attempts
    assert first.error is not None and "no question 'q9'" in first.error
    assert isinstance(first.problem, PatchRefused)
    assert first.problem.op_index == 0 and first.problem.path == "/open_questions/q9"
    assert rejected_ops(first) == ({"op": "answer_question", "id": "q9", "answer": "x"},)
    assert "no question 'q9'" in (model.requests[1].messages[-1].content or "")
    assert second.error is not None and "not valid JSON" in second.error and rejected_ops(second) == ()
    assert third.accepted and outcome.value is not None
    model.assert_consumed()


def test_attempts_are_bounded_and_the_patch_is_none() -> None:
    model = ScriptedChatModel([respond_json(UNKNOWN_QUESTION)] * 2)
    outcome = asyncio.run(process(model, state(), result(), max_attempts=2))
    assert outcome.value is None and outcome.fatal is None
    assert [a.accepted for a in outcome.attempts] == [False, False]
    model.assert_consumed()


def test_model_refusal_is_fatal_not_raised() -> None:
    model = ScriptedChatModel([ModelRequestError("HTTP 401: bad key", status_code=401)])
    outcome = asyncio.run(process(model, state(), ProcessorInput.user_answer("yes", "ok?")))
    assert isinstance(outcome.fatal, ModelRequestError)
    assert outcome.value is None and outcome.attempts[0].response is None


def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max_attempts must be >= 1"):
        asyncio.run(process(ScriptedChatModel([]), state(), result(), max_attempts=0))
