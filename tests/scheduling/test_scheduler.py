"""The scheduler: readiness, ordering, parallelism, retries and backoff, failure policies, timeouts."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcore.core.events import RunStarted, StatePatched, StepFailed, StepSkipped, StepStarted, StepSucceeded
from agentcore.core.fold import RunState, fold
from agentcore.core.patches import ReplacePlan
from agentcore.core.plans import Plan, RetryPolicy, Step
from agentcore.errors import (
    ConfigError,
    ModelOutputError,
    ModelRequestError,
    ModelUnavailable,
    ToolError,
    ToolTimeout,
)
from agentcore.scheduling.readiness import ReadyTracker
from agentcore.scheduling.scheduler import (
    MemorySink,
    Scheduler,
    StepResult,
    StepRun,
    classify_error,
    classify_result_kind,
)
from agentcore.testing.clock import FakeClock

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test function in a fresh event loop."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


Behaviour = Callable[[StepRun], Awaitable[StepResult]]


def start_state(plan: Plan, run_id: str = "r1") -> RunState:
    return fold([RunStarted(run_id=run_id, seq=1, at=T0, task="test", plan=plan)])


async def ok(run: StepRun) -> StepResult:
    return StepResult(ok=True, payload=f"{run.step.id} done")


def make_scheduler(
    plan: Plan,
    behaviours: dict[str, Behaviour] | None = None,
    *,
    clock: FakeClock | None = None,
    calls: list[tuple[str, int, str]] | None = None,
    **kwargs: object,
) -> tuple[Scheduler, MemorySink]:
    clock = clock or FakeClock()
    sink = MemorySink(start_state(plan), clock=clock)
    table = behaviours or {}

    async def execute(run: StepRun) -> StepResult:
        if calls is not None:
            calls.append((run.step.id, run.attempt, run.idempotency_key))
        return await table.get(run.step.id, ok)(run)

    return Scheduler(sink, execute, clock=clock, **kwargs), sink  # type: ignore[arg-type]


def of_type(sink: MemorySink, cls: type) -> list:
    return [e for e in sink.events if isinstance(e, cls)]


def failing(*kinds_then_ok: str) -> Behaviour:
    """Fail with these kinds in turn, then succeed."""
    script = list(kinds_then_ok)

    async def run(r: StepRun) -> StepResult:
        if script:
            kind = script.pop(0)
            return StepResult(ok=False, kind=kind, error=f"boom ({kind})")
        return StepResult(ok=True, payload="finally")

    return run


DIAMOND = Plan(
    steps=(
        Step(id="a"),
        Step(id="c", after=("a",)),
        Step(id="b", after=("a",)),
        Step(id="d", after=("b", "c")),
    ),
    max_parallel=4,
)

# ------------------------------------------------------------------------------------------
# readiness


def test_tracker_hands_out_steps_when_their_dependencies_are_done() -> None:
    state = start_state(DIAMOND)
    tracker = ReadyTracker(state.plan, "skip_dependents")
    assert tracker.pop_ready(10) == ["a"]
    assert tracker.pop_ready(10) == []
    tracker.done("a")
    assert tracker.pop_ready(10) == ["c", "b"]  # equal heights: plan order, not id order
    tracker.done("b")
    assert not tracker.has_ready
    tracker.done("c")
    assert tracker.pop_ready(1) == ["d"]


@sync
async def test_when_slots_are_short_the_longest_remaining_path_starts_first() -> None:
    """Critical-path-first: with one slot, the head of the 3-step chain goes before the short steps
    listed ahead of it in the plan; equal heights keep plan order; the log records that order."""
    plan = Plan(
        steps=(
            Step(id="short2"), Step(id="short1"), Step(id="solo"),
            Step(id="head"), Step(id="mid", after=("head",)), Step(id="tail", after=("mid",)),
            Step(id="pair", ), Step(id="pair_end", after=("pair",)),
        ),
        max_parallel=1,
    )  # fmt: skip
    tracker = ReadyTracker(start_state(plan).plan, "skip_dependents")
    assert tracker.height["head"] == 3 and tracker.height["pair"] == 2 and tracker.height["solo"] == 1
    assert tracker.pop_ready(8) == ["head", "pair", "short2", "short1", "solo"]
    sched, sink = make_scheduler(plan)
    assert (await sched.run()).status == "succeeded"
    started = [e.step_id for e in of_type(sink, StepStarted)]
    # after "head": mid and pair (height 2) in plan order; then every height-1 step in plan order
    assert started == ["head", "mid", "pair", "short2", "short1", "solo", "tail", "pair_end"]


def _noted(plan: Plan) -> tuple[Scheduler, MemorySink, list[tuple[str, Any]]]:
    """A scheduler for ``plan`` and what happened, in order: ``("append", [(event type, step id),
    ...])`` for each append to its sink, ``("began", step id)`` when an attempt begins and
    ``("slept", step id)`` when it comes back from its one wait (one loop iteration)."""
    seen: list[tuple[str, Any]] = []

    async def note(run: StepRun) -> StepResult:
        seen.append(("began", run.step.id))
        await asyncio.sleep(0)
        seen.append(("slept", run.step.id))
        return StepResult(ok=True)

    sched, sink = make_scheduler(plan, {s.id: note for s in plan.steps})
    emit = sink.emit

    def recording(drafts: Any) -> int:
        seen.append(("append", [(d.func.__name__, d.keywords["step_id"]) for d in drafts]))
        return emit(drafts)

    sink.emit = recording  # type: ignore[method-assign]
    return sched, sink, seen


@sync
async def test_the_head_of_the_longest_chain_is_recorded_and_begun_before_the_rest_of_its_wave() -> None:
    """The head of the longest remaining chain is recorded alone and its attempt runs up to its
    first wait before the rest of the wave is recorded (one batch, in step-id order); the rest
    begin in priority order. Every ``StepStarted`` is appended before its attempt begins."""
    plan = Plan(
        steps=(Step(id="b_short"), Step(id="a_short"), Step(id="z_head"), Step(id="z_tail", after=("z_head",))),
        max_parallel=3,
    )
    sched, sink, seen = _noted(plan)
    assert (await sched.run()).status == "succeeded"
    assert seen[:6] == [
        ("append", [("StepStarted", "z_head")]),
        ("began", "z_head"),  # up to its wait, before the others are even recorded
        ("append", [("StepStarted", "a_short"), ("StepStarted", "b_short")]),  # step-id order
        ("slept", "z_head"),
        ("began", "b_short"),  # then plan order among equals: b_short is first in the plan
        ("began", "a_short"),
    ]
    appended = [sid for kind, what in seen if kind == "append" for _, sid in what]
    for i, (kind, sid) in enumerate(seen):
        if kind == "began":
            assert ("StepStarted", sid) in [x for k, what in seen[:i] if k == "append" for x in what]
    assert sorted(appended) == sorted(["z_head", "a_short", "b_short", "z_tail"] * 2)
    assert sink.state == fold(sink.events, start=start_state(plan))


@sync
async def test_a_wave_of_chains_of_one_step_is_one_batch_in_step_id_order() -> None:
    """Nothing depends on any ready step (the head's remaining chain is itself): nothing to gain
    from recording the head first, so the wave is one ``StepStarted`` batch in step-id order,
    recorded before any of its attempts begins (they begin in plan order)."""
    plan = Plan(steps=(Step(id="c"), Step(id="a"), Step(id="b")), max_parallel=3)
    sched, _, seen = _noted(plan)
    assert (await sched.run()).status == "succeeded"
    assert seen[:4] == [
        ("append", [("StepStarted", "a"), ("StepStarted", "b"), ("StepStarted", "c")]),
        ("began", "c"),
        ("began", "a"),
        ("began", "b"),
    ]


@sync
async def test_the_recorded_order_is_the_same_on_every_run() -> None:
    """The same plan and the same outcomes give the same log, event for event (W4 (b)'s DAG shape,
    every step a zero-length wait on the loop)."""
    steps = []
    rng = random.Random(3)
    for i in range(40):
        after = tuple(f"s{j:02d}" for j in sorted(rng.sample(range(i), min(i, 2))))
        steps.append(Step(id=f"s{i:02d}", after=after))
    plan = Plan(steps=tuple(steps), max_parallel=4)

    async def one_run() -> list[tuple[str, Any]]:
        sched, sink, seen = _noted(plan)
        assert (await sched.run()).status == "succeeded"
        assert sink.state == fold(sink.events, start=start_state(plan))
        return seen

    first = await one_run()
    assert sum(kind == "append" for kind, _ in first) > len(steps) / 4  # waves were split: not one batch
    for _ in range(3):
        assert await one_run() == first


def test_tracker_built_from_a_resumed_state_counts_succeeded_steps_as_done() -> None:
    state = start_state(DIAMOND)
    at = T0
    state = fold(
        [
            StepStarted(run_id="r1", seq=2, at=at, step_id="a", attempt=1, idempotency_key="r1/a/1"),
            StepSucceeded(run_id="r1", seq=3, at=at, step_id="a", attempt=1),
            StepStarted(run_id="r1", seq=4, at=at, step_id="b", attempt=1, idempotency_key="r1/b/1"),
            StepSucceeded(run_id="r1", seq=5, at=at, step_id="b", attempt=1),
        ],
        start=state,
    )
    tracker = ReadyTracker(state.plan, "skip_dependents")
    assert tracker.pop_ready(10) == ["c"]
    tracker.done("c")
    assert tracker.pop_ready(10) == ["d"]


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[Step], list[int]]:
    n = draw(st.integers(1, 25))
    steps = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        steps.append(Step(id=f"s{i:02d}", after=tuple(f"s{d:02d}" for d in deps)))
    order = draw(st.permutations(list(range(n))))
    return steps, order


@settings(max_examples=60, deadline=None)
@given(dags())
def test_tracker_yields_every_step_once_in_a_dependency_respecting_order(case: tuple[list[Step], list[int]]) -> None:
    steps, choice = case
    state = start_state(Plan(steps=tuple(steps)))
    tracker = ReadyTracker(state.plan, "skip_dependents")
    done: list[str] = []
    running: list[str] = []
    pick = iter(choice * 2)
    while True:
        running += tracker.pop_ready(3)
        if not running:
            break
        sid = running.pop(next(pick) % len(running))  # finish running steps in an arbitrary order
        for dep in state.plan[sid].after:
            assert dep in done, f"{sid} ran before its dependency {dep}"
        done.append(sid)
        tracker.done(sid)
    assert sorted(done) == sorted(s.id for s in steps)


# ------------------------------------------------------------------------------------------
# ordering and parallelism


@sync
async def test_a_wave_is_recorded_head_first_then_the_rest() -> None:
    sched, sink = make_scheduler(DIAMOND)
    result = await sched.run()
    assert result.status == "succeeded", result.reason
    types = [(type(e).__name__, getattr(e, "step_id", None)) for e in sink.events]
    assert types == [
        ("StepStarted", "a"),
        ("StepSucceeded", "a"),
        ("StepStarted", "c"),  # b and c both head a chain of 2; c comes first in the plan
        ("StepStarted", "b"),
        ("StepSucceeded", "c"),  # c returned at once, before b began
        ("StepSucceeded", "b"),
        ("StepStarted", "d"),
        ("StepSucceeded", "d"),
    ]
    assert [e.seq for e in sink.events] == list(range(2, 10))
    succ = {e.step_id: e for e in of_type(sink, StepSucceeded)}
    starts = {e.step_id: e for e in of_type(sink, StepStarted)}
    assert all(succ[s].caused_by == starts[s].seq for s in "abcd")
    assert starts["b"].idempotency_key == "r1/b/1"
    assert all(s.status == "succeeded" for s in sink.state.plan.values())
    assert result.reason.startswith("4 of 4 step(s) succeeded")


@sync
async def test_successes_and_the_starts_they_enable_are_one_append() -> None:
    """Successes seen together go in the same append as the first ``StepStarted`` of the steps they
    made ready (after them); the head of a wave is recorded before the rest; successes with
    nothing to start are alone."""
    sched, sink = make_scheduler(DIAMOND)
    batches: list[list[tuple[str, str]]] = []
    emit = sink.emit

    def recording(drafts: Any) -> int:
        batches.append([(d.func.__name__, d.keywords["step_id"]) for d in drafts])
        return emit(drafts)

    sink.emit = recording  # type: ignore[method-assign]
    assert (await sched.run()).status == "succeeded"
    assert batches == [
        [("StepStarted", "a")],
        [("StepSucceeded", "a"), ("StepStarted", "c")],
        [("StepStarted", "b")],
        [("StepSucceeded", "c")],  # c returned while b was recorded; d still waits for b
        [("StepSucceeded", "b"), ("StepStarted", "d")],
        [("StepSucceeded", "d")],
    ]
    starts = {e.step_id: e for e in of_type(sink, StepStarted)}
    assert all(e.caused_by == starts[e.step_id].seq for e in of_type(sink, StepSucceeded))


@sync
async def test_independent_steps_really_run_at_the_same_time() -> None:
    # each step waits for an event only the other one sets: sequential execution would hang
    ping, pong = asyncio.Event(), asyncio.Event()

    async def left(run: StepRun) -> StepResult:
        ping.set()
        await pong.wait()
        return StepResult(ok=True)

    async def right(run: StepRun) -> StepResult:
        pong.set()
        await ping.wait()
        return StepResult(ok=True)

    plan = Plan(steps=(Step(id="left"), Step(id="right")), max_parallel=2)
    sched, _ = make_scheduler(plan, {"left": left, "right": right}, clock=FakeClock(autojump=False))
    result = await asyncio.wait_for(sched.run(), timeout=5)
    assert result.status == "succeeded"


@sync
async def test_concurrency_high_water_mark_equals_max_parallel() -> None:
    clock = FakeClock()
    live = 0
    high = 0

    async def work(run: StepRun) -> StepResult:
        nonlocal live, high
        live += 1
        high = max(high, live)
        await clock.sleep(1 + int(run.step.id[1:]) % 3)
        live -= 1
        return StepResult(ok=True)

    steps = tuple(Step(id=f"s{i:02d}") for i in range(12))
    plan = Plan(steps=steps, max_parallel=3)
    sched, sink = make_scheduler(plan, dict.fromkeys((s.id for s in steps), work), clock=clock)
    assert (await sched.run()).status == "succeeded"
    assert high == 3
    assert len(of_type(sink, StepSucceeded)) == 12
    # the first wave is the three smallest ids
    assert [e.step_id for e in of_type(sink, StepStarted)[:3]] == ["s00", "s01", "s02"]


@sync
async def test_same_outcomes_give_the_same_log() -> None:
    async def one_run() -> list[tuple[str, str | None, int]]:
        sched, sink = make_scheduler(
            DIAMOND, {"b": failing("timeout"), "c": failing("rate_limit", "server_error")}, seed=7
        )
        await sched.run()
        return [(type(e).__name__, getattr(e, "step_id", None), e.seq) for e in sink.events]

    assert await one_run() == await one_run()


# ------------------------------------------------------------------------------------------
# retries and backoff


@sync
async def test_backoff_follows_the_retry_policy_with_a_seeded_rng() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay=2.0, max_delay=5.0, jitter=True)
    plan = Plan(steps=(Step(id="flaky", retry=policy),))
    clock = FakeClock()
    calls: list[tuple[str, int, str]] = []
    sched, sink = make_scheduler(
        plan, {"flaky": failing("timeout", "rate_limit", "connection")}, clock=clock, calls=calls, seed=42
    )
    result = await sched.run()
    assert result.status == "succeeded"
    expected = [policy.delay(a, random.Random(f"42/r1/flaky/{a}")) for a in (1, 2, 3)]
    assert expected[2] <= 5.0  # capped by max_delay
    failures = of_type(sink, StepFailed)
    assert [f.kind for f in failures] == ["timeout", "rate_limit", "connection"]
    assert [(f.next_attempt_at - f.at).total_seconds() for f in failures] == pytest.approx(expected)
    assert all(f.retryable for f in failures)
    assert clock.sleeps == pytest.approx(expected)  # the scheduler waited exactly the backoff
    assert clock.elapsed == pytest.approx(sum(expected))
    assert calls == [("flaky", a, f"r1/flaky/{a}") for a in (1, 2, 3, 4)]
    assert sink.state.plan["flaky"].attempts == 4


@sync
async def test_retries_exhausted_fail_the_step_naming_the_attempts() -> None:
    plan = Plan(steps=(Step(id="x", retry=RetryPolicy(max_attempts=2, base_delay=1)),))
    sched, sink = make_scheduler(plan, {"x": failing("timeout", "timeout", "timeout")})
    result = await sched.run()
    assert result.status == "failed"
    last = of_type(sink, StepFailed)[-1]
    assert last.next_attempt_at is None and last.retryable
    assert "gave up after 2 of 2 attempts" in last.error
    assert sink.state.plan["x"].status == "failed"
    assert "'x'" in result.reason and "gave up" in result.reason


@pytest.mark.parametrize(
    ("exc", "kind", "retried"),
    [
        (ModelUnavailable("server kept failing"), "rate_limit", True),
        (ModelRequestError("slow down", status_code=429), "rate_limit", True),
        (ModelRequestError("bad gateway", status_code=502), "server_error", True),
        (ModelRequestError("bad request", status_code=400), "client_error", False),
        (ModelOutputError("not JSON"), "validation", False),
        (ToolError("no such row"), "tool_error", False),
        (ToolTimeout("took too long"), "timeout", True),
        (TimeoutError(), "timeout", True),
        (ConnectionResetError("reset by peer"), "connection", True),
        (ValueError("bug"), "error", False),
    ],
)
@sync
async def test_exceptions_are_classified_and_retried_by_kind(exc: Exception, kind: str, retried: bool) -> None:
    assert classify_error(exc) == kind
    raised = False

    async def once(run: StepRun) -> StepResult:
        nonlocal raised
        if not raised:
            raised = True
            raise exc
        return StepResult(ok=True)

    plan = Plan(steps=(Step(id="s"),), retry=RetryPolicy(max_attempts=2, base_delay=0.1))
    sched, sink = make_scheduler(plan, {"s": once})
    result = await sched.run()
    first = of_type(sink, StepFailed)[0]
    assert first.kind == kind
    assert type(exc).__name__ in first.error
    assert (result.status == "succeeded") is retried
    assert (first.next_attempt_at is not None) is retried


def test_tool_result_kinds_map_to_failure_kinds() -> None:
    assert classify_result_kind("unknown_tool") == "validation"
    assert classify_result_kind("timeout") == "timeout"
    assert classify_result_kind("tool_error") == "tool_error"
    # a crash is classified by the class of what the tool raised, never by its message
    assert classify_result_kind("error", ConnectionResetError) == "connection"
    assert classify_result_kind("error", TimeoutError) == "timeout"
    assert classify_result_kind("error", ValueError) == "error"
    assert classify_result_kind("error") == "error"

    class Busy(Exception):
        kind = "transient"

    assert classify_error(Busy()) == "transient"


@sync
async def test_a_plan_can_mark_tool_errors_transient() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.5, retry_on=("tool_error", "timeout"))
    plan = Plan(steps=(Step(id="t", retry=policy),))
    sched, sink = make_scheduler(plan, {"t": failing("tool_error")})
    assert (await sched.run()).status == "succeeded"
    assert of_type(sink, StepFailed)[0].retryable


# ------------------------------------------------------------------------------------------
# failure policies


def branching(on_failure: str) -> Plan:
    return Plan(
        steps=(
            Step(id="a"),
            Step(id="bad", after=("a",)),
            Step(id="child", after=("bad",)),
            Step(id="grandchild", after=("child",)),
            Step(id="other", after=("a",)),
        ),
        on_failure=on_failure,  # type: ignore[arg-type]
        retry=RetryPolicy(max_attempts=1),
    )


@sync
async def test_skip_dependents_skips_transitive_dependents_and_keeps_other_branches() -> None:
    sched, sink = make_scheduler(branching("skip_dependents"), {"bad": failing("validation")})
    result = await sched.run()
    plan = sink.state.plan
    assert plan["other"].status == "succeeded"
    assert plan["bad"].status == "failed"
    assert plan["child"].status == plan["grandchild"].status == "skipped"
    skips = of_type(sink, StepSkipped)
    assert [s.step_id for s in skips] == ["child", "grandchild"]
    assert all("step 'bad' failed" in s.reason for s in skips)
    failed = of_type(sink, StepFailed)[0]
    assert skips[0].seq == failed.seq + 1  # the fallout is recorded with the failure
    assert result.status == "failed"
    assert result.failed == ("bad",) and result.skipped == ("child", "grandchild")
    assert "'bad'" in result.reason and "child" in result.reason


@sync
async def test_abort_cancels_running_steps_and_skips_the_rest() -> None:
    cancelled = asyncio.Event()
    clock = FakeClock()

    async def slow(run: StepRun) -> StepResult:
        try:
            await clock.sleep(100)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return StepResult(ok=True)

    async def bad(run: StepRun) -> StepResult:
        await clock.sleep(1)
        raise ModelOutputError("garbage")

    plan = Plan(
        steps=(Step(id="bad"), Step(id="slow"), Step(id="later", after=("slow",))),
        on_failure="abort",
        retry=RetryPolicy(max_attempts=1),
    )
    sched, sink = make_scheduler(plan, {"bad": bad, "slow": slow}, clock=clock)
    result = await sched.run()
    assert cancelled.is_set()
    assert result.status == "failed"
    assert "step 'bad' failed" in result.reason and "abort" in result.reason
    plan_state = sink.state.plan
    assert plan_state["slow"].status == "failed"
    slow_fail = next(e for e in of_type(sink, StepFailed) if e.step_id == "slow")
    assert slow_fail.kind == "cancelled"
    assert plan_state["later"].status == "skipped"
    assert clock.elapsed < 100


async def _abort_with_siblings(bad_at: int, sibling_at: list[int], bad_name: str, fail_by_result: bool) -> None:
    """One step fails at ``bad_at`` (virtual seconds) under ``abort`` while siblings finish at
    ``sibling_at``; siblings that returned must be recorded as succeeded with their result."""
    clock = FakeClock()
    returned: set[str] = set()

    def sibling(at: int) -> Behaviour:
        async def run(r: StepRun) -> StepResult:
            await clock.sleep(at)
            returned.add(r.step.id)
            return StepResult(ok=True, payload=f"{r.step.id} side effect done")

        return run

    async def bad(r: StepRun) -> StepResult:
        await clock.sleep(bad_at)
        if fail_by_result:
            return StepResult(ok=False, kind="validation", error="bad output")
        raise ModelOutputError("garbage")

    names = [f"s{i}" for i in range(len(sibling_at))]
    plan = Plan(
        steps=(Step(id=bad_name), *(Step(id=n) for n in names), Step(id="later", after=(bad_name, *names))),
        on_failure="abort",
        retry=RetryPolicy(max_attempts=1),
        max_parallel=len(names) + 1,
    )
    behaviours = {bad_name: bad, **{n: sibling(t) for n, t in zip(names, sibling_at, strict=True)}}
    sched, sink = make_scheduler(plan, behaviours, clock=clock)
    result = await sched.run()
    assert result.status == "failed" and f"step {bad_name!r} failed" in result.reason
    state = sink.state.plan
    for n, t in zip(names, sibling_at, strict=True):
        outcomes = [e for e in sink.events if isinstance(e, (StepSucceeded, StepFailed)) and e.step_id == n]
        assert len(outcomes) == 1, (n, outcomes)
        if n in returned:
            assert isinstance(outcomes[0], StepSucceeded), (n, t, bad_at, outcomes[0])
            assert state[n].status == "succeeded" and state[n].payload == f"{n} side effect done"
        else:
            assert isinstance(outcomes[0], StepFailed) and outcomes[0].kind == "cancelled", (n, t, bad_at)
            # only a step still running is cancelled: one due at the failure's own moment may not
            # have begun yet (the failing step heads the wave: it begins before the rest are recorded)
            assert t >= bad_at
    assert returned >= {n for n, t in zip(names, sibling_at, strict=True) if t < bad_at}
    assert state["later"].status == "skipped"
    assert sink.state == fold(sink.events, start=start_state(plan))  # the log alone gives the state


@given(
    bad_at=st.integers(0, 4),
    sibling_at=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    bad_first=st.booleans(),
    fail_by_result=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_abort_records_a_sibling_that_already_returned_as_succeeded(
    bad_at: int, sibling_at: list[int], bad_first: bool, fail_by_result: bool
) -> None:
    """Issue 11 item 4: siblings finishing before, in the same wake-up as, or after the failure."""
    name = "a_bad" if bad_first else "z_bad"  # settled before or after the siblings in a wake-up
    asyncio.run(_abort_with_siblings(bad_at, sibling_at, name, fail_by_result))


@sync
async def test_continue_tolerates_the_failure_and_runs_dependents() -> None:
    sched, sink = make_scheduler(branching("continue"), {"bad": failing("validation")})
    result = await sched.run()
    plan = sink.state.plan
    assert plan["bad"].status == "failed"
    assert plan["child"].status == plan["grandchild"].status == plan["other"].status == "succeeded"
    assert result.status == "succeeded"
    assert result.tolerated == ("bad",)
    assert "tolerated" in result.reason and "'bad'" in result.reason


@sync
async def test_a_step_can_override_the_plan_failure_policy() -> None:
    plan = Plan(
        steps=(Step(id="bad", on_failure="continue"), Step(id="next", after=("bad",))),
        on_failure="abort",
        retry=RetryPolicy(max_attempts=1),
    )
    sched, sink = make_scheduler(plan, {"bad": failing("error")})
    result = await sched.run()
    assert result.status == "succeeded"
    assert sink.state.plan["next"].status == "succeeded"


# ------------------------------------------------------------------------------------------
# timeouts


@sync
async def test_a_step_longer_than_its_timeout_fails_with_kind_timeout_and_is_retried() -> None:
    clock = FakeClock()
    attempts: list[int] = []

    async def hang_once(run: StepRun) -> StepResult:
        attempts.append(run.attempt)
        if run.attempt == 1:
            await asyncio.Event().wait()  # never set: only the timeout ends this
        return StepResult(ok=True, payload="second time lucky")

    policy = RetryPolicy(max_attempts=2, base_delay=1.0, jitter=False)
    plan = Plan(steps=(Step(id="s", timeout_s=5, retry=policy),))
    sched, sink = make_scheduler(plan, {"s": hang_once}, clock=clock)
    result = await sched.run()
    assert result.status == "succeeded"
    fail = of_type(sink, StepFailed)[0]
    assert fail.kind == "timeout" and "timeout of 5s" in fail.error
    assert attempts == [1, 2]
    assert clock.elapsed == pytest.approx(6.0)  # 5 s timeout + 1 s backoff, all virtual


@sync
async def test_the_run_deadline_stops_running_steps_and_fails_the_run() -> None:
    clock = FakeClock()

    async def forever(run: StepRun) -> StepResult:
        await clock.sleep(1_000)
        return StepResult(ok=True)

    plan = Plan(steps=(Step(id="long"), Step(id="after", after=("long",))))
    sched, sink = make_scheduler(plan, {"long": forever}, clock=clock, deadline_s=30)
    result = await sched.run()
    assert result.status == "failed"
    assert "deadline of 30s" in result.reason and "after" in result.reason
    fail = of_type(sink, StepFailed)[0]
    assert fail.step_id == "long" and fail.kind == "deadline"  # its own kind: no error text is parsed
    assert sink.state.plan["after"].status == "pending"
    assert clock.elapsed == pytest.approx(30)


@sync
async def test_the_deadline_also_cuts_a_backoff_short() -> None:
    clock = FakeClock()
    plan = Plan(steps=(Step(id="s", retry=RetryPolicy(max_attempts=5, base_delay=100, max_delay=1000, jitter=False)),))
    sched, sink = make_scheduler(plan, {"s": failing("timeout", "timeout")}, clock=clock, deadline_s=50)
    result = await sched.run()
    assert result.status == "failed" and "deadline" in result.reason
    assert clock.elapsed == pytest.approx(50)
    assert sink.state.plan["s"].attempts == 1


def test_a_bad_deadline_is_refused() -> None:
    with pytest.raises(ConfigError, match="deadline_s must be > 0"):
        make_scheduler(DIAMOND, deadline_s=0)


# ------------------------------------------------------------------------------------------
# plan revision and resume


@sync
async def test_a_revised_plan_is_picked_up_and_finished_steps_stay_finished() -> None:
    plan = Plan(steps=(Step(id="survey"), Step(id="old", after=("survey",))))
    calls: list[tuple[str, int, str]] = []
    clock = FakeClock()
    sink = MemorySink(start_state(plan), clock=clock)

    async def execute(run: StepRun) -> StepResult:
        calls.append((run.step.id, run.attempt, run.idempotency_key))
        return StepResult(ok=True, payload=run.step.id)

    async def revise(step_id: str) -> None:
        if step_id == "survey":
            new = ReplacePlan(
                steps=(Step(id="survey"), Step(id="fix", after=("survey",)), Step(id="verify", after=("fix",)))
            )
            sink.emit([functools.partial(StatePatched, ops=(new,), source="processor")])

    result = await Scheduler(sink, execute, clock=clock, on_outcome=revise).run()
    assert result.status == "succeeded"
    assert [c[0] for c in calls] == ["survey", "fix", "verify"]
    assert list(sink.state.plan) == ["survey", "fix", "verify"]
    assert sink.state.plan["survey"].payload == "survey"  # kept with its result


@sync
async def test_a_step_re_created_by_a_revision_keeps_counting_attempts() -> None:
    plan = Plan(steps=(Step(id="x"),), retry=RetryPolicy(max_attempts=1))
    clock = FakeClock()
    sink = MemorySink(start_state(plan), clock=clock)
    keys: list[str] = []

    async def execute(run: StepRun) -> StepResult:
        keys.append(run.idempotency_key)
        return StepResult(ok=run.attempt > 1, kind="validation", error="first try is wrong")

    async def revise(step_id: str) -> None:
        if sink.state.plan[step_id].status == "failed":  # try again with a corrected step
            sink.emit([functools.partial(StatePatched, ops=(ReplacePlan(steps=(Step(id="x", description="fixed"),)),))])

    result = await Scheduler(sink, execute, clock=clock, on_outcome=revise).run()
    assert result.status == "succeeded", result.reason
    assert keys == ["r1/x/1", "r1/x/2"]  # never the same key for two different attempts


@sync
async def test_an_interrupted_attempt_gets_a_new_attempt_with_a_new_key() -> None:
    state = start_state(DIAMOND)
    state = fold(
        [
            StepStarted(run_id="r1", seq=2, at=T0, step_id="a", attempt=1, idempotency_key="r1/a/1"),
            StepSucceeded(run_id="r1", seq=3, at=T0, step_id="a", attempt=1),
            StepStarted(run_id="r1", seq=4, at=T0, step_id="b", attempt=1, idempotency_key="r1/b/1"),
        ],
        start=state,
    )
    calls: list[tuple[str, int, str]] = []
    clock = FakeClock()
    sink = MemorySink(state, clock=clock)

    async def execute(run: StepRun) -> StepResult:
        calls.append((run.step.id, run.attempt, run.idempotency_key))
        return StepResult(ok=True)

    result = await Scheduler(sink, execute, clock=clock).run()
    assert result.status == "succeeded"
    assert ("b", 2, "r1/b/2") in calls
    assert all(c[0] != "a" for c in calls)
    interrupted = of_type(sink, StepFailed)[0]
    assert interrupted.step_id == "b" and interrupted.kind == "interrupted" and interrupted.seq == 5


@sync
async def test_an_interrupted_last_attempt_fails_under_the_policy() -> None:
    plan = Plan(steps=(Step(id="a"), Step(id="b", after=("a",))), retry=RetryPolicy(max_attempts=1))
    state = fold(
        [StepStarted(run_id="r1", seq=2, at=T0, step_id="a", attempt=1, idempotency_key="r1/a/1")],
        start=start_state(plan),
    )
    sink = MemorySink(state, clock=FakeClock())
    result = await Scheduler(sink, ok, clock=FakeClock()).run()
    assert result.status == "failed"
    assert sink.state.plan["a"].status == "failed" and sink.state.plan["b"].status == "skipped"
    assert "no attempts left" in (sink.state.plan["a"].error or "")


@sync
async def test_a_step_waiting_out_a_backoff_on_resume_waits_until_its_time() -> None:
    plan = Plan(steps=(Step(id="a"),))
    clock = FakeClock()
    sink = MemorySink(start_state(plan), clock=clock)
    due = clock.now() + timedelta(seconds=12)
    result = await Scheduler(sink, ok, clock=clock, not_before={"a": due}).run()
    assert result.status == "succeeded"
    assert of_type(sink, StepStarted)[0].at == due


# ------------------------------------------------------------------------------------------
# the fake clock


@sync
async def test_fake_clock_wakes_sleepers_in_time_order_without_waiting() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def nap(name: str, s: float) -> None:
        await clock.sleep(s)
        woke.append((name, clock.elapsed))

    await asyncio.gather(nap("long", 3600), nap("short", 1), nap("mid", 60))
    assert woke == [("short", 1), ("mid", 60), ("long", 3600)]
    assert clock.now() == T0 + timedelta(seconds=3600)


@sync
async def test_fake_clock_without_autojump_moves_only_when_advanced() -> None:
    clock = FakeClock(autojump=False)
    task = asyncio.ensure_future(clock.sleep(10))
    await asyncio.sleep(0)
    clock.advance(9)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1)
    await asyncio.wait_for(task, timeout=1)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
