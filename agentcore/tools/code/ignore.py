"""Gitignore-style patterns in pure Python: ignore files for the fallback walker, and the ``glob`` filter.

The subset follows gitignore(5): ``#`` comments, ``!`` negation, a trailing ``/`` for directories only,
patterns with a ``/`` anchored to the directory of their ignore file (others match at any depth), ``*``,
``?``, ``[...]`` classes, ``**`` and backslash escapes. The last matching rule wins and rules in deeper
directories win over shallower ones; a file inside an ignored directory cannot be re-included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentcore.errors import ToolError

IGNORE_FILES = (".gitignore", ".ignore", ".rgignore")
"""Per-directory ignore files, read in this order (later files take precedence, as in ripgrep)."""


@dataclass(frozen=True)
class Rule:
    """One compiled pattern line."""

    regex: re.Pattern[str]
    negated: bool
    dir_only: bool

    def matches(self, rel: str, is_dir: bool) -> bool:
        """Whether the rule matches ``rel`` (relative to the rule's base directory)."""
        return (is_dir or not self.dir_only) and self.regex.match(rel) is not None


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            whole_component = (i == 0 or pattern[i - 1] == "/") and (j == n or pattern[j] == "/")
            if j - i >= 2 and whole_component:
                if j == n:
                    out.append(".*")
                else:
                    out.append("(?:.*/)?")
                    j += 1
            else:
                out.append("[^/]*")
            i = j
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "^", "]") else i + 1)
            if end == -1:
                raise ValueError(f"unclosed character class '[' at position {i}")
            body = pattern[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\").replace("[", "\\[") + "]")
            i = end
        elif c == "\\":
            if i + 1 == n:
                raise ValueError("pattern ends with a lone backslash")
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def compile_rule(line: str) -> Rule | None:
    """Compile one gitignore line; blank lines and comments give ``None``.

    Raises:
        ValueError: the pattern is malformed (unclosed ``[`` or a trailing backslash).
    """
    line = line.rstrip("\r\n")
    while line.endswith(" ") and not line.endswith("\\ "):
        line = line[:-1]
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    body = _translate(line.lstrip("/"))
    regex = re.compile(("^" if anchored else "^(?:.*/)?") + body + "$", re.DOTALL)
    return Rule(regex=regex, negated=negated, dir_only=dir_only)


def parse_ignore_text(text: str) -> tuple[Rule, ...]:
    """Compile the lines of an ignore file, skipping lines that are malformed (as git does)."""
    rules = []
    for line in text.splitlines():
        try:
            rule = compile_rule(line)
        except (ValueError, re.error):
            continue
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


@dataclass(frozen=True)
class IgnoreStack:
    """Rules of the ignore files from the root down to the directory being walked."""

    frames: tuple[tuple[str, tuple[Rule, ...]], ...] = ()

    def push(self, base: str, rules: tuple[Rule, ...]) -> IgnoreStack:
        """Return a stack with ``rules`` from the directory ``base`` ("" or "dir/sub/") on top."""
        return IgnoreStack((*self.frames, (base, rules))) if rules else self

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` (relative to the root) is ignored; the deepest, last matching rule decides."""
        for base, rules in reversed(self.frames):
            if not rel.startswith(base):
                continue
            sub = rel[len(base) :]
            for rule in reversed(rules):
                if rule.matches(sub, is_dir):
                    return not rule.negated
        return False


class GlobFilter:
    """The ``glob`` argument of the tools: one gitignore-style pattern selecting files.

    ``*.py`` matches at any depth, ``src/*.py`` only directly under ``src``, ``**/*`` everything; a
    pattern also selects every file under a directory it matches, and ``!pattern`` inverts it.
    """

    def __init__(self, pattern: str) -> None:
        if not pattern.strip() or pattern.strip() == "!":
            raise ToolError("glob is empty; pass a pattern such as '*.py' or 'src/**/*.go', or omit glob.")
        try:
            rule = compile_rule(pattern.strip())
        except (ValueError, re.error) as e:
            raise ToolError(
                f"glob {pattern!r} is not a valid pattern: {e}. "
                "Use gitignore-style globs such as '*.py', 'src/**/*.ts' or 'docs/'."
            ) from e
        assert rule is not None
        self.pattern = pattern
        self._rule = rule

    def __call__(self, rel: str) -> bool:
        """Whether the file at ``rel`` (relative to the root, '/'-separated) is selected."""
        parts = rel.split("/")
        hit = self._rule.matches(rel, False) or any(
            self._rule.matches("/".join(parts[:k]), True) for k in range(1, len(parts))
        )
        return hit != self._rule.negated
