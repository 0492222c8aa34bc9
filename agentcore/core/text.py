"""Small text helpers shared by every layer: one ``clip``, one loader of package text files, and
what may be shown of a URL that carries credentials (``shown_url``, ``url_secrets``)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Literal

__all__ = ("MIN_SECRET_CHARS", "REDACTED", "clip", "cut_mark", "package_text", "shown_url", "redact_secrets", "unclip", "url_secrets")

_COUNT_MARK = re.compile(r" …\[(\d+) more chars not shown\]\Z")


def cut_mark(cut: int, unit: str = "chars") -> str:
    """The mark ``clip`` appends when ``cut`` characters (or another ``unit``) are left out:
    ``" …[N more chars not shown]"``."""
    return f" …[{cut} more {unit} not shown]"


def clip(text: str, limit: int, *, one_line: bool = False, mark: Literal["count", "ellipsis"] = "count") -> str:
    """``text`` cut to about ``limit`` characters, with a mark where it was cut.

    Args:
        text: The text.
        limit: How many characters of ``text`` are kept (``mark="count"``), or the most characters
            returned, the mark included (``mark="ellipsis"``).
        one_line: Collapse every run of whitespace (newlines included) to one space first.
        mark: ``"count"`` appends ``cut_mark(N)`` (``" …[N more chars not shown]"``), so a model
            reading it learns there is more; ``"ellipsis"`` ends the text in ``…`` within ``limit``
            (trailing whitespace before it dropped), for tables and one-line summaries a person reads.
    """
    if one_line:
        text = " ".join(text.split())
    if len(text) <= limit:
        return text
    if mark == "ellipsis":
        return text[: max(limit - 1, 0)].rstrip() + "…"
    return text[:limit] + cut_mark(len(text) - limit)


def unclip(text: str) -> tuple[str, int]:
    """``(kept, cut)`` of a text ``clip`` marked with its count (``cut`` 0 when it carries no mark).

    For readers that only have the text (a prompt that came over the wire); code that builds the
    text keeps the count itself.
    """
    found = _COUNT_MARK.search(text)
    if found is None:
        return text, 0
    return text[: found.start()], int(found.group(1))


@cache
def package_text(package: str, *path: str) -> str:
    """The UTF-8 text of a data file shipped in ``package`` (``package_text("agentcore.roles", "prompts", "planner.md")``)."""
    files = resources.files(package)
    for part in path:
        files = files.joinpath(part)
    return files.read_text(encoding="utf-8")


_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:)?(?P<slashes>//)?(?P<authority>[^/?#]*)(?P<rest>[^?#]*)"
                  r"(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?\Z", re.S)
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def _url_parts(url: str) -> tuple[str, str, str | None, str, list[tuple[str, str | None]], str | None]:
    """``(scheme + "//", user, password, host + path, query pairs, fragment)`` of ``url``, by RFC 3986's
    own split (pure string work: it never fails, whatever the text)."""
    found = _URL.match(url)
    assert found is not None  # every group is optional
    head = (found["scheme"] or "") + (found["slashes"] or "")
    authority = found["authority"] if found["slashes"] else ""
    rest = (found["authority"] if not found["slashes"] else "") + found["rest"]
    userinfo, at, host = authority.rpartition("@")
    user, colon, password = userinfo.partition(":")
    pairs = [(name, value if sep else None) for name, sep, value in
             (p.partition("=") for p in (found["query"] or "").split("&") if p)]  # fmt: skip
    if not at:
        user, password, colon, host = "", "", "", authority
    return head, user, password if colon else None, host + rest, pairs, found["fragment"]


def shown_url(url: str) -> str:
    """``url`` as it may be printed or stored: the user-info's password, every query value and the
    fragment as ``***``; a user-info with no password is a token (``https://TOKEN@host``, as
    GitHub and some OTLP services take one) and is ``***`` too.

    ``http://u:pw@proxy:8080/v1?token=t&x`` -> ``http://u:***@proxy:8080/v1?token=***&x``.
    """
    head, user, password, rest, pairs, fragment = _url_parts(url)
    if password is None and user:
        userinfo = "***@"
    else:
        userinfo = f"{user}{':***' if password is not None else ''}@" if user or password is not None else ""
    query = "&".join(name if value is None else f"{name}=***" for name, value in pairs)
    return f"{head}{userinfo}{rest}{'?' + query if pairs else ''}{'#***' if fragment else ''}"


def _unquoted(text: str) -> str:
    return _PERCENT.sub(lambda m: bytes.fromhex(m.group().replace("%", "")).decode("utf-8", "replace"), text)


MIN_SECRET_CHARS = 8
"""Secrets shorter than this (``x``, ``dummy``, ``null``) are placeholders or ordinary words: not redacted."""

REDACTED = "[redacted]"
"""What stands where a secret was."""


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` replaced by ``REDACTED``, longest first (so a secret that
    holds another is replaced whole); secrets shorter than ``MIN_SECRET_CHARS`` are left alone."""
    for secret in sorted((s for s in secrets if len(s) >= MIN_SECRET_CHARS), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text

_URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!#$&'()*+,/:;=?@[]")


def _quoted(text: str, *, percent: bool) -> str:
    """``text`` percent-encoded as HTTP clients send a URL they were given (``requests``' requote:
    ``|`` and ``é`` encoded; ``%`` kept, or encoded as ``%25`` when the URL holds a bad escape)."""
    keep = _URL_SAFE | ({"%"} if percent else set())
    return "".join(c if c in keep else "".join(f"%{b:02X}" for b in c.encode("utf-8", "replace")) for c in text)


def url_secrets(url: str) -> list[str]:
    """The secret parts of ``url`` as they may appear in text: the password (or a user-info with no
    password, a token), the query values and the fragment, raw, percent-decoded and
    percent-encoded as a client sends them, and the ``Basic`` credentials made of the user-info; ``MIN_SECRET_CHARS`` characters or longer (a shorter value,
    such as ``null``, ``json`` or ``1234``, cannot be told from other text, and replacing it would
    damage JSON and answers), longest first."""
    _, user, password, _, pairs, fragment = _url_parts(url)
    token = user if password is None else ""  # ``https://TOKEN@host``: the user-info is the secret
    raw = [password or "", token, fragment or "", *(value or "" for _, value in pairs)]
    found = {
        variant for text in raw
        for variant in (text, _unquoted(text), _unquoted(text.replace("+", " ")),
                        _quoted(text, percent=True), _quoted(text, percent=False))
    }  # fmt: skip
    if password:  # HTTP clients send user-info as ``Authorization: Basic base64(user:password)``, which servers echo
        for pair in {f"{user}:{password}", f"{_unquoted(user)}:{_unquoted(password)}"}:
            found.add(base64.b64encode(pair.encode("utf-8")).decode("ascii"))
    return sorted((s for s in found if len(s) >= MIN_SECRET_CHARS), key=lambda s: (-len(s), s))
