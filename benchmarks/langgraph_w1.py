"""W1 on LangGraph (optional baseline): the same state evolution through ``SqliteSaver``.

A one-node ``StateGraph`` whose state is ``{plan, known_facts, step}``; each ``invoke`` on one
thread is one step: it appends one ~190-byte fact and every 10th step replaces the 10-step plan.
Measured as W1 measures agentcore: per-step time, database bytes after a WAL checkpoint, latest
and mid-run state, and the whole history listing.

Needs ``langgraph`` and ``langgraph-checkpoint-sqlite`` importable (for example installed with
``pip install --target DIR`` and ``PYTHONPATH=DIR``); without them it prints ``{"skipped": ...}``.
Run on its own: ``python benchmarks/langgraph_w1.py --n 1000 --repeat 3``; ``benchmarks/run.py W1``
runs it in a subprocess when it is available.
"""

from __future__ import annotations

import argparse
import gc
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict


def plan(version: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"v{version}s{j}",
            "description": f"step {j}: inspect module {j}",
            "after": [f"v{version}s{j - 1}"] if j else [],
        }
        for j in range(10)
    ]


def fact(step: int) -> dict[str, Any]:
    return {
        "key": f"fact-{step:06d}",
        "value": f"parse_config() returns None: cfg.py:{step}",
        "source": f"call_{step:06d}",
        "artifact_id": "sha256:" + f"{step:064x}",
        "confidence": 0.9,
    }


def one_run(n: int, folder: Path) -> dict[str, float]:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        plan: list[dict[str, Any]]
        known_facts: list[dict[str, Any]]
        step: int

    def node(state: State) -> dict[str, Any]:
        step = state["step"] + 1
        update: dict[str, Any] = {"known_facts": [*state["known_facts"], fact(step)], "step": step}
        if step % 10 == 0:
            update["plan"] = plan(step // 10)
        return update

    builder = StateGraph(State)
    builder.add_node("step", node)
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    path = folder / "langgraph.db"
    conn = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(conn)
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "w1"}}
    per_step = []
    started = time.perf_counter()
    for i in range(n):  # the first invoke brings the initial plan; each runs the node once
        t = time.perf_counter()
        graph.invoke({"plan": plan(0), "known_facts": [], "step": 0} if i == 0 else {}, config)
        per_step.append(time.perf_counter() - t)
    total = time.perf_counter() - started
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db_bytes = sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("langgraph.db"))

    state_latest, latest_cpu = timed_reads(lambda: graph.get_state(config), n)
    t = time.perf_counter()
    history = list(graph.get_state_history(config))
    history_s = time.perf_counter() - t
    mid = history[len(history) // 2].config
    state_mid, mid_cpu = timed_reads(lambda: graph.get_state(mid), None)
    conn.close()
    per_step.sort()
    return {
        "per_step_ms_median": statistics.median(per_step) * 1000,
        "per_step_ms_p95": per_step[int(0.95 * (len(per_step) - 1))] * 1000,
        "total_s": total,
        "db_bytes": db_bytes,
        "state_latest_ms": state_latest * 1000,
        "state_mid_ms": state_mid * 1000,
        "state_latest_cpu_ms": latest_cpu * 1000,
        "state_mid_cpu_ms": mid_cpu * 1000,
        "history_ms": history_s * 1000,
    }


def timed_reads(read: Any, facts: int | None, reads: int = 21) -> tuple[float, float]:
    """Median wall and CPU seconds of ``read()`` over ``reads`` calls, each after ``gc.collect()``
    (as agentcore's W1 reads are timed; ``SqliteSaver`` keeps no cache between calls)."""
    wall, cpu = [], []
    for _ in range(reads):
        gc.collect()
        t, c = time.perf_counter(), time.process_time()
        got = read()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        assert facts is None or len(got.values["known_facts"]) == facts
    return statistics.median(wall), statistics.median(cpu)


def run(n: int, repeat: int) -> dict[str, Any]:
    try:
        from importlib.metadata import version

        import langgraph  # noqa: F401
        from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: F401
    except ImportError as e:
        return {"skipped": f"langgraph is not installed ({e}); pip install langgraph langgraph-checkpoint-sqlite"}
    results = []
    with tempfile.TemporaryDirectory(prefix="agentcore-lg-") as tmp:
        for r in range(repeat):
            folder = Path(tmp) / str(r)
            folder.mkdir()
            results.append(one_run(n, folder))
    med = {k: round(statistics.median(x[k] for x in results), 4) for k in results[0]}
    return {
        "langgraph": version("langgraph"),
        "langgraph_checkpoint_sqlite": version("langgraph-checkpoint-sqlite"),
        "n": n,
        "repeat": repeat,
        **med,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.repeat), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
