"""The ripgrep engine: ``rg`` matches lines in files the confined walker chose; every line is read back.

ripgrep never walks the tree and never reads an ignore file: ``CodeRoot.walk`` (descriptors, no link
followed, ignore files read only when they are regular files inside the root) picks the files, and their
paths are given to ``rg --no-ignore`` in batches, run in the root directory the ``CodeRoot`` pinned (by
descriptor on Linux, so a root replaced by a link is never entered). A file may still be swapped for a
link between the walk and ripgrep's ``open``; so no text from ripgrep is returned as such: each file
with matches is opened again beneath the root without following links, must be the same file (device
and inode) the walk saw, and each matched line is read from it at the offset ripgrep gave and must
equal what ripgrep reported; what is returned is what was read.
What fails that check is dropped and counted in a warning.

Every ``rg`` process is registered while it runs and killed when the program exits (for instance
after Ctrl-C), so no search outlives the command that started it.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from agentcore.errors import ToolError, ToolTimeout
from agentcore.tools.code.paths import CodeRoot

BINARY_SNIFF = 8192
"""A NUL byte in this many leading bytes makes a file binary."""
_ARG_BYTES = 1_000_000
"""Paths per ``rg`` invocation, in bytes (under the kernel's 2 MB limit for arguments and environment)."""
_RG_FLAGS = ("--no-config", "--no-ignore", "--no-messages", "--json")

_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def kill_searches() -> None:
    """Kill every ``rg`` process this program started that is still running."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()


atexit.register(kill_searches)


@dataclass(frozen=True)
class Candidate:
    """A regular file the walk selected: its path below the root (OS string) and its identity."""

    rel: str
    shown: str
    dev: int
    ino: int


@dataclass
class Verified:
    """Matches read back from the files themselves, and how many of ripgrep's could not be confirmed."""

    lines: list[tuple[Candidate, int, bytes]]
    dropped: int = 0
    regex_error: str | None = None


def search(
    rg: str, root: CodeRoot, files: list[Candidate], pattern: str, *, regex: bool, deadline: float, timeout: float
) -> Verified:
    """Run ``rg`` over ``files`` in batches and return the confirmed matching lines.

    Raises:
        ToolError: ripgrep failed, or the root was replaced.
        ToolTimeout: the deadline passed.
    """
    args = [rg, *_RG_FLAGS, *(() if regex else ("--fixed-strings",)), "--", pattern]
    out = Verified(lines=[])
    for batch in list(_batches(files)) or [[]]:
        by_arg = {os.fsencode("./" + c.rel): c for c in batch}
        found: dict[bytes, list[Hit]] = {}
        binary: dict[bytes, int] = {}

        def on_line(raw: bytes, found: dict[bytes, list[Hit]] = found, binary: dict[bytes, int] = binary) -> None:
            msg = json.loads(raw)
            kind, data = msg.get("type"), msg.get("data", {})
            if kind == "match":
                hit = Hit(data["line_number"], data["absolute_offset"], _rg_bytes(data["lines"]))
                found.setdefault(_rg_bytes(data["path"]), []).append(hit)
            elif kind == "end" and data.get("binary_offset") is not None:
                binary[_rg_bytes(data["path"])] = data["binary_offset"]

        paths = list(by_arg) if batch else [b"-"]  # "-" (empty stdin) still checks the pattern
        code, stderr = run_rg([*args, *paths], root, deadline, timeout, on_line)
        if code == 2 and not found:
            if "regex parse error" in stderr or "not allowed in a regex" in stderr or "error parsing" in stderr:
                out.regex_error = stderr
                return out
            raise ToolError(f"search with ripgrep failed: {stderr.strip()[:500]}")
        for arg, hits in found.items():
            cand = by_arg.get(arg)
            if cand is None:
                out.dropped += len(hits)
                continue
            _confirm(root, cand, hits, binary.get(arg), out)
    return out


class Hit(NamedTuple):
    """A matching line as ripgrep reported it: line number, byte offset of the line, the line's bytes."""

    line: int
    offset: int
    raw: bytes


def _batches(files: list[Candidate]) -> Iterator[list[Candidate]]:
    batch: list[Candidate] = []
    size = 0
    for c in files:
        n = len(os.fsencode(c.rel)) + 3
        if batch and size + n > _ARG_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(c)
        size += n
    if batch:
        yield batch


def _confirm(root: CodeRoot, cand: Candidate, hits: list[Hit], nul: int | None, out: Verified) -> None:
    """Read each matched line back from the file itself (at its offset); keep those equal to ripgrep's.

    As in the Python engine, a NUL byte in the first ``BINARY_SNIFF`` bytes makes the file binary (skipped)
    and a later one ends the search of the file at the start of its line.
    """
    if nul is not None and nul < BINARY_SNIFF:
        return
    f = root.open_expected(cand.rel, cand.dev, cand.ino)
    if f is None:
        out.dropped += len(hits)
        return
    with f:
        for hit in hits:
            if nul is not None and hit.offset + len(hit.raw) > nul:
                continue  # at or past binary data
            f.seek(hit.offset)
            mine = f.read(len(hit.raw))
            if mine == hit.raw and b"\0" not in mine:
                out.lines.append((cand, hit.line, mine))
            else:
                out.dropped += 1


def _rg_bytes(obj: dict[str, str]) -> bytes:
    """ripgrep's JSON gives ``{"text": ...}``, or ``{"bytes": base64}`` for data that is not UTF-8."""
    return obj["text"].encode("utf-8") if "text" in obj else base64.b64decode(obj["bytes"])


def run_rg(
    args: list[str | bytes], root: CodeRoot, deadline: float, timeout: float, on_record: Callable[[bytes], None]
) -> tuple[int, str]:
    """Run ripgrep inside the pinned root, feeding each stdout line to ``on_record``.

    Returns:
        ripgrep's exit code and what it wrote to standard error.

    Raises:
        ToolError: the root was replaced.
        ToolTimeout: ``deadline`` (a ``time.monotonic`` value) passed; the process is killed.
    """
    left = deadline - time.monotonic()
    if left <= 0:
        raise ToolTimeout(f"search took longer than {timeout:g} s; narrow the query or pass a glob.")
    timed_out = threading.Event()
    root_fd = root.open_root()
    try:
        pinned = f"/proc/self/fd/{root_fd}"
        cwd = pinned if os.path.isdir(pinned) else str(root.path)
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                args, cwd=cwd, pass_fds=(root_fd,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
            )
            with _LIVE_LOCK:
                _LIVE.add(proc)

            def kill() -> None:
                timed_out.set()
                proc.kill()

            timer = threading.Timer(left, kill)
            timer.start()
            try:
                assert proc.stdout is not None
                for record in proc.stdout:
                    if record.strip(b"\n"):
                        on_record(record)
                proc.wait()
            finally:
                timer.cancel()
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                with _LIVE_LOCK:
                    _LIVE.discard(proc)
                proc.stdout.close()  # type: ignore[union-attr]
            if timed_out.is_set():
                raise ToolTimeout(f"search took longer than {timeout:g} s; narrow the query or pass a glob.")
            err.seek(0)
            return proc.returncode, err.read(64 * 1024).decode("utf-8", "replace")
    finally:
        os.close(root_fd)
