"""The read-only views over event bodies never fail because of what a user or a model wrote.

PostgreSQL's ``->>`` refuses to make text of a JSON string holding NUL (``\\u0000``) and refuses
the whole object around it, so before m009 every view (and ``agentcore runs``) failed on a run
with one such string; SQLite's ``json_extract`` silently cut the string at the NUL. Both now show
each NUL as the six characters ``\\u0000`` and ``facts.value_json`` holds the value's exact JSON
(see ``storage/schema.py``); the same run gives the same rows on both databases.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import TypeAdapter

from agentcore.core.event_codec import encode_event
from agentcore.core.events import BaseEvent, LLMCalled, TokenUsage, ToolFinished
from agentcore.storage import open_store
from agentcore.storage.base import stats_of
from agentcore.storage.postgres.migrations import MIGRATIONS
from agentcore.storage.postgres.store import PostgresEventStore
from tests.storage.test_store import at, fact, finished, started

ODD = {
    "nul": "nul\x00byte",
    "only_nul": "\x00",
    "nuls": "\x00\x00a\x00",
    "literal": "a\\u0000b",  # the six characters, not a NUL
    "backslash_then_nul": "\\\x00",
    "escaped_escape": "\\\\u0000",
    "ffff": "\uffff",
    "max": "\U0010ffff",
    "emoji": "caf\u00e9 \U0001f600",
    "controls": '\x01\x1f\t\n"',
    "long": "z" * 1_000_000 + "\x00",
}
HUGE = 2**63 - 1  # a token count no model used, as a broken server might report it (twice: past 64 bits)
VIEWS = ("events", "facts", "llm_usage", "llm_cost", "tool_calls", "snapshots")


def shown(value: str) -> str:
    return value.replace("\x00", "\\u0000")


def odd_run(run: str) -> list[BaseEvent]:
    events: list[BaseEvent] = [started(run, 1)]
    for key, value in ODD.items():
        events.append(fact(run, len(events) + 1, key=key, value=value))
    events.append(fact(run, len(events) + 1, key="key\x00", value="v"))
    n = len(events)
    events += [
        ToolFinished(
            run_id=run, seq=n + 1, at=at(n + 1), call_id="c\x00", name="t\x00ol", ok=False, payload="p\x00",
            error="e\x00", duration_ms=1.5,
        ),
        LLMCalled(
            run_id=run, seq=n + 2, at=at(n + 2), role="controller", model="m\x00", request_digest="d",
            response={"content": "x\x00", "k\x00": [1, "\x00"]},
            usage=TokenUsage(prompt_tokens=HUGE, completion_tokens=3, total_tokens=HUGE), cost_usd=0.25,
        ),
        LLMCalled(
            run_id=run, seq=n + 3, at=at(n + 3), role="controller", model="m", request_digest="d",
            usage=TokenUsage(prompt_tokens=-1, completion_tokens=-(2**63), total_tokens=HUGE * 4),
        ),
        LLMCalled(
            run_id=run, seq=n + 4, at=at(n + 4), role="controller", model="m", request_digest="e",
            usage=TokenUsage(prompt_tokens=10, completion_tokens=2, total_tokens=12), latency_ms=3.0,
        ),
        finished(run, n + 5),
    ]  # fmt: skip
    return events


def rows(conn: Any, view: str) -> list[tuple[Any, ...]]:
    """Every row of ``view``, ``SELECT *`` in a fixed order, booleans as SQLite gives them (1/0)."""
    order = "run_id, role, step_id" if view == "llm_cost" else "run_id, seq"
    got = conn.execute(f"SELECT * FROM {view} ORDER BY {order}").fetchall()
    return [tuple(int(v) if isinstance(v, bool) else v for v in row) for row in got]


def test_every_view_reads_nul_and_odd_strings_the_same_on_sqlite_and_postgres(tmp_path: Path, pg_url: str) -> None:
    run = "run_odd"
    events = odd_run(run)
    path = tmp_path / "odd.db"
    for target in (str(path), pg_url):
        with open_store(target) as s:
            s.create_run("odd strings", run_id=run, events=events)
            assert list(s.read(run)) == events
            stats, expected = s.run_stats(run), stats_of(iter(events))  # ``agentcore runs`` failed on PostgreSQL
            assert stats._replace(tokens=0) == expected._replace(tokens=0)
            assert stats.tokens == pytest.approx(expected.tokens, rel=1e-15)  # SQLite sums as floats
    lite = sqlite3.connect(path)
    with psycopg.connect(pg_url) as pg:
        both = {view: (rows(lite, view), rows(pg, view)) for view in VIEWS}
    for view, (on_sqlite, on_postgres) in both.items():
        if view != "events":  # its body column: JSON text on SQLite, decoded by psycopg
            assert on_sqlite == on_postgres, view
    facts = {r[3]: r for r in both["facts"][1]}
    for key, value in ODD.items():
        assert facts[key][4] == shown(value)
        assert facts[key][8] == TypeAdapter(str).dump_json(value).decode()  # value_json: exact, as written
        assert json.loads(facts[key][8]) == value
    assert facts["key\\u0000"][4] == "v"
    assert facts["literal"][4] == facts["nul"][4].replace("nul", "a").replace("byte", "b")  # told apart only by...
    assert facts["literal"][8] != facts["nul"][8].replace("nul", "a").replace("byte", "b")  # ...value_json
    tool = both["tool_calls"][0][0]
    assert tool[3:] == ("c\\u0000", "t\\u0000ol", 0, 1.5, None, "p\\u0000", "e\\u0000")
    usage = both["llm_usage"][0]
    assert [u[3:10] for u in usage] == [
        ("controller", "m\\u0000", None, None, 3, None, 0.25),  # bogus counts: NULL, never an error
        ("controller", "m", None, -1, None, None, None),
        ("controller", "m", None, 10, 2, 12, None),
    ]
    assert both["llm_cost"][0] == [(run, "controller", "-", 3, 12, None, 2)]
    header = [(r[1], r[2], r[4]) for r in both["events"][1]]
    assert header == [(e.seq, e.type, e.at.isoformat()) for e in events]
    assert both["events"][1][1][6]["ops"][0]["facts"][0]["value"] == ODD["nul"]  # the body stays exact


def m008_database(pg_url: str, events: list[BaseEvent]) -> None:
    """A database as agentcore left it at m008 (events in segments, a NUL in one of them)."""
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "CREATE TABLE agentcore_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
            "applied TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        for number, (name, sql) in enumerate(MIGRATIONS[:8], start=1):
            assert number < 9 or name.startswith("m009")
            conn.execute(sql)  # type: ignore[arg-type]
            conn.execute("INSERT INTO agentcore_migrations (id, name) VALUES (%s, %s)", (number, name))
        bodies = [encode_event(e) for e in events]
        conn.execute(
            "INSERT INTO runs (id, task, created, last_seq, tail, tail_seq, tail_bytes) "
            "VALUES ('old', 'before m009', '2026-01-01T00:00:00+00:00', %s, %s, %s, %s)",
            (len(events), "[" + ",".join(bodies[3:]) + "]", 4, len(",".join(bodies[3:])) + 2),
        )
        conn.execute(
            "INSERT INTO run_log (run_id, kind, seq, last_seq, body) VALUES ('old', 'e', 1, 3, %s)",
            ("[" + ",".join(bodies[:3]) + "]",),
        )


def test_a_m008_database_is_upgraded_and_its_views_read_a_nul(pg_url: str) -> None:
    events = [started("old", 1), fact("old", 2, key="k", value="nul\x00byte"), fact("old", 3, key="j")]
    events += [fact("old", 4, key="tail\x00", value="\x00"), finished("old", 5)]
    m008_database(pg_url, events)
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.UntranslatableCharacter):
        conn.execute("SELECT * FROM facts").fetchall()  # the bug, as m008 left it
    with PostgresEventStore(pg_url) as s:
        assert list(s.read("old")) == events
        assert s.run_stats("old") == stats_of(iter(events))
        s.append("old", [fact("old", 6, key="after", value="\x00!")], 5)
    with psycopg.connect(pg_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM agentcore_migrations ORDER BY id")]
        facts = conn.execute("SELECT seq, key, value, value_json FROM facts ORDER BY seq").fetchall()
        for view in VIEWS:
            conn.execute(f"SELECT * FROM {view}").fetchall()
    assert "m009_nul_safe_views" in names
    assert facts == [
        (2, "k", "nul\\u0000byte", '"nul\\u0000byte"'), (3, "j", "v", '"v"'),
        (4, "tail\\u0000", "\\u0000", '"\\u0000"'), (6, "after", "\\u0000!", '"\\u0000!"'),
    ]  # fmt: skip


def test_a_sqlite_file_before_m006_is_upgraded_and_no_longer_cuts_a_value_at_nul(tmp_path: Path) -> None:
    from sqlite_utils import Database

    from agentcore.storage.sqlite.migrations import sqlite_migrations

    path = tmp_path / "old.db"
    db = Database(path)
    sqlite_migrations().apply(db, stop_before="m006_nul_safe_views")
    db.execute("PRAGMA user_version = 5")
    event = fact("old", 1, key="k", value="nul\x00byte")
    db.execute("INSERT INTO runs (id, task, created, last_seq) VALUES ('old', 't', '2026-01-01', 1)")
    db.execute(
        "INSERT INTO events (run_id, seq, type, v, at, caused_by, body) VALUES ('old', 1, ?, 1, ?, NULL, ?)",
        [event.type, event.at.isoformat(), encode_event(event)],
    )
    assert db.execute("SELECT value FROM facts").fetchall() == [("nul",)]  # the bug: cut at the NUL
    db.close()
    with open_store(path) as s:
        assert list(s.read("old")) == [event]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value, value_json FROM facts").fetchall() == [("nul\\u0000byte", '"nul\\u0000byte"')]
    assert conn.execute("PRAGMA user_version").fetchone() == (6,)


def test_text_with_nul_is_refused_on_postgresql_as_bad_input_not_as_storage_down(pg_url: str) -> None:
    """A NUL where PostgreSQL keeps text (a task, a worker's name) is the caller's to fix:
    ``ConfigError``, not ``StorageUnavailable`` (which a worker would wait out and retry)."""
    from agentcore.errors import ConfigError, StorageUnavailable

    with PostgresEventStore(pg_url) as s:
        with pytest.raises(ConfigError, match="NUL"):
            s.submit("a\x00task", spec={"ok": "no NUL here"})
        with pytest.raises(ConfigError, match=r"the spec\['note'\] holds a NUL"):  # queued until session 7
            s.submit("a task", spec={"note": "nul\x00"})
        queued = s.submit("a task", spec={"note": "nul"})
        with pytest.raises(ConfigError, match=r"NUL character \(U\+0000\).*nothing was written") as got:
            s.claim("worker\x00name")
        assert not isinstance(got.value, StorageUnavailable)
        lease = s.claim("worker")
        assert lease is not None and lease.run_id == queued
        assert [r.id for r in s.runs()] == [queued]
