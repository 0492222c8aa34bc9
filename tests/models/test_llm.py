"""OpenAIChatModel over real HTTP (the real openai client) to a scripted loopback server."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pydantic
import pytest

import agentcore.models.openai as llm
from agentcore.core.json_text import strip_fences
from agentcore.core.values import TokenUsage, canonical_json
from agentcore.errors import ConfigError, ModelOutputError, ModelRequestError, ModelUnavailable
from agentcore.models import json_decisions
from agentcore.models import openai_wire as llm_wire
from agentcore.models.base import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    ToolCallRequest,
    ToolSpec,
    request_digest,
)
from agentcore.models.openai import OpenAIChatModel
from agentcore.testing.clock import FakeClock
from tests.support.openai_server import (
    OpenAIServer,
    cut,
    invalid_completion,
    json_answer,
    malformed,
    raw_body,
    slow,
    status,
    text,
    tool_calls,
)

pytest_plugins = ["tests.support.openai_server"]  # the openai_server fixture, also when run alone

KEY = "sk-test-7f3a9c1e5b2d"
SEARCH = ToolSpec(
    name="search",
    description="Search the code base",
    parameters={"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
)
SCHEMA = {"type": "object", "properties": {"facts": {"type": "array"}}, "required": ["facts"]}


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm, "ALLOW_REAL_REQUESTS", False)
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AGENTCORE_MODEL", "OPENAI_MODEL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_model(server: OpenAIServer, clock: FakeClock, **kwargs: Any) -> OpenAIChatModel:
    kwargs.setdefault("timeout", 5.0)
    return OpenAIChatModel("test-model", api_key=KEY, base_url=server.base_url, clock=clock, **kwargs)


def user(content: str) -> ChatMessage:
    return ChatMessage(role="user", content=content)


def tool_request(*messages: ChatMessage) -> ChatRequest:
    return ChatRequest(role="controller", messages=messages or (user("find foo"),), tools=(SEARCH,))


def schema_request() -> ChatRequest:
    return ChatRequest(role="processor", messages=(user("extract"),), response_schema=SCHEMA, schema_name="patch")


def text_request() -> ChatRequest:
    return ChatRequest(role="controller", messages=(user("hello"),))


# -- structured output ------------------------------------------------------------------------------


def test_native_tool_calls_are_parsed(openai_server: OpenAIServer, clock: FakeClock) -> None:
    openai_server.enqueue(tool_calls([("search", {"q": "foo"}), ("search", {"q": "bar"})]))
    response = make_model(openai_server, clock, tool_mode="native").complete_sync(tool_request())
    assert response.structured_mode == "native_tools"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("call_1", "search", {"q": "foo"}),
        ("call_2", "search", {"q": "bar"}),
    ]
    assert response.finish_reason == "tool_calls" and response.attempts == 1
    body = openai_server.completion_requests[0].body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "search", "description": SEARCH.description, "parameters": SEARCH.parameters},
        }
    ]
    assert body["model"] == "test-model" and "response_format" not in body
    assert body["messages"] == [{"role": "user", "content": "find foo"}]  # native mode adds no note


@pytest.mark.parametrize(
    "inputs",
    [
        {"task": "a task only in inputs", "facts": [{"key": "k", "value": "secret-looking value"}]},
        {"input": "tool_result", "call_id": "d1_call_1", "payload": "x" * 50, "ok": False, "arguments": None},
    ],
)
def test_structured_inputs_are_recorded_but_never_sent(
    openai_server: OpenAIServer, clock: FakeClock, inputs: dict[str, Any]
) -> None:
    openai_server.enqueue(text("done"))
    request = tool_request().model_copy(update={"inputs": inputs})
    make_model(openai_server, clock, tool_mode="native").complete_sync(request)
    sent = json.dumps(openai_server.completion_requests[0].body)
    assert "inputs" not in openai_server.completion_requests[0].body
    assert all(json.dumps(v)[1:-1] not in sent for v in inputs.values() if isinstance(v, str) and len(v) > 8)
    assert request_digest(request) != request_digest(tool_request())  # ...but recorded and part of the key


def test_native_history_keeps_tool_messages(openai_server: OpenAIServer, clock: FakeClock) -> None:
    history = (
        user("find foo"),
        ChatMessage(role="assistant", tool_calls=(ToolCallRequest(id="c9", name="search", arguments='{"q":"foo"}'),)),
        ChatMessage(role="tool", tool_call_id="c9", content="3 hits"),
    )
    openai_server.enqueue(text("done"))
    make_model(openai_server, clock, tool_mode="native").complete_sync(tool_request(*history))
    messages = openai_server.completion_requests[0].body["messages"]
    assert messages[1]["tool_calls"][0] == {
        "id": "c9",
        "type": "function",
        "function": {"name": "search", "arguments": '{"q":"foo"}'},
    }
    assert messages[2] == {"role": "tool", "content": "3 hits", "tool_call_id": "c9"}


def test_json_mode_decision_is_parsed(openai_server: OpenAIServer, clock: FakeClock) -> None:
    history = (
        ChatMessage(role="system", content="You are a helper."),
        user("find foo"),
        ChatMessage(role="assistant", tool_calls=(ToolCallRequest(id="x", name="search", arguments='{"q":"a"}'),)),
        ChatMessage(role="tool", tool_call_id="x", name="search", content="no hits"),
    )
    decision = {
        "tool_calls": [{"name": "search", "arguments": {"q": "foo"}}, {"name": "search", "arguments": {}}],
        "content": "looking",
    }
    openai_server.enqueue(text("```json\n" + json.dumps(decision) + "\n```"))
    response = make_model(openai_server, clock, tool_mode="json").complete_sync(tool_request(*history))
    assert response.structured_mode == "json_decision"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("call_1", "search", {"q": "foo"}),
        ("call_2", "search", {}),
    ]
    assert response.content == "looking"
    body = openai_server.completion_requests[0].body
    assert "tools" not in body
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    system = messages[0]["content"]
    assert system.startswith("You are a helper.") and '"tool_calls"' in system
    assert "search: Search the code base" in system and '"required": ["q"]' in system
    assert json.loads(messages[2]["content"]) == {
        "tool_calls": [{"name": "search", "arguments": {"q": "a"}}],
        "content": None,
    }
    assert messages[3]["content"] == "Result of tool call x (search):\nno hits"


def test_json_mode_plain_text_is_a_reply_and_bad_json_is_an_output_error(
    openai_server: OpenAIServer, clock: FakeClock
) -> None:
    model = make_model(openai_server, clock, tool_mode="json")
    openai_server.enqueue(text("All done, nothing to search."))
    response = model.complete_sync(tool_request())
    assert response.tool_calls == () and response.content == "All done, nothing to search."
    openai_server.enqueue(text('{"tool_calls": [{"name": "search", "arguments": {"q": '))
    with pytest.raises(ModelOutputError, match="not valid JSON"):
        model.complete_sync(tool_request())
    openai_server.enqueue(json_answer({"tool_calls": [{"arguments": {}}]}))
    with pytest.raises(ModelOutputError, match='tool call #1 must be an object with a "name"'):
        model.complete_sync(tool_request())


def test_auto_tool_mode_switches_to_json_on_llama_server(clock: FakeClock) -> None:
    with OpenAIServer(ignore_tools=True) as server:
        model = make_model(server, clock)
        server.enqueue(tool_calls([("search", {"q": "foo"})]), tool_calls([("search", {"q": "bar"})]))
        first = model.complete_sync(tool_request())
        second = model.complete_sync(tool_request())
    assert [(r.structured_mode, r.tool_calls[0].arguments) for r in (first, second)] == [
        ("json_decision", '{"q": "foo"}'),
        ("json_decision", '{"q": "bar"}'),
    ]
    bodies = [r.body for r in server.completion_requests]
    assert "tools" in bodies[0] and "tools" not in bodies[1]  # remembered for this instance
    assert '"tool_calls"' in bodies[1]["messages"][0]["content"]


def test_auto_tool_mode_stays_native_on_plain_text(openai_server: OpenAIServer, clock: FakeClock) -> None:
    model = make_model(openai_server, clock)
    openai_server.enqueue(text("hello there"), tool_calls([("search", {"q": "x"})]))
    assert model.complete_sync(tool_request()).content == "hello there"
    assert model.complete_sync(tool_request()).structured_mode == "native_tools"
    assert all("tools" in r.body for r in openai_server.completion_requests)


PROSE_WITH_JSON = (
    'The request body holds messages such as {"role": "user", "content": "hi"}; the server replies.',
    'To delete a file a model would answer {"tool_calls": [{"name": "rm", "arguments": {}}]} and stop.',
    'Example:\n{"role": "user", "content": "hi"}',  # a lead-in line, but not a decision object
    'Two options:\n{"tool_calls": []}\n{"tool_calls": []}',
    '```json\n{"tool_calls": [{"name": "search", "arguments": {}}]}\n```\nbut I would not do that',
    'Sure: {"tool_calls": [{"name": "search", "arguments": {"q": "x"}}]}',  # no line break after the lead-in
)


def test_json_mode_takes_only_an_answer_that_is_one_object_as_a_decision(
    openai_server: OpenAIServer, clock: FakeClock
) -> None:
    model = make_model(openai_server, clock, tool_mode="json")
    for prose in PROSE_WITH_JSON:
        openai_server.enqueue(text(prose))
        response = model.complete_sync(tool_request())
        assert (response.tool_calls, response.content) == ((), prose), prose
    decision = {"tool_calls": [{"name": "search", "arguments": {"q": "foo"}}], "content": None}
    openai_server.enqueue(text("Here is my answer:\n```json\n" + json.dumps(decision) + "\n```"))
    response = model.complete_sync(tool_request())  # a short lead-in line ending in ":" is tolerated
    assert [(c.name, json.loads(c.arguments)) for c in response.tool_calls] == [("search", {"q": "foo"})]
    openai_server.enqueue(text('{"role": "user", "content": "hi"}'))  # an object, but not a decision
    assert model.complete_sync(tool_request()).content == '{"role": "user", "content": "hi"}'


def test_auto_tool_mode_is_not_switched_by_json_quoted_in_prose(clock: FakeClock) -> None:
    with OpenAIServer(ignore_tools=True) as server:
        model = make_model(server, clock)
        for prose in PROSE_WITH_JSON:
            server.enqueue(text(prose))
            response = model.complete_sync(tool_request())
            assert (response.structured_mode, response.tool_calls, response.content) == ("native_tools", (), prose)
        assert all("tools" in r.body for r in server.completion_requests)


def test_auto_tool_mode_names_the_tools_and_the_json_format_then_switches(clock: FakeClock) -> None:
    history = (ChatMessage(role="system", content="You are a helper."), user("find foo"))
    with OpenAIServer(ignore_tools=True) as server:  # llama-server: drops ``tools``, answers in text
        model = make_model(server, clock)
        server.enqueue(tool_calls([("search", {"q": "foo"})]), text("done"))
        first = model.complete_sync(tool_request(*history))
        second = model.complete_sync(tool_request(*history))
    bodies = [r.body for r in server.completion_requests]
    assert "tools" in bodies[0] and [m["role"] for m in bodies[0]["messages"]] == ["system", "user"]
    note = bodies[0]["messages"][0]["content"]
    assert note.startswith("You are a helper.\n\n")  # merged into the one system message
    assert "- search(q): Search the code base" in note
    assert '{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}], "content": null}' in note
    assert '{"tool_calls": [], "content": "<your answer>"}' in note
    assert (first.structured_mode, [(c.name, json.loads(c.arguments)) for c in first.tool_calls]) == (
        "json_decision",
        [("search", {"q": "foo"})],
    )
    assert "tools" not in bodies[1] and (second.structured_mode, second.content) == ("json_decision", "done")
    system = bodies[1]["messages"][0]["content"]
    assert "Call the tools below with native tool calls" not in system and system.count("search: Search") == 1


def test_auto_tool_note_is_bounded() -> None:
    many = [
        ToolSpec(
            name=f"tool_{i}",
            description=f"Does thing number {i}. " * 50 + "\nSecond line never shown.",
            parameters={"type": "object", "properties": {f"arg_{j}": {"type": "string"} for j in range(30)}},
        )
        for i in range(500)
    ]
    note = llm_wire.auto_tools_note(many)
    assert len(note) < llm_wire.MAX_NOTE_CHARS + 1000
    assert "- tool_0(arg_0?, arg_1?," in note and "+18 more" in note and "Second line" not in note
    assert "more tools not listed here)" in note and "tool_499" not in note


def test_an_agent_on_a_server_that_drops_tools_calls_them_through_the_note(clock: FakeClock) -> None:
    from agentcore.runtime.agent import Agent
    from agentcore.tools.base import tool

    seen: list[str] = []

    @tool
    def grep_code(pattern: str, max_hits: int = 5) -> str:
        """Search the code for a pattern.

        Args:
            pattern: The text to look for.
            max_hits: Most hits to return.
        """
        seen.append(pattern)
        return f"calc.py:3: def {pattern}"

    with OpenAIServer(ignore_tools=True) as server:
        server.enqueue(
            tool_calls([("grep_code", {"pattern": "add"})]),  # comes back as JSON text
            json_answer({"ops": []}),  # the processor
            text("add is defined in calc.py:3"),
        )
        model = make_model(server, clock)
        result = Agent(model, model, [grep_code]).run_sync("Where is add defined?")
    assert (result.status, result.reply, seen) == ("succeeded", "add is defined in calc.py:3", ["add"])
    controller = [r.body for r in server.completion_requests if "response_format" not in r.body]
    first = json.dumps(controller[0]["messages"])
    assert "grep_code(pattern, max_hits?): Search the code for a pattern." in first and "ask_user(question)" in first
    assert "tools" in controller[0] and "tools" not in controller[1]  # switched to JSON mode for good


def test_json_schema_request_shape_and_fences_stripped(openai_server: OpenAIServer, clock: FakeClock) -> None:
    openai_server.enqueue(text('```json\n{"facts": []}\n```'))
    response = make_model(openai_server, clock).complete_sync(schema_request())
    assert response.content == '{"facts": []}' and response.structured_mode == "json_schema"
    body = openai_server.completion_requests[0].body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "patch", "schema": SCHEMA, "strict": False},
    }
    assert "tools" not in body and body["messages"] == [{"role": "user", "content": "extract"}]


def test_auto_schema_falls_back_to_json_object_and_remembers(clock: FakeClock) -> None:
    with OpenAIServer(reject_json_schema=True) as server:
        model = make_model(server, clock)
        server.enqueue(json_answer({"facts": [1]}), json_answer({"facts": [2]}))
        first = model.complete_sync(schema_request())
        second = model.complete_sync(schema_request())
    assert (first.content, first.structured_mode, first.attempts) == ('{"facts": [1]}', "json_object", 2)
    assert (second.content, second.structured_mode, second.attempts) == ('{"facts": [2]}', "json_object", 1)
    assert clock.sleeps == []  # the fallback is immediate
    formats = [r.body["response_format"]["type"] for r in server.completion_requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    system = server.completion_requests[1].body["messages"][0]
    assert system["role"] == "system" and '"patch"' in system["content"] and '"facts"' in system["content"]


def test_schema_fallback_does_not_use_up_the_retry_budget(clock: FakeClock) -> None:
    with OpenAIServer(reject_json_schema=True) as server:
        server.enqueue(status(503), json_answer({"facts": []}))
        response = make_model(server, clock, max_attempts=2).complete_sync(schema_request())
    assert (response.structured_mode, response.attempts, len(clock.sleeps)) == ("json_object", 3, 1)


def test_schema_rejection_by_400_falls_back_but_other_400s_do_not(openai_server: OpenAIServer, clock: FakeClock) -> None:
    model = make_model(openai_server, clock)
    openai_server.enqueue(
        status(400, body={"error": {"message": "response_format json_schema not supported"}}),
        json_answer({"facts": []}),
    )
    assert model.complete_sync(schema_request()).structured_mode == "json_object"
    other = make_model(openai_server, clock)
    openai_server.enqueue(status(400, body={"error": {"message": "messages must not be empty"}}))
    with pytest.raises(ModelRequestError, match="messages must not be empty"):
        other.complete_sync(schema_request())


def test_confirmed_json_schema_treats_500_as_transient(openai_server: OpenAIServer, clock: FakeClock) -> None:
    model = make_model(openai_server, clock)
    openai_server.enqueue(json_answer({"facts": []}), status(500), json_answer({"facts": [1]}))
    model.complete_sync(schema_request())
    response = model.complete_sync(schema_request())
    assert response.structured_mode == "json_schema" and response.attempts == 2 and len(clock.sleeps) == 1


def test_plain_text_request(openai_server: OpenAIServer, clock: FakeClock) -> None:
    openai_server.enqueue(text("hi!"))
    response = make_model(openai_server, clock).complete_sync(text_request())
    assert (response.content, response.structured_mode, response.model) == ("hi!", "text", "test-model")
    body = openai_server.completion_requests[0].body
    assert "tools" not in body and "response_format" not in body


# -- retries -----------------------------------------------------------------------------------------


def test_429_retry_after_seconds_is_honoured_and_capped(openai_server: OpenAIServer, clock: FakeClock) -> None:
    openai_server.enqueue(
        status(429, headers={"Retry-After": "2"}), status(429, headers={"Retry-After": "3600"}), text("ok")
    )
    response = make_model(openai_server, clock, backoff_cap=7.0).complete_sync(text_request())
    assert response.content == "ok" and response.attempts == 3
    assert clock.sleeps == [2.0, 7.0]


def test_429_retry_after_http_date(openai_server: OpenAIServer) -> None:
    clock = FakeClock(datetime(2031, 3, 4, 5, 6, 7, tzinfo=timezone.utc))  # the date is read against the model's clock
    when = format_datetime(clock.now() + timedelta(seconds=30), usegmt=True)
    openai_server.enqueue(status(429, headers={"Retry-After": when}), text("ok"))
    make_model(openai_server, clock, backoff_cap=60.0).complete_sync(text_request())
    assert clock.sleeps == [30.0]


def test_429_without_retry_after_backs_off(openai_server: OpenAIServer, clock: FakeClock) -> None:
    openai_server.enqueue(status(429), status(429), text("ok"))
    make_model(openai_server, clock, backoff_base=1.0).complete_sync(text_request())
    assert len(clock.sleeps) == 2
    assert 0.5 <= clock.sleeps[0] <= 1.0 and 1.0 <= clock.sleeps[1] <= 2.0


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_5xx_retried_then_success(openai_server: OpenAIServer, clock: FakeClock, code: int) -> None:
    openai_server.enqueue(status(code), status(code), status(code), text("ok"))
    response = make_model(openai_server, clock, backoff_base=0.5, backoff_cap=1.5).complete_sync(text_request())
    assert response.content == "ok" and response.attempts == 4
    assert len(openai_server.completion_requests) == 4
    bounds = [(0.25, 0.5), (0.5, 1.0), (0.75, 1.5)]  # doubling, capped at 1.5, jitter in [0.5, 1]
    assert all(lo <= d <= hi for d, (lo, hi) in zip(clock.sleeps, bounds, strict=True))


def test_timeout_is_retried(openai_server: OpenAIServer, clock: FakeClock) -> None:
    openai_server.enqueue(slow(60.0, then=text("too late")), text("ok"))
    model = make_model(openai_server, clock, timeout=3.0)  # generous: the normal 2nd reply must beat it
    response = model.complete_sync(text_request())
    assert (response.content, response.attempts) == ("ok", 2)


def test_timeouts_exhaust_into_model_unavailable(openai_server: OpenAIServer, clock: FakeClock) -> None:
    openai_server.enqueue(slow(10.0, then=text("late")), slow(10.0, then=text("late")))
    with pytest.raises(ModelUnavailable, match=r"after 2 attempts; last failure: no answer within the 0.2s"):
        make_model(openai_server, clock, timeout=0.2, max_attempts=2).complete_sync(text_request())


def test_cut_connection_is_retried(openai_server: OpenAIServer, clock: FakeClock) -> None:
    openai_server.enqueue(cut(), text("ok"))
    response = make_model(openai_server, clock).complete_sync(text_request())
    assert (response.content, response.attempts) == ("ok", 2)


def test_connection_refused_is_unavailable(clock: FakeClock) -> None:
    server = OpenAIServer().start()
    base_url = server.base_url
    server.stop()
    model = OpenAIChatModel("m", base_url=base_url, clock=clock, max_attempts=3, timeout=2.0)
    with pytest.raises(ModelUnavailable, match="after 3 attempts; last failure: connection failed"):
        model.complete_sync(text_request())
    assert len(clock.sleeps) == 2


def test_malformed_200_is_retried_then_succeeds(openai_server: OpenAIServer, clock: FakeClock) -> None:
    openai_server.enqueue(malformed(), invalid_completion(), text("ok"))
    response = make_model(openai_server, clock).complete_sync(text_request())
    assert (response.content, response.attempts) == ("ok", 3)


def test_persistent_malformed_200_is_an_output_error(openai_server: OpenAIServer, clock: FakeClock) -> None:
    openai_server.enqueue(malformed(), malformed(), invalid_completion())
    with pytest.raises(ModelOutputError, match=r"not a chat completion: no 'choices' list.*after 3 attempts"):
        make_model(openai_server, clock, max_attempts=3).complete_sync(text_request())
    assert len(openai_server.completion_requests) == 3


def test_persistent_503_is_unavailable(openai_server: OpenAIServer, clock: FakeClock) -> None:
    openai_server.enqueue(*[status(503, body={"error": {"message": "overloaded"}})] * 3)
    with pytest.raises(ModelUnavailable) as info:
        make_model(openai_server, clock, max_attempts=3).complete_sync(text_request())
    assert "after 3 attempts" in str(info.value) and "HTTP 503: overloaded" in str(info.value)
    assert len(openai_server.completion_requests) == 3 and len(clock.sleeps) == 2


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (400, "HTTP 400.*Server said: bad temperature"),
        (401, "HTTP 401.*check OPENAI_API_KEY"),
        (403, "HTTP 403.*check OPENAI_API_KEY"),
        (404, "model name 'test-model'.*OPENAI_BASE_URL"),
        (422, "HTTP 422.*Server said: bad temperature"),
    ],
)
def test_client_errors_fail_at_once(openai_server: OpenAIServer, clock: FakeClock, code: int, expected: str) -> None:
    openai_server.enqueue(status(code, body={"error": {"message": "bad temperature"}}), text("never sent"))
    with pytest.raises(ModelRequestError, match=expected) as info:
        make_model(openai_server, clock).complete_sync(text_request())
    assert info.value.status_code == code
    assert len(openai_server.completion_requests) == 1 and clock.sleeps == []


def test_wrong_base_url_path_gives_a_helpful_404(openai_server: OpenAIServer, clock: FakeClock) -> None:
    base = openai_server.base_url.removesuffix("/v1")
    model = OpenAIChatModel("gpt-x", base_url=base, clock=clock)
    with pytest.raises(ModelRequestError, match=re.escape(f"model name 'gpt-x' or the base URL '{base}' is wrong")):
        model.complete_sync(text_request())


# -- usage, keys, configuration -----------------------------------------------------------------------


def test_usage_is_read_and_missing_usage_is_zero(openai_server: OpenAIServer, clock: FakeClock) -> None:
    model = make_model(openai_server, clock)
    openai_server.enqueue(
        text("a", usage={"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}), text("b", usage=None)
    )
    first, second = model.complete_sync(text_request()), model.complete_sync(text_request())
    assert first.usage == TokenUsage(prompt_tokens=100, completion_tokens=20, total_tokens=120)
    assert second.usage == TokenUsage()
    assert sum([first.usage, first.usage]) == TokenUsage(prompt_tokens=200, completion_tokens=40, total_tokens=240)


def test_key_reaches_server_but_nothing_else(openai_server: OpenAIServer, clock: FakeClock) -> None:
    model = make_model(openai_server, clock, max_attempts=2)
    openai_server.enqueue(text("ok"))
    response = model.complete_sync(text_request())
    assert openai_server.completion_requests[0].headers["authorization"] == f"Bearer {KEY}"
    seen = [repr(model), str(model.describe()), response.model_dump_json(), repr(vars(model))]
    openai_server.enqueue(status(401, body={"error": {"message": f"Incorrect API key provided: {KEY}"}}))
    with pytest.raises(ModelRequestError) as info:
        model.complete_sync(text_request())
    seen += [str(info.value), repr(info.value), repr(info.value.__cause__)]
    openai_server.enqueue(status(503, body=f"upstream rejected {KEY}"), status(503, body=f"rejected {KEY}"))
    with pytest.raises(ModelUnavailable) as unavailable:
        model.complete_sync(text_request())
    seen += [str(unavailable.value), repr(unavailable.value.__cause__)]
    assert "[redacted]" in str(info.value) and "[redacted]" in str(unavailable.value)
    assert not [s for s in seen if KEY in s]
    assert model.describe() == {
        "model": "test-model",
        "base_url": openai_server.base_url,
        "tool_mode": "auto",
        "schema_mode": "auto",
    }


def test_local_server_needs_no_key(
    openai_server: OpenAIServer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    openai_server.enqueue(text("ok"))
    model = OpenAIChatModel(clock=clock)
    assert model.complete_sync(text_request()).content == "ok"
    request = openai_server.completion_requests[0]
    assert request.body["model"] == "env-model" and request.headers["authorization"] == "Bearer not-needed"
    monkeypatch.setenv("AGENTCORE_MODEL", "agentcore-model")
    assert OpenAIChatModel().model == "agentcore-model"


def test_missing_settings_name_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="AGENTCORE_MODEL"):
        OpenAIChatModel(base_url="http://127.0.0.1:1/v1")
    monkeypatch.setattr(llm, "ALLOW_REAL_REQUESTS", True)
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        OpenAIChatModel("gpt-x")
    with pytest.raises(ConfigError, match="not an http"):
        OpenAIChatModel("m", base_url="127.0.0.1:8080")
    with pytest.raises(ConfigError, match="tool_mode must be"):
        OpenAIChatModel("m", base_url="http://127.0.0.1:1/v1", tool_mode="xml")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_attempts must be >= 1, got 0"):
        OpenAIChatModel("m", base_url="http://127.0.0.1:1/v1", max_attempts=0)


def test_real_requests_blocked_off_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for url in ("https://api.openai.com/v1", "http://10.1.2.3:8000/v1", "http://example.com/v1"):
        with pytest.raises(ConfigError, match="ALLOW_REAL_REQUESTS is False"):
            OpenAIChatModel("m", api_key=KEY, base_url=url)
    with pytest.raises(ConfigError, match="ALLOW_REAL_REQUESTS is False"):
        OpenAIChatModel("m", api_key=KEY)  # the default OpenAI URL
    for url in ("http://localhost:8080/v1", "http://[::1]:8080/v1", "http://127.0.0.2/v1"):
        assert OpenAIChatModel("m", base_url=url).base_url == url
    monkeypatch.setattr(llm, "ALLOW_REAL_REQUESTS", True)
    model = OpenAIChatModel("m", api_key=KEY, base_url="http://10.1.2.3:8000/v1")
    monkeypatch.setattr(llm, "ALLOW_REAL_REQUESTS", False)
    with pytest.raises(ConfigError, match=re.escape("refusing to call http://10.1.2.3:8000/v1")):
        model.complete_sync(text_request())


def test_async_complete_reuses_client_and_sync_refuses_inside_loop(openai_server: OpenAIServer, clock: FakeClock) -> None:
    model = make_model(openai_server, clock)
    openai_server.enqueue(text("a"), text("b"), text("c"))

    async def main() -> list[str | None]:
        with pytest.raises(ConfigError, match="inside a running event loop"):
            model.complete_sync(text_request())
        answers = [(await model.complete(text_request())).content for _ in range(2)]
        await model.aclose()
        return answers

    assert asyncio.run(main()) == ["a", "b"]
    assert asyncio.run(model.complete(text_request())).content == "c"  # a new loop gets a new client


@contextmanager
def leaks_reported(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Collect what a leaked client shows (warnings, unraisable errors, asyncio's error log), after a
    ``gc.collect()`` at the end of the block."""
    found: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: found.append(f"unraisable: {u.exc_value!r} in {u.object!r}"))
    caplog.set_level(logging.WARNING, logger="asyncio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield found
        gc.collect()
    found.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    found.extend(f"asyncio log: {r.getMessage()} {r.exc_info!r}" for r in caplog.records if r.name == "asyncio")


def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass (no timing is asserted)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_an_agent_runs_twice_on_one_model_and_leaves_nothing_open(
    openai_server: OpenAIServer,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from agentcore.runtime.agent import Agent

    model = make_model(openai_server, clock)
    openai_server.enqueue(text("first answer"), text("second answer"))
    agent = Agent(model)  # run_sync: a new event loop per call, the same model
    with leaks_reported(monkeypatch, caplog) as found:
        first, second = agent.run_sync("one"), agent.run_sync("two")
        assert (first.status, first.reply, second.status, second.reply) == (
            "succeeded", "first answer", "succeeded", "second answer",
        )  # fmt: skip
        assert eventually(lambda: not openai_server._connections), "the server still has open connections"
    assert found == []
    assert not re.search(r"Event loop is closed|[Uu]nclosed", capfd.readouterr().err)


def test_a_model_moves_between_event_loops_without_leaks(
    openai_server: OpenAIServer,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    model = make_model(openai_server, clock)
    openai_server.enqueue(*(text(f"answer {i}") for i in range(4)))
    with leaks_reported(monkeypatch, caplog) as found:
        # asyncio.run without aclose(): the connections are closed at the loop's shutdown
        assert [asyncio.run(model.complete(text_request())).content for _ in range(2)] == ["answer 0", "answer 1"]
        assert eventually(lambda: not openai_server._connections), "the server still has open connections"
        assert model.complete_sync(text_request()).content == "answer 2"
        assert eventually(lambda: not openai_server._connections), "the server still has open connections"
    assert found == []
    # a loop closed without shutting down: its client is dropped without touching the dead loop
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(model.complete(text_request())).content == "answer 3"
    loop.close()
    openai_server.enqueue(text("answer 4"))
    with leaks_reported(monkeypatch, caplog) as found:
        assert asyncio.run(model.complete(text_request())).content == "answer 4"
        del loop
    assert not [f for f in found if not f.startswith("ResourceWarning")]  # asyncio's own note on the dead loop
    assert "Event loop is closed" not in capfd.readouterr().err


def test_tools_and_schema_together_are_refused(openai_server: OpenAIServer, clock: FakeClock) -> None:
    request = ChatRequest(role="controller", messages=(user("x"),), tools=(SEARCH,), response_schema=SCHEMA)
    with pytest.raises(ConfigError, match="both tools and response_schema"):
        make_model(openai_server, clock).complete_sync(request)
    assert openai_server.requests == []


# -- value types and digests ------------------------------------------------------------------------------


def test_value_types_are_frozen_and_strict() -> None:
    message = user("x")
    with pytest.raises(pydantic.ValidationError):
        message.content = "y"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="extra"):
        ChatMessage(role="user", content="x", colour="red")  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError, match="needs tool_call_id"):
        ChatMessage(role="tool", content="result")
    with pytest.raises(pydantic.ValidationError):
        ChatResponse(content="x", attempts=0)


_DIGEST_SCRIPT = """
import sys
from agentcore.models.base import ChatMessage, ChatRequest, ToolSpec, request_digest
r = ChatRequest(role="controller", messages=(ChatMessage(role="user", content="h\u00e9llo"),),
                tools=(ToolSpec(name="t", description="d", parameters={"b": 1, "a": [1.5, None]}),),
                temperature=0.2)
sys.stdout.write(request_digest(r))
"""


def test_request_digest_is_stable_across_processes_and_sensitive() -> None:
    base = ChatRequest(
        role="controller",
        messages=(ChatMessage(role="user", content="h\u00e9llo"),),
        tools=(ToolSpec(name="t", description="d", parameters={"a": [1.5, None], "b": 1}),),
        temperature=0.2,
    )
    root = Path(__file__).resolve().parents[2]
    other = subprocess.run(
        [sys.executable, "-c", _DIGEST_SCRIPT],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    ).stdout
    digest = request_digest(base)
    assert digest == other and digest.startswith("sha256:") and len(digest) == 71
    changed = [
        base.model_copy(update={"messages": (ChatMessage(role="user", content="hello"),)}),
        base.model_copy(update={"temperature": 0.3}),
        base.model_copy(update={"role": "processor"}),
        base.model_copy(update={"tools": ()}),
    ]
    assert len({digest, *map(request_digest, changed)}) == 5
    assert canonical_json({"b": 1, "a": "\u00e9"}) == '{"a":"\u00e9","b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


# -- wire helpers and the test server itself -------------------------------------------------------------


def test_wire_helpers() -> None:
    assert strip_fences('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert strip_fences("see ```x``` here") == "see ```x``` here"
    assert llm_wire.retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert llm_wire.retry_after_seconds({"Retry-After": "soon"}) is None
    assert llm_wire.is_schema_rejection(500, "boom") and not llm_wire.is_schema_rejection(400, "bad model")
    assert not json_decisions.looks_like_json_decision('Sure: {"tool_calls": []}')  # JSON inside a line of prose
    assert json_decisions.looks_like_json_decision('Sure:\n{"tool_calls": []}')  # a lead-in line, then the object
    assert json_decisions.looks_like_json_decision(' ```json\n{"tool_calls": []}\n``` ')
    assert not json_decisions.looks_like_json_decision('{"reply": "x"}') and not json_decisions.looks_like_json_decision("{bad")
    assert json_decisions.json_answer("Note:\n{bad") is None and json_decisions.json_answer("{}") == {}
    with pytest.raises(ValueError, match="starts like JSON but is not valid JSON"):
        json_decisions.json_answer('{"tool_calls": [] } trailing')
    assert json_decisions.parse_json_decision('{"content": "hi"}') == ([], "hi")
    with pytest.raises(llm_wire.InvalidCompletion, match="body is JSON list"):
        llm_wire.parse_completion("[]")


def test_server_models_endpoint_and_exhausted_script(openai_server: OpenAIServer, clock: FakeClock) -> None:
    with urllib.request.urlopen(openai_server.base_url + "/models", timeout=5) as reply:
        assert json.load(reply)["data"][0]["id"] == "test-model"
    with pytest.raises(ModelUnavailable, match="no scripted reply left"):
        make_model(openai_server, clock, max_attempts=1).complete_sync(text_request())


ODD_SHAPES = {
    "tool_calls is a number": {"content": None, "tool_calls": 5},
    "tool_calls is a string": {"content": None, "tool_calls": "lookup"},
    "a content part's text is null": {"content": [{"type": "text", "text": None}]},
    "a content part's text is a number": {"content": [{"type": "text", "text": 5}]},
}


@pytest.mark.parametrize("message", list(ODD_SHAPES.values()), ids=list(ODD_SHAPES))
def test_a_message_of_the_wrong_shape_is_an_invalid_completion_never_a_type_error(
    message: dict[str, Any], openai_server: OpenAIServer, clock: FakeClock
) -> None:
    """``parse_completion`` raises only ``InvalidCompletion``; through the adapter such a body is
    retried like any 200 that is no completion, then a ``ModelOutputError`` (not a ``TypeError``)."""
    body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", **message}}]})
    with pytest.raises(llm_wire.InvalidCompletion):
        llm_wire.parse_completion(body)
    openai_server.enqueue(raw_body(body), raw_body(body))
    with pytest.raises(ModelOutputError, match="not a chat completion") as caught:
        make_model(openai_server, clock, max_attempts=2).complete_sync(text_request())
    assert len(openai_server.completion_requests) == 2 and len(clock.sleeps) == 1
    assert caught.value.response is not None


def test_text_parts_are_joined_and_other_parts_skipped() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}, "junk", {"type": "text", "text": "b"}]
    body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": parts}}]})
    assert llm_wire.parse_completion(body).content == "ab"
