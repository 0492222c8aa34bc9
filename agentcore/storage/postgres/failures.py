"""Driver errors of a PostgreSQL store made agentcore errors, and the URL kept out of them.

Which agentcore error a psycopg/libpq failure becomes, by what it says:

- **A connection setting libpq refuses** (``?sslmode=bogus``, ``:99999``, ``?bogus=1``, a
  ``connect_timeout`` that is not an integer, ``options`` the server refuses): ``ConfigError``
  naming the setting, since retrying cannot help; the URL is checked up front (``check_settings``)
  where libpq's parser can tell, and libpq's later refusals are recognised by their wording
  (``bad_setting``).
- **A server that cannot be used** (down, credentials refused, no such database, no answer in
  time, a connection lost mid-call): ``StorageUnavailable`` saying what to do.
- **A value read from our rows that is not of its type** (SQLSTATE class 22, data exception: a
  cast of a hand-edited ``runs.tail`` to JSON, a ``total_tokens`` that is not a number):
  ``DamagedDatabase`` naming what was being read. Only for reads (``lost(..., reading=True)``):
  in a write, a data exception may come from the values written.
- **Input PostgreSQL cannot store** (a NUL in text) and psycopg's prepared statements meeting a
  pooler in transaction mode: ``ConfigError``.

Secrets: ``redact`` is what messages show of the URL; ``secrets_of`` lists the password's spellings,
which ``PgConnection.scrub`` removes from every driver message before it reaches an error.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from urllib.parse import quote, unquote, urlsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from agentcore.errors import ConfigError, DamagedDatabase, StorageUnavailable
from agentcore.storage.postgres.pooling import pooler_collision, pooler_error
from agentcore.storage.targets import describe, is_url

LIBPQ_KEYWORDS = "https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS"
"""libpq's list of connection parameters and their values (named in ``ConfigError`` messages)."""

_BAD_SETTING = re.compile(
    "|".join(
        (
            r"invalid port number",
            r"invalid (?:uri )?query parameter",
            r"invalid connection option",
            r"invalid percent-encoded token",
            r"forbidden value %00",
            r"invalid integer value .* for connection option",
            r'invalid "?\w+"? value',  # sslmode, gssencmode, target_session_attrs, "ssl_min_protocol_version", ...
            r"invalid value for parameter",  # the server's refusal of ``options`` / client_encoding
            r"unrecognized configuration parameter",
            r"could not match \d+ (?:port numbers|host names)",
            r"could not parse network address",  # hostaddr
            r"invalid ssl protocol version range",
            r"invalid uri propagated",
            r"key/value separator",
            r'missing "=" after',
            r"unterminated quoted string",
            r"end of string reached when looking for matching",
            r"ipv6 host address may not be empty",
            r"unexpected character .* in uri",
            r"ssl support is not compiled in",
            r"bad value for \w+",  # psycopg's own reading of connect_timeout
        )
    ),
    re.IGNORECASE,
)
"""What libpq (or the server, for ``options``) says when it refuses a connection setting: the
user's setting is wrong, not the server down (its ``conninfo_parse``/``connectOptions2`` wording)."""

_OURS = ("connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout")
"""Integer settings ``PgConnection`` passes itself: libpq never sees the URL's value of them, so
``check_settings`` checks it as libpq would have (a URL with ``connect_timeout=abc`` is still wrong)."""

_CHOICES = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "gssencmode": ("disable", "prefer", "require"),
    "channel_binding": ("disable", "prefer", "require"),
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
}
"""Settings whose values libpq takes from a fixed list, compared exactly (case matters; an empty value
is refused too), as libpq 15-18 do: checked before connecting, so a bad one is named even when the
host does not resolve (psycopg resolves the host before libpq reads the rest). The rest (the TLS
protocol versions, compared case-insensitively) are left to libpq."""

_LIBPQ_INT = re.compile(r"\s*[+-]?\d+\s*")
"""An integer as libpq's ``parse_int_param`` reads one (spaces around it allowed)."""


