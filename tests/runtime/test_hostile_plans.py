"""Hostile plans and tools given to ``PlanRunner``: odd delays and deadlines, empty plans, cycles,
tools that return text with no UTF-8. Real SQLite files; each finished run's log must fold, inspect
and replay (``tests.support.hostile.check_log``).
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from agentcore.core.events import RunStarted
from agentcore.core.fold import RunState
from agentcore.core.plans import MAX_DELAY_S, Plan, RetryPolicy, Step, check_deadline
from agentcore.errors import ConfigError, PlanError
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing import FakeClock
from agentcore.tools.base import tool
from tests.support.hostile import check_log


def flaky_tool(fails: int) -> object:
    calls = {"n": 0}

    @tool
    def flaky(x: str = "") -> str:
        """Times out ``fails`` times, then answers.

        Args:
            x: Ignored.
        """
        calls["n"] += 1
        if calls["n"] <= fails:
            raise TimeoutError("upstream timed out")
        return "ok"

    return flaky


@tool
def listing(root: str) -> str:
    """A directory listing with a file name that is not UTF-8 (decoded with surrogateescape).

    Args:
        root: Ignored.
    """
    return "report.txt\n" + b"caf\xe9.txt".decode("utf-8", "surrogateescape") + "\n\ud83d half an emoji"


@pytest.mark.parametrize("field", ["base_delay", "max_delay"])
@pytest.mark.parametrize("value", [math.inf, math.nan, -1.0])
def test_retry_delays_not_finite_or_negative_are_refused_when_made(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        RetryPolicy(**{field: value})


@pytest.mark.parametrize("where", ["plan", "step"])
@pytest.mark.parametrize("value", [1e300, MAX_DELAY_S * 2])
def test_retry_delays_beyond_a_year_are_a_config_error_from_run_and_nothing_is_written(
    db_path: Path, where: str, value: float
) -> None:
    policy = RetryPolicy(max_delay=value)  # a policy may hold it (stored plans do): the run refuses it
    step = Step(id="a", tool="flaky", retry=policy if where == "step" else None)
    plan = Plan(steps=(step,), retry=policy if where == "plan" else RetryPolicy())
    store = SQLiteEventStore(db_path)
    with pytest.raises(ConfigError, match=r"retry delays over 3\.1536e\+07 seconds .*max_delay="):
        PlanRunner(store, tools=[flaky_tool(0)]).run_sync("t", plan)  # type: ignore[list-item]
    assert store.runs() == []
    store.close()


def test_a_log_stored_with_a_delay_over_a_year_still_reads_folds_and_resumes(db_path: Path, tmp_path: Path) -> None:
    # a run started before delays were bounded: its RunStarted holds max_delay=1e9, as written then
    clock = FakeClock()
    store = SQLiteEventStore(db_path)
    runner = PlanRunner(store, tools=[flaky_tool(1)], clock=clock)  # type: ignore[list-item]
    plan = Plan(steps=(Step(id="a", tool="flaky"),), retry=RetryPolicy(max_attempts=2, base_delay=1e9, max_delay=1e9, jitter=False))
    with pytest.raises(ConfigError):
        runner.run_sync("old run", plan)
    log = runner._log(RunState(run_id="run_old"))  # what run() writes, without today's check
    log.add(RunStarted, task="old run", plan=plan, config=runner.config())
    log.start("old run", created=clock.now())
    store.close()
    store = SQLiteEventStore(db_path)
    (started,) = list(store.read("run_old"))
    assert isinstance(started, RunStarted) and started.plan is not None
    assert started.plan.retry.max_delay == 1e9  # read back as written, not refused as damaged
    result = PlanRunner(store, tools=[flaky_tool(1)], clock=clock).resume_sync("run_old")  # type: ignore[list-item]
    store.close()
    assert result.status == "succeeded" and result.state.plan["a"].attempts == 2
    assert MAX_DELAY_S <= clock.elapsed < 2 * MAX_DELAY_S  # the wait is capped at a year
    check_log(db_path, result.run_id, tmp_path)


def test_the_longest_delay_still_schedules_a_retry(db_path: Path, tmp_path: Path) -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=2, base_delay=MAX_DELAY_S, max_delay=MAX_DELAY_S, jitter=False)
    assert policy.delay(1000) == MAX_DELAY_S
    store = SQLiteEventStore(db_path)
    plan = Plan(steps=(Step(id="a", tool="flaky"),), retry=policy)
    result = PlanRunner(store, tools=[flaky_tool(1)], clock=clock).run_sync("retry late", plan)  # type: ignore[list-item]
    store.close()
    assert result.status == "succeeded"
    assert result.state.plan["a"].attempts == 2
    assert clock.elapsed >= MAX_DELAY_S
    check_log(db_path, result.run_id, tmp_path)


@pytest.mark.parametrize("deadline", [0, -1.0, math.nan, math.inf, -math.inf, 1e300, MAX_DELAY_S + 1, True, "10"])
def test_an_odd_deadline_is_a_config_error_and_nothing_is_written(db_path: Path, deadline: object) -> None:
    store = SQLiteEventStore(db_path)
    runner = PlanRunner(store, tools=[flaky_tool(0)])  # type: ignore[list-item]
    plan = Plan(steps=(Step(id="a", tool="flaky"),))
    with pytest.raises(ConfigError, match="deadline_s must be > 0 seconds and at most"):
        runner.run_sync("t", plan, deadline_s=deadline)
    assert store.runs() == []
    store.close()


def test_an_odd_deadline_on_resume_writes_nothing(db_path: Path) -> None:
    store = SQLiteEventStore(db_path)
    runner = PlanRunner(store, tools=[flaky_tool(0)])  # type: ignore[list-item]
    result = runner.run_sync("t", Plan(steps=(Step(id="a", tool="flaky"),)))
    before = list(store.read(result.run_id))
    with pytest.raises(ConfigError, match="deadline_s"):
        runner.resume_sync(result.run_id, deadline_s=math.nan)
    assert list(store.read(result.run_id)) == before
    store.close()
    check_deadline(None)
    check_deadline(MAX_DELAY_S)


def test_an_empty_plan_is_a_config_error_and_nothing_is_written(db_path: Path) -> None:
    store = SQLiteEventStore(db_path)
    with pytest.raises(ConfigError, match="the plan has no steps"):
        PlanRunner(store).run_sync("nothing to do", Plan(steps=()))
    assert store.runs() == []
    store.close()


@pytest.mark.parametrize("length", [1, 2, 3, 7])
def test_a_cycle_of_any_length_is_named(length: int) -> None:
    ids = [f"s{i}" for i in range(length)]
    steps = [Step(id=sid, after=(ids[i - 1],)) for i, sid in enumerate(ids)]
    with pytest.raises(PlanError) as caught:
        Plan(steps=tuple(steps))
    assert caught.value.cycle is not None and set(caught.value.cycle) == set(ids)
    assert ("depends on itself" if length == 1 else "plan has a cycle") in str(caught.value)


def test_a_tool_returning_text_with_no_utf8_is_kept_with_replacement_characters(db_path: Path, tmp_path: Path) -> None:
    store = SQLiteEventStore(db_path)
    plan = Plan(steps=(Step(id="ls", tool="listing", arguments={"root": "."}),))
    result = PlanRunner(store, tools=[listing]).run_sync("list", plan)
    step = result.state.plan["ls"]
    assert result.status == "succeeded" and step.result is not None
    stored = store.artifacts.read(step.result.id).decode("utf-8")
    store.close()
    assert stored == "report.txt\ncaf\ufffd.txt\n\ufffd half an emoji"
    assert step.payload is not None and "caf\ufffd.txt" in step.payload
    check_log(db_path, result.run_id, tmp_path)


@pytest.mark.parametrize("setting", ["max_planner_tries", "max_agent_steps", "max_patch_retries"])
@pytest.mark.parametrize("value", [True, 0, 2.5, -1])
def test_odd_plan_runner_counts_are_config_errors(setting: str, value: object) -> None:
    with pytest.raises(ConfigError, match=setting):
        PlanRunner(**{setting: value})  # type: ignore[arg-type]


def test_a_run_recorded_with_an_empty_plan_still_replays(db_path: Path, tmp_path: Path) -> None:
    # PlanRunner.run refuses an empty plan now; a run recorded with one before (it succeeded at once,
    # "0 of 0 step(s) succeeded") must still replay: the replay re-runs the recorded plan as it was
    store = SQLiteEventStore(db_path)
    runner = PlanRunner(store, tools=[flaky_tool(0)])  # type: ignore[list-item]
    log = runner._log(RunState(run_id="run_empty"))  # what run() did then, without today's check
    log.add(RunStarted, task="nothing to do", plan=Plan(steps=()), config=runner.config())
    log.start("nothing to do", created=runner.clock.now())
    result = asyncio.run(runner._drive(log, {}, None, {}))
    store.close()
    assert result.status == "succeeded" and result.state.plan == {}
    check_log(db_path, result.run_id, tmp_path)
