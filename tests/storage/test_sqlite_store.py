"""SQLite-only behaviour: several OS processes, foreign and newer files, migrations, locks, full disks,
durability settings and snapshots (a cache that must never change a state)."""

from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from agentcore.core.events import BaseEvent, StatePatched, ToolFinished
from agentcore.core.fold import fold
from agentcore.core.patches import AnswerQuestion
from agentcore.errors import ConfigError, NotAnAgentcoreDatabase, PatchError, SchemaTooNew, StorageUnavailable
from agentcore.storage.sqlite.migrations import MIGRATION_NAMES, SCHEMA_VERSION, migrations
from agentcore.storage.sqlite.store import SQLiteEventStore
from tests.storage.test_store import at, fact, fill, finished, started
from tests.support.strategies import RUN_ID, event_logs


def fingerprint(path: Path) -> tuple[str, list[str]]:
    """The file's sha256 and the names of the files beside it."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(os.listdir(path.parent))


# ------------------------------------------------------------------------------------------------
# files that are not ours are left alone


@pytest.mark.parametrize(
    "content",
    [os.urandom(4096), b"just some notes\nnot a database\n" * 20, b"SQLite format 3\x00" + b"\xff" * 2000],
    ids=["garbage", "text", "corrupt-sqlite"],
)
def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "thing.db"
    path.write_bytes(content)
    before = fingerprint(path)
    with pytest.raises(NotAnAgentcoreDatabase, match="nothing was changed"):
        SQLiteEventStore(path)
    assert fingerprint(path) == before


def test_another_applications_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        conn.execute("INSERT INTO notes (text) VALUES ('keep me')")
    conn.close()
    before = fingerprint(path)
    with pytest.raises(NotAnAgentcoreDatabase, match=r"another application.*notes"):
        SQLiteEventStore(path)
    assert fingerprint(path) == before
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_a_file_from_a_newer_agentcore_is_refused_untouched(db_path: Path) -> None:
    with SQLiteEventStore(db_path) as s:
        fill(s, steps=1)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('agentcore', 'm099_x', 'x')")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = fingerprint(db_path)
    with pytest.raises(SchemaTooNew, match=f"reads up to schema version {SCHEMA_VERSION}.*Upgrade agentcore"):
        SQLiteEventStore(db_path)
    assert fingerprint(db_path) == before


@pytest.mark.parametrize("kind", ["absent", "empty-file", "empty-sqlite"])
def test_new_and_empty_files_get_the_schema(db_path: Path, kind: str) -> None:
    if kind == "empty-file":
        db_path.write_bytes(b"")
    elif kind == "empty-sqlite":
        sqlite3.connect(db_path).execute("PRAGMA user_version = 0").connection.close()
    with SQLiteEventStore(db_path) as s:
        run, events = fill(s, steps=1)
    with SQLiteEventStore(db_path) as s:  # reopening migrates nothing and keeps everything
        assert list(s.read(run)) == events
    db = Database(db_path)
    assert {"runs", "events", "artifacts", "snapshots"} <= set(db.table_names())
    assert {"facts", "llm_usage", "tool_calls"} <= set(db.view_names())
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_an_older_schema_is_migrated_forward_and_keeps_its_data(db_path: Path) -> None:
    db = Database(db_path)
    migrations.apply(db, stop_before="m003_snapshots")
    db.execute("PRAGMA user_version = 2")
    db.execute("INSERT INTO runs (id, task, created, last_seq) VALUES ('old', 'legacy', '2025', 1)")
    ev = started("old")
    db.execute(
        "INSERT INTO events (run_id, seq, type, v, at, body) VALUES ('old', 1, 'run_started', 1, ?, ?)",
        [ev.at.isoformat(), ev.model_dump_json()],
    )
    db.conn.commit()
    db.close()
    with SQLiteEventStore(db_path) as s:
        assert list(s.read("old")) == [ev]
        s.append("old", [fact("old", 2)], 1)
        assert s.state_at("old").task == "find the bug"
    db = Database(db_path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [m.name for m in migrations.applied(db)] == list(MIGRATION_NAMES)
    db.close()


def test_the_schema_check_without_sqlite_utils_expects_what_the_migrations_build() -> None:
    """Opening a file checks its tables against ``_expected_schema`` (plain sqlite3, no sqlite_utils):
    for every number of applied migrations it must be exactly what sqlite_utils' migrations make."""
    from agentcore.storage.sqlite.migrations import _expected_schema, _schema

    assert [m.name for m in migrations.pending(Database(memory=True))] == list(MIGRATION_NAMES)
    for applied in range(len(MIGRATION_NAMES) + 1):
        db = Database(memory=True)
        stop = MIGRATION_NAMES[applied] if applied < len(MIGRATION_NAMES) else None
        migrations.apply(db, stop_before=stop)
        assert _expected_schema(applied) == _schema(db.conn), applied
        db.close()


