"""Workers and ``agentcore wait`` through a real PgBouncer in transaction mode (``tests.support.pgbouncer``).

``AGENTCORE_PG_PREPARED=0`` in their environment is the only setting: no prepared statement, no
``SET``, no ``LISTEN`` reaches a server session the pooler shares. No notification can arrive that
way, so the worker finds the queued runs by its poll and ``wait`` sees them end by its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agentcore.storage.postgres.store import PostgresEventStore
from tests.runtime.test_workers import APP, ROOT, check_runs, finish, reference
from tests.support.pgbouncer import LocalPgBouncer
from tests.support.processes import STARTED


def agentcore(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": ROOT, "AGENTCORE_PG_PREPARED": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentcore", *args], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    STARTED.append(proc)
    return proc


def test_queued_runs_are_drained_by_a_worker_through_the_pooler(
    pgbouncer: LocalPgBouncer, pg_url: str, tmp_path: Path
) -> None:
    url = pgbouncer.url(pg_url)
    effects = tmp_path / "effects"
    spec = {"effects": str(effects), "decisions": 3, "work_s": 0.01}
    ref = reference(tmp_path, spec)
    with PostgresEventStore(url, prepared_statements=False) as store:
        ids = [store.submit("queued work", spec=spec) for _ in range(4)]
    waiter = agentcore("wait", *ids, "--db", url, "--timeout", "240", "--json")
    worker = agentcore("worker", "--db", url, "--app", APP, "--json", "--exit-when-idle", "--concurrency", "2",
                       "--poll", "0.5")  # fmt: skip
    stats = finish(worker, timeout=240)
    out, err = waiter.communicate(timeout=240)
    assert waiter.returncode == 0, f"wait exited {waiter.returncode}: {out} {err}"
    assert json.loads(out) == {"runs": dict.fromkeys(ids, "succeeded"), "ended": True, "ok": True}
    assert stats["finished"] == 4, stats
    with PostgresEventStore(pg_url) as direct:  # the log, read without the pooler
        assert all(e["state"] == "done" for e in direct.queue_entries(ids))
        check_runs(direct, ids, ref, effects)
    assert "_pg3_" not in pgbouncer.log()
