"""The code-search toolkit as agent tools: ``code_tools(root)`` for an ``Agent`` or a ``ToolRunner``."""

from __future__ import annotations

from pathlib import Path

from agentcore.tools.base import Tool, tool
from agentcore.tools.code import AUTO, CodeTools, FileList, FileSlice, SearchResult


def code_tools(root: str | Path, *, rg: str | Path | None = AUTO, timeout: float = 30.0) -> list[Tool]:
    """``search_code``, ``read_file``, ``list_files`` and ``find_definition`` confined to ``root``.

    Each returns a result model: the whole of it is stored as the artifact, its ``summary()`` is the
    payload the controller sees. Paths that leave ``root`` are refused with a ``ToolError``.

    Args:
        root: The directory the tools may read; nothing outside it is opened.
        rg: The ripgrep executable (``AUTO``: ``rg`` on PATH, else the pure-Python engine).
        timeout: Seconds a single tool call may take.
    """
    ct = CodeTools(root, rg=rg, timeout=timeout)

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

    @tool(timeout=timeout + 5)
    def find_definition(symbol: str, max_results: int = 20) -> SearchResult:
        """Find where a class, function, method, type or constant is defined (Python, Go, JS/TS and more).

        Args:
            symbol: The name to look for, e.g. "ClientError" or "parse_config".
            max_results: How many candidate definitions to show.
        """
        return ct.find_definition(symbol, max_results=max_results)

    return [search_code, read_file, list_files, find_definition]
