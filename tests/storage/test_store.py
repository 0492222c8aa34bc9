"""The event-store contract, run against every store (``store`` fixture: memory and a real SQLite file)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from agentcore.core.events import (
    BaseEvent,
    Decided,
    Decision,
    LLMCalled,
    RunFinished,
    RunStarted,
    StatePatched,
    TokenUsage,
    ToolCall,
    ToolFinished,
    ToolStarted,
)
from agentcore.core.fold import apply_json_patch, diff_states, fold
from agentcore.core.patches import AppendKnownFacts, FactInput, ReplacePlan
from agentcore.core.plans import Plan, Step
from agentcore.errors import ConcurrencyError, ConfigError, RunNotFound
from agentcore.storage.base import EventStore

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def at(seq: int) -> datetime:
    return T0 + timedelta(seconds=seq)


def started(run: str, seq: int = 1, task: str = "find the bug") -> RunStarted:
    plan = Plan(steps=(Step(id="a"), Step(id="b", after=("a",))))
    return RunStarted(run_id=run, seq=seq, at=at(seq), task=task, plan=plan, config={"model": "m"})


def fact(run: str, seq: int, key: str | None = None, value: str = "v") -> StatePatched:
    facts = (FactInput(key=key or f"k{seq}", value=value, source=f"call_{seq}", confidence=0.5),)
    return StatePatched(run_id=run, seq=seq, at=at(seq), ops=(AppendKnownFacts(facts=facts),), caused_by=seq - 1)


def finished(run: str, seq: int, status: str = "succeeded") -> RunFinished:
    return RunFinished(run_id=run, seq=seq, at=at(seq), status=status, reply="done")  # type: ignore[arg-type]


def agent_step(run: str, first: int, i: int) -> list[BaseEvent]:
    """Five events of one realistic agent step, seqs ``first``..``first + 4``."""
    call = ToolCall(id=f"c{i}", name="search_code", arguments={"q": f"needle {i}"})
    return [
        LLMCalled(
            run_id=run, seq=first, at=at(first), role="controller", model="m", request_digest=f"d{i}",
            usage=TokenUsage(prompt_tokens=100, completion_tokens=20, total_tokens=120), latency_ms=12.5,
        ),
        Decided(run_id=run, seq=first + 1, at=at(first + 1), decision=Decision(kind="tool_calls", tool_calls=(call,))),
        ToolStarted(run_id=run, seq=first + 2, at=at(first + 2), call=call, idempotency_key=f"{run}/{i}/1"),
        ToolFinished(
            run_id=run, seq=first + 3, at=at(first + 3), call_id=call.id, name=call.name, ok=True,
            payload=f"3 matches for needle {i}", duration_ms=4.0,
        ),
        fact(run, first + 4, key=f"fact{i}", value=f"needle {i} is in a.py:{i}"),
    ]  # fmt: skip


def log_of(run: str, steps: int) -> list[BaseEvent]:
    """A RunStarted and ``steps`` agent steps."""
    events: list[BaseEvent] = [started(run)]
    for i in range(steps):
        events.extend(agent_step(run, len(events) + 1, i))
    return events


def fill(store: EventStore, steps: int = 3, task: str = "find the bug") -> tuple[str, list[BaseEvent]]:
    run = store.create_run(task)
    events = log_of(run, steps)
    assert store.append(run, events[:1], 0) == 1
    for k in range(1, len(events), 5):
        store.append(run, events[k : k + 5], k)
    return run, events


# ------------------------------------------------------------------------------------------------
# runs


def test_both_stores_answer_the_protocol_extras(store: EventStore) -> None:
    # that both stores satisfy EventStore is checked statically (tests/guarantees/test_types.py)
    assert store.read_only is False
    assert store.artifacts.get_text(store.artifacts.put_json({"b": 1, "a": [True]}).id) == '{"a":[true],"b":1}'
    store.close()
    store.close()  # idempotent


def test_create_and_list_runs(store: EventStore) -> None:
    a = store.create_run("first", created=T0)
    b = store.create_run("second", run_id="run_b", created=T0 + timedelta(seconds=1))
    assert b == "run_b"
    assert [r.id for r in store.runs()] == [a, b]
    info = store.run(a)
    assert (info.task, info.status, info.last_seq, info.parent_run_id) == ("first", "running", 0, None)
    assert info.created == T0.isoformat()
    assert store.last_seq(b) == 0


def test_duplicate_run_id_is_refused(store: EventStore) -> None:
    store.create_run("x", run_id="same")
    with pytest.raises(ConcurrencyError, match="same"):
        store.create_run("y", run_id="same")
    assert store.run("same").task == "x"


def test_unknown_run_raises_run_not_found(store: EventStore) -> None:
    for call in (
        lambda: store.run("nope"),
        lambda: store.last_seq("nope"),
        lambda: list(store.read("nope")),
        lambda: store.state_at("nope"),
        lambda: store.fork("nope", 1),
        lambda: store.append("nope", [started("nope")], 0),
    ):
        with pytest.raises(RunNotFound, match="nope"):
            call()


# ------------------------------------------------------------------------------------------------
# append and read


def test_append_then_read_back(store: EventStore) -> None:
    run, events = fill(store, steps=2)
    assert store.last_seq(run) == len(events) == 11
    got = list(store.read(run))
    assert got == events
    assert [type(e).__name__ for e in got[:3]] == ["RunStarted", "LLMCalled", "Decided"]
    assert [e.seq for e in store.read(run, after=8)] == [9, 10, 11]
    assert [e.seq for e in store.read(run, upto=2)] == [1, 2]
    assert [e.seq for e in store.read(run, after=3, upto=5)] == [4, 5]
    assert [e.seq for e in store.read(run, upto=500)] == list(range(1, 12))
    assert list(store.read(run, after=11)) == []


def test_read_is_bounded_by_the_log_when_it_was_called(store: EventStore) -> None:
    run, _events = fill(store, steps=1)
    it = store.read(run)
    assert next(it).seq == 1
    store.append(run, [fact(run, 7)], 6)
    assert [e.seq for e in it] == [2, 3, 4, 5, 6]
    assert [e.seq for e in store.read(run)][-1] == 7


def test_status_follows_run_finished(store: EventStore) -> None:
    run, _events = fill(store, steps=1)
    store.append(run, [finished(run, 7, "failed")], 6)
    assert store.run(run).status == "failed"


def test_status_shows_a_run_waiting_for_the_user_and_its_answer(store: EventStore) -> None:
    from agentcore.core.events import UserMessaged

    run = store.create_run("t")
    ask = Decided(run_id=run, seq=2, at=at(2), decision=Decision(kind="ask_user", question="Which repo?"))
    store.append(run, [started(run), ask], 0)
    assert store.run(run).status == "waiting_for_user" == store.state_at(run).status
    store.append(run, [UserMessaged(run_id=run, seq=3, at=at(3), text="this one", question="Which repo?")], 2)
    assert store.run(run).status == "running" == store.state_at(run).status


def test_empty_batch_checks_the_seq_and_writes_nothing(store: EventStore) -> None:
    run, _events = fill(store, steps=1)
    assert store.append(run, [], 6) == 6
    with pytest.raises(ConcurrencyError):
        store.append(run, [], 3)
    assert store.last_seq(run) == 6


@pytest.mark.parametrize(
    ("make", "expected", "message"),
    [
        (lambda run: [fact(run, 3)], 1, "seq 3; this batch must continue at seq 2"),
        (lambda run: [fact(run, 2), fact(run, 4)], 1, "seq 4"),
        (lambda run: [fact("other_run", 2)], 1, "belongs to run 'other_run'"),
        (lambda run: [fact(run, 1)], -1, "expected_seq must be >= 0"),
        # caused_by past an integer column: an OverflowError from SQLite, a poisoned events view on PostgreSQL
        (lambda run: [fact(run, 2).model_copy(update={"caused_by": 2**70})], 1, "caused_by"),
        (lambda run: [fact(run, 2).model_copy(update={"caused_by": 2**40})], 1, "caused_by"),
        (lambda run: [fact(run, 2).model_copy(update={"caused_by": -1})], 1, "caused_by"),
        (lambda run: [fact(run, 2).model_copy(update={"caused_by": 2})], 1, "caused_by"),
    ],
)
def test_wrong_seqs_are_a_config_error_and_write_nothing(
    store: EventStore, make: Any, expected: int, message: str
) -> None:
    run = store.create_run("t")
    store.append(run, [started(run)], 0)
    with pytest.raises(ConfigError, match=message):
        store.append(run, make(run), expected)
    assert [e.seq for e in store.read(run)] == [1]
    assert store.last_seq(run) == 1


def test_stale_expected_seq_is_a_concurrency_error_and_writes_nothing(store: EventStore) -> None:
    run = store.create_run("t")
    store.append(run, [started(run)], 0)
    store.append(run, [fact(run, 2)], 1)
    stale = [fact(run, 2, key="loser"), fact(run, 3, key="loser2")]
    with pytest.raises(ConcurrencyError, match="expected last seq 1, but it is 2"):
        store.append(run, stale, 1)
    with pytest.raises(ConcurrencyError):  # a writer that thinks the run is further along
        store.append(run, [fact(run, 6)], 5)
    assert store.last_seq(run) == 2
    assert [e.ops[0].facts[0].key for e in store.read(run, after=1)] == ["k2"]  # type: ignore[attr-defined]
    assert store.append(run, [fact(run, 3)], 2) == 3


# ------------------------------------------------------------------------------------------------
# state


def test_state_at_is_the_fold_of_the_prefix(store: EventStore) -> None:
    run, events = fill(store, steps=4)
    for seq in range(len(events) + 1):
        assert store.state_at(run, seq) == fold(events[:seq]), seq
    latest = store.state_at(run)
    assert latest == fold(events)
    assert latest.last_seq == 21 and len(latest.known_facts) == 4 and latest.llm_calls == 4
    assert store.state_at(run, 999) == latest  # fold(read(upto=999)) is the whole log
    for past in (2**31, 2**63, 2**80):  # past any integer column: still the whole log, not a driver error
        assert store.state_at(run, past) == latest, past
    assert store.diff(run, 0, 2**63) == store.diff(run, 0, 21)
    with pytest.raises(ConfigError, match="seq must be >= 0"):
        store.state_at(run, -1)


def test_state_at_returns_a_state_the_caller_owns(store: EventStore) -> None:
    run, _events = fill(store, steps=1)
    mine = store.state_at(run)
    mine.known_facts.clear()
    mine.task = "changed"
    again = store.state_at(run)
    assert again.task == "find the bug" and len(again.known_facts) == 1


def test_diff_turns_one_state_into_the_other(store: EventStore) -> None:
    run, _events = fill(store, steps=2)
    store.append(run, [fact(run, 12, key="fact0", value="superseded")], 11)
    ops = store.diff(run, 6, 12)
    a, b = store.state_at(run, 6), store.state_at(run, 12)
    assert ops == diff_states(a, b)
    assert apply_json_patch(a.to_json(), ops) == b.to_json()
    paths = {op["path"] for op in ops}
    assert "/known_facts/fact1" in paths and "/known_facts/fact0/value" in paths
    assert store.diff(run, 5, 5) == []


# ------------------------------------------------------------------------------------------------
# forks


def test_fork_shares_the_prefix_and_then_diverges(store: EventStore) -> None:
    run, events = fill(store, steps=2)
    fork = store.fork(run, 6, new_run_id="run_fork")
    assert fork == "run_fork"
    info = store.run(fork)
    assert (info.parent_run_id, info.forked_at_seq, info.last_seq, info.task) == (run, 6, 6, "find the bug")
    assert list(store.read(fork)) == events[:6]
    assert store.state_at(fork) == fold(events[:6])
    with pytest.raises(ConcurrencyError):
        store.append(fork, [fact(fork, 12)], 11)
    store.append(fork, [fact(fork, 7, key="only_in_fork")], 6)
    mine = list(store.read(fork))
    assert [e.seq for e in mine] == list(range(1, 8))
    assert mine[-1].run_id == fork and mine[0].run_id == run
    assert "only_in_fork" in store.state_at(fork).known_facts
    assert "only_in_fork" not in store.state_at(run).known_facts
    assert list(store.read(run)) == events  # the parent is untouched
    assert [e.seq for e in store.read(fork, after=5)] == [6, 7]


def test_fork_of_a_fork_chains_both_parents(store: EventStore) -> None:
    run, events = fill(store, steps=3)
    f1 = store.fork(run, 11)
    f1_events = [fact(f1, 12, key="f1a"), fact(f1, 13, key="f1b")]
    store.append(f1, f1_events, 11)
    f2 = store.fork(f1, 12)  # inside f1's own events
    f3 = store.fork(f1, 4)  # inside the grandparent's events
    store.append(f2, [finished(f2, 13)], 12)
    assert list(store.read(f2)) == [*events[:11], f1_events[0], finished(f2, 13)]
    assert store.run(f2).status == "succeeded"
    assert list(store.read(f3)) == events[:4]
    assert store.state_at(f2, 12) == fold([*events[:11], f1_events[0]])
    assert store.state_at(f2).status == "succeeded"
    assert [e.seq for e in store.read(f2, after=10, upto=12)] == [11, 12]


def test_fork_inherits_a_finished_status(store: EventStore) -> None:
    run, _events = fill(store, steps=1)
    store.append(run, [finished(run, 7)], 6)
    assert store.run(store.fork(run, 7)).status == "succeeded"
    assert store.run(store.fork(run, 6)).status == "running"
    f = store.fork(run, 7)
    assert store.run(store.fork(f, 7)).status == "succeeded"


@pytest.mark.parametrize("at_seq", [0, 7, -1])
def test_fork_outside_the_log_is_a_config_error(store: EventStore, at_seq: int) -> None:
    run, _ = fill(store, steps=1)
    with pytest.raises(ConfigError, match=r"it has seqs 1\.\.6"):
        store.fork(run, at_seq)
    assert len(store.runs()) == 1


def test_fork_to_an_existing_id_is_refused(store: EventStore) -> None:
    run, _ = fill(store, steps=1)
    with pytest.raises(ConcurrencyError):
        store.fork(run, 3, new_run_id=run)
    assert store.run(run).parent_run_id is None


def test_a_fork_is_written_with_its_own_events_and_creation_time(store: EventStore) -> None:
    run, events = fill(store, steps=1)
    own = [fact("f", 7, key="own"), finished("f", 8)]
    assert store.fork(run, 6, new_run_id="f", events=own, created=T0) == "f"
    info = store.run("f")
    assert (info.last_seq, info.status, info.created, info.forked_at_seq) == (8, "succeeded", T0.isoformat(), 6)
    assert list(store.read("f")) == [*events, *own]
    assert store.state_at("f") == fold([*events, *own])
    store.append("f", [fact("f", 9, key="after")], 8)  # the append path still knows where the fork is
    with pytest.raises(ConfigError, match="new_run_id"):
        store.fork(run, 6, events=[fact("g", 7)])
    with pytest.raises(ConfigError, match="seq 7"):
        store.fork(run, 6, new_run_id="g", events=[fact("g", 8)])
    assert {r.id for r in store.runs()} == {run, "f"}  # nothing of a refused fork


def test_a_run_id_or_task_with_nul_is_refused_on_every_store(store: EventStore) -> None:
    """PostgreSQL's text cannot hold NUL: no store takes one there, so every run copies anywhere."""
    run, _ = fill(store, steps=1)
    for call in (
        lambda: store.create_run("a\x00task"),
        lambda: store.create_run("task", run_id="run\x00"),
        lambda: store.fork(run, 6, new_run_id="fork\x00"),
    ):
        with pytest.raises(ConfigError, match=r"NUL character \(U\+0000\)"):
            call()
    assert [r.id for r in store.runs()] == [run]
    store.append(run, [fact(run, 7, key="k\x00", value="\x00")], 6)  # an event's strings may hold NUL
    assert store.state_at(run).known_facts["k\x00"].value == "\x00"


