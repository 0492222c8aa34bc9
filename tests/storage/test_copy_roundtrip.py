"""``agentcore copy`` SQLite -> PostgreSQL -> SQLite on the segment layout: long runs (sealed segments
and snapshots on PostgreSQL), forks of forks, a 4 MB artifact; every state at every seq folds equal,
artifacts come back byte for byte, a second copy changes nothing, and a copy killed at any moment
(a real process, SIGKILL) leaves only whole runs, finished by running it again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from agentcore.cli import cli
from agentcore.core.event_codec import encode_event
from agentcore.errors import ConcurrencyError
from agentcore.storage import open_store
from agentcore.storage.copy import copy_runs
from tests.storage.test_store import fact, fill, finished

BIG = os.urandom(4 << 20)  # incompressible: 4 MB on every database


def make_source(path: Path) -> dict[str, str]:
    """A 401-event run with a fork inside it (of 30 events) and a fork of that fork, the big artifact,
    a short finished run; returns their ids."""
    with open_store(path) as s:
        big = s.artifacts.put(BIG, "application/octet-stream").id
        small = s.artifacts.put(b"small", "text/plain").id
        run, events = fill(s, steps=80)
        s.append(run, [fact(run, len(events) + 1, key="big", value=big)], len(events))
        fork = s.fork(run, 150)
        s.append(fork, [fact(fork, 151 + k, key=f"fork{k}") for k in range(30)], 150)
        grandchild = s.fork(fork, 180)
        s.append(grandchild, [fact(grandchild, 181, key="small", value=small), finished(grandchild, 182)], 180)
        short, short_events = fill(s, steps=1, task="short")
        s.append(short, [finished(short, len(short_events) + 1)], len(short_events))
        return {"run": run, "fork": fork, "grandchild": grandchild, "short": short, "big": big, "small": small}


def runs_of(store: Any) -> dict[str, tuple[Any, ...]]:
    return {r.id: (r.task, r.status, r.created, r.parent_run_id, r.forked_at_seq, r.last_seq) for r in store.runs()}


def assert_same_runs(a: Any, b: Any, ids: dict[str, str]) -> None:
    """Same runs, the same events and the same state at every seq; the artifacts byte for byte."""
    assert runs_of(b) == runs_of(a)
    for run_id, info in runs_of(a).items():
        assert [encode_event(e) for e in b.read(run_id)] == [encode_event(e) for e in a.read(run_id)]
        for seq in range(info[-1] + 1):
            assert b.state_at(run_id, seq) == a.state_at(run_id, seq), (run_id, seq)
    for key in ("big", "small"):
        assert b.artifacts.read(ids[key]) == a.artifacts.read(ids[key])
        assert b.artifacts.info(ids[key]).media_type == a.artifacts.info(ids[key]).media_type


def copy_cli(source: str, target: str) -> dict[str, Any]:
    got = CliRunner().invoke(cli, ["copy", "--from", source, "--to", target, "--json"])
    assert got.exit_code == 0, got.output
    report: dict[str, Any] = json.loads(got.stdout)
    return report


def test_sqlite_to_postgres_and_back_on_segments_folds_equal_at_every_seq(tmp_path: Path, pg_url: str) -> None:
    src, back = tmp_path / "src.db", tmp_path / "back.db"
    ids = make_source(src)
    report = copy_cli(str(src), pg_url)
    assert len(report["copied"]) == 4 and report["artifacts"] == 2
    with psycopg.connect(pg_url) as conn:
        kinds = dict(conn.execute(
            "SELECT kind, count(*) FROM run_log WHERE run_id = %s GROUP BY kind", (ids["run"],)
        ).fetchall())  # fmt: skip
        snapshots = conn.execute("SELECT count(*) FROM snapshots").fetchone()
    assert kinds["e"] >= 3 and kinds["s"] >= 1 and snapshots is not None and snapshots[0] >= 2
    again = copy_cli(str(src), pg_url)
    assert (again["copied"], sorted(again["skipped"]), again["artifacts"]) == ([], sorted(report["copied"]), 0)
    assert copy_cli(pg_url, str(back))["artifacts"] == 2
    with open_store(src) as a, open_store(pg_url) as pg, open_store(back) as b:
        assert_same_runs(a, pg, ids)
        assert_same_runs(a, b, ids)
        assert pg.run(ids["grandchild"]).parent_run_id == ids["fork"]  # still copy-free forks


def test_a_diverged_run_with_the_same_last_seq_is_refused_not_skipped(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    with open_store(src) as a, open_store(dst) as b:
        run, events = fill(a, steps=1)
        copy_runs(a, b)
        n = len(events)
        a.append(run, [fact(run, n + 1, key="here")], n)
        b.append(run, [fact(run, n + 1, key="there")], n)
        with pytest.raises(ConcurrencyError, match="another log"):
            copy_runs(a, b)
    got = CliRunner().invoke(cli, ["copy", "--from", str(src), "--to", str(dst)])
    assert got.exit_code != 0 and "another log" in got.output and run in got.output


def test_a_copy_that_dies_right_after_a_fork_leaves_no_half_fork(tmp_path: Path) -> None:
    """The fork and its own events are one transaction: nothing of the fork is there, or all of it."""
    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    ids = make_source(src)
    with open_store(src) as a, open_store(dst) as b:

        def dies(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        b.append = dies  # type: ignore[method-assign]
        try:
            copy_runs(a, b)
        except KeyboardInterrupt:
            pass
        there = runs_of(b)
        assert ids["fork"] in there  # got that far: copied whole, with its 30 own events
        assert all(info == runs_of(a)[run_id] for run_id, info in there.items())


def _copy_process(source: str, target: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agentcore", "copy", "--from", source, "--to", target, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _count(target: str) -> int:
    """Runs in ``target`` now, read without opening a store (0 before its schema is there)."""
    try:
        if target.startswith("postgresql://"):
            with psycopg.connect(target) as conn:
                row = conn.execute("SELECT count(*) FROM runs").fetchone()
        else:
            conn = sqlite3.connect(Path(target).absolute().as_uri() + "?mode=ro", uri=True)
            try:
                row = conn.execute("SELECT count(*) FROM runs").fetchone()
            finally:
                conn.close()
    except (psycopg.Error, sqlite3.Error):
        return 0
    return int(row[0]) if row is not None else 0


@pytest.mark.parametrize("direction", ["sqlite->postgres", "postgres->sqlite"])
def test_a_copy_killed_midway_leaves_whole_runs_and_finishes_when_run_again(
    tmp_path: Path, pg_url: str, direction: str
) -> None:
    src = tmp_path / "src.db"
    with open_store(src) as s:
        for k in range(12):
            s.artifacts.put(BIG[: (1 << 20) + k], "application/octet-stream")  # one artifact per run
            run, events = fill(s, steps=30, task=f"run {k}")
            ref = s.artifacts.put(BIG[: (1 << 20) + k]).id
            s.append(run, [fact(run, len(events) + 1, key="raw", value=ref)], len(events))
    if direction == "sqlite->postgres":
        source, target = str(src), pg_url
    else:
        source, target = pg_url, str(tmp_path / "dst.db")
        copy_cli(str(src), pg_url)
    total = 12
    for _ in range(5):  # until a kill lands with some runs copied and some not
        proc = _copy_process(source, target)
        try:
            deadline = time.monotonic() + 120
            while _count(target) < 1 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
        if 0 < _count(target) < total:
            break
    copied = _count(target)
    assert 0 < copied < total, copied
    with open_store(source) as a, open_store(target) as b:
        whole = runs_of(a)
        for run_id, info in runs_of(b).items():  # no half run: each one as long as in the source
            assert info == whole[run_id]
            assert [encode_event(e) for e in b.read(run_id)] == [encode_event(e) for e in a.read(run_id)]
    report = copy_cli(source, target)
    assert len(report["skipped"]) == copied and len(report["copied"]) == total - copied
    with open_store(source) as a, open_store(target) as b:
        assert runs_of(b) == runs_of(a)
        for run_id in runs_of(a):
            assert b.state_at(run_id) == a.state_at(run_id)


def test_an_older_run_whose_task_holds_nul_is_copied_with_the_nul_shown(tmp_path: Path, pg_url: str) -> None:
    """An older agentcore took a task with NUL on SQLite; PostgreSQL's text cannot hold it."""
    src, back = tmp_path / "old.db", tmp_path / "back.db"
    with open_store(src) as s:
        run, events = fill(s, steps=1)
    with sqlite3.connect(src) as conn:
        conn.execute("UPDATE runs SET task = 'find' || char(0) || ' it' WHERE id = ?", (run,))
    copy_cli(str(src), pg_url)
    copy_cli(pg_url, str(back))
    for target in (pg_url, str(back)):
        with open_store(target) as s:
            assert s.run(run).task == "find\\u0000 it"
            assert list(s.read(run)) == events
