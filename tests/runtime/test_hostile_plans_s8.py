"""Hostile plans and tools given to ``PlanRunner``: odd delays and deadlines, empty plans, cycles,
tools that return text with no UTF-8. Real SQLite files; each finished run's log must fold, inspect
and replay (``tests.support.hostile.check_log``).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

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
@pytest.mark.parametrize("value", [1e300, MAX_DELAY_S * 2, math.inf, math.nan, -1.0])
def test_retry_delays_beyond_a_year_or_not_finite_are_refused_when_given(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        RetryPolicy(**{field: value})


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
