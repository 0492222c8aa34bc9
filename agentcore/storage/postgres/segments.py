"""How a PostgreSQL store keeps a run's log: event segments and snapshots (migration m008).

- **Event segments.** A segment holds consecutive events ``seq .. last_seq`` of one run as one
  JSON array of their bodies (the same canonical JSON as one event per row before). PostgreSQL
  compresses a value as a whole once its row passes about 2 KB (TOAST, pglz), and ``STORAGE
  MAIN`` keeps the compressed value in the row: tens of similar events compressed together take
  about an eighth of their JSON (W1: 40 per segment), where one body of a few hundred bytes alone
  does not compress at all.
- **The open segment lives on the run's row** (``runs.tail``, its first seq ``tail_seq``, 0 when
  empty, and its JSON length ``tail_bytes``): an append already updates that row (its last seq),
  so adding the events to the array is part of the same ``UPDATE``, and the row's old versions
  are pruned on the same page (a HOT update), so the growing segment leaves no dead pages
  behind. Once its stored size reaches ``SEAL_BYTES`` (or its JSON ``MAX_CHARS``) the segment is
  sealed: copied, still compressed, into ``run_log`` (``kind = 'e'``) in the same transaction
  and the row's tail emptied. Sealed segments are never changed or deleted; a reader paging by
  seq sees each event once, in the tail or in ``run_log`` (a seal is atomic).
- **Snapshots** are rows of ``run_log`` too (``kind = 's'``, ``seq`` = the state's seq,
  ``encoding`` and ``state`` as in ``storage.snapshots``; this store writes ``sections+xz``). A
  cache, thinned as it is written: a run keeps at most one snapshot per power-of-two range of
  seqs (``[2**k, 2**(k+1))``), the newest, so about log2(seqs) of them, which together take
  about twice the newest's bytes when the state grows with the log; the state at any seq folds
  from a snapshot at least about half-way there, the latest state from the newest.

The ``events`` view shows one row per event with the columns of the old table (``run_id``,
``seq``, ``type``, ``v``, ``at``, ``caused_by``, ``body``), sealed segments and tails alike, and
``facts``, ``llm_usage``, ``tool_calls`` and ``llm_cost`` read it as before; the ``snapshots``
view shows the snapshot rows with the old table's columns. The shared ``SQLEventStore`` reads
both views where it counts or looks up. The store reads a run's events as whole segments
(``SEGMENTS_OF``, by the index: the server only decompresses them) and splits each array into its
events by their canonical headers (``elements``), so a history needs no JSON parsed at all; it
writes through ``add_events`` and ``write_snapshot``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from agentcore.errors import DamagedDatabase
from agentcore.storage.schema import POSTGRES
from agentcore.storage.sql_rows import SQLExecutor

SEAL_BYTES = 2400
"""An open segment whose stored (compressed) size reaches this is sealed: the run's row stays
small enough that an update finds room for its new version on the same page. It must stay above
the 2 KB row size at which PostgreSQL starts compressing (at 1,800 the segments were sealed
uncompressed: W1 took 47-49 pages instead of 37)."""

MAX_CHARS = 64 * 1024
"""An open segment's JSON never grows past this (unless one batch alone is longer): it bounds
what one append has PostgreSQL decompress and compress again."""

CHECK_EVERY = 2 * 1024
"""The stored size is asked for each time the open segment's JSON grows past a multiple of this."""

SEGMENT_PAGE = 64
"""Segments fetched per query while streaming a read (each at most ``MAX_CHARS`` of JSON)."""

SEGMENTS_OF = """SELECT seq, last_seq, body FROM (
    SELECT seq, last_seq, body FROM run_log
    WHERE run_id = %(run)s AND kind = 'e' AND seq <= %(upto)s AND last_seq > %(after)s AND seq >= COALESCE(
        (SELECT max(seq) FROM run_log WHERE run_id = %(run)s AND kind = 'e' AND seq <= %(after)s + 1), 0)
    UNION ALL
    SELECT tail_seq, last_seq, tail FROM runs
    WHERE id = %(run)s AND tail_seq > 0 AND tail_seq <= %(upto)s AND last_seq > %(after)s
) AS l ORDER BY seq LIMIT %(page)s"""
"""``(seq, last_seq, JSON array)`` of the segments holding run ``run``'s events ``after < seq <= upto``
(sealed ones by the index, then the open one), in order: the server only decompresses them."""

_HEAD = re.compile(
    r'\{"v":\d+,"run_id":"(?:[^"\\]|\\.)*","seq":(\d+),"at":"((?:[^"\\]|\\.)*)","caused_by":(null|\d+),"type":"(\w+)"'
)
"""The start of an event's canonical JSON (``encode_event``: these fields first, in this order)."""

Element = tuple[int, "str | dict[str, Any]", str, str, "int | None"]
"""One event of a segment: ``(seq, body, type, at, caused_by)``; the body is its JSON text, or the
decoded object when the segment had to be parsed whole."""


