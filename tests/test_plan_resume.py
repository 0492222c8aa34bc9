"""Resume after ``kill -9``: a real subprocess runs a plan on a SQLite file and is killed mid-step.

The child process runs a plan whose ``block`` step hangs on its first attempt. Once the database
shows ``block`` started (and its sibling ``b`` succeeded), the test SIGKILLs the child, then resumes
the run in-process: finished steps are not run again (the tool logs every invocation to a file),
and the interrupted step gets attempt 2 with the idempotency key ``run_id/block/2``.
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

from agentcore.errors import NotAnAgentcoreDatabase, RunNotFound, StoreError
from agentcore.events import RunFinished, StepFailed, StepStarted, StepSucceeded
from agentcore.plans import Plan, RetryPolicy, Step
from agentcore.runtime_plans import PlanRunner
from agentcore.sqlite_store import SQLiteEventStore
from agentcore.tools import Tool, tool

REPO = Path(__file__).resolve().parent.parent
RUN_ID = "resume-run"

PLAN = Plan(
    steps=(
        Step(id="a", tool="work", arguments={"name": "a"}),
        Step(id="b", tool="work", arguments={"name": "b"}, after=("a",)),
        Step(id="block", tool="work", arguments={"name": "block"}, after=("a",)),
        Step(id="c", tool="work", arguments={"name": "c"}, after=("b", "block")),
    ),
    retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
    max_parallel=4,
)

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, sys.argv[3])
    from agentcore.plans import Plan
    from agentcore.runtime_plans import PlanRunner
    from agentcore.sqlite_store import SQLiteEventStore
    from agentcore.tools import tool

    db, calls, _, plan_json = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]

    @tool(timeout=None)
    async def work(name: str, idempotency_key: str | None = None) -> str:
        '''Do one piece of work.

        Args:
            name: Which piece.
        '''
        with open(calls, "a") as f:
            f.write(f"{name} {idempotency_key}\\n")
        if name == "block":
            await asyncio.sleep(3600)  # hangs until the test kills this process
        return f"{name} done"

    store = SQLiteEventStore(db)
    runner = PlanRunner(store, tools=[work])
    asyncio.run(runner.run("resume after kill -9", Plan.model_validate_json(plan_json), run_id="resume-run"))
    """
)


def make_work(calls: Path) -> Tool:
    @tool(timeout=None)
    async def work(name: str, idempotency_key: str | None = None) -> str:
        """Do one piece of work.

        Args:
            name: Which piece.
        """
        with calls.open("a") as f:
            f.write(f"{name} {idempotency_key}\n")
        return f"{name} done"

    return work


def step_events(db: Path) -> list[object]:
    """The run's events as the child has committed them so far ([] while the file is not ready)."""
    if not db.exists():
        return []
    try:
        with SQLiteEventStore(db) as store:
            return list(store.read(RUN_ID))
    except (RunNotFound, NotAnAgentcoreDatabase, StoreError):
        return []


def wait_for_block_to_start(db: Path, child: subprocess.Popen[bytes]) -> None:
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        if child.poll() is not None:
            out = child.stderr.read().decode() if child.stderr else ""
            pytest.fail(f"the child process exited early with code {child.returncode}: {out}")
        evts = step_events(db)
        started = {e.step_id for e in evts if isinstance(e, StepStarted)}
        succeeded = {e.step_id for e in evts if isinstance(e, StepSucceeded)}
        if "block" in started and "b" in succeeded:
            return
        time.sleep(0.05)
    pytest.fail("the child never recorded StepStarted(block) within 30 s")


def test_a_plan_run_killed_mid_step_resumes_without_repeating_finished_work(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    calls = tmp_path / "calls.log"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(calls), str(REPO), PLAN.model_dump_json()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_block_to_start(db, child)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    before = calls.read_text().splitlines()
    assert sorted(before) == sorted([f"a {RUN_ID}/a/1", f"b {RUN_ID}/b/1", f"block {RUN_ID}/block/1"])

    with SQLiteEventStore(db) as store:
        killed = store.state_at(RUN_ID)
        assert killed.plan["block"].status == "running" and not killed.finished
        last_before = store.last_seq(RUN_ID)
        result = asyncio.run(PlanRunner(store, tools=[make_work(calls)]).resume(RUN_ID))
        assert result.status == "succeeded", result.reason
        after = list(store.read(RUN_ID, after=last_before))

    lines = calls.read_text().splitlines()
    assert lines[: len(before)] == before
    assert lines[len(before) :] == [f"block {RUN_ID}/block/2", f"c {RUN_ID}/c/1"]  # a and b never ran again
    interrupted = next(e for e in after if isinstance(e, StepFailed))
    assert (interrupted.step_id, interrupted.attempt, interrupted.kind) == ("block", 1, "interrupted")
    restarted = next(e for e in after if isinstance(e, StepStarted))
    assert (restarted.step_id, restarted.attempt, restarted.idempotency_key) == ("block", 2, f"{RUN_ID}/block/2")
    assert isinstance(after[-1], RunFinished) and after[-1].status == "succeeded"
    assert [e.seq for e in after] == list(range(last_before + 1, last_before + 1 + len(after)))
    assert result.state.plan["block"].attempts == 2 and result.state.plan["a"].attempts == 1


def test_the_deploy_example_survives_kill_dash_9_and_resumes(tmp_path: Path) -> None:
    db = tmp_path / "deploy.db"
    script = str(REPO / "examples" / "deploy_microservice.py")
    killed = subprocess.run(
        [sys.executable, script, "--db", str(db), "--kill-after", "2"], capture_output=True, text=True, timeout=60
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_id = killed.stdout.split("--resume ")[1].split()[0]
    with SQLiteEventStore(db) as store:
        assert store.state_at(run_id).plan["create-vm"].status == "succeeded"
    resumed = subprocess.run(
        [sys.executable, script, "--db", str(db), "--resume", run_id], capture_output=True, text=True, timeout=60
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with SQLiteEventStore(db) as store:
        state = store.state_at(run_id)
        starts = [e for e in store.read(run_id) if isinstance(e, StepStarted)]
    assert state.status == "succeeded"
    assert all(s.status == "succeeded" for s in state.plan.values())
    assert sum(e.step_id == "create-vm" for e in starts) == 1  # never re-run after the kill
