"""Questions to a refreshed ``SymbolIndex``: definitions, references, concept search, close names (outlines: ``outlines``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agentcore.errors import ToolError
from agentcore.tools.code.extract import first_sentence
from agentcore.tools.code.index import SymbolIndex
from agentcore.tools.code.index_models import (
    ConceptResult,
    DefinitionResult,
    Place,
    ReferenceResult,
    RefSite,
)
from agentcore.tools.code.ranking import (
    BINDING_ORDER,
    PATH_CLASS_NAMES,
    TEST,
    is_legacy,
    is_private,
    path_class,
    scope_matches,
    split_identifier,
)

_PATH_WEIGHT = {0: 1.0, 1: 0.45, 2: 0.5, 3: 0.4, 4: 0.5}
"""Concept search: how much a hit in source, test, docs, vendored or stub files counts."""

STOP_WORDS = frozenset(
    """a an the of in on to for from by with and or not no is are was were be been being it its this that these
    those there here what which who whom whose where when why how does do did done doing can could should would
    will shall may might must i me my we our you your he she they them their code codebase repo repository
    project module modules function functions method methods class classes defined define definition
    implemented implement implementation handled handle handles handling happen happens done find show tell
    give list please used use uses using called call calls any all some thing things part logic place places
    about into via inside whole also just only like such then than so if else get gets live lives located
    responsible deal deals dealt take takes care piece too very much many""".split()
)
"""Question words left out of a concept search (a content word such as 'retry' or 'render' is kept)."""


_CONSTRUCTORS = {"constructor": ("__init__", "__new__"), "__init__": ("constructor",), "init": ("__init__", "constructor")}
"""``Class.constructor`` also finds a Python ``__init__``; ``Class.__init__`` a JavaScript ``constructor``."""


def _place(row: tuple, rank_order: int = 0) -> Place:
    path, name, kind, line, end_line, container, signature, doc = row[:8]
    return Place(
        name=name, kind=kind, container=container, path=path, line=line, end_line=end_line,
        path_class=PATH_CLASS_NAMES[path_class(path)], signature=signature, doc=first_sentence(doc),
    )  # fmt: skip


def definitions(ix: SymbolIndex, symbol: str, scope: str | None = None, max_results: int = 10) -> DefinitionResult:
    """Ranked definitions of ``symbol`` (``name`` or ``Container.name``); see ``ranking`` for the order.

    An all-lower-case name also matches names in another case (``console`` finds class ``Console``):
    top-level definitions in its own case first, then top-level ones in another case, then members.
    """
    container, _, name = symbol.strip().rpartition(".")
    if not name:
        raise ToolError(f"find_definition needs a name such as 'Config' or 'Config.load', got {symbol!r}.")
    any_case = name == name.lower() and name != name.upper()  # "console" may mean Console; "Config" means Config
    names = (name, *_CONSTRUCTORS.get(name, ())) if container else (name,)  # Table.constructor: its __init__
    rows = ix.db.execute(
        "SELECT f.path, s.name, s.kind, s.line, s.end_line, s.container, s.signature, s.doc, s.depth, f.rank "
        f"FROM symbols s JOIN files f ON f.hash = s.hash WHERE s.name {'COLLATE NOCASE' if any_case else ''} "
        f"IN ({', '.join('?' * len(names))})",
        names,
    ).fetchall()
    if not container:
        rows += _modules_named(ix, name, any_case)
    mixed = any(r[1] != name for r in rows)
    if container and any(r[5] == container.rsplit(".", 1)[-1] for r in rows):
        wanted_container: str | None = container.rsplit(".", 1)[-1]
    else:
        wanted_container = None
        scope = scope or container or None

    exported = _exported_from(rows)

    def key(r: tuple) -> tuple:
        path, kind, container_, depth, rank = r[0], r[2], r[5], r[8], r[9]
        named = (wanted_container is None or container_ == wanted_container) and (
            scope is None or scope_matches(scope, path, container_)
        )
        nested_in_function = depth >= 1 and kind != "method" and container_ is not None
        member = depth >= 1 and wanted_container is None  # a plain name: the top-level one before methods
        exact = r[1] == name  # a lower-case name: top-level ones in its own case, then in another, then members
        tier = ((0 if exact else 1) if not member else (2 if exact else 3)) if mixed else 0
        binding = BINDING_ORDER.get(kind, 2)
        private = is_private(path) and not (depth == 0 and _module_name(path) in exported)  # a package re-exports it
        return (
            binding == 3, not named, path_class(path), binding, tier, is_legacy(path), private, member,
            nested_in_function, -rank, len(path), path, r[3],
        )  # fmt: skip

    rows.sort(key=key)
    places = tuple(_place(r) for r in rows)
    total_files = ix.db.execute("SELECT count(*) FROM files").fetchone()[0]
    suggestions = tuple(close_names(ix, name)) if not places else ()
    return DefinitionResult(
        symbol=symbol.strip(), scope=scope, definitions=places, suggestions=suggestions,
        files_indexed=total_files, max_results=max_results,
    )  # fmt: skip


def _module_name(path: str) -> str:
    """``pkg/_common.py`` -> ``_common``; ``pkg/_impl/__init__.py`` -> ``_impl``."""
    parts = path.split("/")
    stem = parts[-1].split(".", 1)[0]
    return parts[-2] if stem == "__init__" and len(parts) > 1 else stem


def _exported_from(rows: list[tuple]) -> set[str]:
    """The modules a package ``__init__`` imports the name from (``from ._common import files`` -> ``_common``)."""
    found = set()
    for r in rows:
        if r[2] == "import" and r[0].rsplit("/", 1)[-1].startswith("__init__."):
            m = re.match(r"\s*from\s+\.*([\w.]+)\s+import\b", r[6])
            if m:
                found.add(m.group(1).rsplit(".", 1)[-1])
    return found


def _modules_named(ix: SymbolIndex, name: str, any_case: bool) -> list[tuple]:
    """Files that are the module ``name`` (``name.py``, ``name/__init__.py``, ``name.go``...) as definition rows of
    kind ``module`` at line 1, with the module's docstring."""
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = ix.db.execute(
        "SELECT f.path, c.lines, c.doc, f.rank FROM files f JOIN contents c ON c.hash = f.hash "
        "WHERE f.path LIKE ? ESCAPE '\\' OR f.path LIKE ? ESCAPE '\\' OR f.path LIKE ? ESCAPE '\\' "
        "OR f.path LIKE ? ESCAPE '\\'",
        (
            escaped + ".%",
            "%/" + escaped + ".%",
            escaped + "/\\_\\_init\\_\\_.%",
            "%/" + escaped + "/\\_\\_init\\_\\_.%",
        ),
    ).fetchall()
    rows = []
    for path, lines, doc, rank in found:
        parts = path.split("/")
        stem = parts[-1].split(".", 1)[0]
        module = parts[-2] if stem == "__init__" and len(parts) > 1 else stem
        if module == name or (any_case and module.lower() == name.lower()):
            rows.append((path, module, "module", 1, lines, None, f"module {module} ({path})", doc, 0, rank))
    return rows


