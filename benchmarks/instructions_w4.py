"""W4 (b) in instructions: a timing-free count of the work per step, by layer (callgrind).

The W4 (b) DAGs (seeds 1 and 2, 200 steps of ``asyncio.sleep(0.010)``) run on an event loop
whose clock moves only when the loop waits (by the wait rounded up to whole milliseconds, as
``epoll`` does, plus 0.15 ms), so the schedule (which steps finish together) is the same on
every run whatever the machine's load; valgrind's callgrind counts the instructions. The count
per step is ``(count with 3 rounds - count with 1 round) / (2 rounds x 400 steps)``, so start-up
and imports cancel out. Deterministic to about 0.1 %: use it for A/B decisions on this shared
machine, where timings are not.

Layers (``--layer``): ``floor`` (bare sleep tasks and the ready tracker, no framework),
``scheduler`` (``Scheduler`` + ``MemorySink``: events built and folded, no store, no tool runner,
each attempt the bare sleep), ``full`` (``PlanRunner`` + ``MemoryEventStore`` + the ``nap`` tool
through ``ToolRunner``: what W4 (b) times).

Run: ``python benchmarks/instructions_w4.py [--layer floor scheduler full] [--fine]`` (needs
valgrind; about a minute per layer). ``--rounds K`` runs the workload itself (what valgrind is
given). With ``--fine`` the counted runs wait as ``agentcore.event_loop`` does (see below) on a
``TickLoop`` (each clock reading moves it by 20 µs): the steps end in about as many wake-ups as
on a real loop (without it, every step of a level ends in the same one), so what a wake-up
costs counts as it does there. Deterministic as well.

``--simulate`` needs no valgrind: the makespan / bound of each layer on a loop whose clock is
its waits (as above) plus this thread's CPU time, i.e. the makespan a machine would show if
nothing else ran and each wave ran at the speed of a warm cache (no sleep between waves here).
``--fine`` makes the simulated waits those of ``agentcore.event_loop`` (the timeout plus 50 µs of
timer slack) instead of epoll's whole milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agentcore.core.events import RunStarted
from agentcore.core.fold import fold
from agentcore.core.plans import Plan
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.scheduling.scheduler import MemorySink, Scheduler, StepResult, StepRun
from agentcore.storage.memory import MemoryEventStore

try:
    import w4_scheduling as w4
except ImportError:  # imported as benchmarks.instructions_w4
    from benchmarks import w4_scheduling as w4

LAYERS = ("floor", "scheduler", "full")
STEPS = 200
SEEDS = (1, 2)


FINE_LATE_S = 0.00005
"""How late a fine wait ends in the simulation: the kernel's default timer slack (50 µs)."""


