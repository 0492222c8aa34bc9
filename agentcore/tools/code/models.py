"""Results of the code tools: the full raw output (JSON-serialisable) and a bounded ``summary`` for the controller."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Engine = Literal["ripgrep", "python"]

SUMMARY_MAX_ITEMS = 200
"""No summary lists more than this many matches or files, whatever ``top_k`` asks for."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CodeMatch(_Frozen):
    """One matching line."""

    path: str
    """Relative to the code root, '/'-separated."""
    line: int
    """1-based line number."""
    text: str
    """The line without its line ending, cut to about 300 characters."""


class SearchResult(_Frozen):
    """What ``search_code`` or ``find_definition`` found."""

    mode: Literal["text", "regex", "definition"]
    """How ``query`` was used: literal text, a regular expression, or a symbol whose definitions were sought."""
    query: str
    glob: str | None = None
    engine: Engine
    matches: tuple[CodeMatch, ...]
    """Every match (up to the tool's match limit), sorted by path and line; definitions are ranked instead."""
    total: int
    """How many matching lines there are, including any beyond the match limit."""
    files_searched: int | None = None
    """Text files the Python engine searched; ``None`` from ripgrep, whose JSON output does not count them."""
    max_results: int = 20
    """How many matches ``summary()`` shows by default."""
    warnings: tuple[str, ...] = ()

    def summary(self, top_k: int | None = None) -> str:
        """The short payload: the first ``top_k`` matches as ``path:line: text`` and how many were left out."""
        k = max(0, min(self.max_results if top_k is None else top_k, SUMMARY_MAX_ITEMS))
        scope = f" in files matching {self.glob!r}" if self.glob else ""
        if self.mode == "definition":
            noun, subject = "definition", f"of {self.query!r}"
            hint = "check the spelling, or use search_code to look for uses"
        else:
            noun, subject = "match", f"for {'regex ' if self.mode == 'regex' else ''}{self.query!r}{scope}"
            hint = "check the spelling, try a shorter query, or drop the glob"
        if self.total == 0:
            lines = [f"No {_plural(noun)} {subject} ({self.engine}); {hint}."]
        else:
            files = len({m.path for m in self.matches})
            lines = [f"{_count(self.total, noun)} {subject} in {_count(files, 'file')} ({self.engine}):"]
            lines += [f"{m.path}:{m.line}: {m.text}" for m in self.matches[:k]]
            hidden = self.total - min(k, len(self.matches))
            if hidden > 0:
                lines.append(f"[{hidden} more matches not shown; narrow the query or pass a glob]")
        lines += [f"warning: {w}" for w in self.warnings[:3]]
        return "\n".join(lines)


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith("ch") else "s")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun if n == 1 else _plural(noun)}"


class FileSlice(_Frozen):
    """A page of a text file from ``read_file``."""

    path: str
    start_line: int
    end_line: int
    """The last line included; ``start_line - 1`` when the page is empty."""
    total_lines: int
    lines: tuple[str, ...]
    """The text of lines ``start_line``..``end_line`` without line endings."""
    replaced_invalid_utf8: bool = False
    """Some bytes were not UTF-8 and are shown as U+FFFD."""
    cut_lines: int = 0
    """How many lines were too long and were cut (each ends in ``…[N more bytes not shown]``)."""

    @property
    def next_start_line(self) -> int | None:
        """The ``start_line`` of the next page, or ``None`` at the end of the file."""
        return self.end_line + 1 if self.end_line < self.total_lines else None

    def summary(self) -> str:
        """The page as numbered lines (``"   12| text"``), with how to get the next page."""
        if self.total_lines == 0:
            return f"{self.path}: empty file (0 lines)."
        head = f"{self.path}: lines {self.start_line}-{self.end_line} of {self.total_lines}"
        notes = []
        if self.replaced_invalid_utf8:
            notes.append("not valid UTF-8: undecodable bytes are shown as \ufffd")
        if self.cut_lines:
            notes.append(f"{self.cut_lines} over-long line(s) cut")
        out = [head + (f" ({'; '.join(notes)})" if notes else "")]
        width = max(5, len(str(self.end_line)))
        out += [f"{n:>{width}}| {text}" for n, text in enumerate(self.lines, self.start_line)]
        if self.next_start_line is not None:
            out.append(
                f"[{self.total_lines - self.end_line} more lines: call read_file(path={self.path!r}, "
                f"start_line={self.next_start_line}) for the next page]"
            )
        return "\n".join(out)


class FileList(_Frozen):
    """Files from ``list_files``."""

    glob: str
    engine: Engine
    files: tuple[str, ...]
    """Relative paths, sorted, at most ``max_results`` of them."""
    total: int
    """How many files matched, including those not returned."""
    truncated: bool

    def summary(self, top_k: int | None = None) -> str:
        """The first ``top_k`` paths, one a line, and how many were left out."""
        k = max(0, min(len(self.files) if top_k is None else top_k, SUMMARY_MAX_ITEMS))
        if self.total == 0:
            return f"No files match {self.glob!r} ({self.engine}); try '**/*' or a broader pattern."
        out = [f"{_count(self.total, 'file')} match {self.glob!r} ({self.engine}):"]
        out += list(self.files[:k])
        if self.total > min(k, len(self.files)):
            out.append(f"[{self.total - min(k, len(self.files))} more files not shown; narrow the glob]")
        return "\n".join(out)