def close_names(ix: SymbolIndex, name: str, limit: int = 5) -> list[str]:
    """Defined names close to ``name`` (a typo, another case), best first, with ``rapidfuzz``."""
    from rapidfuzz import fuzz, process, utils

    choices = ix.defined_names()
    found = process.extract(name, choices, scorer=fuzz.ratio, processor=utils.default_process, limit=limit * 4,
                            score_cutoff=70)  # fmt: skip
    scored = sorted(found, key=lambda m: (-(m[1] + (10 if m[0].lower() == name.lower() else 0)), len(m[0]), m[0]))
    return list(dict.fromkeys(m[0] for m in scored))[:limit]


_REF_KINDS = {"call": "calls", "import": "imports", "attribute": "attributes", "mention": "mentions"}


def references(ix: SymbolIndex, symbol: str, max_results: int = 10, scope: str | None = None) -> ReferenceResult:
    """Every indexed use of ``symbol``, grouped by kind, source files first.

    ``scope`` (a package, directory, module or file: ``server``, ``http/client.py``; ``tests``: the test files)
    keeps only the uses in the files it names; the others are only counted (``out_of_scope``). A scope that names no indexed file is ignored.

    ``Class.method`` (or ``module.name``) keeps only the uses tied to that class, its subclasses that do
    not override the name, or that module; uses whose receiver the index cannot type are listed apart
    (``unresolved``), and uses tied elsewhere are only counted (see ``receivers``).
    """
    owner, _, name = symbol.strip().rpartition(".")
    if not name:
        raise ToolError(f"find_references needs a name such as 'parse' or 'Config.load', got {symbol!r}.")
    rows = ix.db.execute(
        "SELECT f.path, f.rank, r.kind, r.lines, r.qual FROM refs r JOIN files f ON f.hash = r.hash WHERE r.name = ?",
        (name,),
    ).fetchall()
    rows.sort(key=lambda r: (path_class(r[0]), -r[1], r[0]))
    scope = _file_scope(ix, scope or "")
    out_of_scope = 0
    if scope:
        inside = [r for r in rows if _in_scope(scope, r[0])]
        out_of_scope = sum(len(r[3].split()) for r in rows) - sum(len(r[3].split()) for r in inside)
        rows = inside
        if scope == "tests":  # the test file that uses it most is the likeliest to test it
            per_file: dict[str, int] = {}
            for r in inside:
                per_file[r[0]] = per_file.get(r[0], 0) + len(r[3].split())
            rows = sorted(inside, key=lambda r: -per_file[r[0]])
    owner = owner.rsplit(".", 1)[-1]
    unresolved: list[tuple[str, int]] = []
    other = 0
    narrowed = None
    if owner:
        narrowed = owned_by(ix, owner, name)
        kept = []
        for row in rows:
            if row[4] in narrowed.owners:
                kept.append(row)
            elif row[4]:
                other += len(row[3].split())
            else:
                unresolved.extend((row[0], int(n)) for n in row[3].split())
        rows = kept
    groups: dict[str, list[tuple[str, int]]] = {k: [] for k in _REF_KINDS.values()}
    for path, _rank, kind, lines, _qual in rows:
        groups[_REF_KINDS[kind]].extend((path, int(n)) for n in lines.split())
    wanted = [site for sites in [*groups.values(), unresolved] for site in sites[:max_results]]
    texts = _line_texts(ix, wanted)

    def built(sites: list[tuple[str, int]]) -> tuple[RefSite, ...]:
        return tuple(RefSite(path=p, line=n, text=texts.get((p, n), "")) for p, n in sites)

    totals = {k: len(v) for k, v in groups.items()} | ({"unresolved": len(unresolved)} if owner else {})
    return ReferenceResult(
        symbol=symbol.strip(), calls=built(groups["calls"]), imports=built(groups["imports"]),
        attributes=built(groups["attributes"]), mentions=built(groups["mentions"]), totals=totals,
        files=len({r[0] for r in rows}), max_results=max_results, owner=owner or None,
        owner_is_class=bool(narrowed and narrowed.is_class), unresolved=built(unresolved), other_owners=other,
        only_definer=bool(narrowed and narrowed.only_definer), scope=scope, out_of_scope=out_of_scope,
    )  # fmt: skip


