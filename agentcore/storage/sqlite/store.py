"""The event store in one SQLite file (WAL mode): runs, events, artifacts and snapshots.

Invariants this module keeps:

- **Appends are atomic and ordered.** A batch commits in one ``BEGIN IMMEDIATE`` transaction that
  first checks the run's last seq; a racing writer gets ``ConcurrencyError`` and nothing of its
  batch is written. "database is locked" never reaches the caller, for writes or reads: a bounded
  retry loop absorbs it (see ``sqlite_artifacts``), and only an outlasted ``busy_timeout_s``
  surfaces (as ``StorageUnavailable``).
- **Forks are copy-free.** A fork's ``runs`` row points at its parent and ``forked_at_seq``;
  reading it chains the parent's events (recursively) and then its own.
- **Snapshots are a cache.** ``state_at`` loads the newest snapshot at or below the seq asked for
  and folds the events after it. Deleting every snapshot changes no state, only speed.

Snapshot policy: after an append, a snapshot of the new state is written when at least
``snapshot_every`` events and at least ``snapshot_ratio`` times the stored size of the previous
snapshot in event bytes have passed since it. Snapshot bytes thus stay within about
``1 / snapshot_ratio`` times the log bytes, and loading any state costs one snapshot plus a tail of
at most about ``snapshot_ratio`` times the snapshot's size in event bytes. The default, 0.5, spends
up to about twice the log's bytes on snapshots for half the tail: a snapshot's facts are decoded
only when read (``agentcore.storage.snapshots``), so loading one costs far less than its size, and
the tail, folded event by event, is what a load costs (benchmarks W3).
"""

from __future__ import annotations

import gc
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from agentcore.core.event_codec import decode_event, encode_event
from agentcore.core.events import BaseEvent
from agentcore.core.fold import RunState, apply, diff_states
from agentcore.errors import ConcurrencyError, ConfigError, RunNotFound
from agentcore.storage import base
from agentcore.storage.base import RunInfo, check_batch, status_after
from agentcore.storage.schema import SQLITE
from agentcore.storage.snapshots import decode_state as _decode_state
from agentcore.storage.snapshots import encode_state as _encode_state
from agentcore.storage.sql_rows import RunRows
from agentcore.storage.sqlite.artifacts import SQLiteArtifactStore
from agentcore.storage.sqlite.connection import SQLiteConnection
from agentcore.storage.sqlite.reads import PAGE, EventHeader, SQLiteReads

Durability = Literal["full", "normal"]

CACHE_RUNS = 8
"""Latest states kept in memory (per process) so appends can snapshot without re-reading."""

__all__ = ("CACHE_RUNS", "PAGE", "EventHeader", "SQLiteEventStore")

