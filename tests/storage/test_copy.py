"""``agentcore copy`` and ``copy_runs``: runs with their artifacts, SQLite -> PostgreSQL and back; states fold equal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentcore.cli import cli
from agentcore.errors import ConcurrencyError
from agentcore.storage import open_store
from agentcore.storage.copy import copy_runs
from tests.storage.test_store import fact, fill, finished
from tests.support.postgres import PASSWORD


def make_source(path: Path) -> dict[str, object]:
    """Two runs (one with a 3 MB artifact its events point at) and a fork of the first."""
    with open_store(path) as s:
        big = s.artifacts.put(b"x" * (3 << 20), "text/plain")
        run, _ = fill(s, steps=2)
        s.append(run, [fact(run, 12, key="big", value=big.id)], 11)
        other, _ = fill(s, steps=1, task="another task")
        s.append(other, [finished(other, 7)], 6)
        fork = s.fork(run, 6)
        s.append(fork, [fact(fork, 7, key="only_in_fork")], 6)
        s.artifacts.put(b"not pointed at by any event")
        return {r.id: s.state_at(r.id) for r in s.runs()} | {"big": big.id, "fork": fork, "run": run}


def test_copy_sqlite_to_postgres_and_back_folds_equal(tmp_path: Path, pg_url: str) -> None:
    src, back = tmp_path / "src.db", tmp_path / "back.db"
    info = make_source(src)
    states = {k: v for k, v in info.items() if k.startswith("run_")}
    runner = CliRunner()
    got = runner.invoke(cli, ["copy", "--from", str(src), "--to", pg_url, "--json"])
    assert got.exit_code == 0, got.output
    assert PASSWORD not in got.output
    report = json.loads(got.output)
    assert sorted(report["copied"]) == sorted(states) and report["artifacts"] == 1
    with open_store(pg_url) as pg:
        assert {r.id: pg.state_at(r.id) for r in pg.runs()} == states
        assert pg.artifacts.read(str(info["big"])) == b"x" * (3 << 20)
        assert pg.run(str(info["fork"])).parent_run_id == info["run"]  # still a copy-free fork
    again = runner.invoke(cli, ["copy", "--from", str(src), "--to", pg_url, "--json"])
    assert json.loads(again.output)["skipped"] == report["copied"]  # a second copy is a no-op
    got = runner.invoke(cli, ["copy", "--from", pg_url, "--to", str(back), "--json"])
    assert got.exit_code == 0, got.output
    with open_store(back) as s:
        assert {r.id: s.state_at(r.id) for r in s.runs()} == states
        assert s.artifacts.info(str(info["big"])).media_type == "text/plain"


def test_copy_one_fork_brings_its_parent_and_refuses_a_clash(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    info = make_source(src)
    with open_store(src) as a, open_store(dst) as b:
        report = copy_runs(a, b, [str(info["fork"])])
        assert report.copied == [info["run"], info["fork"]]
        b.append(str(info["fork"]), [fact(str(info["fork"]), 8, key="diverged")], 7)
        with pytest.raises(ConcurrencyError, match="another log"):
            copy_runs(a, b, [str(info["fork"])])


def test_copy_names_queued_runs_and_does_not_carry_their_queue_entries(tmp_path: Path, pg_url: str) -> None:
    """A queue entry says which worker of the source drives a run: copying it would let two databases'
    workers drive one run, so runs still queued are copied as far as their logs go and named."""
    from agentcore.storage.postgres.store import PostgresEventStore

    with PostgresEventStore(pg_url) as pg:
        queued = pg.submit("still queued", spec={"n": 1})
        done = pg.submit("finished", spec={"n": 2})
        lease = pg.claim("w")
        assert lease is not None and lease.run_id == queued
        lease2 = pg.claim("w")
        assert lease2 is not None and lease2.run_id == done and pg.release(lease2, done=True)
    dst = tmp_path / "dst.db"
    got = CliRunner().invoke(cli, ["copy", "--from", pg_url, "--to", str(dst), queued, done, "--json"])
    assert got.exit_code == 0, got.output
    report = json.loads(got.stdout)
    assert sorted(report["copied"]) == sorted([queued, done]) and report["still_queued"] == [queued]
    human = CliRunner().invoke(cli, ["copy", "--from", pg_url, "--to", str(tmp_path / "d2.db"), queued])
    assert human.exit_code == 0 and "still queued or leased" in human.output and queued in human.output
    with open_store(dst) as s:
        assert {r.id for r in s.runs()} == {queued, done}  # the runs, without any queue
        assert not hasattr(s, "queue_entries")
