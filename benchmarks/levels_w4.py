"""W4 (b) level by level: what a level of the critical chain costs beyond its step's sleep.

The full stack of W4 (b) (``PlanRunner`` + ``MemoryEventStore``, 200 steps of
``asyncio.sleep(0.010)`` through the ``ToolRunner``, seeds 1-2) with a tool that notes, in the
loop's clock, when its sleep was registered and when its task resumed after it. The *realised
critical chain* is followed back from the step that finished last, each step to the predecessor
that resumed last (the one it waited for). For each link of the chain:

- ``late``: how long after its deadline (registration + 10 ms) the predecessor's task resumed:
  the wait's own lateness plus the callbacks the loop ran before it in that iteration;
- ``gap``: from the predecessor's resume to the successor's sleep registration: the rest of the
  predecessor's attempt (tool result, artifact, ``run_attempt``), the scheduler's wake-up
  (outcomes, one append of the wave's ``StepSucceeded`` + ``StepStarted``), the tasks created
  and the successor's own path to its sleep (``PlanRunner`` executor, ``ToolRunner``).

With epoll's millisecond waits ``late`` holds most of a level's cost (a sleep registered while
the loop is busy ends at idle + whole ms); with ``agentcore.event_loop``'s fine waits the sum
``late + gap`` is what a level costs, and ``gap`` is what ordering can shorten.

``--clock cpu`` (default) runs on ``instructions_w4``'s simulated loop whose clock is its waits
(fine: timeout + 50 µs; ``--ms``: epoll's whole ms) plus this thread's CPU time: repeatable on
a loaded machine. ``--clock wall`` runs on ``agentcore.event_loop`` (or asyncio's default loop
with ``--ms``) and real time.

Run: ``python benchmarks/levels_w4.py [--rounds 3] [--clock cpu|wall] [--ms]``. Prints per seed
the makespan / bound (bound: critical path x the median bare step on the same loop), the chain's
length and the median and mean ``late`` and ``gap`` in µs over the chain's links and rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections.abc import Callable
from typing import Any

from agentcore import event_loop
from agentcore.core.plans import Plan
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.memory import MemoryEventStore
from agentcore.tools.base import tool

try:
    import instructions_w4 as sim
    import w4_scheduling as w4
except ImportError:  # run as benchmarks.levels_w4
    from benchmarks import instructions_w4 as sim
    from benchmarks import w4_scheduling as w4

SEEDS = (1, 2)


def timed_nap(times: dict[int, tuple[float, float]]) -> Any:
    """The W4 (b) tool, noting (sleep registered, task resumed) per step in the loop's clock."""

    @tool(name="nap", timeout=None)
    async def nap(i: int) -> str:
        """Sleep 10 ms.

        Args:
            i: Step number.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(w4.SLEEP_S)
        times[i] = (start, loop.time())
        return "ok"

    return nap


def chain_links(plan: Plan, times: dict[int, tuple[float, float]]) -> list[tuple[float, float]]:
    """(late, gap) in seconds for each link of the realised critical chain, first link first."""
    index = {s.id: i for i, s in enumerate(plan.steps)}
    after = {index[s.id]: [index[d] for d in s.after] for s in plan.steps}
    step = max(times, key=lambda i: times[i][1])
    links = []
    while after[step]:
        pred = max(after[step], key=lambda i: times[i][1])
        late = times[pred][1] - (times[pred][0] + w4.SLEEP_S)
        links.append((late, times[step][0] - times[pred][1]))
        step = pred
    return links[::-1]


async def measure(rounds: int) -> dict[int, dict[str, float]]:
    loop = asyncio.get_running_loop()
    plans = {seed: w4.random_dag(200, seed, tool_name="nap") for seed in SEEDS}
    ratios: dict[int, list[float]] = {seed: [] for seed in SEEDS}
    links: dict[int, list[tuple[float, float]]] = {seed: [] for seed in SEEDS}
    lengths: dict[int, int] = {}
    await PlanRunner(MemoryEventStore(), tools=[timed_nap({})]).run("warm", plans[SEEDS[0]])
    for _ in range(rounds):
        for seed, plan in plans.items():
            bare = await w4._bare_step_s(11, clock=loop.time)
            times: dict[int, tuple[float, float]] = {}
            start = loop.time()
            result = await PlanRunner(MemoryEventStore(), tools=[timed_nap(times)]).run("w4 levels", plan)
            span = loop.time() - start
            assert result.status == "succeeded", result.reason
            ratios[seed].append(span / (w4.critical_path(plan) * statistics.median(bare)))
            chain = chain_links(plan, times)
            links[seed] += chain
            lengths[seed] = len(chain) + 1
    out = {}
    for seed in SEEDS:
        late, gap = [x for x, _ in links[seed]], [y for _, y in links[seed]]
        out[seed] = {
            "ratio": round(statistics.median(ratios[seed]), 3),
            "chain_steps": lengths[seed],
            "late_us_median": round(statistics.median(late) * 1e6),
            "late_us_mean": round(statistics.fmean(late) * 1e6),
            "gap_us_median": round(statistics.median(gap) * 1e6),
            "gap_us_mean": round(statistics.fmean(gap) * 1e6),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--ms", action="store_true", help="epoll's whole-millisecond waits (asyncio's default)")
    args = parser.parse_args()
    if args.clock == "cpu":
        loop = sim.CpuTimeLoop(fine=not args.ms)
        try:
            result = loop.run_until_complete(measure(args.rounds))
        finally:
            loop.close()
    else:
        run: Callable[[Any], Any] = asyncio.run if args.ms else event_loop.run
        result = run(measure(args.rounds))
    for seed, row in result.items():
        print(f"seed {seed}: " + "  ".join(f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
