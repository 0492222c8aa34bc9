"""Running behind a connection pooler in transaction mode: the ``prepared_statements`` setting.

A pooler in transaction mode (PgBouncer's ``pool_mode = transaction``) runs each transaction of a
client connection on whichever server session is free, so nothing may rely on a session of its own:
not prepared statements (psycopg prepares a statement as ``_pg3_N`` on its fifth execution on a
connection; behind such a pooler that name is already on, or missing from, the session the next
statement lands on), not ``SET``, not ``LISTEN`` (PgBouncer hands a notification to whichever client
the session serves at that moment, or drops it). ``prepared_statements=False``, or
``AGENTCORE_PG_PREPARED=0`` for the CLI and workers, turns all three off (``PgConnection``,
``queue.PollingListener``). Left on behind such a pooler, the failure is a ``ConfigError`` that names
the setting (``pooler_error``), not a raw driver error.
"""

from __future__ import annotations

import os

from psycopg import errors as pg_errors

from agentcore.errors import ConfigError

PREPARED_ENV = "AGENTCORE_PG_PREPARED"
"""The environment variable that sets ``prepared_statements`` where no code passes it (the CLI,
workers): ``0`` (or ``false``, ``no``, ``off``) for a pooler in transaction mode; unset, empty or
``1`` (``true``, ``yes``, ``on``): prepared statements (the default)."""

_OFF = ("0", "false", "no", "off")
_ON = ("", "1", "true", "yes", "on")


def use_prepared(prepared_statements: bool | None) -> bool:
    """Whether to prepare statements: ``prepared_statements`` if given, else ``$AGENTCORE_PG_PREPARED``
    (default: yes).

    Raises:
        ConfigError: a value that is not a bool, or a variable that is not one of the spellings above.
    """
    if prepared_statements is not None:
        if not isinstance(prepared_statements, bool):
            raise ConfigError(f"prepared_statements must be True or False, got {prepared_statements!r}")
        return prepared_statements
    text = os.environ.get(PREPARED_ENV, "").strip().lower()
    if text in _ON:
        return True
    if text in _OFF:
        return False
    raise ConfigError(
        f"{PREPARED_ENV}={os.environ[PREPARED_ENV]!r} is not understood: set it to 0 behind a pooler in "
        "transaction mode (no prepared statements), or 1 (or leave it unset) otherwise"
    )


_PSYCOPG_PREPARED = "_pg3_"
"""What the names of psycopg's automatic prepared statements start with (``_pg3_0``, ...)."""


def pooler_collision(e: BaseException) -> bool:
    """Whether ``e`` is psycopg's own prepared statement missing from, or already on, the server
    session: the mark of a pooler in transaction mode with ``prepared_statements`` left on."""
    return isinstance(e, (pg_errors.DuplicatePreparedStatement, pg_errors.InvalidSqlStatementName)) and (
        _PSYCOPG_PREPARED in str(e)
    )


def pooler_error(where: str, action: str, text: str) -> ConfigError:
    """The error for a ``pooler_collision`` while doing ``action`` (``text``: the driver's message)."""
    return ConfigError(
        f"{where}: could not {action}: {text}. psycopg's prepared statements (_pg3_N) met another client's on "
        "a shared server session: the server is behind a connection pooler in transaction mode. Turn prepared "
        f"statements off: {PREPARED_ENV}=0 in the environment (or prepared_statements=False in code), or use "
        "the pooler's session mode. Nothing of this was written; retry with the setting."
    )
