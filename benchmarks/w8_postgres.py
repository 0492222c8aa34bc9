"""W8 — PostgreSQL and workers (see WORKLOADS.md).

(a) W1's write path on a local PostgreSQL server (started here, default durability: fsync and
synchronous commit on) with ``PostgresEventStore``, and LangGraph's ``PostgresSaver`` on the same
server in the same command (``benchmarks/langgraph_w8.py`` in a subprocess, with
``AGENTCORE_LANGGRAPH_PATH`` on its ``PYTHONPATH``). Bytes are ``pg_total_relation_size`` of each
side's tables after ``VACUUM``; the latest state is the median of ``READS`` (21) reads on each side
(ours each through a newly opened store, LangGraph's through its saver); ``pg_state_at_*_ms`` time
travel on our side (``state_at_seqs``); on our side every table of the schema (its indexes, TOAST,
free-space and visibility maps included), with ``pg_bytes_by_relation`` breaking the sum down.

(b) ``RUNS`` queued runs of 5 steps, each step waiting 50 ms, drained by 1, 2, 4 and 8 worker
processes (``agentcore worker --exit-when-idle``); then 8 workers again with 3 SIGKILLed at seeded
moments and replaced: runs lost, duplicated tool results, and seconds from a kill until the dead
worker's run is claimed by another (lease 2 s, heartbeat 0.5 s).

Run: ``python benchmarks/run.py W8 [--n 1000] [--repeat 3]`` (``AGENTCORE_W8_RUNS`` for fewer runs).
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402
from w1_persistence import READS, T0, ms, plan_steps, step_event  # noqa: E402

from agentcore.core.events import RunStarted, ToolFinished  # noqa: E402
from agentcore.core.plans import Plan  # noqa: E402
from agentcore.storage.base import DONE_CHANNEL, QUEUE_CHANNEL  # noqa: E402
from agentcore.storage.postgres.store import PostgresEventStore  # noqa: E402
from tests.support.postgres import LocalPostgres  # noqa: E402

DEFAULT_N = 1000
RUNS = int(os.environ.get("AGENTCORE_W8_RUNS", "400"))
_RELATIONS = """
SELECT c.relname, k.relname AS of_table, pg_relation_size(k.oid, 'main') AS main,
       pg_relation_size(k.oid, 'fsm') + pg_relation_size(k.oid, 'vm') AS maps
FROM pg_class c
JOIN LATERAL (
    SELECT c.oid, c.relname UNION ALL SELECT c.reltoastrelid, 'toast' WHERE c.reltoastrelid <> 0
    UNION ALL SELECT i.indexrelid, i.indexrelid::regclass::text FROM pg_index i WHERE i.indrelid = c.oid
    UNION ALL SELECT t.indexrelid, 'toast index' FROM pg_index t WHERE c.reltoastrelid <> 0 AND t.indrelid = c.reltoastrelid
) AS k(oid, relname) ON true
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
ORDER BY 1, 2"""


def table_bytes(url: str) -> tuple[int, dict[str, dict[str, int]]]:
    """``pg_total_relation_size`` of every table of the schema after ``VACUUM``, and per table each
    of its relations' main fork and free-space plus visibility maps (bytes)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM")
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
        ).fetchone()
        parts: dict[str, dict[str, int]] = {}
        for table, rel, main, maps in conn.execute(_RELATIONS):  # type: ignore[arg-type]
            if main or maps:
                parts.setdefault(table, {})[rel if not maps else f"{rel} (+{maps} maps)"] = int(main)
    return (int(row[0] or 0) if row else 0), parts


def w1_on_postgres(url: str, n: int) -> dict[str, Any]:
    store = PostgresEventStore(url)
    run = store.create_run("w8", run_id="w8")
    store.append(run, [RunStarted(run_id=run, seq=1, at=T0, task="w8", plan=Plan(steps=plan_steps(0)))], 0)
    per_step = []
    for step in range(1, n + 1):
        t = time.perf_counter()
        store.append(run, [step_event(run, step)], step)
        per_step.append(time.perf_counter() - t)
    store.close()
    latest_reads = []
    for _ in range(READS):  # each on a newly opened store: nothing of the run is cached in memory
        with PostgresEventStore(url) as fresh:
            t = time.perf_counter()
            latest = fresh.state_at(run)
            latest_reads.append(time.perf_counter() - t)
            assert len(latest.known_facts) == n
    state_latest = statistics.median(latest_reads)
    travel = state_at_seqs(url, run, n)
    fresh = PostgresEventStore(url)
    t = time.perf_counter()
    headers = list(fresh.history(run))
    history = time.perf_counter() - t
    assert len(headers) == n + 1
    fresh.close()
    per_step.sort()
    total, parts = table_bytes(url)
    return {
        "pg_per_step_ms_median": ms(statistics.median(per_step)),
        "pg_per_step_ms_p95": ms(per_step[int(0.95 * (len(per_step) - 1))]),
        "pg_db_bytes": total,
        "pg_bytes_by_relation": parts,
        "pg_state_latest_ms": ms(state_latest),
        **travel,
        "pg_history_ms": ms(history),
    }


