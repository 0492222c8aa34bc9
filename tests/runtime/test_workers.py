"""The work queue and its workers on a real PostgreSQL server, with real worker processes.

Workers are ``python -m agentcore worker --app tests.support.queue_app:build`` processes; they are
SIGKILLed, their server is restarted under them, and (as root) one is cut off in its own network
namespace. Every check reads the log: each run succeeded, each tool call has exactly one recorded
result, and each state folds equal to an uninterrupted run's.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import Event, StepFailed, StepStarted, StepSucceeded, ToolFinished, ToolStarted, UserMessaged
from agentcore.core.fold import RunState, fold
from agentcore.errors import ConfigError, LeaseLost
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.postgres.store import PostgresEventStore
from tests.support import queue_app
from tests.support.postgres import LocalPostgres, wait_until
from tests.support.processes import STARTED

ROOT = str(Path(__file__).resolve().parents[2])
APP = "tests.support.queue_app:build"


def message(run: str, seq: int) -> UserMessaged:
    return UserMessaged(run_id=run, seq=seq, at=datetime.now(timezone.utc), text=f"m{seq}")


# ------------------------------------------------------------------------------------------------
# the queue, in one process


def test_claims_are_exclusive_and_a_stale_lease_writes_nothing(pg_url: str) -> None:
    with PostgresEventStore(pg_url) as store:
        listener = store.listen("agentcore_queue")
        listener.wait(0)
        first = store.submit("one", spec={"n": 1})
        second = store.submit("two", spec={"n": 2})
        assert first in listener.wait(5) + listener.wait(0.2)
        a = store.claim("A", lease_s=0.5)
        b = store.claim("B", lease_s=30)
        assert a is not None and b is not None
        assert (a.run_id, a.spec, a.claims, b.run_id) == (first, {"n": 1}, 1, second)
        assert store.claim("C") is None  # both held
        assert store.leased(a).append(first, [message(first, 1)], 0) == 1
        wait_until(lambda: store.claim("C", lease_s=30) is not None, 10, "A's lease to expire")
        [entry] = store.queue_entries([first])
        assert (entry["lease_owner"], entry["claims"], entry["lease_token"]) == ("C", 2, a.token + 1)
        with pytest.raises(LeaseLost, match="another worker has taken the run over"):
            store.leased(a).append(first, [message(first, 2)], 1)
        assert store.last_seq(first) == 1  # the stale writer wrote nothing
        assert store.renew(a) is False and store.release(a, done=True) is False
        assert store.leased(b).append(second, [message(second, 1)], 0) == 1
        assert store.release(b, done=True) is True
        assert [e["state"] for e in store.queue_entries()] == ["leased", "done"]
        listener.close()


def test_submit_refuses_bad_input_and_writes_nothing(pg_url: str) -> None:
    with PostgresEventStore(pg_url) as store:
        with pytest.raises(ConfigError, match="task"):
            store.submit("  ")
        with pytest.raises(ConfigError, match="JSON"):
            store.submit("t", spec={"bad": float("nan")})
        with pytest.raises(TypeError, match=r"submit.*'created'"):
            store.submit("t", created=None)  # type: ignore[call-arg]  # create_run's option, not submit's
        assert store.runs() == [] and store.queue_entries() == []


# ------------------------------------------------------------------------------------------------
# worker processes




def start_worker(url: str, *args: str, prefix: tuple[str, ...] = (), log: Path | None = None) -> subprocess.Popen[str]:
    cmd = [*prefix, sys.executable, "-m", "agentcore", "worker", "--db", url, "--app", APP, "--json", *args]
    env = {**os.environ, "PYTHONPATH": ROOT}
    err = open(log, "a") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    STARTED.append(proc)
    return proc


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"worker exited {proc.returncode}: {out}"
    return dict(json.loads(out))


def reference(tmp_path: Path, spec: dict[str, Any]) -> tuple[list[Event], RunState]:
    """An uninterrupted run of the same app, in memory."""
    store = MemoryEventStore()
    agent = queue_app.build(store, {**spec, "effects": str(tmp_path / "reference.effects")})
    result = agent.run_sync("queued work", run_id="ref")
    assert result.status == "succeeded"
    events = list(store.read("ref"))
    return events, fold(events)


def comparable(state: RunState) -> dict[str, Any]:
    doc = state.to_json()
    doc.pop("run_id")
    return doc


def check_runs(
    store: PostgresEventStore, run_ids: list[str], ref: tuple[list[Event], RunState], effects: Path, outages: int = 0
) -> dict[str, int]:
    """Each run succeeded, with one result per call and the reference's log shape and state.

    A call runs at most once per claim of its run, plus once per database outage: a call whose result
    could not be written while the server was away is retried (same idempotency key) when the worker
    resumes the run from the log, as on one machine."""
    ref_events, ref_state = ref
    lines = [line.split(" ", 1)[0] for line in effects.read_text().splitlines()] if effects.exists() else []
    ran = collections.Counter(lines)
    claims = {e["run_id"]: e["claims"] for e in store.queue_entries(run_ids)}
    reruns = 0
    for rid in run_ids:
        events = list(store.read(rid))
        state = fold(events)
        assert state.status == "succeeded", f"{rid}: {state.status} {state.reason}"
        assert store.state_at(rid) == state and store.run(rid).status == "succeeded"
        results = collections.Counter(e.call_id for e in events if isinstance(e, ToolFinished))
        started = {e.call.id: e.idempotency_key for e in events if isinstance(e, ToolStarted)}
        assert set(results) == set(started) and set(results.values()) == {1}, f"{rid}: results {results}"
        assert [(e.type, e.caused_by) for e in events] == [(e.type, e.caused_by) for e in ref_events], rid
        assert comparable(state) == comparable(ref_state), f"{rid}: the state differs from an uninterrupted run's"
        for key in started.values():
            assert 1 <= ran[key] <= claims[rid] + outages, (
                f"{rid}: {key} ran {ran[key]} times in {claims[rid]} claims and {outages} outages"
            )
            reruns += ran[key] - 1
    return {"reruns": reruns, "taken_over": sum(1 for c in claims.values() if c > 1)}


def test_four_workers_a_hundred_runs_three_killed_and_replaced(pg_url: str, tmp_path: Path) -> None:
    spec = {"effects": str(tmp_path / "effects"), "decisions": 2, "work_s": 0.02}
    ref = reference(tmp_path, spec)
    rng = random.Random(12)
    with PostgresEventStore(pg_url) as store:
        ids = [store.submit("queued work", spec=spec) for _ in range(100)]
        args = ("--lease", "2", "--heartbeat", "0.4", "--poll", "1", "--exit-when-idle", "--concurrency", "2")
        log = tmp_path / "workers.log"
        workers = [start_worker(pg_url, *args, log=log) for _ in range(4)]
        kill_at = sorted(rng.sample(range(8, 70), 3))  # after this many runs are done
        killed = []
        for threshold in kill_at:
            wait_until(lambda t=threshold: sum(1 for e in store.queue_entries(ids) if e["state"] == "done") >= t,
                       240, f"{threshold} runs done")  # fmt: skip
            time.sleep(rng.uniform(0, 0.3))
            holding = {e["lease_owner"].split(":")[1] for e in store.queue_entries(ids) if e["state"] == "leased"}
            alive = [w for w in workers if w.poll() is None]
            victim = next((w for w in alive if str(w.pid) in holding), alive[0])
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(timeout=30)
            killed.append(victim)
            workers.remove(victim)
            workers.append(start_worker(pg_url, *args, log=log))
        stats = [finish(w) for w in workers]
        wait_until(lambda: all(e["state"] == "done" for e in store.queue_entries(ids)), 120, "every run done")
        outcome = check_runs(store, ids, ref, Path(spec["effects"]))
    assert len(killed) == 3 and all(k.returncode == -signal.SIGKILL for k in killed)
    assert sum(s["finished"] for s in stats) >= 1
    assert outcome["taken_over"] >= 1, "no killed worker held a run: the kills tested nothing"


def test_a_server_restart_under_running_workers_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    spec = {"effects": str(tmp_path / "effects"), "decisions": 3, "work_s": 0.05}
    ref = reference(tmp_path, spec)
    with LocalPostgres() as server:
        url = server.create_database("restart")
        with PostgresEventStore(url) as store:
            ids = [store.submit("queued work", spec=spec) for _ in range(16)]
        args = ("--lease", "3", "--heartbeat", "0.5", "--poll", "1", "--exit-when-idle", "--concurrency", "2")
        workers = [start_worker(url, *args, log=tmp_path / "workers.log") for _ in range(2)]
        with PostgresEventStore(url) as store:
            wait_until(lambda: any(e["state"] == "done" for e in store.queue_entries(ids)), 120, "a first run done")
        server.restart()  # immediate stop: every connection is cut, then the server is back
        stats = [finish(w) for w in workers]
        with PostgresEventStore(url) as store:
            wait_until(lambda: all(e["state"] == "done" for e in store.queue_entries(ids)), 120, "every run done")
            check_runs(store, ids, ref, Path(spec["effects"]), outages=1)
        assert sum(s["finished"] for s in stats) >= 1


def test_plan_runs_on_workers_survive_a_worker_killed_mid_step(pg_url: str, tmp_path: Path) -> None:
    from tests.support.crash_worker import PLAN

    spec = {"effects": str(tmp_path / "effects"), "work_s": 0.3, "plan": PLAN.model_dump(mode="json")}
    with PostgresEventStore(pg_url) as store:
        ids = [store.submit("a plan", spec=spec) for _ in range(3)]
        args = ("--app", "tests.support.queue_app:build_plan", "--lease", "2", "--heartbeat", "0.4", "--poll", "1",
                "--exit-when-idle")  # fmt: skip
        workers = [start_worker(pg_url, *args) for _ in range(2)]

        def mid_step() -> bool:
            for e in store.queue_entries(ids):
                if e["state"] == "leased":
                    events = list(store.read(e["run_id"]))
                    started = {(x.step_id, x.attempt) for x in events if isinstance(x, StepStarted)}
                    ended = {(x.step_id, x.attempt) for x in events if isinstance(x, (StepSucceeded, StepFailed))}
                    if started - ended and len(ended) >= 2:
                        return True
            return False

        wait_until(mid_step, 120, "a plan step under way")
        holder = next(e["lease_owner"] for e in store.queue_entries(ids) if e["state"] == "leased")
        victim = next((w for w in workers if str(w.pid) == holder.split(":")[1]), workers[0])
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        workers.remove(victim)
        workers.append(start_worker(pg_url, *args))
        for w in workers:
            finish(w)
        wait_until(lambda: all(e["state"] == "done" for e in store.queue_entries(ids)), 120, "every plan run done")
        assert any(e["claims"] > 1 for e in store.queue_entries(ids)), "the killed worker held no run"
        ran = collections.Counter(line.split(" ", 1)[0] for line in Path(spec["effects"]).read_text().splitlines())
        for rid in ids:
            events = list(store.read(rid))
            state = fold(events)
            assert state.status == "succeeded", state.reason
            succeeded = collections.Counter(e.step_id for e in events if isinstance(e, StepSucceeded))
            assert succeeded == {step.id: 1 for step in PLAN.steps}, succeeded
            # the steps ran on the workers (step_queue); an attempt whose worker was killed mid-step ran
            # again, under the same key, on the worker that claimed it next: once per claim at most
            claims = {e["idempotency_key"]: e["claims"] for e in store.step_entries(rid)}
            for e in events:
                if isinstance(e, StepSucceeded):
                    key = next(s.idempotency_key for s in events if isinstance(s, StepStarted) and s.step_id == e.step_id and s.attempt == e.attempt)
                    assert 1 <= ran[key] <= claims[key], f"{rid}: the succeeded attempt {key} ran {ran[key]} times in {claims[key]} claims"
                    assert e.worker is not None
            assert set(state.known_facts) == {step.id for step in PLAN.steps}  # each result revised into its fact


# ------------------------------------------------------------------------------------------------
# a partitioned worker (network namespaces, as root)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def netns() -> Any:
    """A network namespace joined to the host by a veth pair (10.213.N.1 <-> .2), named after this
    process so that test runs in other checkouts on the same machine never touch it."""
    pid = os.getpid()
    name, host_if, ns_if, net = f"acw{pid}", f"acw{pid}h", f"acw{pid}n", f"10.213.{pid % 250 + 1}"
    try:
        if os.geteuid() != 0:
            raise PermissionError("not root")
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        _ip("netns", "add", name)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", name)
        _ip("addr", "add", f"{net}.1/24", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("netns", "exec", name, "ip", "addr", "add", f"{net}.2/24", "dev", ns_if)
        _ip("netns", "exec", name, "ip", "link", "set", ns_if, "up")
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
    except (OSError, subprocess.CalledProcessError) as e:
        detail = e.stderr.decode() if isinstance(e, subprocess.CalledProcessError) and e.stderr else str(e)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        pytest.skip(f"SKIPPED: network namespaces cannot be made here ({detail.strip()}); the fencing test needs root and `ip netns`")
    try:
        yield {"name": name, "host_if": host_if, "host_ip": f"{net}.1"}
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_a_partitioned_worker_is_fenced_and_its_late_writes_are_refused(netns: dict[str, str], tmp_path: Path) -> None:
    spec = {"effects": str(tmp_path / "effects"), "decisions": 4, "work_s": 0.6}
    ref = reference(tmp_path, spec)
    os.chmod(tmp_path, 0o777)
    with LocalPostgres(listen=f"127.0.0.1,{netns['host_ip']}") as server:
        url = server.create_database("fence")
        cut_off_url = server.url("fence", host=netns["host_ip"])
        with PostgresEventStore(url) as store:
            run = store.submit("queued work", spec=spec)
            args = ("--lease", "2", "--heartbeat", "0.4", "--poll", "1", "--exit-when-idle")
            log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
            a = start_worker(cut_off_url, *args, prefix=("ip", "netns", "exec", netns["name"]), log=log_a)
            wait_until(lambda: store.last_seq(run) >= 6, 120, "worker A to be under way")
            _ip("link", "set", netns["host_if"], "down")  # A is cut off mid-run
            cut_at = store.last_seq(run)
            wait_until(lambda: store.queue_entries([run])[0]["lease_expired"], 60, "A's lease to expire")
            b = start_worker(url, *args, log=log_b)
            b_stats = finish(b, timeout=180)
            assert store.run(run).status == "succeeded" and b_stats["finished"] == 1
            after_b = [e.model_dump_json() for e in store.read(run)]
            _ip("link", "set", netns["host_if"], "up")  # A comes back with a stale lease
            a_stats = finish(a, timeout=180)
            assert a_stats == {**a_stats, "finished": 0, "lost": 1}, a_stats
            assert "taken over" in log_a.read_text()
            assert [e.model_dump_json() for e in store.read(run)] == after_b  # A's late writes were refused
            [entry] = store.queue_entries([run])
            assert entry["claims"] == 2 and entry["state"] == "done"
            check_runs(store, [run], ref, Path(spec["effects"]))
            assert cut_at < len(after_b)
