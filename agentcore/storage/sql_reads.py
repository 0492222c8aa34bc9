"""Reading a SQL store's log (SQLite and PostgreSQL alike): fork ancestry, event ranges, headers
and snapshots.

A fork's row points at its parent and ``forked_at_seq`` (no event is copied), so a read first takes
the run's ancestry in one recursive query, then reads each ancestor's range of seqs, oldest first,
in pages of ``PAGE`` rows, from indexed columns where the body is not needed. How an event row
becomes an event is the store's (``_EVENT_COLUMNS``, ``_decode_row``): the two databases may keep
event rows differently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from agentcore.core.event_codec import decode_event
from agentcore.core.events import Event
from agentcore.errors import DamagedDatabase, EventError, UnknownEventType, UnsupportedEventVersion
from agentcore.storage.base import RunInfo
from agentcore.storage.seqs import check_range
from agentcore.storage.sql_rows import RUN_COLUMNS, RunRows, run_info

PAGE = 1000
"""Events fetched per query while streaming a read."""


class EventHeader(NamedTuple):
    """One line of a run's history, read from indexed columns only (no body is decoded)."""

    run_id: str
    seq: int
    type: str
    at: str
    caused_by: int | None


def damaged_log(run_id: str, what: str) -> DamagedDatabase:
    """The error for a run's log that was changed outside agentcore (rows deleted or rewritten)."""
    return DamagedDatabase(
        f"the log of run {run_id!r} is damaged: {what}. It was changed outside agentcore; restore the "
        "database from a backup (or the run from an exported trace)"
    )


def _run_of(body: Any) -> str:
    """The run id a damaged event body names, for the error (``"?"`` if it names none)."""
    try:
        value = json.loads(body).get("run_id") if isinstance(body, (str, bytes)) else None
    except (ValueError, AttributeError, RecursionError):  # not JSON, not an object, nested past the stack
        value = None
    return value if isinstance(value, str) else "?"


def missing_event(run_id: str, seq: int, upto: int) -> DamagedDatabase:
    """``damaged_log`` for a run whose event ``seq`` is missing while its log goes to ``upto``."""
    return damaged_log(run_id, f"it has no event at seq {seq}, though its log goes to seq {upto}")


def event_time(run_id: str, value: Any) -> datetime:
    """An event's ``at`` as read from its row (ISO 8601 text); ``damaged_log`` if it is not one."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):  # rewritten by hand: the column (or, on PostgreSQL, the body) is text
        raise damaged_log(run_id, f"an event's time {str(value)[:40]!r} is not an ISO 8601 time") from None


class Link(NamedTuple):
    """One run of a fork ancestry: its own events are seqs ``forked_at + 1 ..``."""

    id: str
    parent: str | None
    forked_at: int


class Segment(NamedTuple):
    """Seqs ``after < seq <= upto`` of one run's own events."""

    run_id: str
    after: int
    upto: int


Ancestry = tuple[RunInfo, list[Link]]
"""A run's row and its fork chain (itself first, then its parent, grandparent, ...)."""

_ANCESTRY = f"""WITH RECURSIVE chain(id, parent_run_id, forked_at_seq, depth) AS (
        SELECT id, parent_run_id, forked_at_seq, 0 FROM runs WHERE id = ?
        UNION ALL
        SELECT r.id, r.parent_run_id, r.forked_at_seq, c.depth + 1
        FROM runs r JOIN chain c ON r.id = c.parent_run_id)
    SELECT c.id, c.parent_run_id, COALESCE(c.forked_at_seq, 0),
           {", ".join("r." + c.strip() for c in RUN_COLUMNS.split(","))}
    FROM chain c JOIN runs r ON r.id = ? ORDER BY c.depth"""


