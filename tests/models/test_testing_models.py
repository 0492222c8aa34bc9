"""ScriptedChatModel and FunctionChatModel: strict scripts, recorded requests, helpers."""

from __future__ import annotations

import asyncio
import json

import pytest

from agentcore.core.values import TokenUsage
from agentcore.errors import ModelError, ModelUnavailable
from agentcore.models.base import ChatMessage, ChatModel, ChatRequest, ChatResponse
from agentcore.models.scripted import FunctionChatModel, ScriptedChatModel, call, calls, respond_json, say


def request(text: str = "hi", role: str = "controller") -> ChatRequest:
    return ChatRequest(role=role, messages=(ChatMessage(role="user", content=text),))  # type: ignore[arg-type]


def ask(model: ChatModel, req: ChatRequest) -> ChatResponse:
    return asyncio.run(model.complete(req))


def test_helpers_build_the_expected_responses() -> None:
    usage = TokenUsage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    assert say("done", usage=usage) == ChatResponse(content="done", usage=usage, finish_reason="stop")
    one = call("search", q="x", limit=2)
    assert [(c.id, c.name, json.loads(c.arguments)) for c in one.tool_calls] == [
        ("call_1", "search", {"q": "x", "limit": 2})
    ]
    assert one.content is None and one.finish_reason == "tool_calls"
    assert call("name_as_argument", name="n").tool_calls[0].arguments == '{"name": "n"}'
    two = calls(("a", {}), ("b", {"k": [1]}))
    assert [(c.id, c.name, c.arguments) for c in two.tool_calls] == [
        ("call_1", "a", "{}"),
        ("call_2", "b", '{"k": [1]}'),
    ]
    assert json.loads(respond_json({"facts": [{"key": "k"}]}).content or "") == {"facts": [{"key": "k"}]}


def test_script_plays_in_order_and_records_requests() -> None:
    model = ScriptedChatModel([call("search", q="x"), say("done")])
    first, second = ask(model, request("one")), ask(model, request("two"))
    assert first.tool_calls[0].name == "search" and second.content == "done"
    assert [r.messages[0].content for r in model.requests] == ["one", "two"]
    assert model.remaining == 0
    model.assert_consumed()
    assert model.name == "scripted"


def test_extra_call_is_an_error_naming_the_call() -> None:
    model = ScriptedChatModel([say("only")], name="ctrl")
    ask(model, request())
    with pytest.raises(
        ModelError,
        match=r"'ctrl': unexpected call #2 \(script has 1 responses\); "
        r"last request: role=processor.*'surprise'",
    ):
        ask(model, request("surprise", role="processor"))
    assert len(model.requests) == 2


def test_unconsumed_responses_fail_assert_consumed_and_the_with_block() -> None:
    model = ScriptedChatModel([say("a"), call("search", q="x"), ValueError("boom")])
    ask(model, request())
    with pytest.raises(
        AssertionError,
        match=r"2 of 3 scripted responses were never requested "
        r"\(1 calls made\): #2: tool calls search.*#3: raise ValueError",
    ):
        model.assert_consumed()
    with pytest.raises(AssertionError, match="1 of 1 scripted responses were never requested"):
        with ScriptedChatModel([say("unused")]):
            pass
    with ScriptedChatModel([say("used")]) as used:
        assert ask(used, request()).content == "used"


def test_with_block_does_not_hide_the_original_error() -> None:
    with pytest.raises(KeyError):
        with ScriptedChatModel([say("unused")]):
            raise KeyError("real failure")


def test_scripted_exceptions_and_callables() -> None:
    async def later(req: ChatRequest) -> ChatResponse:
        return say(f"async saw {req.role}")

    model = ScriptedChatModel(
        [
            ModelUnavailable("server down"),
            lambda req: say(f"echo {req.messages[-1].content}"),
            later,
            lambda req: "not a response",  # type: ignore[arg-type,return-value]
        ]
    )
    with pytest.raises(ModelUnavailable, match="server down"):
        ask(model, request())
    assert ask(model, request("ping")).content == "echo ping"
    assert ask(model, request(role="planner")).content == "async saw planner"
    with pytest.raises(ModelError, match="callable for call #4 returned str, expected a ChatResponse"):
        ask(model, request())
    model.assert_consumed()


def test_function_model_sync_and_async() -> None:
    model = FunctionChatModel(lambda req: say(str(len(req.messages))))
    assert ask(model, request()).content == "1"

    async def fn(req: ChatRequest) -> ChatResponse:
        await asyncio.sleep(0)
        return respond_json({"role": req.role})

    async_model = FunctionChatModel(fn, name="fn")
    assert json.loads(ask(async_model, request(role="processor")).content or "") == {"role": "processor"}
    assert [r.role for r in async_model.requests] == ["processor"] and async_model.name == "fn"
    bad = FunctionChatModel(lambda req: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ModelError, match="fn returned NoneType for call #1"):
        ask(bad, request())


def test_models_are_not_collected_by_pytest() -> None:
    assert ScriptedChatModel.__test__ is False and FunctionChatModel.__test__ is False


@pytest.mark.parametrize(
    ("inputs", "fact"),
    [
        (
            {"input": "tool_result", "call_id": "d1_call_1", "tool": "lookup", "arguments": {"key": "alpha"},
             "ok": True, "artifact": "sha256:" + "c" * 64, "error": None, "payload": "A"},
            {"key": "alpha", "value": "A", "source": "d1_call_1", "artifact_id": "sha256:" + "c" * 64},
        ),
        (
            {"input": "tool_result", "call_id": "d2_x", "tool": "lookup", "arguments": None, "ok": False,
             "artifact": None, "error": "boom", "payload": "payload:\ncall id: fake"},
            {"key": "d2_x", "value": "payload:\ncall id: fake", "source": "d2_x", "artifact_id": None},
        ),
        ({"input": "user_answer", "question": "q?", "answer": "yes"}, {"key": "user.answer", "value": "yes", "source": "user"}),
    ],
)  # fmt: skip
def test_demo_processor_reads_structured_inputs_not_prompt_text(inputs: dict, fact: dict) -> None:
    """Rewording the prompt (here: a prompt that says something else entirely) changes nothing."""
    from agentcore.testing import demo_processor

    request = ChatRequest(
        role="processor",
        messages=(ChatMessage(role="system", content="x"), ChatMessage(role="user", content="call id: wrong\npayload:\nno")),
        inputs=inputs,
    )
    answer = asyncio.run(demo_processor().complete(request))
    assert json.loads(answer.content or "") == {"ops": [{"op": "append_known_facts", "facts": [fact]}]}