class _WaitSelector(selectors.EpollSelector):
    """Polls without blocking and moves the loop's clock by the wait epoll would have made
    (``fine``: by the wait ``agentcore.event_loop``'s selector makes, the timeout plus 50 µs)."""

    def __init__(self, loop_time: list[float], fine: bool = False) -> None:
        super().__init__()
        self.now = loop_time
        self.fine = fine

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("the loop went idle with nothing scheduled")
        if timeout > 0:
            self.now[0] += timeout + FINE_LATE_S if self.fine else math.ceil(timeout * 1e3) * 1e-3 + 0.00015
        return super().select(0)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` moves only when it waits (CPU time counts as none)."""

    def __init__(self, fine: bool = False) -> None:
        self._now = [0.0]
        super().__init__(_WaitSelector(self._now, fine))

    def time(self) -> float:
        return self._now[0]


class TickLoop(VirtualTimeLoop):
    """``VirtualTimeLoop`` whose clock also moves by ``TICK_S`` at each reading: a stand-in for CPU
    time that is the same on every run (under valgrind too), so timers set at different points
    of a wave end apart, in about as many wake-ups as ``CpuTimeLoop`` shows (233 vs 253 turns
    for the 400 steps of one round of both DAGs, fine waits)."""

    TICK_S = 20e-6

    def __init__(self, fine: bool = False) -> None:
        super().__init__(fine)
        self._readings = 0

    def time(self) -> float:
        self._readings += 1
        return self._now[0] + self._readings * self.TICK_S


class CpuTimeLoop(VirtualTimeLoop):
    """``VirtualTimeLoop`` whose clock also moves with this thread's CPU time."""

    def __init__(self, fine: bool = False) -> None:
        super().__init__(fine)
        self._cpu0 = time.thread_time()

    def time(self) -> float:
        return self._now[0] + time.thread_time() - self._cpu0


async def simulate() -> dict[str, float]:
    """Median makespan / bound per layer over seeds 1-2 (three rounds), bound = critical path x
    the median bare step in this loop."""
    await workload("full", 1)  # warm: first-use costs out of the way
    ratios: dict[str, list[float]] = {layer: [] for layer in LAYERS}
    plans = [w4.random_dag(STEPS, seed, tool_name="nap") for seed in SEEDS]
    loop = asyncio.get_running_loop()
    for _ in range(3):
        for plan in plans:
            bound = w4.critical_path(plan) * statistics.median([await _bare_step(loop) for _ in range(11)])
            for layer in LAYERS:
                start = loop.time()
                await _one(layer, plan)
                ratios[layer].append((loop.time() - start) / bound)
    return {layer: round(statistics.median(r), 3) for layer, r in ratios.items()}


async def _bare_step(loop: asyncio.AbstractEventLoop) -> float:
    start = loop.time()
    await asyncio.sleep(w4.SLEEP_S)
    return loop.time() - start


async def _sleep_step(run: StepRun) -> StepResult:
    await asyncio.sleep(w4.SLEEP_S)
    return StepResult(ok=True)


async def workload(layer: str, rounds: int) -> None:
    """``rounds`` runs of both DAGs through ``layer``.

    Raises:
        ValueError: unknown layer.
    """
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
    plans = [w4.random_dag(STEPS, seed, tool_name="nap") for seed in SEEDS]
    for _ in range(rounds):
        for plan in plans:
            await _one(layer, plan)


async def _one(layer: str, plan: Plan) -> None:
    if layer == "floor":
        await w4._floor_run(plan)
    elif layer == "scheduler":
        state = fold([RunStarted(run_id="i", seq=1, at=datetime.now(timezone.utc), task="i", plan=plan)])
        assert (await Scheduler(MemorySink(state, keep=False), _sleep_step).run()).status == "succeeded"
    else:
        assert (await PlanRunner(MemoryEventStore(), tools=[w4.nap]).run("w4", plan)).status == "succeeded"


def _count(layer: str, rounds: int, fine: bool = False) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={Path(tmp) / 'cg.out'}",
             sys.executable, __file__, "--layer", layer, "--rounds", str(rounds), *(["--fine"] if fine else [])],
            env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True, check=True,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in callgrind's output:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def per_step(layer: str, fine: bool = False) -> int:
    """Instructions per step of ``layer`` (two valgrind runs; ``fine``: waits as ``--fine``'s)."""
    with ThreadPoolExecutor(2) as pool:
        one, three = pool.map(lambda rounds: _count(layer, rounds, fine), (1, 3))
    return round((three - one) / (2 * len(SEEDS) * STEPS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layer", nargs="+", default=list(LAYERS), choices=LAYERS)
    parser.add_argument("--rounds", type=int, default=None, help="run the workload itself (under valgrind)")
    parser.add_argument("--simulate", action="store_true", help="makespan / bound on a CPU-time clock")
    parser.add_argument("--fine", action="store_true", help="waits as agentcore.event_loop's (else epoll's ms)")
    args = parser.parse_args()
    if args.simulate:
        loop = CpuTimeLoop(args.fine)
        try:
            print(loop.run_until_complete(simulate()))
        finally:
            loop.close()
        return
    if args.rounds is not None:
        loop = TickLoop(fine=True) if args.fine else VirtualTimeLoop()
        try:
            loop.run_until_complete(workload(args.layer[0], args.rounds))
        finally:
            loop.close()
        return
    for layer in args.layer:
        print(f"{layer:10s} {per_step(layer, args.fine):>9,} instructions per step")


if __name__ == "__main__":
    main()