class SQLReads(RunRows):
    """The read side of a SQL event store (it shares the store's connection)."""

    _EVENT_COLUMNS = "body"
    """The columns of an event row that ``_decode_row`` reads (after ``seq``)."""

    def _decode_row(self, row: tuple[Any, ...]) -> Event:
        """The event of a row of ``seq, _EVENT_COLUMNS``; ``DamagedDatabase`` (naming the run and seq) if its
        body is not a valid event or holds another seq (a row rewritten outside agentcore);
        ``UnsupportedEventVersion`` as it is if a newer agentcore wrote it."""
        try:
            event = decode_event(row[1])
        except UnsupportedEventVersion:
            raise  # written by a newer agentcore: its message says to upgrade
        except EventError as e:  # a body rewritten outside agentcore (agentcore validates what it writes)
            newer = (
                " (if a newer agentcore wrote this run, upgrade agentcore)" if isinstance(e, UnknownEventType) else ""
            )
            raise damaged_log(
                _run_of(row[1]), f"its event row at seq {row[0]} is not a valid event ({e}){newer}"
            ) from None
        if event.seq != row[0]:
            raise damaged_log(event.run_id, f"its event row at seq {row[0]} holds the event of seq {event.seq}")
        return event

    def _ancestry(self, run_id: str) -> Ancestry:
        """The run's row and its fork chain, in one query; ``RunNotFound`` if absent."""
        rows = self._db.query(self.dialect.sql(_ANCESTRY), (run_id, run_id))
        if not rows:
            raise self._not_found(run_id)
        return run_info(rows[0][3:]), [Link(r[0], r[1], r[2]) for r in rows]

    def _segments(
        self, run_id: str, after: int, upto: int | None, known: Ancestry | None = None
    ) -> tuple[RunInfo, list[Segment]]:
        """The (run, after, upto] ranges to read, oldest ancestor first (``known``: the ancestry, if read)."""
        info, chain = known if known is not None else self._ancestry(run_id)
        hi = info.last_seq if upto is None else min(upto, info.last_seq)
        segments = []
        for link in chain:
            lo = max(after, link.forked_at)
            if hi > lo:
                segments.append(Segment(link.id, lo, hi))
            if hi <= after:
                break
            hi = min(hi, link.forked_at)
        segments.reverse()
        return info, segments

    def _rows(self, segments: list[Segment], columns: str) -> Iterator[tuple[Any, ...]]:
        """Rows of ``seq, columns`` over the segments in seq order, a page per query."""
        sql = self.dialect.sql(
            f"SELECT seq, {columns} FROM events WHERE run_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
        )
        for seg in segments:
            lo = seg.after
            while lo < seg.upto:
                page = self._db.query(sql, (seg.run_id, lo, seg.upto, PAGE))
                for row in page:
                    if row[0] != lo + 1:
                        break
                    lo = row[0]
                    yield row
                else:
                    if page:
                        continue
                raise missing_event(seg.run_id, lo + 1, seg.upto)

    def read(self, run_id: str, *, after: int = 0, upto: int | None = None) -> Iterator[Event]:
        """Stream a run's events with ``after < seq <= upto`` in seq order (a fork: its parent's first).

        The run is looked up at once (``RunNotFound``); events are fetched a page at a time, so
        no read holds the database against writers and memory stays bounded.
        """
        check_range(after, upto)
        _, segments = self._segments(run_id, after, upto)
        return (self._decode_row(row) for row in self._rows(segments, self._EVENT_COLUMNS))

    def history(self, run_id: str, *, after: int = 0, upto: int | None = None) -> Iterator[EventHeader]:
        """Stream ``(run_id, seq, type, at, caused_by)`` for each event without reading bodies."""
        check_range(after, upto)
        _, segments = self._segments(run_id, after, upto)
        return (
            EventHeader(run_id=row[1], seq=row[0], type=row[2], at=row[3], caused_by=row[4])
            for row in self._rows(segments, "run_id, type, at, caused_by")
        )

    def _best_snapshot(
        self, run_id: str, seq: int, *, chain: list[Link] | None = None, blob: bool = True
    ) -> tuple[int, str, Any, int] | None:
        """The newest snapshot at or below ``seq`` in the run's chain: ``(seq, encoding, state, size)``
        (``state`` is ``None`` unless ``blob``; ``chain``: the ancestry, if read)."""
        chain = chain if chain is not None else self._ancestry(run_id)[1]
        sql = self.dialect.sql(
            f"SELECT seq, encoding, {'state' if blob else 'NULL'}, size FROM snapshots "
            "WHERE run_id = ? AND seq > ? AND seq <= ? ORDER BY seq DESC LIMIT 1"
        )
        hi = seq
        for link in chain:
            if hi > link.forked_at:
                row = self._db.one(sql, (link.id, link.forked_at, hi))
                if row is not None:
                    return row
            hi = min(hi, link.forked_at)
        return None
