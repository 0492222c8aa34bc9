"""The connection pool of a PostgreSQL store (its driver errors made agentcore errors by ``failures``).

``PgConnection`` owns a ``psycopg_pool.ConnectionPool`` (connections are checked before use, so
one that a server restart broke is replaced instead of handed out), or, for a one-shot command
(``pool=False``: the CLI's inspection commands), one ``psycopg.Connection`` that it lends the same
way (checked before use and replaced when broken; threads take turns): no second connection, no
pool threads, and ``psycopg_pool`` is not imported. Every unit of work is one
transaction on one pooled connection: ``transaction(action)`` commits on success and rolls back
on any error. Driver errors become agentcore errors saying what happened and what to do
(``storage.postgres.failures``): a refused connection setting ``ConfigError`` (checked before
connecting where libpq's parser can tell), a server down or lost ``StorageUnavailable``, a value of
our rows that is not of its type ``DamagedDatabase``.

Secrets: the URL's password is used to connect and nowhere else. ``where`` (the URL without its
password) is what messages, ``repr`` and logs show, and every driver message is scrubbed of the
password before it is put into an agentcore error.

Behind a pooler in transaction mode (PgBouncer's ``pool_mode = transaction``) consecutive
transactions of one client connection run on whichever server session is free, so nothing may
depend on a session: ``prepared_statements=False`` (``AGENTCORE_PG_PREPARED=0``) makes psycopg
prepare nothing (``prepare_threshold=None``), sends our own statements unprepared, sets nothing on
the session, and makes ``listen`` poll (``storage.postgres.queue``). Left on there, psycopg's
``_pg3_N`` statements collide on the shared sessions: that error is a ``ConfigError`` naming the
setting (``lost``).
"""

from __future__ import annotations

import hashlib
import logging
import select
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq

from agentcore.errors import ConfigError, DamagedDatabase, StorageUnavailable
from agentcore.storage.postgres import failures
from agentcore.storage.postgres.single import SingleConnection

if TYPE_CHECKING:
    import psycopg_pool

log = logging.getLogger("agentcore.storage.postgres")

CONNECT_TIMEOUT_S = 10.0
"""How long to wait for the server to accept a connection before ``StorageUnavailable``."""

NETWORK_TIMEOUT_S = 15
"""A connection whose sent data stays unacknowledged this long (a cut network) is given up
(``tcp_user_timeout`` and TCP keepalives), and the server ends a session of ours that sits idle
inside a transaction this long (``idle_in_transaction_session_timeout``), so a client cut off
mid-transaction cannot hold a run's row lock against the worker that takes the run over."""


PREPARED_PREFIX = "agentcore_"
"""What the names of our prepared statements start with (``statement_name``)."""


def statement_name(sql: str) -> str:
    """The name statement ``sql`` is prepared under: ``agentcore_`` and the first 32 hex digits of the
    SHA-256 of its text (42 characters; PostgreSQL keeps 63).

    One name always means one text. Behind a pooler in transaction mode (or any server session that
    several clients share) a statement of that name may already be prepared on the session: by
    another client, or by another agentcore version. With the name derived from the text, it is our
    statement to the letter, and a statement another version prepared from other text has another
    name, so we never execute it (a fixed name such as ``agentcore_state_rows`` could be either).
    """
    return PREPARED_PREFIX + hashlib.sha256(sql.encode("utf-8")).hexdigest()[:32]


_NOT_PREPARED = b"26000"
"""SQLSTATE ``invalid_sql_statement_name``: no prepared statement of that name on the session."""
_ALREADY_PREPARED = b"42P05"
"""SQLSTATE ``duplicate_prepared_statement``: the session has one of that name (the same text: ``statement_name``)."""


def _failed_with(result: pq.abc.PGresult, sqlstate: bytes) -> bool:
    return result.status == pq.ExecStatus.FATAL_ERROR and result.error_field(pq.DiagnosticField.SQLSTATE) == sqlstate


