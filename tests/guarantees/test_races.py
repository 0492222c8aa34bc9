"""Races between real processes on one SQLite file, through the real write paths.

``tests/storage/test_sqlite_store.py`` races bare ``store.append`` calls (two writers on one run, six on six
runs). Here the racers are whole agent runs: several processes driving the same run through
``Agent``/``RunLog`` (every commit conditioned on the seq it expects), several processes each with
their own runs (runs, events and artifacts all contending for the one write lock), and a reader
folding a run while another process appends to it. Processes come from the fork server of
``tests/support/crash_worker.py`` and start together on a start-line file.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import Event, ToolFinished, ToolStarted
from agentcore.core.fold import RunState, fold
from agentcore.storage.sqlite.store import SQLiteEventStore
from tests.guarantees.test_crash_torture import check_log, comparable, effect_lines
from tests.support import crash_worker


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[crash_worker.ForkServer]:
    fork_server = crash_worker.ForkServer(tmp_path_factory.mktemp("race-server") / "stderr.txt")
    try:
        yield fork_server
    finally:
        fork_server.close()


@pytest.fixture(scope="module")
def reference(server: crash_worker.ForkServer, tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    """The log of an agent run nobody raced with."""
    tmp = tmp_path_factory.mktemp("race-reference")
    out = tmp / "ref.out"
    code = server.wait(server.start("agent", tmp / "ref.db", "ref", out, effects=str(tmp / "ref.effects")))
    assert code == 0, out.read_text()
    return check_log(tmp / "ref.db", "ref", "the reference run")


def start_together(
    server: crash_worker.ForkServer, tmp: Path, jobs: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Fork every job, let them all go at once, wait for each; returns (job, outcome) pairs."""
    go = tmp / "go"
    started = [(job, server.start(go=str(go), **job)) for job in jobs]
    go.touch()
    results = []
    for job, pid in started:
        code = server.wait(pid)
        outcome = json.loads(Path(job["out"]).read_text())
        assert code == 0, f"{job['run_id']}: exit {code}: {outcome}"
        results.append((job, outcome))
    return results


def same_as_reference(events: list[Event], reference: list[Event], where: str) -> RunState:
    assert [(e.type, e.caused_by) for e in events] == [(e.type, e.caused_by) for e in reference], where
    state = fold(events)
    assert comparable(state) == comparable(fold(reference)), where
    return state


def test_processes_racing_on_one_agent_run_leave_one_consistent_log(
    server: crash_worker.ForkServer, reference: list[Event], tmp_path: Path
) -> None:
    db, effects = tmp_path / "race.db", tmp_path / "race.effects"
    jobs = [
        {"mode": "agent-retry", "db": str(db), "run_id": "contested", "out": str(tmp_path / f"{i}.out"),
         "effects": str(effects)}
        for i in range(4)
    ]  # fmt: skip
    results = start_together(server, tmp_path, jobs)  # they also race to create the run
    assert all(outcome["status"] == "succeeded" for _, outcome in results), results
    conflicts = [outcome["conflicts"] for _, outcome in results]
    assert sum(conflicts) >= 1, f"the four processes never collided ({conflicts}): the test raced nothing"

    events = check_log(db, "contested", "the contested run")  # one writer per seq: 1..n, no gap, all decode
    same_as_reference(events, reference, "the contested run is not what one process alone writes")
    started = {e.idempotency_key: e.call.id for e in events if isinstance(e, ToolStarted)}
    finished = collections.Counter(e.call_id for e in events if isinstance(e, ToolFinished))
    assert set(finished) == set(started.values()) and set(finished.values()) == {1}  # one result per call
    ran = collections.Counter(key for key, _ in effect_lines(effects))
    assert set(ran) == set(started)  # every recorded call ran; nothing ran unrecorded
    # a process that lost a race may have run a call the winner also ran (at-least-once, same key)
    print(f"conflicts per process: {conflicts}; calls run more than once: {sum(n - 1 for n in ran.values())}")


def test_processes_each_with_their_own_runs_lose_nothing(
    server: crash_worker.ForkServer, reference: list[Event], tmp_path: Path
) -> None:
    db = tmp_path / "shared.db"  # new: the processes also race to create the schema
    jobs = [
        {
            "mode": "agent",
            "db": str(db),
            "run_id": f"run-{i}",
            "out": str(tmp_path / f"{i}.out"),
            "effects": str(tmp_path / f"{i}.effects"),
        }
        for i in range(6)
    ]
    results = start_together(server, tmp_path, jobs)  # a "database is locked" would be a failed job
    assert all(outcome["status"] == "succeeded" for _, outcome in results), results
    with SQLiteEventStore(db) as store:
        assert sorted(r.id for r in store.runs()) == [f"run-{i}" for i in range(6)]
    for i in range(6):
        events = check_log(db, f"run-{i}", f"run-{i}")
        same_as_reference(events, reference, f"run-{i} differs from a run alone")
        keys = collections.Counter(key for key, _ in effect_lines(tmp_path / f"{i}.effects"))
        assert set(keys.values()) == {1}  # no kill, no conflict: every call ran exactly once
        assert set(keys) == {e.idempotency_key for e in events if isinstance(e, ToolStarted)}


def test_a_reader_folding_during_appends_always_sees_a_consistent_prefix(
    server: crash_worker.ForkServer, tmp_path: Path
) -> None:
    db, out = tmp_path / "read.db", tmp_path / "writer.out"
    SQLiteEventStore(db).close()  # the schema exists before the readers open the file
    go = tmp_path / "go"
    pid = server.start("append", db, "busy", out, steps=60, snapshot_every=7, pause_s=0.002, go=str(go))
    seen: list[tuple[int, dict[str, Any]]] = []
    prefixes = 0
    with SQLiteEventStore(db) as reader, SQLiteEventStore(db, read_only=True) as ro:
        go.touch()
        last = 0
        deadline = time.monotonic() + 120
        while not out.exists():
            assert time.monotonic() < deadline, "the writer never finished (killed from outside?)"
            for store in (reader, ro):
                if not crash_worker.exists(store, "busy"):
                    continue
                now = store.last_seq("busy")
                state = store.state_at("busy")  # never fails, whatever the writer is doing
                assert now >= last and state.last_seq >= now, f"went backwards: {last} -> {now}, {state.last_seq}"
                last = state.last_seq
                seen.append((state.last_seq, state.to_json()))
                streamed = [e.seq for e in store.read("busy")]
                assert streamed == list(range(1, len(streamed) + 1)) and len(streamed) >= now
                prefixes += 1
    code = server.wait(pid)
    assert code == 0, out.read_text()
    final = json.loads(out.read_text())["last_seq"]
    events = check_log(db, "busy", "the appended run")
    assert len(events) == final == 1 + 60 * 5
    for seq, doc in seen:
        assert doc == fold(events[:seq]).to_json(), f"the state read at seq {seq} is not the fold of seqs 1..{seq}"
    distinct = {seq for seq, _ in seen}
    assert len(distinct - {0, final}) >= 1, f"the readers saw no state mid-way ({sorted(distinct)}): nothing raced"
    print(f"{prefixes} reads, {len(distinct)} distinct seqs seen")
