"""``agentcore submit / worker / wait`` with the built-in code-search app (offline model), as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from agentcore.cli import cli
from agentcore.storage import open_store

ROOT = str(Path(__file__).resolve().parents[2])


def agentcore(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentcore", *args], cwd=ROOT, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_submit_then_a_worker_then_wait(pg_url: str) -> None:
    env = {"AGENTCORE_DB": pg_url}
    repo = str(Path(ROOT) / "agentcore" / "storage")
    ids = []
    for question in ("where is open_store defined?", "where is copy_runs defined?"):
        got = agentcore("submit", question, "--repo", repo, "--offline", "--json", env=env)
        assert got.returncode == 0, got.stderr
        ids.append(json.loads(got.stdout)["run_id"])
    pending = agentcore("wait", *ids, "--timeout", "0.5", "--json", env=env)
    assert pending.returncode == 1 and json.loads(pending.stdout)["ended"] is False
    got = agentcore("worker", "--exit-when-idle", "--concurrency", "2", "--json", env=env)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["finished"] == 2
    done = agentcore("wait", *ids, "--json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["runs"] == {rid: "succeeded" for rid in ids}
    with open_store(pg_url) as store:
        reply = store.state_at(ids[0]).reply or ""
        assert "targets.py" in reply


def test_a_submitted_run_no_worker_has_claimed_shows_as_queued(pg_url: str) -> None:
    """Before a worker claims it, a run is ``queued`` in ``runs`` and ``wait`` (which keeps waiting);
    once claimed it is ``running`` again (it showed as ``running`` from the start)."""
    env = {"AGENTCORE_DB": pg_url}
    got = agentcore("submit", "where is open_store defined?", "--offline", "--json", env=env)
    assert got.returncode == 0, got.stderr
    run_id = json.loads(got.stdout)["run_id"]
    listed = agentcore("runs", "--json", env=env)
    assert [(r["id"], r["status"]) for r in json.loads(listed.stdout)] == [(run_id, "queued")]
    assert run_id in agentcore("runs", env=env).stdout and " queued " in agentcore("runs", env=env).stdout
    waited = agentcore("wait", run_id, "--timeout", "0.5", env=env)
    assert waited.returncode == 1 and waited.stdout.split() == [run_id, "queued"], waited.stdout + waited.stderr
    assert "timed out" in waited.stderr
    with open_store(pg_url) as store:
        assert store.run(run_id).status == "queued"
        assert store.claim("w1") is not None
        assert store.run(run_id).status == store.runs()[0].status == "running"


def test_a_failed_run_makes_wait_exit_1_and_queues_need_postgres(pg_url: str, tmp_path: Path) -> None:
    from tests.storage.test_store import fill, finished

    with open_store(pg_url) as store:
        run, _ = fill(store, steps=1)
        store.append(run, [finished(run, 7, "failed")], 6)
    got = CliRunner().invoke(cli, ["wait", run, "--db", pg_url])
    assert got.exit_code == 1 and f"{run} failed" in got.output
    got = CliRunner().invoke(cli, ["submit", "q", "--db", str(tmp_path / "a.db")])
    assert got.exit_code == 1 and "need a PostgreSQL database" in got.output
    got = CliRunner().invoke(cli, ["worker", "--db", pg_url, "--app", "no_such_module:build"])
    assert got.exit_code == 1 and "cannot import 'no_such_module'" in got.output