def _file_scope(ix: SymbolIndex, scope: str) -> str | None:
    """``scope`` if some indexed file lies in it, else the same less its leading directories (``logging/config.py``
    asked of the logging package itself: ``config.py``); None when nothing is left (a class name, a stray word)."""
    if scope.strip() == "tests":
        return "tests"  # kept when there are none: "no test uses X" is the answer then
    paths = [path for (path,) in ix.db.execute("SELECT path FROM files")]
    parts = scope.strip().strip("/").split("/")
    for i in range(len(parts)):
        tail = "/".join(parts[i:])
        if tail and any(_in_scope(tail, path) for path in paths):
            return tail
    return None


def _in_scope(scope: str, path: str) -> bool:
    """``tests``: any test file (``test_x.py``, ``tests/``, ``x.test.js``); else ``scope_matches``."""
    return path_class(path) == TEST if scope == "tests" else scope_matches(scope, path, None)


@dataclass(frozen=True)
class Owners:
    """Who a ``receiver.name`` use must be tied to, to count as a use of ``owner.name``."""

    owners: frozenset[str]
    """``owner`` and its subclasses that do not define ``name`` themselves (any depth)."""
    is_class: bool
    only_definer: bool
    """No class or module outside ``owners`` defines ``name``."""


_CLASS_KINDS = "('class', 'interface')"


