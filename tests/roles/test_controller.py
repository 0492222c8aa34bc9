"""The controller role: the bounded state prompt and the parsing of decisions."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest

from agentcore.core.events import ArtifactRef, RunStarted, StatePatched, ToolFinished
from agentcore.core.fold import RunState, fold
from agentcore.core.patches import AddOpenQuestions, AppendKnownFacts, FactInput, QuestionInput
from agentcore.errors import ConfigError, ModelOutputError, ModelUnavailable
from agentcore.models.base import ChatResponse, ToolCallRequest, ToolSpec
from agentcore.models.scripted import ScriptedChatModel, call, calls, say
from agentcore.roles.controller import (
    ASK_USER,
    as_tool_spec,
    build_controller_request,
    decide_with_retries,
    parse_decision,
)

AT = datetime(2024, 1, 1, tzinfo=timezone.utc)
GREP = ToolSpec(
    name="grep",
    description="Search files for a pattern.",
    parameters={"type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"]},
)


def make_state(*, facts: int = 0, fact_chars: int = 40, payload: str = "3 matches", task: str = "Find add") -> RunState:
    events: list = [RunStarted(run_id="r", seq=1, at=AT, task=task)]
    if facts:
        batch = [
            FactInput(key=f"fact-{i}", value=f"value {i} " + "x" * fact_chars, source=f"d1_call_{i}", artifact_id=None)
            for i in range(facts)
        ]
        events.append(StatePatched(run_id="r", seq=2, at=AT, ops=(AppendKnownFacts(facts=tuple(batch)),)))
    ref = ArtifactRef(id="sha256:" + "a" * 64, size=len(payload))
    events.append(
        ToolFinished(
            run_id="r",
            seq=len(events) + 1,
            at=AT,
            call_id="d1_call_1",
            name="grep",
            ok=True,
            payload=payload,
            artifact=ref,
        )
    )
    return fold(events)


def user_text(request) -> str:
    return "\n".join(m.content or "" for m in request.messages if m.role == "user")


def request_size(request) -> int:
    return len(json.dumps(request.model_dump(mode="json")))


# -- the request -----------------------------------------------------------------------------


def test_request_shows_task_facts_payloads_and_offers_ask_user() -> None:
    state = make_state(facts=2)
    state = fold(
        [
            StatePatched(
                run_id="r",
                seq=state.last_seq + 1,
                at=AT,
                ops=(AddOpenQuestions(questions=(QuestionInput(id="q1", text="Which module?"),)),),
            )
        ],
        start=state,
    )
    request = build_controller_request(state, [GREP])
    assert request.role == "controller"
    assert request.messages[0].role == "system"
    assert "controller of an agent" in (request.messages[0].content or "")
    text = user_text(request)
    assert "Find add" in text
    assert "fact-1: value 1" in text and "source: d1_call_1" in text
    assert "q1: Which module?" in text
    assert "3 matches" in text and "sha256:" + "a" * 64 in text
    assert [t.name for t in request.tools] == ["grep", ASK_USER]


def test_inputs_hold_what_the_prompt_shows() -> None:
    """The structured inputs (recorded, not sent) list the facts the prompt lists, newest last."""
    state = make_state(facts=3)
    newer = fold(
        [StatePatched(run_id="r", seq=state.last_seq + 1, at=AT, ops=(AppendKnownFacts(facts=(FactInput(
            key="definition:add", value="add is at calc.py:3", source="d2_call_1"),)),))],
        start=state,
    )  # fmt: skip
    inputs = build_controller_request(newer, [GREP]).inputs
    assert inputs["task"] == "Find add"
    facts = inputs["facts"]
    assert isinstance(facts, list) and len(facts) == 4
    assert facts[-1] == {"key": "definition:add", "value": "add is at calc.py:3", "source": "d2_call_1",
                         "artifact_id": None}  # fmt: skip
    assert inputs["recent"] == [
        {"call_id": "d1_call_1", "tool": "grep", "ok": True, "artifact_id": "sha256:" + "a" * 64, "payload": "3 matches"}
    ]
    many = build_controller_request(make_state(facts=5_000, fact_chars=1_000), [GREP])
    shown = many.inputs["facts"]
    assert isinstance(shown, list) and len(shown) == user_text(many).count("\n- fact-") > 0


def test_a_clipped_fact_value_says_how_much_is_not_shown_as_data() -> None:
    """The prompt marks a long value with clip's count; the inputs carry the shown part and the count."""
    request = build_controller_request(make_state(facts=1, fact_chars=1_000), [GREP])
    (fact,) = request.inputs["facts"]
    assert isinstance(fact, dict)
    full = "value 0 " + "x" * 1_000
    assert fact["value"] == full[: len(fact["value"])] and fact["cut"] == len(full) - len(fact["value"]) > 0
    assert f"{fact['value']} …[{fact['cut']} more chars not shown]" in user_text(request)
    short = build_controller_request(make_state(facts=1), [GREP]).inputs["facts"]
    assert isinstance(short, list) and isinstance(short[0], dict) and "cut" not in short[0]


