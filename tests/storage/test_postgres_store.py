"""What only a PostgreSQL store has to get right: a real server started by the tests (tests/support/postgres.py).

Foreign and newer databases are refused untouched, older ones migrated; the SQL views; a 50 MB
artifact; a server that is down, refuses the credentials or goes away mid-run gives
``StorageUnavailable`` saying what to do, and the store carries on once the server is back; the
URL's password never reaches a message, a log or the CLI's output.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from agentcore.cli import cli
from agentcore.core.fold import fold
from agentcore.errors import NotAnAgentcoreDatabase, SchemaTooNew, StorageUnavailable
from agentcore.storage import open_store
from agentcore.storage.postgres.migrations import MIGRATION_NAMES, MIGRATIONS
from agentcore.storage.postgres.store import PostgresEventStore
from tests.storage.test_store import fact, fill, finished
from tests.support.postgres import PASSWORD, LocalPostgres, free_port


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def test_another_applications_database_is_refused_untouched(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE customers (id int primary key, name text)")
    with pytest.raises(NotAnAgentcoreDatabase, match="customers") as e:
        PostgresEventStore(pg_url)
    assert PASSWORD not in str(e.value)
    assert tables(pg_url) == ["customers"]


def test_a_database_from_a_newer_agentcore_is_refused_untouched(pg_url: str) -> None:
    PostgresEventStore(pg_url).close()
    with psycopg.connect(pg_url) as conn:  # what a newer agentcore's bookkeeping would say
        rows = conn.execute("SELECT id, name FROM agentcore_migrations ORDER BY id").fetchall()
        rows.append((999, "m999_from_the_future"))
        conn.execute("DROP VIEW agentcore_migrations")
        values = ", ".join(f"({n}, '{name}', now())" for n, name in rows)
        conn.execute(f"CREATE VIEW agentcore_migrations (id, name, applied) AS VALUES {values}")  # type: ignore[arg-type]
    before = tables(pg_url)
    with pytest.raises(SchemaTooNew, match="m999_from_the_future"):
        PostgresEventStore(pg_url)
    assert tables(pg_url) == before


def test_an_older_schema_is_migrated_forward_and_keeps_its_data(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:  # the bookkeeping table of agentcore before m007
        conn.execute("CREATE TABLE agentcore_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied TIMESTAMPTZ NOT NULL DEFAULT now())")
        for number, (name, sql) in enumerate(MIGRATIONS[:2], start=1):
            conn.execute(sql)  # type: ignore[arg-type]
            conn.execute(
                "INSERT INTO agentcore_migrations (id, name, applied) VALUES (%s, %s, %s)",
                (number, name, f"2026-01-0{number}"),
            )
        conn.execute("INSERT INTO runs (id, task, created) VALUES ('old', 'from an old version', '2026-01-01T00:00:00+00:00')")
    with PostgresEventStore(pg_url, snapshot_every=10) as s:
        assert s.run("old").task == "from an old version"
        run, events = fill(s, steps=12)
        assert s.state_at(run) == fold(events)
        assert s.snapshot_stats(run)["snapshots"] >= 1  # m003 added snapshots
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT name, applied::date::text FROM agentcore_migrations ORDER BY id").fetchall()
        kinds = conn.execute("SELECT table_name, table_type FROM information_schema.tables WHERE table_name = 'agentcore_migrations'").fetchall()
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'runs'")}
    assert tuple(name for name, _ in rows) == MIGRATION_NAMES
    assert [when for _, when in rows[:2]] == ["2026-01-01", "2026-01-02"]  # the old rows, kept
    assert kinds == [("agentcore_migrations", "VIEW")]  # m007: no table pages for the bookkeeping
    assert indexes == {"runs_pkey"}  # m007 dropped the two indexes no query used


def test_views_show_facts_usage_and_tool_calls(pg_url: str) -> None:
    with PostgresEventStore(pg_url) as s:
        fill(s, steps=2)
    with psycopg.connect(pg_url) as conn:
        facts = conn.execute("SELECT key, value, seq FROM facts ORDER BY seq").fetchall()
        usage = conn.execute("SELECT role, SUM(total_tokens) FROM llm_usage GROUP BY role").fetchall()
        names = conn.execute("SELECT name, ok FROM tool_calls ORDER BY seq").fetchall()
        cost = conn.execute("SELECT role, calls, total_tokens, unpriced_calls FROM llm_cost").fetchall()
    assert facts == [("fact0", "needle 0 is in a.py:0", 6), ("fact1", "needle 1 is in a.py:1", 11)]
    assert usage == [("controller", 240)]
    assert names == [("search_code", True), ("search_code", True)]
    assert cost == [("controller", 2, 240, 2)]  # the test events carry no price


def test_history_lists_seqs_and_types_without_bodies(pg_url: str) -> None:
    with PostgresEventStore(pg_url) as s:
        run, _ = fill(s, steps=1)
        fork = s.fork(run, 3)
        s.append(fork, [finished(fork, 4)], 3)
        assert [(h.seq, h.type) for h in s.history(fork)] == [
            (1, "run_started"), (2, "llm_called"), (3, "decided"), (4, "run_finished"),
        ]  # fmt: skip
        assert [h.run_id for h in s.history(fork)] == [run, run, run, fork]


def test_snapshots_are_a_cache_and_forks_use_their_parents(pg_url: str) -> None:
    with PostgresEventStore(pg_url, snapshot_every=10, snapshot_ratio=0) as s:
        run, events = fill(s, steps=20)  # batches end at seqs 1, 6, 11, ..., 101
        stats = s.snapshot_stats(run)
        # written at 11, 21, ..., 101 and thinned to the newest of each power-of-two range of seqs
        assert stats["events"] == len(events)
        with psycopg.connect(pg_url) as conn:
            kept = [r[0] for r in conn.execute("SELECT seq FROM run_log WHERE kind = 's' ORDER BY seq")]
        assert kept == [11, 31, 61, 101] and stats["snapshots"] == 4
        fork = s.fork(run, 76)  # the end of a step: a fork never splits one
        s.append(fork, [fact(fork, 77, key="mine")], 76)
        for seq in (0, 33, 77, len(events)):
            assert s.state_at(run, seq) == fold(events[:seq])
        assert "mine" in s.state_at(fork).known_facts
        expected_fork = s.state_at(fork)
        assert s.delete_snapshots() >= stats["snapshots"]
    with PostgresEventStore(pg_url) as fresh:  # no in-process cache: from the log alone
        assert fresh.state_at(run) == fold(events)
        assert fresh.state_at(fork) == expected_fork


def test_a_50_mb_artifact_is_stored_once_and_read_in_ranges(pg_url: str) -> None:
    data = os.urandom(1 << 20) * 50
    with PostgresEventStore(pg_url) as s:
        ref = s.artifacts.put(data, "application/octet-stream")
        assert s.artifacts.put(data, "text/plain").media_type == "application/octet-stream"
        assert ref.size == len(data)
        assert s.artifacts.read(ref.id, 49 * (1 << 20) + 5, 10) == data[49 * (1 << 20) + 5 : 49 * (1 << 20) + 15]
        assert s.artifacts.read(ref.id) == data
        assert s.artifacts.read(ref.id, len(data) + 3, 10) == b""
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM artifacts").fetchone() == (1,)


# ------------------------------------------------------------------------------------------------
# servers that are not there, and secrets


def test_a_server_that_is_down_is_a_clear_error_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"postgresql://agentcore:{PASSWORD}@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(StorageUnavailable, match="Is it running") as e:
        open_store(url, connect_timeout_s=2)
    assert "127.0.0.1" in str(e.value)
    assert PASSWORD not in str(e.value) and PASSWORD not in caplog.text


def test_wrong_credentials_are_a_clear_error_without_the_password(
    postgres_server: LocalPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-Pw-71"
    with pytest.raises(StorageUnavailable, match="refused the credentials") as e:
        open_store(postgres_server.url("postgres", password=wrong))
    assert wrong not in str(e.value) and PASSWORD not in str(e.value) and wrong not in caplog.text
    with pytest.raises(StorageUnavailable, match="does not exist"):
        open_store(postgres_server.url("no_such_db"))


def test_the_cli_takes_a_url_and_never_prints_its_password(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PostgresEventStore(pg_url) as s:
        run, _ = fill(s, steps=1)
    runner = CliRunner()
    got = runner.invoke(cli, ["runs", "--db", pg_url, "--json"])
    assert got.exit_code == 0, got.output
    assert run in got.output and PASSWORD not in got.output
    monkeypatch.setenv("AGENTCORE_DB", pg_url)  # the default of every --db
    got = runner.invoke(cli, ["state", run, "--json"])
    assert got.exit_code == 0, got.output
    assert '"fact0"' in got.output
    down = f"postgresql://agentcore:{PASSWORD}@127.0.0.1:{free_port()}/x"
    got = runner.invoke(cli, ["runs", "--db", down])
    assert got.exit_code == 1
    assert "cannot connect to the PostgreSQL server" in got.output and PASSWORD not in got.output
    assert "agentcore:***@127.0.0.1" in got.output


def test_a_server_that_goes_away_mid_run_is_reported_and_the_store_carries_on_after_it_returns() -> None:
    with LocalPostgres() as server:
        url = server.create_database("mid")
        with PostgresEventStore(url, connect_timeout_s=2) as s:
            run, events = fill(s, steps=1)
            server.server_stop("immediate")
            with pytest.raises(StorageUnavailable) as e:
                s.append(run, [fact(run, 7)], 6)
            assert PASSWORD not in str(e.value)
            assert "server" in str(e.value) and "mid" in str(e.value)
            server.server_start()
            assert s.append(run, [fact(run, 7)], 6) == 7  # nothing of the failed batch was written
            assert [e.seq for e in s.read(run)] == list(range(1, 8))
            assert s.state_at(run) == fold([*events, fact(run, 7)])


def test_a_role_that_may_not_create_tables_is_told_what_to_grant_without_the_password(pg_url: str) -> None:
    secret, role = "Role-Pw-93", f"plain_{pg_url.rsplit('/', 1)[1]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # PostgreSQL 15's default for non-owners
    url = pg_url.replace(f"agentcore:{PASSWORD}@", f"{role}:{secret}@", 1)
    assert role in url and secret in url
    with pytest.raises(StorageUnavailable, match="may not create") as e:
        open_store(url)
    message = str(e.value)
    assert f"GRANT CREATE ON SCHEMA public TO {role}" in message and secret not in message
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
