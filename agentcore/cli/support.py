"""The CLI's conventions in one place: exit codes, safe terminal output, ``--json`` errors, the store.

- **Exit codes**: ``EXIT_OK`` (0), ``EXIT_FAILED`` (1: a run that failed, a replay that diverged, or
  an error such as an unknown run), ``EXIT_USAGE`` (2: bad arguments, as click does, or a ``--db``
  refused as a setting: ``BadTarget``), ``EXIT_WAITING`` (3: the run waits for the user's answer).
- **Streams**: answers and data go to stdout (``console``), progress, banners and hints to stderr
  (``err_console``). Off a terminal nothing is hard-wrapped.
- **Inert data**: every string printed from data passes ``inert``, which turns terminal control
  sequences (ESC, CSI, OSC, C0 and C1 controls) and Unicode bidi controls into visible text, so a repository, a run id or an
  imported trace cannot drive the terminal.
- **Errors**: one line, ``Error: <message>`` on stderr, never a traceback or an internal class name;
  with ``--json`` the error is ``{"error": {"type": ..., "message": ...}}`` on stdout.
- **The store**: ``--db`` on the group or the command, else ``$AGENTCORE_DB``, else ``agentcore.db``
  (a file path or a ``postgresql://`` URL, opened by ``storage.open_store``; ``shown(db)`` is what
  may be printed of it: a URL without its password);
  ``with_store`` opens it once per command (closed by ``ctx.call_on_close``) and resolves ``last``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agentcore.cli.params import RUN_ID, SEQ, UTF8_TEXT, RunIdType, SeqType, Utf8Text, utf8_problem
from agentcore.errors import AgentcoreError, ConfigError, RunNotFound
from agentcore.storage.targets import describe, is_conninfo, is_url, looks_like_url, open_store

if TYPE_CHECKING:
    from rich.console import Console

    from agentcore.storage.sqlite.store import SQLiteEventStore

__all__ = (
    "DB_ENV",
    "DEFAULT_DB",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_WAITING",
    "LAST",
    "RUN_ID",
    "SEQ",
    "UTF8_TEXT",
    "AgentcoreGroup",
    "RunIdType",
    "SeqType",
    "Utf8Text",
    "console",
    "err_console",
    "inert",
    "print_json",
    "safe",
    "shown",
    "utf8_problem",
    "with_store",
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_WAITING = 3

DEFAULT_DB = "agentcore.db"
DB_ENV = "AGENTCORE_DB"
LAST = "last"

# Unicode bidirectional controls: marks (LRM, RLM, ALM), embeddings and overrides (LRE..RLO) and
# isolates (LRI..PDI). Printed raw they reorder the terminal's text ("Trojan Source", CVE-2021-42574).
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 controls except TAB and LF, DEL, C1 controls (0x9b is an 8-bit CSI, 0x9d an 8-bit OSC), bidi.
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
# the same set without the C0 range, which json.dumps escapes already
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_BIDI}]")


def _shown(char: str) -> str:
    """``\\xNN`` for a character up to U+00FF, ``\\uNNNN`` above (as Python writes them)."""
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def inert(text: object) -> str:
    """``text`` with every terminal control character shown as ``\\xNN`` instead of acting.

    ESC (so CSI and OSC sequences, ``\\x1b[2J``, ``\\x1b]0;title\\x07``), CR, BS, BEL, the other C0
    controls, DEL and the C1 controls (``\\x9b``) become four visible characters each; the Unicode
    bidirectional controls (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), which would
    reorder the line's text, become six (``\\u202e``); TAB and LF stay. The result shows the same
    data and cannot move the cursor, clear the screen, set the title, write a hyperlink or show the
    line's characters in another order than they are stored.
    """
    return _CONTROL.sub(lambda m: _shown(m.group()), str(text))


def safe(text: object) -> str:
    """``inert`` text escaped for rich markup: data placed inside a markup string."""
    from rich.markup import escape

    return escape(inert(text))


def _safe_console(stderr: bool) -> Console:
    """A rich console whose string arguments are made inert, and that never hard-wraps off a terminal."""
    from rich.console import Console

    class SafeConsole(Console):
        def print(self, *objects: Any, **kwargs: Any) -> None:
            if not self.is_terminal:
                kwargs.setdefault("soft_wrap", True)
            super().print(*(inert(o) if isinstance(o, str) else o for o in objects), **kwargs)

        def on_broken_pipe(self) -> None:
            _quiet_exit()

    return SafeConsole(stderr=stderr, highlight=False)


class LazyConsole:
    """Stands for a ``SafeConsole`` on stdout or stderr, made (and rich imported) on first use.

    Commands that print only JSON or plain text (``state``, ``--json``) never import rich.
    Attribute reads and writes (``print``, ``width``, ``is_terminal``) go to the real console.
    """

    def __init__(self, stderr: bool = False) -> None:
        object.__setattr__(self, "_stderr", stderr)
        object.__setattr__(self, "_console", None)

    @property
    def real(self) -> Console:
        """The rich console itself (made on first use)."""
        made = object.__getattribute__(self, "_console")
        if made is None:
            made = _safe_console(object.__getattribute__(self, "_stderr"))
            object.__setattr__(self, "_console", made)
        return made

    @property
    def width(self) -> int:
        """The real console's width (a property here too, so patching it restores it)."""
        return self.real.width

    @width.setter
    def width(self, value: int) -> None:
        self.real.width = value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.real, name, value)


