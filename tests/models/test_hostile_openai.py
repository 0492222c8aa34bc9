"""Hostile model output over the real openai client and loopback HTTP, into a real SQLite file.

Each test feeds the controller or the processor an answer real servers send (numbers that
overflow a double, call ids nobody can store, JSON decisions wrapped in prose, odd usage blocks,
an empty ``choices`` list) and checks that the mistake is fed back to the model (bounded), the run
goes on, and the log folds, inspects and replays (``tests.support.hostile.check_log``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import Decided, LLMCalled, PatchRejected, StatePatched, ToolFinished
from agentcore.errors import ConfigError
from agentcore.models.base import ChatResponse
from agentcore.models.openai import OpenAIChatModel
from agentcore.models.openai_wire import parse_completion
from agentcore.runtime.agent import Agent
from agentcore.runtime.run_result import RunResult
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.base import Tool, tool
from tests.support.hostile import check_log
from tests.support.openai_server import (
    OpenAIServer,
    Reply,
    json_answer,
    openai_server,  # noqa: F401
    raw_body,
    text,
    tool_calls,
)

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


@tool
def lookup(key: str) -> str:
    """The value stored under a key.

    Args:
        key: The key to look up.
    """
    return f"value of {key}"


def completion(message: dict[str, Any], *, usage: Any = USAGE, finish: str = "stop") -> Reply:
    """A completion body written out whole, so any field can be odd."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "test",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return raw_body(json.dumps(body))


def native_call(call_id: str, name: str, arguments: str) -> Reply:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
    }
    return completion(message, finish="tool_calls")


def fact_patch(body: dict[str, Any]) -> Reply:
    """The processor's answer: one fact read from its prompt's payload; the controller replies."""
    if "response_format" not in body:
        return text("The value is known.")
    prompt = body["messages"][1]["content"]
    payload = prompt.split("payload:\n", 1)[1].strip()
    return json_answer({"ops": [{"op": "append_known_facts", "facts": [{"key": "answer", "value": payload}]}]})


def run(server: OpenAIServer, db_path: Path, tools: list[Tool] | None = None) -> RunResult:
    model = OpenAIChatModel(base_url=server.base_url, api_key="test-key", model="test", max_attempts=1)
    store = SQLiteEventStore(db_path)
    try:
        return Agent(model, tools=[lookup] if tools is None else tools, store=store).run_sync("Find the value of a")
    finally:
        store.close()


def events(db_path: Path, run_id: str) -> list[Any]:
    store = SQLiteEventStore(db_path)
    try:
        return list(store.read(run_id))
    finally:
        store.close()


