r"""The tables and views of an agentcore database, written once for SQLite and PostgreSQL.

Each store's migrations (``storage/sqlite/migrations.py``, ``storage/postgres/migrations.py``)
compose their numbered steps from these pieces, so the two schemas cannot drift apart. Table DDL
names its few dialect-specific types as placeholders (``{json}``, ``{bytes}``, ``{bigint}``); a
read-only view over event bodies is a list of JSON fields, rendered as ``json_extract`` on SQLite
and as ``->``/``->>`` with casts on PostgreSQL.

**NUL in the views** (SQLite m006, PostgreSQL m009). Nothing a user or a model writes makes a
query over the views fail, and both databases give the same rows:

- A NUL (U+0000, ``\u0000`` in the JSON) in any string is shown as the six characters ``\u0000``
  in the text columns (``facts.key``/``value``/``source``, ``tool_calls.name``/``payload``/``error``,
  ``llm_usage.model``, ...). PostgreSQL's text cannot hold NUL, and its ``->>`` refuses an object
  with such a string anywhere in it, so every view (and ``events``) failed on such a run; SQLite's
  ``json_extract`` cut the string at its NUL. The views read a copy of each body in which the
  escape is rewritten (``Dialect.visible``); bodies without NUL are read as they are.
- Shown that way, a NUL and the six characters ``\u0000`` look alike: ``facts.value_json`` is the
  value's exact JSON text (``"nul\u0000byte"`` for a NUL, ``"a\\u0000b"`` for the six
  characters), and ``events.body`` is every event's exact JSON.
- A token count (``llm_usage.*_tokens``) outside ``±(2**53 - 1)`` is NULL: a server's bogus count
  (``2**63 - 1`` for "unknown") failed PostgreSQL's ``::bigint`` cast, or SQLite's ``SUM``.
- Types: SQLite has no boolean (``ok`` is 1/0, PostgreSQL's true/false); ``events.at`` is Python's
  ``isoformat`` on both. Lone surrogates cannot be in a body: the event codec refuses to write them.
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

_FACTS_EACH = {
    # (the fact object, the tables that list the facts of the visible document `e.d`)
    "sqlite": (
        "f.value",
        "json_each(e.d, '$.ops') AS op, json_each(op.value, '$.facts') AS f\n"
        "WHERE json_extract(op.value, '$.op') = 'append_known_facts'",
    ),
    "postgres": (
        "f",
        "json_array_elements(e.d -> 'ops') AS op, json_array_elements(op -> 'facts') AS f\n"
        "WHERE op ->> 'op' = 'append_known_facts'",
    ),
}

_BACKSLASH, _NUL_ESCAPE, _NUL_SHOWN = "\\\\", "\\u0000", "\\u005cu0000"
"""An escaped backslash, the escape of NUL and what ``visible`` writes instead, as JSON text."""

_COUNTS = f"{1 - 2**53} AND {2**53 - 1}"  # not abs(): SQLite's stops with an overflow at -2**63

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

    def event_view(self, name: str, *, without: tuple[str, ...] = (), nul_safe: bool = True) -> str:
        """``CREATE VIEW`` for ``llm_usage`` or ``tool_calls``: one row per event of its type.

        Args:
            without: Columns left out (an older migration's version of the view).
            nul_safe: The view as of SQLite m006 / PostgreSQL m009 (see "NUL in the views"); ``False``
                renders it as the older migrations made it.
        """
        event_type, spec = _EVENT_VIEWS[name]
        if not nul_safe:
            columns = self._columns("body", spec, without)
            return (
                f"CREATE VIEW {name} AS\nSELECT run_id, seq, at,\n       {columns}\n"
                f"FROM events WHERE type = '{event_type}'"
            )
        columns = self._columns("d", spec, without, guarded=True)
        return (
            f"CREATE VIEW {name} AS\nSELECT run_id, seq, at,\n       {columns}\n"
            f"FROM (SELECT run_id, seq, at, {self.visible('body')} AS d FROM events WHERE type = '{event_type}') AS e"
        )

    def facts_view(self, *, nul_safe: bool = True) -> str:
        """``CREATE VIEW facts``: one row per fact appended by a ``state_patched`` event.

        Args:
            nul_safe: The view as of SQLite m006 / PostgreSQL m009, with ``value_json`` (see "NUL in
                the views"); ``False`` renders it as the older migrations made it.
        """
        if not nul_safe:
            doc, source = _FACTS_FROM[self.name]
            columns = self._columns(doc, _FACT_FIELDS)
            return f"CREATE VIEW facts AS\nSELECT e.run_id, e.seq, e.at,\n       {columns}\n{source}"
        doc, each = _FACTS_EACH[self.name]
        columns = self._columns(doc, _FACT_FIELDS, guarded=True)
        return (
            f"CREATE VIEW facts AS\nSELECT e.run_id, e.seq, e.at,\n       {columns},\n"
            f"       {self.exact(self._json_text(doc, 'value'))} AS value_json\n"
            f"FROM (SELECT run_id, seq, at, {self.visible('body')} AS d FROM events WHERE type = 'state_patched') AS e,\n"
            f"     {each}"
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

    def visible(self, doc: str) -> str:
        """SQL for the JSON document ``doc`` (``json`` on PostgreSQL, text on SQLite) with each NUL of
        its strings turned into the six characters ``\\u0000`` (``doc`` itself when it holds none).

        It rewrites the escape ``\\u0000`` of the JSON text as ``\\u005cu0000`` (an escaped
        backslash, then ``u0000``); an escaped backslash (``\\\\``) is set aside first, so a string
        that holds the characters ``\\u0000`` is left as it is.
        """
        text = f"{doc}::text" if self.name == "postgres" else doc
        swapped = self._swap(text, _NUL_ESCAPE, _NUL_SHOWN)
        if self.name == "postgres":
            return f"CASE WHEN strpos({text}, {self._literal(_NUL_ESCAPE)}) = 0 THEN {doc} ELSE ({swapped})::json END"
        return f"CASE WHEN instr({doc}, {self._literal(_NUL_ESCAPE)}) = 0 THEN {doc} ELSE {swapped} END"

    def exact(self, text: str) -> str:
        """SQL for the JSON text ``text`` (a piece of a ``visible`` document) as it was: the inverse of
        ``visible``. Exact for agentcore's canonical JSON, which never writes ``\\u005c`` itself."""
        find = "strpos" if self.name == "postgres" else "instr"
        swapped = self._swap(text, _NUL_SHOWN, _NUL_ESCAPE)
        return f"CASE WHEN {find}({text}, {self._literal(_NUL_SHOWN)}) = 0 THEN {text} ELSE {swapped} END"

    def _swap(self, text: str, old: str, new: str) -> str:
        """``text`` with each ``old`` escape replaced by ``new``, escaped backslashes left alone."""
        lit, aside = self._literal, "chr(1)" if self.name == "postgres" else "char(1)"  # never in JSON text
        inner = f"replace(replace({text}, {lit(_BACKSLASH)}, {aside}), {lit(old)}, {lit(new)})"
        return f"replace({inner}, {aside}, {lit(_BACKSLASH)})"

    def _literal(self, value: str) -> str:
        """``value`` as an SQL string literal (an ``E''`` string on PostgreSQL: its backslashes mean
        the same whatever ``standard_conforming_strings`` says)."""
        if self.name == "postgres":
            return "E'" + value.replace("\\", "\\\\") + "'"
        return f"'{value}'"

    def _json_text(self, doc: str, key: str) -> str:
        """SQL for the JSON text of the string at ``key`` of the object ``doc``, escapes as written.

        SQLite before 3.38 has no ``->``: ``json_extract`` with the path given twice returns the
        JSON array ``[V,V]`` of the raw values, and ``V`` is its first half (less ``[``, ``,``, ``]``).
        """
        if self.name == "postgres":
            return f"({doc} -> '{key}')::text"
        pair = f"json_extract({doc}, '$.{key}', '$.{key}')"
        return f"substr({pair}, 2, (length({pair}) - 3) / 2)"

    def _columns(self, doc: str, spec: str, without: tuple[str, ...] = (), *, guarded: bool = False) -> str:
        out = []
        for item in spec.split():
            item, _, alias = item.partition("=")
            path, _, cast = item.partition(":")
            alias = alias or path.rsplit(".", 1)[-1]
            if alias not in without:
                expr = self.field(doc, path, cast or None)
                if guarded and cast == "bigint":
                    expr = self._count(doc, path)
                out.append(f"{expr} AS {alias}")
        return ",\n       ".join(out)

    def _count(self, doc: str, path: str) -> str:
        """The integer at ``path``, NULL unless ``|n| < 2**53`` (a server's bogus count, such as
        2**63 - 1 for "unknown": two of them would stop SQLite's ``SUM`` with an integer overflow)."""
        if self.name == "sqlite":  # json_extract makes an integer past 64 bits a float
            value = self.field(doc, path, None)
            return f"CASE WHEN typeof({value}) = 'integer' AND {value} BETWEEN {_COUNTS} THEN {value} END"
        value = self.field(doc, path, "numeric")
        return f"CASE WHEN {value} BETWEEN {_COUNTS} THEN {value}::bigint END"


SQLITE = Dialect(name="sqlite", json="TEXT", bytes="BLOB", bigint="INTEGER", param="?", lock_row="")
POSTGRES = Dialect(name="postgres", json="JSON", bytes="BYTEA", bigint="BIGINT", param="%s", lock_row=" FOR UPDATE")


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
