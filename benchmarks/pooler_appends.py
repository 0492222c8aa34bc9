"""What an append costs behind PgBouncer in transaction mode, where nothing may be prepared.

One ``PostgresEventStore`` per setting appends one ``StatePatched`` event at a time to its own run
on one throwaway server (``tests.support.postgres``: fsync off, so the statements' CPU shows, not
the disk): straight to the server with and without prepared statements, through PgBouncer in
transaction mode without them (``prepared_statements=False``: the only way there), and through
PgBouncer in session mode with them. The settings take turns in ``ROUNDS`` rounds of ``N`` appends
(the first round is warm-up); the median and 90th percentile of each are printed, in ms.

Run: ``python benchmarks/pooler_appends.py`` (needs the PostgreSQL server binaries and ``pgbouncer``).
Measured on the shared 2-core machine (other work running, load average 1.7-2.7), PgBouncer 1.18,
PostgreSQL 15, six runs, medians: direct prepared 0.69-1.03 ms, direct unprepared 1.06-1.67,
transaction mode unprepared 1.03-1.69, session mode prepared (five runs) 0.69-1.19. Transaction
mode costs +30-64 % (typically ~+50 %) per append over direct prepared, +14-50 % over session mode.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentcore.storage.postgres.store import PostgresEventStore
from tests.storage.test_store import fact, started
from tests.support.pgbouncer import LocalPgBouncer
from tests.support.postgres import LocalPostgres

ROUNDS, N = 5, 300


def main() -> None:
    with (
        LocalPostgres() as server,
        LocalPgBouncer(server, pool_size=2) as transaction,
        LocalPgBouncer(server, pool_size=8, pool_mode="session") as session,
    ):
        direct = server.create_database("appends")
        settings = {
            "direct, prepared": (direct, True),
            "direct, unprepared": (direct, False),
            "pgbouncer transaction mode, unprepared": (transaction.url(direct), False),
            "pgbouncer session mode, prepared": (session.url(direct), True),
        }
        stores = {k: PostgresEventStore(url, prepared_statements=p) for k, (url, p) in settings.items()}
        runs = {k: s.create_run("appends") for k, s in stores.items()}
        last = dict.fromkeys(stores, 1)
        times: dict[str, list[float]] = {k: [] for k in stores}
        for k, s in stores.items():
            s.append(runs[k], [started(runs[k])], 0)
        for _ in range(ROUNDS):
            for k, s in stores.items():
                run = runs[k]
                for _ in range(N):
                    seq = last[k] + 1
                    t = time.perf_counter()
                    s.append(run, [fact(run, seq)], seq - 1)
                    times[k].append(time.perf_counter() - t)
                    last[k] = seq
        for k, v in times.items():
            kept = v[N:]  # the first round warms up
            p90 = statistics.quantiles(kept, n=10)[-1]
            print(f"{k:40s} median {statistics.median(kept) * 1000:.3f} ms  p90 {p90 * 1000:.3f} ms  n={len(kept)}")
        for s in stores.values():
            s.close()


if __name__ == "__main__":
    main()
