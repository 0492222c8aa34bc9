"""Outlines of a refreshed ``SymbolIndex``: every definition of one file, or the members of one class."""

from __future__ import annotations

from agentcore.errors import ToolError
from agentcore.tools.code.index import SymbolIndex
from agentcore.tools.code.index_models import OutlineEntry, OutlineResult
from agentcore.tools.code.ranking import path_class

_CLASS_KINDS = ("class", "interface", "enum", "namespace", "type")


def outline(ix: SymbolIndex, path: str, max_results: int = 40, members_of: str | None = None) -> OutlineResult:
    """Every definition of the file ``path`` (or of the best file with that bare name) in line order; with
    ``members_of``, only the members of that class (``path`` may be empty: the class's best definition)."""
    if members_of:
        return class_members(ix, members_of.strip(), path, max_results)
    wanted = path.strip().strip("/")
    row = ix.db.execute("SELECT path, hash, lang FROM files WHERE path = ?", (wanted,)).fetchone()
    others: list[str] = []
    parts = wanted.split("/")
    while row is None and parts:  # "json/decoder.py" asked of the json package itself: try shorter suffixes
        suffix = "/".join(parts)
        escaped = suffix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = [p for (p,) in ix.db.execute(
            "SELECT path FROM files WHERE path = ? OR path LIKE ? ESCAPE '\\'", (suffix, "%/" + escaped))]  # fmt: skip
        like.sort(key=lambda p: (p != suffix, path_class(p), p.count("/"), p))
        if like:
            row = ix.db.execute("SELECT path, hash, lang FROM files WHERE path = ?", (like[0],)).fetchone()
            others = like[1:]
        parts = parts[1:]
    if row is None and "." not in wanted.rsplit("/", 1)[-1]:  # a module named without its extension: "server"
        stem = wanted.rsplit("/", 1)[-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = [p for (p,) in ix.db.execute(
            "SELECT path FROM files WHERE path LIKE ? ESCAPE '\\' OR path LIKE ? ESCAPE '\\'", (stem + ".%", "%/" + stem + ".%"))]  # fmt: skip
        like = [p for p in like if p.rsplit("/", 1)[-1].split(".", 1)[0] == wanted.rsplit("/", 1)[-1]]
        like.sort(key=lambda p: (path_class(p), not p.startswith(wanted), p.count("/"), p))
        if like:
            row = ix.db.execute("SELECT path, hash, lang FROM files WHERE path = ?", (like[0],)).fetchone()
            others = like[1:]
    if row is None:
        ix.root.check_file(wanted)  # raises the usual ToolError for a missing or forbidden path
        return OutlineResult(path=wanted, lines=0, language="not indexed (no grammar or pattern for this file type)",
                             entries=(), max_results=max_results)  # fmt: skip
    rel, digest, lang = row
    lines = ix.db.execute("SELECT lines FROM contents WHERE hash = ?", (digest,)).fetchone()[0]
    entries = tuple(
        OutlineEntry(*r)
        for r in ix.db.execute(
            "SELECT name, kind, line, end_line, container, depth, signature, doc FROM symbols WHERE hash = ? "
            "AND kind NOT IN ('import', 'require') ORDER BY line, depth",
            (digest,),
        )
    )
    return OutlineResult(path=rel, lines=lines, language=lang, entries=entries, other_candidates=tuple(others),
                         max_results=max_results)  # fmt: skip


def class_members(ix: SymbolIndex, name: str, path: str = "", max_results: int = 40) -> OutlineResult:
    """The class ``name`` (``Outer.Inner`` works too) and its members in line order, from its best definition
    (the file ``path`` when given).

    Raises:
        ToolError: no class of that name is indexed (in ``path``).
    """
    from agentcore.tools.code.queries import definitions

    found = definitions(ix, name, scope=path.strip().strip("/") or None, max_results=1).definitions
    cls = next((p for p in found if p.kind in _CLASS_KINDS), None)  # the place named (path) ranks first
    if cls is None:
        raise ToolError(f"no class named {name!r} is indexed{f' in {path}' if path.strip() else ''}; "
                        "call find_definition to find the name, or outline(path) for a whole file.")  # fmt: skip
    digest, lines = ix.db.execute(
        "SELECT f.hash, c.lines FROM files f JOIN contents c ON c.hash = f.hash WHERE f.path = ?", (cls.path,)
    ).fetchone()
    rows = ix.db.execute(
        "SELECT name, kind, line, end_line, container, depth, signature, doc FROM symbols WHERE hash = ? "
        "AND line >= ? AND line <= ? AND kind NOT IN ('import', 'require') ORDER BY line, depth",
        (digest, cls.line, cls.end_line),
    ).fetchall()
    head = next((r for r in rows if r[0] == cls.name and r[2] == cls.line), None)
    depth = head[5] if head else 0
    entries = tuple(OutlineEntry(*r) for r in rows if r[5] == depth + 1 and r[4] == cls.name)
    return OutlineResult(path=cls.path, lines=lines, language="", entries=entries, max_results=max_results,
                         of_class=cls.name, class_line=cls.line)  # fmt: skip
