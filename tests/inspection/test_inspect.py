"""Inspection queries: runs table, events, state at a seq, diffs, `why`, usage, artifact previews."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import (
    BaseEvent,
    Decided,
    Decision,
    LLMCalled,
    RunStarted,
    StatePatched,
    TokenUsage,
    ToolCall,
    ToolFinished,
    ToolStarted,
)
from agentcore.core.patches import AppendKnownFacts, FactInput
from agentcore.errors import ArtifactNotFound, ConfigError, RunNotFound
from agentcore.inspection.provenance import why
from agentcore.inspection.queries import artifact_preview, diff, list_events, list_runs, state_at, usage
from agentcore.models.base import ChatRequest, ChatResponse
from agentcore.storage.base import EventStore
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.trace import import_trace
from agentcore.testing import FunctionChatModel, demo_agent, respond_json

TABLE = {"alpha": "first value", "beta": "second value"}
T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def record(store: EventStore, table: dict[str, str] = TABLE, run_id: str = "run-a", **kw: Any) -> str:
    result = asyncio.run(demo_agent(table, store=store, **kw).run("Look up the keys", run_id=run_id))
    assert result.status == "succeeded"
    return run_id


def test_list_runs_counts_events_tokens_and_duration(store: EventStore) -> None:
    record(store)
    store.fork("run-a", 7, new_run_id="fork-1")
    rows = {r["id"]: r for r in list_runs(store)}
    assert set(rows) == {"run-a", "fork-1"}
    a = rows["run-a"]
    events = list_events(store, "run-a")
    assert a["events"] == len(events) == 16 and a["status"] == "succeeded" and a["task"] == "Look up the keys"
    assert a["tokens"] == 3 * 110 + 2 * 70  # three controller calls and two processor calls of the demo agent
    first = datetime.fromisoformat(events[0]["at"])
    last = datetime.fromisoformat(events[-1]["at"])
    assert a["duration_s"] == (last - first).total_seconds() > 0
    fork = rows["fork-1"]
    assert fork["events"] == 7 and fork["parent_run_id"] == "run-a" and fork["forked_at_seq"] == 7
    assert fork["tokens"] == 110 + 70


def test_list_events_filters_by_type_and_seq_range(store: EventStore) -> None:
    record(store)
    calls = list_events(store, "run-a", types=["llm_called"])
    assert [r["seq"] for r in calls] == [2, 6, 8, 12, 14]
    assert [r["event"]["role"] for r in calls] == ["controller", "processor", "controller", "processor", "controller"]
    window = list_events(store, "run-a", since=5, until=7)
    assert [(r["seq"], r["type"]) for r in window] == [(5, "tool_finished"), (6, "llm_called"), (7, "state_patched")]
    assert window[0]["summary"] == "lookup [d1_call_1] ok: first value"
    assert window[2]["caused_by"] == 5
    both = list_events(store, "run-a", types={"tool_finished", "run_finished"}, since=6)
    assert [r["type"] for r in both] == ["tool_finished", "run_finished"]
    with pytest.raises(ConfigError, match=r"unknown event type\(s\) tool_called; known: decided"):
        list_events(store, "run-a", types=["tool_called"])
    with pytest.raises(ConfigError, match="since \\(9\\) is after until \\(3\\)"):
        list_events(store, "run-a", since=9, until=3)
    with pytest.raises(RunNotFound):
        list_events(store, "nope")


def test_state_at_and_diff(store: EventStore) -> None:
    record(store)
    assert state_at(store, "run-a", 0)["known_facts"] == {}
    assert list(state_at(store, "run-a", 7)["known_facts"]) == ["alpha"]
    latest = state_at(store, "run-a")
    assert latest["status"] == "succeeded" and set(latest["known_facts"]) == {"alpha", "beta"}
    ops = diff(store, "run-a", 6, 7)
    added = [op for op in ops if op["path"] == "/known_facts/alpha"]
    assert added and added[0]["op"] == "add" and added[0]["value"]["value"] == "first value"
    assert diff(store, "run-a", 7, 7) == []
    with pytest.raises(ConfigError, match=r"seq 99 is out of range for run .run-a.: it has seqs 1\.\.16"):
        state_at(store, "run-a", 99)
    with pytest.raises(ConfigError, match="b -1 is out of range"):
        diff(store, "run-a", 1, -1)


def test_why_follows_the_chain_from_fact_to_controller_decision(store: EventStore) -> None:
    record(store)
    answer = why(store, "run-a", "beta")
    assert answer["fact"]["value"] == "second value" and answer["set_at"] == 13
    chain = answer["chain"]
    assert [(c["seq"], c["type"]) for c in chain] == [
        (13, "state_patched"),
        (12, "llm_called"),
        (11, "tool_finished"),
        (10, "tool_started"),
        (9, "decided"),
        (8, "llm_called"),
    ]
    assert chain[1]["role"] == "processor" and chain[-1]["role"] == "controller"
    assert chain[3]["arguments"] == {"key": "beta"}
    # the raw tool output comes first among the artifacts, and it is what the fact points to
    tool_artifact = chain[2]["artifact"]
    assert answer["artifacts"][0] == tool_artifact == answer["fact"]["artifact_id"]
    assert store.artifacts.get_text(tool_artifact) == "second value"
    assert answer["history"] == [13]
    # as of an earlier seq the fact does not exist yet
    with pytest.raises(ConfigError, match="no fact 'beta' at seq 7; known keys: 'alpha'"):
        why(store, "run-a", "beta", seq=7)


def test_why_lists_close_keys_and_every_seq_that_set_a_key() -> None:
    store = MemoryEventStore()

    def same_key(request: ChatRequest) -> ChatResponse:
        payload = (request.messages[1].content or "").split("payload:\n", 1)[1]
        return respond_json({"ops": [{"op": "append_known_facts", "facts": [{"key": "answer", "value": payload}]}]})

    record(store, processor=FunctionChatModel(same_key))
    answer = why(store, "run-a", "answer")
    assert answer["fact"]["value"] == "second value" and answer["history"] == [7, 13]
    assert why(store, "run-a", "answer", seq=12)["fact"]["value"] == "first value"
    with pytest.raises(ConfigError, match=r"no fact 'answr' at seq 16; known keys: 'answer'"):
        why(store, "run-a", "answr")


def test_why_without_caused_by_takes_the_nearest_event_of_each_kind() -> None:
    store = MemoryEventStore()
    store.create_run("t", run_id="r")
    ref = store.artifacts.put_text("raw output")
    call = ToolCall(id="c1", name="grep", arguments={"q": "x"})
    at = iter(T0 + timedelta(seconds=i) for i in range(100))
    fact = FactInput(key="k", value="v", artifact_id=ref.id)
    spec: list[tuple[type[BaseEvent], dict[str, Any]]] = [
        (RunStarted, {"task": "t"}),
        (LLMCalled, {"role": "controller", "model": "m", "request_digest": "sha256:" + "0" * 64}),
        (Decided, {"decision": Decision(kind="tool_calls", tool_calls=(call,))}),
        (ToolStarted, {"call": call, "idempotency_key": "r/main/c1"}),
        (ToolStarted, {"call": ToolCall(id="c2", name="other"), "idempotency_key": "r/main/c2"}),
        (ToolFinished, {"call_id": "c2", "name": "other", "ok": True, "payload": "p2"}),
        (ToolFinished, {"call_id": "c1", "name": "grep", "ok": True, "payload": "p", "artifact": ref}),
        (LLMCalled, {"role": "processor", "model": "m", "request_digest": "sha256:" + "1" * 64}),
        (StatePatched, {"ops": (AppendKnownFacts(facts=(fact,)),)}),
    ]
    events = [cls(run_id="r", seq=i, at=next(at), **fields) for i, (cls, fields) in enumerate(spec, start=1)]
    store.append("r", events, 0)
    chain = why(store, "r", "k")["chain"]
    assert [c["seq"] for c in chain] == [9, 8, 7, 4, 3, 2]  # skips the unrelated call c2
    assert all(c["via"] != "caused_by" for c in chain[1:])


def test_usage_per_role_and_per_step() -> None:
    store = MemoryEventStore()
    store.create_run("t", run_id="r")

    def llm(seq: int, role: str, step: str | None, tokens: int, cost: float | None) -> LLMCalled:
        u = TokenUsage(prompt_tokens=tokens - 1, completion_tokens=1, total_tokens=tokens)
        fields: dict[str, Any] = {"role": role, "model": "m", "request_digest": "d", "usage": u, "step_id": step}
        return LLMCalled(run_id="r", seq=seq, at=T0, cost_usd=cost, **fields)

    events = [
        RunStarted(run_id="r", seq=1, at=T0, task="t"),
        llm(2, "planner", None, 40, None),
        llm(3, "controller", "s1", 100, 0.25),
        llm(4, "processor", "s1", 10, 0.0),
        llm(5, "controller", "s2", 200, 0.5),
    ]
    store.append("r", events, 0)
    u = usage(store, "r")
    assert u["total"] == {
        "calls": 4,
        "prompt_tokens": 346,
        "completion_tokens": 4,
        "total_tokens": 350,
        "cost_usd": None,  # the planner's model has no price: the total is unknown, not 0.75
        "unpriced_calls": 1,
    }
    assert {k: v["cost_usd"] for k, v in u["by_role"].items()} == {"controller": 0.75, "planner": None, "processor": 0.0}
    assert {k: v["cost_usd"] for k, v in u["by_step"].items()} == {"-": None, "s1": 0.25, "s2": 0.5}
    repriced = usage(store, "r", price=lambda e: e.usage.total_tokens / 100)
    assert repriced["total"]["cost_usd"] == 3.5 and repriced["total"]["unpriced_calls"] == 0
    assert {k: v["total_tokens"] for k, v in u["by_role"].items()} == {
        "controller": 300,
        "planner": 40,
        "processor": 10,
    }
    assert {k: (v["calls"], v["total_tokens"]) for k, v in u["by_step"].items()} == {
        "-": (1, 40),
        "s1": (2, 110),
        "s2": (1, 200),
    }


def test_usage_of_a_recorded_run(store: EventStore) -> None:
    record(store)
    u = usage(store, "run-a")
    assert u["by_role"]["controller"] == {
        "calls": 3,
        "prompt_tokens": 300,
        "completion_tokens": 30,
        "total_tokens": 330,
        "cost_usd": None,  # scripted models have no price
        "unpriced_calls": 3,
    }
    assert u["by_role"]["processor"]["total_tokens"] == 140
    assert store.state_at("run-a").tokens == u["total"]["total_tokens"]


def test_artifact_preview(store: EventStore) -> None:
    text = store.artifacts.put_text("héllo wörld " * 400)
    small = artifact_preview(store, text.id, limit=20)
    assert small["truncated"] and not small["binary"] and small["size"] == text.size
    assert small["preview"] == ("héllo wörld " * 2)[: len(small["preview"])] and len(small["preview"]) >= 17
    whole = artifact_preview(store, text.id, limit=100_000)
    assert not whole["truncated"] and whole["preview"] == "héllo wörld " * 400
    assert whole["media_type"].startswith("text/plain")
    blob = store.artifacts.put(bytes([0, 159, 255, 1, 2]))
    b = artifact_preview(store, blob.id)
    assert b["binary"] and b["preview"] == "00 9f ff 01 02"
    with pytest.raises(ArtifactNotFound):
        artifact_preview(store, "sha256:" + "e" * 64)
    with pytest.raises(ArtifactNotFound, match="is not an artifact id"):
        artifact_preview(store, "../etc/passwd")
    with pytest.raises(ConfigError, match="limit must be a positive number"):
        artifact_preview(store, text.id, limit=0)


def test_why_a_fact_from_the_users_answer_ends_at_the_answer() -> None:
    store = MemoryEventStore()
    run_id = import_trace(store, Path(__file__).resolve().parents[2] / "traces" / "ask_user.jsonl")
    answer = why(store, run_id, "user.answer")
    assert answer["fact"]["value"] == "beta, please"
    assert [(c["type"], c["why"]) for c in answer["chain"]] == [
        ("state_patched", "set the fact"),
        ("llm_called", "the processor call that wrote the patch"),
        ("user_messaged", "the user's answer the patch was read from"),
    ]


def test_event_rows_without_bodies_are_the_same_rows_without_the_event(store: EventStore) -> None:
    """``agentcore events`` (a table of summaries) asks for rows without ``event`` bodies: the
    other fields are exactly those of the full rows."""
    record(store)
    full = list_events(store, "run-a")
    light = list_events(store, "run-a", bodies=False)
    assert full and [{k: v for k, v in row.items() if k != "event"} for row in full] == light
    assert all("event" not in row for row in light) and all("event" in row for row in full)
