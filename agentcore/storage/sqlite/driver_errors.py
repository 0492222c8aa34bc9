"""SQLite driver errors: the result code of each, and the agentcore error it becomes.

``error_name`` reads the code from ``sqlite_errorname`` (Python 3.11+) or, on 3.10, from the
message; everything that asks "is this a lock?", "is this not a database?" goes through it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from agentcore.errors import StorageUnavailable, StoreError

__all__ = ("error_name", "is_busy", "is_not_a_database", "translate")


def error_name(e: BaseException) -> str:
    """The SQLite result code name of a driver error (``SQLITE_BUSY``, ...), from the text on 3.10."""
    name = getattr(e, "sqlite_errorname", None)
    if name:
        return str(name)
    text = str(e).lower()
    for needle, code in (
        ("database is locked", "SQLITE_BUSY"),
        ("database table is locked", "SQLITE_LOCKED"),
        ("readonly database", "SQLITE_READONLY"),
        ("disk is full", "SQLITE_FULL"),
        ("disk i/o error", "SQLITE_IOERR"),
        ("unable to open", "SQLITE_CANTOPEN"),
        ("not a database", "SQLITE_NOTADB"),
        ("malformed", "SQLITE_CORRUPT"),
        ("too big", "SQLITE_TOOBIG"),
    ):
        if needle in text:
            return code
    return "SQLITE_ERROR"


def is_busy(e: BaseException) -> bool:
    """Whether a driver error means another connection holds a lock (worth retrying)."""
    return isinstance(e, sqlite3.OperationalError) and error_name(e).startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def is_not_a_database(e: BaseException) -> bool:
    """Whether a driver error says the file is not an SQLite database, or a corrupt one."""
    return error_name(e).startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT"))


def _read_only_directory(where: str) -> bool:
    if where == ":memory:":
        return False
    return not os.access(Path(where).absolute().parent, os.W_OK)


def _what_is_read_only(where: str) -> str:
    """Which is read-only: the database file, or the directory SQLite must create ``-wal``/``-shm`` in."""
    if where == ":memory:":
        return f"{where} is read-only"
    file = Path(where)
    file_ro = file.exists() and not os.access(file, os.W_OK)
    if _read_only_directory(where) and not file_ro:
        return (
            f"the directory {file.absolute().parent} is read-only (the file {where} itself is writable, but SQLite "
            f"must create {file.name}-wal and {file.name}-shm beside it)"
        )
    return f"the file {where} is read-only"


def translate(e: sqlite3.Error, where: str, action: str) -> StoreError:
    """The agentcore error for a driver error raised while doing ``action`` on ``where``."""
    name = error_name(e)
    if name.startswith("SQLITE_READONLY") or (name.startswith("SQLITE_CANTOPEN") and _read_only_directory(where)):
        return StorageUnavailable(
            f"{_what_is_read_only(where)}, so agentcore could not {action}; nothing was written. "
            "Open a writable copy, fix the permissions, or open the store without read_only=True."
        )
    if name.startswith("SQLITE_FULL"):
        return StorageUnavailable(
            f"{where}: the disk is full (or the database hit its size limit), so agentcore could not "
            f"{action}; nothing of it was written and the log is as it was. Free some space and retry."
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StorageUnavailable(
            f"{where} stayed locked by another writer for longer than busy_timeout_s, so agentcore could "
            f"not {action}; nothing was written. Retry, or raise busy_timeout_s."
        )
    if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN")):
        return StorageUnavailable(f"{where}: I/O error while trying to {action} ({e}); nothing was written.")
    if name == "SQLITE_TOOBIG":
        return StorageUnavailable(f"{where}: a value is larger than SQLite allows, so agentcore could not {action}.")
    return StorageUnavailable(f"{where}: could not {action}: {e}")