console: Console = LazyConsole()  # type: ignore[assignment]  # behaves as one (attributes forwarded)
err_console: Console = LazyConsole(stderr=True)  # type: ignore[assignment]


def print_json(obj: Any) -> None:
    """Plain JSON on stdout (no colour codes; C1 and bidi controls escaped as ``\\u009b``, ``\\u202e``), for scripts."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=str)
    click.echo(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (a preview) rather than a file or a pipe (exact bytes)."""
    return sys.stdout.isatty()


def _quiet_exit() -> None:
    """Stdout's reader went away (``| head``): stop without a message, exit code 0."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor (tests)
        pass
    raise SystemExit(EXIT_OK)


# ------------------------------------------------------------------------------------------------
# errors


def _wants_json(args: list[str]) -> bool:
    return "--json" in args


def error_json(kind: str, message: str) -> None:
    print_json({"error": {"type": kind, "message": message}})


class AgentcoreGroup(click.Group):
    """The ``agentcore`` group: errors become one line (or JSON with ``--json``), pipes close quietly."""

    def main(self, args: Any = None, *a: Any, **kw: Any) -> Any:
        self._json_errors = _wants_json(list(args) if args is not None else sys.argv[1:])
        return super().main(args, *a, **kw)

    def invoke(self, ctx: click.Context) -> Any:
        json_errors = getattr(self, "_json_errors", False)
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _quiet_exit()
        except click.ClickException as e:
            if not json_errors:
                raise
            kind = getattr(e, "kind", None) or ("UsageError" if isinstance(e, click.UsageError) else "Error")
            error_json(kind, e.format_message())
            raise SystemExit(e.exit_code) from None
        except AgentcoreError as e:
            if json_errors:
                error_json(type(e).__name__, str(e))
                raise SystemExit(EXIT_FAILED) from None
            raise click.ClickException(inert(str(e))) from None
        except OSError as e:  # an output file that cannot be written, a vanished input
            where = f": {e.filename}" if e.filename else ""
            message = inert(f"{e.strerror or e}{where}")
            if json_errors:
                error_json("OSError", message)
                raise SystemExit(EXIT_FAILED) from None
            raise click.ClickException(message) from None


# ------------------------------------------------------------------------------------------------
# parameters (their types are in agentcore.cli.params)


def check_seqs(store: SQLiteEventStore, run_id: str, **seqs: int | None) -> None:
    """Refuse (as a usage error) seqs past the run's last event, naming the valid range."""
    last = store.last_seq(run_id)
    for name, seq in seqs.items():
        if seq is not None and seq > last:
            raise click.BadParameter(
                f"{seq} is past the end of run {inert(run_id)}: it has seqs 1..{last} (0 = the empty state)",
                param_hint=f"'{name}'",
            )


