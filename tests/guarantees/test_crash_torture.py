"""Crash torture: real processes running real runs on a real SQLite file, SIGKILLed at random moments.

A fork server (``tests/support/crash_worker.py serve``) imports agentcore once; each start of a run is a
forked child with its own SQLite connection, so a kill costs milliseconds, not an interpreter start.
A chain is one run: started, killed after a random delay, resumed in a new process, killed again...
then resumed to the end. The delay is drawn (``random.Random(seed)``) from the worker's measured
duration, scaled by how much of the run is left, so kills land all along the run.

After every kill: ``PRAGMA integrity_check`` is ``ok``, every committed event decodes, seqs are
1..n with no gap, the fold works and ``state_at`` agrees with it. At the end of a chain: the run
succeeded; its final state equals an uninterrupted run's (agent runs: the same events, in the same
order, from the same causes); a tool call whose ``ToolFinished`` was recorded never ran again;
a call ran more than once only if it had been started and not finished at a kill (at-least-once),
and never more often than one plus the number of such kills; a succeeded plan step never ran again,
and each step outcome was revised by the processor exactly once (plan runs use ``revise=True``).
Kills also land before a run's first event: the worker then starts that run again under its id.

Kills: ``--kills N`` (needs ``tests.support.torture_plugin`` in ``pytest_plugins``), else the environment
variable ``AGENTCORE_TORTURE_KILLS``, else 50. The seed is printed and named in every failure
message; ``AGENTCORE_TORTURE_SEED`` replays its kill delays (where they land still depends on timing).
"""

from __future__ import annotations

import collections
import json
import math
import os
import random
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.event_codec import decode_event
from agentcore.core.events import (
    Event,
    LLMCalled,
    RunStarted,
    StepFailed,
    StepStarted,
    StepSucceeded,
    ToolFinished,
    ToolStarted,
)
from agentcore.core.fold import RunState, fold
from agentcore.models.scripted import ScriptedChatModel, say
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from tests.support import crash_worker

DEFAULT_KILLS = 50
AGENT_SHARE = 0.6
"""Share of the kills dealt to agent runs; plan runs get the rest."""
PER_CHAIN = {"agent": 5, "plan": 4}
"""Kills per run before it is resumed to the end."""


def kills_wanted(request: pytest.FixtureRequest) -> int:
    value = request.config.getoption("--kills", default=None)
    if value is None:
        value = os.environ.get("AGENTCORE_TORTURE_KILLS")
    n = int(value) if value is not None else DEFAULT_KILLS
    if n < 2:
        raise pytest.UsageError(f"--kills / AGENTCORE_TORTURE_KILLS must be at least 2, got {n}")
    return n


@pytest.fixture(scope="module")
def seed() -> int:
    value = os.environ.get("AGENTCORE_TORTURE_SEED")
    chosen = int(value) if value else random.SystemRandom().randrange(2**32)
    print(f"crash torture seed: {chosen} (replay with AGENTCORE_TORTURE_SEED={chosen})")
    return chosen


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[crash_worker.ForkServer]:
    fork_server = crash_worker.ForkServer(tmp_path_factory.mktemp("fork-server") / "stderr.txt")
    try:
        yield fork_server
    finally:
        fork_server.close()


# ------------------------------------------------------------------------------------------------
# what must hold after every kill


