"""W8 (a) bytes against snapshot policies on PostgreSQL: is a snapshot policy without holes worth it?

The store thins a run's snapshots as it writes them (one per power-of-two range of seqs, the newest:
``postgres.segments.write_snapshot``); each thinned snapshot leaves a hole in ``run_log`` that only
``VACUUM``'s free-space map lets a later row reuse. This runs W1 (as ``w8_postgres.w1_on_postgres``)
on a throwaway server under each policy, with the store's defaults otherwise (a snapshot at least
every 100 events), and prints pages after ``VACUUM``, ``run_log``'s heap pages, the latest state
(median of ``READS`` reads, each through a newly opened store) and time travel (median of 7):

- ``thinned``: the store as it is.
- ``kept``: no snapshot is ever deleted (no holes; every snapshot's bytes stay).
- ``doubling``: a snapshot only where its seq is at least twice the newest one's (100, 200, 400,
  800, ...): one per power-of-two range by construction, so nothing is deleted, but the latest state
  folds up to half the log.
- ``none``: no snapshots (the floor of the layout's bytes; every read folds from the start).
- ``thinned, 2 runs`` and ``kept, 2 runs``: two W1 runs in one database, ``VACUUM`` between them
  (as autovacuum would do in a database that lives on): the second run's rows fill the first run's
  holes (and leave their own), so what a run adds is its pages without the holes.

Run: ``python benchmarks/w8_snapshot_policies.py [N]`` (1,000 by default).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402
from w1_persistence import READS, T0, ms, plan_steps, step_event  # noqa: E402
from w8_postgres import table_bytes  # noqa: E402

from agentcore.core.events import RunStarted  # noqa: E402
from agentcore.core.plans import Plan  # noqa: E402
from agentcore.storage.postgres import segments  # noqa: E402
from agentcore.storage.postgres import store as pg_store  # noqa: E402
from agentcore.storage.postgres.store import PostgresEventStore  # noqa: E402
from tests.support.postgres import LocalPostgres  # noqa: E402

Writer = Callable[[Any, str, int, str, Any], None]


def kept(conn: Any, run_id: str, seq: int, encoding: str, data: Any) -> None:
    conn.execute(
        "INSERT INTO run_log (run_id, kind, seq, last_seq, encoding, state) VALUES (%s, 's', %s, %s, %s, %s)",
        (run_id, seq, seq, encoding, data),
    )


def doubling(conn: Any, run_id: str, seq: int, encoding: str, data: Any) -> None:
    row = conn.execute("SELECT max(seq) FROM run_log WHERE run_id = %s AND kind = 's'", (run_id,)).fetchone()
    if row is None or row[0] is None or seq >= 2 * row[0]:
        kept(conn, run_id, seq, encoding, data)


def none(conn: Any, run_id: str, seq: int, encoding: str, data: Any) -> None:
    """No snapshot at all: the floor of the layout (every read folds the log from its start)."""


def w1(url: str, run: str, n: int) -> None:
    with PostgresEventStore(url) as store:
        store.create_run("w8", run_id=run)
        store.append(run, [RunStarted(run_id=run, seq=1, at=T0, task="w8", plan=Plan(steps=plan_steps(0)))], 0)
        for step in range(1, n + 1):
            store.append(run, [step_event(run, step)], step)


def median_ms(url: str, run: str, seq: int | None, reads: int) -> float:
    times = []
    for _ in range(reads):
        with PostgresEventStore(url) as fresh:
            t = time.perf_counter()
            fresh.state_at(run, seq)
            times.append(time.perf_counter() - t)
    return ms(statistics.median(times))


def measure(server: LocalPostgres, name: str, writer: Writer, n: int, runs: int = 1) -> dict[str, Any]:
    url = server.create_database(name.replace(",", "").replace(" ", "_"))
    original = pg_store.write_snapshot
    pg_store.write_snapshot = writer  # type: ignore[assignment]
    try:
        for i in range(runs):
            if i:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("VACUUM")
            w1(url, f"w8_{i}", n)
    finally:
        pg_store.write_snapshot = original  # type: ignore[assignment]
    total, _ = table_bytes(url)  # VACUUMs first
    with psycopg.connect(url) as conn:
        heap = conn.execute("SELECT pg_relation_size('run_log') / 8192").fetchone()
        snaps = conn.execute("SELECT count(*), sum(pg_column_size(state)) FROM run_log WHERE kind = 's'").fetchone()
    assert heap is not None and snaps is not None
    return {
        "policy": name,
        "pages": total // 8192,
        "run_log_heap_pages": heap[0],
        "snapshots": f"{snaps[0]} ({(snaps[1] or 0) / 1024:.1f} KB)",
        "latest_ms": median_ms(url, "w8_0", None, READS),
        "mid_ms": median_ms(url, "w8_0", n // 2, 7),
        "three_quarters_ms": median_ms(url, "w8_0", 3 * n // 4, 7),
    }


def main(n: int) -> None:
    policies: list[tuple[str, Writer, int]] = [
        ("thinned", segments.write_snapshot, 1),
        ("kept", kept, 1),
        ("doubling", doubling, 1),
        ("none", none, 1),
        ("thinned, 2 runs", segments.write_snapshot, 2),
        ("kept, 2 runs", kept, 2),
    ]
    with LocalPostgres() as server:
        for name, writer, runs in policies:
            print(measure(server, name, writer, n, runs), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
