"""``open_store(target)``: the store a path or a URL names (what every ``--db`` option takes).

A target is a ``postgresql://`` (or ``postgres://``) URL, which opens a ``PostgresEventStore``
(needs ``pip install 'agentcore[postgres]'``), or a file path, which opens a ``SQLiteEventStore``.
``AGENTCORE_DB`` in the environment is the default target; without it, ``agentcore.db`` in the
current directory.
"""

from __future__ import annotations

import os
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


def describe(target: str | os.PathLike[str]) -> str:
    """The target as it may be shown: a URL without its password, a path as it is."""
    text = os.fspath(target)
    if not is_url(text):
        return text
    from urllib.parse import urlsplit

    parts = urlsplit(text)
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
        ConfigError: a URL but psycopg is not installed, or an empty target.
        RunNotFound: ``must_exist`` and no file at the path.
        StorageUnavailable, NotAnAgentcoreDatabase, SchemaTooNew: as the store's constructor.
    """
    text = default_target() if target is None else os.fspath(target)
    if not text:
        raise ConfigError(f"no database given: pass a file path or a postgresql:// URL (or set {ENV_VAR})")
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
