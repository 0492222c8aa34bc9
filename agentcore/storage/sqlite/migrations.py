"""The SQLite schema of an agentcore database, as numbered migrations.

Schema changes are ``sqlite_utils`` migrations in the ``agentcore`` set, applied in order and
recorded in ``_sqlite_migrations``; ``PRAGMA user_version`` is set to the number of migrations
applied, so any SQLite tool can tell which schema a file has. Old event rows are never
rewritten: event *bodies* change through upcasters in ``agentcore.core.event_codec``, not here.

``sqlite_utils`` is imported only to create or migrate a file (``migrate``, ``sqlite_migrations``):
opening an up-to-date file checks it with the standard ``sqlite3`` alone (CLI start-up, W10).

``inspect_file`` looks at a file before anything writes to it, so that opening a file that is
not ours (or that a newer agentcore wrote) changes nothing: no WAL switch, no ``-wal`` file.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentcore.errors import DamagedDatabase, NotAnAgentcoreDatabase
from agentcore.storage.schema import SQLITE, foreign_tables, newer_schema
from agentcore.storage.sqlite.driver_errors import is_busy, is_not_a_database

SQLITE_HEADER = b"SQLite format 3\x00"
MIGRATION_SET = "agentcore"

if TYPE_CHECKING:
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

_STEPS: tuple[tuple[str, list[str]], ...] = (
    # runs and their append-only events (one JSON body per event)
    ("m001_runs_events", [*SQLITE.create_table("runs"), *SQLITE.create_table("events")]),
    # content-addressed raw bytes (tool outputs, large request bodies)
    ("m002_artifacts", SQLITE.create_table("artifacts")),
    # state snapshots (a cache of ``fold``) and the counters of the snapshot policy
    ("m003_snapshots", SQLITE.create_table("snapshots")),
    # read-only views for ``sqlite-utils``/``datasette``: facts, LLM usage, tool calls
    (
        "m004_views",
        [
            SQLITE.facts_view(nul_safe=False),
            SQLITE.event_view("llm_usage", without=("step_id", "cost_usd"), nul_safe=False),
            SQLITE.event_view("tool_calls", nul_safe=False),
        ],
    ),
    # ``llm_usage`` gains ``step_id`` and ``cost_usd`` (dollars; NULL when the model has no known price);
    # ``llm_cost`` sums it per run, role and step, NULL when any call in the group is unpriced
    (
        "m005_llm_cost",
        ["DROP VIEW IF EXISTS llm_usage", SQLITE.event_view("llm_usage", nul_safe=False), SQLITE.llm_cost_view()],
    ),
    # the views read a copy of each body with NULs shown as the six characters ``\u0000``
    # (``json_extract`` cut a string at its first NUL), ``facts.value_json`` gives a value's exact
    # JSON and a token count past 64 bits is NULL: the same rows as PostgreSQL's m009
    (
        "m006_nul_safe_views",
        [
            "DROP VIEW IF EXISTS llm_cost",
            "DROP VIEW IF EXISTS llm_usage",
            "DROP VIEW IF EXISTS tool_calls",
            "DROP VIEW IF EXISTS facts",
            SQLITE.facts_view(),
            SQLITE.event_view("llm_usage"),
            SQLITE.llm_cost_view(),
            SQLITE.event_view("tool_calls"),
        ],
    ),
)
"""Every migration, in order: its name and its statements (never edited once released)."""


def _step(statements: list[str]) -> Callable[[Database], None]:
    def run(db: Database) -> None:
        for sql in statements:
            db.execute(sql)

    return run


@functools.cache
def sqlite_migrations() -> Migrations:
    """``_STEPS`` as the ``sqlite_utils`` migration set that ``migrate`` applies (imports sqlite_utils)."""
    from sqlite_utils.migrations import Migrations

    steps = Migrations(MIGRATION_SET)
    for name, statements in _STEPS:
        steps(name=name)(_step(statements))
    return steps


def __getattr__(name: str) -> Any:
    if name == "migrations":  # the sqlite_utils object, built on first use
        return sqlite_migrations()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MIGRATION_NAMES: tuple[str, ...] = tuple(name for name, _ in _STEPS)
"""Every migration this agentcore knows, in order."""

MIGRATIONS_TABLE = {"_sqlite_migrations": frozenset({"id", "migration_set", "name", "applied_at"})}
"""The table ``sqlite_utils`` records applied migrations in, with its columns."""

SCHEMA_VERSION = len(MIGRATION_NAMES)
"""The ``PRAGMA user_version`` of a fully migrated file."""

APPLICATION_ID = 0x41474331
"""``PRAGMA application_id`` of an agentcore database ("AGC1"); files made before it was set carry 0."""


@dataclass(frozen=True, kw_only=True)
class FileCheck:
    """What ``inspect_file`` found."""

    kind: Literal["new", "agentcore"]
    """``new``: absent, empty or an SQLite file without tables; ``agentcore``: one of ours."""
    version: int = 0
    pending: tuple[str, ...] = ()
    """Migrations still to apply (an older agentcore wrote the file)."""


def inspect_connection(conn: sqlite3.Connection, where: str) -> FileCheck:
    """Classify an open database without writing to it.

    Raises:
        NotAnAgentcoreDatabase: it has tables but no agentcore migrations.
        SchemaTooNew: a newer agentcore wrote it.
    """
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if app_id not in (0, APPLICATION_ID):
        raise NotAnAgentcoreDatabase(
            f"{where} belongs to another application (SQLite application_id {app_id:#010x}), not agentcore; "
            "nothing was changed. Pass the path of an agentcore database or of a new file."
        )
    if not tables:
        user_version = conn.execute("PRAGMA user_version").fetchone()[0]
        if user_version != 0:
            raise NotAnAgentcoreDatabase(
                f"{where} is an empty SQLite database that belongs to another application (user_version "
                f"{user_version}); nothing was changed. Pass the path of an agentcore database or of a new file."
            )
        return FileCheck(kind="new")
    applied: list[str] = []
    if "_sqlite_migrations" in tables:
        applied = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid", [MIGRATION_SET]
            )
        ]
    if not applied:
        raise foreign_tables(where, list(tables), "Pass the path of an agentcore database or of a new file.")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    unknown = [name for name in applied if name not in MIGRATION_NAMES]
    if version > SCHEMA_VERSION or unknown:
        raise newer_schema(where, max(version, len(applied)), unknown, SCHEMA_VERSION)
    _check_schema(conn, where, applied)
    pending = tuple(name for name in MIGRATION_NAMES if name not in applied)
    return FileCheck(kind="agentcore", version=version, pending=pending)


def _schema(conn: sqlite3.Connection) -> dict[str, frozenset[str]]:
    """Table and view names -> their column names."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'"
        )
    ]
    out: dict[str, frozenset[str]] = {}
    for n in names:
        try:
            out[n] = frozenset(r[0] for r in conn.execute("SELECT name FROM pragma_table_info(?)", (n,)))
        except sqlite3.OperationalError as e:
            if is_busy(e):
                raise
            out[n] = frozenset()  # a view over a table that is gone: it has no usable columns
    return out


