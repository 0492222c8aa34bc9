"""A crash between a step's end and the start of the step that waits for it loses nothing.

The scheduler records a finished step's ``StepSucceeded`` and the ``StepStarted`` of the step it
made ready in one append (one transaction), so that the next step begins as soon as possible
(W4). A real child process runs the chain ``a -> b -> c`` on a SQLite file and is SIGKILLed:

- ``inside``: in the middle of that append (its rows written, no commit). The log keeps neither
  event: ``a``'s attempt was never recorded as finished, so resume tries ``a`` again (attempt 2,
  recorded as ``interrupted``) and ``b`` never began in the child.
- ``after``: once that append is committed and ``b``'s attempt hangs. The log holds both, in
  consecutive seqs; resume does not run ``a`` again and gives ``b`` attempt 2.

Either way the resumed log continues the killed one seq by seq and ends ``succeeded``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agentcore.core.events import RunFinished, StepFailed, StepStarted, StepSucceeded
from agentcore.core.plans import Plan, RetryPolicy, Step
from agentcore.errors import NotAnAgentcoreDatabase, RunNotFound, StoreError
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.sqlite.store import SQLiteEventStore
from tests.runtime.test_plan_resume import make_work

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "chain-run"

PLAN = Plan(
    steps=(
        Step(id="a", tool="work", arguments={"name": "a"}),
        Step(id="b", tool="work", arguments={"name": "b"}, after=("a",)),
        Step(id="c", tool="work", arguments={"name": "c"}, after=("b",)),
    ),
    retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
)

CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    sys.path.insert(0, sys.argv[3])
    from agentcore.core.events import StepSucceeded
    from agentcore.core.plans import Plan
    from agentcore.runtime.plan_runner import PlanRunner
    from agentcore.storage.sqlite.store import SQLiteEventStore
    from agentcore.tools.base import tool

    db, calls, _, plan_json, where = sys.argv[1:6]

    class DiesInsideTheAppend(SQLiteEventStore):
        def _write_events(self, conn, run_id, events, bodies, run):
            super()._write_events(conn, run_id, events, bodies, run)  # rows in, transaction open
            if where == "inside" and any(isinstance(e, StepSucceeded) and e.step_id == "a" for e in events):
                with open(calls + ".batch", "w") as f:  # what the dying append held
                    f.write(" ".join(f"{type(e).__name__}:{e.step_id}" for e in events))
                os.kill(os.getpid(), signal.SIGKILL)

    @tool(timeout=None)
    async def work(name: str, idempotency_key: str | None = None) -> str:
        '''Do one piece of work.

        Args:
            name: Which piece.
        '''
        with open(calls, "a") as f:
            f.write(f"{name} {idempotency_key}\\n")
        if name == "b":
            await asyncio.sleep(3600)  # hangs until the test kills this process
        return f"{name} done"

    runner = PlanRunner(DiesInsideTheAppend(db), tools=[work])
    asyncio.run(runner.run("a chain killed between two steps", Plan.model_validate_json(plan_json), run_id="chain-run"))
    """
)


def started_b(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        with SQLiteEventStore(db) as store:
            return any(isinstance(e, StepStarted) and e.step_id == "b" for e in store.read(RUN_ID))
    except (RunNotFound, NotAnAgentcoreDatabase, StoreError):
        return False


def run_child_until_killed(db: Path, calls: Path, where: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(calls), str(REPO), PLAN.model_dump_json(), where],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if where == "inside":  # the child kills itself in the append
            child.wait(timeout=60)
        else:
            give_up = time.monotonic() + 30
            while not started_b(db):
                if child.poll() is not None:
                    out = child.stderr.read().decode() if child.stderr else ""
                    pytest.fail(f"the child exited with code {child.returncode} before b started: {out}")
                if time.monotonic() > give_up:
                    pytest.fail("the child never recorded StepStarted(b) within 30 s")
                time.sleep(0.05)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("where", ["inside", "after"])
def test_a_crash_between_a_step_and_the_next_loses_nothing(tmp_path: Path, where: str) -> None:
    db, calls = tmp_path / "runs.db", tmp_path / "calls.log"
    run_child_until_killed(db, calls, where)

    with SQLiteEventStore(db) as store:
        killed = list(store.read(RUN_ID))
        last_before = killed[-1].seq
        result = asyncio.run(PlanRunner(store, tools=[make_work(calls)]).resume(RUN_ID))
        assert result.status == "succeeded", result.reason
        after = list(store.read(RUN_ID, after=last_before))

    steps = [(type(e).__name__, e.step_id) for e in killed if isinstance(e, (StepStarted, StepSucceeded))]
    lines = calls.read_text().splitlines()
    if where == "inside":
        # the append that died held a's result and b's start; it left neither: a never finished in
        # the log, and b never began
        assert Path(f"{calls}.batch").read_text() == "StepSucceeded:a StepStarted:b"
        assert steps == [("StepStarted", "a")]
        assert lines == [f"a {RUN_ID}/a/1", f"a {RUN_ID}/a/2", f"b {RUN_ID}/b/1", f"c {RUN_ID}/c/1"]
        redone = "a"
    else:
        # a's result and b's start were committed together, a's first
        assert steps == [("StepStarted", "a"), ("StepSucceeded", "a"), ("StepStarted", "b")]
        succeeded_a, started_b_ = killed[-2], killed[-1]
        assert isinstance(succeeded_a, StepSucceeded) and isinstance(started_b_, StepStarted)
        assert started_b_.seq == succeeded_a.seq + 1
        assert lines == [f"a {RUN_ID}/a/1", f"b {RUN_ID}/b/1", f"b {RUN_ID}/b/2", f"c {RUN_ID}/c/1"]  # a ran once
        redone = "b"
    interrupted = next(e for e in after if isinstance(e, StepFailed))
    assert (interrupted.step_id, interrupted.attempt, interrupted.kind) == (redone, 1, "interrupted")
    assert [e.seq for e in after] == list(range(last_before + 1, last_before + 1 + len(after)))
    assert isinstance(after[-1], RunFinished) and after[-1].status == "succeeded"
    assert result.state.plan[redone].attempts == 2
