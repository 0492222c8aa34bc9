"""The event store on a PostgreSQL server: runs, events, artifacts, snapshots and the work queue.

The same contract as ``SQLiteEventStore`` (one test suite checks both):

- **Appends are atomic and ordered.** A batch commits in one transaction that first locks the
  run's row (``SELECT ... FOR UPDATE``) and checks its last seq; a racing writer, in this process
  or on another machine, gets ``ConcurrencyError`` and nothing of its batch is written.
- **Forks are copy-free**: a fork's row points at its parent and ``forked_at_seq``.
- **Snapshots are a cache**, written by the same policy as SQLite's (see ``storage.sqlite.store``).
- Errors: a server that is down, refuses the credentials or goes away mid-run gives
  ``StorageUnavailable`` saying what happened and what to do; the URL's password is never shown.

Runs may also be queued for workers (``submit``; see ``storage.postgres.queue``): appends made
under a lease carry its token and are refused once another worker holds the run.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from agentcore.core.event_codec import decode_event, encode_event
from agentcore.core.events import BaseEvent
from agentcore.core.fold import RunState, apply, diff_states
from agentcore.errors import ConcurrencyError, ConfigError, RunNotFound
from agentcore.storage import base
from agentcore.storage.base import RunInfo, check_batch, status_after
from agentcore.storage.postgres.artifacts import PostgresArtifactStore
from agentcore.storage.postgres.connection import PgConnection
from agentcore.storage.postgres.migrations import ensure_schema
from agentcore.storage.postgres.queue import QueueMixin
from agentcore.storage.postgres.reads import ReadsMixin, _Link
from agentcore.storage.postgres.steps import StepQueueMixin
from agentcore.storage.schema import POSTGRES
from agentcore.storage.snapshots import decode_state as _decode_state
from agentcore.storage.snapshots import encode_state as _encode_state
from agentcore.storage.sql_rows import RunRows
from agentcore.storage.sqlite.store import CACHE_RUNS, _gc_paused


class PostgresEventStore(RunRows, ReadsMixin, QueueMixin, StepQueueMixin):
    """Runs, events, artifacts, snapshots and the work queue in a PostgreSQL database.

    Args:
        url: ``postgresql://user:password@host:port/dbname`` (any libpq connection string works).
            The database must exist; its schema is created or upgraded on first use.
        snapshot_every: Fewest events between two snapshots; ``None`` writes no snapshots.
        snapshot_ratio: Event bytes needed since the last snapshot, as a multiple of its size.
        max_connections: Size of the connection pool (threads of one process share it).
        connect_timeout_s: How long to wait for the server before ``StorageUnavailable``.

    Raises:
        StorageUnavailable: the server is down, refuses the credentials, or the database is absent.
        NotAnAgentcoreDatabase: the schema holds another application's tables.
        SchemaTooNew: a newer agentcore wrote it. In both cases nothing is changed.
        ConfigError: invalid settings.
    """

    dialect = POSTGRES
    _db: PgConnection

    def __init__(
        self,
        url: str,
        *,
        snapshot_every: int | None = 100,
        snapshot_ratio: float = 0.5,
        max_connections: int = 4,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if snapshot_every is not None and (not isinstance(snapshot_every, int) or snapshot_every < 1):
            raise ConfigError(f"snapshot_every must be an int >= 1 or None (no snapshots), got {snapshot_every!r}")
        if not snapshot_ratio >= 0:
            raise ConfigError(f"snapshot_ratio must be >= 0, got {snapshot_ratio!r}")
        self.snapshot_every = snapshot_every
        self.snapshot_ratio = float(snapshot_ratio)
        self._cache: OrderedDict[str, tuple[int, RunState]] = OrderedDict()
        self._db = PgConnection(url, max_size=max_connections, connect_timeout_s=connect_timeout_s)
        self.where = self._db.where
        try:
            with self._db.pool.connection(timeout=connect_timeout_s) as conn:
                ensure_schema(conn, self.where)
        except psycopg.Error as e:
            self._db.close()
            raise self._db.lost(e, "create the agentcore schema") from None
        except BaseException:
            self._db.close()
            raise
        self.artifacts = PostgresArtifactStore(self._db)

    # ------------------------------------------------------------------------------------------
    # lifecycle

    @property
    def read_only(self) -> bool:
        """Always ``False``: a PostgreSQL store writes (use a read-only database role to inspect)."""
        return False

    def close(self) -> None:
        """Close the connection pool (idempotent). Later calls raise ``ConfigError``."""
        self._db.close()
        self._cache.clear()

    def __enter__(self) -> PostgresEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresEventStore({self.where!r})"

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
        are written in the same transaction."""
        run_id, when = base.new_run(run_id, events, created)
        self._insert_run(run_id, task, when, events, artifacts=artifacts)
        return run_id

    def _insert_run(
        self,
        run_id: str,
        task: str,
        when: str,
        events: Sequence[BaseEvent],
        spec: str | None = None,
        artifacts: Sequence[tuple[bytes, str]] = (),
    ) -> None:
        try:
            with self._db.transaction(f"create run {run_id!r}") as conn:
                conn.execute(
                    "INSERT INTO runs (id, task, status, created, last_seq) VALUES (%s, %s, 'running', %s, 0)",
                    (run_id, task, when),
                )
                self._remember(run_id, 0, RunState())
                if artifacts:
                    self.artifacts.put_many_in(conn, artifacts)
                if events:
                    self._append_in(conn, run_id, events, 0)
                if spec is not None:
                    self._enqueue_in(conn, run_id, spec)
        except pg_errors.UniqueViolation:
            self._cache.pop(run_id, None)
            raise ConcurrencyError(f"run {run_id!r} already exists in {self.where}; choose another id") from None
        except BaseException:
            self._cache.pop(run_id, None)
            raise

    def _not_found(self, run_id: str) -> RunNotFound:
        return RunNotFound(f"no run {run_id!r} in {self.where}")

    # ------------------------------------------------------------------------------------------
    # appending

    def append(self, run_id: str, events: Sequence[BaseEvent], expected_seq: int) -> int:
        """Append a batch in one transaction and return the run's new last seq.

        Raises:
            ConfigError: the events do not belong to ``run_id`` or do not continue at ``expected_seq + 1``.
            ConcurrencyError: the run's last seq is no longer ``expected_seq``; nothing was written.
            RunNotFound: no such run.
            StorageUnavailable: the server cannot be reached (the batch may or may not have committed
                if the connection broke during the commit: re-read the run).
        """
        return self._append(run_id, events, expected_seq, None)

    def _append(self, run_id: str, events: Sequence[BaseEvent], expected_seq: int, lease: int | None) -> int:
        check_batch(run_id, events, expected_seq)
        try:
            with self._db.transaction(f"append {len(events)} event(s) to run {run_id!r}") as conn:
                if lease is not None:
                    self._check_lease_in(conn, run_id, lease)
                return self._append_in(conn, run_id, events, expected_seq)
        except BaseException:
            self._cache.pop(run_id, None)
            raise

    def _append_in(
        self, conn: psycopg.Connection[Any], run_id: str, events: Sequence[BaseEvent], expected_seq: int
    ) -> int:
        row = conn.execute(
            "SELECT last_seq, status, snapshot_seq, snapshot_size, bytes_since_snapshot FROM runs "
            "WHERE id = %s FOR UPDATE",
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
        if not events:
            return expected_seq
        bodies = [encode_event(e) for e in events]
        e_: Any = events
        conn.execute(
            "INSERT INTO events (run_id, seq, type, v, at, caused_by, body) "
            "SELECT %s, * FROM unnest(%s::int[], %s::text[], %s::int[], %s::text[], %s::int[], %s::json[])",
            (
                run_id, [e.seq for e in e_], [e.type for e in e_], [e.v for e in e_],
                [e.at.isoformat() for e in e_], [e.caused_by for e in e_], bodies,
            ),
        )  # fmt: skip
        added = sum(len(b) for b in bodies)
        new_last = expected_seq + len(events)
        status = status_after(events, status)
        state = self._advance_cache(run_id, expected_seq, new_last, events)
        due = (
            self.snapshot_every is not None
            and new_last - snap_seq >= self.snapshot_every
            and since + added >= self.snapshot_ratio * snap_size
        )
        blob = self._snapshot(run_id, expected_seq, new_last, events, state) if due else None
        if blob is not None:
            data = blob[1].encode("utf-8") if isinstance(blob[1], str) else blob[1]
            conn.execute(
                "INSERT INTO snapshots (run_id, seq, encoding, size, state) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (run_id, seq) DO UPDATE SET encoding = excluded.encoding, size = excluded.size, "
                "state = excluded.state",
                (run_id, new_last, blob[0], len(data), data),
            )
            conn.execute(
                "UPDATE runs SET last_seq = %s, status = %s, snapshot_seq = %s, snapshot_size = %s, "
                "bytes_since_snapshot = 0 WHERE id = %s",
                (new_last, status, new_last, len(data), run_id),
            )
        else:
            conn.execute(
                "UPDATE runs SET last_seq = %s, status = %s, bytes_since_snapshot = bytes_since_snapshot + %s "
                "WHERE id = %s",
                (new_last, status, added, run_id),
            )
        return new_last

    def _snapshot(
        self, run_id: str, expected: int, new_last: int, events: Sequence[BaseEvent], state: RunState | None
    ) -> tuple[str, bytes | str] | None:
        """The encoded state after the batch, or ``None`` if the log does not fold (no snapshot then)."""
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
        hit = self._cache.get(run_id)
        if hit is None or hit[0] != expected:
            return None
        state = hit[1]
        try:
            for e in events:
                apply(state, e)  # type: ignore[arg-type]
        except Exception:
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
        """The state after event ``seq`` (the latest by default): one snapshot plus the events after it."""
        if seq is not None and seq < 0:
            raise ConfigError(f"seq must be >= 0, got {seq}")
        info, chain = self._ancestry(run_id)
        target = info.last_seq if seq is None else min(seq, info.last_seq)
        hit = self._cache.get(run_id)
        if hit is not None and hit[0] == target:
            return hit[1].clone()
        state = self._load_state(run_id, target, (info, chain))
        if target == info.last_seq:
            self._remember(run_id, target, state.clone())
        return state

    def _load_state(self, run_id: str, seq: int, known: tuple[RunInfo, list[_Link]] | None = None) -> RunState:
        """The state at ``seq``: the newest snapshot at or before it, then the events after it (the
        ancestry is read once: ``known``)."""
        known = known if known is not None else self._ancestry(run_id)
        snap = self._best_snapshot(known[1], seq)
        with _gc_paused():
            if snap is None:
                state, start = RunState(), 0
            else:
                raw = bytes(snap[2])
                state, start = _decode_state(snap[1], raw if snap[1] != "json" else raw.decode("utf-8")), snap[0]
            _, segments = self._segments(run_id, start, seq, known)
            for row in self._rows(segments, "body::text"):
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
        info, chain = self._ancestry(run_id)
        if not 1 <= at_seq <= info.last_seq:
            raise ConfigError(f"cannot fork run {run_id!r} at seq {at_seq}: it has seqs 1..{info.last_seq}")
        base.check_fork_point(run_id, [(h.seq, h.type, h.caused_by) for h in self.history(run_id)], at_seq)
        status = self.state_at(run_id, at_seq).status
        snap = self._best_snapshot(chain, at_seq)
        snap_seq, snap_size = (snap[0], snap[3]) if snap is not None else (0, 0)
        _, segments = self._segments(run_id, snap_seq, at_seq)
        since = 0
        for seg_run, lo, hi in segments:
            got = self._db.one(
                "SELECT COALESCE(SUM(octet_length(body::text)), 0) FROM events WHERE run_id = %s AND seq > %s "
                "AND seq <= %s",
                (seg_run, lo, hi),
            )
            since += int(got[0]) if got else 0
        try:
            with self._db.transaction(f"fork run {run_id!r} at seq {at_seq}") as conn:
                conn.execute(
                    "INSERT INTO runs (id, task, status, created, parent_run_id, forked_at_seq, last_seq, "
                    "snapshot_seq, snapshot_size, bytes_since_snapshot) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        new_id, info.task, status, datetime.now().astimezone().isoformat(), run_id, at_seq,
                        at_seq, snap_seq, snap_size, since,
                    ),
                )  # fmt: skip
        except pg_errors.UniqueViolation:
            raise ConcurrencyError(f"run {new_id!r} already exists in {self.where}; choose another id") from None
        return new_id

    def delete_snapshots(self, run_id: str | None = None) -> int:
        """Delete the snapshots of one run (or of all runs) and return how many went (a cache: no state changes)."""
        with self._db.transaction("delete snapshots") as conn:
            if run_id is None:
                n = conn.execute("DELETE FROM snapshots").rowcount
                conn.execute("UPDATE runs SET snapshot_seq = 0, snapshot_size = 0, bytes_since_snapshot = 0")
            else:
                if conn.execute("SELECT 1 FROM runs WHERE id = %s", (run_id,)).fetchone() is None:
                    raise self._not_found(run_id)
                n = conn.execute("DELETE FROM snapshots WHERE run_id = %s", (run_id,)).rowcount
                conn.execute(
                    "UPDATE runs SET snapshot_seq = 0, snapshot_size = 0, bytes_since_snapshot = 0 WHERE id = %s",
                    (run_id,),
                )
            self._cache.clear()
        return n

    def snapshot_stats(self, run_id: str | None = None) -> dict[str, int]:
        """Counts and bytes of snapshots and event bodies (all runs, or one run's own rows)."""
        where, params = ("WHERE run_id = %s", (run_id,)) if run_id is not None else ("", ())
        snaps = self._db.one(f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM snapshots {where}", params)
        events = self._db.one(
            f"SELECT COUNT(*), COALESCE(SUM(octet_length(body::text)), 0) FROM events {where}", params
        )
        assert snaps is not None and events is not None
        return {
            "snapshots": int(snaps[0]), "snapshot_bytes": int(snaps[1]),
            "events": int(events[0]), "event_bytes": int(events[1]),
        }  # fmt: skip


__all__ = ("PostgresEventStore",)