@functools.cache
def _expected_schema(applied: int) -> dict[str, frozenset[str]]:
    """The tables and columns after the first ``applied`` migrations (their statements run on an
    in-memory database, plus the table of applied migrations)."""
    conn = sqlite3.connect(":memory:")
    try:
        for _, statements in _STEPS[:applied]:
            for sql in statements:
                conn.execute(sql)
        return {**_schema(conn), **MIGRATIONS_TABLE}
    finally:
        conn.close()


def _check_schema(conn: sqlite3.Connection, where: str, applied: list[str]) -> None:
    """Refuse an agentcore file whose migrations or tables are not what its recorded migrations made.

    Raises:
        DamagedDatabase: migrations recorded out of order (half-applied), or a table, view or column missing.
    """
    if list(MIGRATION_NAMES[: len(applied)]) != applied:
        raise DamagedDatabase(
            f"{where} is a damaged agentcore database: its recorded migrations ({', '.join(applied)}) are not "
            "applied in order (a migration was half-applied or removed); nothing was changed. Restore it from a "
            "copy, or export what is readable with another tool."
        )
    actual = _schema(conn)
    for table, columns in _expected_schema(len(applied)).items():
        missing = sorted(columns - actual.get(table, frozenset()))
        if table not in actual or missing:
            what = f"table {table!r} is missing" if table not in actual else f"{table!r} lacks columns {missing}"
            raise DamagedDatabase(
                f"{where} is a damaged agentcore database: {what}; nothing was changed. Restore it from a copy."
            )


def inspect_file(path: Path) -> FileCheck | None:
    """Classify the file at ``path`` without writing a byte of it (or beside it).

    The look is taken with ``immutable=1``, which creates no ``-wal``/``-shm`` file but does not
    see a WAL another process has not checkpointed yet. So only what such a look proves is acted
    on (not SQLite, another application's tables, a newer schema); for the rest it returns the
    verdict (or ``None`` when it cannot tell) and the caller checks again with ``classify`` on
    its own connection before it writes anything.

    Raises:
        NotAnAgentcoreDatabase: not SQLite, or another application's tables.
        SchemaTooNew: a newer agentcore wrote it.
    """
    if not path.exists() or path.stat().st_size == 0:
        return FileCheck(kind="new")
    with path.open("rb") as f:
        header = f.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise NotAnAgentcoreDatabase(
            f"{path} is not an SQLite database (it starts with {header[:16]!r}); nothing was changed. "
            "Pass the path of an agentcore database or of a new file."
        )
    try:
        conn = sqlite3.connect(path.absolute().as_uri() + "?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        return None
    try:
        return inspect_connection(conn, str(path))
    except sqlite3.Error:
        return None  # torn by a concurrent writer, or corrupt: ``classify`` will tell, with locks
    finally:
        conn.close()


def classify(conn: sqlite3.Connection, where: str) -> FileCheck:
    """``inspect_connection`` on a normal (locking) connection, with read errors made agentcore errors.

    Raises:
        NotAnAgentcoreDatabase: not an SQLite file, a corrupt one, or another application's tables.
        SchemaTooNew: a newer agentcore wrote it.
    """
    try:
        return inspect_connection(conn, where)
    except sqlite3.DatabaseError as e:
        if not is_not_a_database(e):
            raise
        raise DamagedDatabase(
            f"{where} is damaged: it looks like SQLite but cannot be read ({e}); nothing was changed. "
            "Restore it from a copy, or pass the path of an agentcore database or of a new file."
        ) from None


def migrate(conn: sqlite3.Connection) -> None:
    """Apply pending migrations and set ``user_version``; the caller holds a write transaction."""
    from sqlite_utils import Database

    db = Database(conn, execute_plugins=False, recursive_triggers=False)
    sqlite_migrations().apply(db)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
