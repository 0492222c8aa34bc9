"""Event rows changed outside agentcore (by hand, by another tool) are reported as damaged by every
read, never served as a shorter or renumbered log nor as a traceback.

A real SQLite file (rows of ``events``) and a real PostgreSQL server (the run's open segment,
``runs.tail``), each changed with its own driver after the run was written.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentcore.errors import DamagedDatabase
from tests.storage.test_store import fill

SQLITE_EDITS = {
    "a row deleted": "DELETE FROM events WHERE seq = 5",
    "the last rows deleted": "DELETE FROM events WHERE seq > 8",
    "a body renumbered": "UPDATE events SET body = replace(body, '\"seq\":3,', '\"seq\":30,') WHERE seq = 3",
    "a body copied from another row": "UPDATE events SET body = (SELECT body FROM events e WHERE e.seq = 2) WHERE seq = 3",
    "a body that is not an event": "UPDATE events SET body = replace(body, '\"type\":', '\"type_\":') WHERE seq = 4",
    "a body that is not JSON": "UPDATE events SET body = 'garbage' WHERE seq = 4",
    "a field of the wrong type": "UPDATE events SET body = replace(body, '\"seq\":4,', '\"seq\":\"four\",') WHERE seq = 4",
    # json.loads raises RecursionError and UnicodeDecodeError for these, not JSONDecodeError
    "a body nested deeper than a parser goes": "UPDATE events SET body = '{\"a\":' || replace(hex(zeroblob(50000)), '00', '[') WHERE seq = 4",
    "a body that is not UTF-8": "UPDATE events SET body = X'7B2261223A22FF227D' WHERE seq = 4",
}
POSTGRES_EDITS = {
    "an element dropped": (
        "UPDATE runs SET tail = (SELECT json_agg(e ORDER BY n)::text FROM json_array_elements(tail::json) "
        "WITH ORDINALITY AS x(e, n) WHERE n <> 5)"
    ),
    "a body renumbered": "UPDATE runs SET tail = replace(tail, '\"seq\":3,', '\"seq\":30,')",
    "not JSON": "UPDATE runs SET tail = 'garbage'",
    "an empty array": "UPDATE runs SET tail = '[]'",
    "an element that is not an event": "UPDATE runs SET tail = replace(tail, '\"type\":\"run_started\"', '\"type\":\"no_such\"')",
}


def _sqlite(tmp_path: Path, edit: str) -> tuple[Any, str, str]:
    from agentcore.storage.sqlite.store import SQLiteEventStore

    path = str(tmp_path / "s.db")
    with SQLiteEventStore(path, snapshot_every=None) as store:
        run, _ = fill(store, steps=2)
    with sqlite3.connect(path) as conn:
        assert conn.execute(edit).rowcount >= 1
    return SQLiteEventStore(path), path, run


def _postgres(url: str, edit: str) -> tuple[Any, str, str]:
    import psycopg

    from agentcore.storage.postgres.store import PostgresEventStore

    with PostgresEventStore(url, snapshot_every=None) as store:
        run, _ = fill(store, steps=2)
    with psycopg.connect(url) as conn:
        assert conn.execute(edit).rowcount == 1
    return PostgresEventStore(url), url, run


@pytest.mark.parametrize(
    ("kind", "edit"),
    [("sqlite", e) for e in SQLITE_EDITS.values()] + [("postgres", e) for e in POSTGRES_EDITS.values()],
    ids=[f"sqlite: {k}" for k in SQLITE_EDITS] + [f"postgres: {k}" for k in POSTGRES_EDITS],
)
def test_every_read_of_a_hand_edited_log_says_it_is_damaged(
    kind: str, edit: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store, target, run = (
        _sqlite(tmp_path, edit) if kind == "sqlite" else _postgres(request.getfixturevalue("pg_url"), edit)
    )
    with store:
        with pytest.raises(DamagedDatabase, match="damaged"):
            list(store.read(run))
        with pytest.raises(DamagedDatabase, match="damaged"):
            store.state_at(run)
        if edit in (POSTGRES_EDITS["an element dropped"], POSTGRES_EDITS["an empty array"]):
            with pytest.raises(DamagedDatabase, match="damaged"):  # SQL aggregates: an AssertionError before
                store.run_stats(run)
    for args in (["events", run], ["state", run], ["export", run, "-o", str(tmp_path / "t.jsonl")]):
        done = subprocess.run(
            [sys.executable, "-m", "agentcore", "--db", target, *args], capture_output=True, text=True, timeout=60
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("Error: "), (args, done.stderr[-2000:])
        assert "damaged" in lines[0], lines
    assert not (tmp_path / "t.jsonl").exists()


POSTGRES_VALUE_EDITS = {
    # a cast in the events view or in run_stats fails: SQLSTATE class 22 (data exception)
    "the open segment not JSON (22P02)": "UPDATE runs SET tail = 'garbage' WHERE id = %s",
    "the open segment an object (22023)": "UPDATE runs SET tail = '{\"a\": 1}' WHERE id = %s",
    "an escape that is no character (22P02)": (
        "UPDATE runs SET tail = replace(tail, '\"type\":\"run_started\"', '\"x\":\"\\ud800y\",\"type\":\"run_started\"') "
        "WHERE id = %s"
    ),
    "a token count that is not a number (22P02)": (
        "UPDATE runs SET tail = regexp_replace(tail, '\"total_tokens\":[0-9]+', '\"total_tokens\":\"lots\"', 'g') "
        "WHERE id = %s"
    ),
    "an event time that is not a time": (
        "UPDATE runs SET tail = regexp_replace(tail, '\"at\":\"[^\"]*\"', '\"at\":\"junk\"', 'g') WHERE id = %s"
    ),
}


@pytest.mark.parametrize("edit", POSTGRES_VALUE_EDITS.values(), ids=POSTGRES_VALUE_EDITS.keys())
def test_a_value_of_a_run_that_no_longer_reads_as_its_type_is_damage_naming_the_run(pg_url: str, edit: str) -> None:
    """A read whose cast fails on a hand-edited value said the server was unavailable ("is it running?");
    an event time that is not one was a ValueError traceback from ``agentcore runs``."""
    import psycopg

    from agentcore.storage.postgres.store import PostgresEventStore
    from tests.support.postgres import PASSWORD

    with PostgresEventStore(pg_url, snapshot_every=None) as store:
        run, _ = fill(store, steps=2)
        intact, _ = fill(store, steps=1)
        intact_stats = store.run_stats(intact)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute(edit, (run,)).rowcount == 1
    with PostgresEventStore(pg_url) as store:
        with pytest.raises(DamagedDatabase, match=rf"run {run!r}.* damaged.*changed outside agentcore; restore"):
            store.run_stats(run)
        assert store.run_stats(intact) == intact_stats  # only the run's own rows are at fault
    done = subprocess.run(
        [sys.executable, "-m", "agentcore", "--db", pg_url, "runs"], capture_output=True, text=True, timeout=60
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("Error: "), done.stderr[-2000:]
    assert "damaged" in lines[0] and run in lines[0] and PASSWORD not in lines[0], lines
    assert "unavailable" not in lines[0] and "is it running" not in lines[0].lower(), lines


def test_an_event_time_that_is_not_a_time_is_damage_on_sqlite_too(tmp_path: Path) -> None:
    from agentcore.storage.sqlite.store import SQLiteEventStore

    path = str(tmp_path / "s.db")
    with SQLiteEventStore(path, snapshot_every=None) as store:
        run, _ = fill(store, steps=2)
    with sqlite3.connect(path) as conn:
        assert conn.execute("UPDATE events SET at = 'junk' WHERE seq = 1").rowcount == 1
    with SQLiteEventStore(path) as store, pytest.raises(DamagedDatabase, match=rf"run {run!r} is damaged: an event's time 'junk'"):
        store.run_stats(run)


def test_a_data_exception_is_damage_only_where_our_rows_are_read() -> None:
    """The classification itself: in a write, a data exception may come from the values written."""
    from psycopg import errors as pg_errors

    from agentcore.errors import StorageUnavailable
    from agentcore.storage.postgres import failures

    for error in (pg_errors.InvalidTextRepresentation("x"), pg_errors.NumericValueOutOfRange("x"),
                  pg_errors.InvalidJsonText("x")):  # fmt: skip
        read = failures.lost(error, "postgresql://u:***@h/db", "x", "read run 'r'", 10, reading=True)
        assert isinstance(read, DamagedDatabase) and "read run 'r'" in str(read), read
        assert str(error.sqlstate) in str(read)
        written = failures.lost(error, "postgresql://u:***@h/db", "x", "append to run 'r'", 10, reading=False)
        assert isinstance(written, StorageUnavailable), written