def test_bad_paths_and_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        SQLiteEventStore(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        SQLiteEventStore(tmp_path / "no" / "such" / "dir.db")
    for bad in ({"durability": "fast"}, {"snapshot_every": 0}, {"snapshot_ratio": -1}, {"busy_timeout_s": 0}):
        with pytest.raises(ConfigError):
            SQLiteEventStore(tmp_path / "x.db", **bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------
# writes that cannot happen


def test_read_only_store_reads_and_refuses_writes(db_path: Path) -> None:
    with SQLiteEventStore(db_path) as s:
        run, events = fill(s, steps=1)
    before = fingerprint(db_path)[0]
    with SQLiteEventStore(db_path, read_only=True) as ro:
        assert list(ro.read(run)) == events and ro.state_at(run) == fold(events)
        with pytest.raises(StorageUnavailable, match=r"read-only.*nothing was written"):
            ro.append(run, [fact(run, 7)], 6)
        with pytest.raises(StorageUnavailable, match="read-only"):
            ro.artifacts.put(b"x")
        assert ro.last_seq(run) == 6
    assert fingerprint(db_path)[0] == before
    with pytest.raises(StorageUnavailable, match=r"not an agentcore database yet.*cannot create"):
        SQLiteEventStore(db_path.with_name("new.db"), read_only=True)
    assert not db_path.with_name("new.db").exists()


def test_disk_full_fails_cleanly_and_the_log_stays_consistent(db_path: Path) -> None:
    with SQLiteEventStore(db_path) as s:
        run, events = fill(s, steps=1)
        conn = s._db.conn  # cap the file size: SQLite then fails exactly as on a full disk
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        big = ToolFinished(run_id=run, seq=7, at=at(7), call_id="c", name="t", ok=True, payload="x" * 200_000)
        with pytest.raises(StorageUnavailable, match=r"disk is full.*the log is as it was"):
            s.append(run, [big], 6)
        assert s.last_seq(run) == 6 and list(s.read(run)) == events
        conn.execute("PRAGMA max_page_count = 1073741823")
        assert s.append(run, [big], 6) == 7
    with SQLiteEventStore(db_path) as s:
        assert [e.seq for e in s.read(run)] == list(range(1, 8))


def test_a_locked_file_is_waited_for_not_reported(db_path: Path) -> None:
    with SQLiteEventStore(db_path) as s:
        run = s.create_run("t")
        other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
        release.start()
        assert s.append(run, [started(run)], 0) == 1  # waits for the other writer, then goes on
        release.join()
        other.close()


def test_a_lock_held_past_the_timeout_is_a_clear_error(db_path: Path) -> None:
    with SQLiteEventStore(db_path, busy_timeout_s=0.2) as s:
        run = s.create_run("t")
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageUnavailable, match=r"stayed locked by another writer.*busy_timeout_s") as err:
            s.append(run, [started(run)], 0)
        assert "database is locked" not in str(err.value)
        other.execute("ROLLBACK")
        other.close()
        assert s.append(run, [started(run)], 0) == 1


def test_checkpoint_waits_for_a_writer_then_empties_the_wal(db_path: Path) -> None:
    with SQLiteEventStore(db_path) as s:
        fill(s, steps=2)
        other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE runs SET task = task || '!'")
        release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
        release.start()
        s.checkpoint()  # the pragma only reports "busy"; the store waits until it went through
        release.join()
        other.close()
        assert os.path.getsize(f"{db_path}-wal") == 0
        assert s.runs()[0].task == "find the bug!"
    with SQLiteEventStore(db_path, busy_timeout_s=0.2) as s:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageUnavailable, match=r"stayed locked.*could not checkpoint the WAL"):
            s.checkpoint()
        other.execute("ROLLBACK")
        other.close()
        s.checkpoint()


