"""Code-search tools confined to one root directory: search, read, list and find definitions.

Each tool returns a pydantic model: the whole of it (``model_dump(mode="json")``) is the raw output to
store as an artifact, and its ``summary()`` is the short, bounded payload for the controller. Mistakes
the model can fix (a bad path, an invalid regex) raise ``ToolError`` with a message written for it.
See ``paths`` for how confinement to the root is enforced.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from agentcore.errors import ConfigError, ToolError
from agentcore.tools.code import outlines, queries
from agentcore.tools.code.files import read_slice
from agentcore.tools.code.ignore import GlobFilter
from agentcore.tools.code.index import Progress, SymbolIndex
from agentcore.tools.code.index_models import ConceptResult, DefinitionResult, OutlineResult, ReferenceResult
from agentcore.tools.code.models import SUMMARY_MAX_ITEMS, CodeMatch, FileList, FileSlice, SearchResult
from agentcore.tools.code.paths import CheckedFile, CodeRoot
from agentcore.tools.code.search import SearchSettings, find_files, find_lines

__all__ = ["AUTO", "CheckedFile", "CodeMatch", "CodeRoot", "CodeTools", "FileList", "FileSlice", "SearchResult", "find_rg"]

R = TypeVar("R")
AUTO: Final = "auto"
"""``CodeTools(rg=AUTO)`` uses ``rg`` from ``PATH``, else the one the ``ripgrep`` wheel put beside the running
interpreter (a virtual environment that is not activated), and the Python engine when there is neither."""


def find_rg(name: str | Path = "rg") -> str | None:
    """The executable ``name`` (a command name or a path): looked up on ``PATH`` first, then in this
    interpreter's scripts directory, where ``pip install ripgrep`` puts ``rg`` (so a virtual environment
    works without being activated). ``None`` when it is in neither."""
    found = shutil.which(str(name))
    if found is None and Path(name).name == str(name):
        beside = sorted({sysconfig.get_path("scripts"), str(Path(sys.executable).parent)})
        found = next((f for d in beside if (f := shutil.which(str(name), path=d)) is not None), None)
    return found


class CodeTools:
    """The code-search tools over one root directory.

    Args:
        root: the directory the tools are confined to.
        rg: the ripgrep executable: ``AUTO`` to look ``rg`` up on ``PATH`` (falling back to the Python engine
            when it is missing; see ``find_rg``), a name or path to require that one, or ``None`` for the Python engine.
        timeout: seconds a search or listing may run before ``ToolTimeout``.
        max_file_size: files larger than this many bytes are not searched.
        match_limit: matches kept in a ``SearchResult`` (all of them are counted).
        cache_dir: where the symbol index is kept (default: ``$XDG_CACHE_HOME/agentcore/code-index``); it is
            never written inside ``root``.
        progress: called as ``progress(done, total)`` while the index is (re)built (files indexed so far out
            of those to read; see ``SymbolIndex.refresh``).

    Raises:
        ConfigError: ``root`` is not a directory, ``rg`` names no executable, or a limit is not positive.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        rg: str | Path | None = AUTO,
        timeout: float = 30.0,
        max_file_size: int = 100 * 1024 * 1024,
        match_limit: int = 100_000,
        cache_dir: str | Path | None = None,
        progress: Progress | None = None,
    ) -> None:
        for name, value in (("timeout", timeout), ("max_file_size", max_file_size), ("match_limit", match_limit)):
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        self.root = CodeRoot(root)
        if rg == AUTO:
            rg_path = find_rg()
        elif rg is None:
            rg_path = None
        elif (rg_path := find_rg(rg)) is None:
            raise ConfigError(f"ripgrep executable {str(rg)!r} was not found; pass rg=None to use the Python engine")
        self.settings = SearchSettings(
            rg=rg_path, max_file_size=max_file_size, match_limit=match_limit, timeout=timeout
        )
        self.cache_dir = cache_dir
        self.progress = progress
        self._index: SymbolIndex | None = None
        self._index_lock = threading.Lock()

    def index(self) -> SymbolIndex:
        """The symbol index of the root, opened on first use (``refresh`` it before a query)."""
        with self._index_lock:
            if self._index is None:
                self._index = SymbolIndex(self.root, self.cache_dir)
            return self._index

    def _indexed(self, query: Callable[..., R], *args: Any, max_results: int, **kwargs: Any) -> R:
        """``query(index, *args, ...)`` on the refreshed index, ``max_results`` checked first."""
        _check_max_results(max_results)
        ix = self.index()
        with ix.lock:
            ix.refresh(self.progress)
            return query(ix, *args, max_results=max_results, **kwargs)

    def close(self) -> None:
        """Close the symbol index's database connection (the tools reopen it when used again)."""
        with self._index_lock:
            if self._index is not None:
                self._index.close()
                self._index = None

    def __repr__(self) -> str:
        return f"CodeTools({str(self.root.path)!r}, engine={'ripgrep' if self.settings.rg else 'python'!r})"

    def search_code(
        self, query: str, regex: bool = False, glob: str | None = None, max_results: int = 20
    ) -> SearchResult:
        """Find the lines of text files under the root that contain ``query``.

        Args:
            query: the text to find (case-sensitive), or a regular expression when ``regex`` is true.
            regex: treat ``query`` as a regular expression (Rust ``regex`` syntax with ripgrep).
            glob: only search files matching this gitignore-style pattern, such as ``'*.py'``.
            max_results: how many matches the summary shows (all are in ``matches``).

        Returns:
            Every match, sorted by path and line.

        Raises:
            ToolError: an empty or multi-line query, an invalid regex or glob, or a bad ``max_results``.
            ToolTimeout: the search ran too long.
        """
        if not query:
            raise ToolError("query is empty; pass the text to search for.")
        if "\n" in query or "\r" in query:
            raise ToolError("query spans several lines; search_code matches one line at a time, search one line.")
        _check_max_results(max_results)
        include = GlobFilter(glob) if glob is not None else _everything
        self.root.clear_cache()
        found = find_lines(self.root, self.settings, query, regex=regex, include=include)
        return SearchResult(
            mode="regex" if regex else "text",
            query=query,
            glob=glob,
            engine=found.engine,
            matches=tuple(found.matches),
            total=found.total,
            files_searched=found.files_searched,
            max_results=max_results,
            warnings=_limit_warning(found.total, self.settings.match_limit, found.warnings),
        )

    def read_file(self, path: str, start_line: int = 1, end_line: int | None = None, max_lines: int = 200) -> FileSlice:
        """Read a page of a text file as numbered lines.

        Args:
            path: relative to the root.
            start_line: first line to show (1-based).
            end_line: last line to show; the page still holds at most ``max_lines`` lines.
            max_lines: page size, at most 500.

        Returns:
            The page, the file's line count and where the next page starts.

        Raises:
            ToolError: the path is outside the root, missing, a directory or binary, or the lines are bad.
        """
        self.root.clear_cache()
        return read_slice(self.root, path, start_line, end_line, max_lines)

    def list_files(self, glob: str = "**/*", max_results: int = 200) -> FileList:
        """List the files under the root that match ``glob``, leaving out ignored and hidden files.

        Args:
            glob: a gitignore-style pattern: ``'**/*'`` for all, ``'*.go'`` at any depth, ``'src/'`` for a directory.
            max_results: how many paths to return (the total is always counted).

        Raises:
            ToolError: an invalid glob or a bad ``max_results``.
            ToolTimeout: the listing ran too long.
        """
        if not 1 <= max_results <= MAX_LIST:
            raise ToolError(f"max_results must be between 1 and {MAX_LIST}, got {max_results}.")
        files, engine = find_files(self.root, self.settings, GlobFilter(glob))
        return FileList(
            glob=glob,
            engine=engine,
            files=tuple(files[:max_results]),
            total=len(files),
            truncated=len(files) > max_results,
        )

    def find_definition(self, symbol: str, scope: str | None = None, max_results: int = 10) -> DefinitionResult:
        """Find where a class, function, method, type or constant is defined, best candidate first.

        Args:
            symbol: a name such as ``Config``, or ``Config.load`` for a method of a class (``json.dumps``
                for a function of a module works too).
            scope: a package, directory, file or class the definition should be in (``urllib``,
                ``email/message.py``); matching definitions come first.
            max_results: how many definitions the summary shows.

        Returns:
            Definitions ranked as described in ``ranking`` (real definitions before imports, source before
            tests, vendored copies, stubs and docs, then by how central the file is), each with its ``kind``;
            close names (``suggestions``) when nothing matched.

        Raises:
            ToolError: an empty symbol, or a bad ``max_results``.
        """
        return self._indexed(queries.definitions, symbol, scope=scope, max_results=max_results)

    def find_references(self, symbol: str, max_results: int = 10, scope: str | None = None) -> ReferenceResult:
        """Find the places that use a name: calls, imports, attribute uses and other mentions, apart.

        Args:
            symbol: the name (``parse``), or ``Config.load`` for the uses of ``load`` the index can tie to
                class ``Config`` (or a subclass that inherits it); uses on a receiver of unknown class are
                listed apart as ``unresolved`` (see ``receivers``).
            max_results: how many sites of each kind the summary shows (all are counted).
            scope: only the uses in this package, directory, module or file (``http``, ``server``,
                ``email/message.py``); the others are counted as left out. A scope naming no file is ignored.

        Raises:
            ToolError: an empty symbol, or a bad ``max_results``.
        """
        return self._indexed(queries.references, symbol, max_results=max_results, scope=scope)

    def outline(self, path: str, max_results: int = 40, members_of: str | None = None) -> OutlineResult:
        """List every definition in one file, in line order (nested ones marked), with the file's length.

        Args:
            path: relative to the root; a bare file name (``config.py``) picks the best file of that name.
            max_results: how many entries the summary shows; when cut, every top-level one is kept first.
            members_of: only the members of this class (its methods, attributes, nested classes); ``path`` may
                then be empty (the class's best definition is used).

        Raises:
            ToolError: the file is outside the root or does not exist; no class ``members_of`` is indexed.
        """
        return self._indexed(outlines.outline, path, max_results=max_results, members_of=members_of)

    def search_concepts(self, query: str, max_results: int = 8) -> ConceptResult:
        """Find the functions, classes and files that best match a description (BM25 over code chunks).

        Args:
            query: words describing the code, e.g. ``"retry with exponential backoff"``.
            max_results: how many hits the summary shows.

        Raises:
            ToolError: an empty query, or a bad ``max_results``.
        """
        if not query.strip():
            raise ToolError("query is empty; describe the code you are looking for in a few words.")
        return self._indexed(queries.concepts, query, max_results=max_results)


MAX_LIST = 5000
"""The largest ``max_results`` ``list_files`` accepts."""


def _everything(rel: str) -> bool:
    return True


def _check_max_results(max_results: int) -> None:
    if not 1 <= max_results <= SUMMARY_MAX_ITEMS:
        raise ToolError(f"max_results must be between 1 and {SUMMARY_MAX_ITEMS}, got {max_results}.")


def _limit_warning(total: int, limit: int, warnings: list[str]) -> tuple[str, ...]:
    if total <= limit:
        return tuple(warnings)
    return (f"only the first {limit} of {total} matching lines were kept; narrow the query", *warnings)
