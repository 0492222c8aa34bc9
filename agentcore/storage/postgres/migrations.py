"""The PostgreSQL schema of an agentcore database, as numbered migrations.

The schema lives in the connection's current schema (``public`` unless the URL sets
``options=-csearch_path=...``). ``agentcore_migrations`` records which migrations ran, in order:
since m007 it is a view over constants (``id``, ``name``, ``applied``), rewritten by each upgrade,
so the bookkeeping lives in the catalog and takes no table pages (a table with one row costs 40 KB
after ``VACUUM``: its page, free-space map and visibility map); before m007 it was a table, which
the upgrade turns into the view with the same rows. Opening a database first looks without
writing: a schema with tables but no ``agentcore_migrations`` belongs to another application and
one that names a migration this agentcore does not know was written by a newer one; both are
refused with nothing changed (an older agentcore still finds the view by its name and refuses a
newer schema the same way). Migrations run in one transaction under an advisory lock, so
processes racing to create the schema of a new database queue up and the first one does it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from agentcore.storage.postgres.segments import EVENTS_VIEW, EVENTS_VIEW_NUL_SAFE, SNAPSHOTS_VIEW
from agentcore.storage.schema import POSTGRES, foreign_tables, newer_schema


def _sql(*statements: str | list[str]) -> str:
    return ";\n".join(s for part in statements for s in ([part] if isinstance(part, str) else part)) + ";"


# m008: a run's events are stored in segments, one JSON array of consecutive events per row
# (compressed as a whole by TOAST), the open one on the run's row and the sealed ones in
# `run_log`, with the snapshots (see storage/postgres/segments.py); `events` becomes a view with
# the old columns, and the other views read it as before; `snapshots` a view of the snapshot rows. Old events move in segments of 100.
SEGMENTS_SQL = [
    """CREATE TABLE run_log (
    run_id TEXT NOT NULL REFERENCES runs(id),
    kind "char" NOT NULL CHECK (kind IN ('e', 's')),
    seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    body TEXT,
    encoding TEXT,
    state BYTEA,
    PRIMARY KEY (run_id, kind, seq)
)""",
    "ALTER TABLE run_log ALTER COLUMN body SET STORAGE MAIN, ALTER COLUMN state SET STORAGE MAIN",
    # a run with an open segment has its events (a lost tail would be lost events: refused)
    "ALTER TABLE runs ADD COLUMN tail TEXT, ADD COLUMN tail_seq INTEGER NOT NULL DEFAULT 0, "
    "ADD COLUMN tail_bytes INTEGER NOT NULL DEFAULT 0, ADD CONSTRAINT runs_tail CHECK ((tail_seq = 0) = (tail IS NULL))",
    # MAIN everywhere on the row: PostgreSQL compresses the tail in place before it would move
    # any EXTENDED column (a 32-byte `created`) out to TOAST; the free half of each page lets an
    # append's new row version land on the same page as the old (a HOT update, pruned in place)
    "ALTER TABLE runs ALTER COLUMN tail SET STORAGE MAIN, ALTER COLUMN id SET STORAGE MAIN, "
    "ALTER COLUMN task SET STORAGE MAIN, ALTER COLUMN status SET STORAGE MAIN, "
    "ALTER COLUMN created SET STORAGE MAIN, ALTER COLUMN parent_run_id SET STORAGE MAIN",
    "ALTER TABLE runs SET (fillfactor = 50)",
    """INSERT INTO run_log (run_id, kind, seq, last_seq, body)
SELECT run_id, 'e', min(seq), max(seq), '[' || string_agg(body::text, ',' ORDER BY seq) || ']'
FROM events GROUP BY run_id, (seq - 1) / 100""",
    """INSERT INTO run_log (run_id, kind, seq, last_seq, encoding, state)
