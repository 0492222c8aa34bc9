"""The event store in one SQLite file (WAL mode): runs, events, artifacts and snapshots.

The store itself is ``storage.sql_store.SQLEventStore`` (shared with PostgreSQL: appends, the
snapshot policy, forks, reads); this module adds the file: opening it, durability, the WAL
checkpoint, and how SQLite writes and counts event rows.

"database is locked" never reaches the caller, for writes or reads: a bounded retry loop absorbs
it (``SQLiteConnection.retry``), and only an outlasted ``busy_timeout_s`` surfaces (as
``StorageUnavailable``). A write transaction is ``BEGIN IMMEDIATE``: it holds the file, so the
append's check of the run's last seq needs no row lock.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Sequence
from typing import Any, Literal

from agentcore.core.events import BaseEvent
from agentcore.errors import ConfigError
from agentcore.storage.base import RunStats
from agentcore.storage.schema import SQLITE
from agentcore.storage.sql_reads import PAGE, EventHeader, event_time
from agentcore.storage.sql_rows import SQLExecutor
from agentcore.storage.sql_store import SQLEventStore
from agentcore.storage.sqlite.artifacts import SQLiteArtifactStore
from agentcore.storage.sqlite.connection import SQLiteConnection
from agentcore.storage.state_cache import CACHE_RUNS

Durability = Literal["full", "normal"]

__all__ = ("CACHE_RUNS", "PAGE", "EventHeader", "SQLiteEventStore")


class SQLiteEventStore(SQLEventStore):
    """Runs, events, artifacts and snapshots in one SQLite file.

    Args:
        path: The database file; created (with its schema) when absent or empty. ``":memory:"``
            gives a private in-memory database.
        durability: ``"full"`` (default) syncs the log to disk at every commit, so a committed step
            survives a power cut; ``"normal"`` syncs at checkpoints only: a process crash still
            loses nothing, a power cut may lose the last commits (never corrupting the file).
        snapshot_every: Fewest events between two snapshots; ``None`` writes no snapshots.
        snapshot_ratio: Event bytes needed since the last snapshot, as a multiple of its size.
        busy_timeout_s: How long a write waits for other writers before ``StorageUnavailable``.
        read_only: Open without write access (inspection); any write raises ``StorageUnavailable``.

    Raises:
        NotAnAgentcoreDatabase: the file is not SQLite or belongs to another application.
        SchemaTooNew: a newer agentcore wrote the file. In both cases the file is left untouched.
        ConfigError: invalid settings, or a path whose directory does not exist.
    """

    dialect = SQLITE
    _db: SQLiteConnection
    _DUPLICATE = (sqlite3.IntegrityError,)
    _BODY_BYTES = "length(body)"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "full",
        snapshot_every: int | None = 100,
        snapshot_ratio: float = 0.5,
        busy_timeout_s: float = 30.0,
        read_only: bool = False,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ConfigError(f"durability must be 'full' or 'normal', got {durability!r}")
        self._init_snapshots(snapshot_every, snapshot_ratio)
        if not busy_timeout_s > 0:
            raise ConfigError(f"busy_timeout_s must be > 0, got {busy_timeout_s!r}")
        self.path = str(path)
        self.durability = durability
        self.read_only = read_only
        self._db = SQLiteConnection.open(
            self.path, durability=durability, busy_timeout_s=busy_timeout_s, read_only=read_only
        )
        self.artifacts = SQLiteArtifactStore(self._db)

    def __repr__(self) -> str:
        return f"SQLiteEventStore({self.path!r}, durability={self.durability!r})"

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it (``PRAGMA wal_checkpoint(TRUNCATE)``),
        waiting up to ``busy_timeout_s`` for other connections (then ``StorageUnavailable``)."""

        def attempt() -> None:
            busy = self._db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy is not None and busy[0]:  # the pragma reports "busy" in its result, not as an error
                raise sqlite3.OperationalError("database is locked")

        with self._db.lock:
            self._db.check_open()
            self._db.retry(attempt, "checkpoint the WAL")

    def _write_events(
        self, conn: SQLExecutor, run_id: str, events: Sequence[BaseEvent], bodies: list[str], run: dict[str, Any]
    ) -> None:
        rows = [(run_id, e.seq, e.type, e.v, e.at.isoformat(), e.caused_by, b) for e, b in zip(events, bodies, strict=True)]
        assert isinstance(conn, sqlite3.Connection)
        conn.executemany(
            "INSERT INTO events (run_id, seq, type, v, at, caused_by, body) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
        )
        conn.execute(*self._run_update(run_id, run))

    def _exact_tokens(self, seg: Sequence[Any]) -> int:
        """The tokens of one segment, summed exactly in Python: SQLite reads an integer past 2**63 as a
        float, so the ``TOTAL`` of a server's absurd counts (10**400) is infinity."""
        rows = self._db.query(
            "SELECT json_extract(body, '$.usage') FROM events WHERE run_id = ? AND seq > ? AND seq <= ? "
            "AND type = 'llm_called'",
            tuple(seg),
        )
        total = 0
        for (usage,) in rows:
            found = json.loads(usage) if usage else None
            value = found.get("total_tokens") if isinstance(found, dict) else None
            total += value if isinstance(value, int) else 0
        return total

    def run_stats(self, run_id: str) -> RunStats:
        """Event count, first and last ``at`` and total tokens of a run (a fork: its parent's prefix too),
        from indexed columns and SQL aggregates: no event is decoded in Python (``agentcore runs``)."""
        _, segments = self._segments(run_id, 0, None)
        count = tokens = 0
        for seg in segments:
            row = self._db.one(
                # TOTAL, a float: SUM stops with "integer overflow" at 2**63 (a server's bogus count)
                "SELECT COUNT(*), TOTAL(CASE WHEN type = 'llm_called' "
                "THEN json_extract(body, '$.usage.total_tokens') END) "
                "FROM events WHERE run_id = ? AND seq > ? AND seq <= ?",
                tuple(seg),
            )
            assert row is not None
            count += row[0]
            tokens += int(row[1]) if math.isfinite(row[1]) else self._exact_tokens(seg)
        if not count:
            return RunStats(0, None, None, 0)
        first, last = segments[0], segments[-1]
        at_first = self._db.one(
            "SELECT at FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT 1", (first.run_id, first.after)
        )
        at_last = self._db.one(
            "SELECT at FROM events WHERE run_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1", (last.run_id, last.upto)
        )
        assert at_first is not None and at_last is not None
        return RunStats(count, event_time(run_id, at_first[0]), event_time(run_id, at_last[0]), tokens)
