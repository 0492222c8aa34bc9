"""Small text helpers shared by every layer: one ``clip``, one loader of package text files."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

__all__ = ("clip", "package_text")


def clip(text: str, limit: int, *, one_line: bool = False, mark: Literal["count", "ellipsis"] = "count") -> str:
    """``text`` cut to about ``limit`` characters, with a mark where it was cut.

    Args:
        text: The text.
        limit: How many characters of ``text`` are kept (``mark="count"``), or the most characters
            returned, the mark included (``mark="ellipsis"``).
        one_line: Collapse every run of whitespace (newlines included) to one space first.
        mark: ``"count"`` appends ``" …[N more chars not shown]"``, so a model reading it learns
            there is more; ``"ellipsis"`` ends the text in ``…`` within ``limit``, for tables and
            one-line summaries a person reads.
    """
    if one_line:
        text = " ".join(text.split())
    if len(text) <= limit:
        return text
    if mark == "ellipsis":
        return text[: max(limit - 1, 0)] + "…"
    return text[:limit] + f" …[{len(text) - limit} more chars not shown]"


@cache
def package_text(package: str, *path: str) -> str:
    """The UTF-8 text of a data file shipped in ``package`` (``package_text("agentcore.roles", "prompts", "planner.md")``)."""
    files = resources.files(package)
    for part in path:
        files = files.joinpath(part)
    return files.read_text(encoding="utf-8")
