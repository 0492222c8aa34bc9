"""The connection the SQLite event store and artifact store share.

``SQLiteConnection`` owns the one ``sqlite3`` connection of a store: it opens the file only once
it knows the file is new or ours (creating or migrating the schema), serialises threads,
runs every write in ``BEGIN IMMEDIATE`` (so racing writers queue up instead of failing half-way),
retries "database is locked" within a bounded time, and turns driver errors into agentcore errors
with a message that says what to do (``driver_errors.translate``).

Waiting for a lock: SQLite's own busy handler is off (``PRAGMA busy_timeout=0``); instead every
statement that can meet a lock (``BEGIN IMMEDIATE``, ``COMMIT``, reads, checkpoints) goes through
``SQLiteConnection.retry``, which polls with short exponential sleeps with jitter (``RETRY_FIRST_S``
doubling up to ``RETRY_CAP_S``) until ``busy_timeout_s`` has passed. SQLite's handler sleeps up to
100 ms a try, so a waiting writer could miss several turns of the lock; polling at most every 20 ms
halves the tail latency of many processes writing one file (see benchmarks/README.md, W7).
The waits are the package's one backoff, ``RetryPolicy.delay`` (``LOCK_BACKOFF``); a retry library
such as tenacity was not taken: every read and write passes through ``retry``, and the loop is
six lines that need the deadline, not a new dependency on the hot path.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from agentcore.core.plans import RetryPolicy
from agentcore.errors import ConfigError, StorageUnavailable
from agentcore.storage.sqlite.driver_errors import is_busy, translate
from agentcore.storage.sqlite.migrations import classify, inspect_file, migrate

T = TypeVar("T")

RETRY_FIRST_S = 0.001
"""The first sleep (at most; jitter takes it down to half) before retrying a locked statement."""

RETRY_CAP_S = 0.02
"""The longest sleep between two tries at a locked statement."""

LOCK_BACKOFF = RetryPolicy.model_construct(
    base_delay=RETRY_FIRST_S, max_delay=RETRY_CAP_S, jitter=True
)  # constants: no validator built at import
"""The waits between tries at a locked statement: the one backoff (``RetryPolicy.delay``)."""

_JITTER = random.Random()  # unseeded: processes waiting on one lock must not wake in step


class SQLiteConnection:
    """The one connection of a store, shared by its events and artifacts (internal plumbing)."""

    def __init__(self, conn: sqlite3.Connection, where: str, busy_timeout_s: float) -> None:
        self.conn = conn
        self.where = where
        self.busy_timeout_s = busy_timeout_s
        self.lock = threading.RLock()
        self.closed = False

    @classmethod
    def open(cls, path: str, *, durability: str, busy_timeout_s: float, read_only: bool) -> SQLiteConnection:
        """Open (creating or migrating when needed) an agentcore database; see ``SQLiteEventStore``.

        Nothing is written before the file is known to be new or ours: an immutable look first,
        then a look on this connection (which also sees an un-checkpointed WAL).
        """
        memory = path == ":memory:"
        target, uri = path, False
        if not memory:
            file = Path(path)
            if file.is_dir():
                raise ConfigError(f"{path} is a directory; pass the path of a database file")
            if file.exists() and not file.is_file():  # /dev/null, a FIFO, a socket: SQLite cannot keep a log there
                raise ConfigError(f"{path} is not a regular file (a device, pipe or socket); pass the path of a database file")
            if not file.parent.is_dir():
                raise ConfigError(f"cannot create {path}: directory {file.parent} does not exist")
            first = inspect_file(file)  # raises on what is surely not ours
            if read_only:
                if first is not None and first.kind == "new":
                    raise StorageUnavailable(
                        f"{path} is not an agentcore database yet, and read_only=True cannot create it"
                    )
                target, uri = file.absolute().as_uri() + "?mode=ro", True
        try:
            conn = sqlite3.connect(  # no busy handler (timeout 0): ``retry`` does the waiting
                target,
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
            )
        except sqlite3.Error as e:
            raise translate(e, path, "open the database") from e
        db = cls(conn, path, busy_timeout_s)
        try:
            db._setup(durability, read_only, memory)
        except BaseException:
            db.close()
            raise
        return db

    def _setup(self, durability: str, read_only: bool, memory: bool) -> None:
        check = self.retry(lambda: classify(self.conn, self.where), "inspect the database")
        if read_only:
            if check.kind == "new" or check.pending:
                raise StorageUnavailable(
                    f"{self.where} has no agentcore schema (or an older one), and read_only=True cannot create "
                    "or upgrade it; open it once without read_only"
                )
            return
        if not memory:
            self.retry(lambda: self.conn.execute("PRAGMA journal_mode=WAL").fetchone(), "switch to WAL mode")
        self.conn.execute(f"PRAGMA synchronous={durability.upper()}")
        if check.kind == "new" or check.pending:
            with self.transaction("create the agentcore schema") as conn:
                again = classify(conn, self.where)  # another process may have migrated meanwhile
                if again.kind == "new" or again.pending:
                    migrate(conn)

    def retry(self, fn: Callable[[], T], action: str) -> T:
        """Call ``fn`` until it stops failing with "database is locked" or ``busy_timeout_s`` passes.

        Sleeps between tries follow ``LOCK_BACKOFF``: from ``RETRY_FIRST_S`` doubling up to
        ``RETRY_CAP_S``, times a random factor in [0.5, 1] so that waiting processes do not wake in
        step, and never past the deadline.
        """
        deadline = time.monotonic() + self.busy_timeout_s
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except sqlite3.Error as e:
                left = deadline - time.monotonic()
                if not is_busy(e) or left <= 0:
                    raise translate(e, self.where, action) from e
            time.sleep(min(left, LOCK_BACKOFF.delay(attempt, _JITTER)))

    def check_open(self) -> None:
        if self.closed:
            raise ConfigError(f"the store on {self.where} is closed; open a new one")

    def query(self, sql: str, params: tuple[object, ...] = (), action: str = "read") -> list[tuple[Any, ...]]:
        """Run a read query and fetch its rows (retrying while the file is locked)."""
        with self.lock:
            self.check_open()
            return self.retry(lambda: self.conn.execute(sql, params).fetchall(), action)

    def one(self, sql: str, params: tuple[object, ...] = (), action: str = "read") -> tuple[Any, ...] | None:
        """The first row of a read query, or ``None``."""
        with self.lock:
            self.check_open()
            row: tuple[Any, ...] | None = self.retry(lambda: self.conn.execute(sql, params).fetchone(), action)
            return row

    def execute(self, sql: str, params: tuple[object, ...] = (), action: str = "write") -> int:
        """One write statement as its own transaction (autocommit, retried while the file is
        locked); its row count."""
        with self.lock:
            self.check_open()
            count: int = self.retry(lambda: self.conn.execute(sql, params).rowcount, action)
            return count

    @contextmanager
    def transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): commit on success, roll back on any error.

        Driver errors surface as ``StorageUnavailable`` naming ``action``; agentcore errors raised
        inside pass through (after the rollback).
        """
        with self.lock:
            self.check_open()
            conn = self.conn
            self.retry(lambda: conn.execute("BEGIN IMMEDIATE"), action)
            try:
                yield conn
                # in WAL mode a COMMIT after BEGIN IMMEDIATE does not wait for anyone; should it
                # meet a lock anyway, the transaction stays open and COMMIT may simply be retried
                self.retry(lambda: conn.execute("COMMIT"), action)
            except BaseException as e:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:  # pragma: no cover - the error already ended the transaction
                        pass
                if isinstance(e, sqlite3.Error) and not isinstance(e, sqlite3.IntegrityError):
                    raise translate(e, self.where, action) from e
                raise

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self.lock:
            if not self.closed:
                self.closed = True
                self.conn.close()
