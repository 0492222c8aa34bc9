"""W8 — PostgreSQL and workers (see WORKLOADS.md).

(a) W1's write path on a local PostgreSQL server (started here, default durability: fsync and
synchronous commit on) with ``PostgresEventStore``, and LangGraph's ``PostgresSaver`` on the same
server in the same command (``benchmarks/langgraph_w8.py`` in a subprocess, with
``AGENTCORE_LANGGRAPH_PATH`` on its ``PYTHONPATH``). Bytes are ``pg_total_relation_size`` of each
side's tables after ``VACUUM``.

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
from w1_persistence import T0, ms, plan_steps, step_event  # noqa: E402

from agentcore.core.events import RunStarted, ToolFinished  # noqa: E402
from agentcore.core.plans import Plan  # noqa: E402
from agentcore.storage.postgres.store import PostgresEventStore  # noqa: E402
from tests.support.postgres import LocalPostgres  # noqa: E402

DEFAULT_N = 1000
RUNS = int(os.environ.get("AGENTCORE_W8_RUNS", "400"))
OUR_TABLES = ("runs", "events", "snapshots", "artifacts", "queue", "agentcore_migrations")


def table_bytes(url: str, tables: tuple[str, ...]) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM")
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.relname = ANY(%s) AND c.relkind = 'r'",
            (list(tables),),
        ).fetchone()
    return int(row[0] or 0) if row else 0


def w1_on_postgres(url: str, n: int) -> dict[str, float]:
    store = PostgresEventStore(url)
    run = store.create_run("w8", run_id="w8")
    store.append(run, [RunStarted(run_id=run, seq=1, at=T0, task="w8", plan=Plan(steps=plan_steps(0)))], 0)
    per_step = []
    for step in range(1, n + 1):
        t = time.perf_counter()
        store.append(run, [step_event(run, step)], step)
        per_step.append(time.perf_counter() - t)
    store.close()
    fresh = PostgresEventStore(url)
    t = time.perf_counter()
    latest = fresh.state_at(run)
    state_latest = time.perf_counter() - t
    assert len(latest.known_facts) == n
    t = time.perf_counter()
    headers = list(fresh.history(run))
    history = time.perf_counter() - t
    assert len(headers) == n + 1
    fresh.close()
    per_step.sort()
    return {
        "pg_per_step_ms_median": ms(statistics.median(per_step)),
        "pg_per_step_ms_p95": ms(per_step[int(0.95 * (len(per_step) - 1))]),
        "pg_db_bytes": table_bytes(url, OUR_TABLES),
        "pg_state_latest_ms": ms(state_latest),
        "pg_history_ms": ms(history),
    }


def part_a(server: LocalPostgres, n: int, repeat: int) -> dict[str, Any]:
    runs = [w1_on_postgres(server.create_database(f"w8a_{r}"), n) for r in range(repeat)]
    out: dict[str, Any] = {k: round(statistics.median(x[k] for x in runs), 4) for k in runs[0]}
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
        out["langgraph"] = {"skipped": f"the LangGraph harness failed: {done.stderr.strip()[-500:]}"}
        return out
    base = json.loads(done.stdout)
    if "skipped" in base:
        out["langgraph"] = base
        return out
    out.update({k: v for k, v in base.items() if k.startswith("lg_")})
    out["langgraph"] = {k: v for k, v in base.items() if not k.startswith("lg_")}
    out["vs_langgraph"] = {
        "x_faster_per_step": round(base["lg_pg_per_step_ms_median"] / out["pg_per_step_ms_median"], 1),
        "x_smaller": round(base["lg_pg_db_bytes"] / out["pg_db_bytes"], 1),
        "x_faster_history": round(base["lg_pg_history_ms"] / out["pg_history_ms"], 1),
        "x_faster_state_latest": round(base["lg_pg_state_latest_ms"] / out["pg_state_latest_ms"], 2),
    }
    return out


def worker(url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    cmd = [sys.executable, "-m", "agentcore", "worker", "--db", url, "--app", "queue_bench_app:build", "--lease", "2",
           "--heartbeat", "0.5", "--poll", "1", "--exit-when-idle", "--json"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=str(HERE.parent), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def drain(server: LocalPostgres, k: int, tmp: Path, kills: int = 0) -> dict[str, Any]:
    """Queue ``RUNS`` runs, start ``k`` workers (killing ``kills`` of them on the way), wait for the end."""
    url = server.create_database(f"w8b_{k}_{kills}")
    effects = tmp / f"effects-{k}-{kills}"
    with PostgresEventStore(url) as store:
        ids = [store.submit("w8", spec={"effects": str(effects), "wait_s": 0.05}) for _ in range(RUNS)]
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
        statuses = collections.Counter(store.run(r).status for r in ids)
        duplicates = 0
        for rid in ids:
            counts = collections.Counter(e.call_id for e in store.read(rid) if isinstance(e, ToolFinished))
            duplicates += sum(c - 1 for c in counts.values())
    return {
        "runs_per_s": round(RUNS / seconds, 2),
        "lost": RUNS - statuses["succeeded"],
        "duplicates": duplicates,
        "takeover_s": [round(t, 2) for t in takeovers],
    }


def part_b(server: LocalPostgres) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": RUNS}
    with tempfile.TemporaryDirectory(prefix="agentcore-w8-") as tmp:
        os.chmod(tmp, 0o777)
        for k in (1, 2, 4, 8):
            got = drain(server, k, Path(tmp))
            out[f"runs_per_s_{k}"] = got["runs_per_s"]
            assert got["lost"] == 0 and got["duplicates"] == 0, got
        out["scaling_efficiency_8"] = round(out["runs_per_s_8"] / (8 * out["runs_per_s_1"]), 2)
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
        out.update(part_a(server, n, repeat))
        if os.environ.get("AGENTCORE_W8_SKIP_WORKERS") != "1":
            out.update(part_b(server))
    return out
