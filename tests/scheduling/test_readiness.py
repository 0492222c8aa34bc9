"""``ReadyTracker``'s construction against the definitions it computes faster: heights (steps on
the longest path to the plan's end) and unmet dependencies, for plans in any order and any state."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from agentcore.core.state import StepState
from agentcore.scheduling.readiness import ReadyTracker

STATUSES = ("pending", "pending", "pending", "running", "succeeded", "failed", "skipped")
POLICIES = (None, "abort", "skip_dependents", "continue")


@st.composite
def plans(draw: st.DrawFn) -> tuple[dict[str, StepState], set[str]]:
    """Steps ``s0..sN`` with dependencies on earlier steps (and now and then on a step a revised
    plan dropped), random statuses and policies, listed in topological order or shuffled."""
    n = draw(st.integers(0, 14))
    ids = [f"s{i}" for i in range(n)]
    steps = []
    for i, sid in enumerate(ids):
        after = tuple(draw(st.lists(st.sampled_from(ids[:i]), max_size=3, unique=True))) if i else ()
        if draw(st.booleans()) and draw(st.booleans()):
            after += ("dropped",)
        steps.append(
            StepState(
                id=sid, after=after, status=draw(st.sampled_from(STATUSES)), on_failure=draw(st.sampled_from(POLICIES))
            )
        )
    order = draw(st.permutations(steps)) if draw(st.booleans()) else steps
    held = set(draw(st.lists(st.sampled_from(ids), max_size=2))) if ids else set()
    return {s.id: s for s in order}, held


@settings(max_examples=300, deadline=None)
@given(plans())
def test_heights_and_readiness_match_their_definitions(case: tuple[dict[str, StepState], set[str]]) -> None:
    plan, held = case
    tracker = ReadyTracker(plan, "skip_dependents", held)
    dependents = {sid: [d for d, s in plan.items() if sid in s.after] for sid in plan}

    @cache
    def height(sid: str) -> int:
        return 1 + max((height(d) for d in dependents[sid]), default=0)

    assert tracker.height == {sid: height(sid) for sid in plan}

    def met(dep: str) -> bool:
        s = plan.get(dep)
        return s is not None and (
            s.status == "succeeded" or (s.status == "failed" and (s.on_failure or "skip_dependents") == "continue")
        )

    unmet = {sid: sum(not met(d) for d in s.after) for sid, s in plan.items() if s.status == "pending"}
    assert tracker.pending() == sorted(unmet)
    order = list(plan)
    ready = sorted(
        (sid for sid, n in unmet.items() if n == 0 and sid not in held), key=lambda s: (-height(s), order.index(s))
    )
    assert tracker.pop_ready(len(plan) + 1) == ready