@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building a state: its many objects form no cycles, and a full
    collection in the middle would walk all of them for nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class SQLiteEventStore(SQLiteReads, RunRows):
    """Runs, events, artifacts and snapshots in one SQLite file.

    Args:
        path: The database file; created (with its schema) when absent or empty. ``":memory:"``
            gives a private in-memory database.
        durability: ``"full"`` (default) syncs the log to disk at every commit, so a committed step
            survives a power cut; ``"normal"`` syncs at checkpoints only: a process crash still
            loses nothing, a power cut may lose the last commits (never corrupting the file).
        snapshot_every: Fewest events between two snapshots; ``None`` writes no snapshots.
        snapshot_ratio: Event bytes needed since the last snapshot, as a multiple of its size.
        busy_timeout_s: How long a write waits for other writers before ``StorageUnavailable``.
        read_only: Open without write access (inspection); any write raises ``StorageUnavailable``.

    Raises:
        NotAnAgentcoreDatabase: the file is not SQLite or belongs to another application.
        SchemaTooNew: a newer agentcore wrote the file. In both cases the file is left untouched.
        ConfigError: invalid settings, or a path whose directory does not exist.
    """

    dialect = SQLITE
    _db: SQLiteConnection

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "full",
        snapshot_every: int | None = 100,
        snapshot_ratio: float = 0.5,
        busy_timeout_s: float = 30.0,
        read_only: bool = False,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ConfigError(f"durability must be 'full' or 'normal', got {durability!r}")
        if snapshot_every is not None and (not isinstance(snapshot_every, int) or snapshot_every < 1):
            raise ConfigError(f"snapshot_every must be an int >= 1 or None (no snapshots), got {snapshot_every!r}")
        if not snapshot_ratio >= 0:
            raise ConfigError(f"snapshot_ratio must be >= 0, got {snapshot_ratio!r}")
        if not busy_timeout_s > 0:
            raise ConfigError(f"busy_timeout_s must be > 0, got {busy_timeout_s!r}")
        self.path = str(path)
        self.durability = durability
        self.snapshot_every = snapshot_every
        self.snapshot_ratio = float(snapshot_ratio)
        self.read_only = read_only
        self._cache: OrderedDict[str, tuple[int, RunState]] = OrderedDict()
        self._db = SQLiteConnection.open(
            self.path, durability=durability, busy_timeout_s=busy_timeout_s, read_only=read_only
        )
        self.artifacts = SQLiteArtifactStore(self._db)

    # ------------------------------------------------------------------------------------------
    # lifecycle

    def close(self) -> None:
        """Close the file (idempotent). Later calls raise ``ConfigError``."""
        self._db.close()
        self._cache.clear()

    def __enter__(self) -> SQLiteEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteEventStore({self.path!r}, durability={self.durability!r})"

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it (``PRAGMA wal_checkpoint(TRUNCATE)``),
        waiting up to ``busy_timeout_s`` for other connections (then ``StorageUnavailable``)."""

        def attempt() -> None:
            busy = self._db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy is not None and busy[0]:  # the pragma reports "busy" in its result, not as an error
                raise sqlite3.OperationalError("database is locked")

        with self._db.lock:
            self._db.check_open()
            self._db.retry(attempt, "checkpoint the WAL")

    # ------------------------------------------------------------------------------------------
    # runs

    def create_run(
        self,
        task: str,
        *,
        run_id: str | None = None,
        created: datetime | None = None,
        events: Sequence[BaseEvent] = (),
        artifacts: Sequence[tuple[bytes, str]] = (),
    ) -> str:
        """Add a run and return its id; ``events`` (seqs 1..) and ``artifacts`` (``(bytes, media_type)``)
        are written in the same transaction.

        Starting a run with its first event (``RunStarted``) leaves no moment in which the run
        exists without it, whatever kills the process.
        """
        run_id, when = base.new_run(run_id, events, created)
        try:
            with self._db.transaction(f"create run {run_id!r}") as conn:
                conn.execute(
                    "INSERT INTO runs (id, task, status, created, last_seq) VALUES (?, ?, 'running', ?, 0)",
                    (run_id, task, when),
                )
                self._remember(run_id, 0, RunState())
                if artifacts:
                    self.artifacts.put_many_in(conn, artifacts)
                if events:
                    self._append_in(conn, run_id, events, 0)
        except sqlite3.IntegrityError:
            self._cache.pop(run_id, None)
            raise ConcurrencyError(f"run {run_id!r} already exists in {self.path}; choose another id") from None
        except BaseException:
            self._cache.pop(run_id, None)
            raise
        return run_id

    def _not_found(self, run_id: str) -> RunNotFound:
        return RunNotFound(f"no run {run_id!r} in {self.path}")

    # ------------------------------------------------------------------------------------------
    # appending

    def append(self, run_id: str, events: Sequence[BaseEvent], expected_seq: int) -> int:
        """Append a batch in one transaction and return the run's new last seq.

        Raises:
            ConfigError: the events do not belong to ``run_id`` or do not continue at ``expected_seq + 1``.
            ConcurrencyError: the run's last seq is no longer ``expected_seq``; nothing was written.
            RunNotFound: no such run.
            StorageUnavailable: the file cannot be written (read-only, disk full, I/O error).
        """
        check_batch(run_id, events, expected_seq)
        try:
            with self._db.transaction(f"append {len(events)} event(s) to run {run_id!r}") as conn:
                return self._append_in(conn, run_id, events, expected_seq)
        except BaseException:
            self._cache.pop(run_id, None)
            raise

    def _append_in(self, conn: sqlite3.Connection, run_id: str, events: Sequence[BaseEvent], expected_seq: int) -> int:
        """The body of ``append`` inside an open write transaction."""
        rows = [
            (run_id, e.seq, e.type, e.v, e.at.isoformat(), e.caused_by, encode_event(e))
            for e in events
        ]
        added = sum(len(r[6]) for r in rows)
        new_last = expected_seq + len(rows)
        row = conn.execute(
            "SELECT last_seq, status, snapshot_seq, snapshot_size, bytes_since_snapshot FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise self._not_found(run_id)
        last, status, snap_seq, snap_size, since = row
        if last != expected_seq:
            raise ConcurrencyError(
                f"run {run_id!r}: expected last seq {expected_seq}, but it is {last}; "
                "another writer appended first: re-read the run and retry"
            )
        if not rows:
            return expected_seq
        try:
            conn.executemany(
                "INSERT INTO events (run_id, seq, type, v, at, caused_by, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        except sqlite3.IntegrityError as e:
            raise ConcurrencyError(
                f"run {run_id!r}: seqs {expected_seq + 1}..{new_last} were already written; re-read and retry"
            ) from e
        status = status_after(events, status)
        state = self._advance_cache(run_id, expected_seq, new_last, events)
        due = (
            self.snapshot_every is not None
            and new_last - snap_seq >= self.snapshot_every
            and since + added >= self.snapshot_ratio * snap_size
        )
        blob = self._snapshot(run_id, expected_seq, new_last, events, state) if due else None
        if blob is not None:
            conn.execute(
                "INSERT OR REPLACE INTO snapshots (run_id, seq, encoding, size, state) VALUES (?, ?, ?, ?, ?)",
                (run_id, new_last, blob[0], len(blob[1]), blob[1]),
            )
            conn.execute(
                "UPDATE runs SET last_seq = ?, status = ?, snapshot_seq = ?, snapshot_size = ?, "
                "bytes_since_snapshot = 0 WHERE id = ?",
                (new_last, status, new_last, len(blob[1]), run_id),
            )
        else:
            conn.execute(
                "UPDATE runs SET last_seq = ?, status = ?, bytes_since_snapshot = bytes_since_snapshot + ? "
                "WHERE id = ?",
                (new_last, status, added, run_id),
            )
        return new_last

    def _snapshot(
        self, run_id: str, expected: int, new_last: int, events: Sequence[BaseEvent], state: RunState | None
    ) -> tuple[str, bytes | str] | None:
        """The encoded state after the batch, or ``None`` if it cannot be computed.

        The store does not judge events (the runtime checks patches before appending); a log
        whose events do not fold just gets no snapshot, and ``state_at`` reports the problem.
        """
        if state is None:
            try:
                state = self._load_state(run_id, expected)
                for e in events:
                    apply(state, e)  # type: ignore[arg-type]
            except Exception:
                return None
            self._remember(run_id, new_last, state)
        return _encode_state(state)

    def _advance_cache(self, run_id: str, expected: int, new_last: int, events: Sequence[BaseEvent]) -> RunState | None:
        """Fold the batch onto the cached state at ``expected``, if there is one."""
        hit = self._cache.get(run_id)
        if hit is None or hit[0] != expected:
            return None
        state = hit[1]
        try:
            for e in events:
                apply(state, e)  # type: ignore[arg-type]
        except Exception:  # an event that does not apply: drop the cache, the log is the truth
            self._cache.pop(run_id, None)
            return None
        self._remember(run_id, new_last, state)
        return state

    def _remember(self, run_id: str, seq: int, state: RunState) -> None:
        self._cache[run_id] = (seq, state)
        self._cache.move_to_end(run_id)
        while len(self._cache) > CACHE_RUNS:
            self._cache.popitem(last=False)

    # ------------------------------------------------------------------------------------------
    # reading

    def state_at(self, run_id: str, seq: int | None = None) -> RunState:
        """The state after event ``seq`` (the latest by default): ``fold(read(run_id, upto=seq))``.

        Costs one snapshot load plus the events after it. The result is the caller's to change.
        """
        if seq is not None and seq < 0:
            raise ConfigError(f"seq must be >= 0, got {seq}")
        with self._db.lock:
            info = self.run(run_id)
            target = info.last_seq if seq is None else min(seq, info.last_seq)
            hit = self._cache.get(run_id)
            if hit is not None and hit[0] == target:
                return hit[1].clone()
            # not remembered: the cache would need a copy of its own (the state is the caller's),
            # and only appends made by this process need it (they remember what they fold)
            return self._load_state(run_id, target, info)

    def _load_state(self, run_id: str, seq: int, info: RunInfo | None = None) -> RunState:
        info = info or self.run(run_id)
        snap = self._best_snapshot(run_id, seq, info=info)
        with _gc_paused():
            state = _decode_state(snap[1], snap[2]) if snap is not None else RunState()
            _, segments = self._chain(run_id, snap[0] if snap is not None else 0, seq, info)
            for row in self._rows(segments, "body"):
                apply(state, decode_event(row[1]))
        return state

    def diff(self, run_id: str, a: int, b: int) -> list[dict[str, Any]]:
        """RFC 6902 operations turning the state at seq ``a`` into the state at seq ``b``."""
        return diff_states(self.state_at(run_id, a), self.state_at(run_id, b))

    # ------------------------------------------------------------------------------------------
    # forks and snapshots

    def fork(self, run_id: str, at_seq: int, *, new_run_id: str | None = None) -> str:
        """A new run that shares ``run_id``'s events up to ``at_seq`` (no event is copied)."""
        new_id = new_run_id or base.new_run_id()
        with self._db.lock:
            info, segments = self._chain(run_id, 0, at_seq)
            if not 1 <= at_seq <= info.last_seq:
                raise ConfigError(f"cannot fork run {run_id!r} at seq {at_seq}: it has seqs 1..{info.last_seq}")
            base.check_fork_point(run_id, [(h.seq, h.type, h.caused_by) for h in self.history(run_id)], at_seq)
            # the fork's cached status follows the same rules as the fold (waiting_for_user included)
            status = self.state_at(run_id, at_seq).status
            snap = self._best_snapshot(run_id, at_seq, blob=False)
            snap_seq, snap_size = (snap[0], snap[3]) if snap is not None else (0, 0)
            since = 0
            for seg in segments:
                lo = max(seg.after, snap_seq)
                if seg.upto > lo:
                    got = self._db.one(
                        "SELECT COALESCE(SUM(length(body)), 0) FROM events WHERE run_id = ? AND seq > ? AND seq <= ?",
                        (seg.run_id, lo, seg.upto),
                    )
                    since += got[0] if got else 0
            try:
                with self._db.transaction(f"fork run {run_id!r} at seq {at_seq}") as conn:
                    conn.execute(
                        "INSERT INTO runs (id, task, status, created, parent_run_id, forked_at_seq, last_seq, "
                        "snapshot_seq, snapshot_size, bytes_since_snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            new_id, info.task, status, datetime.now().astimezone().isoformat(), run_id, at_seq,
                            at_seq, snap_seq, snap_size, since,
                        ),
                    )  # fmt: skip
            except sqlite3.IntegrityError:
                raise ConcurrencyError(f"run {new_id!r} already exists in {self.path}; choose another id") from None
        return new_id

    def delete_snapshots(self, run_id: str | None = None) -> int:
        """Delete the snapshots of one run (or of all runs) and return how many went.

        Snapshots are a cache: no state changes, only ``state_at`` gets slower until new ones
        are written. The in-process cache of latest states is dropped too.
        """
        with self._db.transaction("delete snapshots") as conn:
            if run_id is None:
                n = conn.execute("DELETE FROM snapshots").rowcount
                conn.execute("UPDATE runs SET snapshot_seq = 0, snapshot_size = 0, bytes_since_snapshot = 0")
            else:
                if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                    raise self._not_found(run_id)
                n = conn.execute("DELETE FROM snapshots WHERE run_id = ?", (run_id,)).rowcount
                conn.execute(
                    "UPDATE runs SET snapshot_seq = 0, snapshot_size = 0, bytes_since_snapshot = 0 WHERE id = ?",
                    (run_id,),
                )
            self._cache.clear()
        return n

    def snapshot_stats(self, run_id: str | None = None) -> dict[str, int]:
        """Counts and bytes of snapshots and event bodies (all runs, or one run's own rows)."""
        where, params = ("WHERE run_id = ?", (run_id,)) if run_id is not None else ("", ())
        snaps = self._db.one(f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM snapshots {where}", params)
        events = self._db.one(f"SELECT COUNT(*), COALESCE(SUM(length(body)), 0) FROM events {where}", params)
        assert snaps is not None and events is not None
        return {"snapshots": snaps[0], "snapshot_bytes": snaps[1], "events": events[0], "event_bytes": events[1]}
