"""The PostgreSQL schema of an agentcore database, as numbered migrations.

The schema lives in the connection's current schema (``public`` unless the URL sets
``options=-csearch_path=...``). ``agentcore_migrations`` records which migrations ran, in order.
Opening a database first looks without writing: a schema with tables but no
``agentcore_migrations`` belongs to another application and one that names a migration this
agentcore does not know was written by a newer one; both are refused with nothing changed.
Migrations run in one transaction under an advisory lock, so processes racing to create the
schema of a new database queue up and the first one does it.
"""

from __future__ import annotations

from typing import Any

import psycopg

from agentcore.errors import NotAnAgentcoreDatabase, SchemaTooNew

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "m001_runs_events",
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            task TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'running',
            created TEXT NOT NULL,
            parent_run_id TEXT REFERENCES runs(id),
            forked_at_seq INTEGER,
            last_seq INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX runs_parent ON runs(parent_run_id);
        CREATE INDEX runs_created ON runs(created, id);
        CREATE TABLE events (
            run_id TEXT NOT NULL REFERENCES runs(id),
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            v INTEGER NOT NULL,
            at TEXT NOT NULL,
            caused_by INTEGER,
            body JSON NOT NULL,
            PRIMARY KEY (run_id, seq)
        );
        """,
    ),
    (
        "m002_artifacts",
        """
        CREATE TABLE artifacts (
            id TEXT PRIMARY KEY,
            media_type TEXT NOT NULL,
            size BIGINT NOT NULL,
            content BYTEA NOT NULL
        );
        -- uncompressed out-of-line storage: a range read fetches only the chunks it needs
        ALTER TABLE artifacts ALTER COLUMN content SET STORAGE EXTERNAL;
        """,
    ),
    (
        "m003_snapshots",
        """
        CREATE TABLE snapshots (
            run_id TEXT NOT NULL REFERENCES runs(id),
            seq INTEGER NOT NULL,
            encoding TEXT NOT NULL,
            size INTEGER NOT NULL,
            state BYTEA NOT NULL,
            PRIMARY KEY (run_id, seq)
        );
        ALTER TABLE runs ADD COLUMN snapshot_seq INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN snapshot_size INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN bytes_since_snapshot BIGINT NOT NULL DEFAULT 0;
        """,
    ),
    (
        "m004_views",
        """
        CREATE VIEW facts AS
        SELECT e.run_id, e.seq, e.at,
               f ->> 'key' AS key, f ->> 'value' AS value, f ->> 'source' AS source,
               f ->> 'artifact_id' AS artifact_id, (f ->> 'confidence')::float8 AS confidence
        FROM events AS e,
             json_array_elements(e.body -> 'ops') AS op,
             json_array_elements(op -> 'facts') AS f
        WHERE e.type = 'state_patched' AND op ->> 'op' = 'append_known_facts';
        CREATE VIEW llm_usage AS
        SELECT run_id, seq, at,
               body ->> 'role' AS role, body ->> 'model' AS model, body ->> 'step_id' AS step_id,
               (body -> 'usage' ->> 'prompt_tokens')::bigint AS prompt_tokens,
               (body -> 'usage' ->> 'completion_tokens')::bigint AS completion_tokens,
               (body -> 'usage' ->> 'total_tokens')::bigint AS total_tokens,
               (body ->> 'cost_usd')::float8 AS cost_usd,
               (body ->> 'latency_ms')::float8 AS latency_ms,
               (body ->> 'ok')::boolean AS ok
        FROM events WHERE type = 'llm_called';
        CREATE VIEW llm_cost AS
        SELECT run_id, role, COALESCE(step_id, '-') AS step_id, COUNT(*) AS calls,
               SUM(total_tokens) AS total_tokens,
               CASE WHEN COUNT(cost_usd) = COUNT(*) THEN SUM(cost_usd) END AS cost_usd,
               COUNT(*) - COUNT(cost_usd) AS unpriced_calls
        FROM llm_usage GROUP BY run_id, role, COALESCE(step_id, '-');
        CREATE VIEW tool_calls AS
        SELECT run_id, seq, at,
               body ->> 'call_id' AS call_id, body ->> 'name' AS name, (body ->> 'ok')::boolean AS ok,
               (body ->> 'duration_ms')::float8 AS duration_ms, body -> 'artifact' ->> 'id' AS artifact_id,
               body ->> 'payload' AS payload, body ->> 'error' AS error
        FROM events WHERE type = 'tool_finished';
        """,
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
)
"""Every migration this agentcore knows, in order: (name, SQL)."""

MIGRATION_NAMES = tuple(name for name, _ in MIGRATIONS)
SCHEMA_VERSION = len(MIGRATIONS)
LOCK_KEY = 0x6167656E74  # "agent": the advisory lock migrations hold


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
        shown = ", ".join(tables[:8]) + (", ..." if len(tables) > 8 else "")
        raise NotAnAgentcoreDatabase(
            f"{where} holds another application's tables (tables: {shown}), not an agentcore database; "
            "nothing was changed. Point agentcore at an empty database (or schema) or at one of its own."
        )
    names = [r[0] for r in conn.execute("SELECT name FROM agentcore_migrations ORDER BY id")]
    unknown = [n for n in names if n not in MIGRATION_NAMES]
    if unknown:
        raise SchemaTooNew(
            f"{where} was written by a newer agentcore (schema version {len(names)}, migrations "
            f"{', '.join(unknown)}); this agentcore reads up to schema version {SCHEMA_VERSION}. "
            "Upgrade agentcore to open it; nothing was changed."
        )
    return names


def ensure_schema(conn: psycopg.Connection[Any], where: str) -> None:
    """Create or upgrade the schema (under the advisory lock); refuse a foreign or newer database."""
    with conn.transaction():
        done = applied(conn, where)
    if done is not None and len(done) == SCHEMA_VERSION:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        done = applied(conn, where) or []  # another process may have migrated meanwhile
        if not done:
            conn.execute(
                "CREATE TABLE agentcore_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
                "applied TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
        for number, (name, sql) in enumerate(MIGRATIONS, start=1):
            if name in done:
                continue
            conn.execute(sql)
            conn.execute("INSERT INTO agentcore_migrations (id, name) VALUES (%s, %s)", (number, name))
