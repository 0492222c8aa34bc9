"""W8 (a) bytes at several N: agentcore's tables and LangGraph's ``PostgresSaver``'s, side by side.

Run: ``AGENTCORE_LANGGRAPH_PATH=DIR python benchmarks/w8_crossover.py N [N ...]`` (DIR holds
``langgraph`` and ``langgraph-checkpoint-postgres``, as for ``run.py W8``). One throwaway server;
for each N, W1 on agentcore (``w8_postgres.w1_on_postgres``) and then ``langgraph_w8.py`` in its
own database, each measured after ``VACUUM`` as W8 measures them. Prints one JSON object per N:
``{"n", "agentcore_bytes", "agentcore_pages", "langgraph_bytes", "x_smaller"}``. Bytes do not
depend on the machine's load, so this can run beside other work (times would not).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from w8_postgres import run_langgraph, w1_on_postgres  # noqa: E402

from tests.support.postgres import LocalPostgres  # noqa: E402


def main(ns: list[int]) -> None:
    with LocalPostgres() as server:
        for n in ns:
            ours = w1_on_postgres(server.create_database(f"crossover_{n}"), n)["pg_db_bytes"]
            lg = run_langgraph(server, n, 1)
            if "skipped" in lg:
                raise RuntimeError(f"the LangGraph harness did not run: {lg['skipped']}")
            theirs = int(lg["lg_pg_db_bytes"])
            row = {"n": n, "agentcore_bytes": ours, "agentcore_pages": ours // 8192, "langgraph_bytes": theirs,
                   "x_smaller": round(theirs / ours, 1)}  # fmt: skip
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 1100, 1200, 1500])
