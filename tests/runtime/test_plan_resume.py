"""Resuming plan runs: after ``kill -9``, before the first event, and in the middle of a revision.

The child process runs a plan whose ``block`` step hangs on its first attempt. Once the database
shows ``block`` started (and its sibling ``b`` succeeded), the test SIGKILLs the child, then resumes
the run in-process: finished steps are not run again (the tool logs every invocation to a file),
and the interrupted step gets attempt 2 with the idempotency key ``run_id/block/2``.

A run killed between its creation and its ``RunStarted`` is refused by ``resume`` (it never
started; its plan is nowhere) and started by ``run`` with the same id. A crash between a step's
outcome and its revision (``revise=True``) is stopped from ``on_event`` right after the outcome is
committed: resume does the revision first, and the log then matches an uninterrupted run's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agentcore.core.events import Event, LLMCalled, RunFinished, RunStarted, StepFailed, StepStarted, StepSucceeded
from agentcore.core.plans import Plan, RetryPolicy, Step
from agentcore.errors import (
    ConcurrencyError,
    NotAnAgentcoreDatabase,
    RunNotFound,
    RunNotStarted,
    StoreError,
    ToolError,
)
from agentcore.models.scripted import FunctionChatModel
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing.clock import FakeClock
from agentcore.tools.base import Tool, tool
from tests.support.crash_worker import processor_answer

REPO = Path(__file__).resolve().parents[2]
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
    from agentcore.core.plans import Plan
    from agentcore.runtime.plan_runner import PlanRunner
    from agentcore.storage.sqlite.store import SQLiteEventStore
    from agentcore.tools.base import tool

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


# ------------------------------------------------------------------------------------------
# a run killed before its first event


def test_a_plan_run_that_never_started_is_refused_by_resume_and_started_by_run(tmp_path: Path) -> None:
    calls = tmp_path / "calls.log"
    task = "resume after kill -9"
    with SQLiteEventStore(tmp_path / "early.db") as store:
        store.create_run(task, run_id="early")  # exactly what a kill between create_run and RunStarted leaves
        runner = PlanRunner(store, tools=[make_work(calls)])
        with pytest.raises(RunNotStarted, match=r"'early' never started.*nothing ran.*PlanRunner\.run\(") as caught:
            asyncio.run(runner.resume("early"))
        assert isinstance(caught.value, RunNotFound)  # `except RunNotFound: run(...)` covers it
        assert store.last_seq("early") == 0  # refusing wrote nothing
        with pytest.raises(ConcurrencyError, match="for another task"):
            asyncio.run(runner.run("some other task", PLAN, run_id="early"))

        result = asyncio.run(runner.run(task, PLAN, run_id="early"))
        assert result.status == "succeeded", result.reason
        events = list(store.read("early"))
        assert isinstance(events[0], RunStarted) and events[0].plan == PLAN
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert sorted(calls.read_text().splitlines()) == sorted(f"{s} early/{s}/1" for s in ("a", "b", "block", "c"))
        with pytest.raises(ConcurrencyError, match="has started: resume it"):
            asyncio.run(runner.run(task, PLAN, run_id="early"))
        assert [r.id for r in store.runs()] == ["early"]


# ------------------------------------------------------------------------------------------
# a revision cut short


class Crash(Exception):
    """Raised from ``on_event``: the process "dies" right after that event's batch is committed."""


def crash_at(when: Callable[[Event], bool]) -> Callable[[Event], None]:
    def on_event(event: Event) -> None:
        if when(event):
            raise Crash(f"crash after seq {event.seq} ({event.type})")

    return on_event


def revising_runner(store: SQLiteEventStore, calls: Path, **kw: object) -> PlanRunner:
    processor = FunctionChatModel(processor_answer, name="reviser")
    return PlanRunner(store, tools=[make_work(calls)], processor_model=processor, revise=True, **kw)  # type: ignore[arg-type]


def shape(events: list[Event]) -> list[tuple[str, int | None, str | None]]:
    """What must match an uninterrupted run: types, causes and the steps of step events."""
    return [(e.type, e.caused_by, getattr(e, "step_id", None)) for e in events]


LINE = Plan(
    steps=(
        Step(id="a", tool="work", arguments={"name": "a"}),
        Step(id="b", tool="work", arguments={"name": "b"}, after=("a",)),
    )
)


