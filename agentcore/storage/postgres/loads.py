"""Loading a run's state from PostgreSQL in one statement: the run's row, its snapshot, the events after it.

``state_at`` on a SQL store takes three round trips the general way (the fork ancestry, the best
snapshot, the segments after it), each a statement the server plans, and on a newly opened
connection each first touches cold catalog caches (the recursive ancestry query alone costs a
fresh backend about 1.7 ms, 0.3 ms once warm). ``STATE_ROWS`` asks for all of it at once with plain
index lookups: the run's row (``RUN_COLUMNS``) on every result row, then the newest snapshot at or
below the target seq (one row, ``kind = 's'``), the sealed segments after it (``'e'``, at most
``page`` of them) and the run's open segment (``'t'``) when it holds events after the snapshot.

It answers for a run without a parent, and for a fork whose own snapshot is past its fork point
(everything after that snapshot is the fork's own). Anything else (a fork read from its parent's
part) returns ``None`` from ``rows_load`` and the store takes the general way.

The statement is prepared on each pooled connection when the connection is set up (under its
``statement_name``: ``PgConnection.prepared``), so a read on a new connection does not parse and analyse it first
(server CPU on a fresh backend: 0.8 ms instead of 1.5), and is run through psycopg's libpq wrapper
with binary results (``params``, ``decoded``): every column is cast to the type it is read as.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from agentcore.storage.base import RunInfo
from agentcore.storage.postgres.segments import Element, elements
from agentcore.storage.sql_rows import RUN_COLUMNS, run_info

_RUN = (
    "r.id::text, r.task::text, r.status::text, r.created::text, r.last_seq::int4, r.parent_run_id::text, "
    "r.forked_at_seq::int4"
)
assert [c.split(".")[1].split("::")[0] for c in _RUN.split(", ")] == [c.strip() for c in RUN_COLUMNS.split(",")]

_UPTO = "LEAST(COALESCE($2::int4, r.last_seq), r.last_seq)"

STATE_ROWS = f"""SELECT {_RUN},
       x.kind::text, x.seq::int4, x.last_seq::int4, x.body::text, x.encoding::text, x.state::bytea
FROM runs r
LEFT JOIN LATERAL (
    SELECT seq FROM run_log WHERE run_id = r.id AND kind = 's' AND seq <= {_UPTO} ORDER BY seq DESC LIMIT 1
) s ON true
LEFT JOIN LATERAL (
    SELECT seq FROM run_log WHERE run_id = r.id AND kind = 'e' AND seq <= COALESCE(s.seq, 0) + 1 ORDER BY seq DESC LIMIT 1
) f ON true
LEFT JOIN LATERAL (
    SELECT 's' AS kind, seq, last_seq, NULL AS body, encoding, state FROM run_log
    WHERE run_id = r.id AND kind = 's' AND seq = s.seq
    UNION ALL (
    SELECT 'e', seq, last_seq, body, NULL, NULL FROM run_log
    WHERE run_id = r.id AND kind = 'e' AND seq >= COALESCE(f.seq, 0) AND seq <= {_UPTO} AND last_seq > COALESCE(s.seq, 0)
    ORDER BY seq LIMIT $3::int4)
    UNION ALL
    SELECT 't', r.tail_seq, r.last_seq, r.tail, NULL, NULL
    WHERE r.tail_seq > 0 AND r.tail_seq <= {_UPTO} AND r.last_seq > COALESCE(s.seq, 0)
) x ON true
WHERE r.id = $1::text"""
"""Rows of ``RUN_COLUMNS`` then ``kind, seq, last_seq, body, encoding, state`` (see the module) for
run ``$1`` at seq ``$2`` (``NULL``: the latest), at most ``$3`` sealed segments, every column cast
to the type ``decoded`` reads in binary; no row if there is no such run, one row with a
``NULL`` kind if there is nothing to load (an empty run). One statement, so one snapshot of the
database: a segment sealed meanwhile is seen either in the run's row or in ``run_log``. The
laterals ``s`` (the snapshot's seq) and ``f`` (the first segment that can hold the event after
it) are plain backward index lookups: a fresh backend plans them for less than ``max()``
subqueries (server CPU, cold: 1.45 ms instead of 1.65; warm 0.4 instead of 0.5)."""


_KINDS = "ssssisisiissb"
"""What each column of ``STATE_ROWS`` is in binary: ``s`` text, ``i`` int4, ``b`` bytea."""


SEQ_MAX = 2**31 - 1
"""The largest seq an ``int4`` holds: a seq asked for past it means the latest state, as on SQLite."""


def params(run_id: str, seq: int | None, page: int) -> list[bytes | None]:
    """``STATE_ROWS``'s parameters as text (a ``seq`` past ``SEQ_MAX`` is sent as ``SEQ_MAX``: the
    statement takes the smaller of it and the run's last seq, which an ``int4`` always holds)."""
    return [run_id.encode("utf-8"), None if seq is None else str(min(seq, SEQ_MAX)).encode(), str(page).encode()]