def _configure(conn: psycopg.Connection[Any], prepared: Mapping[str, str] | None = None, session: bool = True) -> None:
    """Set up a new pooled connection: the session timeout, then the ``prepared`` statements (by
    ``statement_name``). One that cannot be prepared yet (a database without the schema) is prepared
    on first use instead (``PgConnection.run_prepared``); one the session already has (42P05, a shared
    session behind a pooler) is ours already, since its name is its text's digest. Without a
    ``session`` of its own (a pooler in transaction mode), nothing: a ``SET`` would change whichever
    server session the pooler picked, other clients' too."""
    if not session:
        return
    conn.execute(f"SET idle_in_transaction_session_timeout = {NETWORK_TIMEOUT_S * 1000}")
    for name, sql in (prepared or {}).items():
        conn.pgconn.prepare(name.encode(), sql.encode())


def prepared_rows(pgconn: pq.abc.PGconn, name: bytes, sql: bytes, values: list[bytes]) -> pq.abc.PGresult:
    """The result of statement ``sql`` prepared as ``name`` (``statement_name``) with text ``values``,
    in binary: executed by name, prepared first where the session does not have it (26000), and where
    preparing finds it there after all (42P05: another client of a session a pooler shares prepared it
    meanwhile) executed by name, since the name means this text. Where the statement is still missing
    after that (a pooler in transaction mode runs each statement on whichever session is free) it
    is sent unprepared. A failed result is returned as it is (the caller raises)."""
    binary = pq.Format.BINARY
    result = pgconn.exec_prepared(name, values, result_format=binary)
    if not _failed_with(result, _NOT_PREPARED):
        return result
    made = pgconn.prepare(name, sql)
    if made.status != pq.ExecStatus.COMMAND_OK and not _failed_with(made, _ALREADY_PREPARED):
        return made
    result = pgconn.exec_prepared(name, values, result_format=binary)
    if _failed_with(result, _NOT_PREPARED):
        result = pgconn.exec_params(sql, values, result_format=binary)
    return result


