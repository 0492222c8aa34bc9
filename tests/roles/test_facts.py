"""The one rendering of known facts (``roles/facts.py``) shared by the controller, the processor and a
plan step's sub-task."""

from __future__ import annotations

from datetime import datetime, timezone

from agentcore.core.events import RunStarted, StatePatched
from agentcore.core.fold import fold
from agentcore.core.patches import AppendKnownFacts, FactInput
from agentcore.core.text import clip
from agentcore.roles.facts import fact_line, newest_facts

AT = datetime(2024, 1, 1, tzinfo=timezone.utc)


def state_with(*batches: list[tuple[str, str]]):
    events: list = [RunStarted(run_id="r", seq=1, at=AT, task="t")]
    for batch in batches:
        facts = tuple(FactInput(key=k, value=v, source="s") for k, v in batch)
        events.append(StatePatched(run_id="r", seq=len(events) + 1, at=AT, ops=(AppendKnownFacts(facts=facts),)))
    return fold(events)


def test_newest_facts_are_the_last_set_oldest_first_with_ties_in_the_order_given() -> None:
    state = state_with([("a", "1"), ("b", "2"), ("c", "3")], [("d", "4")], [("a", "5")])
    assert [f.key for f in newest_facts(state, 10)] == ["b", "c", "d", "a"]  # a was set again, last
    assert [f.key for f in newest_facts(state, 2)] == ["d", "a"]
    assert [f.key for f in newest_facts(state, 3)] == ["c", "d", "a"]  # c after b: same seq, order given


def test_a_fact_line_clips_and_shows_provenance_only_when_asked() -> None:
    fact = state_with([("k" * 30, "v" * 500)]).known_facts["k" * 30]
    plain = fact_line(fact, key_chars=10, value_chars=20)
    assert plain == f"- {clip('k' * 30, 10)}: {clip('v' * 500, 20)}" and "480 more chars" in plain
    assert fact_line(fact, key_chars=10, value_chars=20, provenance=True) == plain + " [source: s]"
