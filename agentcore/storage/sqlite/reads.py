"""Reading a SQLite store's log: fork chains, event ranges, headers, counts and snapshots.

A fork's row points at its parent and ``forked_at_seq`` (no event is copied), so a read walks the
run's chain up to the root and reads each ancestor's range of seqs, oldest first, in pages of
``PAGE`` rows, from indexed columns where the body is not needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from agentcore.core.event_codec import decode_event
from agentcore.core.events import Event
from agentcore.storage.base import RunInfo, RunStats
from agentcore.storage.sqlite.connection import SQLiteConnection

PAGE = 1000
"""Events fetched per query while streaming a read."""




class EventHeader(NamedTuple):
    """One line of a run's history, read from indexed columns only (no body is decoded)."""

    run_id: str
    seq: int
    type: str
    at: str
    caused_by: int | None


class _Segment(NamedTuple):
    run_id: str
    after: int
    upto: int


class SQLiteReads:
    """The read side of ``SQLiteEventStore`` (it shares the store's connection)."""

    _db: SQLiteConnection

    if TYPE_CHECKING:  # the store's (RunRows): a stub here would shadow it

        def run(self, run_id: str) -> RunInfo: ...

    def _chain(
        self, run_id: str, after: int, upto: int | None, info: RunInfo | None = None
    ) -> tuple[RunInfo, list[_Segment]]:
        """The (run, after, upto] ranges to read, parent first, for a run and its fork ancestry
        (``info``: the run's row when the caller has just read it)."""
        info = info or self.run(run_id)
        hi = info.last_seq if upto is None else min(upto, info.last_seq)
        segments: list[_Segment] = []
        current = info
        while True:
            own_from = current.forked_at_seq or 0
            lo = max(after, own_from)
            if hi > lo:
                segments.append(_Segment(current.id, lo, hi))
            if current.parent_run_id is None or hi <= after:
                break
            hi = min(hi, own_from)
            current = self.run(current.parent_run_id)
        segments.reverse()
        return info, segments

    def _rows(self, segments: list[_Segment], columns: str) -> Iterator[tuple[Any, ...]]:
        for seg in segments:
            lo = seg.after
            while lo < seg.upto:
                page = self._db.query(
                    f"SELECT seq, {columns} FROM events WHERE run_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                    (seg.run_id, lo, seg.upto, PAGE),
                )
                if not page:
                    break
                yield from page
                lo = page[-1][0]

    def read(self, run_id: str, *, after: int = 0, upto: int | None = None) -> Iterator[Event]:
        """Stream a run's events with ``after < seq <= upto`` in seq order (a fork: its parent's first).

        The run is looked up at once (``RunNotFound``); events are fetched a page at a time, so
        no read holds the file open against writers and memory stays bounded.
        """
        _, segments = self._chain(run_id, after, upto)
        return (decode_event(row[1]) for row in self._rows(segments, "body"))

    def history(self, run_id: str, *, after: int = 0, upto: int | None = None) -> Iterator[EventHeader]:
        """Stream ``(run_id, seq, type, at, caused_by)`` for each event without decoding bodies."""
        _, segments = self._chain(run_id, after, upto)
        return (
            EventHeader(run_id=row[1], seq=row[0], type=row[2], at=row[3], caused_by=row[4])
            for row in self._rows(segments, "run_id, type, at, caused_by")
        )

    def run_stats(self, run_id: str) -> RunStats:
        """Event count, first and last ``at`` and total tokens of a run (a fork: its parent's prefix too),
        from indexed columns and SQL aggregates: no event is decoded in Python (``agentcore runs``)."""
        _, segments = self._chain(run_id, 0, None)
        count = tokens = 0
        for seg in segments:
            row = self._db.one(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN type = 'llm_called' "
                "THEN json_extract(body, '$.usage.total_tokens') END), 0) "
                "FROM events WHERE run_id = ? AND seq > ? AND seq <= ?",
                (seg.run_id, seg.after, seg.upto),
            )
            assert row is not None
            count, tokens = count + row[0], tokens + row[1]
        if not count:
            return RunStats(0, None, None, 0)
        first, last = segments[0], segments[-1]
        at_first = self._db.one(
            "SELECT at FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT 1", (first.run_id, first.after)
        )
        at_last = self._db.one(
            "SELECT at FROM events WHERE run_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1", (last.run_id, last.upto)
        )
        assert at_first is not None and at_last is not None
        return RunStats(count, datetime.fromisoformat(at_first[0]), datetime.fromisoformat(at_last[0]), tokens)

    def _best_snapshot(
        self, run_id: str, seq: int, blob: bool = True, info: RunInfo | None = None
    ) -> tuple[int, str, Any, int] | None:
        """The newest snapshot at or below ``seq`` in the run's chain: (seq, encoding, state, size)."""
        current, hi = info or self.run(run_id), seq
        cols = "seq, encoding, state, size" if blob else "seq, encoding, NULL, size"
        while True:
            lo = current.forked_at_seq or 0
            if hi > lo:
                row = self._db.one(
                    f"SELECT {cols} FROM snapshots WHERE run_id = ? AND seq > ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
                    (current.id, lo, hi),
                )
                if row is not None:
                    return row
            if current.parent_run_id is None:
                return None
            hi = min(hi, lo)
            current = self.run(current.parent_run_id)
