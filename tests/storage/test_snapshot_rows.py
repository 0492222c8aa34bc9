"""Snapshot rows changed outside agentcore (by hand, by another tool): a row whose state does not
belong where it is stored is reported as damaged, never served as the run's state.

A snapshot is decoded without trusting that agentcore wrote it; its bytes may be a perfectly valid
state that is simply not the state of its row (the empty state, another seq's, another run's).
Real SQLite files and a real PostgreSQL server; the rows are rewritten with their own drivers.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.fold import fold
from agentcore.core.state import RunState
from agentcore.errors import DamagedDatabase
from agentcore.storage.snapshots import encode_state
from tests.storage.test_store import fill


def _stores(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Any, str]:
    if kind == "sqlite":
        from agentcore.storage.sqlite.store import SQLiteEventStore

        path = str(tmp_path / "s.db")
        return SQLiteEventStore(path, snapshot_every=5, snapshot_ratio=0), path
    from agentcore.storage.postgres.store import PostgresEventStore

    url = request.getfixturevalue("pg_url")
    return PostgresEventStore(url, snapshot_every=5, snapshot_ratio=0), url


def _reopen(kind: str, target: str) -> Any:
    if kind == "sqlite":
        from agentcore.storage.sqlite.store import SQLiteEventStore

        return SQLiteEventStore(target)
    from agentcore.storage.postgres.store import PostgresEventStore

    return PostgresEventStore(target)


def _newest_snapshot(kind: str, target: str, run: str) -> int:
    if kind == "sqlite":
        with sqlite3.connect(target) as c:
            return int(c.execute("SELECT max(seq) FROM snapshots WHERE run_id = ?", (run,)).fetchone()[0])
    import psycopg

    with psycopg.connect(target) as c:
        row = c.execute("SELECT max(seq) FROM run_log WHERE run_id = %s AND kind = 's'", (run,)).fetchone()
        assert row is not None
        return int(row[0])


def _rewrite(kind: str, target: str, run: str, seq: int, state: RunState) -> None:
    encoding, data = encode_state(state)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    if kind == "sqlite":
        with sqlite3.connect(target) as c:
            c.execute(
                "UPDATE snapshots SET encoding = ?, state = ?, size = ? WHERE run_id = ? AND seq = ?",
                (encoding, data, len(blob), run, seq),
            )
        return
    import psycopg

    with psycopg.connect(target) as c:
        c.execute(
            "UPDATE run_log SET encoding = %s, state = %s WHERE run_id = %s AND kind = 's' AND seq = %s",
            (encoding, blob, run, seq),
        )


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("wrong", ["empty state", "an earlier seq's state", "another run's state"])
def test_a_valid_state_that_is_not_its_rows_state_is_reported_as_damaged(
    kind: str, wrong: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store, target = _stores(kind, tmp_path, request)
    with store:
        run, events = fill(store, steps=8)
        other, _ = fill(store, steps=8, task="another run")
        seq = _newest_snapshot(kind, target, run)
        assert seq == len(events)  # the latest state comes from this row alone
        replacement = {
            "empty state": RunState(),
            "an earlier seq's state": fold(events[: seq - 5]),
            "another run's state": store.state_at(other),
        }[wrong]
    _rewrite(kind, target, run, seq, replacement)
    with _reopen(kind, target) as fresh:
        with pytest.raises(DamagedDatabase, match="snapshot is damaged"):
            fresh.state_at(run)
        assert fresh.state_at(run, seq - 1) == fold(events[: seq - 1])  # an older snapshot is still good
        fresh.delete_snapshots()
        assert fresh.state_at(run) == fold(events)  # the log itself was never touched


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_cli_says_the_snapshot_is_damaged_in_one_line(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store, target = _stores(kind, tmp_path, request)
    with store:
        run, _events = fill(store, steps=8)
        seq = _newest_snapshot(kind, target, run)
    _rewrite(kind, target, run, seq, RunState())
    done = subprocess.run(
        [sys.executable, "-m", "agentcore", "--db", target, "state", run], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and done.stdout == "", done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "snapshot is damaged" in lines[0], lines


def _forked(store: Any, parent: str, at_seq: int, steps: int) -> str:
    """A fork of ``parent`` at ``at_seq`` with ``steps`` agent steps of its own (snapshots of its own)."""
    from tests.storage.test_store import agent_step

    fork = store.fork(parent, at_seq)
    for i in range(steps):
        first = at_seq + 1 + 5 * i
        store.append(fork, agent_step(fork, first, i), first - 1)
    return str(fork)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("depth", ["a fork", "a fork of a fork"])
def test_a_forks_snapshot_row_holding_another_runs_state_is_reported_as_damaged(
    kind: str, depth: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A fork's states carry its root's run id; PostgreSQL's one-statement load of a fork from its own
    snapshot checked only the row's seq, so another run's state at that seq was served as the fork's."""
    store, target = _stores(kind, tmp_path, request)
    with store:
        root, _ = fill(store, steps=2)
        run = _forked(store, root, 11, steps=3)
        if depth == "a fork of a fork":
            run = _forked(store, run, 21, steps=3)
        other, _ = fill(store, steps=8, task="another run")
        seq = _newest_snapshot(kind, target, run)
        assert seq == store.last_seq(run) and seq > 21  # the fork's own, past its fork point
        expected = fold(store.read(run))
        replacement = store.state_at(other, seq)
    with _reopen(kind, target) as fresh:
        assert fresh.state_at(run) == expected  # its own snapshot, root id and all, is good
    _rewrite(kind, target, run, seq, replacement)
    with _reopen(kind, target) as fresh:
        with pytest.raises(DamagedDatabase, match=rf"snapshot is damaged \(the row at seq {seq} holds a state of run {other!r}"):
            fresh.state_at(run)
        fresh.delete_snapshots()
        assert fresh.state_at(run) == expected