def test_a_task_that_is_not_valid_unicode_is_refused_on_every_store(store: EventStore) -> None:
    """A lone surrogate (what Python makes of bytes that are not UTF-8) cannot be written as UTF-8:
    every store refuses it as ``ConfigError`` naming where it is, not ``UnicodeEncodeError``."""
    run, _ = fill(store, steps=1)
    for task, index in (("\ud800", 0), ("ok then \udcff", 8)):
        with pytest.raises(ConfigError, match=rf"task is not valid Unicode text \(a lone surrogate U\+D[8C][0F][0F] at index {index},"):
            store.create_run(task)
    assert [r.id for r in store.runs()] == [run]


@pytest.mark.parametrize(("bad", "named"), [(True, "bool"), (3.0, "float"), ("3", "str"), (None, "NoneType")])
def test_a_seq_that_is_not_an_int_is_refused_alike_on_every_store(store: EventStore, bad: object, named: str) -> None:
    """One rule for every read taking a seq: an ``int`` that is not a ``bool``, else ``ConfigError``
    naming the argument and the type (PostgreSQL said "invalid input syntax for type integer" as an
    outage; SQLite took ``True`` as 1 and ``"3"`` as text)."""
    run, _ = fill(store, steps=1)
    calls: list[tuple[str, Any]] = [
        ("a", lambda: store.diff(run, bad, 2)),
        ("b", lambda: store.diff(run, 1, bad)),
        ("after", lambda: list(store.read(run, after=bad))),
        ("at_seq", lambda: store.fork(run, bad)),
    ]
    if bad is not None:  # ``None`` means "the newest" for these
        calls += [("seq", lambda: store.state_at(run, bad)), ("upto", lambda: list(store.read(run, upto=bad)))]
    for name, call in calls:
        with pytest.raises(ConfigError, match=rf"^{name} must be an int \(a seq\), got {named} "):
            call()
    assert [r.id for r in store.runs()] == [run]  # no fork was made
    assert store.state_at(run, 3) == fold(store.read(run, upto=3))


