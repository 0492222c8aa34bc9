"""``SQLEventStore``: the event store written once for SQLite and PostgreSQL.

``SQLiteEventStore`` and ``PostgresEventStore`` subclass it and say only what differs: the
connection, the ``dialect`` (placeholders, row locks), how a batch of events is written with the
run row's new values (``_write_events``: one ``UPDATE`` of the run's row per append, so an append
leaves one dead row version) and measured (``_BODY_BYTES``) and read back (``_EVENT_COLUMNS``, ``_decode_row``),
and which driver error is a duplicate key (``_DUPLICATE``).

Invariants (one contract suite checks both stores):

- **Appends are atomic and ordered.** A batch commits in one transaction that first reads (on
  PostgreSQL: locks) the run's row and checks its last seq; a racing writer gets
  ``ConcurrencyError`` and nothing of its batch is written.
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

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from agentcore.core.event_codec import encode_event
from agentcore.core.events import BaseEvent
from agentcore.core.fold import RunState, apply, diff_states
from agentcore.errors import ConcurrencyError, ConfigError
from agentcore.storage import base, forks
from agentcore.storage.base import NewRun, NewRunOptions, check_batch, status_after
from agentcore.storage.run_ids import check_text
from agentcore.storage.seqs import check_seq
from agentcore.storage.snapshots import decode_snapshot, encode_state
from agentcore.storage.sql_artifacts import SQLArtifactStore
from agentcore.storage.sql_reads import Ancestry, Segment, SQLReads
from agentcore.storage.sql_rows import SQLExecutor
from agentcore.storage.state_cache import StateCache, gc_paused

if TYPE_CHECKING:
    from typing_extensions import Unpack

_Store = TypeVar("_Store", bound="SQLEventStore")

Fence = Callable[[SQLExecutor], "tuple[Any, ...] | None"]
"""A check run first inside a write transaction: it raises (``LeaseLost``) to refuse the write,
which then leaves nothing behind (a work queue's run or step lease that another worker took over).
An append's fence may read and lock the run's row in the same statement and return it
(``APPEND_ROW``'s columns), which saves the append its own ``SELECT ... FOR UPDATE``; else ``None``."""

APPEND_ROW = "last_seq, status, snapshot_seq, snapshot_size, bytes_since_snapshot"
"""The columns of the run's row an append reads (and locks) before writing."""


class SQLEventStore(SQLReads):
    """Runs, events, artifacts and snapshots in a SQL database (the shared part of both stores)."""

    artifacts: SQLArtifactStore
    _DUPLICATE: ClassVar[tuple[type[BaseException], ...]]
    """The driver's error for a key that is already there (a run id, an event seq)."""
    _BODY_BYTES: ClassVar[str] = "length(body)"
    """SQL for the stored size of an event row (the snapshot policy counts it)."""
    _SNAPSHOT_CODEC: ClassVar[Literal["zlib", "xz"]] = "zlib"
    """How snapshot sections are compressed (``storage.snapshots.encode_state``)."""
    _REMEMBER_LOADS: ClassVar[bool] = False
    """Whether ``state_at`` keeps a copy of a latest state it loaded, for the next append's snapshot:
    worth its copy where a worker takes a run over and appends to it (PostgreSQL); on SQLite only
    the appends of this process fill the cache (they remember what they fold)."""

    if TYPE_CHECKING:  # a store with a work queue has it (PostgreSQL's QueueMixin)

        def _enqueue_in(self, conn: Any, run_id: str, spec: str) -> None: ...

    def _init_snapshots(self, snapshot_every: int | None, snapshot_ratio: float) -> None:
        if snapshot_every is not None and (not isinstance(snapshot_every, int) or snapshot_every < 1):
            raise ConfigError(f"snapshot_every must be an int >= 1 or None (no snapshots), got {snapshot_every!r}")
        if not snapshot_ratio >= 0:
            raise ConfigError(f"snapshot_ratio must be >= 0, got {snapshot_ratio!r}")
        self.snapshot_every = snapshot_every
        self.snapshot_ratio = float(snapshot_ratio)
        self._cache = StateCache()

    def _write_events(
        self, conn: SQLExecutor, run_id: str, events: Sequence[BaseEvent], bodies: list[str], run: dict[str, Any]
    ) -> None:
        """Write a checked batch (``bodies``: each event's JSON) and set the run row's columns ``run``
        (column name -> value) in the same ``UPDATE`` that adds the events, where the layout allows."""
        raise NotImplementedError  # pragma: no cover - each store writes its rows

    def _run_update(self, run_id: str, run: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """``UPDATE runs SET`` the columns ``run`` (our constant names) of run ``run_id``: (SQL, params)."""
        sets = ", ".join(f"{column} = ?" for column in run)
        return self.dialect.sql(f"UPDATE runs SET {sets} WHERE id = ?"), (*run.values(), run_id)

    def _stored_snapshot(self, data: bytes | str) -> bytes | str:
        """What goes into ``snapshots.state`` for an encoded state (a store may need bytes)."""
        return data

    # ------------------------------------------------------------------------------------------
    # lifecycle

    def close(self) -> None:
        """Close the connection (idempotent). Later calls raise ``ConfigError``."""
        self._db.close()
        self._cache.clear()

    def __enter__(self: _Store) -> _Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------
    # runs and appends

    def create_run(self, task: str, **options: Unpack[NewRunOptions]) -> str:
        """Add a run and return its id; ``options`` (``NewRunOptions``): ``run_id``, ``created``, and its
        first ``events`` (seqs 1..) and the ``artifacts`` (``(bytes, media_type)``) they refer to,
        written in the same transaction.

        Starting a run with its first event (``RunStarted``) leaves no moment in which the run
        exists without it, whatever kills the process.
        """
        new = base.new_run(options)
        self._insert_run(task, new)
        return new.id

    def _insert_run(self, task: str, new: NewRun, spec: str | None = None, fence: Fence | None = None) -> None:
        """Insert the run's row, artifacts, first events and (``spec``) queue entry in one transaction,
        after the ``fence`` check (a work-queue lease still held) when given."""
        run_id = new.id
        check_text(task, "task")
        try:
            with self._db.transaction(f"create run {run_id!r}") as conn:
                if fence is not None:
                    fence(conn)
                conn.execute(
                    self.dialect.sql(
                        "INSERT INTO runs (id, task, status, created, last_seq) VALUES (?, ?, 'running', ?, 0)"
                    ),
                    (run_id, task, new.created),
                )
                self._cache.remember(run_id, 0, RunState())
                if new.artifacts:
                    self.artifacts.put_many_in(conn, new.artifacts)
                if new.events:
                    self._append_in(conn, run_id, new.events, 0)
                if spec is not None:
                    self._enqueue_in(conn, run_id, spec)
        except self._DUPLICATE:
            self._cache.drop(run_id)
            raise base.taken(run_id, self._db.where) from None
        except BaseException:
            self._cache.drop(run_id)
            raise

    def append(self, run_id: str, events: Sequence[BaseEvent], expected_seq: int) -> int:
        """Append a batch in one transaction and return the run's new last seq.

        Raises:
            ConfigError: the events do not belong to ``run_id`` or do not continue at ``expected_seq + 1``.
            ConcurrencyError: the run's last seq is no longer ``expected_seq``; nothing was written.
            RunNotFound: no such run.
            StorageUnavailable: the database cannot be written (read-only, disk full, I/O error, a
                server gone: if the connection broke during the commit, the batch may or may not
                have committed; re-read the run).
        """
        return self._append(run_id, events, expected_seq)

    def _append(self, run_id: str, events: Sequence[BaseEvent], expected_seq: int, fence: Fence | None = None) -> int:
        """``append``, after the ``fence`` check (a work-queue lease still held) when given."""
        check_batch(run_id, events, expected_seq)
        try:
            with self._db.transaction(f"append {len(events)} event(s) to run {run_id!r}") as conn:
                row = fence(conn) if fence is not None else None
                return self._append_in(conn, run_id, events, expected_seq, row)
        except BaseException:
            self._cache.drop(run_id)
            raise

    def _append_in(
        self, conn: SQLExecutor, run_id: str, events: Sequence[BaseEvent], expected_seq: int,
        row: tuple[Any, ...] | None = None,
    ) -> int:  # fmt: skip
        """The body of ``append`` inside an open write transaction (``row``: the run's ``APPEND_ROW``,
        if the fence already read and locked it)."""
        if row is None:
            row = conn.execute(
                self.dialect.sql(f"SELECT {APPEND_ROW} FROM runs WHERE id = ?" + self.dialect.lock_row), (run_id,)
            ).fetchone()
        if row is None:
            raise self._not_found(run_id)
        last, status, snap_seq, snap_size, since = row
        if last != expected_seq:
            raise base.stale_seq(run_id, expected_seq, last)
        if not events:
            return expected_seq
        new_last = expected_seq + len(events)
        bodies = [encode_event(e) for e in events]
        added = sum(len(b) for b in bodies)
        status = status_after(events, status)
        state = self._cache.advance(run_id, expected_seq, new_last, events)
        due = (
            self.snapshot_every is not None
            and new_last - snap_seq >= self.snapshot_every
            and since + added >= self.snapshot_ratio * snap_size
        )
        blob = self._snapshot(run_id, expected_seq, new_last, events, state) if due else None
        run: dict[str, Any] = {"last_seq": new_last, "status": status, "bytes_since_snapshot": since + added}
        if blob is not None:  # the state after the batch, and the run's snapshot counters reset
            data = self._stored_snapshot(blob[1])
            self._store_snapshot(conn, run_id, new_last, blob[0], data)
            run.update(snapshot_seq=new_last, snapshot_size=len(data), bytes_since_snapshot=0)
        try:
            self._write_events(conn, run_id, events, bodies, run)
        except self._DUPLICATE as e:
            raise ConcurrencyError(
                f"run {run_id!r}: seqs {expected_seq + 1}..{new_last} were already written; re-read and retry"
            ) from e
        return new_last

    def _store_snapshot(self, conn: SQLExecutor, run_id: str, seq: int, encoding: str, data: bytes | str) -> None:
        """Write one snapshot row (PostgreSQL keeps its own layout: ``postgres.segments``)."""
        conn.execute(
            self.dialect.sql(
                "INSERT INTO snapshots (run_id, seq, encoding, size, state) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, seq) DO UPDATE SET encoding = excluded.encoding, size = excluded.size, "
                "state = excluded.state"
            ),
            (run_id, seq, encoding, len(data), data),
        )

    # ------------------------------------------------------------------------------------------
    # snapshots

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
            self._cache.remember(run_id, new_last, state)
        return encode_state(state, codec=self._SNAPSHOT_CODEC)

    # ------------------------------------------------------------------------------------------
    # states

    def state_at(self, run_id: str, seq: int | None = None) -> RunState:
        """The state after event ``seq`` (the latest by default): ``fold(read(run_id, upto=seq))``.

        Costs one snapshot load plus the events after it. The result is the caller's to change.
        """
        if seq is not None:
            check_seq(seq, "seq")
        if seq is not None and seq < 0:
            raise ConfigError(f"seq must be >= 0, got {seq}")
        with self._db.lock:
            known = self._ancestry(run_id)
            latest = known[0].last_seq
            target = latest if seq is None else min(seq, latest)
            hit = self._cache.at(run_id, target)
            if hit is not None:
                return hit.clone()
            state = self._load_state(run_id, target, known)
            if self._REMEMBER_LOADS and target == latest:
                self._cache.remember(run_id, target, state.clone())
            return state

    def _load_state(self, run_id: str, seq: int, known: Ancestry | None = None) -> RunState:
        """The state at ``seq``: the newest snapshot at or before it, then the events after it (the
        ancestry is read once: ``known``)."""
        known = known if known is not None else self._ancestry(run_id)
        snap = self._best_snapshot(run_id, seq, chain=known[1])
        with gc_paused():
            if snap is None:
                state = RunState()
            else:
                chain = {link.id for link in known[1]} | {run_id}
                state = decode_snapshot(snap[1], snap[2], seq=snap[0], run_ids=chain)
            _, segments = self._segments(run_id, snap[0] if snap is not None else 0, seq, known)
            for row in self._rows(segments, self._EVENT_COLUMNS):
                apply(state, self._decode_row(row))
        return state

    def diff(self, run_id: str, a: int, b: int) -> list[dict[str, Any]]:
        """RFC 6902 operations turning the state at seq ``a`` into the state at seq ``b``."""
        check_seq(a, "a")
        check_seq(b, "b")
        return diff_states(self.state_at(run_id, a), self.state_at(run_id, b))

    # ------------------------------------------------------------------------------------------
    # forks and snapshots

    def fork(
        self, run_id: str, at_seq: int, *, new_run_id: str | None = None, events: Sequence[BaseEvent] = (),
        created: datetime | None = None,
    ) -> str:
        """A new run that shares ``run_id``'s events up to ``at_seq`` (no event is copied), then its own
        ``events`` (seqs ``at_seq + 1 ..``) in the same transaction; ``created``: now by default."""
        new_id, when = base.new_fork(new_run_id, at_seq, events, created)
        with self._db.lock:
            info, chain = self._ancestry(run_id)
            forks.check_fork_range(run_id, at_seq, info.last_seq)
            forks.check_fork_point(run_id, [(h.seq, h.type, h.caused_by) for h in self.history(run_id)], at_seq)
            # the fork's cached status follows the same rules as the fold (waiting_for_user included)
            state = self.state_at(run_id, at_seq)
            snap = self._best_snapshot(run_id, at_seq, chain=chain, blob=False)
            snap_seq, snap_size = (snap[0], snap[3]) if snap is not None else (0, 0)
            since = self._event_bytes(self._segments(run_id, snap_seq, at_seq, (info, chain))[1])
            try:
                with self._db.transaction(f"fork run {run_id!r} at seq {at_seq}") as conn:
                    conn.execute(
                        self.dialect.sql(
                            "INSERT INTO runs (id, task, status, created, parent_run_id, forked_at_seq, last_seq, "
                            "snapshot_seq, snapshot_size, bytes_since_snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        ),
                        (new_id, info.task, state.status, when, run_id, at_seq, at_seq, snap_seq, snap_size, since),
                    )
                    if events:
                        self._cache.remember(new_id, at_seq, state)
                        self._append_in(conn, new_id, events, at_seq)
            except self._DUPLICATE:
                self._cache.drop(new_id)
                raise base.taken(new_id, self._db.where) from None
            except BaseException:
                self._cache.drop(new_id)
                raise
        return new_id

    def _event_bytes(self, segments: list[Segment]) -> int:
        """The stored size (``_BODY_BYTES``) of the events in ``segments``."""
        sql = self.dialect.sql(
            f"SELECT COALESCE(SUM({self._BODY_BYTES}), 0) FROM events WHERE run_id = ? AND seq > ? AND seq <= ?"
        )
        total = 0
        for seg in segments:
            got = self._db.one(sql, tuple(seg), f"measure the events of run {seg.run_id!r}")
            total += int(got[0]) if got else 0
        return total

    def delete_snapshots(self, run_id: str | None = None) -> int:
        """Delete the snapshots of one run (or of all runs) and return how many went.

        Snapshots are a cache: no state changes, only ``state_at`` gets slower until new ones
        are written. The in-process cache of latest states is dropped too.
        """
        reset = "UPDATE runs SET snapshot_seq = 0, snapshot_size = 0, bytes_since_snapshot = 0"
        with self._db.transaction("delete snapshots") as conn:
            if run_id is None:
                n = conn.execute("DELETE FROM snapshots").rowcount
                conn.execute(reset)
            else:
                if conn.execute(self.dialect.sql("SELECT 1 FROM runs WHERE id = ?"), (run_id,)).fetchone() is None:
                    raise self._not_found(run_id)
                n = conn.execute(self.dialect.sql("DELETE FROM snapshots WHERE run_id = ?"), (run_id,)).rowcount
                conn.execute(self.dialect.sql(reset + " WHERE id = ?"), (run_id,))
            self._cache.clear()
        return n

    def snapshot_stats(self, run_id: str | None = None) -> dict[str, int]:
        """Counts and bytes of snapshots and event bodies (all runs, or one run's own rows)."""
        where, params = (self.dialect.sql("WHERE run_id = ?"), (run_id,)) if run_id is not None else ("", ())
        of = "every run" if run_id is None else f"run {run_id!r}"
        snaps = self._db.one(f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM snapshots {where}", params, f"count the snapshots of {of}")
        events = self._db.one(
            f"SELECT COUNT(*), COALESCE(SUM({self._BODY_BYTES}), 0) FROM events {where}", params, f"count the events of {of}"
        )
        assert snaps is not None and events is not None
        return {
            "snapshots": int(snaps[0]), "snapshot_bytes": int(snaps[1]),
            "events": int(events[0]), "event_bytes": int(events[1]),
        }  # fmt: skip
