"""The two search engines: ripgrep (a subprocess with an argument list) and a pure-Python fallback.

Both search the same files, chosen by ``CodeRoot.walk``: files ignored by ``.gitignore``/``.ignore``/
``.rgignore``, hidden files, symbolic links, binary files (a NUL byte in the first 8 KB; a NUL later
stops the search of that file) and files over the size limit are skipped. See ``ripgrep`` for how its
matches are confirmed against the files themselves. The Python engine matches regular expressions with
RE2 (``google-re2``), whose time is linear in the text, so no model-supplied pattern can backtrack
without bound; every engine stops at the timeout with ``ToolTimeout``.
"""

from __future__ import annotations

import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import re2  # type: ignore[import-untyped]

from agentcore.core.text import clip
from agentcore.errors import ToolError, ToolTimeout
from agentcore.tools.code.models import CodeMatch, Engine
from agentcore.tools.code.paths import CodeRoot, display_path
from agentcore.tools.code.ripgrep import BINARY_SNIFF, Candidate
from agentcore.tools.code.ripgrep import search as ripgrep_search

LINE_CHARS = 300
"""Matched lines are cut to this many characters."""
_BLOCK = 1 << 20

Include = Callable[[str], bool]


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    """How the engines run; fixed when ``CodeTools`` is built."""

    rg: str | None
    """Path of the ``rg`` executable, or ``None`` for the pure-Python engine."""
    max_file_size: int
    """Files larger than this many bytes are not searched."""
    match_limit: int
    """At most this many matches are kept (all are counted)."""
    timeout: float
    """Seconds a search or listing may take before ``ToolTimeout``."""


@dataclass
class Found:
    """Matching lines from one engine, before they become a result model."""

    engine: Engine
    limit: int
    matches: list[CodeMatch] = field(default_factory=list)
    total: int = 0
    files_searched: int | None = None
    warnings: list[str] = field(default_factory=list)

    def add(self, path: str, line: int, raw: bytes) -> None:
        """Count a matching line and keep it while under the limit."""
        self.total += 1
        if len(self.matches) < self.limit:
            self.matches.append(CodeMatch(path=path, line=line, text=clip_line(raw)))


def clip_line(raw: bytes) -> str:
    """Decode a line (invalid UTF-8 becomes U+FFFD), drop its line ending and cut it to ``LINE_CHARS``."""
    text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
    return clip(text, LINE_CHARS, mark="ellipsis")


def find_lines(
    root: CodeRoot,
    settings: SearchSettings,
    pattern: str,
    *,
    regex: bool,
    include: Include,
    must_contain: str | None = None,
) -> Found:
    """Search every selected text file under ``root`` for lines matching ``pattern``.

    Args:
        must_contain: text every matching line contains; lets the Python engine skip blocks without it
            (ripgrep finds such literals in the regex by itself).

    Raises:
        ToolError: the pattern is not a valid regular expression, or ripgrep failed.
        ToolTimeout: the search took longer than ``settings.timeout``.
    """
    deadline = time.monotonic() + settings.timeout
    if settings.rg is not None:
        found = _ripgrep_lines(root, settings, pattern, regex=regex, include=include, deadline=deadline)
    else:
        found = _python_lines(
            root, settings, pattern, regex=regex, include=include, must_contain=must_contain, deadline=deadline
        )
    found.matches.sort(key=lambda m: (m.path, m.line))
    return found


def find_files(root: CodeRoot, settings: SearchSettings, include: Include) -> tuple[list[str], Engine]:
    """All selected files under ``root`` (not ignored, not hidden, no symbolic links), sorted.

    Both engines list through ``CodeRoot.walk`` (ripgrep's own walker would follow a directory swapped for
    a link while it runs); the engine named is the one ``search_code`` uses.

    Raises:
        ToolTimeout: the listing took longer than ``settings.timeout``.
    """
    deadline = time.monotonic() + settings.timeout
    files = []
    for item in root.walk():
        _check_deadline(deadline, settings.timeout, "list_files")
        if include(path := display_path(item.rel)):
            files.append(path)
    return sorted(files), "python" if settings.rg is None else "ripgrep"


