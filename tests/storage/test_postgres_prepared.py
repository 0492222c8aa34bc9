"""Prepared statements on server sessions we do not own alone (a pooler in transaction mode), on a real server.

The state load is prepared under a name derived from its text (``statement_name``). A session that
already has a statement of that name (prepared there by hand, as another client of a shared session
would) gives the right rows, also when it appears between our execute and our prepare (42P05); a
statement prepared under the old fixed name ``agentcore_state_rows`` from other text is never run.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq

from agentcore.core.fold import fold
from agentcore.storage.postgres import loads
from agentcore.storage.postgres.connection import _configure, prepared_rows, statement_name
from agentcore.storage.postgres.store import PostgresEventStore
from tests.storage.test_store import fill

NAME = statement_name(loads.STATE_ROWS)


def rows(result: pq.abc.PGresult) -> list[tuple[bytes | None, ...]]:
    assert result.status == pq.ExecStatus.TUPLES_OK, result.error_message
    return [tuple(result.get_value(r, c) for c in range(result.nfields)) for r in range(result.ntuples)]


def unprepared(conn: psycopg.Connection[Any], params: list[bytes | None]) -> list[tuple[bytes | None, ...]]:
    got = conn.pgconn.exec_params(loads.STATE_ROWS.encode(), params, result_format=pq.Format.BINARY)  # type: ignore[arg-type]
    return rows(got)


def test_the_name_is_the_digest_of_the_text() -> None:
    assert NAME.startswith("agentcore_") and len(NAME) == 42 and NAME == statement_name(loads.STATE_ROWS)
    assert statement_name(loads.STATE_ROWS + " ") != NAME  # another text (another version): another name


def test_a_session_that_already_has_the_statement_gives_the_right_rows(pg_url: str) -> None:
    with PostgresEventStore(pg_url, snapshot_every=20) as s:
        run, events = fill(s, steps=12)
    params = loads.params(run, 33, 64)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        expected = unprepared(conn, params)
        assert len(expected) >= 2
        conn.execute(f"PREPARE {NAME} AS {loads.STATE_ROWS}")  # type: ignore[arg-type]  # by hand, as another client
        _configure(conn, {NAME: loads.STATE_ROWS})  # setting up on this session finds it there (42P05)
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (1,)
        assert rows(prepared_rows(conn.pgconn, NAME.encode(), loads.STATE_ROWS.encode(), params)) == expected  # type: ignore[arg-type]
    with PostgresEventStore(pg_url, max_connections=1) as s:
        with s._db.pool.connection() as conn:  # the store's one session: prepared again by hand
            conn.execute("DEALLOCATE ALL")
            conn.execute(f"PREPARE {NAME} AS {loads.STATE_ROWS}")  # type: ignore[arg-type]
        for seq in (None, 7, 33):
            s._cache.clear()
            assert s.state_at(run, seq) == fold(events if seq is None else events[:seq])


class SharedSession:
    """A session a transaction-mode pooler shares: right after our first ``exec_prepared`` found no
    statement (26000), another client prepares the same text under the same name on it, so our
    ``prepare`` meets 42P05. Every call goes to the real server session."""

    def __init__(self, pgconn: pq.abc.PGconn) -> None:
        self.pgconn = pgconn
        self.seen: list[bytes | None] = []

    def exec_prepared(self, name: bytes, values: Any, result_format: pq.Format) -> pq.abc.PGresult:
        result = self.pgconn.exec_prepared(name, values, result_format=result_format)
        self.seen.append(result.error_field(pq.DiagnosticField.SQLSTATE))
        if len(self.seen) == 1:
            other = self.pgconn.prepare(name, loads.STATE_ROWS.encode())
            assert other.status == pq.ExecStatus.COMMAND_OK
        return result

    def prepare(self, name: bytes, sql: bytes) -> pq.abc.PGresult:
        result = self.pgconn.prepare(name, sql)
        self.seen.append(result.error_field(pq.DiagnosticField.SQLSTATE))
        return result

    def exec_params(self, *args: Any, **kwargs: Any) -> pq.abc.PGresult:
        raise AssertionError("the statement was on the session: no need to send it unprepared")


def test_a_statement_another_client_prepared_meanwhile_is_executed_not_refused(pg_url: str) -> None:
    with PostgresEventStore(pg_url, snapshot_every=20) as s:
        run, _ = fill(s, steps=12)
    params = loads.params(run, 33, 64)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        expected = unprepared(conn, params)
        session = SharedSession(conn.pgconn)
        got = prepared_rows(session, NAME.encode(), loads.STATE_ROWS.encode(), params)  # type: ignore[arg-type]
        assert session.seen == [b"26000", b"42P05", None]  # not found, found after all, executed
        assert rows(got) == expected


def test_a_statement_under_the_old_fixed_name_with_other_text_is_never_executed(pg_url: str) -> None:
    with PostgresEventStore(pg_url, snapshot_every=20) as s:
        run, events = fill(s, steps=12)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE tripwire (run_id text)")
    with PostgresEventStore(pg_url, max_connections=1) as s:
        with s._db.pool.connection() as conn:  # the one session: an older version's statement on it
            conn.execute("DEALLOCATE ALL")
            conn.execute(
                "PREPARE agentcore_state_rows (text, int4, int4) AS "
                "WITH w AS (INSERT INTO tripwire VALUES ($1) RETURNING 1) SELECT 1 FROM w"
            )
        for seq in (None, 7, 33, len(events)):
            s._cache.clear()
            assert s.state_at(run, seq) == fold(events if seq is None else events[:seq])
        with s._db.pool.connection() as conn:
            names = sorted(r[0] for r in conn.execute("SELECT name FROM pg_prepared_statements"))
            assert names == sorted(["agentcore_state_rows", NAME])  # both there; ours ran
            assert conn.execute("SELECT count(*) FROM tripwire").fetchone() == (0,)