def test_a_revision_cut_short_by_a_crash_is_done_on_resume_and_no_step_runs_twice(tmp_path: Path) -> None:
    with SQLiteEventStore(tmp_path / "revise.db") as store:
        reference = asyncio.run(revising_runner(store, tmp_path / "ref.log").run("line", LINE, run_id="ref"))
        assert reference.status == "succeeded", reference.reason

        calls = tmp_path / "calls.log"
        crashing = revising_runner(
            store, calls, on_event=crash_at(lambda e: isinstance(e, StepSucceeded) and e.step_id == "a")
        )
        with pytest.raises(Crash):
            asyncio.run(crashing.run("line", LINE, run_id="cut"))
        killed = list(store.read("cut"))
        assert isinstance(killed[-1], StepSucceeded) and killed[-1].step_id == "a"  # the revision never started
        assert "a" not in store.state_at("cut").known_facts

        result = asyncio.run(revising_runner(store, calls).resume("cut"))
        assert result.status == "succeeded", result.reason
        assert calls.read_text().splitlines() == ["a cut/a/1", "b cut/b/1"]  # nothing ran twice
        assert result.state.known_facts["a"].value == "a done"  # the revision's fact
        assert result.state.known_facts["b"].value == "b done"
        events = list(store.read("cut"))
        revision = next(e for e in events if isinstance(e, LLMCalled) and e.step_id == "a")
        assert revision.caused_by == killed[-1].seq and revision.seq == killed[-1].seq + 1
        assert shape(events) == shape(list(store.read("ref")))
        assert sum(isinstance(e, LLMCalled) for e in events) == 2  # one revision per step, none twice


NOT_REVISED = {
    "retry": Plan(
        steps=(Step(id="a", tool="flaky", arguments={}), Step(id="b", tool="flaky", arguments={}, after=("a",))),
        retry=RetryPolicy(max_attempts=2, base_delay=1, retry_on=("tool_error",)),
    ),
    "abort": Plan(
        steps=(Step(id="a", tool="flaky", arguments={}), Step(id="b", tool="flaky", arguments={})),
        on_failure="abort",
        max_parallel=1,
    ),
    "deadline": Plan(steps=(Step(id="a", tool="hang", arguments={}),)),
}


@pytest.mark.parametrize("case", sorted(NOT_REVISED))
def test_outcomes_the_scheduler_never_revises_are_not_revised_on_resume(tmp_path: Path, case: str) -> None:
    """A failure to be retried, a failure under ``abort`` and a step stopped by the deadline."""
    tries: dict[str, int] = {}

    @tool(timeout=None)
    async def flaky(idempotency_key: str | None = None) -> str:
        """Fail on the first try of each step.

        Args:
            idempotency_key: The attempt's key.
        """
        step = (idempotency_key or "?/?").split("/")[1]
        tries[step] = tries.get(step, 0) + 1
        if tries[step] == 1:
            raise ToolError(f"{step} is not ready yet")
        return f"{step} done"

    @tool(timeout=None)
    async def hang() -> str:
        """Never finish."""
        await asyncio.Event().wait()
        return "never"

    processor = FunctionChatModel(processor_answer, name="reviser")

    def runner(**kw: object) -> PlanRunner:
        return PlanRunner(store, tools=[flaky, hang], processor_model=processor, revise=True, clock=FakeClock(), **kw)  # type: ignore[arg-type]

    with SQLiteEventStore(tmp_path / "never.db") as store:
        with pytest.raises(Crash):
            deadline = 60 if case == "deadline" else None
            asyncio.run(
                runner(on_event=crash_at(lambda e: isinstance(e, StepFailed))).run(
                    case, NOT_REVISED[case], run_id=case, deadline_s=deadline
                )
            )
        failed = [e for e in store.read(case) if isinstance(e, StepFailed)][-1]
        assert failed.step_id == "a" and store.last_seq(case) - failed.seq == (case == "abort")  # abort: + StepSkipped
        result = asyncio.run(runner().resume(case))
        revised = [e.caused_by for e in store.read(case) if isinstance(e, LLMCalled)]
        assert failed.seq not in revised, f"{case}: the failure of a was revised"
        if case == "retry":
            assert result.status == "succeeded", result.reason
            assert len(revised) == 2  # the two successes
        else:
            assert result.status == "failed", result.reason
            assert "on_failure=abort" in (result.reason or "") if case == "abort" else "deadline" in failed.error
            assert revised == []
