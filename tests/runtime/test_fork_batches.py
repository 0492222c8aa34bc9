"""Forks never split a recorded step: a model answer lands with what it decided, a decision with its calls.

Every seq of real runs (offline model, real SQLite file, real code tools) is tried as a fork point:
a fork is either refused with the valid seqs named, or resumed to a log that keeps every decided call
of the inherited part and whose export replays.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcore.cli.agents import agent_for_run, code_agent
from agentcore.core.events import Decided, LLMCalled, ToolStarted
from agentcore.errors import ConfigError
from agentcore.models.offline import OfflineCodeModel
from agentcore.replay.replayer import replay_trace
from agentcore.storage.forks import fork_points, splits_batch
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import export_run
from tests.support.code_fixtures import make_python_repo

QUESTIONS = ["where is Cart defined", "what does shop/cart.py contain", "where is add_item defined"]


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_fork_point_is_refused_or_keeps_every_recorded_step(tmp_path: Path, question: str) -> None:
    repo = make_python_repo(tmp_path / "repo")
    with SQLiteEventStore(tmp_path / "runs.db") as store:
        model = OfflineCodeModel()
        parent = code_agent(str(repo), store, model, model).run_sync(question).run_id
        events = list(store.read(parent))
        headers = [(e.seq, e.type, e.caused_by) for e in events]
        valid = fork_points(headers)
        refused = accepted = 0
        for seq in range(1, len(events) + 1):
            if splits_batch(headers, seq):
                with pytest.raises(ConfigError, match="inside one recorded step") as err:
                    store.fork(parent, seq)
                named = str(err.value).rsplit(":", 1)[1]
                assert any(str(v) in named for v in valid)
                refused += 1
                continue
            fork = store.fork(parent, seq)
            accepted += 1
            agent_for_run(store, fork, offline=True).resume_sync(fork)
            mine = list(store.read(fork))
            assert [e.model_dump(exclude={"run_id"}) for e in mine[:seq]] == [
                e.model_dump(exclude={"run_id"}) for e in events[:seq]
            ]
            started = {e.call.id for e in mine if isinstance(e, ToolStarted)}
            for e in mine[:seq]:
                if isinstance(e, Decided):  # no decided call is ever dropped
                    assert {c.id for c in e.decision.tool_calls} <= started
            assert not isinstance(events[seq - 1], LLMCalled)  # a fork never ends on an answer it would redo
            trace = tmp_path / f"fork-{seq}.jsonl"
            export_run(store, fork, trace)
            report = replay_trace(trace)
            assert report.ok, (seq, report.describe())
        assert refused > 0 and accepted > 0, (refused, accepted)


def test_the_memory_store_refuses_the_same_fork_points(tmp_path: Path) -> None:
    repo = make_python_repo(tmp_path / "repo")
    store = MemoryEventStore()
    model = OfflineCodeModel()
    parent = code_agent(str(repo), store, model, model).run_sync(QUESTIONS[0]).run_id
    headers = [(e.seq, e.type, e.caused_by) for e in store.read(parent)]
    for seq in range(1, len(headers) + 1):
        if splits_batch(headers, seq):
            with pytest.raises(ConfigError, match="inside one recorded step"):
                store.fork(parent, seq)
        else:
            assert store.run(store.fork(parent, seq)).forked_at_seq == seq


def test_the_split_rule() -> None:
    # 1 RunStarted, 2 LLMCalled, 3 Decided(<-2), 4 ToolStarted(<-3), 5 ToolStarted(<-3), 6 ToolFinished(<-4),
    # 7 ToolFinished(<-5), 8 LLMCalled(<-6), 9 StatePatched(<-8), 10 LLMCalled, 11 Decided(<-10), 12 RunFinished(<-11)
    h = [
        (1, "run_started", None), (2, "llm_called", 1), (3, "decided", 2), (4, "tool_started", 3),
        (5, "tool_started", 3), (6, "tool_finished", 4), (7, "tool_finished", 5), (8, "llm_called", 6),
        (9, "state_patched", 8), (10, "llm_called", 9), (11, "decided", 10), (12, "run_finished", 11),
    ]  # fmt: skip
    assert fork_points(h) == [1, 5, 6, 7, 9, 12]
