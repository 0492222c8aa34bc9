"""The code-search toolkit as agent tools: ``code_tools(root)`` for an ``Agent`` or a ``ToolRunner``."""

from __future__ import annotations

from pathlib import Path

from agentcore.tools.base import Tool, tool
from agentcore.tools.code import AUTO, CodeTools, FileList, FileSlice, SearchResult
from agentcore.tools.code.index import Progress
from agentcore.tools.code.index_models import ConceptResult, DefinitionResult, OutlineResult, ReferenceResult

INDEX_BUILD_SECONDS = 600
"""Extra time the index tools get: the first call on a large tree builds the index (the standard library:
about 30 s of CPU, spread over worker processes), later calls re-read only changed files."""


def code_tools(
    root: str | Path,
    *,
    rg: str | Path | None = AUTO,
    timeout: float = 30.0,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> list[Tool]:
    """``search_code``, ``read_file``, ``list_files``, ``find_definition``, ``find_references``, ``outline`` and
    ``search_concepts``, confined to ``root``.

    The last four read a symbol index (tree-sitter definitions and references, a BM25 full-text index)
    kept in ``cache_dir`` (default ``$XDG_CACHE_HOME/agentcore/code-index``), never inside ``root``; it is
    brought up to date before every call, re-parsing only the files that changed.

    Each returns a result model: the whole of it is stored as the artifact, its ``summary()`` is the
    payload the controller sees. Paths that leave ``root`` are refused with a ``ToolError``.

    Args:
        root: The directory the tools may read; nothing outside it is opened.
        rg: The ripgrep executable (``AUTO``: ``rg`` on PATH, else the pure-Python engine).
        timeout: Seconds a single tool call may take (the first index build of a large tree may take longer).
        cache_dir: Where the symbol index is kept.
        progress: Called as ``progress(done, total)`` while the index is built or updated (files).
    """
    ct = CodeTools(root, rg=rg, timeout=timeout, cache_dir=cache_dir, progress=progress)
    return [*_text_tools(ct, timeout), *_index_tools(ct, timeout)]


def _text_tools(ct: CodeTools, timeout: float) -> list[Tool]:
    """``search_code``, ``read_file`` and ``list_files`` over ``ct``."""

    @tool(timeout=timeout + 5)
    def search_code(query: str, regex: bool = False, glob: str | None = None, max_results: int = 20) -> SearchResult:
        """Search the text of every file in the repository (respects .gitignore, skips binary files).

        Args:
            query: The text to look for (a literal string unless regex is true).
            regex: Treat query as a regular expression (Rust/ripgrep syntax).
            glob: Only search files whose path matches this glob, e.g. "**/*.go".
            max_results: How many matches to show in the result (all are counted and stored).
        """
        return ct.search_code(query, regex=regex, glob=glob, max_results=max_results)

    @tool(timeout=timeout + 5)
    def read_file(path: str, start_line: int = 1, end_line: int | None = None) -> FileSlice:
        """Read numbered lines of a text file, a page at a time.

        Args:
            path: The file's path relative to the repository root.
            start_line: First line to show (1-based).
            end_line: Last line to show (default: one page from start_line).
        """
        return ct.read_file(path, start_line=start_line, end_line=end_line)

    @tool(timeout=timeout + 5)
    def list_files(glob: str = "**/*", max_results: int = 200) -> FileList:
        """List files of the repository whose path matches a glob (respects .gitignore).

        Args:
            glob: A glob such as "**/*.py" or "src/**".
            max_results: How many paths to return.
        """
        return ct.list_files(glob, max_results=max_results)

    return [search_code, read_file, list_files]


def _index_tools(ct: CodeTools, timeout: float) -> list[Tool]:
    """``find_definition``, ``find_references``, ``outline`` and ``search_concepts`` over ``ct``'s index."""

    @tool(timeout=timeout + INDEX_BUILD_SECONDS)
    def find_definition(symbol: str, scope: str | None = None, max_results: int = 10) -> DefinitionResult:
        """Find where a class, function, method, type or constant is DEFINED, best candidate first, with its kind.

        Use this for "where is X defined/declared/implemented". Real definitions come before imports and
        re-exports; source files before tests, vendored copies, stubs and docs. When nothing matches, close
        names are suggested (typos). Python, JavaScript, TypeScript and Go are parsed; other languages by pattern.

        Args:
            symbol: The identifier, e.g. "ClientError"; "Class.method" for a method; "module.name" works too.
            scope: Optional package, directory, file or class the definition should be in, e.g. "urllib" or "email/message.py".
            max_results: How many candidate definitions to show.
        """
        return ct.find_definition(symbol, scope=scope, max_results=max_results)

    @tool(timeout=timeout + INDEX_BUILD_SECONDS)
    def find_references(symbol: str, max_results: int = 10, scope: str | None = None) -> ReferenceResult:
        """Find where a name is USED: call sites, imports, attribute uses and other mentions, listed apart.

        Use this for "who calls X", "where is X used/imported". The definition itself is not listed (use
        find_definition). Counts cover every use; the lists show the most relevant first.

        Args:
            symbol: The identifier, e.g. "parse_config"; "Class.method" keeps only the uses the index can tie to
                that class (self.method() inside it, a variable known to hold one); uses on a receiver of unknown
                class are listed apart as "unresolved".
            max_results: How many sites of each kind to show.
            scope: Optional package, directory, module or file the uses should be in ("who calls X in the
                server module"), e.g. "http" or "email/message.py"; uses elsewhere are only counted.
        """
        return ct.find_references(symbol, max_results=max_results, scope=scope)

    @tool(timeout=timeout + INDEX_BUILD_SECONDS)
    def outline(path: str, max_results: int = 40, members_of: str | None = None) -> OutlineResult:
        """List every definition in ONE file (classes, functions, methods marked as nested, constants) with lines.

        Use this for "what does FILE contain" or "what is defined in NAME.py". A bare file name picks the best
        file of that name and names the others. With members_of, only one class's members ("what methods does
        Logger have?"); path may then be "".

        Args:
            path: The file, relative to the repository root (e.g. "src/app/config.py"), or a bare name ("config.py").
            max_results: How many entries to show; when cut, top-level definitions are kept first.
            members_of: A class name, e.g. "Logger": list only its methods, attributes and nested classes.
        """
        return ct.outline(path, max_results=max_results, members_of=members_of)

    @tool(timeout=timeout + INDEX_BUILD_SECONDS)
    def search_concepts(query: str, max_results: int = 8) -> ConceptResult:
        """Find code by what it DOES when you do not know a name: ranked functions, classes and files.

        Use this for questions like "where are retries with backoff handled?" or "which module renders the
        progress bar?". Searches names, docstrings, comments and identifiers (BM25); cite the hits it returns.

        Args:
            query: A few words describing the behaviour, e.g. "retry backoff" or "render progress bar".
            max_results: How many hits to show.
        """
        return ct.search_concepts(query, max_results=max_results)

    return [find_definition, find_references, outline, search_concepts]
