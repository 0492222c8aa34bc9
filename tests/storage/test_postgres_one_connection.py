"""``PostgresEventStore(url, pool=False)``: one connection instead of a pool (the CLI's inspection
commands), with the same answers, errors and recovery as the pooled store; and the schema check
that answers an up-to-date database in one statement."""

from __future__ import annotations

import sys
import threading

import psycopg
import pytest

from agentcore.core.fold import fold
from agentcore.errors import NotAnAgentcoreDatabase, SchemaTooNew, StorageUnavailable
from agentcore.storage.postgres.store import PostgresEventStore
from tests.storage.test_store import fact, fill
from tests.support.postgres import PASSWORD, LocalPostgres


def sessions(url: str) -> set[int]:
    """The server process ids of the open sessions named ``agentcore`` (the stores' ``application_name``)
    on ``url``'s database."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'agentcore' AND datname = current_database()"
        ).fetchall()
    return {int(r[0]) for r in rows}


def the_session(store: PostgresEventStore) -> int:
    single = store._db._single
    assert single is not None and single.backend_pid is not None
    return single.backend_pid


def test_one_connection_answers_as_the_pool_does_on_one_session_and_no_thread(pg_url: str) -> None:
    with PostgresEventStore(pg_url) as pooled:
        run, events = fill(pooled, steps=3)
        fork = pooled.fork(run, 4)
    threads = threading.enumerate()
    with PostgresEventStore(pg_url, pool=False) as one:
        assert one._db.pool is None and threading.enumerate() == threads  # no pool threads
        session = the_session(one)
        assert session in sessions(pg_url)
        pooled = PostgresEventStore(pg_url)
        assert one.state_at(run) == pooled.state_at(run) == fold(events)
        assert one.state_at(run, 3) == pooled.state_at(run, 3)
        assert list(one.read(run)) == list(pooled.read(run)) and list(one.read(fork)) == list(pooled.read(fork))
        assert one.run_stats(run) == pooled.run_stats(run) and one.runs() == pooled.runs()
        pooled.close()
        last = events[-1].seq
        assert one.append(run, [fact(run, last + 1)], last) == last + 1  # writes work on it too
        assert one.state_at(run) == fold([*events, fact(run, last + 1)])
        assert the_session(one) == session  # every call above ran on the one session it opened with


def test_a_store_without_a_pool_never_imports_psycopg_pool(pg_url: str) -> None:
    import subprocess

    code = (
        "import sys\nfrom agentcore.storage.postgres.store import PostgresEventStore\n"
        f"with PostgresEventStore({pg_url!r}, pool=False) as s:\n    s.runs()\n"
        "print('psycopg_pool' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False", done.stderr


def test_the_one_connection_is_made_anew_after_the_server_comes_back() -> None:
    with LocalPostgres() as server:
        url = server.create_database("one")
        with PostgresEventStore(url, pool=False, connect_timeout_s=2) as s:
            run, events = fill(s, steps=1)
            server.server_stop("immediate")
            with pytest.raises(StorageUnavailable) as e:
                s.append(run, [fact(run, 7)], 6)
            assert PASSWORD not in str(e.value) and "one" in str(e.value)
            server.server_start()
            assert s.append(run, [fact(run, 7)], 6) == 7  # nothing of the failed batch was written
            assert s.state_at(run) == fold([*events, fact(run, 7)])


def test_a_foreign_or_newer_schema_is_refused_by_the_one_statement_check_too(pg_url: str) -> None:
    PostgresEventStore(pg_url, pool=False).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # what a newer agentcore's bookkeeping would say
        rows = conn.execute("SELECT id, name FROM agentcore_migrations ORDER BY id").fetchall()
        rows.append((999, "m999_from_the_future"))
        conn.execute("DROP VIEW agentcore_migrations")
        values = ", ".join(f"({n}, '{name}', now())" for n, name in rows)
        conn.execute(f"CREATE VIEW agentcore_migrations (id, name, applied) AS VALUES {values}")  # type: ignore[arg-type]
    for pool in (True, False):
        with pytest.raises(SchemaTooNew, match="m999_from_the_future"):
            PostgresEventStore(pg_url, pool=pool)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA other")
        conn.execute("CREATE TABLE other.customers (id int)")
    other = pg_url + "?options=-csearch_path%3Dother,public"  # public's agentcore view is on the path, not current
    with pytest.raises(NotAnAgentcoreDatabase, match="customers"):
        PostgresEventStore(other, pool=False)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE other.customers")
    with PostgresEventStore(other, pool=False) as s:  # an empty current schema: created there, as before
        s.runs()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        found = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'other'").fetchone()
    assert found is not None and found[0] > 0


def test_a_call_nested_in_a_transaction_shares_the_one_connection_and_keeps_the_transaction(pg_url: str) -> None:
    with PostgresEventStore(pg_url, pool=False) as one:
        with one._db.transaction("test") as conn:
            conn.execute("CREATE TABLE scratch (n int)")
            conn.execute("INSERT INTO scratch VALUES (1)")
            assert one._db.query("SELECT n FROM scratch") == [(1,)]  # the same session, inside the transaction
            conn.execute("INSERT INTO scratch VALUES (2)")  # still in it: the nested call rolled nothing back
        assert one._db.query("SELECT n FROM scratch ORDER BY n") == [(1,), (2,)]
        with pytest.raises(StorageUnavailable), one._db.transaction("test") as conn:
            conn.execute("INSERT INTO scratch VALUES (3)")
            conn.execute("SELECT 1/0")
        assert one._db.query("SELECT n FROM scratch ORDER BY n") == [(1,), (2,)]  # rolled back, connection usable
