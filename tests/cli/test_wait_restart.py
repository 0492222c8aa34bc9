"""``agentcore wait`` rides out a PostgreSQL restart (a real server restarted under a real ``wait`` process).

Before, the first read after the restart ended ``wait`` with "the connection ... was lost ... re-read
the run (resume it)": a batch job waiting on its runs failed although nothing had failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from agentcore.core.events import RunFinished, RunStarted
from agentcore.storage import open_store
from tests.support.postgres import PASSWORD, LocalPostgres, wait_until

ROOT = str(Path(__file__).resolve().parents[2])


def listening(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'").fetchone()
    return bool(row and row[0])


def test_wait_rides_out_a_server_restart_and_reports_the_run() -> None:
    with LocalPostgres() as server:
        url = server.create_database()
        with open_store(url) as store:
            rid = store.submit("where is x?", spec={})
        wait = subprocess.Popen(
            [sys.executable, "-m", "agentcore", "wait", rid, "--timeout", "90", "--json", "--db", url],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_until(lambda: listening(url), 30, "wait to listen")
            server.restart()
            time.sleep(1.5)  # wait notices the restart (its listening connection broke) while the run is open
            now = datetime.now(timezone.utc)
            with open_store(url) as store:
                events = [
                    RunStarted(run_id=rid, seq=1, at=now, task="where is x?"),
                    RunFinished(run_id=rid, seq=2, at=now, status="succeeded", caused_by=1),
                ]
                store.append(rid, events, 0)
            out, err = wait.communicate(timeout=60)
        finally:
            if wait.poll() is None:
                wait.kill()
                wait.communicate()
    assert wait.returncode == 0, out + err
    assert json.loads(out)["runs"] == {rid: "succeeded"}
    assert "unreachable" in err and PASSWORD not in err and "Traceback" not in err
    assert "discarding closed connection" not in err
