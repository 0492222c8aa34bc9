"""W8 (a) on LangGraph (optional baseline): W1's state evolution through ``PostgresSaver``.

The same one-node graph as ``langgraph_w1.py`` (one ``invoke`` per step on one thread), checkpointed
by langgraph-checkpoint-postgres into its own database on the server W8 started. Measured as W8
measures agentcore: per-step time, ``pg_total_relation_size`` of its tables after ``VACUUM``, the
latest state (the median of 21 reads) and the whole history listing, in that order.

The listing runs last and under a cap on the process's address space (``MEMORY_SHARE`` of the
machine's memory): ``get_state_history`` has ``PostgresSaver.list`` fetch every checkpoint with its
blobs in one result and keeps them all, which at N = 10,000 is about 10 GB of facts; without the
cap the kernel's OOM killer ended the process and every figure with it. With the cap the listing
fails with ``MemoryError`` or psycopg's "out of memory for query result": ``lg_pg_history_ms`` is
then ``null``, ``lg_pg_history_failed`` says why, and the other figures stand.

Needs ``langgraph``, ``langgraph-checkpoint-postgres`` and psycopg importable (for example installed
with ``pip install --target DIR`` and ``PYTHONPATH=DIR``); without them it prints ``{"skipped": ...}``.
``python benchmarks/langgraph_w8.py --admin-url URL --n 1000 --repeat 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent))

from langgraph_w1 import fact, plan  # the same state evolution as W1's baseline

READS = 21
"""Latest-state reads per measurement (the median is reported), as in ``w8_postgres``."""
TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations")


MEMORY_SHARE = 0.75
"""The share of the machine's memory the harness may map (``RLIMIT_AS``) while it runs."""


def cap_memory() -> None:
    """Limit the process's address space to ``MEMORY_SHARE`` of physical memory (Linux)."""
    limit = int(MEMORY_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def one_run(n: int, url: str) -> dict[str, Any]:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
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
    with PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
        graph = builder.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "w8"}}
        per_step = []
        for i in range(n):
            t = time.perf_counter()
            graph.invoke({"plan": plan(0), "known_facts": [], "step": 0} if i == 0 else {}, config)
            per_step.append(time.perf_counter() - t)
        reads = []
        for _ in range(READS):  # the median, as on agentcore's side
            t = time.perf_counter()
            latest = graph.get_state(config)
            reads.append(time.perf_counter() - t)
            assert len(latest.values["known_facts"]) == n
        state_latest = statistics.median(reads)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM")
            size = conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.relname = ANY(%s) AND c.relkind = 'r'",
                (list(TABLES),),
            ).fetchone()
        history_ms: float | None = None
        failed = None
        t = time.perf_counter()
        try:
            # only each checkpoint's config is kept, not its state with every fact so far
            history = [snapshot.config for snapshot in graph.get_state_history(config)]
            history_ms = (time.perf_counter() - t) * 1000
            assert len(history) >= n
        except (MemoryError, psycopg.DatabaseError) as e:  # "out of memory for query result"
            failed = f"{type(e).__name__} after {time.perf_counter() - t:.0f} s: {str(e)[:200]}"
    per_step.sort()
    return {
        "lg_pg_per_step_ms_median": statistics.median(per_step) * 1000,
        "lg_pg_per_step_ms_p95": per_step[int(0.95 * (len(per_step) - 1))] * 1000,
        "lg_pg_db_bytes": int(size[0] or 0) if size else 0,
        "lg_pg_state_latest_ms": state_latest * 1000,
        "lg_pg_history_ms": history_ms,
        **({"lg_pg_history_failed": failed} if failed else {}),
    }


def run(n: int, repeat: int, admin_url: str) -> dict[str, Any]:
    try:
        from importlib.metadata import version

        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver  # noqa: F401
    except ImportError as e:
        return {"skipped": f"not installed ({e}); pip install langgraph langgraph-checkpoint-postgres"}
    results = []
    for r in range(repeat):
        name = f"langgraph_w8_{r}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        results.append(one_run(n, admin_url.rsplit("/", 1)[0] + "/" + name))
    med: dict[str, Any] = {
        k: round(statistics.median(x[k] for x in results), 4)
        for k in results[0]
        if all(isinstance(x.get(k), (int, float)) for x in results)
    }
    med.update({k: v for x in results for k, v in x.items() if k not in med})  # a failed listing: null and why
    return {
        "langgraph": version("langgraph"),
        "langgraph_checkpoint_postgres": version("langgraph-checkpoint-postgres"),
        **med,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cap_memory()
    print(json.dumps(run(args.n, args.repeat, args.admin_url), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