SELECT run_id, 's', seq, seq, encoding, state FROM snapshots""",
    "DROP VIEW llm_cost",
    "DROP VIEW llm_usage",
    "DROP VIEW tool_calls",
    "DROP VIEW facts",
    "DROP TABLE events",
    "DROP TABLE snapshots",
    EVENTS_VIEW,
    SNAPSHOTS_VIEW,
    POSTGRES.facts_view(nul_safe=False),
    POSTGRES.event_view("llm_usage", nul_safe=False),
    POSTGRES.llm_cost_view(),
    POSTGRES.event_view("tool_calls", nul_safe=False),
]

# m009: a NUL in any string of an event (``\u0000`` in its JSON) made every view over it fail on
# PostgreSQL (``->>`` refuses to make text of it, and reads the whole object); the views now read
# a copy of the body with each NUL shown as the six characters ``\u0000`` (``Dialect.visible``),
# ``facts.value_json`` gives a value's exact JSON, and a token count past 64 bits is NULL
NUL_SAFE_VIEWS_SQL = [
    "DROP VIEW llm_cost",
    "DROP VIEW llm_usage",
    "DROP VIEW tool_calls",
    "DROP VIEW facts",
    "DROP VIEW events",
    EVENTS_VIEW_NUL_SAFE,
    POSTGRES.facts_view(),
    POSTGRES.event_view("llm_usage"),
    POSTGRES.llm_cost_view(),
    POSTGRES.event_view("tool_calls"),
]

# m010: the run queue and the step queue are one table, `work` (a run's entry has step_id '' and
# attempt 0; a step attempt names its step, and never '': plan step ids are not empty), with one
# partial index for both claims; `queue` and `step_queue` become views with the old tables'
# columns (queries, inserts with ON CONFLICT, FOR UPDATE ... SKIP LOCKED all work through them).
# An empty table still costs its primary key, the claim index and its TOAST index (8 KB each),
# so two tables cost 48 KB where one costs 24 KB.
WORK_SQL = [
    """CREATE TABLE work (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step_id TEXT NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'queued',
    spec JSON,
    idempotency_key TEXT,
    submitted TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_owner TEXT,
    lease_token BIGINT NOT NULL DEFAULT 0,
    lease_expires TIMESTAMPTZ,
    claims INTEGER NOT NULL DEFAULT 0,
    finished TIMESTAMPTZ,
    result JSON,
    PRIMARY KEY (run_id, step_id, attempt),
    CONSTRAINT work_kind CHECK (CASE WHEN step_id = '' THEN spec IS NOT NULL AND attempt = 0
                                     ELSE idempotency_key IS NOT NULL END)
)""",
    """INSERT INTO work (run_id, state, spec, submitted, lease_owner, lease_token, lease_expires, claims, finished)
SELECT run_id, state, spec, submitted, lease_owner, lease_token, lease_expires, claims, finished FROM queue""",
    """INSERT INTO work (run_id, step_id, attempt, idempotency_key, state, submitted, lease_owner, lease_token,
                  lease_expires, claims, result)
SELECT run_id, step_id, attempt, idempotency_key, state, submitted, lease_owner, lease_token, lease_expires, claims,
       result FROM step_queue""",
    "DROP TABLE step_queue",
    "DROP TABLE queue",
    "CREATE INDEX work_claimable ON work (step_id, submitted, run_id) WHERE state IN ('queued', 'leased')",
    """CREATE VIEW queue AS
SELECT run_id, state, spec, submitted, lease_owner, lease_token, lease_expires, claims, finished
FROM work WHERE step_id = ''""",
    """CREATE VIEW step_queue AS
SELECT run_id, step_id, attempt, idempotency_key, state, submitted, lease_owner, lease_token, lease_expires, claims,
       result