def test_reads_under_a_concurrent_writer_never_fail(db_path: Path) -> None:
    with SQLiteEventStore(db_path) as s:
        run = s.create_run("t")
        s.append(run, [started(run)], 0)
        blob = os.urandom(50_000)
        ref = s.artifacts.put(blob)
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:  # its own connection: appends, snapshots, artifacts and WAL checkpoints
        try:
            with SQLiteEventStore(db_path, snapshot_every=5) as w:
                for seq in range(2, 152):
                    w.append(run, [fact(run, seq)], seq - 1)
                    w.artifacts.put(f"output {seq}".encode() * 500)
                    if seq % 25 == 0:
                        w.checkpoint()
        except BaseException as e:
            errors.append(e)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    reads = 0
    with SQLiteEventStore(db_path) as r:
        thread.start()
        while not done.is_set():
            state = r.state_at(run)
            seqs = [e.seq for e in r.read(run)]
            assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= state.last_seq
            assert len(state.known_facts) == state.last_seq - 1
            assert r.artifacts.read(ref.id, 1000, 64) == blob[1000:1064]
            reads += 1
        thread.join()
        assert errors == []
        assert r.state_at(run).last_seq == 151 and reads > 1


def test_durability_and_wal_settings(db_path: Path) -> None:
    for durability, level in (("full", 2), ("normal", 1)):
        with SQLiteEventStore(db_path, durability=durability) as s:  # type: ignore[arg-type]
            assert s._db.conn.execute("PRAGMA synchronous").fetchone()[0] == level
            assert s._db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            # no SQLite busy handler (it sleeps up to 100 ms a try): the store's own loop waits
            assert s._db.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0
    assert SQLiteEventStore.__init__.__kwdefaults__["durability"] == "full"


def test_closed_store_says_so(db_path: Path) -> None:
    s = SQLiteEventStore(db_path)
    run = s.create_run("t")
    s.close()
    s.close()
    with pytest.raises(ConfigError, match="closed"):
        s.run(run)


# ------------------------------------------------------------------------------------------------
# several writers


def test_two_connections_never_see_a_stale_state(db_path: Path) -> None:
    with SQLiteEventStore(db_path) as a, SQLiteEventStore(db_path) as b:
        run, events = fill(a, steps=1)
        assert a.state_at(run) == fold(events)  # a caches its latest state
        b.append(run, [fact(run, 7, key="from_b")], 6)
        a.append(run, [fact(run, 8, key="from_a")], 7)
        assert set(a.state_at(run).known_facts) == {"fact0", "from_b", "from_a"}
        assert a.state_at(run) == b.state_at(run) == fold(list(b.read(run)))


