"""W6 — traces: export, import and offline replay of a 1,000-step recorded run.

The run is recorded by ``agentcore.testing.demo_agent`` (scripted controller, function processor,
one ``lookup`` tool) into a file-backed SQLite store: each step is a controller call, a tool call
and a processor patch that adds one fact (about 6 events and 2 request-body artifacts per step).

- ``export_ms``: ``export_run`` of the whole run to a ``.jsonl`` trace.
- ``trace_bytes``: the trace's size.
- ``import_ms``: ``import_trace`` into a fresh SQLite file (read, verify every hash, fold-check, write).
- ``replay_ms``: ``replay_trace`` offline (models and tools from the trace) into a memory store,
  including reading the trace and comparing every event.

Also reported: ``record_ms`` (the live scripted run), ``events``, ``artifacts``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agentcore.replay.replayer import replay_trace
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import export_run, import_trace, read_trace
from agentcore.testing import demo_agent

DEFAULT_N = 1000


def _once(n: int, work: Path) -> dict[str, Any]:
    table = {f"key{i:05d}": f"value number {i} " + "x" * (i % 50) for i in range(n)}
    src_path = work / "src.db"
    with SQLiteEventStore(src_path) as store:
        t0 = time.perf_counter()
        result = asyncio.run(demo_agent(table, store=store).run(f"Look up {n} keys", run_id="w6"))
        record_ms = (time.perf_counter() - t0) * 1000
        assert result.status == "succeeded", result.reason
        trace = work / "w6.jsonl"
        t0 = time.perf_counter()
        recorded = export_run(store, "w6", trace)
        export_ms = (time.perf_counter() - t0) * 1000
    with SQLiteEventStore(work / "dst.db") as target:
        t0 = time.perf_counter()
        import_trace(target, trace)
        import_ms = (time.perf_counter() - t0) * 1000
        assert target.last_seq("w6") == recorded["events"]
    t0 = time.perf_counter()
    report = replay_trace(read_trace(trace))
    replay_ms = (time.perf_counter() - t0) * 1000
    assert report.ok, report.describe()
    return {
        "export_ms": export_ms,
        "trace_bytes": trace.stat().st_size,
        "import_ms": import_ms,
        "replay_ms": replay_ms,
        "record_ms": record_ms,
        "events": recorded["events"],
        "artifacts": recorded["artifacts"],
    }


def run(n: int | None, repeat: int) -> dict[str, Any]:
    """Median of ``repeat`` runs of the workload with ``n`` steps (1,000 by default)."""
    n = n or DEFAULT_N
    runs = []
    for _ in range(max(1, repeat)):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(_once(n, Path(tmp)))
    out: dict[str, Any] = {"workload": "W6", "n": n, "repeat": len(runs)}
    for key in runs[0]:
        out[key] = round(statistics.median(r[key] for r in runs), 2)
    return out
