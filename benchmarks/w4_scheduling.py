"""W4 — scheduling: scheduler overhead per step, and makespan against the lower bound.

(a) Overhead: a random DAG of N no-op steps (about 2 dependencies each, drawn from all earlier
steps), N = 1k, 10k, 100k, ``max_parallel`` 16. Wall time of ``Scheduler.run`` divided by N. Mode:
**no store** (``MemorySink``): every ``StepStarted``/``StepSucceeded`` event is still built (pydantic)
and folded onto the state, and every step is an asyncio task; only the store append is left out
(that is W1's subject). Flat µs/step across N means total work is linear in V + E (up to the
log factor of the ready-heap). ``overhead_us_per_step_100k_gc_off`` repeats 100k with the cyclic
GC disabled during the run, to separate the scheduler's own cost from the collector walking a
large live state. ``runner_us_per_step_10k`` runs the same 10k-step DAG through the
whole stack instead: ``PlanRunner`` + ``MemoryEventStore`` + a no-op tool through ``ToolRunner``.

(b) Makespan: 200 steps (``--n`` to change) that each sleep 10 ms, random DAG, ``max_parallel``
16, through ``PlanRunner`` + ``MemoryEventStore``; makespan divided by the lower bound
``max(critical path, total work / 16)``. ``makespan_ratio`` prices a step at the measured median
duration of one bare step (the same ``asyncio.sleep(0.010)`` in the same process and event loop,
measured just before and after the run): an asyncio sleep lasts its nominal time plus the
loop's timer granularity, which no scheduler can win back. ``makespan_ratio_nominal`` prices a
step at exactly 10 ms. ``makespan_floor_ratio`` runs the same DAG with the same priority and no
framework at all (bare ``asyncio.sleep`` tasks started from done callbacks) against the same
bound: what the event loop itself leaves for any asyncio scheduler here (on the default loop, mostly its
1 ms timer rounding).
``makespan_scheduler_ratio`` runs the same DAG through the ``Scheduler`` alone (``MemorySink``:
``StepStarted``/``StepSucceeded`` built and folded, no store, no ``ToolRunner``; each attempt
is the bare sleep), the layer between the floor and the whole stack.
``makespan_cpu_us_per_step`` is the process (CPU) time of the makespan run divided by its steps:
on a shared machine the honest signal of the framework's own cost.

Event loop: everything runs on the loop agentcore's own entry points use (``PlanRunner.run_sync``
and the others): ``agentcore.event_loop.run``, whose timer waits have sub-millisecond resolution
(asyncio's default ``EpollSelector`` rounds every wait up to whole milliseconds). The headline
keys of (b) (ratio, nominal, floor, scheduler, CPU, bare step) are all measured on that loop,
the bound calibrated with the bare step on it. The same (b) run on asyncio's default loop is kept
under ``*_default_loop`` keys (its own bare step, floor and bound), so the loop's share of the
figure is in plain view. (a) has no timers; it runs on the same loop as the headline.

Run: ``python benchmarks/run.py W4 [--repeat 3] [--n 200]``.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from agentcore import event_loop
from agentcore.core.events import RunStarted
from agentcore.core.fold import fold
from agentcore.core.plans import Plan, RetryPolicy, Step
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.scheduling.readiness import ReadyTracker
from agentcore.scheduling.scheduler import MemorySink, Scheduler, StepResult, StepRun
from agentcore.storage.memory import MemoryEventStore
from agentcore.tools.base import tool

SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000}
MAX_PARALLEL = 16
SLEEP_S = 0.010


def random_dag(n: int, seed: int, *, tool_name: str | None = None, deps: int = 2) -> Plan:
    """``n`` steps, each depending on up to ``deps`` distinct earlier steps chosen at random."""
    rng = random.Random(seed)
    steps = []
    for i in range(n):
        after = tuple(f"s{j:06d}" for j in sorted(rng.sample(range(i), min(i, deps))))
        args = {"i": i} if tool_name else {}
        steps.append(Step(id=f"s{i:06d}", after=after, tool=tool_name, arguments=args))
    return Plan(steps=tuple(steps), max_parallel=MAX_PARALLEL, retry=RetryPolicy(max_attempts=1))


async def _noop(run: StepRun) -> StepResult:
    return StepResult(ok=True)


def overhead_us_per_step(n: int, seed: int, *, gc_off: bool = False) -> float:
    plan = random_dag(n, seed)
    state = fold([RunStarted(run_id="w4", seq=1, at=datetime.now(timezone.utc), task="w4", plan=plan)])
    sink = MemorySink(state, keep=False)

    async def go() -> float:
        scheduler = Scheduler(sink, _noop)
        start = time.perf_counter()
        result = await scheduler.run()
        elapsed = time.perf_counter() - start
        assert result.status == "succeeded", result.reason
        return elapsed

    gc.collect()
    if gc_off:
        gc.disable()
    try:
        elapsed = event_loop.run(go())
    finally:
        gc.enable()
    assert sum(s.status == "succeeded" for s in state.plan.values()) == n
    return elapsed / n * 1e6


@tool(timeout=None)
async def noop(i: int) -> str:
    """Do nothing.

    Args:
        i: Step number.
    """
    return "ok"


@tool(timeout=None)
async def nap(i: int) -> str:
    """Sleep 10 ms.

    Args:
        i: Step number.
    """
    await asyncio.sleep(SLEEP_S)
    return "ok"


async def _timed_run(runner: PlanRunner, task: str, plan: Plan) -> float:
    # timed inside the loop: on Python 3.11 asyncio.run() reprs the main task's result when it
    # restores the SIGINT handler, and a RunResult's repr holds the whole state
    start = time.perf_counter()
    result = await runner.run(task, plan)
    elapsed = time.perf_counter() - start
    assert result.status == "succeeded", result.reason
    return elapsed


def runner_us_per_step(n: int, seed: int) -> float:
    plan = random_dag(n, seed, tool_name="noop")
    runner = PlanRunner(MemoryEventStore(), tools=[noop])
    gc.collect()
    return event_loop.run(_timed_run(runner, "w4 overhead", plan)) / n * 1e6


def critical_path(plan: Plan) -> int:
    """Steps on the longest dependency chain (the plan's steps are in topological order)."""
    depth: dict[str, int] = {}
    for s in plan.steps:
        depth[s.id] = 1 + max((depth[d] for d in s.after), default=0)
    return max(depth.values())


async def _bare_step_s(count: int = 15, clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Durations of ``count`` bare steps: the steps' own sleep, alone, in this event loop, timed by
    ``clock`` (seconds; a simulated loop's own ``loop.time`` where wall time is not its time)."""
    times = []
    for _ in range(count):
        start = clock()
        await asyncio.sleep(SLEEP_S)
        times.append(clock() - start)
    return times


async def _floor_run(plan: Plan) -> float:
    """The same DAG and priority with no framework at all: each ready step is a bare
    ``asyncio.sleep`` task started from the previous task's done callback (no events, no tools).
    What is left over the bound is the event loop's own timer rounding: the floor for any
    asyncio scheduler on this machine."""
    state = fold([RunStarted(run_id="floor", seq=1, at=datetime.now(timezone.utc), task="floor", plan=plan)])
    tracker = ReadyTracker(state.plan, "skip_dependents")
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    left, running = len(plan.steps), 0

    def fill() -> None:
        nonlocal running
        for sid in tracker.pop_ready(MAX_PARALLEL - running):
            running += 1
            loop.create_task(asyncio.sleep(SLEEP_S)).add_done_callback(lambda _, sid=sid: done(sid))

    def done(sid: str) -> None:
        nonlocal left, running
        running, left = running - 1, left - 1
        tracker.done(sid)
        if left:
            fill()
        else:
            finished.set_result(None)

    start = time.perf_counter()
    fill()
    await finished
    return time.perf_counter() - start


async def _sleep_step(run: StepRun) -> StepResult:
    await asyncio.sleep(SLEEP_S)
    return StepResult(ok=True)


async def _scheduler_run(plan: Plan) -> float:
    """The same DAG through the scheduler alone: events built and folded (``MemorySink``), no
    store, no tool runner; each attempt is the bare sleep."""
    state = fold([RunStarted(run_id="sched", seq=1, at=datetime.now(timezone.utc), task="sched", plan=plan)])
    scheduler = Scheduler(MemorySink(state, keep=False), _sleep_step)
    start = time.perf_counter()
    result = await scheduler.run()
    elapsed = time.perf_counter() - start
    assert result.status == "succeeded", result.reason
    return elapsed


async def _calibrated_run(runner: PlanRunner, plan: Plan) -> tuple[float, float, float, float, float]:
    """Makespan, its CPU time (process time), the floor's and the scheduler alone's makespans,
    and the bare step's median."""
    before = await _bare_step_s()
    cpu = time.process_time()
    makespan = await _timed_run(runner, "w4 makespan", plan)
    cpu = time.process_time() - cpu
    floor = await _floor_run(plan)
    scheduler = await _scheduler_run(plan)
    after = await _bare_step_s()
    return makespan, cpu, floor, scheduler, statistics.median(before + after)


def makespan_ratio(n: int, seed: int) -> dict[str, float]:
    """(b) for one seed: on agentcore's event loop (the headline keys), then on asyncio's
    default loop (keys ending ``_default_loop``), each against the bound calibrated on its loop."""
    plan = random_dag(n, seed, tool_name="nap")
    nominal = max(critical_path(plan) * SLEEP_S, n * SLEEP_S / MAX_PARALLEL)
    out: dict[str, float] = {"critical_path_steps": critical_path(plan), "bound_nominal_ms": nominal * 1e3}
    for suffix, run_on in (("", event_loop.run), ("_default_loop", asyncio.run)):
        runner = PlanRunner(MemoryEventStore(), tools=[nap])
        gc.collect()
        makespan, cpu, floor, scheduler, step_s = run_on(_calibrated_run(runner, plan))
        bound = max(critical_path(plan) * step_s, n * step_s / MAX_PARALLEL)
        out |= {
            f"ratio{suffix}": makespan / bound,
            f"ratio_nominal{suffix}": makespan / nominal,
            f"floor_ratio{suffix}": floor / bound,
            f"scheduler_ratio{suffix}": scheduler / bound,
            f"cpu_us_per_step{suffix}": cpu / n * 1e6,
            f"makespan_ms{suffix}": makespan * 1e3,
            f"bound_ms{suffix}": bound * 1e3,
            f"bare_step_ms{suffix}": step_s * 1e3,
        }
    return out


def makespan(n: int | None, repeat: int) -> dict[str, Any]:
    """(b) alone: medians over seeds ``0..repeat-1``."""
    steps = n or 200
    spans = [makespan_ratio(steps, seed) for seed in range(repeat)]
    med = {k: statistics.median(s[k] for s in spans) for k in spans[0]}
    out: dict[str, Any] = {
        "makespan_ms": round(med["makespan_ms"], 1),
        "makespan_bound_ms": round(med["bound_ms"], 1),
        "makespan_bound_nominal_ms": round(med["bound_nominal_ms"], 1),
        "critical_path_steps": med["critical_path_steps"],
        "makespan_steps": steps,
    }
    for suffix in ("", "_default_loop"):  # agentcore.event_loop, then asyncio's default loop
        for key, field, places in (
            ("makespan_ratio", "ratio", 3),
            ("makespan_ratio_nominal", "ratio_nominal", 3),
            ("makespan_floor_ratio", "floor_ratio", 3),
            ("makespan_scheduler_ratio", "scheduler_ratio", 3),
            ("makespan_cpu_us_per_step", "cpu_us_per_step", 1),
            ("bare_step_ms", "bare_step_ms", 3),
        ):
            out[key + suffix] = round(med[field + suffix], places)
        out["makespan_ratios" + suffix] = [round(s["ratio" + suffix], 3) for s in spans]
    return out


def run(n: int | None, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mode": "no store (MemorySink); makespan via PlanRunner + MemoryEventStore",
        "event_loop": "agentcore.event_loop (sub-ms timer waits); *_default_loop keys: asyncio's default loop",
    }
    for label, size in SIZES.items():
        out[f"overhead_us_per_step_{label}"] = round(
            statistics.median(overhead_us_per_step(size, seed) for seed in range(repeat)), 1
        )
    out["overhead_us_per_step_100k_gc_off"] = round(
        statistics.median(overhead_us_per_step(100_000, seed, gc_off=True) for seed in range(repeat)), 1
    )
    out["runner_us_per_step_10k"] = round(
        statistics.median(runner_us_per_step(10_000, seed) for seed in range(repeat)), 1
    )
    out.update(makespan(n, repeat))
    return out
