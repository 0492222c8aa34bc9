"""The event store on a PostgreSQL server: runs, events, artifacts, snapshots and the work queue.

The store itself is ``storage.sql_store.SQLEventStore``, shared with SQLite (one contract suite
checks both): appends are atomic and ordered (the transaction locks the run's row with
``SELECT ... FOR UPDATE`` and checks its last seq, so a racing writer, in this process or on
another machine, gets ``ConcurrencyError`` and nothing of its batch is written); forks are
copy-free; snapshots are a cache written by the same policy. This module adds the server: the
connection pool, the schema, how PostgreSQL writes and reads events (in compressed segments, with
the snapshots in the same table: ``storage.postgres.segments``), and the queue.

Errors: a server that is down, refuses the credentials or goes away mid-run gives
``StorageUnavailable`` saying what happened and what to do; the URL's password is never shown.

Runs may also be queued for workers (``submit``; see ``storage.postgres.queue``): appends made
under a lease carry its token and are refused once another worker holds the run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from agentcore.core.events import BaseEvent
from agentcore.core.fold import RunState, apply
from agentcore.errors import ConfigError, StorageUnavailable
from agentcore.storage.base import RunInfo, RunStats
from agentcore.storage.postgres import loads
from agentcore.storage.postgres.artifacts import PostgresArtifactStore
from agentcore.storage.postgres.connection import PgConnection
from agentcore.storage.postgres.loads import RowsLoad, events_of, rows_load
from agentcore.storage.postgres.migrations import ensure_schema
from agentcore.storage.postgres.pooling import use_prepared
from agentcore.storage.postgres.queue import QUEUED_RUN_ROWS, QueueMixin
from agentcore.storage.postgres.segments import SEGMENT_PAGE, SEGMENTS_OF, add_events, elements, write_snapshot
from agentcore.storage.postgres.steps import StepQueueMixin
from agentcore.storage.schema import POSTGRES
from agentcore.storage.seqs import check_seq
from agentcore.storage.snapshots import check_snapshot_run, decode_snapshot
from agentcore.storage.sql_reads import Ancestry, Segment, damaged_log, event_time, missing_event
from agentcore.storage.sql_rows import SQLExecutor
from agentcore.storage.sql_store import SQLEventStore
from agentcore.storage.state_cache import gc_paused

_ROOTS_KEPT = 4096
"""How many forks' roots ``_check_root`` remembers (all are forgotten when it is full)."""


