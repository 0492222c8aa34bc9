"""A faulty model server under a whole run: real openai client, loopback HTTP, a real SQLite file.

``tests/models/test_llm.py`` covers ``OpenAIChatModel`` alone. Here each fault (429 with and without
Retry-After, 5xx, a timeout, a connection cut mid-body, a 200 whose body is no completion, a 4xx)
hits a call of a real ``Agent`` run, as the controller or as the processor. Each is retried or
reported as the policy says: the run goes on (its ``LLMCalled`` records how many HTTP attempts the
call took) or ends ``failed`` with the reason. Either way the log is intact: integrity ok, seqs
1..n, every event decodes, the fold equals ``state_at``. Backoff uses a fake sleep.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import Event, LLMCalled, ToolFinished
from agentcore.models.openai import OpenAIChatModel
from agentcore.runtime.agent import Agent, RunResult
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing.clock import FakeClock
from agentcore.tools.base import Tool, tool
from tests.guarantees.test_crash_torture import check_log
from tests.support.openai_server import (
    OpenAIServer,
    Reply,
    cut,
    invalid_completion,
    json_answer,
    malformed,
    slow,
    status,
    text,
    tool_calls,
)

KEY = "sk-faults-5f1d2c3b4a"


def answer(body: dict[str, Any]) -> Reply:
    """The healthy server: one lookup, then a reply; the processor makes a fact of each result."""
    prompt = "\n".join(m.get("content") or "" for m in body["messages"] if m["role"] == "user")
    if "response_format" in body:
        call_id = re.search(r"^call id: (\S+)$", prompt, re.MULTILINE)
        assert call_id, prompt
        fact = {"key": "colour", "value": "the sky is blue", "source": call_id.group(1)}
        return json_answer({"ops": [{"op": "append_known_facts", "facts": [fact]}]})
    if "Decisions so far: 0." in prompt:
        return tool_calls([("lookup", {"key": "sky"})])
    return text("The sky is blue.")


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(handler=answer) as s:
        yield s


class Lookups:
    def __init__(self) -> None:
        self.keys: list[str] = []

        @tool
        def lookup(key: str) -> str:
            """Look a key up.

            Args:
                key: The key.
            """
            self.keys.append(key)
            return f"{key}: blue"

        self.tool: Tool = lookup


def run(
    server: OpenAIServer, db_path: Path, clock: FakeClock, *, agent: dict[str, Any] | None = None, **model_options: Any
) -> tuple[RunResult, list[Event]]:
    """One run of the agent on ``db_path``; returns its result and its checked log."""
    model_options.setdefault("timeout", 5.0)
    model_options.setdefault("max_attempts", 4)
    model = OpenAIChatModel("fault-model", api_key=KEY, base_url=server.base_url, clock=clock, **model_options)
    lookups = Lookups()
    with SQLiteEventStore(db_path) as store:
        result = Agent(model, tools=[lookups.tool], store=store, **(agent or {})).run_sync("What colour is the sky?")
        assert store.state_at(result.run_id) == result.state
    events = check_log(db_path, result.run_id, "after a faulty run")
    assert KEY.encode() not in b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    return result, events


def llm_calls(events: list[Event]) -> list[LLMCalled]:
    return [e for e in events if isinstance(e, LLMCalled)]


def attempts(events: list[Event]) -> list[tuple[str, int | None]]:
    """(role, HTTP attempts) of every recorded model call."""
    return [(e.role, e.response.get("attempts")) for e in llm_calls(events)]


# -- transient faults are retried and the run goes on --------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "delays"),
    [
        ([status(429, headers={"Retry-After": "2"})], [2.0]),
        ([status(429), status(429)], [(0.25, 0.5), (0.5, 1.0)]),
        ([status(500)], [(0.25, 0.5)]),
        ([status(502), status(503)], [(0.25, 0.5), (0.5, 1.0)]),
        ([cut()], [(0.25, 0.5)]),
        ([malformed(), invalid_completion()], [(0.25, 0.5), (0.5, 1.0)]),
    ],
    ids=["429-retry-after", "429-backoff", "500", "502-503", "cut-mid-body", "200-not-a-completion"],
)
@pytest.mark.parametrize("role", ["controller", "processor"])
def test_transient_faults_are_retried_and_recorded(
    server: OpenAIServer, db_path: Path, role: str, faults: list[Reply], delays: list[Any]
) -> None:
    if role == "processor":
        server.enqueue(tool_calls([("lookup", {"key": "sky"})]))  # the controller's first call goes through
    server.enqueue(*faults)
    clock = FakeClock()
    result, events = run(server, db_path, clock, backoff_base=0.5)
    assert (result.status, result.reply) == ("succeeded", "The sky is blue.")
    assert result.state.known_facts["colour"].value == "the sky is blue"
    tries = 1 + len(faults)
    want = [("controller", tries if role == "controller" else 1), ("processor", tries if role == "processor" else 1)]
    assert attempts(events) == [*want, ("controller", 1)]
    assert all(e.ok for e in llm_calls(events))
    assert len(server.completion_requests) == 3 + len(faults)
    if role == "processor" and faults[0].status == 500:
        # a 500 to the first json_schema request reads as "no json_schema here" (llama-cpp-python):
        # the request is sent again at once as json_object, and that costs no retry
        formats = [r.body.get("response_format", {}).get("type") for r in server.completion_requests[1:3]]
        assert formats == ["json_schema", "json_object"]
        delays = []
    assert len(clock.sleeps) == len(delays)
    for got, want_delay in zip(clock.sleeps, delays, strict=True):
        assert got == want_delay if isinstance(want_delay, float) else want_delay[0] <= got <= want_delay[1]


def test_a_timeout_is_retried_within_the_run(server: OpenAIServer, db_path: Path) -> None:
    server.enqueue(slow(60.0, then=text("too late")))
    result, events = run(server, db_path, FakeClock(), timeout=3.0)  # the normal 2nd reply must beat it
    assert result.status == "succeeded"
    assert attempts(events)[0] == ("controller", 2)


# -- faults that outlast the policy end the run, recorded -----------------------------------------------


@pytest.mark.parametrize("role", ["controller", "processor"])
def test_a_server_that_stays_down_fails_the_run_with_the_reason(server: OpenAIServer, db_path: Path, role: str) -> None:
    if role == "processor":
        server.enqueue(tool_calls([("lookup", {"key": "sky"})]))
    server.enqueue(*[status(503, body={"error": {"message": "overloaded"}})] * 3)
    clock = FakeClock()
    result, events = run(server, db_path, clock, max_attempts=3)
    assert result.status == "failed"
    assert result.reason is not None and result.reason.startswith(f"{role} model failed:")
    assert "unavailable after 3 attempts" in result.reason and "HTTP 503: overloaded" in result.reason
    failed = llm_calls(events)[-1]
    assert (failed.role, failed.ok, failed.response) == (role, False, {})
    assert failed.error is not None and "after 3 attempts" in failed.error
    assert events[-1].type == "run_finished" and events[-1].caused_by == failed.seq
    assert len(clock.sleeps) == 2
    if role == "processor":  # the tool result came before the failure and stays recorded
        assert any(isinstance(e, ToolFinished) and e.ok for e in events)


def test_timeouts_that_outlast_the_policy_fail_the_run(server: OpenAIServer, db_path: Path) -> None:
    server.enqueue(slow(30.0, then=text("late")), slow(30.0, then=text("late")))
    result, events = run(server, db_path, FakeClock(), timeout=0.3, max_attempts=2)
    assert result.status == "failed"
    assert result.reason is not None and "no answer within the 0.3s timeout" in result.reason
    assert [e.type for e in events] == ["run_started", "llm_called", "run_finished"]


def test_a_refused_request_is_not_retried(server: OpenAIServer, db_path: Path) -> None:
    server.enqueue(status(400, body={"error": {"message": "context length exceeded"}}))
    clock = FakeClock()
    result, events = run(server, db_path, clock)
    assert result.status == "failed"
    assert result.reason is not None and "HTTP 400" in result.reason and "context length exceeded" in result.reason
    assert len(server.completion_requests) == 1 and clock.sleeps == []
    assert [e.type for e in events] == ["run_started", "llm_called", "run_finished"]


def test_bodies_that_are_never_a_completion_are_unusable_answers(server: OpenAIServer, db_path: Path) -> None:
    """A 200 that never parses is an output error: the controller is asked again, then the run fails."""
    server.enqueue(*[malformed()] * 6)  # 2 HTTP attempts per call x 3 controller tries
    result, events = run(server, db_path, FakeClock(), max_attempts=2, agent={"max_output_retries": 3})
    assert result.status == "failed"
    assert result.reason is not None and result.reason.startswith("controller output invalid after 3 attempts")
    calls = llm_calls(events)
    assert [c.attempt for c in calls] == [1, 2, 3]
    assert all(not c.ok and "not a chat completion" in (c.error or "") for c in calls)
    assert len(server.completion_requests) == 6
