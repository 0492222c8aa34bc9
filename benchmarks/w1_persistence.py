"""W1 — step persistence: the agent loop's write path (see WORKLOADS.md).

One run of N steps in a file-backed SQLite store. Each step appends one ``StatePatched`` event
that adds one fact of about 190 bytes; every 10th step's event also replaces the 10-step plan
(about 1.2 KB). One commit per step, as a live agent does. Timed per step: building the event,
encoding it and the committed ``append`` (snapshots included). Reads (median of 5, each after
``gc.collect()``, wall and CPU time) go through one store opened for them, as LangGraph's go through
its open connection: ``state_at`` keeps no state between calls, so only SQLite's page cache is
reused; ``*_fresh_store_*`` opens a new store for each read instead.

Run: ``python benchmarks/run.py W1 [--n 1000] [--repeat 3]``.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentcore.core.events import RunStarted, StatePatched
from agentcore.core.patches import AppendKnownFacts, FactInput, ReplacePlan
from agentcore.core.plans import Plan, Step
from agentcore.storage.sqlite.store import SQLiteEventStore

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEFAULT_N = 1000
LANGGRAPH_MAX_N = 3000


def plan_steps(version: int) -> tuple[Step, ...]:
    """A 10-step chain, about 1.2 KB of JSON."""
    return tuple(
        Step(
            id=f"v{version}s{j}",
            description=f"step {j}: inspect module {j}",
            after=(f"v{version}s{j - 1}",) if j else (),
        )
        for j in range(10)
    )


def step_event(run: str, step: int) -> StatePatched:
    """Step ``step`` (1-based) at seq ``step + 1``: one fact, and every 10th step a new plan."""
    fact = FactInput(
        key=f"fact-{step:06d}",
        value=f"parse_config() returns None: cfg.py:{step}",
        source=f"call_{step:06d}",
        artifact_id="sha256:" + f"{step:064x}",
        confidence=0.9,
    )
    ops: list[Any] = [AppendKnownFacts(facts=(fact,))]
    if step % 10 == 0:
        ops.append(ReplacePlan(steps=plan_steps(step // 10)))
    seq = step + 1
    return StatePatched(run_id=run, seq=seq, at=T0 + timedelta(milliseconds=seq), ops=tuple(ops), caused_by=seq - 1)


READS = 21  # odd, and enough that one slow read (a GC pause, another process) does not move the median
"""Reads per state measurement (the median is reported)."""


def timed_reads(path: Path, durability: str, read: Any, facts: int, *, fresh: bool = False) -> tuple[float, float]:
    """Median wall and CPU seconds of ``read(store)`` over ``READS`` reads, each after ``gc.collect()``.

    As the LangGraph harness reads through its one open connection, the reads go through one store
    opened (outside the timing) for them: ``state_at`` keeps no state in memory between calls (only
    appends made by the same store do), so what is reused is SQLite's page cache, as on LangGraph's
    side. With ``fresh`` each read gets a newly opened store instead (a new process's first read).
    """
    wall, cpu = [], []
    store = SQLiteEventStore(path, durability=durability)  # type: ignore[arg-type]
    for _ in range(READS):
        if fresh:
            store.close()
            store = SQLiteEventStore(path, durability=durability)  # type: ignore[arg-type]
        gc.collect()
        t, c = time.perf_counter(), time.process_time()
        state = read(store)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        assert len(state.known_facts) == facts
    store.close()
    return statistics.median(wall), statistics.median(cpu)


def every_value(state: Any) -> Any:
    """``state`` after reading the value of every fact (a loaded state decodes them on first read)."""
    for fact in state.known_facts.values():
        assert fact.key
    return state


def file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.iterdir() if p.name.startswith(path.name))


def ms(seconds: float) -> float:
    return round(seconds * 1000, 4)


def one_run(n: int, durability: str, folder: Path) -> dict[str, float]:
    """One full W1 run on a new file; returns the measurements."""
    path = folder / f"w1-{durability}-{n}.db"
    store = SQLiteEventStore(path, durability=durability)  # type: ignore[arg-type]
    run = store.create_run("w1", run_id="w1")
    store.append(run, [RunStarted(run_id=run, seq=1, at=T0, task="w1", plan=Plan(steps=plan_steps(0)))], 0)
    per_step: list[float] = []
    half_bytes = 0
    started = time.perf_counter()
    for step in range(1, n + 1):
        t = time.perf_counter()
        store.append(run, [step_event(run, step)], step)
        per_step.append(time.perf_counter() - t)
        if step == n // 2:
            pause = time.perf_counter()
            store.checkpoint()
            half_bytes = file_bytes(path)
            started += time.perf_counter() - pause  # the checkpoint is not part of the write path
    total = time.perf_counter() - started
    store.checkpoint()
    db_bytes = file_bytes(path)
    stats = store.snapshot_stats(run)
    store.close()

    state_latest, latest_cpu = timed_reads(path, durability, lambda s: s.state_at(run), n)
    latest_fresh, latest_fresh_cpu = timed_reads(path, durability, lambda s: s.state_at(run), n, fresh=True)
    # the same load, then every fact's value read: what a reader of all facts pays (they decode on first read)
    all_facts, all_facts_cpu = timed_reads(path, durability, lambda s: every_value(s.state_at(run)), n)
    state_mid, mid_cpu = timed_reads(path, durability, lambda s: s.state_at(run, n // 2), n // 2 - 1)
    fresh = SQLiteEventStore(path, durability=durability)  # type: ignore[arg-type]
    t = time.perf_counter()
    headers = list(fresh.history(run))
    history = time.perf_counter() - t
    assert len(headers) == n + 1
    t = time.perf_counter()
    decoded = list(fresh.read(run))
    history_decoded = time.perf_counter() - t
    assert len(decoded) == n + 1
    fresh.close()

    ordered = sorted(per_step)
    tenth = max(1, n // 10)
    return {
        "per_step_ms_median": ms(statistics.median(ordered)),
        "per_step_ms_p95": ms(ordered[int(0.95 * (len(ordered) - 1))]),
        "total_s": round(total, 4),
        "db_bytes": db_bytes,
        "state_latest_ms": ms(state_latest),
        "state_mid_ms": ms(state_mid),
        "state_latest_cpu_ms": ms(latest_cpu),
        "state_latest_fresh_store_ms": ms(latest_fresh),
        "state_latest_fresh_store_cpu_ms": ms(latest_fresh_cpu),
        "state_latest_all_facts_ms": ms(all_facts),
        "state_latest_all_facts_cpu_ms": ms(all_facts_cpu),
        "state_mid_cpu_ms": ms(mid_cpu),
        "history_ms": ms(history),
        "history_decoded_ms": ms(history_decoded),
        "per_step_ms_first10pct": ms(statistics.median(per_step[:tenth])),
        "per_step_ms_last10pct": ms(statistics.median(per_step[-tenth:])),
        "bytes_per_step": round(db_bytes / n, 1),
        "bytes_per_step_first_half": round(half_bytes / (n // 2), 1) if n >= 2 else 0.0,
        "bytes_per_step_second_half": round((db_bytes - half_bytes) / (n - n // 2), 1),
        "event_bytes": stats["event_bytes"],
        "snapshot_bytes": stats["snapshot_bytes"],
        "snapshots": stats["snapshots"],
    }


def run(n: int | None, repeat: int) -> dict[str, Any]:
    """Medians over ``repeat`` runs, for the default durability (``full``) and for ``normal``."""
    n = n or DEFAULT_N
    out: dict[str, Any] = {"workload": "W1", "n": n, "repeat": repeat, **machine()}
    with tempfile.TemporaryDirectory(prefix="agentcore-w1-") as tmp:
        one_run(100, "full", Path(tmp))  # first-use costs out of the way
        out["fsync_ms_before"] = fsync_ms(Path(tmp))
        for durability in ("full", "normal"):
            runs = []
            for r in range(repeat):
                folder = Path(tmp) / f"{durability}-{r}"
                folder.mkdir()
                runs.append(one_run(n, durability, folder))
            med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
            if durability == "full":
                out.update(med)
            else:
                out.update({f"{k}_normal": v for k, v in med.items() if k.startswith(("per_step", "total"))})
        out["fsync_ms_after"] = fsync_ms(Path(tmp))
    out.update(langgraph(n, repeat, out))
    return out


def langgraph(n: int, repeat: int, ours: dict[str, Any]) -> dict[str, Any]:
    """The LangGraph baseline in a subprocess (its own dependencies), with our ratios to it.

    ``AGENTCORE_LANGGRAPH_PATH`` (a ``pip install --target`` directory) is put on the subprocess's
    ``PYTHONPATH`` only, so LangGraph's pins never change the versions agentcore is measured with.
    """
    if n > LANGGRAPH_MAX_N:
        return {"langgraph": {"skipped": f"n > {LANGGRAPH_MAX_N}: its database grows with n^2 (2.4 GB at n=3000)"}}
    env = dict(os.environ)
    extra = os.environ.get("AGENTCORE_LANGGRAPH_PATH")
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, env.get("PYTHONPATH")) if p)
    script = Path(__file__).resolve().parent / "langgraph_w1.py"
    done = subprocess.run(
        [sys.executable, str(script), "--n", str(n), "--repeat", str(repeat)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return {"langgraph": {"skipped": f"the LangGraph harness failed: {done.stderr.strip()[-500:]}"}}
    base = json.loads(done.stdout)
    if "skipped" in base:
        return {"langgraph": base}
    ratios = {
        f"x_faster_{k}": round(base[k] / ours[k], 1)
        for k in (
            "per_step_ms_median",
            "state_latest_ms",
            "state_mid_ms",
            "state_latest_cpu_ms",
            "state_mid_cpu_ms",
            "history_ms",
        )
        if ours.get(k)
    }
    ratios["x_smaller_db_bytes"] = round(base["db_bytes"] / ours["db_bytes"], 1)
    # issue 13's form: our latest-state load as a fraction of LangGraph's get_state (target <= 0.5);
    # "all_facts": ours with every fact's value read too (LangGraph's get_state builds them all)
    for mine, theirs in (
        ("state_latest_ms", "state_latest_ms"),
        ("state_latest_cpu_ms", "state_latest_cpu_ms"),
        ("state_latest_fresh_store_cpu_ms", "state_latest_cpu_ms"),
        ("state_latest_all_facts_ms", "state_latest_ms"),
        ("state_latest_all_facts_cpu_ms", "state_latest_cpu_ms"),
    ):
        if base.get(theirs):
            ratios[f"of_langgraph_{mine}"] = round(ours[mine] / base[theirs], 3)
    return {"langgraph": base, "vs_langgraph": ratios}


def fsync_ms(folder: Path, count: int = 200) -> float:
    """Median latency of a 400-byte write + fsync in ``folder``: how busy the disk is right now."""
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    times = []
    try:
        for _ in range(count):
            t = time.perf_counter()
            os.write(fd, b"x" * 400)
            os.fsync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        path.unlink()
    return ms(statistics.median(times))


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "durability": "full",
    }
