"""``read_file``: one page of numbered lines, read as a stream so a large file is never loaded whole."""

from __future__ import annotations

from typing import BinaryIO

from agentcore.core.text import cut_mark
from agentcore.errors import ToolError
from agentcore.tools.code.models import FileSlice
from agentcore.tools.code.paths import CodeRoot
from agentcore.tools.code.search import BINARY_SNIFF

MAX_PAGE_LINES = 500
"""The largest ``max_lines`` a caller may ask for."""
LINE_BYTES = 2000
"""Lines longer than this many bytes are cut (marked ``…[N more bytes not shown]``)."""
_COUNT_BLOCK = 1 << 20


def read_slice(
    root: CodeRoot, path: str, start_line: int = 1, end_line: int | None = None, max_lines: int = 200
) -> FileSlice:
    """Read lines ``start_line``..``end_line`` (at most ``max_lines``) of a text file under ``root``.

    Raises:
        ToolError: bad line numbers, a path that may not be read (see ``CodeRoot.check_file``), a binary
            file, or a ``start_line`` past the end of the file.
    """
    if start_line < 1:
        raise ToolError(f"start_line must be 1 or more (lines are numbered from 1), got {start_line}.")
    if end_line is not None and end_line < start_line:
        raise ToolError(f"end_line ({end_line}) is before start_line ({start_line}); pass end_line >= start_line.")
    if not 1 <= max_lines <= MAX_PAGE_LINES:
        raise ToolError(f"max_lines must be between 1 and {MAX_PAGE_LINES}, got {max_lines}; read in pages instead.")
    checked = root.check_file(path)
    last = start_line + max_lines - 1 if end_line is None else min(end_line, start_line + max_lines - 1)
    shown = path.strip().removeprefix("./")
    with root.open(checked) as f:
        if b"\0" in f.read(BINARY_SNIFF):
            raise ToolError(
                f"{shown!r} is a binary file (it contains NUL bytes); read_file shows text only. "
                "Use list_files or search_code to find the source files instead."
            )
        f.seek(0)
        lines, replaced, cut, seen = _read_lines(f, start_line, last)
        total = seen + _count_rest(f)
    if start_line > max(total, 1):
        raise ToolError(
            f"{shown!r} has {total} lines; start_line={start_line} is past the end. Pass start_line <= {total}."
        )
    return FileSlice(
        path=shown,
        start_line=start_line,
        end_line=start_line + len(lines) - 1,
        total_lines=total,
        lines=tuple(lines),
        replaced_invalid_utf8=replaced,
        cut_lines=cut,
    )


def _read_lines(f: BinaryIO, first: int, last: int) -> tuple[list[str], bool, int, int]:
    """Read lines up to ``last``, keeping ``first``..``last``; each line is read at most ``LINE_BYTES`` at a time.

    Returns:
        The kept lines, whether any had invalid UTF-8, how many were cut, and how many lines were read.
    """
    kept: list[str] = []
    replaced = False
    cut = 0
    n = 0
    while n < last:
        raw = f.readline(LINE_BYTES)
        if not raw:
            break
        n += 1
        too_long = not raw.endswith(b"\n") and len(raw) == LINE_BYTES
        rest, more = raw, 0
        while not rest.endswith(b"\n") and len(rest) == LINE_BYTES:
            rest = f.readline(LINE_BYTES)
            more += len(rest.rstrip(b"\r\n"))
        if n < first:
            continue
        text, bad, used = _decode(raw.rstrip(b"\r\n"), too_long)
        replaced |= bad
        if too_long:
            cut += 1
            text += cut_mark(more + len(raw) - used, "bytes")
        kept.append(text)
    return kept, replaced, cut, n


def _decode(raw: bytes, cut: bool) -> tuple[str, bool, int]:
    """The text of ``raw``, whether bytes were not UTF-8, and how many bytes the text stands for
    (a character that ``cut`` split at the end is left out)."""
    try:
        return raw.decode("utf-8"), False, len(raw)
    except UnicodeDecodeError as e:
        if cut and e.end == len(raw) and e.reason == "unexpected end of data":
            return raw[: e.start].decode("utf-8", "replace"), False, e.start
        return raw.decode("utf-8", "replace"), True, len(raw)


def _count_rest(f: BinaryIO) -> int:
    """Count the lines left in ``f`` in 1 MB blocks; a last line without a newline counts too."""
    count = 0
    last_byte = b"\n"
    while block := f.read(_COUNT_BLOCK):
        count += block.count(b"\n")
        last_byte = block[-1:]
    return count + (last_byte != b"\n")