def test_feedback_is_sent_back() -> None:
    request = build_controller_request(make_state(), [GREP], feedback="unknown tool 'grpe'")
    assert request.messages[-1].role == "user"
    assert "unknown tool 'grpe'" in (request.messages[-1].content or "")


def test_tool_specs_from_dicts_specs_and_openai_form() -> None:
    as_dict = {"name": "grep", "description": "d", "parameters": {"type": "object"}}
    openai_form = {"type": "function", "function": as_dict}
    assert as_tool_spec(as_dict).name == as_tool_spec(openai_form).name == as_tool_spec(GREP).name == "grep"
    with pytest.raises(ConfigError, match="cannot use 42 as a tool spec"):
        as_tool_spec(42)


def test_prompt_size_does_not_depend_on_payload_size() -> None:
    small = build_controller_request(make_state(payload="m" * 10_000), [GREP])
    huge = build_controller_request(make_state(payload="m" * 50_000_000), [GREP])
    assert request_size(small) < 20_000
    assert abs(request_size(huge) - request_size(small)) < 50  # only the "N more chars" note differs
    assert "more chars not shown" in user_text(huge)


def test_many_facts_are_capped_newest_first() -> None:
    state = make_state(facts=5_000, fact_chars=1_000)
    request = build_controller_request(state, [GREP])
    text = user_text(request)
    assert request_size(request) < 25_000
    shown = text.count("\n- fact-")
    assert 0 < shown <= 60
    assert text.count("older facts not shown") == 1 and f"({5_000 - shown} older facts not shown)" in text
    # all facts were set by one event (same seq): the cap still holds; now make one fact newer
    newer = fold(
        [
            StatePatched(
                run_id="r",
                seq=state.last_seq + 1,
                at=AT,
                ops=(AppendKnownFacts(facts=(FactInput(key="newest", value="the answer"),)),),
            )
        ],
        start=state,
    )
    assert "newest: the answer" in user_text(build_controller_request(newer, [GREP]))


def test_task_is_bounded() -> None:
    request = build_controller_request(make_state(task="t" * 1_000_000), [GREP])
    assert request_size(request) < 20_000


# -- parsing decisions -----------------------------------------------------------------------


def test_native_tool_calls_get_run_unique_ids_and_parsed_arguments() -> None:
    response = calls(("grep", {"pattern": "def add"}), ("grep", {"pattern": "class"}))
    decision = parse_decision(response, ["grep"], call_prefix="d3_")
    assert decision.kind == "tool_calls"
    assert [c.id for c in decision.tool_calls] == ["d3_call_1", "d3_call_2"]
    assert decision.tool_calls[0].arguments == {"pattern": "def add"}


def test_duplicate_call_ids_in_one_response_are_made_unique() -> None:
    response = ChatResponse(
        content=None,
        tool_calls=tuple(ToolCallRequest(id="x", name="grep", arguments="{}") for _ in range(2)),
    )
    ids = [c.id for c in parse_decision(response, ["grep"], call_prefix="d1_").tool_calls]
    assert len(set(ids)) == 2


