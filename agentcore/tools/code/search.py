"""The two search engines: ripgrep (a subprocess with an argument list) and a pure-Python fallback.

Both give the same answers on the same tree: files ignored by ``.gitignore``/``.ignore``/``.rgignore``,
hidden files, symbolic links, binary files (a NUL byte in the first 8 KB; a NUL later stops the
search of that file) and files over the size limit are skipped. The ``glob`` filter is applied here
in Python for both engines, because ripgrep's ``--glob`` would re-include files that ``.gitignore``
excludes. ripgrep never sees ``-L`` (it does not follow symbolic links) and its matches from hard links
whose other links are outside the root are dropped.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from agentcore.errors import ToolError, ToolTimeout
from agentcore.tools.code.models import CodeMatch, Engine
from agentcore.tools.code.paths import CodeRoot, display_path

LINE_CHARS = 300
"""Matched lines are cut to this many characters."""
BINARY_SNIFF = 8192
"""A NUL byte in this many leading bytes makes a file binary."""
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
    return text if len(text) <= LINE_CHARS else text[:LINE_CHARS] + "…"


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
    if settings.rg is not None:
        found = _ripgrep_lines(root, settings, pattern, regex=regex, include=include)
    else:
        found = _python_lines(root, settings, pattern, regex=regex, include=include, must_contain=must_contain)
    found.matches.sort(key=lambda m: (m.path, m.line))
    return found


def find_files(root: CodeRoot, settings: SearchSettings, include: Include) -> tuple[list[str], Engine]:
    """All selected files under ``root`` (not ignored, not hidden, no symbolic links), sorted.

    Raises:
        ToolTimeout: the listing took longer than ``settings.timeout``.
    """
    if settings.rg is None:
        deadline = time.monotonic() + settings.timeout
        files = []
        for item in root.walk():
            _check_deadline(deadline, settings.timeout, "list_files")
            if include(path := display_path(item.rel)):
                files.append(path)
        return sorted(files), "python"
    paths: list[str] = []
    args = [settings.rg, *_RG_COMMON, "--files", "--null", "."]
    stderr = _run_rg(args, root, settings.timeout, lambda raw: paths.append(_rg_rel(raw)), sep=b"\0")
    if not paths and stderr:
        raise ToolError(f"listing files with ripgrep failed: {stderr.strip()[:500]}")
    return sorted(p for p in paths if include(p)), "ripgrep"


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


def _python_lines(
    root: CodeRoot, settings: SearchSettings, pattern: str, *, regex: bool, include: Include, must_contain: str | None
) -> Found:
    line_ok: Callable[[bytes], object]
    block_ok: Callable[[bytes], object]
    if regex:
        try:
            rx = re.compile(pattern)
            rx_block = re.compile(pattern, re.MULTILINE)
        except re.error as e:
            raise invalid_regex(pattern, str(e)) from e
        literal = (must_contain or "").encode("utf-8")
        line_ok = lambda raw: rx.search(raw.decode("utf-8", "replace"))  # noqa: E731
        block_ok = lambda raw: literal in raw and rx_block.search(raw.decode("utf-8", "replace"))  # noqa: E731
    else:
        needle = pattern.encode("utf-8")
        line_ok = block_ok = lambda raw: needle in raw
    found = Found(engine="python", limit=settings.match_limit)
    searched = 0
    deadline = time.monotonic() + settings.timeout
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
            for lineno, raw in _scan(f, line_ok, block_ok):
                found.add(path, lineno, raw)
    found.files_searched = searched
    return found


def _scan(
    f: BinaryIO, line_ok: Callable[[bytes], object], block_ok: Callable[[bytes], object]
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line number, line)`` for matching lines, reading 1 MB blocks and skipping blocks without a match.

    A NUL byte stops the scan at the start of its line, as ripgrep stops at binary data.
    """
    lineno = 0
    carry = b""
    while True:
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

_RG_COMMON = ("--no-config", "--no-require-git", "--no-ignore-parent", "--no-ignore-global")
"""Ignore files count even outside a git repository; nothing above the root or in the user's config is read."""


def _ripgrep_lines(root: CodeRoot, settings: SearchSettings, pattern: str, *, regex: bool, include: Include) -> Found:
    assert settings.rg is not None
    args = [settings.rg, *_RG_COMMON, "--json", f"--max-filesize={settings.max_file_size}"]
    if not regex:
        args.append("--fixed-strings")
    args += ["--", pattern, "."]
    found = Found(engine="ripgrep", limit=settings.match_limit)
    allowed: dict[bytes, bool] = {}
    finished: list[bool] = []  # ripgrep's last message; its "searches" count only files that matched

    def may_report(raw_path: bytes, rel: str) -> bool:
        if raw_path not in allowed:
            allowed[raw_path] = include(rel) and _links_inside(root, os.fsdecode(raw_path))
        return allowed[raw_path]

    def on_line(raw: bytes) -> None:
        msg = json.loads(raw)
        data = msg.get("data", {})
        if msg.get("type") == "match":
            raw_path = _rg_bytes(data["path"])
            rel = _rg_rel(raw_path)
            if may_report(raw_path, rel):
                found.add(rel, data["line_number"], _rg_bytes(data["lines"]))
        elif msg.get("type") == "summary":
            finished.append(True)

    stderr = _run_rg(args, root, settings.timeout, on_line)
    if not finished:
        if "regex parse error" in stderr or "not allowed in a regex" in stderr:
            reason = re.search(r"(?m)^error: (.+)$", stderr)
            raise invalid_regex(pattern, reason.group(1) if reason else stderr.removeprefix("rg: "))
        raise ToolError(f"search with ripgrep failed: {stderr.strip()[:500]}")
    found.warnings = [line for line in stderr.splitlines() if line.strip()][:5]
    return found


def _links_inside(root: CodeRoot, rel: str) -> bool:
    try:
        st = os.lstat(root.path / rel)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and root.links_inside(st)


def _rg_bytes(obj: dict[str, str]) -> bytes:
    """ripgrep's JSON gives ``{"text": ...}``, or ``{"bytes": base64}`` for data that is not UTF-8."""
    return obj["text"].encode("utf-8") if "text" in obj else base64.b64decode(obj["bytes"])


def _rg_rel(raw: bytes) -> str:
    rel = raw.decode("utf-8", "replace")
    return rel[2:] if rel.startswith("./") else rel


def _run_rg(
    args: list[str], root: CodeRoot, timeout: float, on_record: Callable[[bytes], None], sep: bytes = b"\n"
) -> str:
    """Run ripgrep in ``root``, feeding each ``sep``-terminated stdout record to ``on_record``.

    Returns:
        What ripgrep wrote to standard error.
    """
    timed_out = threading.Event()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, cwd=root.path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            assert proc.stdout is not None
            records = proc.stdout if sep == b"\n" else proc.stdout.read().split(sep)
            for record in records:
                if record.strip(b"\n"):
                    on_record(record)
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
        if timed_out.is_set():
            raise ToolTimeout(f"search took longer than {timeout:g} s; narrow the query or pass a glob.")
        err.seek(0)
        return err.read().decode("utf-8", "replace")
