"""Results of the index tools (``find_definition``, ``find_references``, ``outline``, ``search_concepts``).

Each is a frozen pydantic model: the whole of it is the raw output (stored as the artifact), and
``summary()`` is the bounded text the controller reads. A cut list always ends with ``and N more ...``.
Summary lines that name a place use one shape a program can read back::

    1. class Request at urllib/request.py:256 [source]: class Request:
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from agentcore.tools.code.extract import Symbol
from agentcore.tools.code.models import SUMMARY_MAX_ITEMS

SUMMARY_BUDGET = 1800
"""Characters a summary aims to stay under: the runtime shows the controller about 2,000 of each payload."""


def _fit(lines: list[str], items: list[str], k: int, budget: int = SUMMARY_BUDGET) -> int:
    """How many of the first ``k`` ``items`` fit after ``lines`` within ``budget`` characters."""
    used = sum(len(x) + 1 for x in lines) + 80
    n = 0
    for item in items[:k]:
        used += len(item) + 1
        if used > budget:
            break
        n += 1
    return n


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Place(_Frozen):
    """A definition or a concept-search hit."""

    name: str
    kind: str
    """``class``, ``function``, ``method``, ``constant``, ``variable``, ``type``, ``interface``, ``enum``,
    ``namespace``, or a binding that points elsewhere: ``alias``, ``export``, ``import``, ``require``; ``module``
    for a whole-file concept hit."""
    container: str | None = None
    """The enclosing class (or function) for nested definitions."""
    path: str
    line: int
    end_line: int
    path_class: str
    """``source``, ``test``, ``docs``, ``vendored`` or ``stub``."""
    signature: str = ""
    doc: str = ""
    """The first sentence of its docstring or leading comment."""
    score: float = 0.0
    """Concept search: BM25 relevance after the path-class weight (higher is better); 0 for definitions."""

    @property
    def qualified(self) -> str:
        return f"{self.container}.{self.name}" if self.container else self.name

    def line_text(self, n: int) -> str:
        text = (
            f"{n}. {self.kind} {self.qualified} at {self.path}:{self.line} [{self.path_class}]: {self.signature[:110]}"
        )
        return text + (f"\n   {self.doc[:120]}" if self.doc else "")


def _more(hidden: int, noun: str, hint: str) -> list[str]:
    return [f"and {hidden} more {noun} not shown ({hint})"] if hidden > 0 else []


class DefinitionResult(_Frozen):
    """What ``find_definition`` found, best first (see ``ranking``)."""

    symbol: str
    scope: str | None = None
    definitions: tuple[Place, ...]
    suggestions: tuple[str, ...] = ()
    """Close names defined in the index, when nothing matched (typos)."""
    files_indexed: int
    max_results: int = 8

    def summary(self, top_k: int | None = None) -> str:
        k = max(0, min(self.max_results if top_k is None else top_k, SUMMARY_MAX_ITEMS))
        where = f" (preferring {self.scope!r})" if self.scope else ""
        if not self.definitions:
            out = f"No definition of {self.symbol!r} among {self.files_indexed} indexed files."
            if self.suggestions:
                out += f" Did you mean: {', '.join(self.suggestions)}?"
            return out
        n = len(self.definitions)
        lines = [f"{n} definition{'s' if n != 1 else ''} of {self.symbol!r}{where}, best first:"]
        items = [p.line_text(i) for i, p in enumerate(self.definitions[:k], 1)]
        k = _fit(lines, items, k)
        lines += items[:k]
        lines += _more(n - k, "definitions", "pass scope= to narrow, or a larger max_results")
        return "\n".join(lines)


class RefSite(_Frozen):
    """One line that refers to the name."""

    path: str
    line: int
    text: str = ""
    """The line (stripped, cut to 200 characters); empty beyond the first pages."""


class ReferenceResult(_Frozen):
    """What ``find_references`` found: sites grouped by kind, definitions themselves left out.

    For ``Class.method`` (``owner`` set) the groups hold only the uses the index can tie to that class or
    to a subclass that does not override the method (``self.method()`` inside it, ``Class.method``, a
    local known to hold one); ``unresolved`` holds uses of ``.method`` on a receiver whose class the
    index cannot tell, and ``other_owners`` counts those tied to other classes or modules (left out).
    """

    symbol: str
    calls: tuple[RefSite, ...]
    imports: tuple[RefSite, ...]
    attributes: tuple[RefSite, ...]
    """``x.name`` uses that are not calls."""
    mentions: tuple[RefSite, ...]
    """Any other use of the identifier (annotations, arguments, assignments)."""
    totals: dict[str, int]
    """Kind -> how many sites, including those not listed (``unresolved`` too when ``owner`` is set)."""
    files: int
    """How many files refer to the name (with ``owner``: through a use tied to it)."""
    max_results: int = 10
    owner: str | None = None
    """The class (or module) the uses were narrowed to, from ``Class.method``."""
    owner_is_class: bool = False
    """Whether ``owner`` is a class the index defines (else it is taken as a module or package name)."""
    unresolved: tuple[RefSite, ...] = ()
    other_owners: int = 0
    only_definer: bool = False
    """No other class or module in the index defines the name, so unresolved uses are probably ``owner``'s."""
    scope: str | None = None
    """The place the uses were kept from (a package, module or file), when one was asked for."""
    out_of_scope: int = 0
    """Uses outside ``scope`` (counted, not listed)."""

    def summary(self, top_k: int | None = None) -> str:
        k = max(0, min(self.max_results if top_k is None else top_k, SUMMARY_MAX_ITEMS))
        elsewhere = (
            f"{self.out_of_scope} uses of that name outside {self.scope} are left out." if self.out_of_scope else ""
        )
        kinds = ("calls", "imports", "attributes", "mentions")
        total = sum(self.totals.get(kind, 0) for kind in kinds)
        n_unresolved = self.totals.get("unresolved", 0)
        if total + n_unresolved == 0:
            left = (
                f" ({self.other_owners} uses of that name belong to other classes or modules)"
                if self.other_owners
                else ""
            )
            within = f" in {self.scope}" if self.scope else ""
            head = f"No references to {self.symbol!r} (calls, imports, attribute uses or mentions) were found{within}{left}."
            return head + (" " + elsewhere if elsewhere else "")
        counts = ", ".join(f"{self.totals.get(kind, 0)} {kind}" for kind in kinds)
        narrowed = (
            f" that resolve to {self.owner}" + (" or a subclass" if self.owner_is_class else "") if self.owner else ""
        ) + (f" within {self.scope}" if self.scope else "")
        lines = [
            f"{total} references to {self.symbol!r} in {self.files} files{narrowed} ({counts}), most relevant first:"
        ]
        present = [kind for kind in kinds if self.totals.get(kind, 0)] + (["unresolved"] if n_unresolved else [])
        share = SUMMARY_BUDGET // max(1, len(present))
        for kind in present:
            sites: tuple[RefSite, ...] = getattr(self, kind)
            n = self.totals[kind]
            head = f"{kind} ({n}):"
            items = [f"{s.path}:{s.line}: {s.text[:80]}" for s in sites[:k]]
            shown = _fit([head], items, k, share)
            lines.append(head)
            lines += items[:shown]
            lines += _more(n - shown, kind, "call find_references with a larger max_results")
        if n_unresolved:
            name = self.symbol.rsplit(".", 1)[-1]
            likely = (
                f"no other class or module here defines {name}, so they may well be {self.owner}'s "
                "(built-in and library types are not indexed)"
                if self.only_definer
                else f"some may be {self.owner}'s, others belong to other classes"
            )
            lines.append(f"(unresolved: uses of .{name} whose receiver's class the index cannot tell; {likely})")
        if self.other_owners:
            lines.append(f"{self.other_owners} uses of that name belong to other classes or modules and are left out.")
        if elsewhere:
            lines.append(elsewhere)
        return "\n".join(lines)