def elements(text: str, first: int, last: int) -> list[Element]:
    """The events ``first .. last`` of a segment's JSON array, split without parsing it: each event
    starts with its canonical header, whose seqs must be exactly ``first .. last`` in order.
    Anything else (a body written in another field order, or a nested object that looks like a
    header) is parsed whole instead."""
    found = list(_HEAD.finditer(text))
    starts = [m.start() for m in found]
    if (
        [int(m.group(1)) for m in found] == list(range(first, last + 1))
        and text[:1] == "[" and starts[0] == 1 and text[-1:] == "]"
        and all(text[i - 1] == "," for i in starts[1:])
    ):  # fmt: skip
        ends = [i - 1 for i in starts[1:]] + [len(text) - 1]
        return [
            (first + k, text[m.start() : end], m.group(4), _unescaped(m.group(2)), _int_or_none(m.group(3)))
            for k, (m, end) in enumerate(zip(found, ends, strict=True))
        ]
    try:
        bodies = json.loads(text)
    except json.JSONDecodeError as e:
        raise _damaged(first, last, f"it is not JSON ({e})") from None
    if not isinstance(bodies, list) or len(bodies) != last - first + 1 or not all(isinstance(b, dict) for b in bodies):
        count = len(bodies) if isinstance(bodies, list) else type(bodies).__name__
        raise _damaged(first, last, f"it holds {count} event bodies")
    return [(first + k, b, b.get("type"), b.get("at"), b.get("caused_by")) for k, b in enumerate(bodies)]


def _damaged(first: int, last: int, what: str) -> DamagedDatabase:
    return DamagedDatabase(
        f"a segment of events {first}..{last} is damaged: {what}. It was changed outside agentcore; restore "
        "the database from a backup (or the run from an exported trace)"
    )


def _unescaped(value: str) -> str:
    return value if "\\" not in value else json.loads(f'"{value}"')


def _int_or_none(value: str) -> int | None:
    return None if value == "null" else int(value)


EVENTS_VIEW = """CREATE VIEW events AS
SELECT l.run_id, l.seq + x.n::integer - 1 AS seq, x.e ->> 'type' AS type, (x.e ->> 'v')::integer AS v,
       x.e ->> 'at' AS at, (x.e ->> 'caused_by')::integer AS caused_by, x.e AS body
FROM (SELECT run_id, seq, body FROM run_log WHERE kind = 'e'
      UNION ALL SELECT id, tail_seq, tail FROM runs WHERE tail_seq > 0) AS l,
     json_array_elements(l.body::json) WITH ORDINALITY AS x(e, n)"""
"""One row per event, with the columns of the table of agentcore before m008 (as m008 made it)."""

_HEADER = POSTGRES.visible("x.e")
EVENTS_VIEW_NUL_SAFE = f"""CREATE VIEW events AS
SELECT l.run_id, l.seq + x.n::integer - 1 AS seq, ({_HEADER}) ->> 'type' AS type, (({_HEADER}) ->> 'v')::integer AS v,
       regexp_replace(({_HEADER}) ->> 'at', 'Z$', '+00:00') AS at, (({_HEADER}) ->> 'caused_by')::integer AS caused_by,
       x.e AS body
FROM (SELECT run_id, seq, body FROM run_log WHERE kind = 'e'
      UNION ALL SELECT id, tail_seq, tail FROM runs WHERE tail_seq > 0) AS l,
     json_array_elements(l.body::json) WITH ORDINALITY AS x(e, n)"""
"""``EVENTS_VIEW`` as of m009: PostgreSQL's ``->>`` fails on a JSON object any of whose strings
holds a NUL, so the header columns are read from the body with NULs made visible
(``Dialect.visible``); ``body`` is the event's exact JSON. ``at`` is written as Python's ``isoformat``
writes it (UTC as ``+00:00``, where the JSON has ``Z``), as SQLite's ``events.at`` is, so the views
give the same rows on both databases."""

SNAPSHOTS_VIEW = """CREATE VIEW snapshots AS
SELECT run_id, seq, encoding, octet_length(state) AS size, state FROM run_log WHERE kind = 's'"""
"""The snapshots with the columns of the table before m008 (reads and ``DELETE`` work through it)."""

_ADD = """WITH sealed AS (
    INSERT INTO run_log (run_id, kind, seq, last_seq, body)
    SELECT id, 'e', tail_seq, last_seq, tail FROM runs
    WHERE id = %(run)s AND tail_seq > 0 AND tail_bytes + %(chars)s + 1 > %(max)s
)
UPDATE runs SET
    tail = CASE WHEN tail_seq > 0 AND tail_bytes + %(chars)s + 1 <= %(max)s
                THEN left(tail, -1) || ',' || %(text)s || ']' ELSE '[' || %(text)s || ']' END,
    tail_bytes = CASE WHEN tail_seq > 0 AND tail_bytes + %(chars)s + 1 <= %(max)s
                      THEN tail_bytes + %(chars)s + 1 ELSE %(chars)s + 2 END,
    tail_seq = CASE WHEN tail_seq > 0 AND tail_bytes + %(chars)s + 1 <= %(max)s THEN tail_seq ELSE %(first)s END
WHERE id = %(run)s
RETURNING tail_seq, tail_bytes"""
# one statement: the open segment, sealed first if the events would pass MAX_CHARS (the
# INSERT reads the row as it was before the UPDATE: both see the statement's snapshot), and the
# run's other new values (``_add_sql``)