# ------------------------------------------------------------------------------------------------
# snapshots are a cache


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=event_logs(max_events=30), cuts=st.lists(st.integers(1, 30), max_size=8), every=st.integers(1, 4))
def test_snapshot_plus_tail_is_the_full_fold(log: list[BaseEvent], cuts: list[int], every: int) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        SQLiteEventStore(Path(tmp) / "h.db", snapshot_every=every, snapshot_ratio=0) as s,
    ):
        s.create_run("t", run_id=RUN_ID)
        bounds = sorted({0, len(log), *(c for c in cuts if c < len(log))})
        for lo, hi in itertools.pairwise(bounds):
            s.append(RUN_ID, log[lo:hi], lo)
        expected = [fold(log[:k]) for k in range(len(log) + 1)]
        assert [s.state_at(RUN_ID, k) for k in range(len(log) + 1)] == expected
        with SQLiteEventStore(Path(tmp) / "h.db") as fresh:  # no in-process cache: snapshots only
            assert [fresh.state_at(RUN_ID, k) for k in range(len(log) + 1)] == expected
            fresh.delete_snapshots()
            assert fresh.snapshot_stats()["snapshots"] == 0
            assert [fresh.state_at(RUN_ID, k) for k in range(len(log) + 1)] == expected


@pytest.mark.parametrize("ratio", [None, 1.0, 2.0])
def test_snapshot_bytes_stay_proportional_to_log_bytes_and_tails_short(db_path: Path, ratio: float | None) -> None:
    """Snapshot bytes stay within about 1/ratio times the log's (plus one snapshot), and the tail after
    the newest snapshot within about ratio times its size (plus a batch); ``None``: the default."""
    settings = {} if ratio is None else {"snapshot_ratio": ratio}
    with SQLiteEventStore(db_path, snapshot_every=20, **settings) as s:  # type: ignore[arg-type]
        ratio = s.snapshot_ratio
        run, events = fill(s, steps=300)
        stats = s.snapshot_stats(run)
        assert stats["snapshots"] >= 5
        assert stats["snapshot_bytes"] <= (1 / ratio + 1) * stats["event_bytes"]
        last = len(events)
        snap = s._best_snapshot(run, last)
        assert snap is not None
        tail_bytes = sum(len(e.model_dump_json()) for e in events[snap[0] :])
        assert last - snap[0] < 20 or tail_bytes < ratio * snap[3] + 5 * 1000
    with SQLiteEventStore(db_path) as fresh:
        assert fresh.state_at(run) == fold(events)
        assert fresh.state_at(run, 777) == fold(events[:777])


def test_forks_use_their_parents_snapshots(db_path: Path) -> None:
    with SQLiteEventStore(db_path, snapshot_every=5, snapshot_ratio=0) as s:
        run, events = fill(s, steps=10)
        rows_before = s.snapshot_stats()
        fork = s.fork(run, 33)
        assert s.snapshot_stats() == rows_before  # copy-free: no event (and no snapshot) copied
        snap = s._best_snapshot(fork, 33)
        assert snap is not None and snap[0] <= 33
        assert s.state_at(fork) == fold(events[:33])
        s.append(fork, [fact(fork, 34, key="mine"), finished(fork, 35)], 33)
        f2 = s.fork(fork, 35)
        assert s.snapshot_stats()["events"] == len(events) + 2
        assert s.state_at(f2) == fold([*events[:33], fact(fork, 34, key="mine"), finished(fork, 35)])
        s.delete_snapshots(run)
        assert s.state_at(f2, 34) == fold([*events[:33], fact(fork, 34, key="mine")])


def test_views_show_facts_usage_and_tool_calls(db_path: Path) -> None:
    with SQLiteEventStore(db_path) as s:
        fill(s, steps=2)
    db = Database(db_path)
    facts = list(db.query("SELECT key, value, seq FROM facts ORDER BY seq"))
    assert facts == [
        {"key": "fact0", "value": "needle 0 is in a.py:0", "seq": 6},
        {"key": "fact1", "value": "needle 1 is in a.py:1", "seq": 11},
    ]
    usage = list(db.query("SELECT role, SUM(total_tokens) AS tokens FROM llm_usage GROUP BY role"))
    assert usage == [{"role": "controller", "tokens": 240}]
    assert [r["name"] for r in db.query("SELECT name FROM tool_calls")] == ["search_code", "search_code"]
    db.close()


