"""Definition patterns for ``find_definition``: Python, Go, JavaScript/TypeScript, and a generic fallback.

One regular expression, the union of every pattern, goes to the search engine (ripgrep or Python): its
syntax is the part Rust's ``regex`` and Python's ``re`` share. The lines it finds are then ranked in Python:

0. a definition in the file's own language (``def name``, ``type Name struct``, ``export const name =``);
1. a line starting with a definition keyword of another language (``pub struct Name``, ``fn name``);
2. a definition keyword followed by the name elsewhere on the line (in a comment, for instance).

Lines that match only a pattern of another language (a Go pattern in a ``.py`` file) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agentcore.errors import ToolError
from agentcore.tools.code.models import CodeMatch

LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".go": "go",
    **{ext: "js" for ext in (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts")},
}
"""File extension -> language whose definition patterns apply."""

_JS_PREFIX = r"^\s*(?:export\s+)?(?:default\s+)?(?:declare\s+)?"
_PATTERNS: dict[str, tuple[str, ...]] = {
    "python": (
        r"^\s*(?:async\s+)?def\s+{n}\s*[(\[]",
        r"^\s*class\s+{n}\b",
        r"^(?:type\s+)?{n}\s*(?::[^=]*)?=(?:[^=]|$)",
    ),
    "go": (
        r"^func\s+{n}\s*[(\[]",
        r"^func\s*\([^)]*\)\s*{n}\s*[(\[]",
        r"^\s*(?:type|const|var)\s+{n}\b",
    ),
    "js": (
        _JS_PREFIX + r"(?:async\s+)?function\b\s*\*?\s*{n}\s*[(<]",
        _JS_PREFIX + r"(?:abstract\s+)?class\s+{n}\b",
        _JS_PREFIX + r"(?:const|let|var)\s+{n}\s*(?::[^=]*)?=",
        _JS_PREFIX + r"(?:interface|namespace|module)\s+{n}\b",
        _JS_PREFIX + r"type\s+{n}\s*(?:<[^=]*>)?\s*=",
        _JS_PREFIX + r"(?:const\s+)?enum\s+{n}\b",
        r"^\s*(?:(?:public|private|protected|static|async|readonly|override|get|set)\s+)*\*?{n}\s*"
        r"(?:<[^>]*>)?\([^)]*\)\s*(?::[^{]*)?\{",
    ),
}
_KEYWORDS = (
    r"(?:def|fn|func|function|class|struct|enum|union|trait|interface|type|typealias|module|mod|impl|"
    r"macro_rules!|sub|proc|typedef|let|var|const|val|static|object|record|protocol|namespace)"
)
_MODIFIERS = r"(?:(?:pub(?:\([^)]*\))?|export|public|private|protected|internal|static|async|unsafe|extern|"
_MODIFIERS += r"abstract|final|sealed|open|data|inline|override|default)\s+)*"
_LINE_START = r"^\s*" + _MODIFIERS + _KEYWORDS + r"\s+\*?{n}\b"
_ANYWHERE = r"\b" + _KEYWORDS + r"\s+\*?{n}\b"
_DEFINE = r"^\s*#\s*define\s+{n}\b"


class DefinitionQuery:
    """The patterns for one symbol.

    Args:
        symbol: an identifier; for a dotted name (``Client.send``) the last part is looked up.

    Raises:
        ToolError: ``symbol`` is not an identifier.
    """

    def __init__(self, symbol: str) -> None:
        name = symbol.strip().rsplit(".", 1)[-1]
        if not name.isidentifier():
            raise ToolError(
                f"find_definition takes an identifier such as 'ClientError' or 'parse_args', got {symbol!r}; "
                "use search_code to look for other text."
            )
        n = re.escape(name)
        self.symbol = symbol.strip()
        self.name = name
        """The identifier sought: every definition line contains it."""
        self._own = {lang: [re.compile(p.replace("{n}", n)) for p in pats] for lang, pats in _PATTERNS.items()}
        self._line_start = [re.compile(_LINE_START.replace("{n}", n)), re.compile(_DEFINE.replace("{n}", n))]
        self._anywhere = re.compile(_ANYWHERE.replace("{n}", n))
        every = [p for pats in _PATTERNS.values() for p in pats] + [_ANYWHERE, _DEFINE]
        self.regex = "|".join(f"(?:{p.replace('{n}', n)})" for p in every)
        """The union of all patterns, for the search engine."""

    def rank(self, path: str, text: str) -> int | None:
        """0 for a definition in the file's language, 1 or 2 for generic ones, ``None`` for no definition."""
        lang = LANGUAGES.get(path[path.rfind(".") :].lower()) if "." in path.rsplit("/", 1)[-1] else None
        if lang is not None and any(rx.search(text) for rx in self._own[lang]):
            return 0
        if any(rx.search(text) for rx in self._line_start):
            return 1
        if self._anywhere.search(text):
            return 2
        return None

    def ranked(self, matches: Iterable[CodeMatch]) -> list[CodeMatch]:
        """The definitions among ``matches``, best first, then by path and line."""
        scored = [(r, m) for m in matches if (r := self.rank(m.path, m.text)) is not None]
        scored.sort(key=lambda rm: (rm[0], rm[1].path, rm[1].line))
        return [m for _, m in scored]
