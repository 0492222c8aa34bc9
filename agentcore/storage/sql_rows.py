"""What the SQLite and PostgreSQL stores share below their SQL: the connection they are written
against, and the rows of the ``runs`` table.

Shared SQL is written once with ``?`` placeholders and turned into the driver's style by the
store's ``dialect`` (``Dialect.sql``). The store's ``_db`` is a ``SQLConnection``: the SQLite store's
``SQLiteConnection`` and the PostgreSQL store's ``PgConnection`` both are.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from agentcore.errors import RunNotFound
from agentcore.storage.base import RunInfo
from agentcore.storage.schema import Dialect

RUN_COLUMNS = "id, task, status, created, last_seq, parent_run_id, forked_at_seq"
"""The ``runs`` columns a ``RunInfo`` is read from, in ``run_info``'s order."""


class SQLCursor(Protocol):
    """What a statement gives back (``sqlite3.Cursor``, ``psycopg.Cursor``)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


class SQLExecutor(Protocol):
    """A connection inside a transaction (``sqlite3.Connection``, ``psycopg.Connection``)."""

    def execute(self, sql: str, params: Any = ..., /) -> SQLCursor: ...


class SQLConnection(Protocol):
    """A store's connection: single-statement reads, write transactions and a lock for a read of
    several statements that must not interleave with this process's writes."""

    @property
    def where(self) -> str:
        """The database, as messages name it (never with a password)."""
        ...

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """Held around a read of several statements (a no-op where the server isolates them)."""
        ...

    def query(self, sql: str, params: tuple[Any, ...] = (), action: str = "read") -> list[tuple[Any, ...]]:
        """All rows of one read statement."""
        ...

    def one(self, sql: str, params: tuple[Any, ...] = (), action: str = "read") -> tuple[Any, ...] | None:
        """The first row of one read statement, or ``None``."""
        ...

    def execute(self, sql: str, params: tuple[Any, ...] = (), action: str = "write") -> int:
        """One write statement as its own transaction (one round trip); its row count."""
        ...

    def close(self) -> None:
        """Close the connection (idempotent); later calls raise ``ConfigError``."""
        ...

    def transaction(self, action: str) -> AbstractContextManager[SQLExecutor]:
        """A write transaction: commit on success, roll back on any error; driver errors become
        ``StorageUnavailable`` naming ``action`` (unique violations pass through)."""
        ...


def run_info(row: tuple[Any, ...]) -> RunInfo:
    """The ``RunInfo`` of a row of ``RUN_COLUMNS``."""
    return RunInfo(
        id=row[0], task=row[1], status=row[2], created=row[3], last_seq=row[4],
        parent_run_id=row[5], forked_at_seq=row[6],
    )  # fmt: skip


class RunRows:
    """``runs``, ``run`` and ``last_seq`` of a SQL store."""

    _db: SQLConnection
    dialect: Dialect
    _RUN_ROWS = f"SELECT {RUN_COLUMNS} FROM runs"
    """The run rows as ``runs`` and ``run`` give them (a store with a work queue shows ``queued``)."""

    def _not_found(self, run_id: str) -> RunNotFound:
        return RunNotFound(f"no run {run_id!r} in {self._db.where}")

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        return [run_info(r) for r in self._db.query(f"{self._RUN_ROWS} ORDER BY created, id")]

    def run(self, run_id: str) -> RunInfo:
        """One run's row; ``RunNotFound`` if absent."""
        row = self._db.one(self.dialect.sql(f"{self._RUN_ROWS} WHERE id = ?"), (run_id,))
        if row is None:
            raise self._not_found(run_id)
        return run_info(row)

    def last_seq(self, run_id: str) -> int:
        """The seq of the run's last event (0 for a run with none)."""
        return self.run(run_id).last_seq