def check_log(db: Path, run_id: str, where: str) -> list[Event]:
    """Integrity, decodable events, seqs 1..n, a fold that works and agrees with ``state_at``."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], where
        run = conn.execute("SELECT last_seq, status FROM runs WHERE id = ?", (run_id,)).fetchone()
        rows = conn.execute("SELECT seq, type, body FROM events WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
    finally:
        conn.close()
    if run is None:
        assert rows == [], f"{where}: events of a run that does not exist"
        return []
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1)), f"{where}: seqs are not 1..n"
    assert run[0] == len(rows), f"{where}: runs.last_seq {run[0]} but {len(rows)} events"
    events: list[Event] = []
    for seq, kind, body in rows:
        event = decode_event(body)
        assert (event.seq, event.type, event.run_id) == (seq, kind, run_id), where
        events.append(event)
    state = fold(events)
    with SQLiteEventStore(db) as store:
        assert store.state_at(run_id) == state, f"{where}: state_at (snapshots) disagrees with the fold"
        cached = store.run(run_id).status  # the fold's status, cached in the transaction of each append
        assert cached == state.status, f"{where}: runs.status {cached!r} != the fold's {state.status!r}"
    return events


def effect_lines(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines()]  # type: ignore[misc]


def comparable(state: RunState) -> dict[str, Any]:
    doc = state.to_json()
    doc.pop("run_id")
    return doc


def comparable_plan_state(state: RunState) -> dict[str, Any]:
    """A plan run's state without what interruptions change: attempts and the seqs they shift."""
    doc = comparable(state)
    doc.pop("last_seq")
    for step in doc["plan"].values():
        step.pop("attempts")
    for fact in doc["known_facts"].values():
        fact.pop("seq")
    return doc


@dataclass
class Reference:
    """An uninterrupted run of the same job."""

    seconds: float
    events: list[Event]
    state: RunState


@dataclass
class Chain:
    """One run being killed and resumed, and what was seen at its kills."""

    mode: str
    base: str
    db: Path
    effects: Path
    kills: int = 0
    pending: collections.Counter[str] = field(default_factory=collections.Counter)
    """Idempotency key -> kills at which its call (or step attempt) was started and not finished."""
    frozen: dict[str, int] = field(default_factory=dict)
    """Key (agent) or step id (plan) -> side effects counted when its result was first seen recorded."""
    last_types: collections.Counter[str] = field(default_factory=collections.Counter)
    """Type of the last committed event at each kill: where the kills landed."""
    points: set[int] = field(default_factory=set)
    """Seq of the last committed event at each kill."""


def run_reference(server: crash_worker.ForkServer, db: Path, mode: str) -> Reference:
    """Two uninterrupted runs in ``db``: the first creates the file, the second is timed."""
    seconds = 0.0
    for run_id in ("ref-1", "ref-2"):
        effects, out = db.with_name(f"{run_id}.effects"), db.with_name(f"{run_id}.out")
        pid = server.start(mode, db, run_id, out, effects=str(effects))
        outcome = json.loads(out.read_text()) if server.wait(pid) == 0 else {"error": out.read_text()}
        assert outcome.get("status") == "succeeded", outcome
        seconds = outcome["seconds"]
    events = check_log(db, "ref-2", f"reference {mode} run")
    return Reference(seconds=seconds, events=events, state=fold(events))


def note_kill(chain: Chain, run_id: str, events: list[Event], where: str) -> None:
    chain.last_types[events[-1].type if events else "(none)"] += 1
    chain.points.add(len(events))
    lines = effect_lines(chain.effects)
    counts = collections.Counter(key for key, _ in lines)
    if chain.mode == "agent":
        finished = {e.call_id for e in events if isinstance(e, ToolFinished)}
        for e in events:
            if isinstance(e, ToolStarted):
                if e.call.id in finished:
                    assert counts[e.idempotency_key] >= 1, f"{where}: {e.call.id} recorded as finished but never ran"
                    chain.frozen.setdefault(e.idempotency_key, counts[e.idempotency_key])
                else:
                    chain.pending[e.idempotency_key] += 1
    else:
        outcome = {(e.step_id, e.attempt) for e in events if isinstance(e, (StepSucceeded, StepFailed))}
        per_step = collections.Counter(key.split("/")[1] for key in counts)
        for e in events:
            if isinstance(e, StepStarted) and (e.step_id, e.attempt) not in outcome:
                chain.pending[e.idempotency_key] += 1
            if isinstance(e, StepSucceeded):
                chain.frozen.setdefault(e.step_id, per_step[e.step_id])