OutlineEntry = Symbol
"""One definition of a file: the index's own ``Symbol`` (``depth`` 0 at top level, 1 for a class member or
a function inside a top-level function, and so on)."""


class OutlineResult(_Frozen):
    """Every definition of one file, in line order."""

    path: str
    lines: int
    language: str
    entries: tuple[OutlineEntry, ...]
    other_candidates: tuple[str, ...] = ()
    """Other files with the same name, when ``path`` was a bare file name."""
    max_results: int = 40
    of_class: str | None = None
    """Set when only the members of this class are listed (``outline(members_of=...)``)."""
    class_line: int = 0
    """The line of ``of_class``'s definition."""

    def summary(self, top_k: int | None = None) -> str:
        k = max(0, min(self.max_results if top_k is None else top_k, SUMMARY_MAX_ITEMS))
        top = [e for e in self.entries if e.depth == 0]
        head = f"{self.path}: {self.lines} lines, {len(self.entries)} definitions ({len(top)} top-level):"
        if self.of_class:
            head = f"{self.path}: {self.lines} lines, class {self.of_class} at line {self.class_line}, {len(self.entries)} members:"
            top = list(self.entries)
        if not self.entries:
            head = f"{self.path}: {self.lines} lines, no definitions ({self.language})."
            if self.of_class:
                head = f"{self.path}: {self.lines} lines, class {self.of_class} at line {self.class_line}, no members."
        lines = [head]
        while True:  # fewer entries until they fit: nested and private ones go first (see _choose)
            shown = self._choose(k)
            items = [
                f"{e.line:>6}| {e.kind} {e.name}"
                if self.of_class
                else f"{e.line:>6}| {'  ' * e.depth}{e.kind} {e.name}" + (f" (nested in {e.container})" if e.depth else "")
                for e in shown
            ]
            if k <= 1 or _fit(lines, items, len(items)) == len(items):
                break
            k = min(k, len(items)) - max(1, len(items) // 10)
        lines += items
        hidden = len(self.entries) - len(shown)
        noun = "nested definitions" if all(e in shown for e in top) else "definitions (private or nested)"
        lines += _more(hidden, noun, f"call outline(path={self.path!r}, max_results={SUMMARY_MAX_ITEMS}) for all")
        if self.other_candidates:
            lines.append(f"other files with this name: {', '.join(self.other_candidates[:10])}")
        return "\n".join(lines)

    def _choose(self, k: int) -> list[OutlineEntry]:
        """All entries when ``k`` allows; else top-level public ones first, then private, then nested (line order)."""
        if len(self.entries) <= k:
            return list(self.entries)

        def rank(e: OutlineEntry) -> int:
            private = e.name.startswith("_") and not e.name.startswith("__")
            minor = e.kind in ("variable", "alias", "overload", "export")
            return 3 if e.depth and not self.of_class else 2 if private or minor else 1

        chosen = sorted(self.entries, key=lambda e: (rank(e), e.line))[:k]
        return sorted(chosen, key=lambda e: (e.line, e.depth))


class ConceptResult(_Frozen):
    """What ``search_concepts`` found: the best code chunks for a description."""

    query: str
    terms: tuple[str, ...]
    """The words searched for (question words like 'where' and 'which' left out)."""
    hits: tuple[Place, ...]
    total: int
    max_results: int = 8

    def summary(self, top_k: int | None = None) -> str:
        k = max(0, min(self.max_results if top_k is None else top_k, SUMMARY_MAX_ITEMS))
        if not self.hits:
            return (
                f"No code matches the description {self.query!r} (words searched: {', '.join(self.terms) or 'none'})."
            )
        lines = [f"Best matches for {self.query[:200]!r} (words: {', '.join(self.terms[:12])}), best first:"]
        items = [p.line_text(i) for i, p in enumerate(self.hits[:k], 1)]
        k = _fit(lines, items, k)
        lines += items[:k]
        lines += _more(self.total - k, "matches", "rephrase with more specific words")
        return "\n".join(lines)