def test_repeated_call_ids_get_the_first_free_suffix() -> None:
    cases = [
        (["x_3", "x", "x"], ["d1_x_3", "d1_x", "d1_x_2"]),
        (["x", "x", "x_2"], ["d1_x", "d1_x_3", "d1_x_2"]),  # a later id keeps its own name
        (["x", "x", "x", "x_2", "x_3"], ["d1_x", "d1_x_4", "d1_x_5", "d1_x_2", "d1_x_3"]),
        (["", ""], ["d1_call_1", "d1_call_2"]),  # an empty id is replaced by the call's position
    ]
    for ids, expected in cases:
        response = ChatResponse(
            content=None, tool_calls=tuple(ToolCallRequest(id=i, name="grep", arguments="{}") for i in ids)
        )
        first = [c.id for c in parse_decision(response, ["grep"], call_prefix="d1_").tool_calls]
        again = [c.id for c in parse_decision(response, ["grep"], call_prefix="d1_").tool_calls]
        assert first == again == expected, ids  # deterministic: a replayed response gives the same ids


def test_bad_json_arguments_name_the_tool() -> None:
    response = ChatResponse(content=None, tool_calls=(ToolCallRequest(id="c", name="grep", arguments="{pattern: x"),))
    with pytest.raises(ModelOutputError, match="arguments of your call to 'grep' are not valid JSON"):
        parse_decision(response, ["grep"])


def test_arguments_must_be_an_object() -> None:
    response = ChatResponse(content=None, tool_calls=(ToolCallRequest(id="c", name="grep", arguments="[1]"),))
    with pytest.raises(ModelOutputError, match="must be a JSON object, got list"):
        parse_decision(response, ["grep"])


def test_unknown_tool_lists_the_available_ones() -> None:
    with pytest.raises(ModelOutputError, match=r"unknown tool 'grpe'; available tools: ask_user, grep"):
        parse_decision(call("grpe", pattern="x"), ["grep"])


def test_plain_text_is_a_reply() -> None:
    decision = parse_decision(say("add is in calc.py:3"), ["grep"])
    assert (decision.kind, decision.reply) == ("reply", "add is in calc.py:3")


@pytest.mark.parametrize(
    ("content", "kind", "text"),
    [
        ('{"reply": "done"}', "reply", "done"),
        ('```json\n{"reply": "fenced"}\n```', "reply", "fenced"),
        ('{"ask_user": "Which file?"}', "ask_user", "Which file?"),
        ('{"tool_calls": [], "content": "from json mode"}', "reply", "from json mode"),
    ],
)
def test_json_decisions(content: str, kind: str, text: str) -> None:
    decision = parse_decision(say(content), ["grep"])
    assert decision.kind == kind
    assert (decision.reply if kind == "reply" else decision.question) == text


PROSE_WITH_JSON = [
    'A chat request holds messages such as {"role": "user", "content": "hi"}; that is all.',
    'To delete it a model would answer {"tool_calls": [{"name": "grep", "arguments": {}}]} and stop.',
    'You could answer {"reply": "x"}',
    'Example:\n{"role": "user", "content": "hi"}',  # a lead-in line, but not a decision object
    'Two options:\n{"reply": "a"}\n{"reply": "b"}',
    '```json\n{"reply": "x"}\n```\nand more text after the fence',
    "This lead-in line is far too long to be a mere introduction of the answer that follows it, " * 2
    + ':\n{"reply": "x"}',
]


