"""Connection settings libpq refuses are the user's setting at fault (``ConfigError`` naming it), not
a server that is down (``StorageUnavailable`` "is it running?", as they were), on a real server.

Each bad URL is the test server's own URL (password and all) with one setting spoiled, opened as
a pooled store and as a one-connection store (``pool=False``, the CLI's inspection commands): the
refusal names the setting, says what to do, and never shows the password.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from agentcore.errors import ConfigError, StorageUnavailable
from agentcore.storage.postgres.store import PostgresEventStore
from tests.support.postgres import PASSWORD, free_port


def _spoiled(url: str, how: str) -> str:
    """``url`` with one setting spoiled: ``?...`` adds query parameters, ``port=...`` replaces the
    port, ``host=...`` the host, ``password=...`` the password."""
    if how.startswith("?"):
        return url + how
    parts = urlsplit(url)
    key, _, value = how.partition("=")
    user, host, port = parts.username, parts.hostname, parts.port
    if key == "port":
        return f"postgresql://{user}:{PASSWORD}@{host}:{value}{parts.path}"
    if key == "host":
        return f"postgresql://{user}:{PASSWORD}@{value}:{port}{parts.path}"
    assert key == "password"
    return f"postgresql://{user}:{value}@{host}:{port}{parts.path}"


BAD = {
    "a port past 65535": ("port=99999", 'invalid port number: "99999"'),
    "a port that is not a number": ("port=54x", 'invalid port number: "54x"'),
    "an unknown parameter": ("?bogus=1", 'invalid URI query parameter: "bogus"'),
    "an sslmode libpq does not know": ("?sslmode=bogus", 'invalid sslmode value: "bogus"'),
    "a target_session_attrs libpq does not know": ("?target_session_attrs=any2", "invalid target_session_attrs value"),
    "a connect_timeout that is not an integer": (
        "?connect_timeout=soon", 'invalid integer value "soon" for connection option "connect_timeout"'
    ),
    "a keepalives_idle that is not an integer": ("?keepalives_idle=x", '"keepalives_idle"'),
    "a hostaddr that is no address": ("?hostaddr=nowhere", 'could not parse network address "nowhere"'),
    "options the server refuses": ("?options=-c%20no_such_setting%3D1", 'unrecognized configuration parameter "no_such'),
    "an unclosed IPv6 bracket": ("host=[::1", 'looking for matching "]"'),
    "bad percent-encoding in the password": (f"password={PASSWORD}%zz", "invalid percent-encoded token"),
}  # fmt: skip


@pytest.mark.parametrize("pool", [True, False], ids=["pool", "one connection"])
@pytest.mark.parametrize(("how", "says"), BAD.values(), ids=BAD.keys())
def test_a_connection_setting_libpq_refuses_is_a_config_error_naming_it(
    pg_url: str, how: str, says: str, pool: bool
) -> None:
    url = _spoiled(pg_url, how)
    with pytest.raises(ConfigError) as got:
        PostgresEventStore(url, pool=pool)
    message = str(got.value)
    assert says in message, message
    assert "the connection settings are invalid" in message and "Fix that setting in the URL" in message, message
    assert "libpq-connect.html" in message and "nothing was read or written" in message, message
    assert PASSWORD not in message and "is it running" not in message.lower(), message


@pytest.mark.parametrize("pool", [True, False], ids=["pool", "one connection"])
def test_a_setting_from_the_environment_is_refused_alike(
    pg_url: str, pool: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGSSLMODE", "sometimes")
    with pytest.raises(ConfigError, match=r'invalid sslmode value: "sometimes"\).*PG\* environment variable'):
        PostgresEventStore(pg_url, pool=pool)


def test_good_settings_still_open_and_a_server_that_is_not_there_is_still_unavailable(pg_url: str) -> None:
    good = pg_url + "?sslmode=disable&connect_timeout=5&keepalives_idle=30&target_session_attrs=any&application_name=x"
    for pool in (True, False):
        with PostgresEventStore(good, pool=pool) as store:
            assert store.runs() == []
    nobody = _spoiled(pg_url, f"port={free_port()}")
    with pytest.raises(StorageUnavailable, match="Connection refused") as got:
        PostgresEventStore(nobody, pool=False)
    assert PASSWORD not in str(got.value)


UNPARSEABLE_WITH_PASSWORD = {
    "a password query parameter and an unclosed IPv6 bracket": "postgresql://u@[::1/db?password=hunter2sec",
    "bad percent-encoding in a password query parameter": "postgresql://u@localhost/db?password=hunter2sec%zz",
    "a key=value password with a space, unquoted": "host=localhost password=hunter2sec word2sec dbname=x",
}


@pytest.mark.parametrize("url", UNPARSEABLE_WITH_PASSWORD.values(), ids=UNPARSEABLE_WITH_PASSWORD.keys())
def test_a_password_outside_the_user_info_of_a_string_libpq_cannot_parse_is_not_shown(url: str) -> None:
    """libpq quotes the token it choked on (the whole URI, the password's value, the word after it):
    the password given as ``password=`` is scrubbed from that too (refused before any connection)."""
    with pytest.raises(ConfigError, match="the connection settings are invalid") as got:
        PostgresEventStore(url, pool=False)
    message = str(got.value)
    assert "hunter2sec" not in message and "word2sec" not in message, message


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("sslmode=no", 'invalid sslmode value: "no"'),
        ("sslmode=Require", 'invalid sslmode value: "Require"'),
        ("sslmode=", 'invalid sslmode value: ""'),
        ("gssencmode=sometimes", 'invalid gssencmode value: "sometimes"'),
        ("channel_binding=maybe", 'invalid channel_binding value: "maybe"'),
        ("target_session_attrs=any2", 'invalid target_session_attrs value: "any2"'),
    ],
)
def test_a_setting_with_a_fixed_list_of_values_is_refused_before_the_host_is_looked_up(query: str, says: str) -> None:
    """psycopg resolves the host before libpq reads the other settings: a bad sslmode with a host
    that does not resolve was "failed to resolve host" (StorageUnavailable); it is the setting."""
    url = f"postgresql://u:{PASSWORD}@no-such-host.invalid/db?{query}"
    for pool in (True, False):
        with pytest.raises(ConfigError) as got:
            PostgresEventStore(url, pool=pool)
        assert says in str(got.value) and PASSWORD not in str(got.value), str(got.value)


def test_every_value_of_a_fixed_list_is_left_to_libpq(pg_url: str) -> None:
    """The values the pre-check allows are the ones libpq takes: each opens (or fails on the server
    side, never as an invalid setting)."""
    from agentcore.storage.postgres.failures import _CHOICES

    for name, choices in _CHOICES.items():
        for value in choices:
            url = f"{pg_url}{'&' if '?' in pg_url else '?'}{name}={value}"
            try:
                PostgresEventStore(url, pool=False).close()
            except StorageUnavailable as e:  # e.g. sslmode=require on a server without TLS
                assert "invalid" not in str(e) or "value" not in str(e), str(e)
