"""PostgreSQL's one-statement state load (storage/postgres/loads.py) on a real server.

``state_at`` reads the run's row, its snapshot and the segments after it in one statement, falls
back to the general way for a fork read from its parent's part, continues page by page when the
segments after the snapshot do not fit in one page, and remembers a latest state it loaded as how
to build it again. These tests check each of those against the fold of the log.
"""

from __future__ import annotations

import psycopg
import pytest

from agentcore.core.fold import fold
from agentcore.errors import RunNotFound
from agentcore.storage.postgres import loads
from agentcore.storage.postgres import store as pg_store
from agentcore.storage.postgres.connection import statement_name
from agentcore.storage.postgres.store import PostgresEventStore
from agentcore.storage.snapshots import decode_state
from tests.storage.test_store import fact, fill, finished


def statements(store: PostgresEventStore) -> list[str]:
    """Records the SQL of every single-statement read the store makes from now on."""
    seen: list[str] = []
    query, one, prepared = store._db.query, store._db.one, store._db.run_prepared

    def counted_query(sql, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(sql)
        return query(sql, *args, **kwargs)

    def counted_one(sql, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(sql)
        return one(sql, *args, **kwargs)

    def counted_prepared(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(name)
        return prepared(name, *args, **kwargs)

    store._db.query, store._db.one = counted_query, counted_one  # type: ignore[method-assign]
    store._db.run_prepared = counted_prepared  # type: ignore[method-assign]
    return seen


def test_a_latest_state_on_a_fresh_store_is_one_statement_and_equals_the_fold(pg_url: str) -> None:
    with PostgresEventStore(pg_url, snapshot_every=40) as s:
        run, events = fill(s, steps=60)
    with PostgresEventStore(pg_url) as fresh:
        seen = statements(fresh)
        assert fresh.state_at(run) == fold(events)
        assert len(seen) == 1
        for seq in (0, 1, 39, 40, 41, 150, len(events) - 1):
            assert fresh.state_at(run, seq) == fold(events[:seq])
    with PostgresEventStore(pg_url) as fresh:
        with pytest.raises(RunNotFound, match="no run 'nope'"):
            fresh.state_at("nope")
        with pytest.raises(RunNotFound):  # not the run the id's text before the NUL names
            fresh.state_at(run + "\0tail")


def test_events_past_one_page_of_segments_are_read_on_and_a_paged_load_is_remembered(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_store, "SEGMENT_PAGE", 2)  # a page of two sealed segments
    with PostgresEventStore(pg_url, snapshot_every=None) as s:
        run, events = fill(s, steps=120)
        with psycopg.connect(pg_url) as conn:
            sealed = conn.execute("SELECT count(*) FROM run_log WHERE kind = 'e'").fetchone()
        assert sealed is not None and sealed[0] > 4
    with PostgresEventStore(pg_url, snapshot_every=1) as fresh:
        for seq in (1, 100, 300, len(events) - 1, len(events)):
            assert fresh.state_at(run, seq) == fold(events[:seq])
        latest = fresh.state_at(run)
        latest.known_facts.clear()  # the caller's copy: the remembered state is another
        more = fact(run, len(events) + 1, key="after")
        fresh.append(run, [more], len(events))  # the snapshot is written from the remembered state
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                "SELECT encoding, state FROM snapshots WHERE run_id = %s ORDER BY seq DESC", (run,)
            ).fetchone()
        assert row is not None and decode_state(row[0], row[1]) == fold([*events, more])


def test_a_remembered_load_builds_the_next_snapshot_and_the_callers_copy_is_its_own(pg_url: str) -> None:
    with PostgresEventStore(pg_url, snapshot_every=30) as s:
        run, events = fill(s, steps=40)
    with PostgresEventStore(pg_url, snapshot_every=1) as fresh:
        mine = fresh.state_at(run)
        mine.known_facts.clear()
        mine.status = "failed"
        done = finished(run, len(events) + 1)
        fresh.append(run, [done], len(events))
        assert fresh.state_at(run) == fold([*events, done])
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                "SELECT seq, encoding, state FROM snapshots WHERE run_id = %s ORDER BY seq DESC", (run,)
            ).fetchone()
        assert row is not None and row[0] == len(events) + 1
        assert decode_state(row[1], row[2]) == fold([*events, done])


def test_a_fork_loads_from_its_own_snapshot_and_from_its_parent_before_one(pg_url: str) -> None:
    with PostgresEventStore(pg_url, snapshot_every=20) as s:
        run, events = fill(s, steps=30)
        cut = next(e.seq for e in events if e.seq > 70 and e.type == "state_patched")
        fork = s.fork(run, cut)
        own = [fact(fork, cut + 1 + i, key=f"mine{i}") for i in range(45)]
        for i in range(0, len(own), 5):
            s.append(fork, own[i : i + 5], cut + i)
        with psycopg.connect(pg_url) as conn:
            snaps = [r[0] for r in conn.execute("SELECT seq FROM snapshots WHERE run_id = %s", (fork,))]
        assert snaps and min(snaps) > cut
    whole = events[:cut] + own
    with PostgresEventStore(pg_url) as fresh:
        seen = statements(fresh)
        assert fresh.state_at(fork) == fold(whole)
        assert len(seen) == 1  # its own snapshot covers the parent's part
        for seq in (1, cut - 1, cut, cut + 1, max(snaps) - 1, max(snaps), len(whole) - 1):
            assert fresh.state_at(fork, seq) == fold(whole[:seq])
        assert fresh.state_at(run) == fold(events)


def test_a_connection_without_the_prepared_statement_prepares_it_on_first_use(pg_url: str) -> None:
    # the pool's first connection was set up before the schema existed: nothing could be prepared
    with PostgresEventStore(pg_url, max_connections=1) as s:
        run, events = fill(s, steps=5)
        assert s.state_at(run) == fold(events)  # the statement runs first, cached state or not
        with s._db.pool.connection() as conn:  # as a pooler that drops prepared statements would
            conn.execute("DEALLOCATE ALL")
        s._cache.clear()
        assert s.state_at(run, 7) == fold(events[:7])
        assert s.state_at(run) == fold(events)
    with PostgresEventStore(pg_url) as fresh:  # prepared when its connection was set up
        with fresh._db.pool.connection() as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM pg_prepared_statements")]
        assert names == [statement_name(loads.STATE_ROWS)]
        assert fresh.state_at(run) == fold(events)


def test_the_statement_gives_the_same_rows_unprepared_as_behind_a_transaction_pooler(pg_url: str) -> None:
    from psycopg import pq

    with PostgresEventStore(pg_url, snapshot_every=20) as s:
        run, _ = fill(s, steps=12)
        prepared, encoding = s._db.run_prepared(loads.STATE_ROWS, loads.params(run, 33, 64))
        with s._db.pool.connection() as conn:
            got = conn.pgconn.exec_params(
                loads.STATE_ROWS.encode(), loads.params(run, 33, 64),  # type: ignore[arg-type]
                result_format=pq.Format.BINARY,
            )  # fmt: skip
            assert got.status == pq.ExecStatus.TUPLES_OK
            unprepared = [tuple(got.get_value(r, c) for c in range(got.nfields)) for r in range(got.ntuples)]
        assert unprepared == prepared and len(prepared) >= 2
        assert "s" in {row[7] for row in loads.decoded(prepared, encoding)}  # a snapshot


def test_an_append_without_a_remembered_state_loads_it_for_its_snapshot(pg_url: str) -> None:
    with PostgresEventStore(pg_url, snapshot_every=25) as s:
        run, events = fill(s, steps=20)
    with PostgresEventStore(pg_url, snapshot_every=1, snapshot_ratio=0) as fresh:  # nothing remembered
        seen = statements(fresh)
        done = finished(run, len(events) + 1)
        fresh.append(run, [done], len(events))
        assert seen == [loads.STATE_ROWS]
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                "SELECT seq, encoding, state FROM snapshots WHERE run_id = %s ORDER BY seq DESC", (run,)
            ).fetchone()
        assert row is not None and row[0] == len(events) + 1
        assert decode_state(row[1], row[2]) == fold([*events, done])
