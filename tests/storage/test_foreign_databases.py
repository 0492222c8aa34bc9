"""Damaged agentcore files and other applications' files are refused before a single byte is written."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from agentcore.errors import DamagedDatabase, NotAnAgentcoreDatabase
from agentcore.storage.sqlite.migrations import APPLICATION_ID
from agentcore.storage.sqlite.store import SQLiteEventStore


def fingerprint(path: Path) -> tuple[str, list[str]]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(p.name for p in path.parent.iterdir())


def ours_in_rollback_mode(path: Path) -> Path:
    """A healthy agentcore file, switched back to a rollback journal (so a WAL switch would show in its header)."""
    with SQLiteEventStore(path) as store:
        store.create_run("a task", run_id="r1")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    return path


def _edit(sql: str) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        conn.executescript(sql)

    return run


DAMAGE = {
    "a column missing": _edit(
        "CREATE TABLE runs2 AS SELECT id, task, created, parent_run_id, forked_at_seq, last_seq FROM runs;"
        "DROP TABLE runs; ALTER TABLE runs2 RENAME TO runs;"
    ),
    "a table missing": _edit("DROP TABLE artifacts;"),
    "a view missing": _edit("DROP VIEW IF EXISTS llm_usage;"),
    "a migration half-applied": _edit(
        "DELETE FROM _sqlite_migrations WHERE rowid = (SELECT rowid FROM _sqlite_migrations ORDER BY rowid LIMIT 1 OFFSET 1);"
    ),
    "the migrations out of order": _edit(
        "UPDATE _sqlite_migrations SET name = 'tmp' WHERE name = 'm001_runs_events';"
        "UPDATE _sqlite_migrations SET name = 'm001_runs_events' WHERE name = 'm002_artifacts';"
        "UPDATE _sqlite_migrations SET name = 'm002_artifacts' WHERE name = 'tmp';"
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_agentcore_file_is_refused_before_anything_is_written(tmp_path: Path, damage: str) -> None:
    db = ours_in_rollback_mode(tmp_path / "d.db")
    conn = sqlite3.connect(db, isolation_level=None)
    DAMAGE[damage](conn)
    conn.close()
    before = fingerprint(db)
    with pytest.raises(NotAnAgentcoreDatabase) as err:
        SQLiteEventStore(db)
    assert fingerprint(db) == before, "the file (or its directory) changed before the refusal"
    assert isinstance(err.value, DamagedDatabase) and "damaged" in str(err.value)


@pytest.mark.parametrize(
    ("pragma", "says"),
    [
        ("application_id = 1196379969", "application_id"),
        ("user_version = 7", "user_version"),
        ("application_id = -5", "application_id"),
    ],
)
def test_an_empty_file_of_another_application_gets_no_schema(tmp_path: Path, pragma: str, says: str) -> None:
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("DROP TABLE t")  # an SQLite file with a header and no table
    conn.close()
    before = fingerprint(db)
    with pytest.raises(NotAnAgentcoreDatabase, match=f"another application.*{says}|{says}.*another application") as err:
        SQLiteEventStore(db)
    assert not isinstance(err.value, DamagedDatabase)
    assert fingerprint(db) == before


def test_another_applications_id_is_respected_even_with_our_tables(tmp_path: Path) -> None:
    db = ours_in_rollback_mode(tmp_path / "d.db")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA application_id = 12345")
    conn.close()
    before = fingerprint(db)
    with pytest.raises(NotAnAgentcoreDatabase, match="belongs to another application"):
        SQLiteEventStore(db)
    assert fingerprint(db) == before


def test_a_new_file_carries_our_application_id_and_old_files_still_open(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    SQLiteEventStore(db).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.execute("PRAGMA application_id = 0")  # as written before the id existed
    conn.commit()
    conn.close()
    with SQLiteEventStore(db) as store:
        assert store.runs() == []