# ------------------------------------------------------------------------------------------------
# the store


def db_target(ctx: click.Context, db: str | None) -> str:
    """The database to use: the command's ``--db``, the group's ``--db``, ``$AGENTCORE_DB``, the default.

    A ``--db`` given empty (``--db "$UNSET"``) is a usage error, never the default file in the
    current directory; an empty ``$AGENTCORE_DB`` counts as unset.
    """
    group_db = (ctx.find_root().params or {}).get("db")
    for given in (db, group_db):
        if given is not None and not given.strip():
            raise click.BadParameter(
                "is empty: pass an SQLite file path or a postgresql:// URL, or leave --db out "
                f"(then ${DB_ENV}, else {DEFAULT_DB})",
                param_hint="'--db'",
            )
    return db or group_db or os.environ.get(DB_ENV) or DEFAULT_DB


class BadTarget(click.ClickException):
    """A ``--db`` (or ``--otlp`` URL) refused as a setting (``ConfigError``): exit 2, ``--json`` type ``ConfigError``."""

    exit_code = EXIT_USAGE
    kind = "ConfigError"


def open_db(db: str, *, must_exist: bool = True, pool: bool = True) -> Any:
    """Open the store ``db`` names (a path or a URL); a missing file is an error unless ``must_exist`` is false.
    ``pool=False``: a PostgreSQL store gets one connection instead of a pool (a one-shot command).

    ``BadTarget`` (exit 2) for a ``ConfigError``: a URL that does not parse, a bad port or ``sslmode``, ...
    """
    if must_exist and not looks_like_url(db) and not is_conninfo(db) and not Path(db).exists():
        raise click.ClickException(
            f"no database at {shown(db)}: run `agentcore ask` first, or pass --db PATH or --db postgresql://... "
            f"(or set {DB_ENV})"
        )
    try:
        if is_url(db):  # the pool's own notes ("discarding closed connection") are not for users: ours say it once
            logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
            if not pool:
                return open_store(db, pool=False)
        return open_store(db)
    except ConfigError as e:
        raise BadTarget(inert(str(e))) from None


def shown(db: str) -> str:
    """``db`` as it may be printed: a URL without its password, made inert."""
    return inert(describe(db))


def resolve_run(store: SQLiteEventStore, run_id: str) -> str:
    """``run_id`` itself, or the newest run's id for ``last``; ``RunNotFound`` when there is none."""
    if run_id != LAST:
        store.run(run_id)
        return run_id
    runs = store.runs()
    if not runs:
        raise RunNotFound("the database has no runs yet: run `agentcore ask` first")
    return runs[-1].id


def db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        "db",
        default=None,
        help=f"An SQLite file path or a postgresql://user:password@host:port/dbname URL (default: the group's "
        f"--db, ${DB_ENV}, or {DEFAULT_DB}).",
    )(fn)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)


def with_store(
    *, must_exist: bool = True, check: Callable[[str], None] | None = None, pool: bool = True
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give the command ``store`` (opened once, closed when the command ends) and ``db`` (its path).

    ``pool=False`` (the inspection commands): on PostgreSQL, one connection instead of a pool.

    A ``run_id`` argument of ``last`` is replaced by the newest run's id, and any other id is
    checked to exist; so is each of a ``run_ids`` tuple. ``check(db)`` runs before the store is
    opened (it raises to refuse a target without creating anything).
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, db: str | None, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            target = db_target(ctx, db)
            if check is not None:
                check(target)
            store = open_db(target, must_exist=must_exist, pool=pool)
            ctx.call_on_close(store.close)
            if "run_id" in kwargs:
                kwargs["run_id"] = resolve_run(store, kwargs["run_id"])
            if "run_ids" in kwargs:
                kwargs["run_ids"] = tuple(resolve_run(store, rid) for rid in kwargs["run_ids"])
            return fn(*args, store=store, db=target, **kwargs)

        return db_option(wrapper)

    return decorate
