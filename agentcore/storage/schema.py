"""The tables and views of an agentcore database, written once for SQLite and PostgreSQL.

Each store's migrations (``storage/sqlite/migrations.py``, ``storage/postgres/migrations.py``)
compose their numbered steps from these pieces, so the two schemas cannot drift apart. Table DDL
names its few dialect-specific types as placeholders (``{json}``, ``{bytes}``, ``{bigint}``); a
read-only view over event bodies is a list of JSON fields, rendered as ``json_extract`` on SQLite
and as ``->``/``->>`` with casts on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from agentcore.errors import NotAnAgentcoreDatabase, SchemaTooNew

__all__ = ("POSTGRES", "SQLITE", "Dialect", "foreign_tables", "newer_schema")

_TABLES = {
    "runs": """CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'running',
    created TEXT NOT NULL,
    parent_run_id TEXT REFERENCES runs(id),
    forked_at_seq INTEGER,
    last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_parent ON runs(parent_run_id)""",
    "events": """CREATE TABLE events (
    run_id TEXT NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    v INTEGER NOT NULL,
    at TEXT NOT NULL,
    caused_by INTEGER,
    body {json} NOT NULL,
    PRIMARY KEY (run_id, seq)
)""",
    "artifacts": """CREATE TABLE artifacts (
    id TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    size {bigint} NOT NULL,
    content {bytes} NOT NULL
)""",
    # the snapshot policy's counters live on the run row
    "snapshots": """CREATE TABLE snapshots (
    run_id TEXT NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    encoding TEXT NOT NULL,
    size INTEGER NOT NULL,
    state {bytes} NOT NULL,
    PRIMARY KEY (run_id, seq)
);
ALTER TABLE runs ADD COLUMN snapshot_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN snapshot_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN bytes_since_snapshot {bigint} NOT NULL DEFAULT 0""",
}

_EVENT_VIEWS = {
    # view -> (event type, its columns: "path[:postgres cast][=alias]"; the alias defaults to the last part)
    "llm_usage": (
        "llm_called",
        "role model step_id usage.prompt_tokens:bigint usage.completion_tokens:bigint usage.total_tokens:bigint "
        "cost_usd:float8 latency_ms:float8 ok:boolean",
    ),
    "tool_calls": (
        "tool_finished",
        "call_id name ok:boolean duration_ms:float8 artifact.id=artifact_id payload error",
    ),
}

_FACT_FIELDS = "key value source artifact_id confidence:float8"

_FACTS_FROM = {
    "sqlite": (
        "f.value",
        "FROM events AS e, json_each(e.body, '$.ops') AS op, json_each(op.value, '$.facts') AS f\n"
        "WHERE e.type = 'state_patched' AND json_extract(op.value, '$.op') = 'append_known_facts'",
    ),
    "postgres": (
        "f",
        "FROM events AS e, json_array_elements(e.body -> 'ops') AS op, json_array_elements(op -> 'facts') AS f\n"
        "WHERE e.type = 'state_patched' AND op ->> 'op' = 'append_known_facts'",
    ),
}

_LLM_COST = """CREATE VIEW llm_cost AS
SELECT run_id, role, COALESCE(step_id, '-') AS step_id,
       COUNT(*) AS calls,
       SUM(total_tokens) AS total_tokens,
       CASE WHEN COUNT(cost_usd) = COUNT(*) THEN SUM(cost_usd) END AS cost_usd,
       COUNT(*) - COUNT(cost_usd) AS unpriced_calls