class PostgresEventStore(SQLEventStore, QueueMixin, StepQueueMixin):
    """Runs, events, artifacts, snapshots and the work queue in a PostgreSQL database.

    Args:
        url: ``postgresql://user:password@host:port/dbname`` (any libpq connection string works).
            The database must exist; its schema is created or upgraded on first use.
        snapshot_every: Fewest events between two snapshots; ``None`` writes no snapshots.
        snapshot_ratio: Event bytes needed since the last snapshot, as a multiple of its size.
        max_connections: Size of the connection pool (threads of one process share it).
        connect_timeout_s: How long to wait for the server before ``StorageUnavailable``.
        prepared_statements: ``False`` behind a connection pooler in transaction mode (PgBouncer's
            ``pool_mode = transaction``): nothing is prepared or set on a server session, and
            ``listen`` polls instead of ``LISTEN`` (``storage.postgres.pooling``). ``None`` (the
            default): ``$AGENTCORE_PG_PREPARED`` (``0`` is off), else on.
        pool: ``False`` for a one-shot command (the CLI's inspection commands): one connection,
            made at once, instead of a pool (no second connection, no pool threads; threads of the
            process take turns on it); ``max_connections`` is then ignored.

    Raises:
        StorageUnavailable: the server is down, refuses the credentials, or the database is absent.
        NotAnAgentcoreDatabase: the schema holds another application's tables.
        SchemaTooNew: a newer agentcore wrote it. In both cases nothing is changed.
        ConfigError: invalid settings; behind a pooler in transaction mode with prepared statements
            on, any call that meets psycopg's ``_pg3_N`` statements there (the message names
            ``AGENTCORE_PG_PREPARED``).
    """

    dialect = POSTGRES
    _db: PgConnection
    _DUPLICATE = (pg_errors.UniqueViolation,)
    _BODY_BYTES = "octet_length(body::text)"
    _EVENT_COLUMNS = "body::text"
    _REMEMBER_LOADS = True
    _RUN_ROWS = QUEUED_RUN_ROWS
    _SNAPSHOT_CODEC = "xz"

    def __init__(
        self,
        url: str,
        *,
        snapshot_every: int | None = 100,
        snapshot_ratio: float = 0.5,
        max_connections: int = 4,
        connect_timeout_s: float = 10.0,
        prepared_statements: bool | None = None,
        pool: bool = True,
    ) -> None:
        self._init_snapshots(snapshot_every, snapshot_ratio)
        self._db = PgConnection(
            url, max_size=max_connections, connect_timeout_s=connect_timeout_s,
            prepared=(loads.STATE_ROWS,), prepared_statements=use_prepared(prepared_statements), pool=pool,
        )  # fmt: skip
        self.where = self._db.where
        try:
            with self._db.connection(timeout=connect_timeout_s) as conn:
                try:
                    ensure_schema(conn, self.where)
                except pg_errors.InsufficientPrivilege as e:
                    raise self._no_privilege(conn.info.user, conn.info.dbname, e) from None
        except psycopg.Error as e:
            self._db.close()
            raise self._db.lost(e, "create the agentcore schema") from None
        except BaseException:
            self._db.close()
            raise
        self.artifacts = PostgresArtifactStore(self._db)
        self._roots: dict[str, str] = {}
        """The root run of each fork of a fork whose snapshot named it (``_check_root``)."""

    def _no_privilege(self, user: str, dbname: str, e: psycopg.Error) -> StorageUnavailable:
        text = " ".join(self._db.scrub(str(e)).split())
        role = user if re.fullmatch(r"[a-z_][a-z0-9_$]*", user) else '"' + user.replace('"', '""') + '"'
        return StorageUnavailable(
            f"the role {user!r} may not create agentcore's tables in database {dbname!r} on {self.where} ({text}). "
            f"Connect as the database's owner (`createdb -O {user} NAME` makes {user} the owner of a new one), or "
            f"have the owner run `GRANT CREATE ON SCHEMA public TO {role}` once (since PostgreSQL 15 only the "
            "owner may create tables there by default); nothing was written."
        )

    @property
    def read_only(self) -> bool:
        """Always ``False``: a PostgreSQL store writes (use a read-only database role to inspect)."""
        return False

    def __repr__(self) -> str:
        return f"PostgresEventStore({self.where!r})"

    def _write_events(
        self, conn: SQLExecutor, run_id: str, events: Sequence[BaseEvent], bodies: list[str], run: dict[str, Any]
    ) -> None:
        add_events(conn, run_id, events[0].seq, bodies, run)

    def _stored_snapshot(self, data: bytes | str) -> bytes | str:
        return data.encode("utf-8") if isinstance(data, str) else data  # the column is BYTEA

    def _store_snapshot(self, conn: SQLExecutor, run_id: str, seq: int, encoding: str, data: bytes | str) -> None:
        write_snapshot(conn, run_id, seq, encoding, data)

    def state_at(self, run_id: str, seq: int | None = None) -> RunState:
        """The state after event ``seq`` (the latest by default): ``fold(read(run_id, upto=seq))``.

        One statement (``postgres.loads.STATE_ROWS``) reads the run's row, its snapshot and the
        events after it; a fork read from its parent's part takes the general way. A latest state
        is remembered for the next append's snapshot as how to build it again (no copy unless used).
        The result is the caller's to change.
        """
        if seq is not None:
            check_seq(seq, "seq")
        if seq is not None and seq < 0:
            raise ConfigError(f"seq must be >= 0, got {seq}")
        info, load = self._fetch_load(run_id, seq)
        target = info.last_seq if seq is None else min(seq, info.last_seq)
        hit = self._cache.at(run_id, target)
        if hit is not None:
            return hit.clone()
        if load is None:
            state = super()._load_state(run_id, target)
            if target == info.last_seq:
                self._cache.remember(run_id, target, state.clone())
            return state
        parent = info.parent_run_id
        state = self._fold_load(run_id, load, parent)
        if target == info.last_seq:
            if load.more_after is None:
                self._cache.remember_lazy(run_id, target, lambda: self._fold_load(run_id, load, parent))
            else:
                self._cache.remember(run_id, target, state.clone())
        return state

    def _fetch_load(self, run_id: str, seq: int | None) -> tuple[RunInfo, RowsLoad | None]:
        """The run's row and what ``STATE_ROWS`` gives for its state at ``seq`` (``None``: the
        general way is needed); ``RunNotFound`` if there is no such run."""
        if "\0" in run_id:  # libpq would cut the parameter at the NUL; no run id holds one (base.no_nul)
            raise self._not_found(run_id)
        raw, encoding = self._db.run_prepared(
            loads.STATE_ROWS, loads.params(run_id, seq, SEGMENT_PAGE), f"load the state of run {run_id!r}"
        )
        rows = loads.decoded(raw, encoding)
        if not rows:
            raise self._not_found(run_id)
        return rows_load(rows, seq, SEGMENT_PAGE)

    def _load_state(self, run_id: str, seq: int, known: Ancestry | None = None) -> RunState:
        """The state at ``seq`` (an append's snapshot when no state is remembered): by ``STATE_ROWS``
        when it answers, else the general way."""
        info, load = self._fetch_load(run_id, seq)
        if load is None:
            return super()._load_state(run_id, seq, known)
        return self._fold_load(run_id, load, info.parent_run_id)

    def _fold_load(self, run_id: str, load: RowsLoad, parent: str | None) -> RunState:
        """The state a ``STATE_ROWS`` answer describes: its snapshot, then its events (and, when its
        page of segments was full, the rest read from the database). ``parent``: the run's parent
        when it is a fork, whose states carry its root's run id: its parent's for a fork of a root,
        else (a fork of a fork) one the answer does not name, checked against the run's ancestry."""
        with gc_paused():
            state = (
                decode_snapshot(
                    load.snapshot[1], load.snapshot[2], seq=load.snapshot[0], run_ids=(run_id,) if parent is None else None
                )
                if load.snapshot is not None
                else RunState()
            )
            if parent is not None and load.snapshot is not None and state.run_id not in ("", run_id, parent):
                self._check_root(run_id, state, load.snapshot[0])
            for element in events_of(load):
                if element[0] != state.last_seq + 1:
                    raise missing_event(run_id, state.last_seq + 1, load.target)
                apply(state, self._decode_row(element))
            if load.more_after is not None:
                rest = [Segment(run_id, load.more_after, load.target)]
                for row in self._rows(rest, self._EVENT_COLUMNS):
                    apply(state, self._decode_row(row))
        if state.last_seq != load.target:
            raise missing_event(run_id, state.last_seq + 1, load.target)
        return state

    def _check_root(self, run_id: str, state: RunState, seq: int) -> None:
        """``DamagedDatabase`` unless ``state`` (a fork of a fork's snapshot at ``seq``) is of one of the
        run's ancestors: read once per run and root (a run's ancestry never changes), then remembered."""
        if self._roots.get(run_id) == state.run_id:
            return
        check_snapshot_run(state, seq, [link.id for link in self._ancestry(run_id)[1]])
        if len(self._roots) >= _ROOTS_KEPT:
            self._roots.clear()
        self._roots[run_id] = state.run_id

    def _rows(self, segments: list[Segment], columns: str) -> Iterator[tuple[Any, ...]]:
        """``(seq, body)`` (``columns`` = ``_EVENT_COLUMNS``) or ``(seq, run_id, type, at, caused_by)``
        (a history) of each event of the ranges, in seq order, read a few segments per query and
        split in Python (``postgres.segments``)."""
        bodies = columns == self._EVENT_COLUMNS
        for seg in segments:
            lo = seen = seg.after
            while lo < seg.upto:
                page = self._db.query(
                    SEGMENTS_OF, {"run": seg.run_id, "after": lo, "upto": seg.upto, "page": SEGMENT_PAGE}
                )
                if not page:
                    raise missing_event(seg.run_id, seen + 1, seg.upto)
                for first, last, text in page:
                    for seq, body, kind, at, caused_by in elements(text, first, last):
                        if lo < seq <= seg.upto:
                            if seq != seen + 1:
                                raise missing_event(seg.run_id, seen + 1, seg.upto)
                            seen = seq
                            yield (seq, body) if bodies else (seq, seg.run_id, kind, at, caused_by)
                lo = max(lo, min(page[-1][1], seg.upto))

    def run_stats(self, run_id: str) -> RunStats:
        """Event count, first and last ``at`` and total tokens of a run (a fork: its parent's prefix
        too), in one statement of SQL aggregates: no event is decoded in Python (``agentcore runs``)."""
        _, segments = self._segments(run_id, 0, None)
        if not segments:
            return RunStats(0, None, None, 0)
        (first, lo, _), (last, _, hi) = segments[0], segments[-1]
        row = self._db.one(
            "WITH seg AS (SELECT * FROM unnest(%s::text[], %s::int[], %s::int[]) AS s(run_id, lo, hi)) "
            "SELECT count(*), COALESCE(sum(CASE WHEN e.type = 'llm_called' "
            f"THEN ({POSTGRES.visible('e.body')} -> 'usage' ->> 'total_tokens')::numeric END), 0), "
            "(SELECT at FROM events WHERE run_id = %s AND seq > %s ORDER BY seq LIMIT 1), "
            "(SELECT at FROM events WHERE run_id = %s AND seq <= %s ORDER BY seq DESC LIMIT 1) "
            "FROM seg JOIN events e ON e.run_id = seg.run_id AND e.seq > seg.lo AND e.seq <= seg.hi",
            ([s.run_id for s in segments], [s.after for s in segments], [s.upto for s in segments],
             first, lo, last, hi),
            f"count the events of run {run_id!r}",
        )  # fmt: skip
        expected = sum(s.upto - s.after for s in segments)
        if row is None or row[2] is None or row[3] is None or int(row[0]) != expected:  # rows changed by hand
            raise damaged_log(run_id, f"its rows hold {0 if row is None else row[0]} events, its log {expected}")
        return RunStats(int(row[0]), event_time(run_id, row[2]), event_time(run_id, row[3]), int(row[1]))


__all__ = ("PostgresEventStore",)
