"""Run ids every store takes (``storage.run_ids``): at most ``MAX_RUN_ID_BYTES`` UTF-8 bytes, no NUL,
valid Unicode, wherever an id is chosen: a new run, a fork, a submitted run, a trace import, a copy.

PostgreSQL sends a submitted run's id in a ``NOTIFY`` payload (at most 7999 bytes): a 9000-character
id used to fail there with ``StorageUnavailable`` and an error echoing all of it. Now every store
refuses it first with a ``ConfigError`` that gives the limit and the length and shows only the id's
first characters; the longest ids allowed (and the longest step ids with them) go through the queue.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agentcore.core.plans import MAX_STEP_ID_CHARS
from agentcore.errors import ConfigError
from agentcore.models.scripted import ScriptedChatModel, say
from agentcore.runtime.agent import Agent
from agentcore.storage import base, open_store
from agentcore.storage.base import EventStore, step_done_payload
from agentcore.storage.copy import copy_runs
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.postgres.store import PostgresEventStore
from agentcore.storage.run_ids import MAX_RUN_ID_BYTES, no_nul
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import export_run, import_trace
from tests.storage.test_store import fact, fill, started

LONGEST = "é" * (MAX_RUN_ID_BYTES // 2)
"""512 bytes in 256 characters: the limit counts UTF-8 bytes, not characters."""
ONE_OVER = LONGEST + "a"


def refused(call: object, run_id: str) -> str:
    """The message of the ``ConfigError`` ``call()`` raises about ``run_id``: the limit and the id's
    length, and only its first 40 characters."""
    with pytest.raises(ConfigError) as caught:
        call()  # type: ignore[operator]
    message = str(caught.value)
    length = len(run_id.encode())
    assert f"{length} bytes long" in message and f"at most {MAX_RUN_ID_BYTES} bytes" in message, message
    assert f"{run_id[:40]!r}…" in message and run_id[:41] not in message, message
    return message


@pytest.fixture
def older_agentcore(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores that check new run ids only for NUL, as agentcore did before the length limit."""
    monkeypatch.setattr(base, "check_run_id", lambda run_id: no_nul(run_id, "run id"))


def test_every_store_refuses_an_over_long_run_id_and_takes_the_longest_allowed(store: EventStore) -> None:
    run, events = fill(store, steps=1)
    assert len(ONE_OVER) == 257 and len(ONE_OVER.encode()) == MAX_RUN_ID_BYTES + 1
    for call, run_id in (
        (lambda: store.create_run("t", run_id="x" * 9000), "x" * 9000),
        (lambda: store.create_run("t", run_id=ONE_OVER, events=[started(ONE_OVER)]), ONE_OVER),
        (lambda: store.fork(run, 6, new_run_id="y" * 600), "y" * 600),
        (lambda: store.fork(run, 6, new_run_id=ONE_OVER, events=[fact(ONE_OVER, 7)]), ONE_OVER),
    ):
        refused(call, run_id)
    with pytest.raises(ConfigError, match="not valid Unicode text"):
        store.create_run("t", run_id="run\udc80")
    assert [r.id for r in store.runs()] == [run]  # nothing of a refused run
    assert store.create_run("t", run_id=LONGEST, events=[started(LONGEST)]) == LONGEST
    assert store.fork(LONGEST, 1, new_run_id=LONGEST[:-1] + "f") == LONGEST[:-1] + "f"
    assert store.append(LONGEST, [fact(LONGEST, 2)], 1) == 2
    assert [e.seq for e in store.read(LONGEST[:-1] + "f")] == [1]
    assert store.run(LONGEST).last_seq == 2 and store.state_at(run).last_seq == len(events)


def test_an_older_run_with_a_long_id_stays_readable_and_writable(tmp_path: Path, older_agentcore: None) -> None:
    long_id = "old-" + "z" * 2000
    with SQLiteEventStore(tmp_path / "old.db") as s:
        s.create_run("t", run_id=long_id, events=[started(long_id)])
    with SQLiteEventStore(tmp_path / "old.db") as s:
        assert s.append(long_id, [fact(long_id, 2)], 1) == 2  # the rule is for new ids only
        assert s.state_at(long_id).last_seq == 2


