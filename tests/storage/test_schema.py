"""The schema is written once (``storage/schema.py``) and rendered for SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
import sqlite3

import pytest

from agentcore.storage.schema import POSTGRES, SQLITE, Dialect


def _columns(sql: str) -> list[str]:
    return re.findall(r" AS (\w+)(?:,|\n|$)", sql.split("\nFROM")[0])


@pytest.mark.parametrize("view", ["llm_usage", "tool_calls"])
def test_event_views_have_the_same_columns_on_both_databases(view: str) -> None:
    assert _columns(SQLITE.event_view(view)) == _columns(POSTGRES.event_view(view))
    assert _columns(SQLITE.facts_view()) == _columns(POSTGRES.facts_view()) == [
        "key", "value", "source", "artifact_id", "confidence", "value_json",
    ]  # fmt: skip
    assert _columns(SQLITE.facts_view(nul_safe=False)) == _columns(POSTGRES.facts_view(nul_safe=False)) == [
        "key", "value", "source", "artifact_id", "confidence",
    ]  # fmt: skip


def test_an_older_view_leaves_out_only_the_named_columns() -> None:
    full, old = (
        _columns(SQLITE.event_view("llm_usage")),
        _columns(SQLITE.event_view("llm_usage", without=("cost_usd",))),
    )
    assert [c for c in full if c != "cost_usd"] == old


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=lambda d: d.name)
def test_json_fields_follow_the_dotted_path(dialect: Dialect) -> None:
    expected = {
        "sqlite": "json_extract(body, '$.usage.total_tokens')",
        "postgres": "(body -> 'usage' ->> 'total_tokens')::bigint",
    }
    assert dialect.field("body", "usage.total_tokens", "bigint") == expected[dialect.name]


def test_shared_statements_take_each_drivers_placeholder() -> None:
    shared = "SELECT seq FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"
    assert SQLITE.sql(shared) == shared
    assert POSTGRES.sql(shared) == "SELECT seq FROM events WHERE run_id = %s AND seq > %s ORDER BY seq LIMIT %s"
    assert (SQLITE.lock_row, POSTGRES.lock_row) == ("", " FOR UPDATE")


def test_the_sqlite_rendering_runs_and_reads_event_bodies() -> None:
    conn = sqlite3.connect(":memory:")
    for table in ("runs", "events"):
        for sql in SQLITE.create_table(table):
            conn.execute(sql)
    conn.execute(SQLITE.event_view("tool_calls"))
    conn.execute("INSERT INTO runs (id, task, created) VALUES ('r', 't', 'now')")
    body = '{"call_id": "c1", "name": "grep", "ok": true, "duration_ms": 2.5, "artifact": {"id": "sha256:x"}}'
    conn.execute("INSERT INTO events VALUES ('r', 1, 'tool_finished', 1, 'now', NULL, ?)", (body,))
    assert conn.execute("SELECT call_id, name, ok, duration_ms, artifact_id FROM tool_calls").fetchall() == [
        ("c1", "grep", 1, 2.5, "sha256:x")
    ]