def test_only_an_answer_that_is_one_json_object_is_a_decision() -> None:
    for content in PROSE_WITH_JSON:
        decision = parse_decision(say(content), ["grep"], call_prefix="d1_")
        assert (decision.kind, decision.reply, decision.tool_calls) == ("reply", content, ()), content
    # a short lead-in line ending in ":" before the object is tolerated
    for content, kind, text in [
        ('Here is my answer:\n{"reply": "done"}', "reply", "done"),
        ('Answer:\n```json\n{"ask_user": "Which file?"}\n```', "ask_user", "Which file?"),
        ('Sure:\n{"tool_calls": [], "content": "from json mode"}', "reply", "from json mode"),
    ]:
        decision = parse_decision(say(content), ["grep"])
        assert (decision.kind, decision.reply if kind == "reply" else decision.question) == (kind, text), content
    lead_in = 'My call:\n{"tool_calls": [{"name": "grep", "arguments": {"pattern": "x"}}]}'
    decision = parse_decision(say(lead_in), ["grep"], call_prefix="d1_")
    assert [(c.id, c.name, c.arguments) for c in decision.tool_calls] == [("d1_call_1", "grep", {"pattern": "x"})]


def test_json_tool_calls_in_content() -> None:
    content = '{"tool_calls": [{"name": "grep", "arguments": {"pattern": "x"}}], "thought": "look"}'
    decision = parse_decision(say(content), ["grep"], call_prefix="d1_")
    assert decision.kind == "tool_calls"
    assert decision.tool_calls[0].id == "d1_call_1"
    assert decision.thought == "look"


def test_ask_user_pseudo_tool() -> None:
    decision = parse_decision(call(ASK_USER, question="Which repo?"), ["grep"])
    assert (decision.kind, decision.question) == ("ask_user", "Which repo?")
    with pytest.raises(ModelOutputError, match="must be your only call"):
        parse_decision(calls((ASK_USER, {"question": "q"}), ("grep", {"pattern": "x"})), ["grep"])
    with pytest.raises(ModelOutputError, match="non-empty string argument 'question'"):
        parse_decision(call(ASK_USER), ["grep"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"reply": "x", "ask_user": "y"}', "exactly one of"),
        ('{"answer": 42}', "exactly one of"),
        ('{"reply": ', "not valid JSON"),
        ("   ", "empty"),
        ('{"tool_calls": "grep"}', "must be a list"),
        ('{"tool_calls": [{"arguments": {}}]}', 'must be an object with a "name"'),
        ('{"reply": 3}', "non-empty string"),
    ],
)
def test_unusable_answers_say_what_to_fix(content: str, message: str) -> None:
    with pytest.raises(ModelOutputError, match=message):
        parse_decision(say(content), ["grep"])


# -- asking the model ------------------------------------------------------------------------


def test_decide_uses_the_state_for_call_ids() -> None:
    model = ScriptedChatModel([call("grep", pattern="def add")])
    state = make_state()
    outcome = asyncio.run(decide_with_retries(model, state, [GREP]))
    (attempt,) = outcome.attempts
    assert attempt.value is not None and attempt.value.tool_calls[0].id == f"d{state.decisions + 1}_call_1"
    assert model.requests == [attempt.request]
    assert attempt.response is not None and attempt.response.tool_calls[0].name == "grep"


def test_unusable_answers_are_fed_back_until_one_works() -> None:
    model = ScriptedChatModel([call("grpe", pattern="x"), say('{"reply": '), say("done")])
    outcome = asyncio.run(decide_with_retries(model, make_state(), [GREP], max_attempts=3))
    assert outcome.value is not None and outcome.value.reply == "done"
    assert [a.error is None for a in outcome.attempts] == [False, False, True]
    assert "unknown tool 'grpe'" in user_text(model.requests[1])
    assert "not valid JSON" in user_text(model.requests[2])
    model.assert_consumed()


def test_attempts_are_bounded() -> None:
    model = ScriptedChatModel([say("{bad"), say("{bad")])
    outcome = asyncio.run(decide_with_retries(model, make_state(), [GREP], max_attempts=2))
    assert outcome.value is None and outcome.fatal is None
    assert len(outcome.attempts) == 2
    model.assert_consumed()


def test_model_failure_is_fatal_not_raised() -> None:
    model = ScriptedChatModel([ModelUnavailable("server down after 5 attempts")])
    outcome = asyncio.run(decide_with_retries(model, make_state(), [GREP]))
    assert isinstance(outcome.fatal, ModelUnavailable)
    assert outcome.attempts[0].response is None
    assert "server down" in (outcome.attempts[0].error or "")
