"""Concept-search chunks: one full-text row per class, function, method or module-level constant, and one per file.

A chunk's columns (searched with BM25 through SQLite FTS5, Porter stemming):

- ``name``: the identifier and its class, split into words (``parseHTTPResponse`` -> ``parse http response``);
- ``path``: the file's path split into words;
- ``doc``: the docstring (or leading comment; see ``body`` for a function with neither);
- ``body``: the comments inside it and the identifiers it uses, split into words (a class: its methods' names);
  a function with no docstring that is passed by name elsewhere in its file (``atexit.register(_python_exit)``,
  ``signal.signal(SIGINT, on_interrupt)``) gets the names on that line and the comments just above it as its
  ``doc``: the registration says what the function is for.
"""

from __future__ import annotations

import bisect

from agentcore.tools.code.extract import FileFacts, first_sentence
from agentcore.tools.code.ranking import words_of

CHUNK_KINDS = ("class", "function", "method", "interface", "type", "enum", "namespace")
_MAX_BODY_WORDS = 400
_MAX_PASSED_SITES = 3
_COMMENT_REACH = 8
"""How many lines above a registration line its comments are read from."""


ChunkRow = tuple[str, str, str, str, str, int, str, str, "str | None", str]


def chunk_rows(rel: str, facts: FileFacts) -> list[ChunkRow]:
    """The chunk rows of the file ``rel``: ``(name, path, doc, body, file, line, symbol, kind, container, summary)``."""
    symbols = sorted(
        ((s.name, s.kind, s.line, s.end_line, s.container, s.signature, s.doc) for s in facts.symbols),
        key=lambda s: s[2],
    )
    refs = sorted(((line, name) for name, _kind, line, _qual in facts.refs), key=lambda r: r[0])
    comments = sorted(facts.comments)
    ref_lines = [r[0] for r in refs]
    passed: dict[str, list[int]] = {}  # a name used as a value (not called): the lines
    names_on: dict[int, list[str]] = {}
    for name, kind, line, _qual in facts.refs:
        names_on.setdefault(line, []).append(name)
        if kind == "mention":
            passed.setdefault(name, []).append(line)
    comment_lines = [c[0] for c in comments]
    path_words = words_of(rel.rsplit(".", 1)[0])
    stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    module_doc = facts.doc
    top = [s[0] for s in symbols if s[4] is None and s[1] in CHUNK_KINDS]
    rows: list[ChunkRow] = [
        (
            words_of(stem),
            path_words,
            module_doc,
            words_of(" ".join(top[:100])),
            rel,
            1,
            stem,
            "module",
            None,
            first_sentence(module_doc),
        )
    ]
    methods: dict[str, list[str]] = {}
    for name, kind, _line, _end, container, _sig, _doc in symbols:
        if container is not None and kind == "method":
            methods.setdefault(container, []).append(name)
    for name, kind, line, end, container, signature, doc in symbols:
        if kind not in CHUNK_KINDS and not (kind == "constant" and container is None):
            continue  # a module-level constant is a chunk too: "where is the HTTP timeout set?" -> DEFAULT_TIMEOUT
        inner = _between(comment_lines, comments, line, end, 40)
        if kind == "class":
            used = " ".join(methods.get(name, [])[:100])
        else:
            used = " ".join(dict.fromkeys(n for _, n in _between(ref_lines, refs, line, end, 2000)))
        body = (" ".join(t for _, t in inner) + " " + words_of(used)).split()[:_MAX_BODY_WORDS]
        text = doc
        if not doc and kind in ("function", "method") and name in passed:  # where it is registered says what it is for
            text = _registered(name, line, end, passed[name], names_on, comment_lines, comments)
        title = words_of(name) + (" " + words_of(container) if container else "")
        rows.append(
            (title, path_words, text, " ".join(body), rel, line, name, kind, container, first_sentence(doc) or signature)
        )
    return rows


def _registered(
    name: str,
    first: int,
    last: int,
    lines: list[int],
    names_on: dict[int, list[str]],
    comment_lines: list[int],
    comments: list[tuple[int, str]],
) -> str:
    """Words from the lines outside ``first..last`` that pass ``name`` on as a value among other names
    (``threading._register_atexit(_python_exit)``): those names and the comments just above each such line."""
    sites = sorted({n for n in lines if not first <= n <= last})[:_MAX_PASSED_SITES]
    words: list[str] = []
    for site in sites:
        others = [ref for ref in names_on.get(site, []) if ref != name]
        if not others:
            continue
        words += [words_of(ref) for ref in others]
        words += [text for _, text in _between(comment_lines, comments, site - _COMMENT_REACH, site, _COMMENT_REACH + 1)]
    return " ".join(words)


def _between(keys: list[int], rows: list, first: int, last: int, limit: int) -> list:
    lo = bisect.bisect_left(keys, first)
    hi = bisect.bisect_right(keys, last)
    return rows[lo : min(hi, lo + limit)]