@pytest.mark.parametrize(("bad", "named"), [(True, "bool"), (1.0, "float"), ("1", "str"), (None, "NoneType")])
def test_an_expected_seq_that_is_not_an_int_is_refused_alike_on_every_store(
    store: EventStore, bad: object, named: str
) -> None:
    """``append``'s ``expected_seq`` follows the seq rule: ``1.0`` and ``True`` passed the batch check (they
    equal 1) and reached the database; ``None`` and ``"1"`` were a ``TypeError`` from ``< 0``."""
    run = store.create_run("t")
    store.append(run, [started(run)], 0)
    with pytest.raises(ConfigError, match=rf"^expected_seq must be an int \(a seq\), got {named} "):
        store.append(run, [fact(run, 2)], bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expected_seq must be an int"):
        store.append(run, [], bad)  # type: ignore[arg-type]
    assert [e.seq for e in store.read(run)] == [1] and store.last_seq(run) == 1
    assert store.append(run, [fact(run, 2)], 1) == 2


def test_plan_revisions_survive_the_store(store: EventStore) -> None:
    run = store.create_run("t")
    new_plan = ReplacePlan(steps=(Step(id="x", description="look"), Step(id="y", after=("x",))))
    events = [started(run), StatePatched(run_id=run, seq=2, at=at(2), ops=(new_plan,))]
    store.append(run, events, 0)
    assert list(store.state_at(run).plan) == ["x", "y"]
    assert list(store.read(run)) == events


def test_a_run_can_be_created_with_its_first_events_in_one_go(store: EventStore) -> None:
    run = store.create_run("t", run_id="r1", events=[started("r1", task="t"), fact("r1", 2, "k")])
    assert run == "r1"
    assert [e.seq for e in store.read(run)] == [1, 2]
    assert store.run(run).last_seq == 2
    assert "k" in store.state_at(run).known_facts


def test_an_unknown_create_run_option_is_a_type_error_and_creates_nothing(store: EventStore) -> None:
    with pytest.raises(TypeError, match=r"create_run.*'parent'"):
        store.create_run("t", run_id="r1", parent="r0")  # type: ignore[call-arg]
    assert store.runs() == []


def test_a_run_whose_first_events_are_wrong_is_not_created(store: EventStore) -> None:
    with pytest.raises(ConfigError, match="seq"):
        store.create_run("t", run_id="r1", events=[started("r1", seq=2)])
    with pytest.raises(RunNotFound):
        store.run("r1")
    store.create_run("t", run_id="r2", events=[started("r2")])
    with pytest.raises(ConcurrencyError, match="already exists"):
        store.create_run("t", run_id="r2", events=[started("r2")])
    assert [e.seq for e in store.read("r2")] == [1]


def test_a_fork_taken_while_the_run_waits_for_the_user_is_listed_as_waiting(store: EventStore) -> None:
    run = store.create_run("t")
    ask = Decided(run_id=run, seq=2, at=at(2), decision=Decision(kind="ask_user", question="Which repo?"))
    store.append(run, [started(run), ask], 0)
    fork = store.fork(run, 2)
    assert store.run(fork).status == "waiting_for_user" == store.state_at(fork).status


# ------------------------------------------------------------------------------------------------
# a returned state never aliases the store (issue 11 item 8)


def nested_log(run: str, facts: int) -> list[BaseEvent]:
    """A run whose state holds nested JSON: step arguments, a pending call's arguments, and facts."""
    plan = Plan(
        steps=(
            Step(id="a", tool="search", arguments={"q": {"terms": ["x", "y"], "opts": {"deep": True}}}),
            Step(id="b", after=("a",), tool="read", arguments={"paths": [["p", 1]], "n": 0}),
        )
    )
    call = ToolCall(id="c1", name="search", arguments={"q": {"terms": ["z"]}, "limits": [1, {"k": 2}]})
    events: list[BaseEvent] = [
        RunStarted(run_id=run, seq=1, at=at(1), task="t", plan=plan, config={"model": "m"}),
        ToolStarted(run_id=run, seq=2, at=at(2), call=call, idempotency_key=f"{run}/c1"),
    ]
    for i in range(facts):
        events.append(fact(run, len(events) + 1, key=f"k{i % 7}", value=f"v{i}"))
    return events


def mutables(value: Any, seen: set[int] | None = None) -> dict[int, Any]:
    """Every dict and list reachable from ``value`` (through models' fields), by id: what a caller
    can change in place."""
    seen = set() if seen is None else seen
    found: dict[int, Any] = {}
    stack = [value]
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if isinstance(v, dict):
            found[id(v)] = v
            stack.extend(v.values())
        elif isinstance(v, list):
            found[id(v)] = v
            stack.extend(v)
        elif isinstance(v, tuple):
            stack.extend(v)
        elif hasattr(v, "__pydantic_fields__"):  # a frozen model's fields cannot be set; its values can be edited
            stack.extend(v.__dict__.values()) if v.model_config.get("frozen") else stack.append(v.__dict__)
    return found


def vandalise(state: Any) -> None:
    """Edit every nested container of a returned state in place."""
    state.plan["a"].arguments["q"]["terms"].append("edited")
    state.plan["a"].arguments["q"]["opts"]["deep"] = False
    state.plan["b"].arguments["paths"][0][1] = 99
    state.pending_calls["c1"].arguments["limits"][1]["k"] = "edited"
    state.pending_calls["c1"].arguments["new"] = 1
    state.known_facts.clear()
    state.recent.clear()
    state.plan.pop("b")


@pytest.mark.parametrize("facts", [0, 3, 150])
def test_a_returned_state_shares_nothing_mutable_with_the_store(store: EventStore, facts: int) -> None:
    run = store.create_run("t")
    events = nested_log(run, facts)
    store.append(run, events, 0)
    for seq in (None, 2, len(events) // 2 + 1):
        first, second = store.state_at(run, seq), store.state_at(run, seq)
        shared = mutables(first).keys() & mutables(second).keys()
        assert not shared, [mutables(first)[i] for i in shared]
        vandalise(first)
        assert store.state_at(run, seq) == fold(events[: seq or len(events)]) == second


@pytest.mark.parametrize("batch", [1, 7, 40])
def test_editing_a_returned_state_changes_no_later_state_or_snapshot(store: EventStore, batch: int) -> None:
    """Edits made between appends reach neither the next ``state_at`` nor a snapshot written later
    (the SQLite store writes one every 100 events by default; earlier seqs load from them)."""
    run = store.create_run("t")
    events = nested_log(run, 260)
    store.append(run, events[:2], 0)
    for lo in range(2, len(events), batch):
        vandalise(store.state_at(run))
        store.append(run, events[lo : lo + batch], lo)
        vandalise(store.state_at(run))
    for seq in (2, 100, 101, 150, 203, len(events) - 1, len(events)):
        assert store.state_at(run, seq) == fold(events[:seq]), seq
    assert store.state_at(run) == fold(store.read(run)) == fold(events)


def test_fold_does_not_alias_the_events_it_folds(store: EventStore) -> None:
    run = store.create_run("t")
    events = nested_log(run, 2)
    store.append(run, events, 0)
    state = fold(store.read(run))
    vandalise(state)
    assert fold(store.read(run)) == fold(nested_log(run, 2)) == store.state_at(run)


def test_editing_events_read_back_changes_nothing_stored(store: EventStore) -> None:
    run = store.create_run("t")
    events = nested_log(run, 2)
    store.append(run, events, 0)
    mine = list(store.read(run))
    mine[0].plan.steps[0].arguments["q"]["terms"].clear()  # type: ignore[attr-defined]
    mine[1].call.arguments["limits"].append("edited")  # type: ignore[attr-defined]
    assert list(store.read(run)) == events
    assert store.state_at(run, 2) == fold(events[:2])


def test_run_stats_agree_with_the_decoded_log(store: EventStore) -> None:
    """``run_stats`` (SQL aggregates in SQLite: nothing decoded) equals counting the decoded events,
    forks included; ``list_runs`` uses it."""
    from agentcore.inspection.queries import list_runs
    from agentcore.storage.base import RunStats, RunStatsSource, stats_of

    run, _events = fill(store, steps=3)
    empty = store.create_run("nothing yet")
    child = store.fork(run, 6)  # the end of the first agent step (a fork may not split a step)
    store.append(child, agent_step(child, 7, 9), 6)
    assert isinstance(store, RunStatsSource)  # memory, SQLite and PostgreSQL count without decoding
    grandchild = store.fork(child, 9)
    for rid in (run, empty, child, grandchild):
        assert store.run_stats(rid) == stats_of(store.read(rid)), rid
    assert store.run_stats(run) == RunStats(16, at(1), at(16), 360)
    assert store.run_stats(empty) == RunStats(0, None, None, 0)
    assert store.run_stats(child).tokens == 240 and store.run_stats(child).events == 11
    assert store.run_stats(grandchild).events == 9
    listed = {r["id"]: r for r in list_runs(store)}
    assert (listed[run]["events"], listed[run]["duration_s"], listed[run]["tokens"]) == (16, 15.0, 360)
    assert listed[empty]["duration_s"] is None and listed[child]["forked_at_seq"] == 6
