"""Answers the OpenAI adapter itself finds unusable, under a whole run: recorded whole, replayed exactly.

Three answers are refused by ``OpenAIChatModel`` rather than by a role's parser: a 200 whose body is
no chat completion (after every HTTP attempt), a JSON tool decision that is malformed, and a
refusal (``message.refusal`` with no content and no tool call). Each reaches the role as an
unusable answer that is re-asked with the reason; the ``LLMCalled`` records the reason and what the
server did send (its usage, its text), and the exported trace replays with no divergence, also
when the last attempt of a turn ended on such an answer (the run failed with "output invalid").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import Event, LLMCalled
from agentcore.models.base import ChatRequest, ChatResponse
from agentcore.models.openai import OpenAIChatModel
from agentcore.models.scripted import FunctionChatModel
from agentcore.replay.replayer import replay_trace
from agentcore.runtime.agent import Agent, RunResult
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import export_run
from agentcore.testing import lookup_tool
from agentcore.testing.clock import FakeClock
from tests.guarantees.test_crash_torture import check_log
from tests.support.openai_server import OpenAIServer, Reply, invalid_completion, json_answer, raw_body, text, tool_calls

USAGE = {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35}
MALFORMED_DECISION = '{"tool_calls": [{"name": 5}]}'
"""A JSON decision whose call has no name string: the adapter's JSON tool mode refuses it."""


def healthy(body: dict[str, Any]) -> Reply:
    """Once the scripted faults are used up: the processor adds no fact, the controller replies."""
    if "response_format" in body:
        return json_answer({"ops": []})
    return text("The value of a is known.")


def refusal(message: str) -> Reply:
    completion = {
        "id": "chatcmpl-refused",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": None, "refusal": message}, "finish_reason": "stop"}
        ],
        "usage": USAGE,
    }
    return raw_body(json.dumps(completion))


def run(
    server: OpenAIServer, db: Path, *, tool_mode: str = "native", retries: int = 2
) -> tuple[RunResult, list[Event]]:
    model = OpenAIChatModel(
        "m", api_key="sk-unusable-123456", base_url=server.base_url, tool_mode=tool_mode,  # type: ignore[arg-type]
        schema_mode="json_schema", max_attempts=2, timeout=10, clock=FakeClock(),
    )  # fmt: skip
    with SQLiteEventStore(db) as store:
        agent = Agent(
            model, model, [lookup_tool({"a": "1"})], store, max_steps=3, max_output_retries=retries,
            max_patch_retries=retries,
        )  # fmt: skip
        result = agent.run_sync("Look up a.")
    return result, check_log(db, result.run_id, "after unusable answers")


def replays(db: Path, run_id: str, tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    with SQLiteEventStore(db) as store:
        export_run(store, run_id, trace)
    report = replay_trace(trace)
    assert report.ok, report.describe()


def calls(events: list[Event]) -> list[LLMCalled]:
    return [e for e in events if isinstance(e, LLMCalled)]


@pytest.mark.parametrize("role", ["controller", "processor"])
def test_a_turn_that_ends_on_bodies_that_are_no_completion_replays(role: str, tmp_path: Path) -> None:
    with OpenAIServer(handler=healthy) as server:
        if role == "processor":
            server.enqueue(tool_calls([("lookup", {"key": "a"})]))
        server.enqueue(*[invalid_completion()] * 4)  # 2 HTTP attempts x 2 tries: the turn ends on it
        result, events = run(server, tmp_path / "runs.db")
    failed = [c for c in calls(events) if c.role == role and not c.ok]
    assert [c.attempt for c in failed] == [1, 2]
    assert all("not a chat completion" in (c.error or "") for c in failed)
    if role == "controller":
        assert result.status == "failed"
        assert result.reason is not None and result.reason.startswith("controller output invalid after 2 attempts")
    else:  # the processor gave up on this result; the run went on
        assert result.status == "succeeded", result.reason
    replays(tmp_path / "runs.db", result.run_id, tmp_path)


def test_a_malformed_json_decision_is_recorded_with_its_text_and_usage_and_replays(tmp_path: Path) -> None:
    with OpenAIServer(handler=healthy) as server:
        server.enqueue(text(MALFORMED_DECISION, usage=USAGE), text(MALFORMED_DECISION, usage=USAGE))
        result, events = run(server, tmp_path / "runs.db", tool_mode="json")
        second = server.completion_requests[1].body
    assert result.status == "failed"
    assert result.reason is not None and "tool decision is malformed" in result.reason
    failed = calls(events)
    assert [(c.ok, c.usage.total_tokens) for c in failed] == [(False, 35), (False, 35)]
    assert all(c.response.get("content") == MALFORMED_DECISION for c in failed)
    # the re-ask quotes what the model said, so it can see its mistake
    assert MALFORMED_DECISION in second["messages"][-1]["content"]
    replays(tmp_path / "runs.db", result.run_id, tmp_path)


def test_a_refusal_is_recorded_as_the_reason_then_re_asked(tmp_path: Path) -> None:
    with OpenAIServer(handler=healthy) as server:
        server.enqueue(refusal("I can't help with looking things up."))
        result, events = run(server, tmp_path / "runs.db")
        second = server.completion_requests[1].body
    assert result.status == "succeeded", result.reason
    first = calls(events)[0]
    assert not first.ok and first.usage.total_tokens == 35
    assert first.error is not None and "refused" in first.error
    assert "I can't help with looking things up." in first.error
    assert "I can't help with looking things up." in second["messages"][-1]["content"]
    replays(tmp_path / "runs.db", result.run_id, tmp_path)


def test_a_run_that_ends_on_refusals_fails_naming_the_refusal_and_replays(tmp_path: Path) -> None:
    with OpenAIServer(handler=healthy) as server:
        server.enqueue(refusal("No."), refusal("Still no."))
        result, _ = run(server, tmp_path / "runs.db")
    assert result.status == "failed"
    assert result.reason is not None and "refused" in result.reason and "Still no." in result.reason
    replays(tmp_path / "runs.db", result.run_id, tmp_path)


def test_a_turn_that_ends_on_a_model_that_raises_value_error_replays(tmp_path: Path) -> None:
    """A custom model whose answer cannot be read (it raises ``ValueError``) gives unusable answers,
    re-asked; the recording says so, and replays the same way when the turn ends on one."""

    def unreadable(request: ChatRequest) -> ChatResponse:
        raise ValueError("the answer was not valid UTF-8")

    model = FunctionChatModel(unreadable, name="custom")
    with SQLiteEventStore(tmp_path / "runs.db") as store:
        result = Agent(model, model, [lookup_tool({"a": "1"})], store, max_output_retries=2).run_sync("Look up a.")
    assert result.status == "failed"
    assert result.reason is not None and result.reason.startswith("controller output invalid after 2 attempts")
    replays(tmp_path / "runs.db", result.run_id, tmp_path)
