"""An app that keeps failing on a run ends the run as failed instead of queueing it forever.

Real processes on the test server: ``agentcore submit``, then ``python -m agentcore worker
--exit-when-idle --app badapp:...`` with an app module in the worker's directory whose factory
raises (or builds nothing that can run). Without a bound the run went back to the queue on every
failure: the idle worker never exited and ``agentcore wait`` never returned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentcore.runtime.worker_faults import APP_TRIES
from agentcore.storage import open_store

ROOT = str(Path(__file__).resolve().parents[2])

BAD_APP = """
def raises(store, spec):
    raise RuntimeError("factory exploded for " + spec["kind"])

def returns_none(store, spec):
    return None
"""


def agentcore(*args: str, cwd: str | Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentcore", *args], cwd=cwd, env={**os.environ}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize(("factory", "says"), [("raises", "factory exploded for ask"), ("returns_none", "NoneType")])
def test_an_app_that_keeps_failing_ends_the_run_as_failed(pg_url: str, tmp_path: Path, factory: str, says: str) -> None:
    (tmp_path / "badapp.py").write_text(BAD_APP)
    got = agentcore("submit", "where is open_store defined?", "--offline", "--json", "--db", pg_url)
    assert got.returncode == 0, got.stderr
    run_id = json.loads(got.stdout)["run_id"]
    worker = agentcore(
        "worker", "--exit-when-idle", "--app", f"badapp:{factory}", "--poll", "0.5", "--json", "--db", pg_url,
        cwd=tmp_path, timeout=90,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    assert json.loads(worker.stdout)["failed_by_app"] == 1
    waited = agentcore("wait", run_id, "--timeout", "10", "--json", "--db", pg_url)
    assert waited.returncode == 1 and json.loads(waited.stdout)["runs"] == {run_id: "failed"}
    with open_store(pg_url) as store:
        state = store.state_at(run_id)
        entry = store.queue_entries([run_id])[0]
    assert state.status == "failed" and says in state.reason and state.task == "where is open_store defined?"
    assert entry["state"] == "done" and entry["claims"] == APP_TRIES


def test_a_run_that_names_a_model_is_not_answered_offline_by_a_worker_without_a_server(pg_url: str) -> None:
    got = agentcore("submit", "where is open_store defined?", "--model", "gpt-4o-mini", "--json", "--db", pg_url)
    assert got.returncode == 0, got.stderr
    run_id = json.loads(got.stdout)["run_id"]
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    worker = subprocess.run(
        [sys.executable, "-m", "agentcore", "worker", "--exit-when-idle", "--poll", "0.5", "--json", "--db", pg_url],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    assert json.loads(worker.stdout)["failed_by_app"] == 1
    with open_store(pg_url) as store:
        state = store.state_at(run_id)
    assert state.status == "failed" and "'gpt-4o-mini'" in state.reason and "no model server" in state.reason
    assert not state.known_facts  # the offline model answered nothing
