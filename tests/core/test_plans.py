"""Plans: DAG validation with named cycles, topological order, and the retry schedule."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agentcore.core import plans
from agentcore.core.events import RunStarted
from agentcore.core.plans import Plan, RetryPolicy, Step, validate_plan
from agentcore.errors import PlanError
from tests.support.strategies import step_lists


def steps(*spec: str) -> list[Step]:
    """``steps("a", "b<a", "c<a,b")``: ids with their dependencies after ``<``."""
    out = []
    for s in spec:
        sid, _, deps = s.partition("<")
        out.append(Step(id=sid, after=tuple(d for d in deps.split(",") if d)))
    return out


def test_a_valid_plan_returns_a_topological_order() -> None:
    order = validate_plan(steps("d<b,c", "b<a", "c<a", "a"))
    assert sorted(order) == ["a", "b", "c", "d"]
    assert order.index("a") < order.index("b") < order.index("d")
    assert order.index("c") < order.index("d")


@settings(max_examples=100, deadline=None)
@given(plan=step_lists(max_size=6), seed=st.randoms(use_true_random=False))
def test_topological_order_respects_every_dependency_in_any_listing_order(
    plan: list[Step], seed: random.Random
) -> None:
    shuffled = list(plan)
    seed.shuffle(shuffled)
    order = validate_plan(shuffled)
    assert sorted(order) == sorted(s.id for s in plan)
    position = {sid: i for i, sid in enumerate(order)}
    for s in plan:
        assert all(position[d] < position[s.id] for d in s.after)


def test_duplicate_ids_are_rejected() -> None:
    with pytest.raises(PlanError, match="duplicate step id 'a'"):
        validate_plan(steps("a", "b", "a"))


def test_unknown_dependencies_are_rejected_listing_the_known_steps() -> None:
    with pytest.raises(PlanError, match=r"step 'b' depends on unknown step 'x'; known steps: a, b"):
        validate_plan(steps("a", "b<x"))
    with pytest.raises(PlanError, match="unknown step 'x'; known steps: q"):
        validate_plan([Step(id="q", after=("x",))])


def test_known_ids_from_outside_the_plan_may_be_depended_on() -> None:
    assert validate_plan(steps("b<a"), known=["a"]) == ["b"]
    with pytest.raises(PlanError, match="unknown step 'a'"):
        validate_plan(steps("b<a"))


def test_self_dependency_is_a_cycle() -> None:
    with pytest.raises(PlanError, match="'a' depends on itself") as info:
        validate_plan(steps("a<a"))
    assert info.value.cycle == ("a", "a")


@pytest.mark.parametrize(
    "spec",
    [
        ("a<b", "b<a"),
        ("a<c", "b<a", "c<b", "d<a"),
        ("x", "a<x,e", "b<a", "c<b", "d<c", "e<d"),
    ],
)
def test_cycles_are_named_in_the_message_and_on_the_error(spec: tuple[str, ...]) -> None:
    with pytest.raises(PlanError, match="cycle") as info:
        validate_plan(steps(*spec))
    cycle = info.value.cycle
    assert cycle is not None and cycle[0] == cycle[-1] and len(cycle) >= 3
    assert " -> ".join(cycle) in str(info.value)
    deps = {s.id: set(s.after) for s in steps(*spec)}
    for before, after in itertools.pairwise(cycle):
        assert before in deps[after], f"{after} waits for {before} in the named cycle"


def test_a_plan_put_into_an_event_is_checked_unless_it_was_already() -> None:
    """An event holding a plan checks its DAG: once per plan object (a frozen plan stays valid, so
    a validated plan is not sorted again), and always for a plan that skipped validation."""
    at = datetime(2025, 1, 1, tzinfo=timezone.utc)
    plan = Plan(steps=tuple(steps("b<a", "a")))
    assert plans._CHECKED.get(id(plan)) is plan
    assert RunStarted(run_id="r", seq=1, at=at, task="t", plan=plan).plan is plan
    unchecked = Plan.model_construct(steps=tuple(steps("a<b", "b<a")))
    with pytest.raises(PlanError, match="cycle"):
        RunStarted(run_id="r", seq=1, at=at, task="t", plan=unchecked)


def test_plan_validates_itself() -> None:
    with pytest.raises(PlanError, match="cycle"):
        Plan(steps=tuple(steps("a<b", "b<a")))
    with pytest.raises(PlanError, match="unknown step"):
        Plan.model_validate({"steps": [{"id": "a", "after": ["ghost"]}]})
    plan = Plan.model_validate({"steps": [{"id": "a"}, {"id": "b", "after": ["a"]}], "max_parallel": 2})
    assert plan.step("b").after == ("a",)
    with pytest.raises(KeyError, match="no step 'c'; steps: a, b"):
        plan.step("c")


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"id": ""}, "id"),
        ({"id": "a", "timeout_s": 0}, "timeout_s"),
        ({"id": "a", "on_failure": "explode"}, "on_failure"),
        ({"id": "a", "afterwards": ["b"]}, "afterwards"),
    ],
)
def test_bad_steps_are_rejected_naming_the_field(fields: dict[str, object], name: str) -> None:
    with pytest.raises(ValidationError, match=name):
        Step.model_validate(fields)


# --------------------------------------------------------------------------------------------
# retry policy


def test_delay_doubles_from_the_base_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=5.0, jitter=False)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_scales_each_delay_into_half_to_full_with_the_given_rng() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=True)
    plain = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=False)
    for attempt in range(1, 8):
        got = policy.delay(attempt, random.Random(attempt * 7))
        assert got == plain.delay(attempt) * random.Random(attempt * 7).uniform(0.5, 1.0)
        assert 0.5 * plain.delay(attempt) <= got <= plain.delay(attempt)
    assert policy.delay(3, random.Random(1)) == policy.delay(3, random.Random(1)), "same seed, same delay"
    assert policy.delay(3) == policy.delay(3), "without an rng the delay is still deterministic"


@settings(max_examples=100, deadline=None)
@given(
    base=st.floats(0, 100),
    cap=st.floats(0, 1000),
    attempt=st.integers(1, 100_000),
    seed=st.integers(0, 2**32),
)
def test_delay_is_bounded_for_any_attempt(base: float, cap: float, attempt: int, seed: int) -> None:
    delay = RetryPolicy(base_delay=base, max_delay=cap).delay(attempt, random.Random(seed))
    assert 0 <= delay <= cap


def test_should_retry_only_retryable_kinds_within_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry("timeout", 1) and policy.should_retry("rate_limit", 2)
    assert not policy.should_retry("timeout", 3), "the third try was the last"
    assert not policy.should_retry("validation", 1) and not policy.should_retry("client_error", 1)
    assert RetryPolicy(retry_on=("validation",)).should_retry("validation", 1)


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 101}, "max_attempts"),
        ({"base_delay": -1}, "base_delay"),
        ({"max_delay": -0.1}, "max_delay"),
        ({"max_delay": float("inf")}, "max_delay"),
        ({"base_delay": float("nan")}, "base_delay"),
        ({"retry": 3}, "retry"),
    ],
)
def test_bad_retry_settings_are_rejected_naming_the_setting(fields: dict[str, object], name: str) -> None:
    with pytest.raises(ValidationError, match=name):
        RetryPolicy.model_validate(fields)


def test_delay_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1, got 0"):
        RetryPolicy().delay(0)
