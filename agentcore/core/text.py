"""Small text helpers shared by every layer: one ``clip``, one loader of package text files."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Literal

__all__ = ("clip", "cut_mark", "package_text", "unclip")

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