TRAVEL_READS = 7
"""Reads per time-travel point (the median is reported): each folds up to half the run."""


def state_at_seqs(url: str, run: str, n: int) -> dict[str, float]:
    """Time travel: the median ms of ``state_at(run, seq)`` on a newly opened store at a quarter, half
    and three quarters of the run, and just before its newest snapshot (the worst place: snapshots
    are thinned to one per power-of-two range of seqs, so that state folds from the one before)."""
    with psycopg.connect(url) as conn:
        newest = conn.execute("SELECT max(seq) FROM snapshots WHERE run_id = %s", (run,)).fetchone()
    points = {"quarter": n // 4, "mid": n // 2, "three_quarters": 3 * n // 4}
    if newest is not None and newest[0]:
        points["before_newest_snapshot"] = newest[0] - 1
    out: dict[str, float] = {}
    for name, seq in points.items():
        reads = []
        for _ in range(TRAVEL_READS):
            with PostgresEventStore(url) as fresh:
                t = time.perf_counter()
                state = fresh.state_at(run, seq)
                reads.append(time.perf_counter() - t)
                assert state.last_seq == seq
        out[f"pg_state_at_{name}_ms"] = ms(statistics.median(reads))
    return out


def run_langgraph(server: LocalPostgres, n: int, repeat: int) -> dict[str, Any]:
    """``langgraph_w8.py``'s JSON at ``n`` steps on ``server`` (``AGENTCORE_LANGGRAPH_PATH`` on its
    ``PYTHONPATH``), or ``{"skipped": why}`` when it is not installed or fails."""
    env = dict(os.environ)
    extra = os.environ.get("AGENTCORE_LANGGRAPH_PATH")
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, str(HERE / "langgraph_w8.py"), "--admin-url", server.url("postgres"), "--n", str(n),
         "--repeat", str(repeat)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return {"skipped": f"the LangGraph harness failed: {done.stderr.strip()[-500:]}"}
    return dict(json.loads(done.stdout))

def part_a(server: LocalPostgres, n: int, repeat: int) -> dict[str, Any]:
    runs = [w1_on_postgres(server.create_database(f"w8a_{r}"), n) for r in range(repeat)]
    out: dict[str, Any] = {k: round(statistics.median(x[k] for x in runs), 4) for k in runs[0] if k != "pg_bytes_by_relation"}
    out["pg_bytes_by_relation"] = runs[0]["pg_bytes_by_relation"]  # the first repeat's (bytes barely vary)
    base = run_langgraph(server, n, repeat)
    if "skipped" in base:
        out["langgraph"] = base
        return out
    out.update({k: v for k, v in base.items() if k.startswith("lg_")})
    out["langgraph"] = {k: v for k, v in base.items() if not k.startswith("lg_")}
    out["vs_langgraph"] = {
        "x_faster_per_step": round(base["lg_pg_per_step_ms_median"] / out["pg_per_step_ms_median"], 1),
        "x_smaller": round(base["lg_pg_db_bytes"] / out["pg_db_bytes"], 1),
        "x_faster_history": (
            round(base["lg_pg_history_ms"] / out["pg_history_ms"], 1)
            if base.get("lg_pg_history_ms") is not None
            else f"LangGraph's listing failed: {base.get('lg_pg_history_failed')}"
        ),
        "x_faster_state_latest": round(base["lg_pg_state_latest_ms"] / out["pg_state_latest_ms"], 2),
    }
    return out


def worker(url: str, *, exit_when_idle: bool = True) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    cmd = [sys.executable, "-m", "agentcore", "worker", "--db", url, "--app", "queue_bench_app:build", "--lease", "2",
           "--heartbeat", "0.5", "--poll", "1", "--json"]  # fmt: skip
    if exit_when_idle:
        cmd.append("--exit-when-idle")
    # A harness started in the background by a shell inherits SIGINT ignored; the workers would then
    # ignore the SIGINT that stops a fleet and the drain would wait forever: give them the default.
    return subprocess.Popen(
        cmd, cwd=str(HERE.parent), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _ticks(pid: int | str) -> tuple[int, int, int]:
    """(own CPU ticks, reaped children's CPU ticks, parent pid) of a process, from ``/proc/PID/stat``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]), int(fields[1])


def server_cpu_s(server: LocalPostgres) -> float:
    """CPU seconds the PostgreSQL server has used so far: the postmaster, its reaped backends, and the
    live backends and auxiliary processes (Linux ``/proc``)."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    own, reaped, _ = _ticks(postmaster)
    total = own + reaped
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                mine, _, parent = _ticks(entry)
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if parent == postmaster:
                total += mine
    return total / os.sysconf("SC_CLK_TCK")


def processes_cpu_s(procs: list[subprocess.Popen[str]]) -> float:
    """CPU seconds the (live) worker processes have used so far, all their threads."""
    return sum(_ticks(p.pid)[0] for p in procs) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    t = os.times()
    return t.children_user + t.children_system


def _listening(store: PostgresEventStore) -> int:
    row = store._db.one(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE %s",
        (f"%LISTEN {QUEUE_CHANNEL}%",),
    )
    return int(row[0]) if row else 0


def _wait_done(store: PostgresEventStore, ids: list[str]) -> None:
    """Until every run's queue entry is done, woken by ``agentcore_done`` (a look every 0.5 s as well)."""
    listener = store.listen(DONE_CHANNEL)
    try:
        left = set(ids)
        while left:
            listener.wait(0.5)
            left = {e["run_id"] for e in store.queue_entries(left) if e["state"] != "done"}
    finally:
        listener.close()


def _outcome(store: PostgresEventStore, ids: list[str]) -> tuple[int, int]:
    """Runs lost (not succeeded) and duplicated tool results (``ToolFinished`` per call id)."""
    statuses = collections.Counter(store.run(r).status for r in ids)
    duplicates = 0
    for rid in ids:
        counts = collections.Counter(e.call_id for e in store.read(rid) if isinstance(e, ToolFinished))
        duplicates += sum(c - 1 for c in counts.values())
    return len(ids) - statuses["succeeded"], duplicates


def drain_fleet(server: LocalPostgres, k: int, tmp: Path) -> dict[str, Any]:
    """A running fleet: ``k`` workers are started and idle on ``LISTEN`` first; the clock runs from the
    first ``submit`` of ``RUNS`` runs (which wakes them) until the last run's queue entry is done.

    CPU over the same window: the workers (all threads, ``/proc``), the server (postmaster, backends,
    auxiliary processes) and this harness (submitting and waiting)."""
    url = server.create_database(f"w8f_{k}")
    effects = tmp / f"effects-fleet-{k}"
    with PostgresEventStore(url) as store:
        procs = [worker(url, exit_when_idle=False) for _ in range(k)]
        try:
            deadline = time.monotonic() + 120
            while _listening(store) < k:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"{k} workers did not all start listening")
                time.sleep(0.05)
            cpu0 = (processes_cpu_s(procs), server_cpu_s(server), time.process_time())
            started = time.perf_counter()
            ids = [store.submit("w8", spec={"effects": str(effects), "wait_s": 0.05}) for _ in range(RUNS)]
            _wait_done(store, ids)
            seconds = time.perf_counter() - started
            cpu1 = (processes_cpu_s(procs), server_cpu_s(server), time.process_time())
        finally:
            for p in procs:
                p.send_signal(signal.SIGINT)
            for p in procs:
                p.communicate()
        lost, duplicates = _outcome(store, ids)
    workers_s, server_s, harness_s = (b - a for a, b in zip(cpu0, cpu1, strict=True))
    return {
        "runs_per_s": round(RUNS / seconds, 2), "lost": lost, "duplicates": duplicates,
        "cpu_ms_per_run": round(1000 * (workers_s + server_s + harness_s) / RUNS, 1),
        "cpu_ms_per_run_workers": round(1000 * workers_s / RUNS, 1),
        "cpu_ms_per_run_server": round(1000 * server_s / RUNS, 1),
        "cpu_ms_per_run_harness": round(1000 * harness_s / RUNS, 1),
    }  # fmt: skip


def drain(server: LocalPostgres, k: int, tmp: Path, kills: int = 0) -> dict[str, Any]:
    """Queue ``RUNS`` runs, start ``k`` workers (killing ``kills`` of them on the way), wait for the end.

    The clock runs from starting the worker processes (their Python start-up and imports included)
    until every worker has exited (``--exit-when-idle``) and every run is done: session 3's figure."""
    url = server.create_database(f"w8b_{k}_{kills}")
    effects = tmp / f"effects-{k}-{kills}"
    with PostgresEventStore(url) as store:
        ids = [store.submit("w8", spec={"effects": str(effects), "wait_s": 0.05}) for _ in range(RUNS)]
        cpu0 = (children_cpu_s(), server_cpu_s(server), time.process_time())
        started = time.perf_counter()
        procs = [worker(url) for _ in range(k)]
        takeovers: list[float] = []
        rng = random.Random(8)
        for at in sorted(rng.sample(range(RUNS // 10, RUNS // 2), kills)):
            while sum(1 for e in store.queue_entries(ids) if e["state"] == "done") < at:
                time.sleep(0.05)
            held = {e["run_id"]: e["claims"] for e in store.queue_entries(ids) if e["state"] == "leased"}
            victim = next(
                (p for p in procs if p.poll() is None and any(
                    str(p.pid) == (e["lease_owner"] or "::").split(":")[1]
                    for e in store.queue_entries(list(held)))), procs[0])  # fmt: skip
            mine = [e["run_id"] for e in store.queue_entries(list(held)) if (e["lease_owner"] or "::").split(":")[1] == str(victim.pid)]
            os.kill(victim.pid, signal.SIGKILL)
            killed_at = time.perf_counter()
            victim.wait()
            procs.remove(victim)
            procs.append(worker(url))
            while mine and not all(e["claims"] > held[e["run_id"]] or e["state"] == "done"
                                   for e in store.queue_entries(mine)):  # fmt: skip
                time.sleep(0.02)
            if mine:
                takeovers.append(time.perf_counter() - killed_at)
        for p in procs:
            p.communicate()
        while not all(e["state"] == "done" for e in store.queue_entries(ids)):
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        cpu1 = (children_cpu_s(), server_cpu_s(server), time.process_time())
        lost, duplicates = _outcome(store, ids)
    return {
        "runs_per_s": round(RUNS / seconds, 2),
        "cpu_ms_per_run": round(1000 * sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) / RUNS, 1),
        "lost": lost,
        "duplicates": duplicates,
        "takeover_s": [round(t, 2) for t in takeovers],
    }


def part_b(server: LocalPostgres) -> dict[str, Any]:
    """Each worker count drained twice (a running fleet, then cold start-up included), then the kills."""
    out: dict[str, Any] = {"runs": RUNS}
    counts = [int(x) for x in os.environ.get("AGENTCORE_W8_WORKERS", "1,2,4,8").split(",")]
    with tempfile.TemporaryDirectory(prefix="agentcore-w8-") as tmp:
        os.chmod(tmp, 0o777)
        for k in counts:
            fleet = drain_fleet(server, k, Path(tmp))
            assert fleet["lost"] == 0 and fleet["duplicates"] == 0, fleet
            out[f"runs_per_s_{k}"] = fleet["runs_per_s"]
            out[f"cpu_ms_per_run_{k}"] = {
                part: fleet[f"cpu_ms_per_run_{part}"] for part in ("workers", "server", "harness")
            } | {"total": fleet["cpu_ms_per_run"]}
            if os.environ.get("AGENTCORE_W8_SKIP_COLD") != "1":
                cold = drain(server, k, Path(tmp))
                assert cold["lost"] == 0 and cold["duplicates"] == 0, cold
                out[f"runs_per_s_{k}_with_startup"] = cold["runs_per_s"]
                out[f"cpu_ms_per_run_{k}_with_startup"] = cold["cpu_ms_per_run"]
        if 1 in counts and 8 in counts:
            out["scaling_efficiency_8"] = round(out["runs_per_s_8"] / (8 * out["runs_per_s_1"]), 2)
            if "runs_per_s_1_with_startup" in out:
                out["scaling_efficiency_8_with_startup"] = round(
                    out["runs_per_s_8_with_startup"] / (8 * out["runs_per_s_1_with_startup"]), 2
                )
        if os.environ.get("AGENTCORE_W8_SKIP_KILLS") == "1":
            return out
        killed = drain(server, 8, Path(tmp), kills=3)
    out["kill_runs_per_s_8"] = killed["runs_per_s"]
    out["kill_lost_runs"] = killed["lost"]
    out["kill_duplicate_results"] = killed["duplicates"]
    out["takeover_s"] = killed["takeover_s"]
    out["takeover_s_p50"] = statistics.median(killed["takeover_s"]) if killed["takeover_s"] else None
    return out


def run(n: int | None, repeat: int) -> dict[str, Any]:
    n = n or DEFAULT_N
    out: dict[str, Any] = {"workload": "W8", "n": n, "repeat": repeat, "cpus": os.cpu_count()}
    with LocalPostgres(settings={}) as server:
        with psycopg.connect(server.url("postgres")) as conn:
            out["postgres"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        if os.environ.get("AGENTCORE_W8_SKIP_W1") != "1":
            out.update(part_a(server, n, repeat))
        if os.environ.get("AGENTCORE_W8_SKIP_WORKERS") != "1":
            out.update(part_b(server))
    return out