FROM llm_usage GROUP BY run_id, role, COALESCE(step_id, '-')"""


@dataclass(frozen=True)
class Dialect:
    """How one database spells the schema: its types and its JSON access.

    Each method returns SQL for that database; the migrations of its store run it.
    """

    name: Literal["sqlite", "postgres"]
    json: str
    """The column type of an event body."""
    bytes: str
    """The column type of raw bytes (artifact content, snapshot state)."""
    bigint: str
    """The column type of a count that may pass 2**31 (sizes, byte counters)."""
    param: str
    """The driver's placeholder for a parameter: ``?`` (sqlite3) or ``%s`` (psycopg)."""
    lock_row: str
    """What ``SELECT ... FROM runs WHERE id = ?`` appends to lock the row until the transaction ends
    (nothing on SQLite, whose write transaction already holds the whole file)."""

    def sql(self, text: str) -> str:
        """``text``, written with ``?`` placeholders, in this driver's placeholder style.

        Shared statements are written once with ``?``; they must hold no other ``?`` and no ``%``.
        """
        return text if self.param == "?" else _with_param(text, self.param)

    def create_table(self, name: str) -> list[str]:
        """The statements that create table ``name`` (``runs``, ``events``, ``artifacts``, ``snapshots``)."""
        sql = _TABLES[name].format(json=self.json, bytes=self.bytes, bigint=self.bigint)
        return [part.strip() for part in sql.split(";")]

    def event_view(self, name: str, *, without: tuple[str, ...] = ()) -> str:
        """``CREATE VIEW`` for ``llm_usage`` or ``tool_calls``: one row per event of its type.

        Args:
            without: Columns left out (an older migration's version of the view).
        """
        event_type, spec = _EVENT_VIEWS[name]
        columns = self._columns("body", spec, without)
        return (
            f"CREATE VIEW {name} AS\nSELECT run_id, seq, at,\n       {columns}\nFROM events WHERE type = '{event_type}'"
        )

    def facts_view(self) -> str:
        """``CREATE VIEW facts``: one row per fact appended by a ``state_patched`` event."""
        doc, source = _FACTS_FROM[self.name]
        return (
            f"CREATE VIEW facts AS\nSELECT e.run_id, e.seq, e.at,\n       {self._columns(doc, _FACT_FIELDS)}\n{source}"
        )

    def llm_cost_view(self) -> str:
        """``CREATE VIEW llm_cost`` over ``llm_usage``: calls, tokens and dollars per run, role and step
        (``cost_usd`` NULL when any call of the group has no known price); the same SQL on both."""
        return _LLM_COST

    def field(self, doc: str, path: str, cast: str | None) -> str:
        """The SQL expression for the JSON field at dotted ``path`` of the JSON column ``doc``.

        SQLite's ``json_extract`` keeps the JSON type (numbers stay numbers), so ``cast`` only
        applies on PostgreSQL, where ``->>`` always gives text.
        """
        if self.name == "sqlite":
            return f"json_extract({doc}, '$.{path}')"
        *parents, last = path.split(".")
        expr = f"{doc} " + "".join(f"-> '{p}' " for p in parents) + f"->> '{last}'"
        return f"({expr})::{cast}" if cast else expr

    def _columns(self, doc: str, spec: str, without: tuple[str, ...] = ()) -> str:
        out = []
        for item in spec.split():
            item, _, alias = item.partition("=")
            path, _, cast = item.partition(":")
            alias = alias or path.rsplit(".", 1)[-1]
            if alias not in without:
                out.append(f"{self.field(doc, path, cast or None)} AS {alias}")
        return ",\n       ".join(out)


SQLITE = Dialect(name="sqlite", json="TEXT", bytes="BLOB", bigint="INTEGER", param="?", lock_row="")
POSTGRES = Dialect(
    name="postgres", json="JSON", bytes="BYTEA", bigint="BIGINT", param="%s", lock_row=" FOR UPDATE"
)


@lru_cache(maxsize=256)
def _with_param(text: str, param: str) -> str:
    return text.replace("?", param)


# --------------------------------------------------------------------------------------------
# refusing a database that is not ours, or newer than this code


def foreign_tables(where: str, tables: Sequence[str], advice: str) -> NotAnAgentcoreDatabase:
    """The error for a database holding another application's ``tables`` (the first 8 named)."""
    shown = ", ".join(sorted(tables)[:8]) + (", ..." if len(tables) > 8 else "")
    return NotAnAgentcoreDatabase(
        f"{where} holds another application's tables (tables: {shown}), not an agentcore database; "
        f"nothing was changed. {advice}"
    )


def newer_schema(where: str, version: int, unknown: Sequence[str], supported: int) -> SchemaTooNew:
    """The error for a database at schema ``version`` (with migrations this code does not know)."""
    return SchemaTooNew(
        f"{where} was written by a newer agentcore (schema version {version}"
        f"{', migrations ' + ', '.join(unknown) if unknown else ''}); this agentcore reads up to schema version "
        f"{supported}. Upgrade agentcore to open it; nothing was changed."
    )
