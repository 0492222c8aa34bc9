"""W3 — time travel: ``state_at(seq)`` on a long run with the default snapshot policy (see WORKLOADS.md).

A run of N events (default 100,000) written as agent steps of five events, one commit per step:
``LLMCalled`` (controller) -> ``Decided`` (one tool call) -> ``ToolStarted`` -> ``ToolFinished``
(payload + artifact ref) -> ``StatePatched`` adding one new fact. The state therefore grows to
N/5 facts. The same events are written twice, with the default snapshot policy and with
snapshots off, to get the write-time overhead of snapshots. ``state_at`` is then timed for 1,000
random seqs on a freshly opened store (no in-process cache), and for a few seqs with the
snapshots deleted, to show what they buy.

Run: ``python benchmarks/run.py W3 [--n 100000] [--repeat 3]``.
"""

from __future__ import annotations

import gc
import hashlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentcore.core.events import (
    ArtifactRef,
    BaseEvent,
    Decided,
    Decision,
    LLMCalled,
    RunStarted,
    StatePatched,
    TokenUsage,
    ToolCall,
    ToolFinished,
    ToolStarted,
)
from agentcore.core.fold import RunState
from agentcore.core.patches import AppendKnownFacts, FactInput
from agentcore.storage.sqlite.store import SQLiteEventStore

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEFAULT_N = 100_000
RUN = "w3"
SAMPLES = 1000
SAMPLES_WITHOUT_SNAPSHOTS = 10
FLOOR_SAMPLES = 50
BOUNDED_KEYS = 1000


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def agent_step(first: int, i: int, distinct_keys: int | None = None) -> list[BaseEvent]:
    """One controller -> tool -> processor step: five events from seq ``first``.

    The fact's key is new at every step, or (with ``distinct_keys``) cycles through that many
    keys, each new fact superseding an older one.
    """
    key = f"handler_{i if distinct_keys is None else i % distinct_keys}"

    def when(k: int) -> datetime:
        return T0 + timedelta(milliseconds=10 * (first + k))

    call = ToolCall(id=f"call_{i:06d}", name="search_code", arguments={"pattern": f"def handler_{i}", "path": "src/"})
    out = ArtifactRef(id=_digest(f"out{i}"), size=4096 + i % 5000, media_type="text/plain")
    return [
        LLMCalled(
            run_id=RUN, seq=first, at=when(0), role="controller", model="gpt-4o-mini",
            request_digest=_digest(f"req{i}"),
            request_artifact=ArtifactRef(id=_digest(f"reqbody{i}"), size=6000, media_type="application/json"),
            response={"tool_calls": [{"name": call.name, "arguments": call.arguments}]},
            usage=TokenUsage(prompt_tokens=1800, completion_tokens=60, total_tokens=1860), latency_ms=840.0,
        ),
        Decided(
            run_id=RUN, seq=first + 1, at=when(1), caused_by=first,
            decision=Decision(kind="tool_calls", tool_calls=(call,), thought=f"look for handler_{i} next"),
        ),
        ToolStarted(run_id=RUN, seq=first + 2, at=when(2), caused_by=first + 1, call=call, idempotency_key=f"{RUN}/{i}/1"),
        ToolFinished(
            run_id=RUN, seq=first + 3, at=when(3), caused_by=first + 2, call_id=call.id, name=call.name, ok=True,
            payload=f"3 matches for 'def handler_{i}': src/app/handlers.py:{i % 900 + 10}, src/legacy/h.py:{i % 70}, "
            f"tests/test_h.py:{i % 40}",
            artifact=out, duration_ms=35.0,
        ),
        StatePatched(
            run_id=RUN, seq=first + 4, at=when(4), caused_by=first + 3,
            ops=(
                AppendKnownFacts(
                    facts=(
                        FactInput(
                            key=key, value=f"handler_{i} is defined in src/app/handlers.py:{i % 900 + 10}",
                            source=call.id, artifact_id=out.id, confidence=0.9,
                        ),
                    )
                ),
            ),
        ),
    ]  # fmt: skip


def build_log(n: int, distinct_keys: int | None = None) -> list[list[BaseEvent]]:
    """The run as commits: a RunStarted, then steps of five events (the last one cut to fit ``n``)."""
    batches: list[list[BaseEvent]] = [[RunStarted(run_id=RUN, seq=1, at=T0, task="map every request handler")]]
    seq, i = 2, 0
    while seq <= n:
        step = agent_step(seq, i, distinct_keys)[: n - seq + 1]
        batches.append(step)
        seq += len(step)
        i += 1
    return batches