@lru_cache(maxsize=16)
def _add_sql(columns: tuple[str, ...]) -> str:
    """``_ADD`` that also sets ``columns`` (our constant names) from the parameters ``set_<column>``:
    the append's one ``UPDATE`` of the run's row (each update leaves a dead version of the row, with
    its open segment, until the page is pruned)."""
    sets = "".join(f",\n    {c} = %(set_{c})s" for c in columns)
    head, _, tail = _ADD.rpartition("\nWHERE id = %(run)s")
    return f"{head}{sets}\nWHERE id = %(run)s{tail}"

_SEAL_OPEN = """WITH sealed AS (
    INSERT INTO run_log (run_id, kind, seq, last_seq, body)
    SELECT id, 'e', tail_seq, last_seq, tail FROM runs WHERE id = %(run)s AND tail_seq > 0
)
UPDATE runs SET tail = NULL, tail_seq = 0, tail_bytes = 0 WHERE id = %(run)s"""

BULK_CHARS = 20 * 1024
"""A batch longer than this is written as sealed segments of about this much JSON each (about what
an open segment holds when it is sealed)."""


def _parts(bodies: list[str]) -> list[list[str]]:
    """``bodies`` in consecutive groups of at most ``BULK_CHARS`` of JSON (a longer body alone)."""
    parts: list[list[str]] = [[]]
    size = 0
    for body in bodies:
        if parts[-1] and size + len(body) + 1 > BULK_CHARS:
            parts.append([])
            size = 0
        parts[-1].append(body)
        size += len(body) + 1
    return parts


def add_events(conn: SQLExecutor, run_id: str, first: int, bodies: list[str], run: dict[str, Any]) -> None:
    """Add events ``first ..`` (their JSON ``bodies``) to the run's open segment, sealing it when it
    is full, and set the run row's columns ``run`` (its new ``last_seq``, status, snapshot counters)
    in the same ``UPDATE`` (call it in the append's transaction, the run's row locked).

    A batch longer than ``BULK_CHARS`` (a copied or imported run) seals the open segment and goes
    into ``run_log`` in sealed segments of about ``BULK_CHARS`` each, all but its last part."""
    if sum(len(b) + 1 for b in bodies) > BULK_CHARS:
        parts = _parts(bodies)
        conn.execute(_SEAL_OPEN, {"run": run_id})
        for part in parts[:-1]:
            conn.execute(
                "INSERT INTO run_log (run_id, kind, seq, last_seq, body) VALUES (%s, 'e', %s, %s, %s)",
                (run_id, first, first + len(part) - 1, "[" + ",".join(part) + "]"),
            )
            first += len(part)
        bodies = parts[-1]
    text = ",".join(bodies)
    params = {"run": run_id, "chars": len(text), "max": MAX_CHARS, "text": text, "first": first}
    params.update({f"set_{column}": value for column, value in run.items()})
    row = conn.execute(_add_sql(tuple(run)), params).fetchone()
    assert row is not None  # the caller has read and locked the run's row
    tail_seq, size = row
    before = 0 if tail_seq == first else size - len(text) - 1
    if size >= SEAL_BYTES and (before < SEAL_BYTES or before // CHECK_EVERY != size // CHECK_EVERY):
        stored = conn.execute("SELECT pg_column_size(tail) FROM runs WHERE id = %s", (run_id,)).fetchone()
        if stored is not None and stored[0] >= SEAL_BYTES:
            conn.execute(
                "WITH sealed AS (INSERT INTO run_log (run_id, kind, seq, last_seq, body) "
                "SELECT id, 'e', tail_seq, %s, tail FROM runs WHERE id = %s) "
                "UPDATE runs SET tail = NULL, tail_seq = 0, tail_bytes = 0 WHERE id = %s",
                (first + len(bodies) - 1, run_id, run_id),
            )


def write_snapshot(conn: SQLExecutor, run_id: str, seq: int, encoding: str, data: bytes | str) -> None:
    """Store the state after event ``seq`` and thin the run's older snapshots (see the module)."""
    conn.execute(
        "INSERT INTO run_log (run_id, kind, seq, last_seq, encoding, state) VALUES (%s, 's', %s, %s, %s, %s) "
        "ON CONFLICT (run_id, kind, seq) DO UPDATE SET encoding = excluded.encoding, state = excluded.state",
        (run_id, seq, seq, encoding, data),
    )
    low = 1 << (seq.bit_length() - 1)  # the older snapshots of the same power-of-two range go
    conn.execute("DELETE FROM run_log WHERE run_id = %s AND kind = 's' AND seq >= %s AND seq < %s", (run_id, low, seq))
