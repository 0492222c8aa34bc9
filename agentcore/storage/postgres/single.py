"""One connection lent as a pool lends one: the store of a one-shot command (``pool=False``).

A CLI inspection command opens a store, makes a few reads and exits: a pool would open a second
connection (a second authentication) on a background thread, and start its worker threads, for
nothing. ``SingleConnection`` keeps the connection the store opened first and lends it the way
``psycopg_pool`` lends a pooled one: checked before use (a round trip only when the server has sent
something: its notice of ending the session, or EOF), made anew when it is broken, and rolled back
if given back mid-transaction. Threads take turns; a call made while the same thread holds it
(nested) gets the same connection, as it is.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq


class SingleConnection:
    """``first`` (already connected), set up by ``configure``; ``connect()`` makes a replacement.

    Raises:
        psycopg.Error: ``configure`` failed (``first`` is closed then).
    """

    def __init__(
        self,
        first: psycopg.Connection[Any],
        connect: Callable[[], psycopg.Connection[Any]],
        configure: Callable[[psycopg.Connection[Any]], None],
    ) -> None:
        self._connect, self._configure = connect, configure
        self._lock = threading.RLock()
        self._depth = 0
        """How deep the holding thread's calls are nested (0: nobody holds the connection)."""
        self._conn: psycopg.Connection[Any] | None = None
        self._conn = self._set_up(first)

    def _set_up(self, conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
        try:
            self._configure(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _usable(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            ready, _, _ = select.select([conn.fileno()], [], [], 0)
            try:
                if ready:
                    conn.execute("")
                return conn
            except psycopg.Error:
                pass
        if conn is not None:
            conn.close()
        self._conn = None
        self._conn = self._set_up(self._connect())
        return self._conn

    @contextmanager
    def lend(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection for one unit of work (errors, driver ones included, pass through)."""
        with self._lock:
            if self._depth:
                assert self._conn is not None
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            conn = self._usable()
            self._depth = 1
            try:
                yield conn
            finally:
                self._depth = 0
                if not conn.closed and not conn.broken and conn.info.transaction_status != pq.TransactionStatus.IDLE:
                    conn.rollback()  # as a pool does with a connection given back mid-transaction

    @property
    def backend_pid(self) -> int | None:
        """The server process of the current connection (``None`` when there is none)."""
        return None if self._conn is None or self._conn.closed else int(self._conn.info.backend_pid)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
