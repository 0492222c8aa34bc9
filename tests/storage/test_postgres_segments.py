"""PostgreSQL's event segments (migration m008, storage/postgres/segments.py) on a real server.

A run's events live in JSON-array segments: the open one on the run's row, sealed ones in
``run_log``, with the snapshots. These tests check what that must not change: reads, history,
forks and state_at across sealed segments and the open one, the ``events``/``facts`` views, and a
database written by the schema before m008 upgraded without losing anything.
"""

from __future__ import annotations

import itertools

import psycopg

from agentcore.core.event_codec import encode_event
from agentcore.core.events import ToolCall, ToolStarted
from agentcore.core.fold import fold
from agentcore.storage.postgres.migrations import MIGRATION_NAMES, MIGRATIONS
from agentcore.storage.postgres.segments import SEAL_BYTES, elements
from agentcore.storage.postgres.store import PostgresEventStore
from agentcore.storage.snapshots import encode_state
from tests.storage.test_store import fact, fill, finished, log_of


def segments(url: str) -> list[tuple[int, int, int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT seq, last_seq, pg_column_size(body) FROM run_log WHERE kind = 'e' ORDER BY run_id, seq"
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def test_a_long_run_is_read_back_whole_from_sealed_segments_and_its_open_tail(pg_url: str) -> None:
    with PostgresEventStore(pg_url, snapshot_every=50) as s:
        run, events = fill(s, steps=300)  # 1,501 events in batches of 5
        sealed = segments(pg_url)
        with psycopg.connect(pg_url) as conn:
            tail = conn.execute("SELECT tail_seq, last_seq, pg_column_size(tail) FROM runs").fetchone()
        assert tail is not None and sealed
        # the sealed segments and the tail cover 1..last once each, in order, each compressed in its row
        bounds = [(a, b) for a, b, _ in sealed] + ([(tail[0], tail[1])] if tail[0] else [])
        assert bounds[0][0] == 1 and bounds[-1][1] == len(events)
        assert all(b + 1 == c for (_, b), (c, _) in itertools.pairwise(bounds))
        assert all(SEAL_BYTES <= size < 8000 for _, _, size in sealed)
        assert [e.seq for e in s.read(run)] == list(range(1, len(events) + 1))
        assert list(s.read(run)) == events
        inside = sealed[len(sealed) // 2]
        assert list(s.read(run, after=inside[0] + 2, upto=inside[1] + 7)) == events[inside[0] + 2 : inside[1] + 7]
        assert [h.seq for h in s.history(run, after=len(events) - 3)] == [len(events) - 2, len(events) - 1, len(events)]
        assert [h.type for h in s.history(run)] == [e.type for e in events]
        for seq in (0, 1, inside[0], inside[1] + 1, len(events) - 1, len(events)):
            assert s.state_at(run, seq) == fold(events[:seq])
        # a fork inside a sealed segment reads its parent's prefix and then its own events
        cut = next(e.seq for e in events if e.seq > inside[0] + 3 and e.type == "state_patched")
        fork = s.fork(run, cut)
        s.append(fork, [fact(fork, cut + 1, key="mine"), finished(fork, cut + 2)], cut)
        assert [e.seq for e in s.read(fork)] == list(range(1, cut + 3))
        assert "mine" in s.state_at(fork).known_facts and s.state_at(fork).status == "succeeded"
        assert s.run_stats(run).events == len(events)
    with PostgresEventStore(pg_url) as fresh:  # from the database alone
        assert fresh.state_at(run) == fold(events)
    with psycopg.connect(pg_url) as conn:
        per_run = dict(conn.execute("SELECT run_id, count(*) FROM events GROUP BY run_id").fetchall())
        facts = conn.execute("SELECT count(*) FROM facts WHERE run_id = %s", (run,)).fetchone()
        seqs = [r[0] for r in conn.execute("SELECT seq FROM events WHERE run_id = %s ORDER BY seq", (run,))]
    assert per_run == {run: len(events), fork: 2}
    assert facts == (sum(1 for e in events if e.type == "state_patched"),)
    assert seqs == list(range(1, len(events) + 1))


def test_a_run_created_with_many_events_at_once_is_stored_in_sealed_segments(pg_url: str) -> None:
    events = log_of("bulk", 200)  # 1,001 events in one batch, as copy and import write a run
    with PostgresEventStore(pg_url) as s:
        s.create_run("copied", run_id="bulk", events=events)
        sealed = segments(pg_url)
        with psycopg.connect(pg_url) as conn:
            tail = conn.execute("SELECT tail_seq, tail_bytes FROM runs").fetchone()
        assert len(sealed) > 10 and all(size < 8000 for _, _, size in sealed)
        assert tail is not None and tail[0] == sealed[-1][1] + 1 and tail[1] <= 20 * 1024 + 2
        more = fact("bulk", len(events) + 1, key="after")
        s.append("bulk", [more], len(events))
        assert list(s.read("bulk")) == [*events, more]
        assert s.state_at("bulk", 500) == fold(events[:500])


def test_events_are_split_by_their_headers_and_a_look_alike_inside_a_body_falls_back_to_parsing() -> None:
    bodies = [encode_event(e) for e in log_of("r", 2)]
    text = "[" + ",".join(bodies) + "]"
    got = elements(text, 1, len(bodies))
    assert [(seq, body) for seq, body, *_ in got] == list(enumerate(bodies, start=1))
    assert [kind for _, _, kind, _, _ in got][:3] == ["run_started", "llm_called", "decided"]
    # a tool argument shaped like the next event's header: split by headers would cut the body
    fake = {"v": 1, "run_id": "r", "seq": 3, "at": "2026-01-01T00:00:00Z", "caused_by": None, "type": "decided"}
    odd = ToolStarted(run_id="r", seq=2, at=log_of("r", 1)[1].at, call=ToolCall(id="c", name="n", arguments=fake), idempotency_key="k")
    text = "[" + ",".join([bodies[0], encode_event(odd), bodies[2]]) + "]"
    got = elements(text, 1, 3)
    assert [seq for seq, *_ in got] == [1, 2, 3] and got[1][1] == odd.model_dump(mode="json")


def test_a_look_alike_header_inside_a_stored_event_reads_back_right(pg_url: str) -> None:
    with PostgresEventStore(pg_url) as s:
        run, events = fill(s, steps=2)
        fake = {"v": 1, "run_id": run, "seq": len(events) + 2, "at": "x", "caused_by": None, "type": "decided"}
        odd = ToolStarted(run_id=run, seq=len(events) + 1, at=events[-1].at, call=ToolCall(id="c", name="n", arguments=fake), idempotency_key="k")
        s.append(run, [odd, finished(run, len(events) + 2)], len(events))
        assert list(s.read(run)) == [*events, odd, finished(run, len(events) + 2)]
        assert [h.seq for h in s.history(run)] == list(range(1, len(events) + 3))


def test_a_database_written_before_segments_is_upgraded_with_its_events_snapshots_and_forks(pg_url: str) -> None:
    """m001..m007 as an older agentcore left them (one event per row, a snapshots table), then m008."""
    events = log_of("old", 60)  # 301 events: 4 segments of 100 after the move
    fork_events = [fact("old_fork", 12, key="forked"), finished("old_fork", 13)]
    snapshot = encode_state(fold(events[:200]))
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "CREATE TABLE agentcore_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
            "applied TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        for number, (name, sql) in enumerate(MIGRATIONS[:6], start=1):
            conn.execute(sql)  # type: ignore[arg-type]
            conn.execute("INSERT INTO agentcore_migrations (id, name) VALUES (%s, %s)", (number, name))
        conn.execute(
            "INSERT INTO runs (id, task, created, last_seq, snapshot_seq, snapshot_size) "
            "VALUES ('old', 'from before m008', '2026-01-01T00:00:00+00:00', %s, 200, %s)",
            (len(events), len(snapshot[1])),
        )
        conn.execute(
            "INSERT INTO runs (id, task, created, parent_run_id, forked_at_seq, last_seq) "
            "VALUES ('old_fork', 'a fork', '2026-01-02T00:00:00+00:00', 'old', 11, 13)"
        )
        for e in [*events, *fork_events]:
            conn.execute(
                "INSERT INTO events (run_id, seq, type, v, at, caused_by, body) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (e.run_id, e.seq, e.type, e.v, e.at.isoformat(), e.caused_by, encode_event(e)),
            )
        conn.execute(
            "INSERT INTO snapshots (run_id, seq, encoding, size, state) VALUES ('old', 200, %s, %s, %s)",
            (snapshot[0], len(snapshot[1]), snapshot[1]),
        )
    with PostgresEventStore(pg_url) as s:
        assert list(s.read("old")) == events
        assert s.state_at("old") == fold(events) and s.state_at("old", 250) == fold(events[:250])
        assert s.snapshot_stats("old")["snapshots"] == 1  # moved, still used
        assert [h.seq for h in s.history("old_fork")] == list(range(1, 14))
        assert "forked" in s.state_at("old_fork").known_facts
        s.append("old", [fact("old", len(events) + 1, key="after the upgrade")], len(events))
        assert s.state_at("old").known_facts["after the upgrade"].value == "v"
    with psycopg.connect(pg_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM agentcore_migrations ORDER BY id")]
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        usage = conn.execute("SELECT count(*) FROM llm_usage WHERE run_id = 'old'").fetchone()
    assert tuple(names) == MIGRATION_NAMES
    assert tables == {"runs", "run_log", "artifacts", "work"}
    assert [(a, b) for a, b, _ in segments(pg_url)] == [(1, 100), (101, 200), (201, 300), (301, 301), (12, 13)]
    assert usage == (sum(1 for e in events if e.type == "llm_called"),)


def test_an_append_updates_the_run_row_once_and_a_seal_once_more(pg_url: str) -> None:
    """Each UPDATE of the run's row leaves a dead version of it (with its open segment) on its page:
    an append sets the tail, last seq, status and snapshot counters in one ``UPDATE``."""
    events = log_of("once", 100)
    with PostgresEventStore(pg_url, snapshot_every=25) as s:
        s.create_run("t", run_id="once")
        updates, sealed_before = [], 0
        for k in range(0, len(events), 5):
            with s._db.transaction("append") as conn:  # the updates pending in this backend's statistics
                count = "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'runs'"
                before = conn.execute(count).fetchone()
                s._append_in(conn, "once", events[k : k + 5], k)
                after = conn.execute(count).fetchone()
            assert before is not None and after is not None
            sealed = len(segments(pg_url))
            updates.append((after[0] - before[0], sealed > sealed_before))
            sealed_before = sealed
        assert list(s.read("once")) == events
        assert s.snapshot_stats("once")["snapshots"] >= 2  # snapshots were written along the way
    assert sealed_before >= 2
    assert all(n == (2 if seal else 1) for n, seal in updates), updates