def test_submit_refuses_an_over_long_run_id_before_the_server_sees_it(pg_url: str) -> None:
    with PostgresEventStore(pg_url) as s:
        message = refused(lambda: s.submit("t", run_id="x" * 9000), "x" * 9000)
        assert "StorageUnavailable" not in message and "payload" not in message
        assert s.runs() == [] and s.queue_entries() == []
        listener = s.listen(base.QUEUE_CHANNEL, base.STEP_DONE_CHANNEL)
        listener.wait(0)
        assert s.submit("t", run_id=LONGEST) == LONGEST
        assert LONGEST in listener.wait(5)
        # the longest step id, in 4-byte characters, travels with the longest run id
        lease = s.claim("w1")
        assert lease is not None and lease.run_id == LONGEST
        step_id = "\U0001f600" * MAX_STEP_ID_CHARS
        s.submit_step(lease, step_id, 1, f"{LONGEST}/{step_id}/1")
        step = s.claim_step("w2")
        assert step is not None and step.step_id == step_id
        assert s.finish_step(step, {"ok": True})
        payload = step_done_payload(LONGEST, step_id, 1)
        assert len(payload.encode()) == MAX_RUN_ID_BYTES + 4 * MAX_STEP_ID_CHARS + 3  # two slashes, attempt 1
        got: list[str] = []
        for _ in range(10):
            got += listener.wait(2)
            if payload in got:
                break
        assert payload in got
        assert s.step_result(LONGEST, step_id, 1) == {"ok": True}
        with pytest.raises(ConfigError, match=f"1 to {MAX_STEP_ID_CHARS}"):
            s.submit_step(lease, "s" * (MAX_STEP_ID_CHARS + 1), 1, "k")
        listener.close()


def test_a_trace_with_an_over_long_run_id_imports_under_a_new_id(tmp_path: Path, older_agentcore: None) -> None:
    long_id = "r" * 700
    old = MemoryEventStore()
    old.create_run("find it", run_id=long_id, events=[started(long_id, task="find it")])
    export_run(old, long_id, tmp_path / "t.jsonl")
    with SQLiteEventStore(tmp_path / "new.db") as s:
        refused(lambda: import_trace(s, tmp_path / "t.jsonl", run_id="q" * 1000), "q" * 1000)
        assert s.runs() == []
        new_id = import_trace(s, tmp_path / "t.jsonl")
        assert new_id != long_id and new_id.startswith("run_")
        assert [(e.type, e.run_id) for e in s.read(new_id)] == [("run_started", new_id)]
        assert s.run(new_id).task == "find it"


def test_copy_refuses_an_older_run_with_a_long_id_before_writing_anything(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "old.db"
    long_id = "old-" + "z" * 1000
    with SQLiteEventStore(src) as s:
        fine, _ = fill(s, steps=1)
        with monkeypatch.context() as m:  # as an older agentcore took it
            m.setattr(base, "check_run_id", lambda run_id: no_nul(run_id, "run id"))
            s.create_run("t", run_id=long_id, events=[started(long_id)])
    for target in (pg_url, str(tmp_path / "new.db")):
        with open_store(src) as a, open_store(target) as b:
            message = refused(lambda a=a, b=b: copy_runs(a, b), long_id)
            assert "nothing was copied" in message and "import" in message
            assert b.runs() == []
            assert copy_runs(a, b, [fine]).copied == [fine]  # the others, named
    with sqlite3.connect(src) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2


def test_an_agent_run_with_an_over_long_id_is_refused_before_any_model_call() -> None:
    store = MemoryEventStore()
    controller = ScriptedChatModel([say("done")])
    refused(lambda: Agent(controller, store=store).run_sync("task", run_id="a" * 600), "a" * 600)
    assert store.runs() == [] and controller.requests == []