def decoded(rows: list[tuple[bytes | None, ...]], encoding: str) -> list[tuple[Any, ...]]:
    """``STATE_ROWS``'s binary rows as Python values (``int``, ``str``, ``bytes`` or ``None``)."""
    return [
        tuple(
            None if v is None
            else v.decode(encoding) if kind == "s"
            else int.from_bytes(v, "big", signed=True) if kind == "i"
            else v
            for kind, v in zip(_KINDS, row, strict=True)
        )
        for row in rows
    ]  # fmt: skip


class RowsLoad(NamedTuple):
    """What one ``STATE_ROWS`` answer holds for a load."""

    target: int
    """The seq of the state to build: the one asked for, at most the run's last."""
    snapshot: tuple[int, str, bytes] | None
    """``(seq, encoding, data)`` of the snapshot to start from, or ``None`` (start empty)."""
    segments: list[tuple[int, int, str]]
    """``(first seq, last seq, JSON array)`` of the segments holding the events after it, in order."""
    more_after: int | None
    """Not ``None`` when the page of sealed segments was full: the events after this seq (up to
    ``target``) were not all fetched and are to be read from there."""


def rows_load(rows: list[tuple[Any, ...]], seq: int | None, page: int) -> tuple[RunInfo, RowsLoad | None]:
    """The run's row and what ``STATE_ROWS`` gave for building its state (``None``: the general way
    is needed: a fork whose own snapshots do not cover the seq asked for)."""
    info = run_info(rows[0][:7])
    target = info.last_seq if seq is None else min(seq, info.last_seq)
    snapshot: tuple[int, str, bytes] | None = None
    sealed: list[tuple[int, int, str]] = []
    tail: tuple[int, int, str] | None = None
    for row in rows:
        kind, first, last, body, encoding, state = row[7:]
        if kind == "s":
            snapshot = (first, encoding, state)
        elif kind == "e":
            sealed.append((first, last, body))
        elif kind == "t":
            tail = (first, last, body)
    sealed.sort()  # in seq order whatever order the server's plan returns the rows in
    if info.parent_run_id is not None and (snapshot is None or snapshot[0] <= (info.forked_at_seq or 0)):
        return info, None
    if len(sealed) >= page:
        return info, RowsLoad(target, snapshot, sealed, sealed[-1][1])
    return info, RowsLoad(target, snapshot, sealed + ([tail] if tail is not None else []), None)


def events_of(load: RowsLoad) -> Iterator[Element]:
    """The events ``after < seq <= target`` of the fetched segments (``after``: the snapshot's seq)."""
    after = load.snapshot[0] if load.snapshot is not None else 0
    for first, last, text in load.segments:
        for element in elements(text, first, last):
            if after < element[0] <= load.target:
                yield element
