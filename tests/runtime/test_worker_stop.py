"""A worker stopped with SIGTERM (docker stop, systemd) gives its runs back at once.

Real processes on the test server: a worker holds a run with a long lease (60 s) and is inside a
tool call when it gets SIGTERM. Before, it died like a killed worker: its run stayed leased until
the lease ran out, so the next worker could take it only a minute later. Now the run is back in the
queue when the worker exits, and another worker finishes it from the log at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agentcore.runtime.worker import Worker
from agentcore.storage import open_store
from agentcore.storage.base import Lease
from agentcore.storage.postgres.store import PostgresEventStore
from tests.support.postgres import wait_until
from tests.support.processes import STARTED

ROOT = str(Path(__file__).resolve().parents[2])
APP = "tests.support.queue_app:build"


def worker(url: str, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "agentcore", "worker", "--db", url, "--app", APP, "--lease", "60", "--json", *args]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    STARTED.append(proc)
    return proc


def test_sigterm_gives_the_run_back_and_another_worker_finishes_it_at_once(pg_url: str, tmp_path: Path) -> None:
    effects = tmp_path / "effects"
    with open_store(pg_url) as store:
        run_id = store.submit("queued work", spec={"decisions": 2, "effects": str(effects), "work_s": 3})
    first = worker(pg_url)
    wait_until(lambda: effects.exists() and effects.read_text().strip() != "", 60, "the first tool call to start")
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert json.loads(out)["released"] == 1
    with open_store(pg_url) as store:
        assert store.queue_entries([run_id])[0]["state"] == "queued"  # not leased for another minute
    started = time.monotonic()
    second = worker(pg_url, "--exit-when-idle")
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert json.loads(out)["finished"] == 1
    assert time.monotonic() - started < 50  # well inside the 60 s lease the first worker held
    with open_store(pg_url) as store:
        assert store.state_at(run_id).status == "succeeded"


class _ClosedOnRenew(PostgresEventStore):
    """A real store that, on its first renewal, is stopped and closed under the worker (as the CLI
    closes it once ``serve`` gave up while the heartbeat was part way through its round)."""

    worker: Worker | None = None

    def renew(self, lease: Lease, *, lease_s: float = 30.0) -> bool:
        kept = super().renew(lease, lease_s=lease_s)
        assert self.worker is not None
        self.worker.stop()
        self.close()
        return kept


def test_a_heartbeat_round_cut_short_by_the_worker_stopping_renews_nothing_more(pg_url: str) -> None:
    # It went on renewing on the closed store: ConfigError ("the store ... is closed") in the
    # heartbeat thread, a traceback on the worker's stderr after its give-up error.
    store = _ClosedOnRenew(pg_url)
    for task in ("a", "b"):
        store.submit(task)
    leases = [store.claim("w1"), store.claim("w1")]
    w = Worker(store, lambda s, spec: None, heartbeat_s=0.01, owner="w1")
    store.worker = w
    w._held = {lease.run_id: (lease, None) for lease in leases if lease is not None}  # type: ignore[misc]
    assert len(w._held) == 2
    w._heartbeat()  # returns once stopped, having renewed the first lease only
    assert w._stop.is_set()
    with PostgresEventStore(pg_url) as other:
        assert [e["state"] for e in other.queue_entries()] == ["leased", "leased"]
