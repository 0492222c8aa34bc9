"""One plan's steps spread over several worker processes on a real PostgreSQL server.

The worker holding the plan run's lease drives it and queues each ready step attempt; every worker
claims attempts. Checked from the log and the side effects: independent steps ran on different
workers (``StepSucceeded.worker``), a step worker SIGKILLed mid-step had its attempt run again by
another worker with the same idempotency key (one ``StepStarted`` for it in the log), and the final
state folds equal to the same plan run in one process.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import StepStarted, StepSucceeded, UserMessaged
from agentcore.core.fold import RunState, fold
from agentcore.core.plans import Plan, Step
from agentcore.errors import LeaseLost, RunNotFound
from agentcore.runtime.plan_agent_steps import child_run_id
from agentcore.storage.base import StepLease
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.postgres.store import PostgresEventStore
from tests.support import queue_app
from tests.support.postgres import wait_until
from tests.support.processes import STARTED

ROOT = str(Path(__file__).resolve().parents[2])
APP = "tests.support.queue_app:build_steps"
PLAN = Plan(
    steps=[
        *(Step(id=f"s{i}", tool="record", arguments={"item": f"s{i}"}) for i in range(4)),
        Step(id="join", tool="record", arguments={"item": "join"}, after=["s0", "s1", "s2", "s3"]),
    ],
    max_parallel=4,
)


def start_worker(url: str, log: Path, poll: str = "1", lease: str = "2") -> subprocess.Popen[str]:
    heartbeat = str(float(lease) / 5)
    args = ("--lease", lease, "--heartbeat", heartbeat, "--poll", poll, "--exit-when-idle")
    cmd = [sys.executable, "-m", "agentcore", "worker", "--db", url, "--app", APP, "--json", *args]
    env = {**os.environ, "PYTHONPATH": ROOT}
    with open(log, "a") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    STARTED.append(proc)
    return proc


def effects(path: Path) -> list[tuple[str, str, int]]:
    """``(idempotency key, item, pid)`` of every call the record tool began, in order."""
    if not path.exists():
        return []
    rows = [line.split(" ") for line in path.read_text().splitlines()]
    return [(key, item, int(pid)) for key, item, pid in rows]


def comparable(state: RunState) -> dict[str, Any]:
    doc = state.to_json()
    doc.pop("run_id")
    return doc


def test_a_plans_steps_run_on_several_workers_and_a_killed_step_worker_is_replaced(pg_url: str, tmp_path: Path) -> None:
    spec = {"effects": str(tmp_path / "effects"), "work_s": 2.0, "plan": PLAN.model_dump(mode="json")}
    local = queue_app.build_steps(MemoryEventStore(), {**spec, "work_s": 0, "effects": str(tmp_path / "ref.effects")})
    reference = local.run_sync("a plan", PLAN, run_id="ref").state
    log = tmp_path / "workers.log"
    with PostgresEventStore(pg_url) as store:
        rid = store.submit("a plan", spec=spec)
        workers = [start_worker(pg_url, log) for _ in range(3)]
        pids = {w.pid for w in workers}
        wait_until(lambda: store.queue_entries([rid])[0]["state"] == "leased", 120, "the plan run claimed")
        driver = int(store.queue_entries([rid])[0]["lease_owner"].split(":")[1])

        def step_workers_busy() -> bool:
            return len({pid for _, item, pid in effects(Path(spec["effects"])) if pid != driver}) >= 2

        wait_until(step_workers_busy, 120, "two workers other than the driver running steps")
        key, item, victim = [(k, i, p) for k, i, p in effects(Path(spec["effects"])) if p != driver][-1]
        os.kill(victim, signal.SIGKILL)
        killed = next(w for w in workers if w.pid == victim)
        killed.wait(timeout=30)
        workers.remove(killed)
        workers.append(start_worker(pg_url, log))
        for w in workers:
            out, _ = w.communicate(timeout=300)
            assert w.returncode == 0, f"worker exited {w.returncode}: {out}\n{log.read_text()}"
        events = list(store.read(rid))
        entries = {e["step_id"]: e for e in store.step_entries(rid)}
    state = fold(events)
    assert state.status == "succeeded", state.reason
    assert comparable(state) == comparable(reference), "the spread run's state differs from a one-process run's"
    # independent steps ran on different workers, each named on its StepSucceeded
    ran_by = {e.step_id: e.worker for e in events if isinstance(e, StepSucceeded)}
    assert set(ran_by) == {s.id for s in PLAN.steps} and all(ran_by.values()), ran_by
    owners = {int(str(w).split(":")[1]) for w in ran_by.values()}
    assert len({ran_by[f"s{i}"] for i in range(4)}) >= 2, f"the independent steps all ran on one worker: {ran_by}"
    assert owners <= pids | {w.pid for w in workers}
    # the killed worker's attempt: one StepStarted in the log, run again elsewhere under the same key
    step = item
    assert [e.idempotency_key for e in events if isinstance(e, StepStarted) and e.step_id == step] == [key]
    runs_of_key = [pid for k, _, pid in effects(Path(spec["effects"])) if k == key]
    assert len(runs_of_key) == 2 and runs_of_key[0] == victim and runs_of_key[1] != victim, runs_of_key
    assert int(str(ran_by[step]).split(":")[1]) == runs_of_key[1]
    assert entries[step]["claims"] == 2 and entries[step]["state"] == "done"
    # every other call ran exactly once
    counts = collections.Counter(k for k, _, _ in effects(Path(spec["effects"])))
    assert {k: n for k, n in counts.items() if k != key} == {e.idempotency_key: 1 for e in events if isinstance(
        e, StepStarted) and e.idempotency_key != key}  # fmt: skip


CHAIN = Plan(steps=[Step(id=f"c{i}", tool="record", arguments={"item": f"c{i}"}, after=[f"c{i - 1}"] if i else [])
                    for i in range(4)])  # fmt: skip


def test_the_driver_and_the_step_workers_are_woken_by_notifications_not_by_polling(
    pg_url: str, tmp_path: Path
) -> None:
    """With the fallback poll at 10 minutes, a chain of 4 steps finishes only if every wake-up is a
    notification: a queued step wakes the workers (``agentcore_queue``), a stored outcome wakes the
    driver (``agentcore_step_done``), and the end of the run lets the idle worker exit (``agentcore_done``)."""
    spec = {"effects": str(tmp_path / "effects"), "work_s": 0.05, "plan": CHAIN.model_dump(mode="json")}
    local = queue_app.build_steps(MemoryEventStore(), {**spec, "effects": str(tmp_path / "ref.effects")})
    reference = local.run_sync("a chain", CHAIN, run_id="ref").state
    log = tmp_path / "workers.log"
    with PostgresEventStore(pg_url) as store:
        rid = store.submit("a chain", spec=spec)
        # a long lease: no attempt may expire and be claimed twice on a loaded machine (nothing is killed here)
        workers = [start_worker(pg_url, log, poll="600", lease="30") for _ in range(2)]
        for w in workers:
            out, _ = w.communicate(timeout=240)  # a missed wake-up would wait out the 600 s poll
            assert w.returncode == 0, f"worker exited {w.returncode}: {out}\n{log.read_text()}"
        events = list(store.read(rid))
        entries = store.step_entries(rid)
    state = fold(events)
    assert state.status == "succeeded", state.reason
    assert comparable(state) == comparable(reference)
    assert [(e["step_id"], e["state"], e["claims"]) for e in entries] == [(f"c{i}", "done", 1) for i in range(4)]
    assert [e.step_id for e in events if isinstance(e, StepSucceeded)] == ["c0", "c1", "c2", "c3"]


# ------------------------------------------------------------------------------------------------
# a description-only step's child run, fenced by the step lease


def _note(run: str, seq: int) -> UserMessaged:
    return UserMessaged(run_id=run, seq=seq, at=datetime.now(timezone.utc), text=f"m{seq}")


def test_a_stale_step_workers_late_writes_to_its_child_run_are_refused(pg_url: str) -> None:
    """Every write a step worker makes goes through its step lease: once another worker took the
    attempt over, the stale worker's append to the child run is refused with ``LeaseLost`` even where
    optimistic concurrency alone would let it in (same expected seq), and nothing of it is written;
    creating a run is fenced the same way, and the plan run's own log is never a step worker's to write."""
    with PostgresEventStore(pg_url) as store:
        rid = store.submit("a plan", spec={})
        driver = store.claim("driver", lease_s=60)
        assert driver is not None
        store.submit_step(driver, "s", 1, f"{rid}/s/1")
        first = store.claim_step("w1", lease_s=0.5)
        assert first is not None
        child = child_run_id(rid, "s", 1)
        stale = store.step_leased(first)
        assert stale.create_run("sub-task", run_id=child, events=[_note(child, 1)]) == child
        assert stale.append(child, [_note(child, 2)], 1) == 2
        claimed: list[StepLease] = []

        def taken_over() -> bool:
            got = store.claim_step("w2", lease_s=60)
            claimed.extend([got] if got is not None else [])
            return bool(claimed)

        wait_until(taken_over, 30, "w1's step lease to expire and w2 to take the attempt over")
        fresh = store.step_leased(claimed[0])
        assert fresh.run(child).last_seq == 2  # w2 resumes the child from its log, then w1 wakes up
        with pytest.raises(LeaseLost, match=r"step lease \(token \d+\) is no longer valid"):
            stale.append(child, [_note(child, 3)], 2)
        assert store.last_seq(child) == 2 and [e.seq for e in store.read(child)] == [1, 2]
        assert fresh.append(child, [_note(child, 3)], 2) == 3
        other = child_run_id(rid, "s", 2)
        with pytest.raises(LeaseLost, match="no longer valid"):
            stale.create_run("sub-task", run_id=other, events=[_note(other, 1)])
        with pytest.raises(RunNotFound):
            store.run(other)
        with pytest.raises(LeaseLost, match="written only by the worker driving it"):
            fresh.append(rid, [_note(rid, 1)], 0)
        assert store.last_seq(rid) == 0
        assert store.finish_step(first, {"ok": True}) is False
        assert store.finish_step(claimed[0], {"ok": True}) is True
        with pytest.raises(LeaseLost):  # a finished attempt's lease no longer fences anything in
            fresh.append(child, [_note(child, 4)], 3)


def test_a_wave_of_started_steps_is_queued_longest_path_first_for_a_worker_with_fewer_slots(
    pg_url: str, tmp_path: Path
) -> None:
    # six roots in plan order, root i heading a chain of i more steps: all start at once (max_parallel
    # 20), and the one step slot of the single worker takes them longest remaining path first
    steps = []
    for i in range(6):
        steps.append(Step(id=f"r{i}", tool="record", arguments={"item": f"r{i}"}))
        steps += [
            Step(id=f"r{i}.{k}", tool="record", arguments={"item": f"r{i}.{k}"}, after=[f"r{i}" if k == 1 else f"r{i}.{k - 1}"])
            for k in range(1, i + 1)
        ]
    plan = Plan(steps=steps, max_parallel=20)
    firsts = []
    with PostgresEventStore(pg_url) as store:
        for n in range(3):
            spec = {"effects": str(tmp_path / f"effects{n}"), "work_s": 0.1, "plan": plan.model_dump(mode="json")}
            rid = store.submit(f"plan {n}", spec=spec)
            worker = start_worker(pg_url, tmp_path / "workers.log", poll="0.5", lease="5")
            assert worker.wait(timeout=120) == 0, (tmp_path / "workers.log").read_text()[-3000:]
            assert store.state_at(rid).status == "succeeded"
            firsts.append([item for _key, item, _pid in effects(tmp_path / f"effects{n}")][:6])
    assert firsts == [["r5", "r4", "r3", "r2", "r1", "r0"]] * 3
