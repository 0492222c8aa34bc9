"""Small text helpers shared by every layer: one ``clip``, one loader of package text files."""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ("clip", "package_text")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut (``" …[N more chars not shown]"``)."""
    if len(text) <= limit:
        return text
    return text[:limit] + f" …[{len(text) - limit} more chars not shown]"


@cache
def package_text(package: str, *path: str) -> str:
    """The UTF-8 text of a data file shipped in ``package`` (``package_text("agentcore.roles", "prompts", "planner.md")``)."""
    files = resources.files(package)
    for part in path:
        files = files.joinpath(part)
    return files.read_text(encoding="utf-8")