def _check(conn: psycopg.Connection[Any]) -> None:
    """The pool's check before lending a connection, without a round trip when nothing happened.

    An idle connection has nothing to read; a server that restarted or ended the session has sent
    something (its termination notice, or EOF), so the socket is readable: only then is the full
    check (an empty query) made, and a dead connection is replaced instead of failing a call.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    ready, _, _ = select.select([conn.fileno()], [], [], 0)
    if ready:
        import psycopg_pool

        psycopg_pool.ConnectionPool.check_connection(conn)


class PgConnection:
    """The pool of a store's connections (internal plumbing shared by events, artifacts, queue).

    ``pool=False``: one connection, made and set up at once, lent by ``connection()`` as a pool would
    lend one (checked first, replaced if broken); ``max_size`` is then ignored.
    """

    def __init__(
        self,
        url: str,
        *,
        max_size: int = 4,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        prepared: Iterable[str] = (),
        prepared_statements: bool = True,
        pool: bool = True,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ConfigError(f"a PostgreSQL store needs a postgresql:// URL, got {url!r}")
        if not isinstance(max_size, int) or max_size < 1:
            raise ConfigError(f"max_size must be an integer >= 1, got {max_size!r}")
        self.url = url
        self.where = failures.redact(url)
        self.secrets = failures.secrets_of(url)
        failures.check_settings(url, self.where, self.scrub)  # before connecting: a refused setting is ConfigError
        self.connect_timeout_s = connect_timeout_s
        self.prepared: dict[str, str] = {statement_name(sql): sql for sql in prepared}
        """Statements (``$n`` placeholders) prepared on each pooled connection as it is set up, by
        ``statement_name`` (with ``prepared_statements`` off: sent unprepared by ``run_prepared``)."""
        self.prepared_statements = prepared_statements
        """``False``: behind a pooler in transaction mode, nothing is prepared (module docstring)."""
        self._names: dict[str, str] = {}
        """``statement_name`` of each statement run so far, by its text (a str caches its hash)."""
        self.closed = False
        self.lock: AbstractContextManager[None] = nullcontext()
        """No process-wide lock: each pooled connection serves one thread at a time and the server
        isolates transactions (``SQLConnection.lock`` is a real lock on SQLite)."""
        self.kwargs: dict[str, Any] = {
            "autocommit": True,  # one read is its own transaction; ``transaction`` says BEGIN/COMMIT itself
            "connect_timeout": max(1, round(connect_timeout_s)),
            "application_name": "agentcore",
            "keepalives": 1,
            "keepalives_idle": NETWORK_TIMEOUT_S // 3,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "tcp_user_timeout": NETWORK_TIMEOUT_S * 1000,
        }
        if not prepared_statements:
            self.kwargs["prepare_threshold"] = None  # psycopg's own _pg3_N statements: never
        self._configure = partial(
            _configure, prepared=self.prepared if prepared_statements else None, session=prepared_statements
        )
        # one direct connection first: it says exactly why a server cannot be used (down,
        # credentials, no such database), where a pool would only time out
        first = self.connect()
        self.pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._single: SingleConnection | None = None
        if not pool:  # one-shot: this connection is the store's, set up as a pooled one would be
            try:
                self._single = SingleConnection(first, partial(psycopg.connect, url, **self.kwargs), self._configure)
            except psycopg.Error as e:
                raise self.lost(e, "set up the connection") from None
            return
        first.close()
        import psycopg_pool

        self.pool = psycopg_pool.ConnectionPool(
            url,
            kwargs=self.kwargs,
            min_size=1,
            max_size=max_size,
            open=False,
            check=_check,
            configure=self._configure,
            timeout=connect_timeout_s,
            reconnect_timeout=max(connect_timeout_s, 30.0),
            name="agentcore",
        )
        self.pool.open(wait=False)

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one unit of work: the pool's (waiting up to ``timeout`` s), or the single
        one (checked as the pool checks, and made anew when the server ended it). Errors pass through."""
        if self.pool is not None:
            with self.pool.connection(timeout=timeout) as conn:
                yield conn
            return
        assert self._single is not None
        with self._single.lend() as conn:
            yield conn

    def scrub(self, text: str) -> str:
        """``text`` with the URL's password removed (driver messages never carry it, but be sure)."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def connect(self, **extra: Any) -> psycopg.Connection[Any]:
        """A new connection outside the pool (the first check, LISTEN); errors are agentcore errors."""
        try:
            return psycopg.connect(self.url, **{**self.kwargs, **extra})
        except psycopg.Error as e:
            raise self.connect_error(e) from None

    def connect_error(self, e: BaseException) -> StorageUnavailable | ConfigError:
        """The agentcore error for a failed connection attempt (``failures.connect_error``)."""
        text = " ".join(self.scrub(str(e)).split())  # one line: libpq's messages span several
        return failures.connect_error(self.where, text, self.connect_timeout_s)

    def lost(
        self, e: BaseException, action: str, *, reading: bool = False
    ) -> StorageUnavailable | ConfigError | DamagedDatabase:
        """The error for a driver failure while doing ``action`` on an open connection
        (``failures.lost``: a NUL in a text value is a ``ConfigError``, the input is at fault; a data
        exception while ``reading`` our rows is a ``DamagedDatabase``)."""
        text = " ".join(self.scrub(str(e)).split()) or type(e).__name__  # one line
        return failures.lost(e, self.where, text, action, self.connect_timeout_s, reading=reading)

    def check_open(self) -> None:
        if self.closed:
            raise ConfigError(f"the store on {self.where} is closed; open a new one")

    @contextmanager
    def transaction(self, action: str) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection: commit on success, roll back on any error.

        Driver errors surface as ``StorageUnavailable`` naming ``action``; unique violations pass
        through (callers turn them into ``ConcurrencyError``), as do agentcore errors.
        """
        self.check_open()
        try:
            with self.connection() as conn, conn.transaction():
                yield conn
        except (pg_errors.UniqueViolation, pg_errors.ForeignKeyViolation):
            raise
        except (psycopg.Error, failures.pool_timeout()) as e:
            raise self.lost(e, action) from None

    @contextmanager
    def statement(self, action: str, *, reading: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection for ONE statement, which is its own transaction (autocommit): one round
        trip, where ``BEGIN``/statement/``COMMIT`` take three. Several statements use ``transaction``.
        ``reading``: the statement only reads our rows (a data exception is then ``DamagedDatabase``)."""
        self.check_open()
        try:
            with self.connection() as conn:
                yield conn
        except (psycopg.Error, failures.pool_timeout()) as e:
            raise self.lost(e, action, reading=reading) from None

    def query(
        self, sql: str, params: tuple[Any, ...] | list[Any] | dict[str, Any] = (), action: str = "read"
    ) -> list[tuple[Any, ...]]:
        """Rows of one read query (one statement, one round trip).

        Raises:
            DamagedDatabase: a value read is not of its type (SQLSTATE class 22: a row changed by hand).
            StorageUnavailable: the server cannot be reached or the connection was lost.
        """
        with self.statement(action, reading=True) as conn:
            return conn.execute(sql, params).fetchall()

    def one(
        self, sql: str, params: tuple[Any, ...] | list[Any] = (), action: str = "read", *, reading: bool = True
    ) -> tuple[Any, ...] | None:
        """The first row of a read query, or ``None`` (one statement, one round trip); errors as ``query``
        (``reading=False``: a statement that writes, whose data exceptions are not our rows' damage)."""
        with self.statement(action, reading=reading) as conn:
            return conn.execute(sql, params).fetchone()

    def run_prepared(
        self, sql: str, params: list[bytes | None], action: str = "read"
    ) -> tuple[list[tuple[bytes | None, ...]], str]:
        """The rows of statement ``sql`` (one of ``prepared``, run under its ``statement_name``) with
        ``params`` given as text, in binary format (each value its bytes, ``None`` for NULL), and the
        connection's encoding.

        One round trip: psycopg's cursors prepare a statement on its fifth execution on a
        connection, so the first read on a new connection would parse and analyse it (cold
        catalog caches: about 0.7 ms of server CPU); this statement was prepared when the
        connection was set up. It goes through psycopg's libpq wrapper (``psycopg.pq``), which
        also skips the cursor's per-call Python work. A session without it prepares it on first
        use; behind a pooler it may already be there, or be sent unprepared (``prepared_rows``).

        Raises:
            KeyError: ``sql`` is not one of ``prepared`` (a programming error).
            DamagedDatabase, StorageUnavailable: as ``query``.
        """
        name = self._names.get(sql)
        if name is None:
            name = statement_name(sql)
            if name not in self.prepared:
                raise KeyError(f"run_prepared: the statement is not one of this connection's prepared ones: {sql[:60]!r}")
            self._names[sql] = name
        values = cast("list[bytes]", params)  # libpq takes None for NULL (psycopg's stub says bytes only)
        with self.statement(action, reading=True) as conn:
            if self.prepared_statements:
                result = prepared_rows(conn.pgconn, name.encode(), sql.encode(), values)
            else:  # unnamed statement: parsed and run in one round trip, nothing left on the session
                result = conn.pgconn.exec_params(sql.encode(), values, result_format=pq.Format.BINARY)
            if result.status != pq.ExecStatus.TUPLES_OK:
                raise self._failed(conn, result)
            width = result.nfields
            rows = [tuple(result.get_value(r, c) for c in range(width)) for r in range(result.ntuples)]
            return rows, conn.info.encoding

    @staticmethod
    def _failed(conn: psycopg.Connection[Any], result: pq.abc.PGresult) -> psycopg.Error:
        """The psycopg error for a failed libpq call (``OperationalError`` once the connection is broken,
        so the pool replaces it and the store reports a lost server)."""
        if conn.pgconn.status != pq.ConnStatus.OK:
            return psycopg.OperationalError(pq.error_message(result) or "the connection is broken")
        return pg_errors.error_from_result(result, encoding=conn.info.encoding)

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = (), action: str = "write") -> int:
        """One write statement as its own transaction (autocommit: one round trip); its row count."""
        with self.statement(action) as conn:
            return conn.execute(sql, params).rowcount

    def close(self) -> None:
        """Close the pool or the single connection (idempotent)."""
        if not self.closed:
            self.closed = True
            if self.pool is not None:
                self.pool.close()
            if self._single is not None:
                self._single.close()