def check_agent_chain(chain: Chain, run_id: str, events: list[Event], ref: Reference, where: str) -> None:
    state = fold(events)
    assert state.status == "succeeded", f"{where}: {state.reason}"
    got, want = [(e.type, e.caused_by) for e in events], [(e.type, e.caused_by) for e in ref.events]
    if got != want:
        first = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
        pytest.fail(
            f"{where}: the log differs from an uninterrupted run's from seq {first + 1}: "
            f"got {got[max(0, first - 3) : first + 4]}, want {want[max(0, first - 3) : first + 4]}; "
            f"kills landed after {dict(chain.last_types)}"
        )
    assert comparable(state) == comparable(ref.state), f"{where}: the final state differs from an uninterrupted run"
    lines = effect_lines(chain.effects)
    counts = collections.Counter(key for key, _ in lines)
    started = {e.idempotency_key: e for e in events if isinstance(e, ToolStarted)}
    items = {key: item for key, item in lines}
    for key, count in counts.items():
        assert key in started, f"{where}: tool ran with key {key}, which no ToolStarted recorded"
        assert items[key] == started[key].call.arguments["item"], f"{where}: {key} re-ran with other arguments"
        assert count <= 1 + chain.pending[key], (
            f"{where}: {key} ran {count} times but was interrupted at only {chain.pending[key]} kill(s)"
        )
    for key, seen in chain.frozen.items():
        assert counts[key] == seen, f"{where}: {key} ran again after its ToolFinished was recorded"
    assert set(counts) == set(started), f"{where}: a recorded call never ran"


def check_plan_chain(chain: Chain, run_id: str, events: list[Event], ref: Reference, where: str) -> None:
    state = fold(events)
    assert state.status == "succeeded", f"{where}: {state.reason}"
    assert comparable_plan_state(state) == comparable_plan_state(ref.state), (
        f"{where}: the final state differs from an uninterrupted run"
    )
    succeeded = [e for e in events if isinstance(e, StepSucceeded)]
    assert sorted(e.step_id for e in succeeded) == sorted(ref.state.plan), f"{where}: a step succeeded twice or never"
    keys = {e.idempotency_key: e for e in events if isinstance(e, StepStarted)}
    counts = collections.Counter(key for key, _ in effect_lines(chain.effects))
    for key, count in counts.items():
        assert key in keys, f"{where}: a tool ran with key {key}, which no StepStarted recorded"
        assert count == 1, f"{where}: attempt {key} ran {count} times (each attempt has its own key)"
    for e in succeeded:
        key = keys_of(keys, e.step_id, e.attempt)
        assert counts[key] == 1, f"{where}: the succeeded attempt {key} did not run exactly once"
        later = [k for k in counts if k.split("/")[1] == e.step_id and int(k.split("/")[2]) > e.attempt]
        assert not later, f"{where}: step {e.step_id} ran again after it succeeded: {later}"
    per_step = collections.Counter(key.split("/")[1] for key in counts)
    for step_id, seen in chain.frozen.items():
        assert per_step[step_id] == seen, f"{where}: step {step_id} ran again after its StepSucceeded was recorded"
    assert isinstance(events[0], RunStarted) and events[0].plan == crash_worker.PLAN, f"{where}: not started with PLAN"
    revisions = collections.Counter(e.caused_by for e in events if isinstance(e, LLMCalled) and e.role == "processor")
    for e in succeeded:
        assert revisions[e.seq] == 1, f"{where}: StepSucceeded({e.step_id}) was revised {revisions[e.seq]} times"
    assert sum(revisions.values()) == len(succeeded), f"{where}: a revision is not caused by a step's success"
    assert set(state.known_facts) == set(ref.state.plan), f"{where}: a revision's fact is missing"


def keys_of(keys: dict[str, StepStarted], step_id: str, attempt: int) -> str:
    return next(k for k, e in keys.items() if e.step_id == step_id and e.attempt == attempt)


