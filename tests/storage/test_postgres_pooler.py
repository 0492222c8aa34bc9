"""The PostgreSQL store behind a real PgBouncer in transaction mode (``tests.support.pgbouncer``).

With ``prepared_statements=False`` (or ``AGENTCORE_PG_PREPARED=0``) the contract's basics hold
through the pooler while several stores share its two server sessions; without it, the collision of
psycopg's ``_pg3_N`` statements on a shared session is a ``ConfigError`` naming the setting, and the
log keeps exactly what was appended before it.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from agentcore.core.fold import fold
from agentcore.errors import ConcurrencyError, ConfigError
from agentcore.storage.postgres.queue import PollingListener
from agentcore.storage.postgres.store import PostgresEventStore
from agentcore.storage.targets import open_store
from tests.storage.test_store import fact, fill, started
from tests.support.pgbouncer import LocalPgBouncer
from tests.support.postgres import PASSWORD, LocalPostgres


def test_the_contract_basics_hold_through_a_transaction_mode_pooler(pgbouncer: LocalPgBouncer, pg_url: str) -> None:
    url = pgbouncer.url(pg_url)
    with PostgresEventStore(url, prepared_statements=False, snapshot_every=5) as store:
        run, events = fill(store, steps=6)  # 31 events: every statement runs far more than 5 times
        assert list(store.read(run)) == events
        assert store.state_at(run) == fold(events)
        assert store.state_at(run, 12) == fold(events[:12])
        store._cache.clear()  # the state load itself (agentcore's statement, sent unprepared)
        assert store.state_at(run, 20) == fold(events[:20])
        stale = [fact(run, 31, key="loser")]
        with pytest.raises(ConcurrencyError):  # a writer that lost the race
            store.append(run, stale, 30)
        assert store.last_seq(run) == 31 and list(store.read(run, after=30)) == events[30:]
        ref = store.artifacts.put_text("through the pooler")
        assert store.artifacts.get_text(ref.id) == "through the pooler"
        fork = store.fork(run, at_seq=10)
        forked = list(store.read(fork))
        assert [e.seq for e in forked] == list(range(1, 11)) and store.state_at(fork) == fold(forked)
        assert isinstance(store.listen("agentcore_done"), PollingListener)


def test_stores_appending_at_once_through_the_pooler_lose_and_fail_nothing(
    pgbouncer: LocalPgBouncer, pg_url: str
) -> None:
    url = pgbouncer.url(pg_url)
    errors: list[BaseException] = []
    runs: list[str] = []

    def writer() -> None:
        try:
            with PostgresEventStore(url, prepared_statements=False, max_connections=2) as store:
                runs.append(fill(store, steps=8)[0])
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=writer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and len(runs) == 6
    with PostgresEventStore(pg_url) as direct:  # read back without the pooler
        assert [direct.last_seq(r) for r in runs] == [41] * 6
        assert all(direct.state_at(r).status == "running" for r in runs)


def test_the_environment_variable_turns_prepared_statements_off(
    pgbouncer: LocalPgBouncer, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTCORE_PG_PREPARED", "0")
    with open_store(pgbouncer.url(pg_url)) as store:
        assert store._db.prepared_statements is False
        run, events = fill(store, steps=4)
        assert store.state_at(run) == fold(events)
    with open_store(pgbouncer.url(pg_url), prepared_statements=True) as store:  # the argument wins
        assert store._db.prepared_statements is True
    monkeypatch.setenv("AGENTCORE_PG_PREPARED", "maybe")
    with pytest.raises(ConfigError, match=r"AGENTCORE_PG_PREPARED='maybe' is not understood: set it to 0"):
        open_store(pg_url)
    monkeypatch.delenv("AGENTCORE_PG_PREPARED")
    with pytest.raises(ConfigError, match="prepared_statements must be True or False"):
        PostgresEventStore(pg_url, prepared_statements="no")  # type: ignore[arg-type]


def one_by_one(store: PostgresEventStore, run: str, n: int, appended: list[int] | None = None) -> None:
    """``n`` appends of one event each to ``run`` (each statement runs ``n`` times on the connection)."""
    for seq in range(1, n + 1):
        store.append(run, [started(run) if seq == 1 else fact(run, seq)], seq - 1)
        if appended is not None:
            appended.append(seq)


def test_without_the_opt_in_the_collision_is_a_config_error_naming_the_setting(
    postgres_server: LocalPostgres, pg_url: str
) -> None:
    # one server session for every client: the first store's _pg3_0 is on it when the second prepares its own
    with LocalPgBouncer(postgres_server, pool_size=1) as bouncer:
        url = bouncer.url(pg_url)
        first = PostgresEventStore(url, max_connections=1, prepared_statements=True)
        second = PostgresEventStore(url, max_connections=1, prepared_statements=True)
        try:
            one_by_one(first, first.create_run("t"), 10)  # its statements prepared as _pg3_0, ... on the session
            run = second.create_run("t")
            appended: list[int] = []
            with pytest.raises(ConfigError) as caught:
                one_by_one(second, run, 40, appended)
            text = str(caught.value)
            assert "_pg3_" in text and "AGENTCORE_PG_PREPARED=0" in text and "prepared_statements=False" in text
            assert "Nothing of this was written" in text and PASSWORD not in text
        finally:
            first.close()
            second.close()
    with PostgresEventStore(pg_url) as direct:  # what was appended before the error, and nothing more
        assert 1 <= len(appended) < 40 and direct.last_seq(run) == len(appended)
        assert [e.seq for e in direct.read(run)] == appended == list(range(1, len(appended) + 1))


def test_a_pooler_collision_is_recognised_only_on_psycopgs_own_statements(pg_url: str) -> None:
    from agentcore.storage.postgres.pooling import pooler_collision

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("PREPARE _pg3_0 AS SELECT 1")
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement) as dup:
            conn.execute("PREPARE _pg3_0 AS SELECT 1")
        with pytest.raises(psycopg.errors.InvalidSqlStatementName) as missing:
            conn.execute("EXECUTE _pg3_7")
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement) as ours:
            conn.execute("PREPARE mine AS SELECT 1")
            conn.execute("PREPARE mine AS SELECT 1")
    assert pooler_collision(dup.value) and pooler_collision(missing.value)
    assert not pooler_collision(ours.value)
