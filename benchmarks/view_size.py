"""Run view size and render time for provenance chains (issue 17 item 8).

``python benchmarks/view_size.py [N ...] [--repeat 3]`` prints one JSON object: for each N, a run
of N ``StatePatched`` events each caused by the one before (50 fact keys superseding each other),
the bytes of ``render_html`` and the median seconds to render it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from agentcore.core.events import RunFinished, RunStarted, StatePatched
from agentcore.core.patches import AppendKnownFacts, FactInput
from agentcore.inspection.html import render_html
from agentcore.storage.memory import MemoryEventStore


def chain(n: int) -> MemoryEventStore:
    store = MemoryEventStore()
    store.create_run("chain", run_id="c")
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    events: list[Any] = [RunStarted(run_id="c", seq=1, at=t0, task="chain")]
    for i in range(n):
        fact = FactInput(key=f"fact{i % 50}", value=f"value {i}", source="model")
        at = t0 + timedelta(seconds=i + 1)
        events.append(
            StatePatched(run_id="c", seq=i + 2, at=at, caused_by=i + 1, ops=(AppendKnownFacts(facts=(fact,)),))
        )
    events.append(RunFinished(run_id="c", seq=n + 2, at=t0 + timedelta(seconds=n + 2), status="succeeded", reply="ok"))
    store.append("c", events, 0)
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[250, 500, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, Any] = {"workload": "view_size", "repeat": args.repeat, "runs": {}}
    for n in args.sizes:
        store = chain(n)
        times, size = [], 0
        for _ in range(args.repeat):
            start = time.perf_counter()
            size = len(render_html(store, "c").encode())
            times.append(time.perf_counter() - start)
        out["runs"][str(n)] = {
            "bytes": size,
            "bytes_per_event": round(size / (n + 2)),
            "render_s": statistics.median(times),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