def owned_by(ix: SymbolIndex, owner: str, name: str) -> Owners:
    """``owner`` and the subclasses that inherit ``name`` from it (read from each class's first line)."""
    defined = ix.db.execute(
        "SELECT DISTINCT s.container, f.path FROM symbols s JOIN files f ON f.hash = s.hash WHERE s.name = ? "
        "AND s.kind NOT IN ('import', 'require', 'export', 'alias')",
        (name,),
    ).fetchall()
    definers = {c for c, _ in defined}
    is_class = ix.db.execute(
        f"SELECT 1 FROM symbols WHERE name = ? AND kind IN {_CLASS_KINDS} LIMIT 1", (owner,)
    ).fetchone()
    owners = {owner}
    frontier = [owner] if is_class else []
    while frontier and len(owners) < 500:
        base = frontier.pop()
        for sub, signature in ix.db.execute(
            f"SELECT DISTINCT name, signature FROM symbols WHERE kind IN {_CLASS_KINDS} AND instr(signature, ?) > 0",
            (base,),
        ):
            if sub not in owners and sub not in definers and base in _bases(signature):
                owners.add(sub)
                frontier.append(sub)
    in_module = [p for c, p in defined if c is None]
    only = all(c in owners for c in definers if c is not None) and (
        not in_module or (not is_class and all(owner in p.rsplit(".", 1)[0].split("/")[-2:] for p in in_module))
    )
    return Owners(owners=frozenset(owners), is_class=bool(is_class), only_definer=only)


def _bases(signature: str) -> set[str]:
    """The base names on a class's first line: ``class A(B, mod.C):`` or ``class A extends B implements C``."""
    m = re.search(r"\(([^)]*)\)|\b(?:extends|implements)\s+(.+?)\s*(?:\{|$)", signature)
    if not m:
        return set()
    text = m.group(1) if m.group(1) is not None else m.group(2)
    return {w.rsplit(".", 1)[-1] for w in re.findall(r"[\w.]+", text.replace("implements", ","))}