FROM work WHERE step_id <> ''""",
]

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "m001_runs_events",
        _sql(
            POSTGRES.create_table("runs"),
            "CREATE INDEX runs_created ON runs(created, id)",
            POSTGRES.create_table("events"),
        ),
    ),
    (
        "m002_artifacts",
        _sql(
            POSTGRES.create_table("artifacts"),
            # uncompressed out-of-line storage: a range read fetches only the chunks it needs
            "ALTER TABLE artifacts ALTER COLUMN content SET STORAGE EXTERNAL",
        ),
    ),
    ("m003_snapshots", _sql(POSTGRES.create_table("snapshots"))),
    (
        "m004_views",
        _sql(
            POSTGRES.facts_view(nul_safe=False),
            POSTGRES.event_view("llm_usage", nul_safe=False),
            POSTGRES.llm_cost_view(),
            POSTGRES.event_view("tool_calls", nul_safe=False),
        ),
    ),
    (
        "m005_queue",
        """
        CREATE TABLE queue (
            run_id TEXT PRIMARY KEY REFERENCES runs(id),
            state TEXT NOT NULL DEFAULT 'queued',
            spec JSON NOT NULL,
            submitted TIMESTAMPTZ NOT NULL DEFAULT now(),
            lease_owner TEXT,
            lease_token BIGINT NOT NULL DEFAULT 0,
            lease_expires TIMESTAMPTZ,
            claims INTEGER NOT NULL DEFAULT 0,
            finished TIMESTAMPTZ
        );
        CREATE INDEX queue_claimable ON queue(submitted) WHERE state IN ('queued', 'leased');
        """,
    ),
    (
        "m006_step_queue",
        """
        CREATE TABLE step_queue (
            run_id TEXT NOT NULL REFERENCES runs(id),
            step_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            idempotency_key TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'queued',
            submitted TIMESTAMPTZ NOT NULL DEFAULT now(),
            lease_owner TEXT,
            lease_token BIGINT NOT NULL DEFAULT 0,
            lease_expires TIMESTAMPTZ,
            claims INTEGER NOT NULL DEFAULT 0,
            result JSON,
            PRIMARY KEY (run_id, step_id, attempt)
        );
        CREATE INDEX step_queue_claimable ON step_queue(submitted) WHERE state IN ('queued', 'leased');
        """,
    ),
    (
        # no query uses these: runs() lists every run and sorts, nothing looks a run's forks up by
        # parent (16 KB each even for one run); the bookkeeping becomes a view (ensure_schema)
        "m007_fewer_relations",
        "DROP INDEX IF EXISTS runs_created; DROP INDEX IF EXISTS runs_parent;",
    ),
    ("m008_run_log", _sql(SEGMENTS_SQL)),
    ("m009_nul_safe_views", _sql(NUL_SAFE_VIEWS_SQL)),
    ("m010_work", _sql(WORK_SQL)),
)
"""Every migration this agentcore knows, in order: (name, SQL)."""

MIGRATION_NAMES = tuple(name for name, _ in MIGRATIONS)
SCHEMA_VERSION = len(MIGRATIONS)
LOCK_KEY = 0x6167656E74  # "agent": the advisory lock migrations hold


BOOKKEEPING = "agentcore_migrations"


def applied(conn: psycopg.Connection[Any], where: str) -> list[str] | None:
    """The migrations recorded in the current schema (``None``: an empty schema), without writing.

    Raises:
        NotAnAgentcoreDatabase: the schema has another application's tables.
        SchemaTooNew: a newer agentcore wrote it.
    """
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
        )
    ]
    if not tables:
        return None
    if "agentcore_migrations" not in tables:
        advice = "Point agentcore at an empty database (or schema) or at one of its own."
        raise foreign_tables(where, tables, advice)
    names = [r[0] for r in conn.execute("SELECT name FROM agentcore_migrations ORDER BY id")]
    unknown = [n for n in names if n not in MIGRATION_NAMES]
    if unknown:
        raise newer_schema(where, len(names), unknown, SCHEMA_VERSION)
    return names


_CURRENT = (
    "SELECT array_agg(table_name::text ORDER BY 1), "
    f"(SELECT array_agg(name::text ORDER BY id) FROM {BOOKKEEPING}) "
    "FROM information_schema.tables WHERE table_schema = current_schema()"
)
"""``applied``'s two reads as one statement (one round trip, one snapshot), for a schema that has
``agentcore_migrations`` (the usual case); the statement fails on one that has none."""


def applied_at_once(conn: psycopg.Connection[Any], where: str) -> list[str] | None:
    """``applied(conn, where)`` in one round trip where the bookkeeping view exists; else (an empty or
    foreign schema, for which the one statement fails) ``applied`` itself. ``conn`` is in autocommit
    mode (a failed statement leaves it usable). Raises as ``applied``."""
    try:
        row = conn.execute(_CURRENT).fetchone()
    except psycopg.errors.UndefinedTable:
        return applied(conn, where)
    tables, names = (row[0] or [], row[1] or []) if row is not None else ([], [])
    if BOOKKEEPING not in tables:  # the view was found elsewhere on the search_path: decide as ``applied`` does
        return applied(conn, where)
    unknown = [n for n in names if n not in MIGRATION_NAMES]
    if unknown:
        raise newer_schema(where, len(names), unknown, SCHEMA_VERSION)
    return names


def ensure_schema(conn: psycopg.Connection[Any], where: str) -> None:
    """Create or upgrade the schema (under the advisory lock); refuse a foreign or newer database.

    ``conn`` is in autocommit mode: an up-to-date schema is checked in one round trip (``applied_at_once``).
    """
    done = applied_at_once(conn, where)
    if done is not None and len(done) == SCHEMA_VERSION:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        done = applied(conn, where) or []  # another process may have migrated meanwhile
        if len(done) == SCHEMA_VERSION:
            return
        record = _recorded(conn) if done else []
        for number, (name, statements) in enumerate(MIGRATIONS, start=1):
            if name in done:
                continue
            conn.execute(statements)
            record.append((number, name, None))
        _write_bookkeeping(conn, record)


def _recorded(conn: psycopg.Connection[Any]) -> list[tuple[int, str, datetime | None]]:
    return [(r[0], r[1], r[2]) for r in conn.execute(f"SELECT id, name, applied FROM {BOOKKEEPING} ORDER BY id")]


def _write_bookkeeping(conn: psycopg.Connection[Any], record: list[tuple[int, str, datetime | None]]) -> None:
    """(Re)write ``agentcore_migrations`` as a view over ``record`` (``None``: applied now); the
    table of an older schema is replaced by it."""
    kind = conn.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = %s",
        (BOOKKEEPING,),
    ).fetchone()
    if kind is not None:
        conn.execute(f"DROP {'VIEW' if kind[0] == 'VIEW' else 'TABLE'} {BOOKKEEPING}")
    # now() is the transaction's start: fix it as a constant, not re-evaluated on each read
    stamp = conn.execute("SELECT now()").fetchone()
    assert stamp is not None
    rows = sql.SQL(", ").join(
        sql.SQL("({}::integer, {}::text, {}::timestamptz)").format(
            sql.Literal(number), sql.Literal(name), sql.Literal(when if when is not None else stamp[0])
        )
        for number, name, when in record
    )
    conn.execute(sql.SQL("CREATE VIEW {} (id, name, applied) AS VALUES {}").format(sql.Identifier(BOOKKEEPING), rows))
