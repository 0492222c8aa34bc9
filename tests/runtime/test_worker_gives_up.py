"""``agentcore worker --exit-when-idle`` against a server that is gone ends with ``StorageUnavailable``.

A batch worker whose server is down from the start fails when it opens the database; one whose
server goes away while it works stops after ``--give-up`` seconds without the server (its run goes
to another worker once its lease expires) instead of retrying forever. Real worker processes, a
real PostgreSQL server that the test stops.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from agentcore.errors import StorageUnavailable
from agentcore.runtime.worker import Worker
from agentcore.storage.base import Lease
from agentcore.storage.postgres.store import PostgresEventStore
from tests.support.postgres import PASSWORD, LocalPostgres, free_port, wait_until

ROOT = str(Path(__file__).resolve().parents[2])


def worker(url: str, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "agentcore", "worker", "--db", url, "--json", "--exit-when-idle", *args]
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ended(proc: subprocess.Popen[str]) -> tuple[int, dict[str, str], str]:
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, json.loads(out)["error"], err


def test_a_server_down_from_the_start_is_a_clear_error() -> None:
    url = f"postgresql://agentcore:{PASSWORD}@127.0.0.1:{free_port()}/nothing"
    code, error, err = ended(worker(url))
    assert code == 1 and error["type"] == "StorageUnavailable"
    assert "cannot connect to the PostgreSQL server" in error["message"] and PASSWORD not in error["message"] + err


def test_a_server_that_goes_away_makes_an_exit_when_idle_worker_give_up(tmp_path: Path) -> None:
    spec = {"effects": str(tmp_path / "effects"), "decisions": 1, "work_s": 60}
    with LocalPostgres() as server:
        url = server.create_database("gone")
        with PostgresEventStore(url) as store:
            rid = store.submit("long work", spec=spec)
            proc = worker(
                url, "--app", "tests.support.queue_app:build", "--lease", "5", "--poll", "0.5", "--give-up", "3"
            )
            try:
                wait_until(lambda: (tmp_path / "effects").exists(), 120, "the worker inside its tool call")
                assert store.queue_entries([rid])[0]["state"] == "leased"
            except BaseException:
                proc.kill()
                raise
        server.server_stop("immediate")
        code, error, err = ended(proc)
    assert code == 1 and error["type"] == "StorageUnavailable", (code, error, err)
    assert "unreachable for more than 3s" in error["message"] and "gives up" in error["message"]
    assert "1 run(s)/step(s) in hand" in error["message"] and PASSWORD not in error["message"] + err


def test_the_give_up_time_is_kept_while_the_worker_waits_for_its_next_poll(tmp_path: Path) -> None:
    # The give-up time was looked at only after a claim, and the worker slept until its next poll
    # (--poll 120) or until a run in hand moved on (a tool call of 120 s): --give-up 2 ended minutes
    # after the outage. A bound, not a measurement: give-up + the listener noticing + slack, far below that.
    effects = tmp_path / "effects"
    with LocalPostgres() as server:
        url = server.create_database("gone_poll")
        with PostgresEventStore(url) as store:
            store.submit("long work", spec={"effects": str(effects), "decisions": 1, "work_s": 120})
        proc = worker(
            url, "--app", "tests.support.queue_app:build", "--lease", "300", "--poll", "120", "--give-up", "2"
        )
        try:
            wait_until(effects.exists, 120, "the worker inside its tool call")
        except BaseException:
            proc.kill()
            raise
        server.server_stop("immediate")
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    error = json.loads(out)["error"]
    assert proc.returncode == 1 and error["type"] == "StorageUnavailable", (proc.returncode, error, err)
    assert "unreachable for more than 2s" in error["message"] and "1 run(s)/step(s) in hand" in error["message"]
    assert PASSWORD not in out + err


def test_a_server_back_before_the_give_up_time_keeps_the_worker_and_its_run(tmp_path: Path) -> None:
    # The give-up time was judged on the last failure seen. With the run inside a tool call and a
    # heartbeat rarer than --give-up (--lease 300: every 100 s), no call saw the restarted server
    # answer, so the worker woke at the give-up time and dropped its healthy run (exit 1).
    effects = tmp_path / "effects"
    with LocalPostgres() as server:
        url = server.create_database("blip")
        with PostgresEventStore(url) as store:
            rid = store.submit("long work", spec={"effects": str(effects), "decisions": 1, "work_s": 20})
        proc = worker(
            url, "--app", "tests.support.queue_app:build", "--lease", "300", "--poll", "120", "--give-up", "8"
        )
        try:
            wait_until(effects.exists, 120, "the worker inside its tool call")
            server.restart()  # connections cut (the listener says so at once), the server back within seconds
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0 and json.loads(out)["finished"] == 1, (proc.returncode, out, err)
        with PostgresEventStore(url) as store:
            assert store.state_at(rid).status == "succeeded"


class _SlowToClaim(PostgresEventStore):
    """A real store whose claims take a second (one waiting for a connection while the server returns)."""

    def claim(self, owner: str, *, lease_s: float = 30.0) -> Lease | None:
        time.sleep(1.0)
        return super().claim(owner, lease_s=lease_s)


def test_a_run_claimed_after_the_give_up_time_goes_back_to_the_queue(pg_url: str) -> None:
    # A claim the worker stopped waiting for at the give-up time went on in its thread; the run it
    # claimed stayed leased to this worker, driven by no one, until its lease (here 600 s) ran out.
    with _SlowToClaim(pg_url) as store:
        rid = store.submit("claimed late")
        w = Worker(store, lambda s, spec: None, exit_when_idle=True, give_up_s=0.2, lease_s=600, owner="late")

        async def claim_during_an_outage() -> object:
            w._outage.bind(asyncio.get_running_loop())
            w._outage.went_down(StorageUnavailable("the server is away"))
            return await w._claim(store.claim)

        assert asyncio.run(claim_during_an_outage()) is None
        wait_until(lambda: store.queue_entries([rid])[0]["claims"] == 1, 30, "the late claim done")
        wait_until(lambda: store.queue_entries([rid])[0]["state"] == "queued", 30, "the late claim given back")
        assert store.queue_entries([rid])[0]["lease_owner"] in (None, "")