def torture(server: crash_worker.ForkServer, tmp: Path, mode: str, kills: int, seed: int) -> dict[str, Any]:
    rng = random.Random(f"{seed}/{mode}")
    db = tmp / f"{mode}.db"
    ref = run_reference(server, db, mode)
    total = duplicates = chains = 0
    landed: collections.Counter[str] = collections.Counter()
    points: set[int] = set()
    while total < kills:
        chains += 1
        chain = Chain(mode=mode, base=f"{mode}-{chains}", db=db, effects=tmp / f"{mode}-{chains}.effects")
        run_id = chain.base
        for start in range(PER_CHAIN[mode] + 1):
            where = f"seed={seed} {mode} chain {chains} start {start + 1} (kill {total + 1} of {kills})"
            with SQLiteEventStore(db) as store:
                done = store.last_seq(run_id) if crash_worker.exists(store, run_id) else 0
            out = tmp / f"{run_id}.{start}.out"
            left = max(0.1, 1 - done / len(ref.events))
            pid = server.start(mode, db, run_id, out, effects=str(chain.effects))
            if start < PER_CHAIN[mode] and total < kills:
                time.sleep(rng.uniform(0, ref.seconds * left))  # picks the moment of the kill; nothing is timed
                os.kill(pid, signal.SIGKILL)
            code = server.wait(pid)
            if code == -signal.SIGKILL:
                total += 1
                chain.kills += 1
                events = check_log(db, run_id, where)
                note_kill(chain, run_id, events, where)
                continue
            outcome = out.read_text() if out.exists() else "(no outcome written)"
            assert code == 0, f"{where}: the worker exited with {code}: {outcome}"
            assert json.loads(outcome)["status"] == "succeeded", f"{where}: {outcome}"
            break
        where = f"seed={seed} {mode} chain {chains} ({chain.kills} kills)"
        events = check_log(db, run_id, where)
        check = check_agent_chain if mode == "agent" else check_plan_chain
        check(chain, run_id, events, ref, where)
        keys = [key for key, _ in effect_lines(chain.effects)]
        units = keys if mode == "agent" else [key.split("/")[1] for key in keys]  # a call, or a step
        duplicates += len(units) - len(set(units))
        landed.update(chain.last_types)
        points |= chain.points
    return {
        "kills": total,
        "chains": chains,
        "re-executions": duplicates,
        "landed after": dict(landed),
        "distinct seqs at kills": len(points),
    }


def split(total: int) -> dict[str, int]:
    agent = max(1, math.ceil(total * AGENT_SHARE))
    return {"agent": agent, "plan": max(1, total - agent)}


@pytest.mark.parametrize("mode", ["agent", "plan"])
def test_runs_survive_random_kills(
    mode: str, server: crash_worker.ForkServer, seed: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    kills = split(kills_wanted(request))[mode]
    stats = torture(server, tmp_path, mode, kills, seed)
    print(f"{mode}: {stats}")
    assert stats["kills"] == kills
    assert stats["distinct seqs at kills"] >= min(3, (kills + 1) // 2)  # kills did not all land at one point


def test_a_run_killed_before_its_first_event_resumes_with_its_task(tmp_path: Path) -> None:
    """``run`` creates the run, then appends ``RunStarted``: a kill in between leaves an empty log."""
    with SQLiteEventStore(tmp_path / "empty.db") as store:
        store.create_run("the task that was asked", run_id="early")  # exactly what such a kill leaves
        result = Agent(ScriptedChatModel([say("done")]), store=store).resume_sync("early")
        assert result.status == "succeeded"
        assert result.state.task == "the task that was asked"
        events = list(store.read("early"))
        assert events[0].type == "run_started" and [e.seq for e in events] == list(range(1, len(events) + 1))


def test_a_plan_run_killed_before_its_first_event_is_started_again_under_its_id(
    server: crash_worker.ForkServer, tmp_path: Path
) -> None:
    """The plan worker's ``resume``, refused with ``RunNotStarted``, falls back to ``run`` with the same id."""
    db, effects, out = tmp_path / "early-plan.db", tmp_path / "early.effects", tmp_path / "early.out"
    with SQLiteEventStore(db) as store:
        store.create_run(crash_worker.TASK, run_id="early")  # exactly what such a kill leaves
    code = server.wait(server.start("plan", db, "early", out, effects=str(effects)))
    assert code == 0 and json.loads(out.read_text())["status"] == "succeeded", out.read_text()
    events = check_log(db, "early", "plan run started after a kill before its first event")
    assert isinstance(events[0], RunStarted) and events[0].plan == crash_worker.PLAN
    assert sorted(key for key, _ in effect_lines(effects)) == sorted(f"early/{s.id}/1" for s in crash_worker.PLAN.steps)
    with SQLiteEventStore(db) as store:
        assert [r.id for r in store.runs()] == ["early"]
