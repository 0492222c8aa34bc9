"""One completion cannot fan out into unbounded work: a decision may start at most
``MAX_TOOL_CALLS_PER_DECISION`` tool calls; an answer with more is refused back to the model with the
reason (real openai client over loopback HTTP, a real SQLite file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcore.core.events import LLMCalled, ToolStarted
from agentcore.roles.controller import MAX_TOOL_CALLS_PER_DECISION
from agentcore.testing.clock import FakeClock
from tests.guarantees.test_model_faults import run, server  # noqa: F401  (fixture)
from tests.support.openai_server import OpenAIServer, tool_calls


@pytest.mark.parametrize("calls", [MAX_TOOL_CALLS_PER_DECISION + 1, 200, 2000])
def test_an_answer_with_too_many_calls_is_refused_and_the_run_stays_bounded(
    server: OpenAIServer,  # noqa: F811
    tmp_path: Path,
    calls: int,
) -> None:
    many = tool_calls([("lookup", {"key": f"k{i}"}) for i in range(calls)])
    server.enqueue(many, many, many)  # every attempt of the first turn fans out
    result, events = run(server, tmp_path / "fan.db", FakeClock(), agent={"max_steps": 3})
    assert result.status == "failed" and f"at most {MAX_TOOL_CALLS_PER_DECISION}" in (result.reason or "")
    assert not [e for e in events if isinstance(e, ToolStarted)]
    assert len(events) < 10


def test_the_model_is_told_and_can_go_on_with_fewer_calls(server: OpenAIServer, tmp_path: Path) -> None:  # noqa: F811
    server.enqueue(tool_calls([("lookup", {"key": f"k{i}"}) for i in range(40)]))  # refused; then the healthy server
    result, events = run(server, tmp_path / "fan.db", FakeClock())
    assert (result.status, result.reply) == ("succeeded", "The sky is blue.")
    first = next(e for e in events if isinstance(e, LLMCalled))
    assert first.error and f"at most {MAX_TOOL_CALLS_PER_DECISION}" in first.error
    retry = server.completion_requests[1].body["messages"]
    assert any(f"at most {MAX_TOOL_CALLS_PER_DECISION}" in (m.get("content") or "") for m in retry)
    assert len([e for e in events if isinstance(e, ToolStarted)]) <= MAX_TOOL_CALLS_PER_DECISION
