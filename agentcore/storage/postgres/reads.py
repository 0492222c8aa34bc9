"""Reading a PostgreSQL store's log: fork ancestry, event ranges, headers, counts and snapshots.

A fork's row points at its parent and ``forked_at_seq`` (no event is copied), so every read first
takes the run's ancestry in one recursive query, then reads each ancestor's range of seqs, oldest
first, in pages of ``PAGE`` rows. Each read is one statement (one round trip, see
``PgConnection.statement``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from agentcore.core.event_codec import decode_event
from agentcore.core.events import Event
from agentcore.errors import RunNotFound
from agentcore.storage import base
from agentcore.storage.base import RunInfo
from agentcore.storage.sql_rows import RUN_COLUMNS, run_info
from agentcore.storage.sqlite.reads import PAGE, EventHeader

if TYPE_CHECKING:
    from agentcore.storage.postgres.connection import PgConnection

class _Link(NamedTuple):
    """One run of a fork ancestry: its own events are seqs ``forked_at_seq + 1 ..``."""

    id: str
    parent: str | None
    forked_at: int


class ReadsMixin:
    """The read side of ``PostgresEventStore`` (it shares the store's connection pool)."""

    _db: PgConnection

    def _not_found(self, run_id: str) -> RunNotFound:
        raise NotImplementedError  # pragma: no cover - implemented by the store

    def _ancestry(self, run_id: str) -> tuple[RunInfo, list[_Link]]:
        """The run's row and its fork chain (itself first, then parent, grandparent, ...), in one query."""
        rows = self._db.query(
            f"""WITH RECURSIVE chain(id, parent_run_id, forked_at_seq, depth) AS (
                    SELECT id, parent_run_id, forked_at_seq, 0 FROM runs WHERE id = %s
                    UNION ALL
                    SELECT r.id, r.parent_run_id, r.forked_at_seq, c.depth + 1
                    FROM runs r JOIN chain c ON r.id = c.parent_run_id)
                SELECT c.id, c.parent_run_id, COALESCE(c.forked_at_seq, 0),
                       {", ".join("r." + c.strip() for c in RUN_COLUMNS.split(","))}
                FROM chain c JOIN runs r ON r.id = %s ORDER BY c.depth""",
            (run_id, run_id),
        )
        if not rows:
            raise self._not_found(run_id)
        return run_info(rows[0][3:]), [_Link(r[0], r[1], r[2]) for r in rows]

    def _segments(
        self, run_id: str, after: int, upto: int | None, known: tuple[RunInfo, list[_Link]] | None = None
    ) -> tuple[RunInfo, list[tuple[str, int, int]]]:
        """The (run, after, upto] ranges to read, oldest ancestor first (``known``: the ancestry, if read)."""
        info, chain = known if known is not None else self._ancestry(run_id)
        hi = info.last_seq if upto is None else min(upto, info.last_seq)
        segments = []
        for link in chain:
            lo = max(after, link.forked_at)
            if hi > lo:
                segments.append((link.id, lo, hi))
            if hi <= after:
                break
            hi = min(hi, link.forked_at)
        segments.reverse()
        return info, segments

    def _rows(self, segments: list[tuple[str, int, int]], columns: str) -> Iterator[tuple[Any, ...]]:
        for run, after, upto in segments:
            lo = after
            while lo < upto:
                page = self._db.query(
                    f"SELECT seq, {columns} FROM events WHERE run_id = %s AND seq > %s AND seq <= %s "
                    "ORDER BY seq LIMIT %s",
                    (run, lo, upto, PAGE),
                )
                if not page:
                    break
                yield from page
                lo = page[-1][0]

    def read(self, run_id: str, *, after: int = 0, upto: int | None = None) -> Iterator[Event]:
        """Stream a run's events with ``after < seq <= upto`` in seq order (a fork: its parent's first)."""
        _, segments = self._segments(run_id, after, upto)
        return (decode_event(row[1]) for row in self._rows(segments, "body::text"))

    def history(self, run_id: str, *, after: int = 0, upto: int | None = None) -> Iterator[EventHeader]:
        """Stream ``(run_id, seq, type, at, caused_by)`` for each event without reading bodies."""
        _, segments = self._segments(run_id, after, upto)
        return (
            EventHeader(run_id=row[1], seq=row[0], type=row[2], at=row[3], caused_by=row[4])
            for row in self._rows(segments, "run_id, type, at, caused_by")
        )

    def run_stats(self, run_id: str) -> base.RunStats:
        """Event count, first and last ``at`` and total tokens of a run (a fork: its parent's prefix
        too), in one statement of SQL aggregates: no event is decoded in Python (``agentcore runs``)."""
        _, segments = self._segments(run_id, 0, None)
        if not segments:
            return base.RunStats(0, None, None, 0)
        (first, lo, _), (last, _, hi) = segments[0], segments[-1]
        row = self._db.one(
            "WITH seg AS (SELECT * FROM unnest(%s::text[], %s::int[], %s::int[]) AS s(run_id, lo, hi)) "
            "SELECT count(*), COALESCE(sum(CASE WHEN e.type = 'llm_called' "
            "THEN (e.body -> 'usage' ->> 'total_tokens')::bigint END), 0), "
            "(SELECT at FROM events WHERE run_id = %s AND seq > %s ORDER BY seq LIMIT 1), "
            "(SELECT at FROM events WHERE run_id = %s AND seq <= %s ORDER BY seq DESC LIMIT 1) "
            "FROM seg JOIN events e ON e.run_id = seg.run_id AND e.seq > seg.lo AND e.seq <= seg.hi",
            ([r for r, _, _ in segments], [a for _, a, _ in segments], [b for _, _, b in segments],
             first, lo, last, hi),
            f"count the events of run {run_id!r}",
        )  # fmt: skip
        assert row is not None and row[2] is not None and row[3] is not None
        return base.RunStats(int(row[0]), datetime.fromisoformat(row[2]), datetime.fromisoformat(row[3]), int(row[1]))

    def _best_snapshot(self, chain: list[_Link], seq: int) -> tuple[int, str, bytes, int] | None:
        hi = seq
        for link in chain:
            if hi > link.forked_at:
                row = self._db.one(
                    "SELECT seq, encoding, state, size FROM snapshots WHERE run_id = %s AND seq > %s AND seq <= %s "
                    "ORDER BY seq DESC LIMIT 1",
                    (link.id, link.forked_at, hi),
                )
                if row is not None:
                    return row
            hi = min(hi, link.forked_at)
        return None
