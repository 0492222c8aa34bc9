"""W7 — concurrent runs: 8 OS processes, each driving its own run in one shared SQLite file (see WORKLOADS.md).

What runs: the real ``Agent`` loop on a file-backed ``SQLiteEventStore`` (default durability
``full``, default snapshots), with ``FunctionChatModel`` controller and processor (no LLM latency,
so the store is what is measured) and one cheap in-process tool. One step is one agent loop turn:
the controller decides to call ``work(i)`` (an ``LLMCalled`` + ``Decided`` + ``ToolStarted``
commit), the tool runs (a ``ToolFinished`` commit, its output stored as an artifact), the
processor patches the state (an ``LLMCalled`` + ``StatePatched`` commit): three write transactions
and one artifact per step. The models are stateless: the controller reads the ``progress`` fact
from its prompt, so a run could be resumed after an error and carry on.

- ``steps_per_s``: all steps of all processes / wall time from a common start barrier to the last
  process done.
- ``step_ms_p99``: 99th percentile over every step of every process (the time between one step's
  ``StatePatched`` commit and the next's).
- ``lock_errors``: store errors ("database is locked", ``StorageUnavailable``, ``ConcurrencyError``)
  that reached a worker (each is retried by resuming the run). Must be 0.
- ``single_steps_per_s``: the same work in ONE process alone, for comparison.

Each run is checked afterwards: succeeded, exactly ``n`` patches, seqs 1..last with no gap.

Run: ``python benchmarks/run.py W7 [--n 200] [--repeat 3]``.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentcore.core.events import StatePatched
from agentcore.errors import ConcurrencyError, StoreError
from agentcore.models.base import ChatRequest, ChatResponse
from agentcore.models.scripted import FunctionChatModel, call, respond_json, say
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.base import tool

PROCESSES = 8
DEFAULT_N = 200
LOCKISH = (ConcurrencyError, StoreError, sqlite3.OperationalError)


def _user_text(request: ChatRequest) -> str:
    return "\n".join(m.content or "" for m in request.messages if m.role == "user")


def make_agent(store: SQLiteEventStore, steps: int, on_event: Any = None) -> Agent:
    """The benchmark agent: call ``work(i)`` for i = 1..steps, then reply."""

    def controller(request: ChatRequest) -> ChatResponse:
        m = re.search(r"^- progress: (\d+)", _user_text(request), flags=re.M)
        done = int(m.group(1)) if m else 0
        return call("work", i=done + 1) if done < steps else say(f"did {done} steps")

    def processor(request: ChatRequest) -> ChatResponse:
        text = _user_text(request)
        head, _, payload = text.partition("\npayload:\n")
        fields = dict(re.findall(r"^(call id|artifact): (.*)$", head, flags=re.M))
        i = re.match(r"done (\d+)", payload)
        fact: dict[str, Any] = {"key": "progress", "value": i.group(1) if i else "0", "source": fields["call id"]}
        if fields.get("artifact", "none") != "none":
            fact["artifact_id"] = fields["artifact"]
        return respond_json({"ops": [{"op": "append_known_facts", "facts": [fact]}]})

    @tool
    def work(i: int) -> str:
        """Do step i of the job.

        Args:
            i: The step number.
        """
        return f"done {i}: " + "result line of a step's tool output. " * 5

    return Agent(
        FunctionChatModel(controller, name="w7-controller"),
        FunctionChatModel(processor, name="w7-processor"),
        [work],
        store,
        max_steps=steps + 1,
        on_event=on_event,
    )


def worker(db: str, index: int, steps: int, barrier: Any, results: Any) -> None:
    """One process: its own run of ``steps`` steps; puts ``{latencies_ms, lock_errors, run_id}`` on ``results``."""
    ends: list[float] = []
    lock_errors = 0
    error = None
    try:
        store = SQLiteEventStore(db)
        agent = make_agent(
            store, steps, on_event=lambda e: ends.append(time.perf_counter()) if isinstance(e, StatePatched) else None
        )
        run_id = f"w7-{index}"
        barrier.wait()
        start = time.perf_counter()
        try:
            result = agent.run_sync(f"job {index}", run_id=run_id)
        except LOCKISH:
            lock_errors += 1
            result = None
        while result is None or result.status == "running":
            try:
                result = agent.resume_sync(run_id)
            except LOCKISH:
                lock_errors += 1
                if lock_errors > 100:
                    raise
        store.close()
        marks = [start, *ends]
        latencies = [(b - a) * 1000 for a, b in itertools.pairwise(marks)]
    except BaseException as e:  # report, never hang the parent
        error, latencies = f"{type(e).__name__}: {e}", []
    results.put({"index": index, "latencies_ms": latencies, "lock_errors": lock_errors, "error": error})


def _check(db: Path, run_ids: list[str], steps: int) -> None:
    with SQLiteEventStore(db) as store:
        for run_id in run_ids:
            events = list(store.read(run_id))
            if [e.seq for e in events] != list(range(1, len(events) + 1)):
                raise RuntimeError(f"{run_id}: seqs are not 1..{len(events)}")
            patches = sum(isinstance(e, StatePatched) for e in events)
            state = store.state_at(run_id)
            if state.status != "succeeded" or patches != steps:
                raise RuntimeError(f"{run_id}: status {state.status}, {patches} patches, expected {steps}")


def one_round(processes: int, steps: int, folder: Path) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    db = folder / "w7.db"
    SQLiteEventStore(db).close()  # create the schema once, before the race
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(str(db), i, steps, barrier, results)) for i in range(processes)]
    for p in procs:
        p.start()
    barrier.wait(timeout=300)
    start = time.perf_counter()
    outs = [results.get(timeout=900) for _ in procs]
    wall = time.perf_counter() - start
    for p in procs:
        p.join(timeout=60)
    errors = [o["error"] for o in outs if o["error"]]
    if errors:
        raise RuntimeError(f"W7 workers failed: {errors}")
    _check(db, [f"w7-{o['index']}" for o in outs], steps)
    latencies = sorted(x for o in outs for x in o["latencies_ms"])
    return {
        "steps_per_s": processes * steps / wall,
        "step_ms_p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "step_ms_median": statistics.median(latencies),
        "lock_errors": sum(o["lock_errors"] for o in outs),
        "db_bytes": sum(Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists()),
    }


def run(n: int | None, repeat: int) -> dict[str, Any]:
    """8 processes x ``n`` steps (default 200) in one file; medians over ``repeat`` rounds."""
    steps = n or DEFAULT_N
    rounds, singles = [], []
    for _ in range(max(1, repeat)):
        with tempfile.TemporaryDirectory() as tmp:
            rounds.append(one_round(PROCESSES, steps, Path(tmp)))
        with tempfile.TemporaryDirectory() as tmp:
            singles.append(one_round(1, steps, Path(tmp)))
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0] if k != "lock_errors"}
    return {
        "processes": PROCESSES,
        "steps_per_process": steps,
        "steps_per_s": round(med["steps_per_s"], 1),
        "step_ms_p99": round(med["step_ms_p99"], 2),
        "step_ms_median": round(med["step_ms_median"], 2),
        "lock_errors": sum(r["lock_errors"] for r in rounds),
        "single_steps_per_s": round(statistics.median(s["steps_per_s"] for s in singles), 1),
        "single_step_ms_p99": round(statistics.median(s["step_ms_p99"] for s in singles), 2),
        "rounds": [{k: round(v, 2) for k, v in r.items()} for r in rounds],
    }


if __name__ == "__main__":
    print(json.dumps(run(None, 1), indent=2))