def write(path: Path, batches: list[list[BaseEvent]], snapshot_every: int | None) -> tuple[float, float]:
    """Append the whole log, one commit per batch; returns (wall seconds, CPU seconds)."""
    store = SQLiteEventStore(path, snapshot_every=snapshot_every)
    store.create_run("w3", run_id=RUN)
    last = 0
    started, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        last = store.append(RUN, batch, last)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.checkpoint()
    store.close()
    return elapsed, cpu


def ms(seconds: float) -> float:
    return round(seconds * 1000, 4)


def one_run(n: int, folder: Path, batches: list[list[BaseEvent]], plain_first: bool) -> dict[str, Any]:
    default = SQLiteEventStore.__init__.__kwdefaults__["snapshot_every"]
    with_snaps, without = folder / "snapshots.db", folder / "plain.db"
    write(folder / "warmup.db", batches[: len(batches) // 20], default)  # first-use costs out of the way
    if plain_first:
        t_plain, cpu_plain = write(without, batches, None)
        t_snaps, cpu_snaps = write(with_snaps, batches, default)
    else:
        t_snaps, cpu_snaps = write(with_snaps, batches, default)
        t_plain, cpu_plain = write(without, batches, None)

    rng = random.Random(3)
    seqs = [rng.randint(1, n) for _ in range(SAMPLES)]
    store = SQLiteEventStore(with_snaps)
    times, cpu, floor = [], [], []
    for k, seq in enumerate(seqs):
        t, c = time.perf_counter(), time.process_time()
        state = store.state_at(RUN, seq)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        if k < FLOOR_SAMPLES:  # what materialising this state costs at least: validating its JSON
            text = state.model_dump_json()
            gc.disable()
            t = time.perf_counter()
            RunState.model_validate_json(text)
            floor.append(time.perf_counter() - t)
            gc.enable()
    final: RunState = store.state_at(RUN)
    stats = store.snapshot_stats(RUN)
    store.close()

    plain = SQLiteEventStore(without)
    slow = []
    for seq in seqs[:SAMPLES_WITHOUT_SNAPSHOTS]:
        t = time.perf_counter()
        plain.state_at(RUN, seq)
        slow.append(time.perf_counter() - t)
    plain.close()

    times.sort()
    return {
        "state_at_ms_p50": ms(statistics.median(times)),
        "state_at_cpu_ms_p50": ms(statistics.median(cpu)),
        "state_at_ms_p99": ms(times[int(0.99 * (len(times) - 1))]),
        "state_at_ms_max": ms(times[-1]),
        "state_at_ms_p50_without_snapshots": ms(statistics.median(slow)),
        "state_decode_floor_ms_p50": ms(statistics.median(floor)),
        "snapshot_bytes": stats["snapshot_bytes"],
        "snapshots": stats["snapshots"],
        "event_bytes": stats["event_bytes"],
        "snapshot_to_event_bytes": round(stats["snapshot_bytes"] / stats["event_bytes"], 3),
        "db_bytes": with_snaps.stat().st_size,
        "db_bytes_without_snapshots": without.stat().st_size,
        "write_s": round(t_snaps, 3),
        "write_s_without_snapshots": round(t_plain, 3),
        "write_overhead_ratio": round(t_snaps / t_plain, 3),
        "write_cpu_overhead_ratio": round(cpu_snaps / cpu_plain, 3),
        "facts_final": len(final.known_facts),
        "state_json_bytes_final": len(final.model_dump_json()),
    }


def medians(n: int, repeat: int, distinct_keys: int | None) -> dict[str, Any]:
    batches = build_log(n, distinct_keys)
    results = []
    with tempfile.TemporaryDirectory(prefix="agentcore-w3-") as tmp:
        for r in range(repeat):
            folder = Path(tmp) / str(r)
            folder.mkdir()
            results.append(one_run(n, folder, batches, plain_first=r % 2 == 0))
    return {k: statistics.median(x[k] for x in results) for k in results[0]}


def run(n: int | None, repeat: int) -> dict[str, Any]:
    """Medians over ``repeat`` runs: the workload as defined (every fact new, so the state grows to
    n/5 facts), then the same with facts superseding one another over 1,000 keys (``bounded_*``)."""
    n = n or DEFAULT_N
    defaults = SQLiteEventStore.__init__.__kwdefaults__
    out: dict[str, Any] = {
        "workload": "W3",
        "n": n,
        "repeat": repeat,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "snapshot_every": defaults["snapshot_every"],
        "snapshot_ratio": defaults["snapshot_ratio"],
        **medians(n, repeat, None),
    }
    bounded = medians(n, repeat, BOUNDED_KEYS)
    out.update({f"bounded_{k}": v for k, v in bounded.items()})
    return out
