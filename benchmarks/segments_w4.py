"""W4 (b) in segments: the run's start, each link of the realised critical chain, and its end.

``levels_w4.py`` gives each link's *late* and *gap*; this splits the gap by timestamps taken in
the loop's clock around the framework's own methods (wrapped, not copied: the code measured is
the code that runs). Per link (predecessor ``p`` ends, successor ``s`` begins):

- ``late``: ``p``'s resume after its deadline (sleep registered + 10 ms);
- ``tail``: ``p``'s resume to the end of its attempt (tool result, artifact, ``StepResult``);
- ``wake``: to the scheduler's wake-up (the next loop iteration);
- ``dispatch``: the outcomes and the dispatch up to ``InFlight.start`` of ``s``;
- ``append``: the append that records ``s``'s ``StepStarted`` (with the successes before it);
  ``batch`` is its number of events;
- ``tasks``: the rest of ``InFlight.start`` (the attempts' tasks);
- ``to_sleep``: to ``s``'s sleep (the loop iteration, the executor, ``ToolRunner``, the tool).

And per run: ``start``, from ``PlanRunner.run`` to the first step's sleep; ``end``, from the
last step's resume to ``run`` returning (the runner and its store are made before and freed after
the timing, as in W4: freeing a run's store costs ~0.5 ms). ``head_links`` counts the links whose successor was
started alone (the head of its wave, see ``Scheduler`` "Recording order").

``--clock cpu`` (default) runs on ``instructions_w4``'s loop whose clock is its waits (fine
waits) plus this thread's CPU time; ``--clock wall`` on ``agentcore.event_loop``. Both move
with the machine's load: interleave runs of the code being compared.

Run: ``python benchmarks/segments_w4.py [--rounds 3] [--clock cpu|wall]``; prints per seed the
makespan / bound and the median of each segment in µs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from typing import Any

from agentcore import event_loop
from agentcore.runtime import plan_runner
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.scheduling.attempts import InFlight
from agentcore.storage.memory import MemoryEventStore
from agentcore.tools.base import tool

try:
    import instructions_w4 as sim
    import w4_scheduling as w4
except ImportError:  # run as benchmarks.segments_w4
    from benchmarks import instructions_w4 as sim
    from benchmarks import w4_scheduling as w4

SEEDS = (1, 2)
LINK = ("late", "tail", "wake", "dispatch", "append", "tasks", "to_sleep")


class Notes:
    """Timestamps of one run, in the loop's clock."""

    def __init__(self) -> None:
        self.entry: dict[str, float] = {}
        self.resume: dict[str, float] = {}
        self.done: dict[str, float] = {}
        self.wakes: list[float] = []
        self.appends: list[tuple[float, float, int]] = []
        self.started: dict[str, tuple[tuple[float, float, int], float, bool]] = {}


N = Notes()


def _now() -> float:
    return asyncio.get_running_loop().time()


def instrument() -> None:
    """Wrap the methods whose ends are the segments' bounds (once per process)."""
    attempt, wait, start, emit = InFlight._attempt, InFlight.wait, InFlight.start, plan_runner._LogSink.emit

    async def _attempt(self: InFlight, running: Any, run: Any) -> Any:
        try:
            return await attempt(self, running, run)
        finally:
            N.done[running.step_id] = _now()

    async def _wait(self: InFlight, until: Any) -> None:
        await wait(self, until)
        N.wakes.append(_now())

    def _start(self: InFlight, sink: Any, step_ids: list[str], *, after: Any = ()) -> None:
        start(self, sink, step_ids, after=after)
        end = _now()
        for sid in step_ids:
            N.started[sid] = (N.appends[-1], end, len(step_ids) == 1)

    def _emit(self: Any, drafts: Any) -> int:
        begin = _now()
        first = emit(self, drafts)
        N.appends.append((begin, _now(), len(drafts)))
        return first

    InFlight._attempt = _attempt  # type: ignore[method-assign]
    InFlight.wait = _wait  # type: ignore[method-assign]
    InFlight.start = _start  # type: ignore[method-assign]
    plan_runner._LogSink.emit = _emit  # type: ignore[method-assign]


@tool(name="nap", timeout=None)
async def nap(i: int) -> str:
    """Sleep 10 ms.

    Args:
        i: Step number.
    """
    sid = f"s{i:06d}"
    N.entry[sid] = _now()
    await asyncio.sleep(w4.SLEEP_S)
    N.resume[sid] = _now()
    return "ok"


def links(plan: Any) -> list[dict[str, float]]:
    """The segments of each link of the realised critical chain (followed back from the step
    that resumed last, each step to the predecessor that resumed last)."""
    after = {s.id: list(s.after) for s in plan.steps}
    step = max(N.resume, key=N.resume.__getitem__)
    out = []
    while after[step]:
        pred = max(after[step], key=N.resume.__getitem__)
        wake = min(w for w in N.wakes if w >= N.done[pred])
        (a_begin, a_end, batch), end, alone = N.started[step]
        out.append({
            "late": N.resume[pred] - N.entry[pred] - w4.SLEEP_S, "tail": N.done[pred] - N.resume[pred],
            "wake": wake - N.done[pred], "dispatch": a_begin - wake, "append": a_end - a_begin,
            "tasks": end - a_end, "to_sleep": N.entry[step] - end, "batch": batch, "alone": alone,
        })  # fmt: skip
        step = pred
    return out


async def measure(rounds: int) -> dict[int, dict[str, float]]:
    global N
    loop = asyncio.get_running_loop()
    plans = {seed: w4.random_dag(200, seed, tool_name="nap") for seed in SEEDS}
    rows: dict[int, dict[str, list[float]]] = {seed: {} for seed in SEEDS}
    for r in range(rounds + 1):  # round 0 warms up
        for seed, plan in plans.items():
            bare = await w4._bare_step_s(11, clock=loop.time)
            N = Notes()
            runner = PlanRunner(MemoryEventStore(), tools=[nap])  # made, and freed, outside the timing, as in W4
            start = loop.time()
            result = await runner.run("w4 segments", plan)
            end = loop.time()
            assert result.status == "succeeded", result.reason
            if r == 0:
                continue
            row = rows[seed]
            row.setdefault("ratio", []).append((end - start) / (w4.critical_path(plan) * statistics.median(bare)))
            row.setdefault("start", []).append(min(N.entry.values()) - start)
            row.setdefault("end", []).append(end - max(N.resume.values()))
            chain = links(plan)
            row.setdefault("head_links", []).append(sum(link["alone"] for link in chain) / len(chain))
            for link in chain:
                for key in (*LINK, "batch"):
                    row.setdefault(key, []).append(link[key])
    out: dict[int, dict[str, float]] = {}
    for seed, row in rows.items():
        med = {k: statistics.median(v) for k, v in row.items()}
        out[seed] = {
            "ratio": round(med["ratio"], 3), "start_us": round(med["start"] * 1e6), "end_us": round(med["end"] * 1e6),
            "head_links": round(med["head_links"], 2), "batch": med["batch"],
            **{f"{k}_us": round(med[k] * 1e6) for k in LINK},
            "gap_us": round(sum(med[k] for k in LINK if k != "late") * 1e6),
        }  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = parser.parse_args()
    instrument()
    if args.clock == "cpu":
        loop = sim.CpuTimeLoop(fine=True)
        try:
            result = loop.run_until_complete(measure(args.rounds))
        finally:
            loop.close()
    else:
        result = event_loop.run(measure(args.rounds))
    for seed, row in result.items():
        print(f"seed {seed}: " + "  ".join(f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
