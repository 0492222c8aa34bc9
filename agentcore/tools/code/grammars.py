"""Which files the symbol index reads, and with which tree-sitter grammar.

Grammars come from the per-language wheels (``tree-sitter-python``, ``-javascript``, ``-typescript``,
``-go``): they are compiled into the wheel, so nothing is downloaded at run time. Files of other
source languages listed in ``FALLBACK_EXTENSIONS`` are read with line patterns instead (definitions
only, no references).
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

GRAMMAR_EXTENSIONS: Final = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
}
"""File extension -> tree-sitter grammar."""

FALLBACK_EXTENSIONS: Final = frozenset(
    ".c .h .cc .cpp .cxx .hpp .hh .rs .java .kt .kts .scala .rb .php .cs .swift .lua .sh .bash .pl .pm .r .m "
    ".ex .exs .erl .hs .ml .dart .zig .nim .jl .groovy .clj".split()
)
"""Source files with no grammar here: their definitions are found with line patterns."""

MAX_INDEXED_BYTES: Final = 2 * 1024 * 1024
"""Larger files (generated or minified code, data) are not indexed."""


def language_of(path: str) -> str | None:
    """``"python"``, ``"javascript"``, ``"typescript"``, ``"tsx"``, ``"go"``, ``"text"`` (fallback) or ``None``."""
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    if dot <= 0:
        return None
    ext = name[dot:].lower()
    if ext in GRAMMAR_EXTENSIONS:
        return GRAMMAR_EXTENSIONS[ext]
    return "text" if ext in FALLBACK_EXTENSIONS else None


def _load(name: str) -> Any:
    if name == "python":
        import tree_sitter_python as mod

        return mod.language()
    if name == "javascript":
        import tree_sitter_javascript as js

        return js.language()
    if name in ("typescript", "tsx"):
        import tree_sitter_typescript as ts

        return ts.language_typescript() if name == "typescript" else ts.language_tsx()
    import tree_sitter_go as go

    return go.language()


_REFERENCE_QUERIES: Final = {
    "python": """
        (call function: (identifier) @call)
        (call function: (attribute attribute: (identifier) @call))
        (attribute attribute: (identifier) @attribute)
        (import_from_statement name: (dotted_name (identifier) @import))
        (import_from_statement name: (aliased_import name: (dotted_name (identifier) @import)))
        (import_from_statement module_name: (dotted_name (identifier) @import))
        (import_statement name: (dotted_name (identifier) @import))
        (import_statement name: (aliased_import name: (dotted_name (identifier) @import)))
    """,
    "javascript": """
        (call_expression function: (identifier) @call)
        (call_expression function: (member_expression property: (property_identifier) @call))
        (new_expression constructor: (identifier) @call)
        (member_expression property: (property_identifier) @attribute)
        (import_specifier name: (identifier) @import)
        (import_clause (identifier) @import)
    """,
    "go": """
        (call_expression function: (identifier) @call)
        (call_expression function: (selector_expression field: (field_identifier) @call))
        (selector_expression field: (field_identifier) @attribute)
        (import_spec path: (interpreted_string_literal) @import)
        (type_identifier) @mention
    """,
}
_EVERY_LANGUAGE = "\n(identifier) @mention\n(comment) @comment\n"
"""Any other identifier is a mention; comments feed the concept search."""
_TYPE_MENTIONS = "\n(type_identifier) @mention\n"


class Grammar:
    """A tree-sitter parser and the reference query for one language."""

    def __init__(self, name: str) -> None:
        import tree_sitter

        self.name = name
        self.language = tree_sitter.Language(_load(name))
        self.parser = tree_sitter.Parser(self.language)
        family = "javascript" if name in ("typescript", "tsx") else name
        source = (
            _REFERENCE_QUERIES[family] + _EVERY_LANGUAGE + (_TYPE_MENTIONS if name in ("typescript", "tsx") else "")
        )
        self.cursor = tree_sitter.QueryCursor(tree_sitter.Query(self.language, source))

    def parse(self, data: bytes) -> Any:
        return self.parser.parse(data)

    def captures(self, node: Any) -> dict[str, list[Any]]:
        result: dict[str, list[Any]] = self.cursor.captures(node)
        return result


@cache
def grammar(name: str) -> Grammar:
    """The (cached, per process) grammar for ``name``."""
    return Grammar(name)
