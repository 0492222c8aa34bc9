"""Small text helpers shared by every layer: one ``clip``, one loader of package text files, and
what may be shown of a URL that carries credentials (``shown_url``, ``url_secrets``)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

__all__ = ("clip", "cut_mark", "package_text", "shown_url", "unclip", "url_secrets")

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


def shown_url(url: str) -> str:
    """``url`` as it may be printed or stored: the user-info's password and every query value as ``***``.

    ``http://u:pw@proxy:8080/v1?token=t&x`` -> ``http://u:***@proxy:8080/v1?token=***&x``. A URL that
    does not parse (an unclosed IPv6 bracket) keeps nothing after its scheme but ``***``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        scheme, sep, _ = url.partition("://")
        return f"{scheme}://***" if sep else "***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}{':***' if ':' in userinfo else ''}@{host}"
    pairs = (p.partition("=") for p in parts.query.split("&") if p)
    query = "&".join(f"{name}=***" if sep else name for name, sep, _ in pairs)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def url_secrets(url: str) -> list[str]:
    """The secret parts of ``url`` as they may appear in text: the password and the query values,
    raw and percent-decoded, 4 characters or longer (shorter ones cannot be told from other text)."""
    try:
        parts = urlsplit(url)
        values = [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
        raw = [v for p in parts.query.split("&") for _, sep, v in [p.partition("=")] if sep]
    except ValueError:
        return []
    found = [parts.password or "", unquote(parts.password or ""), *values, *raw]
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)