def bad_setting(text: str) -> bool:
    """Whether a driver message (``text``) is libpq's refusal of a connection setting."""
    return _BAD_SETTING.search(text) is not None


def setting_error(where: str, text: str) -> ConfigError:
    """The error for a connection setting refused as ``text`` (libpq's words, password scrubbed)."""
    return ConfigError(
        f"{where}: the connection settings are invalid ({text}). Fix that setting in the URL (or the PG* "
        f"environment variable that sets it; libpq's parameters and their values: {LIBPQ_KEYWORDS}); "
        "nothing was read or written."
    )


def check_settings(url: str, where: str, scrub: Callable[[str], str] = str) -> None:
    """Refuse, before any connection, a URL (or key=value string) whose settings libpq's parser
    refuses (an unknown parameter, bad percent-encoding, an unclosed ``[``), a ``port`` that is not
    1..65535, a value outside the fixed list of a setting such as ``sslmode`` (``_CHOICES``), and a
    non-integer value of a setting agentcore passes itself (``_OURS``).

    ``scrub``: a callable removing the password from a message (``PgConnection.scrub``).

    Raises:
        ConfigError: naming the setting (never the password).
    """
    clean = scrub
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as e:
        raise setting_error(where, " ".join(clean(str(e)).split())) from None
    for port in str(params.get("port") or "").split(","):
        if port.strip() and not (_LIBPQ_INT.fullmatch(port) and 1 <= int(port) <= 65535):
            raise setting_error(where, f'invalid port number: "{clean(port)}" (a port is 1..65535)')
    for name, choices in _CHOICES.items():
        value = params.get(name)
        if value is not None and str(value) not in choices:
            raise setting_error(where, f'invalid {name} value: "{clean(str(value))}" (one of: {", ".join(choices)})')
    for name in _OURS:
        value = params.get(name)
        if value is not None and str(value).strip() and not _LIBPQ_INT.fullmatch(str(value)):
            raise setting_error(where, f'invalid integer value "{clean(str(value))}" for connection option "{name}"')


def pool_timeout() -> type[BaseException]:
    """``psycopg_pool.PoolTimeout`` once a pool has been made (only a pool raises it), else ``psycopg.Error``
    (already caught beside it): so a store without a pool never imports ``psycopg_pool``."""
    pool_module = sys.modules.get("psycopg_pool")
    return pool_module.PoolTimeout if pool_module is not None else psycopg.Error


def _is_pool_timeout(e: BaseException) -> bool:
    pool_module = sys.modules.get("psycopg_pool")
    return pool_module is not None and isinstance(e, pool_module.PoolTimeout)


def data_exception(e: BaseException) -> bool:
    """Whether ``e`` is the server's SQLSTATE class 22 (data exception: a value not of its type, out
    of range, JSON that does not parse); a NUL psycopg refuses to send is not (it has no SQLSTATE)."""
    return isinstance(e, psycopg.Error) and (e.sqlstate or "").startswith("22")


def connect_error(where: str, text: str, timeout_s: float) -> StorageUnavailable | ConfigError:
    """The error for a failed connection attempt (``text``: the driver's message, scrubbed, on one line)."""
    low = text.lower()
    if bad_setting(text):
        return setting_error(where, text)
    if "password authentication failed" in low or "no password supplied" in low or "authentication" in low:
        return StorageUnavailable(
            f"the PostgreSQL server at {where} refused the credentials ({text}). Check the user and "
            "password in the URL (or PGPASSWORD / ~/.pgpass); nothing was read or written."
        )
    if "does not exist" in low and "database" in low:
        return StorageUnavailable(
            f"{where}: {text}. Create it first (`createdb NAME`, or CREATE DATABASE as a superuser); nothing was written."
        )
    if "timeout" in low or "timed out" in low:
        return StorageUnavailable(
            f"the PostgreSQL server at {where} did not answer within {timeout_s:g} s ({text}). Check that it "
            "runs and that the host and port are right; nothing was written."
        )
    return StorageUnavailable(
        f"cannot connect to the PostgreSQL server at {where} ({text}). Is it running and listening there? Start "
        "it (see the README, 'PostgreSQL, the work queue and workers') or fix the host/port in the URL; nothing "
        "was written."
    )


