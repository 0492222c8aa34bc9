"""Where each 8 KB page of W8 (a) goes: W1 on a throwaway PostgreSQL server, then every relation of
agentcore's tables by fork (main, free-space map, visibility map) and the rows of ``run_log`` page by
page, after ``VACUUM`` (as ``w8_postgres.table_bytes`` measures them).

Run: ``python benchmarks/w8_pages.py [N]`` (N steps, 1,000 by default). Prints one line per relation
(``table  relation  main/fsm/vm pages``), then per heap page of ``run_log`` its rows as
``kind seq..last_seq stored-bytes`` (``e`` a sealed event segment, ``s`` a snapshot); a page with
fewer bytes than its neighbours held rows that were deleted (thinned snapshots) and are not reused
before the next ``VACUUM`` records the free space.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402
from w8_postgres import w1_on_postgres  # noqa: E402

from tests.support.postgres import LocalPostgres  # noqa: E402

FORKS = """
SELECT c.relname, k.what, pg_relation_size(k.oid, 'main') / 8192, pg_relation_size(k.oid, 'fsm') / 8192,
       pg_relation_size(k.oid, 'vm') / 8192
FROM pg_class c JOIN LATERAL (
    SELECT c.oid, c.relname::text UNION ALL SELECT c.reltoastrelid, 'toast' WHERE c.reltoastrelid <> 0
    UNION ALL SELECT i.indexrelid, i.indexrelid::regclass::text FROM pg_index i WHERE i.indrelid = c.oid
    UNION ALL SELECT t.indexrelid, 'toast index' FROM pg_index t WHERE c.reltoastrelid <> 0 AND t.indrelid = c.reltoastrelid
) AS k(oid, what) ON true
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' ORDER BY 1, 2"""

ROWS = """SELECT (ctid::text::point)[0]::int, kind, seq, last_seq, COALESCE(pg_column_size(body), pg_column_size(state))
FROM run_log ORDER BY 1, ctid"""


def report(url: str) -> list[str]:
    """The lines described in the module docstring, for the database at ``url`` (already vacuumed)."""
    lines = []
    with psycopg.connect(url) as conn:
        for table, what, main, fsm, vm in conn.execute(FORKS):  # type: ignore[arg-type]
            lines.append(f"{table:10} {what:26} main {main:3} fsm {fsm} vm {vm}")
        pages: dict[int, list[str]] = defaultdict(list)
        for page, kind, seq, last, size in conn.execute(ROWS):  # type: ignore[arg-type]
            pages[page].append(f"{kind} {seq}..{last} {size} B")
    lines += [f"run_log page {p:3}: " + ", ".join(rows) for p, rows in sorted(pages.items())]
    return lines


def main(n: int) -> None:
    with LocalPostgres() as server:
        url = server.create_database("w8_pages")
        out = w1_on_postgres(url, n)  # ends with VACUUM
        print(f"N={n}: {out['pg_db_bytes']:,} bytes = {out['pg_db_bytes'] // 8192} pages")
        print("\n".join(report(url)))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
