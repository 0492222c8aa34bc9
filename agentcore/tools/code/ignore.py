"""Gitignore-style patterns through ``pathspec``: ignore files for the walker, and the ``glob`` filter.

``pathspec.GitIgnoreSpec`` implements gitignore(5) (``#`` comments, ``!`` negation, a trailing ``/`` for
directories only, anchoring, ``*``, ``?``, ``[...]``, ``**``, backslash escapes); it runs on the ``re2``
backend (``google-re2``), whose matching time is linear in the path, so a hostile pattern such as
``*a*a*a*a*a*a*a*a*b`` cannot stall a tool. Rules in deeper directories win over shallower ones, the
last matching rule of a file wins, and a file inside an ignored directory cannot be re-included (the
walker never enters it).
"""

from __future__ import annotations

from dataclasses import dataclass

import pathspec
from pathspec.patterns.gitignore import GitIgnorePatternError
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from agentcore.errors import ToolError

IGNORE_FILES = (".gitignore", ".ignore", ".rgignore")
"""Per-directory ignore files, read in this order (later files take precedence, as in ripgrep)."""
MAX_PATTERN_CHARS = 4096
"""Longer ignore lines and globs are not used (a glob that long is refused)."""


def _spec(lines: list[str]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(lines, backend="re2")


def _unclosed_class(line: str) -> bool:
    """Whether a ``[`` opens a character class that never closes (ripgrep and git refuse such a glob)."""
    i = 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == "[":
            first = i + 2 if line[i + 1 : i + 2] in ("!", "^") else i + 1
            end = line.find("]", first + 1)
            if end == -1:
                return True
            i = end
        i += 1
    return False


def _usable(line: str) -> bool:
    if len(line) > MAX_PATTERN_CHARS or _unclosed_class(line):
        return False
    try:
        GitIgnoreSpecPattern(line)
        _spec([line])
    except (GitIgnorePatternError, ValueError, TypeError):
        return False
    return True


def parse_ignore_text(text: str) -> pathspec.GitIgnoreSpec | None:
    """Compile the lines of an ignore file, skipping malformed lines (as git does); ``None`` if none apply."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#") and _usable(line)]
    return _spec(lines) if lines else None


@dataclass(frozen=True)
class IgnoreStack:
    """Rules of the ignore files from the root down to the directory being walked."""

    frames: tuple[tuple[str, pathspec.GitIgnoreSpec], ...] = ()

    def push(self, base: str, spec: pathspec.GitIgnoreSpec | None) -> IgnoreStack:
        """Return a stack with ``spec`` from the directory ``base`` ("" or "dir/sub/") on top."""
        return IgnoreStack((*self.frames, (base, spec))) if spec is not None else self

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` (relative to the root) is ignored; the deepest, last matching rule decides."""
        for base, spec in reversed(self.frames):
            if not rel.startswith(base):
                continue
            sub = rel[len(base) :] + ("/" if is_dir else "")
            decided = spec.check_file(sub).include
            if decided is not None:
                return decided
        return False


class GlobFilter:
    """The ``glob`` argument of the tools: one gitignore-style pattern selecting files.

    ``*.py`` matches at any depth, ``src/*.py`` only directly under ``src``, ``**/*`` everything; a
    pattern also selects every file under a directory it matches, and ``!pattern`` inverts it.
    Matching takes time linear in the path (``re2``), whatever the pattern.

    Raises:
        ToolError: the pattern is empty, longer than ``MAX_PATTERN_CHARS`` or malformed.
    """

    def __init__(self, pattern: str) -> None:
        body = pattern.strip()
        negated = body.startswith("!")
        body = body[1:] if negated else body
        if not body:
            raise ToolError("glob is empty; pass a pattern such as '*.py' or 'src/**/*.go', or omit glob.")
        if len(body) > MAX_PATTERN_CHARS or not _usable(body):
            raise ToolError(
                f"glob {pattern[:200]!r} is not a valid pattern (malformed or over {MAX_PATTERN_CHARS} characters). "
                "Use gitignore-style globs such as '*.py', 'src/**/*.ts' or 'docs/'."
            )
        self.pattern = pattern
        self._negated = negated
        self._spec = _spec([body])

    def __call__(self, rel: str) -> bool:
        """Whether the file at ``rel`` (relative to the root, '/'-separated) is selected."""
        return bool(self._spec.match_file(rel)) != self._negated