def lost(
    e: BaseException, where: str, text: str, action: str, timeout_s: float, *, reading: bool = False
) -> StorageUnavailable | ConfigError | DamagedDatabase:
    """The error for a driver failure while doing ``action`` on an open connection (``text``: its
    message, scrubbed, on one line; ``reading``: the statement only read our rows)."""
    if pooler_collision(e):
        return pooler_error(where, action, text)
    if isinstance(e, psycopg.DataError) and "NUL (0x00)" in str(e):
        return ConfigError(
            f"{where}: could not {action}: a text value holds a NUL character (U+0000), which "
            "PostgreSQL cannot store in text; nothing was written. Remove it from the value."
        )
    if reading and data_exception(e):
        return DamagedDatabase(
            f"{where}: could not {action}: a value in the rows read is damaged ({text}, SQLSTATE "
            f"{getattr(e, 'sqlstate', '')}). It was changed outside agentcore; restore the database from a backup "
            "(or the run from an exported trace)"
        )
    if _is_pool_timeout(e):
        return StorageUnavailable(
            f"no connection to the PostgreSQL server at {where} within {timeout_s:g} s, so agentcore could "
            f"not {action}: is the server down? Nothing was written; retry once it is back."
        )
    if isinstance(e, (psycopg.OperationalError, psycopg.InterfaceError)) and not isinstance(e, pg_errors.QueryCanceled):
        return StorageUnavailable(
            f"the connection to the PostgreSQL server at {where} was lost while trying to {action} "
            f"({text}). A write that was under way may or may not have committed: re-read the run "
            "(resume it) once the server is back; the log stays consistent either way."
        )
    return StorageUnavailable(f"{where}: could not {action}: {text}")


def redact(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``; a key=value conninfo is summarised."""
    if is_url(url):
        return describe(url)
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparseable connection string)"
    host, port, db = params.get("host", ""), params.get("port", ""), params.get("dbname", "")
    return f"postgresql://{params.get('user', '')}@{host}{':' + str(port) if port else ''}/{db}"


def secrets_of(url: str) -> list[str]:
    """The password of a URL in every spelling a message could show it (raw, decoded, quoted)."""
    parsed = True
    try:
        found = conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        found, parsed = None, False
    password = str(found) if found else None
    found_all = [password] if password else []
    if not password and is_url(url):
        try:
            password = urlsplit(url).password
        except ValueError:  # a URL that does not parse (an unclosed IPv6 bracket): its user-info by hand
            userinfo = url.partition("://")[2].rpartition("@")[0]
            password = userinfo.partition(":")[2] or None
        found_all = [password] if password else []
    if not parsed:  # libpq could not parse it: a ``password=`` pair (URL query or key=value) by hand
        found_all += _password_pairs(url)
    spellings = {s for p in found_all for s in (p, quote(p, safe=""), unquote(p)) if s}
    return sorted(spellings, key=len, reverse=True)


_PAIR = re.compile(r"(?:^|[\s?&])password\s*=\s*('(?:[^'\\]|\\.)*'?|[^\s&]*)((?:\s+[^\s=]+(?=\s|$))*)", re.I)
"""A ``password=`` pair and the bare words after it (``password=my secret dbname=x``: libpq takes
``my`` and then names ``secret`` in its refusal, so both are the user's password)."""


def _password_pairs(text: str) -> list[str]:
    """The values of the ``password=`` pairs of a string libpq could not parse (quotes stripped), each
    with the words that follow it up to the next ``key=``: what libpq's refusal may quote of it."""
    found: list[str] = []
    for m in _PAIR.finditer(text):
        value = m.group(1).strip("'")
        found += [value, *m.group(2).split()]
    return [v for v in found if v]
