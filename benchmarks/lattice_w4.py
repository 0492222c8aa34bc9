"""W4 (b) explained: where a level's CPU goes in the makespan, with no framework at all.

The floor run of W4 (b) (the same DAG and priority, bare ``asyncio.sleep(0.010)`` tasks started
from done callbacks) with ``burn`` µs of busy loop work added per finished step, placed either
**before** its successors are started (in the done callback) or **after** them (two loop
iterations later, once the successors' tasks have run up to their sleep). If starting the
critical step's successor first were what mattered, "after" would cost nothing; asyncio's
``epoll`` wait is in whole milliseconds, rounded up, and measured from the moment the loop goes
idle, so a sleep registered while the loop is still busy ends when the loop's last wait before
it ends: the wave's work is paid either way. ``sleep_ms`` is the mean time from a step's
``asyncio.sleep`` call to its task resuming (10 ms asked).

``after+pad`` proves the mechanism: as ``after``, then, once per wave, the loop is *blocked*
(``time.sleep``) until the earliest timer is a whole number of milliseconds away, so the
rounded-up wait ends on that timer's deadline. That is a demonstration, not a remedy: blocking
the loop delays every I/O event, and it reads the loop's private timer heap.

Run: ``python benchmarks/lattice_w4.py [--rounds 3] [--burn 0 40 80]``. Prints one row per
(burn, placement): median makespan / bound over seeds 1-2 and rounds, and ``sleep_ms``.
The bound is ``critical path x`` the median bare step, measured in the same loop.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from datetime import datetime, timezone

from agentcore.core.events import RunStarted
from agentcore.core.fold import fold
from agentcore.core.plans import Plan
from agentcore.scheduling.readiness import ReadyTracker

try:
    from w4_scheduling import MAX_PARALLEL, SLEEP_S, _bare_step_s, critical_path, random_dag
except ImportError:  # run as benchmarks.lattice_w4
    from benchmarks.w4_scheduling import MAX_PARALLEL, SLEEP_S, _bare_step_s, critical_path, random_dag

PLACEMENTS = ("before", "after", "after+pad")


def _burn(us: float) -> None:
    """Keep the loop busy for ``us`` µs (wall time: what the loop cannot spend waiting)."""
    end = time.perf_counter() + us * 1e-6
    while time.perf_counter() < end:
        pass


async def lattice_run(plan: Plan, burn_us: float, where: str) -> tuple[float, float]:
    """Makespan (s) and mean sleep (s) of the floor run with ``burn_us`` of work per finished step.

    Raises:
        ValueError: ``where`` is not one of ``PLACEMENTS``.
    """
    if where not in PLACEMENTS:
        raise ValueError(f"where must be one of {PLACEMENTS}, got {where!r}")
    state = fold([RunStarted(run_id="lattice", seq=1, at=datetime.now(timezone.utc), task="l", plan=plan)])
    tracker = ReadyTracker(state.plan, "skip_dependents")
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    left, running = len(plan.steps), 0
    sleeps: list[float] = []
    pad_due = False

    def pad() -> None:
        nonlocal pad_due
        pad_due = False
        timers = [h for h in loop._scheduled[:4] if not h.cancelled()]  # type: ignore[attr-defined]
        if timers:
            left_ms = (min(h.when() for h in timers) - loop.time()) * 1e3
            part = left_ms - math.floor(left_ms)  # the wait would overshoot the deadline by 1 - part ms
            if left_ms > 0 and part < 0.9:
                time.sleep(part * 1e-3)

    async def step() -> None:
        t = loop.time()
        await asyncio.sleep(SLEEP_S)
        sleeps.append(loop.time() - t)

    def fill() -> None:
        nonlocal running
        for sid in tracker.pop_ready(MAX_PARALLEL - running):
            running += 1
            loop.create_task(step()).add_done_callback(lambda _, sid=sid: done(sid))

    def done(sid: str) -> None:
        nonlocal left, running, pad_due
        running, left = running - 1, left - 1
        tracker.done(sid)
        if where == "before":
            _burn(burn_us)
        if left:
            fill()
        else:
            finished.set_result(None)
        if where != "before":  # the new tasks run their first step in the next iteration; burn after it
            loop.call_soon(loop.call_soon, _burn, burn_us)
        if where == "after+pad" and not pad_due:  # after every burn of this wave
            pad_due = True
            loop.call_soon(loop.call_soon, loop.call_soon, pad)

    start = loop.time()
    fill()
    await finished
    return loop.time() - start, statistics.fmean(sleeps)


async def _measure(rounds: int, burns: list[float]) -> list[tuple[float, str, float, float]]:
    plans = [random_dag(200, seed) for seed in (1, 2)]
    ratios: dict[tuple[float, str], list[float]] = {}
    sleeps: dict[tuple[float, str], list[float]] = {}
    for _ in range(rounds):
        for plan in plans:
            bound = critical_path(plan) * statistics.median(await _bare_step_s(11))
            for burn in burns:
                for where in PLACEMENTS:
                    span, sleep = await lattice_run(plan, burn, where)
                    ratios.setdefault((burn, where), []).append(span / bound)
                    sleeps.setdefault((burn, where), []).append(sleep)
    return [(b, w, statistics.median(ratios[b, w]), statistics.median(sleeps[b, w])) for b, w in ratios]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burn", type=float, nargs="+", default=[0.0, 40.0, 80.0], help="µs per finished step")
    args = parser.parse_args()
    print("burn_us_per_step  placement  makespan/bound  sleep_ms")
    for burn, where, ratio, sleep in asyncio.run(_measure(args.rounds, args.burn)):
        print(f"{burn:16.0f}  {where:9s}  {ratio:14.3f}  {sleep * 1e3:8.2f}")


if __name__ == "__main__":
    main()