def _line_texts(ix: SymbolIndex, sites: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The text of each ``(path, line)``, read through the confined root (files that vanished give nothing)."""
    by_path: dict[str, set[int]] = {}
    for path, line in sites:
        by_path.setdefault(path, set()).add(line)
    out: dict[tuple[str, int], str] = {}
    for path, wanted in by_path.items():
        try:
            with ix.root.open(ix.root.check_file(path)) as f:
                for n, raw in enumerate(f, 1):
                    if n in wanted:
                        out[(path, n)] = raw.decode("utf-8", "replace").strip()[:200]
                    if n >= max(wanted):
                        break
        except (ToolError, OSError):
            continue
    return out


_PHRASES = (
    (re.compile(r"\bshut(?:s|ting)?\s+down\b", re.I), "shutdown"),
    (re.compile(r"\b(?:interpreter|program|python)\s+(?:exits?|exiting|shuts?\s+down|terminates?|ends?)\b"
                r"|\b(?:at|on|before)\s+(?:interpreter\s+|program\s+)?exit\b", re.I), "atexit"),
)  # fmt: skip
"""Phrases code spells as one word ("shut down" -> ``shutdown``; "when the interpreter exits" -> ``atexit``,
the module such code registers with)."""


def concept_terms(query: str) -> list[str]:
    """The content words of a description, identifiers split (``RetryPolicy`` -> ``retry``, ``policy``), and the
    one-word forms of phrases (``_PHRASES``)."""
    out: list[str] = [word for pattern, word in _PHRASES if pattern.search(query)]
    query = _PHRASES[0][0].sub(" ", query)  # "shut down" counts once, as "shutdown"
    for token in re.findall(r"[^\W_][\w]*", query):
        for w in [token.lower(), *split_identifier(token)]:
            if len(w) > 1 and w not in STOP_WORDS and not w.isdigit() and w not in out:
                out.append(w)
    return out


_SHORT_FORMS = {
    "authentication": "auth", "authorization": "auth", "authenticate": "auth", "configuration": "config",
    "configure": "config", "directory": "dir", "initialize": "init", "initialise": "init", "argument": "arg",
    "arguments": "args", "parameter": "param", "parameters": "params", "message": "msg", "request": "req",
    "response": "resp", "temporary": "tmp", "password": "passwd", "environment": "env", "connection": "conn",
    "information": "info", "attribute": "attr", "attributes": "attrs", "document": "doc", "number": "num",
    "string": "str", "buffer": "buf", "reference": "ref", "exception": "exc", "database": "db",
    "synchronize": "sync", "asynchronous": "async", "specification": "spec", "utility": "util",
    "utilities": "utils", "previous": "prev", "current": "cur", "position": "pos", "address": "addr",
    "command": "cmd", "context": "ctx", "source": "src", "destination": "dst", "length": "len",
    "maximum": "max", "minimum": "min", "calculate": "calc", "statistics": "stats", "description": "desc",
    "execute": "exec", "expression": "expr", "function": "func", "generate": "gen", "header": "hdr",
    "index": "idx", "library": "lib", "object": "obj", "package": "pkg", "regular": "re", "value": "val",
}  # fmt: skip
"""Words and the short forms code writes them in; a concept term matches either (both directions)."""
_LONG_FORMS: dict[str, list[str]] = {}
for _long, _short in _SHORT_FORMS.items():
    _LONG_FORMS.setdefault(_short, []).append(_long)


def term_forms(term: str) -> list[str]:
    """``term`` and the other forms code may write it in (``authentication`` <-> ``auth``)."""
    return [term, *([_SHORT_FORMS[term]] if term in _SHORT_FORMS else []), *_LONG_FORMS.get(term, [])]


def _stem(term: str) -> str:
    """A crude prefix stem for matching question words to code words (``rotated`` -> ``rotat``, ``files`` -> ``file``)."""
    return term[:5] if len(term) > 5 else term.rstrip("s") or term


def concepts(ix: SymbolIndex, query: str, max_results: int = 8) -> ConceptResult:
    """Code chunks that best match a description, by BM25 (name, path, doc, body columns), source first."""
    terms = concept_terms(query)
    if not terms:
        return ConceptResult(query=query, terms=(), hits=(), total=0, max_results=max_results)
    groups = [term_forms(t) for t in terms[:24]]
    match = " OR ".join('"' + f.replace('"', '""') + '"' for forms in groups for f in forms)
    rows = ix.db.execute(
        "SELECT file, symbol, kind, line, line, container, summary, summary, bm25(chunks, 8.0, 3.0, 4.0, 1.0) AS s, "
        "lower(name || ' ' || path || ' ' || doc || ' ' || body) "
        "FROM chunks WHERE chunks MATCH ? ORDER BY s LIMIT 300",
        (match,),
    ).fetchall()
    scored = []
    stems = [[_stem(f) for f in forms] for forms in groups]
    for r in rows:
        words = set(r[9].split())
        own = split_identifier(r[1])
        covered = sum(1 for g in stems if any(w.startswith(st) for st in g for w in words)) / len(stems)
        in_name = sum(1 for g in stems if any(w.startswith(st) for st in g for w in own))
        score = -r[8] * _PATH_WEIGHT[path_class(r[0])] * (0.6 if r[2] == "module" else 1.0)
        score *= (0.4 + covered) ** 2 * (1 + 0.5 * in_name)
        score *= 0.85 if r[1].startswith("_") and not r[1].startswith("__") else 1.0
        scored.append((score, r))
    scored.sort(key=lambda x: (-x[0], x[1][0], x[1][3]))
    hits = tuple(
        Place(name=r[1], kind=r[2], container=r[5], path=r[0], line=int(r[3]), end_line=int(r[4]),
              path_class=PATH_CLASS_NAMES[path_class(r[0])], signature=r[6], doc="", score=round(s, 3))
        for s, r in scored[: max(max_results, 20)]
    )  # fmt: skip
    return ConceptResult(query=query, terms=tuple(terms), hits=hits, total=len(rows), max_results=max_results)