def test_history_lists_seqs_and_types_without_bodies(db_path: Path) -> None:
    with SQLiteEventStore(db_path) as s:
        run, _ = fill(s, steps=1)
        fork = s.fork(run, 3)
        s.append(fork, [finished(fork, 4)], 3)
        assert [(h.seq, h.type) for h in s.history(fork)] == [
            (1, "run_started"), (2, "llm_called"), (3, "decided"), (4, "run_finished"),
        ]  # fmt: skip
        assert [h.run_id for h in s.history(fork)] == [run, run, run, fork]
        assert len(list(s.history(run, after=2, upto=4))) == 2


def test_an_event_that_does_not_fold_is_stored_without_a_snapshot(db_path: Path) -> None:
    bad = StatePatched(run_id="r", seq=2, at=at(2), ops=(AnswerQuestion(id="never_asked", answer="x"),))
    with SQLiteEventStore(db_path, snapshot_every=1, snapshot_ratio=0) as s:
        s.create_run("t", run_id="r")
        s.append("r", [started("r")], 0)
        assert s.append("r", [bad], 1) == 2  # the store records; the runtime is the one that checks patches
        assert s.snapshot_stats("r")["snapshots"] == 1  # after seq 1 only
        with pytest.raises(PatchError, match="never_asked"):
            s.state_at("r")
        assert s.state_at("r", 1) == fold([started("r")])


def test_threads_share_one_store(db_path: Path) -> None:
    with SQLiteEventStore(db_path) as s:
        runs = [s.create_run(f"t{i}", run_id=f"r{i}") for i in range(4)]
        errors: list[BaseException] = []

        def work(run: str) -> None:
            try:
                s.append(run, [started(run)], 0)
                for seq in range(2, 26):
                    s.append(run, [fact(run, seq)], seq - 1)
                    assert len(s.state_at(run).known_facts) == seq - 1
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(run,)) for run in runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert [s.last_seq(run) for run in runs] == [25] * 4


def test_an_in_memory_database_works_too() -> None:
    with SQLiteEventStore(":memory:") as s:
        run, events = fill(s, steps=2)
        assert list(s.read(run)) == events and s.state_at(run, 6) == fold(events[:6])
        assert s.artifacts.get_text(s.artifacts.put_text("x").id) == "x"


def test_state_at_starts_from_the_newest_snapshot_at_or_below_the_seq(db_path: Path) -> None:
    """Tamper with a snapshot row: a fresh store's state_at must show it, so it really starts there."""
    import sqlite3

    from agentcore.core.fold import Fact

    with SQLiteEventStore(db_path, snapshot_every=5, snapshot_ratio=0) as s:
        run, events = fill(s, steps=10)
        events.append(finished(run, len(events) + 1))
        s.append(run, events[-1:], len(events) - 1)  # one event past the newest snapshot
        snap_seq = s._best_snapshot(run, len(events))[0]
        assert 0 < snap_seq < len(events)
        marked = fold(events[:snap_seq])
        marked.known_facts["marker"] = Fact(key="marker", value="read from the snapshot", seq=snap_seq)
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "UPDATE snapshots SET encoding = 'json', state = ?, size = ? WHERE run_id = ? AND seq = ?",
            (marked.model_dump_json(), len(marked.model_dump_json()), run, snap_seq),
        )
    conn.close()
    with SQLiteEventStore(db_path) as fresh:  # no in-process cache
        assert "marker" in fresh.state_at(run, snap_seq).known_facts
        assert "marker" in fresh.state_at(run).known_facts  # snapshot + tail
        earlier = fresh._best_snapshot(run, snap_seq - 1)
        assert earlier is None or earlier[0] < snap_seq
        assert "marker" not in fresh.state_at(run, snap_seq - 1).known_facts
        fresh.delete_snapshots(run)
        assert fresh.state_at(run) == fold(events)  # the cache gone, the log alone is the truth