def _check_deadline(deadline: float, timeout: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise ToolTimeout(f"{what} took longer than {timeout:g} s; narrow the query or pass a glob.")


def invalid_regex(pattern: str, detail: str) -> ToolError:
    """The error for a pattern the engine could not compile."""
    return ToolError(
        f"invalid regex {pattern!r}: {detail.strip()}. Fix the pattern (no look-around or back-references; "
        "escape special characters such as '(' or '['), or pass regex=False to search for the literal text."
    )


# --- pure Python -------------------------------------------------------------------------------------


def compile_regex(pattern: str, *, multiline: bool = False) -> Any:
    """Compile ``pattern`` with RE2 (linear-time matching; no look-around or back-references).

    Raises:
        ToolError: the pattern is not valid RE2 syntax.
    """
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(("(?m)" if multiline else "") + pattern, options=options)
    except re2.error as e:
        detail = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise invalid_regex(pattern, detail) from e


def _python_lines(
    root: CodeRoot,
    settings: SearchSettings,
    pattern: str,
    *,
    regex: bool,
    include: Include,
    must_contain: str | None,
    deadline: float,
) -> Found:
    line_ok: Callable[[bytes], object]
    block_ok: Callable[[bytes], object]
    if regex:
        rx = compile_regex(pattern)
        rx_block = compile_regex(pattern, multiline=True)
        literal = (must_contain or "").encode("utf-8")
        line_ok = lambda raw: rx.search(raw.decode("utf-8", "replace"))  # noqa: E731
        block_ok = lambda raw: literal in raw and rx_block.search(raw.decode("utf-8", "replace"))  # noqa: E731
    else:
        needle = pattern.encode("utf-8")
        line_ok = block_ok = lambda raw: needle in raw
    found = Found(engine="python", limit=settings.match_limit)
    searched = 0
    for item in root.walk():
        _check_deadline(deadline, settings.timeout, "search_code")
        path = display_path(item.rel)
        if not include(path):
            continue
        opened = root.open_entry(item)
        if opened is None:
            continue
        f, st = opened
        with f:
            if st.st_size > settings.max_file_size or b"\0" in f.read(BINARY_SNIFF):
                continue
            f.seek(0)
            searched += 1
            for lineno, raw in _scan(f, line_ok, block_ok, deadline, settings.timeout):
                found.add(path, lineno, raw)
    found.files_searched = searched
    return found


def _scan(
    f: BinaryIO,
    line_ok: Callable[[bytes], object],
    block_ok: Callable[[bytes], object],
    deadline: float,
    timeout: float,
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line number, line)`` for matching lines, reading 1 MB blocks and skipping blocks without a match.

    A NUL byte stops the scan at the start of its line, as ripgrep stops at binary data.
    """
    lineno = 0
    carry = b""
    while True:
        _check_deadline(deadline, timeout, "search_code")
        chunk = f.read(_BLOCK)
        data = carry + chunk
        if chunk:
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            block, carry = data[:cut], data[cut:]
        else:
            block, carry = data, b""
        nul = block.find(b"\0")
        if nul != -1:
            block = block[: block.rfind(b"\n", 0, nul) + 1]
        lines = block.split(b"\n")
        if block.endswith(b"\n") or not block:
            lines.pop()
        if block_ok(block):
            for i, raw in enumerate(lines, lineno + 1):
                if line_ok(raw):
                    yield i, raw
        lineno += len(lines)
        if nul != -1 or not chunk:
            return


# --- ripgrep -----------------------------------------------------------------------------------------


def _ripgrep_lines(
    root: CodeRoot, settings: SearchSettings, pattern: str, *, regex: bool, include: Include, deadline: float
) -> Found:
    assert settings.rg is not None
    files = []
    for item in root.walk():
        _check_deadline(deadline, settings.timeout, "search_code")
        shown = display_path(item.rel)
        if not include(shown):
            continue
        try:
            st = item.entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size <= settings.max_file_size and root.links_inside(st):
            files.append(Candidate(rel=item.rel, shown=shown, dev=st.st_dev, ino=st.st_ino))
    verified = ripgrep_search(
        settings.rg, root, files, pattern, regex=regex, deadline=deadline, timeout=settings.timeout
    )
    if verified.regex_error is not None:
        reason = re.search(r"(?m)^error: (.+)$", verified.regex_error)
        raise invalid_regex(pattern, reason.group(1) if reason else verified.regex_error.removeprefix("rg: "))
    found = Found(engine="ripgrep", limit=settings.match_limit)
    for cand, line, raw in sorted(verified.lines, key=lambda x: (x[0].shown, x[1])):
        found.add(cand.shown, line, raw)
    if verified.dropped:
        found.warnings.append(
            f"{verified.dropped} matching lines were left out: their files changed or were replaced during the search"
        )
    return found