def test_an_argument_too_large_for_a_double_is_fed_back_not_read_as_infinity(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    openai_server.enqueue(
        native_call("call_1", "lookup", '{"key": "a", "weight": 1e309}'),
        tool_calls([("lookup", {"key": "a"})]),
    )
    openai_server.handler = fact_patch
    result = run(openai_server, db_path)

    assert result.status == "succeeded"
    log = events(db_path, result.run_id)
    refused = [e for e in log if isinstance(e, LLMCalled) and not e.ok]
    assert len(refused) == 1 and refused[0].error is not None
    assert "1e309 is too large to store" in refused[0].error
    # the model was told, in its next request, what was wrong
    second = openai_server.completion_requests[1].body["messages"][-1]["content"]
    assert "1e309 is too large to store" in second
    assert [c.arguments for d in log if isinstance(d, Decided) for c in d.decision.tool_calls] == [{"key": "a"}]
    check_log(db_path, result.run_id, tmp_path)


def test_a_processor_number_too_large_for_a_double_is_refused_then_corrected(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    overflow = '{"ops": [{"op": "append_known_facts", "facts": [{"key": "w", "value": "heavy", "confidence": 1e999}]}]}'
    openai_server.enqueue(tool_calls([("lookup", {"key": "a"})]), text(overflow))
    openai_server.handler = fact_patch
    result = run(openai_server, db_path)

    assert result.status == "succeeded"
    rejected = [e for e in events(db_path, result.run_id) if isinstance(e, PatchRejected)]
    assert len(rejected) == 1 and "1e999 is too large to store" in rejected[0].error
    assert result.state.known_facts["answer"].value == "value of a"
    assert "w" not in result.state.known_facts
    check_log(db_path, result.run_id, tmp_path)


def test_call_ids_that_are_empty_huge_or_hold_control_characters_are_replaced(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    calls = [
        ("x" * 100_000, {"key": "a"}),
        ("", {"key": "b"}),
        ("id\u0000\u202e\ud800", {"key": "c"}),
        ("call_ok-1.2:3", {"key": "d"}),
    ]
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": "lookup", "arguments": json.dumps(a)}} for i, a in calls
        ],
    }
    openai_server.enqueue(completion(message, finish="tool_calls"))
    openai_server.handler = fact_patch
    result = run(openai_server, db_path)

    assert result.status == "succeeded"
    log = events(db_path, result.run_id)
    decided = next(e for e in log if isinstance(e, Decided))
    assert [c.id for c in decided.decision.tool_calls] == ["d1_call_1", "d1_call_2", "d1_call_3", "d1_call_ok-1.2:3"]
    finished = [e for e in log if isinstance(e, ToolFinished)]
    assert sorted(e.payload for e in finished) == ["value of a", "value of b", "value of c", "value of d"]
    assert max(len(e.model_dump_json()) for e in log if not isinstance(e, LLMCalled)) < 5_000
    processor_prompts = [r.body for r in openai_server.completion_requests if "response_format" in r.body]
    assert processor_prompts and all(len(json.dumps(b)) < 20_000 for b in processor_prompts)
    check_log(db_path, result.run_id, tmp_path)


def test_a_tool_call_wrapped_in_prose_is_re_asked_not_taken_as_the_reply(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    wrapped = (
        "Sure! I will look it up:\n```json\n"
        + json.dumps({"tool_calls": [{"name": "lookup", "arguments": {"key": "a"}}]})
        + "\n```\nHope this helps!"
    )
    openai_server.enqueue(text(wrapped), tool_calls([("lookup", {"key": "a"})]))
    openai_server.handler = fact_patch
    result = run(openai_server, db_path)

    assert result.status == "succeeded" and result.reply == "The value is known."
    log = events(db_path, result.run_id)
    first = next(e for e in log if isinstance(e, LLMCalled))
    assert not first.ok and first.error is not None and 'JSON "tool_calls" decision inside other text' in first.error
    assert [e.payload for e in log if isinstance(e, ToolFinished)] == ["value of a"]
    check_log(db_path, result.run_id, tmp_path)


def test_a_reply_quoting_plain_json_is_still_a_reply(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    reply = 'The config is {"retries": 3, "tool_calls": []} as requested.'
    openai_server.enqueue(text(reply))
    result = run(openai_server, db_path)
    assert (result.status, result.reply) == ("succeeded", reply)
    check_log(db_path, result.run_id, tmp_path)


def test_odd_usage_blocks_are_read_as_counts_or_zero(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    first = json.loads(native_call("c1", "lookup", '{"key": "a"}').body)
    first["usage"] = {"prompt_tokens": 1.5, "completion_tokens": True, "total_tokens": None}
    openai_server.enqueue(raw_body(json.dumps(first)))
    odd = iter(
        [
            {"prompt_tokens": -50, "completion_tokens": -1, "total_tokens": -51},
            {"prompt_tokens": "7", "completion_tokens": 2.0, "total_tokens": "NaN"},
        ]
    )

    def handler(body: dict[str, Any]) -> Reply:
        usage = next(odd)
        if "response_format" in body:
            patch = {"ops": [{"op": "append_known_facts", "facts": [{"key": "k", "value": "v"}]}]}
            return completion({"role": "assistant", "content": json.dumps(patch)}, usage=usage)
        return completion({"role": "assistant", "content": "done"}, usage=usage)

    openai_server.handler = handler
    result = run(openai_server, db_path)

    assert result.status == "succeeded"
    usages = [e.usage for e in events(db_path, result.run_id) if isinstance(e, LLMCalled)]
    assert [(u.prompt_tokens, u.completion_tokens, u.total_tokens) for u in usages] == [
        (0, 0, 0),  # fractions and booleans are no token counts
        (-50, -1, -51),  # recorded as the server sent it, and unpriced (see test_prices.py)
        (7, 2, 9),  # digits and whole floats are read; a total that is no number is the sum
    ]
    assert result.state.tokens == -42
    check_log(db_path, result.run_id, tmp_path)


@pytest.mark.parametrize(
    ("sent", "read"),
    [("²", 0), ("١٢", 0), (" 12 ", 12), ("1e3", 0), (1e300, 0), (10**30, 0), (-(10**30), 0), (2**63 - 1, 2**63 - 1)],
)
def test_a_count_that_is_no_ascii_number_or_beyond_64_bits_is_zero(sent: Any, read: int) -> None:
    # '²'.isdigit() is True but int('²') raises: the whole answer was refused as unreadable
    body = json.loads(completion({"role": "assistant", "content": "hi"}).body)
    body["usage"] = {"prompt_tokens": sent, "completion_tokens": 1, "total_tokens": None}
    usage = parse_completion(json.dumps(body)).usage
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (read, 1)


def test_an_empty_choices_list_is_named_and_re_asked(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    openai_server.enqueue(raw_body(json.dumps({"object": "chat.completion", "choices": [], "usage": USAGE})))
    openai_server.enqueue(text("The answer is 4."))
    result = run(openai_server, db_path)

    assert (result.status, result.reply) == ("succeeded", "The answer is 4.")
    first = next(e for e in events(db_path, result.run_id) if isinstance(e, LLMCalled))
    assert not first.ok and first.error is not None and "'choices' is empty" in first.error
    check_log(db_path, result.run_id, tmp_path)


def test_an_unknown_tool_with_a_huge_name_is_fed_back_clipped(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    openai_server.enqueue(native_call("c1", "n" * 200_000, "{}"), text("I cannot do that."))
    result = run(openai_server, db_path)

    assert result.status == "succeeded"
    first = next(e for e in events(db_path, result.run_id) if isinstance(e, LLMCalled))
    assert first.error is not None and first.error.startswith("unknown tool 'nnn")
    assert "available tools: ask_user, lookup" in first.error and len(first.error) < 1_000
    check_log(db_path, result.run_id, tmp_path)


def test_a_patch_among_prose_is_read_and_two_patches_are_refused(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    patch = {"ops": [{"op": "append_known_facts", "facts": [{"key": "a", "value": "value of a"}]}]}
    two = json.dumps(patch) + "\n" + json.dumps(patch)
    prose = "Here is the patch:\n```json\n" + json.dumps(patch) + "\n```\nLet me know if you need more."
    openai_server.enqueue(tool_calls([("lookup", {"key": "a"})]), text(two), text(prose), text("a is known."))
    result = run(openai_server, db_path)

    assert result.status == "succeeded"
    log = events(db_path, result.run_id)
    rejected = [e for e in log if isinstance(e, PatchRejected)]
    assert len(rejected) == 1 and "2 separate JSON objects" in rejected[0].error
    patched = [e for e in log if isinstance(e, StatePatched)]
    assert len(patched) == 1 and result.state.known_facts["a"].value == "value of a"
    check_log(db_path, result.run_id, tmp_path)


def test_only_a_fenced_decision_for_known_tools_is_refused_as_prose() -> None:
    from agentcore.models.json_decisions import fenced_decision

    call = json.dumps({"tool_calls": [{"name": "lookup", "arguments": {"key": "a"}}]})
    other = json.dumps({"tool_calls": [{"name": "delete_repo", "arguments": {}}]})
    names = {"lookup", "ask_user"}
    assert fenced_decision(f"Sure:\n```json\n{call}\n```\nDone!", names) == "tool_calls"
    assert fenced_decision('Let me ask.\n```\n{"ask_user": "Which file?"}\n```', names) == "ask_user"
    assert fenced_decision(f"An agent would answer {call} here.", names) is None  # running text: a reply
    assert fenced_decision(f"For example:\n```json\n{other}\n```\nthat tool does not exist here.", names) is None
    assert fenced_decision('```json\n{"reply": "x"}\n```\nand more', names) is None


def test_a_fenced_call_whose_name_is_not_text_leaves_the_answer_a_reply() -> None:
    from agentcore.roles.decisions import parse_decision

    # a list or an object as a tool's name cannot be looked up in the set of names (unhashable): the
    # answer is prose with an odd example in it, a reply, not an unreadable answer
    for name in (["lookup"], {"n": "lookup"}, 7, None):
        block = json.dumps({"tool_calls": [{"name": name, "arguments": {}}]})
        content = f"Here is what a call looks like:\n```json\n{block}\n```\nThe answer is 42."
        decision = parse_decision(ChatResponse(content=content), ["lookup"])
        assert decision.kind == "reply" and decision.reply == content


def streamed(chunks: list[dict[str, Any]], *, done: bool = True) -> Reply:
    """A body of server-sent events, as a server that always streams sends it."""
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + ("data: [DONE]\n\n" if done else "")
    return Reply(kind="raw", headers={"Content-Type": "text/event-stream"}, body=body.encode())


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "c", "object": "chat.completion.chunk", "model": "test", "choices": [choice], **extra}


def test_an_answer_streamed_unasked_is_joined_into_one_completion(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    call_parts = [
        chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "look"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "up", "arguments": '{"ke'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'y": "a"}'}}]}),
        chunk({}, "tool_calls", usage={"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}),
    ]
    reply_parts = [chunk({"content": "The value "}), chunk({"content": "is known."}), chunk({}, "stop")]
    openai_server.enqueue(streamed(call_parts))

    def handler(body: dict[str, Any]) -> Reply:
        return fact_patch(body) if "response_format" in body else streamed(reply_parts, done=False)

    openai_server.handler = handler
    result = run(openai_server, db_path)

    assert (result.status, result.reply) == ("succeeded", "The value is known.")
    log = events(db_path, result.run_id)
    decided = next(e for e in log if isinstance(e, Decided))
    assert [(c.id, c.name, c.arguments) for c in decided.decision.tool_calls] == [("d1_call_a", "lookup", {"key": "a"})]
    assert next(e for e in log if isinstance(e, LLMCalled)).usage.total_tokens == 7
    assert result.state.known_facts["answer"].value == "value of a"
    check_log(db_path, result.run_id, tmp_path)


def test_a_stream_cut_off_or_carrying_an_error_is_named_and_re_asked(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    cut_short = streamed([chunk({"content": "The val"})], done=False)
    failing = Reply(
        kind="raw",
        headers={"Content-Type": "text/event-stream"},
        body=b'data: {"error": {"message": "upstream overloaded"}}\n\n',
    )
    openai_server.enqueue(cut_short, failing, text("The value is 4."))
    result = run(openai_server, db_path)

    assert (result.status, result.reply) == ("succeeded", "The value is 4.")
    errors = [e.error for e in events(db_path, result.run_id) if isinstance(e, LLMCalled) and not e.ok]
    assert len(errors) == 2
    assert "stopped after 1 chunks without a finish reason" in errors[0]
    assert "the stream carried an error: upstream overloaded" in errors[1]
    check_log(db_path, result.run_id, tmp_path)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("backoff_base", math.nan),
        ("backoff_cap", math.inf),
        ("backoff_cap", 1e300),
        ("backoff_base", -1.0),
        ("max_attempts", True),
        ("max_attempts", 2.5),
        ("max_attempts", 0),
    ],
)
def test_odd_model_retry_settings_are_config_errors(setting: str, value: object) -> None:
    with pytest.raises(ConfigError, match=setting):
        OpenAIChatModel("m", base_url="http://127.0.0.1:1/v1", api_key="k", **{setting: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("setting", ["max_steps", "max_output_retries", "max_patch_retries", "max_tokens"])
def test_a_boolean_where_a_count_is_expected_is_a_config_error(setting: str) -> None:
    model = OpenAIChatModel("m", base_url="http://127.0.0.1:1/v1", api_key="k")
    with pytest.raises(ConfigError, match=setting):
        Agent(model, **{setting: True})


def test_arguments_encoded_twice_are_read_once_more(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    twice = json.dumps(json.dumps({"key": "a"}))  # '"{\\"key\\": \\"a\\"}"'
    patch = json_answer({"ops": [{"op": "append_known_facts", "facts": [{"key": "a", "value": "value of a"}]}]})
    just_text = native_call("c2", "lookup", json.dumps("just text"))
    openai_server.enqueue(native_call("c1", "lookup", twice), patch, just_text, text("a is known."))
    result = run(openai_server, db_path)

    assert result.status == "succeeded"
    log = events(db_path, result.run_id)
    decided = next(e for e in log if isinstance(e, Decided))
    assert [c.arguments for c in decided.decision.tool_calls] == [{"key": "a"}]
    refused = [e.error for e in log if isinstance(e, LLMCalled) and not e.ok]
    assert refused == ["the arguments of your call to 'lookup' must be a JSON object, got str"]
    check_log(db_path, result.run_id, tmp_path)
