"""``open_store(target)``: the store a path or a URL names (what every ``--db`` option takes).

A target is a ``postgresql://`` (or ``postgres://``) URL, which opens a ``PostgresEventStore``
(needs ``pip install 'agentcore[postgres]'``), or a file path, which opens a ``SQLiteEventStore``.
``AGENTCORE_DB`` in the environment is the default target; without it, ``agentcore.db`` in the
current directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from agentcore.errors import ConfigError, RunNotFound

ENV_VAR = "AGENTCORE_DB"
DEFAULT_TARGET = "agentcore.db"


def is_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL server rather than a file."""
    return isinstance(target, str) and target.lower().startswith(("postgresql://", "postgres://"))


def default_target() -> str:
    """``$AGENTCORE_DB`` if set (a path or a URL), else ``agentcore.db``."""
    return os.environ.get(ENV_VAR) or DEFAULT_TARGET


_CONNINFO = re.compile(r"(?:^|\s)(?:host|hostaddr|port|dbname|user|password|passfile|service|sslmode)\s*=", re.I)
"""A libpq ``key=value`` connection string (not a URL, and not a file name anyone would choose)."""
_PASSWORD_PAIR = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S+)", re.I)


def is_conninfo(target: object) -> bool:
    """Whether ``target`` is a libpq ``key=value`` string (``host=db user=me password=...``)."""
    return isinstance(target, str) and not is_url(target) and bool(_CONNINFO.search(target))


_ANY_URL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]+://|postgres(?:ql)?:)", re.I)
"""Anything written as a URL (``postgresql+psycopg://``, ``mysql://``, ``postgresql:/`` with one slash):
never taken for a file path, whose errors would print it whole, password and all."""


def looks_like_url(target: object) -> bool:
    """Whether ``target`` is written as a URL of any scheme (a ``postgresql://`` URL or not)."""
    return isinstance(target, str) and bool(_ANY_URL.match(target))


def _mask_by_hand(text: str) -> str:
    """``text`` (URL-like, not parseable) with what stands between its scheme and its last ``@`` cut after a colon."""
    head, at, tail = text.rpartition("@")
    if at:
        found = re.match(r"^(\s*[A-Za-z][A-Za-z0-9+.-]*:/*)?(.*)$", head, re.S)
        prefix, userinfo = (found.group(1) or "", found.group(2)) if found else ("", head)
        text = f"{prefix}{userinfo.split(':', 1)[0]}{':***' if ':' in userinfo else ''}@{tail}"
    return _PASSWORD_PAIR.sub(r"\1***", text)


def describe(target: str | os.PathLike[str]) -> str:
    """The target as it may be shown: a URL without its password, a path as it is.

    Never raises: a URL that does not parse (``postgresql://u:pw@[::1/db``), or of another scheme
    (``postgresql+psycopg://u:pw@h/db``), is shown with its user-info's password cut out, and any
    ``password=...`` pair (a query parameter, a libpq ``key=value`` string) as ``password=***``.
    """
    text = os.fspath(target)
    if not looks_like_url(text):
        return _PASSWORD_PAIR.sub(r"\1***", text)
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text.strip())
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return _mask_by_hand(text)
    if not parts.netloc or "@" in parts.path:  # "postgresql:/u:pw@h/db": no authority to parse
        return _mask_by_hand(text)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hostinfo = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}{':***' if ':' in userinfo else ''}@{hostinfo}"
    query = "&".join(p for p in parts.query.split("&") if p and not p.lower().startswith("password="))
    return f"{parts.scheme}://{netloc}{parts.path}{'?' + query if query else ''}"


def open_store(target: str | os.PathLike[str] | None = None, *, must_exist: bool = False, **options: Any) -> Any:
    """Open the store ``target`` names (``None``: ``default_target()``).

    Args:
        target: A ``postgresql://user:password@host:port/dbname`` URL or an SQLite file path.
        must_exist: For a path: refuse a file that does not exist (instead of creating it).
        options: Passed to the store's constructor (``snapshot_every``, ...).

    Returns:
        A ``PostgresEventStore`` or a ``SQLiteEventStore`` (both close with ``close()`` or ``with``).

    Raises:
        ConfigError: a URL but psycopg is not installed, an empty target, a libpq ``key=value``
            string or a URL of another scheme (``postgresql+psycopg://``, ``sqlite://``: refused, so that
            no file is named after it).
        RunNotFound: ``must_exist`` and no file at the path.
        StorageUnavailable, NotAnAgentcoreDatabase, SchemaTooNew: as the store's constructor.
    """
    text = default_target() if target is None else os.fspath(target)
    if not text:
        raise ConfigError(f"no database given: pass a file path or a postgresql:// URL (or set {ENV_VAR})")
    if is_conninfo(text):  # else it would become an SQLite file named after it (password and all)
        raise ConfigError(
            f"{describe(text)!r} is a libpq key=value connection string; agentcore takes a URL: "
            "postgresql://user@host:port/dbname (with the password in PGPASSWORD or ~/.pgpass, or user:password@)"
        )
    if is_url(text.strip()):
        scheme, sep, rest = text.strip().partition("://")
        text = f"{scheme.lower()}{sep}{rest}"  # libpq knows only the lower-case schemes
    elif looks_like_url(text):
        driver = " (without a driver: postgresql://, not postgresql+psycopg://)" if "postgres" in text.lower() else ""
        raise ConfigError(
            f"{describe(text)!r} is not a database agentcore can open: give an SQLite file path or a "
            f"postgresql://user@host:port/dbname URL{driver}"
        )
    if is_url(text):
        try:
            from agentcore.storage.postgres.store import PostgresEventStore
        except ImportError as e:
            raise ConfigError(
                f"{describe(text)} is a PostgreSQL URL, but psycopg is not installed ({e.name}): "
                "pip install 'agentcore[postgres]'"
            ) from None
        return PostgresEventStore(text, **options)
    if must_exist and not Path(text).exists():
        raise RunNotFound(f"no database at {text}: run `agentcore ask` first, or pass --db PATH or a postgresql:// URL")
    from agentcore.storage.sqlite.store import SQLiteEventStore

    return SQLiteEventStore(text, **options)
