"""One file's facts for the symbol index: definitions, references, comments, from a tree-sitter parse.

``extract(language, data)`` returns a ``FileFacts``. Definitions come from walking the syntax tree's
definition nodes (so text inside strings and comments is never a definition); references come from
one tree-sitter query per language, each captured identifier told apart as a ``call``, an ``import``,
an ``attribute`` use or another ``mention`` (a definition's own name is not a reference). Files with
no grammar get definitions from line patterns (``fallback_definitions``) and no references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agentcore.core.text import clip
from agentcore.tools.code.grammars import grammar
from agentcore.tools.code.receivers import Receivers

DEFINITION_KINDS = ("class", "function", "method", "constant", "variable", "type", "interface", "enum", "namespace")
"""Kinds of real definitions. ``import``, ``require`` and ``export`` rows are bindings that point elsewhere."""
BINDING_KINDS = ("import", "require", "export", "alias", "overload", "abstract")


@dataclass
class Symbol:
    """A name bound in a file."""

    name: str
    kind: str
    line: int
    end_line: int
    container: str | None = None
    """The enclosing class or function (``None`` at top level)."""
    depth: int = 0
    """0 for top-level (module level, also inside a top-level ``if``/``try``), 1 inside a class or function..."""
    signature: str = ""
    """The definition's first line, stripped and cut to 200 characters."""
    doc: str = ""
    """Its docstring or leading comment (up to about 1,000 characters)."""


@dataclass
class FileFacts:
    """Everything the index keeps about one file's content."""

    symbols: list[Symbol] = field(default_factory=list)
    refs: list[tuple[str, str, int, str]] = field(default_factory=list)
    """``(name, kind, line, qual)`` with kind ``call``, ``import``, ``attribute`` or ``mention``, and the class or
    module the use belongs to when the file tells (``receivers``; ``""`` when not); unique rows."""
    comments: list[tuple[int, str]] = field(default_factory=list)
    """``(line, text)`` of each comment."""
    doc: str = ""
    """The module's docstring (Python) or its leading comment (other languages)."""


_REF_PRIORITY = {"call": 0, "import": 1, "attribute": 2, "mention": 3}


def default_export_name(rel: str) -> str:
    """The name an anonymous JS/TS default export gets: its file's (``api/users.js`` -> ``users``;
    ``index.js`` -> its directory's name; ``date-picker.tsx`` -> ``datePicker``)."""
    parts = rel.split("/")
    stem = parts[-1].split(".", 1)[0]
    if stem == "index" and len(parts) > 1:
        stem = parts[-2]
    head, *rest = [p for p in re.split(r"[^\w$]+", stem) if p] or ["default"]
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def extract(language: str, data: bytes, default_name: str = "default") -> FileFacts:
    """The facts of one file; ``language`` as from ``grammars.language_of``; ``default_name`` names an
    anonymous JS/TS default export (see ``default_export_name``)."""
    if language == "text":
        return FileFacts(symbols=fallback_definitions(data.decode("utf-8", "replace")))
    g = grammar(language)
    tree = g.parse(data)
    lines = data.split(b"\n")
    facts = FileFacts()
    captures = g.captures(tree.root_node)
    facts.comments = [(n.start_point[0] + 1, _text(n)) for n in captures.get("comment", ())]
    ctx = _Context(lines, facts, {c[0]: c[1] for c in facts.comments}, default_name)
    if language == "python":
        facts.doc = _python_docstring(tree.root_node)
        _python_block(tree.root_node, ctx, None, 0, in_class=False)
    else:
        from agentcore.tools.code.extract_js_go import go_definitions, js_definitions

        (go_definitions if language == "go" else js_definitions)(tree.root_node, ctx)
    if not facts.doc and 1 in ctx.comments:
        facts.doc = ctx.leading_comment(_block_end(ctx.comments))
    facts.refs = _references(captures, ctx, language)
    return facts


def _block_end(comments: dict[int, str]) -> int:
    """The line number of the last line of the comment block that starts on line 1."""
    line = 1
    while line + 1 in comments:
        line += 1
    return line


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


class _Context:
    """What the definition walkers share: the file's lines, the output, and the definition name nodes."""

    def __init__(
        self, lines: list[bytes], facts: FileFacts, comments: dict[int, str], default_name: str = "default"
    ) -> None:
        self.lines = lines
        self.facts = facts
        self.comments = comments
        self.default_name = default_name
        self.name_nodes: set[int] = set()
        self.bindings: list[tuple[int, str, str]] = []
        """``(line, variable, type)``: locals whose type the file states (see ``receivers``)."""

    def add(
        self, name_node: Any, node: Any, kind: str, container: str | None, depth: int, doc: str = "", *, name: str = ""
    ) -> None:
        """Record a definition named by ``name_node`` (or by ``name`` when it has no name node of its own)."""
        name = name or _text(name_node)
        if not name:
            return
        if name_node is not None and kind not in ("import", "require"):  # an import is a binding AND a reference
            self.name_nodes.add(name_node.start_byte)
        row = node.start_point[0]
        sig = self.lines[row].decode("utf-8", "replace").strip()[:200] if row < len(self.lines) else ""
        self.facts.symbols.append(
            Symbol(name, kind, row + 1, node.end_point[0] + 1, container, depth, sig, doc or self.leading_comment(row))
        )

    def leading_comment(self, row: int) -> str:
        """The comment lines right above 0-based ``row`` (JSDoc, Go doc comments), without comment markers."""
        parts: list[str] = []
        line = row  # 1-based number of the line above
        while line in self.comments and len(parts) < 30:
            parts.append(self.comments[line])
            line -= 1
        return clean_doc("\n".join(reversed(parts)))


_COMMENT_MARKS = re.compile(r"^\s*(?:/\*\*?|\*/|\*|//+|#+)\s?", re.M)


def clean_doc(text: str) -> str:
    """A docstring or comment without quotes and comment markers, whitespace collapsed, cut to 1,000 chars."""
    text = re.sub(r'^[rRbBuUfF]*("""|\'\'\'|"|\')|("""|\'\'\'|"|\')$', "", text.strip())
    text = _COMMENT_MARKS.sub("", text).replace("*/", "")
    return clip(text, 1000, one_line=True, mark="ellipsis")


def first_sentence(doc: str) -> str:
    """The first sentence (or first 160 characters) of a cleaned docstring."""
    m = re.match(r"(.+?[.!?])(?:\s|$)", doc)
    out = m.group(1) if m else doc
    return clip(out, 160, mark="ellipsis")


# -- Python ----------------------------------------------------------------------------------------

_PY_COMPOUND = {
    "if_statement", "elif_clause", "else_clause", "try_statement", "except_clause", "finally_clause",
    "with_statement", "for_statement", "while_statement", "block", "match_statement", "case_clause",
}  # fmt: skip


def _python_docstring(body: Any) -> str:
    """The docstring: the first statement, when it is a string (comments before it are skipped)."""
    statements = [c for c in body.named_children if c.type != "comment"] if body is not None else []
    if not statements:
        return ""
    first = statements[0]
    if first.type == "expression_statement" and first.named_children and first.named_children[0].type == "string":
        return clean_doc(_text(first.named_children[0]))
    return ""


def _only_raises_or_passes(body: Any) -> bool:
    """Whether a function body is only a docstring and ``pass``, ``...`` or ``raise NotImplementedError``."""
    if body is None:
        return False
    stmts = [c for c in body.named_children if c.type != "comment"]
    if (
        stmts
        and stmts[0].type == "expression_statement"
        and stmts[0].named_children
        and stmts[0].named_children[0].type == "string"
    ):
        stmts = stmts[1:]
    if len(stmts) != 1:
        return False
    only = stmts[0]
    text = _text(only).strip()
    return (
        only.type == "pass_statement"
        or text == "..."
        or (only.type == "raise_statement" and "NotImplementedError" in text)
    )


def _python_block(node: Any, ctx: _Context, container: str | None, depth: int, *, in_class: bool) -> None:
    for child in node.named_children:
        kind = child.type
        target = child.child_by_field_name("definition") if kind == "decorated_definition" else child
        if target is None:
            continue
        kind = target.type
        if kind == "function_definition":
            body = target.child_by_field_name("body")
            name_node = target.child_by_field_name("name")
            fkind = "method" if in_class else "function"
            decorators = [_decorator_name(d) for d in child.named_children if d.type == "decorator"]
            if "overload" in decorators:
                fkind = "overload"  # a typing.overload signature: the implementation is the definition
            elif in_class and ("abstractmethod" in decorators or _only_raises_or_passes(body)):
                fkind = "abstract"  # declared here, implemented in subclasses
            ctx.add(name_node, target, fkind, container, depth, _python_docstring(body))
            _python_typed_parameters(target, ctx)
            if body is not None:
                _python_block(body, ctx, _text(name_node), depth + 1, in_class=False)
        elif kind == "class_definition":
            body = target.child_by_field_name("body")
            name_node = target.child_by_field_name("name")
            ctx.add(name_node, target, "class", container, depth, _python_docstring(body))
            if body is not None:
                _python_block(body, ctx, _text(name_node), depth + 1, in_class=True)
        elif kind in _PY_COMPOUND:
            _python_block(target, ctx, container, depth, in_class=in_class)
        elif kind == "expression_statement" and (depth == 0 or in_class):
            _python_assignment(target, ctx, container, depth)
        elif kind == "expression_statement":
            _python_local_binding(target, ctx)
        elif kind in ("import_statement", "import_from_statement") and depth == 0:
            _python_import(target, ctx)
        elif kind == "type_alias_statement" and depth == 0:
            left = target.child_by_field_name("left")
            if left is not None:
                ctx.add(left.named_children[0] if left.named_children else left, target, "type", container, depth)


def _decorator_name(decorator: Any) -> str:
    """``@typing.overload  # a comment`` -> ``overload``; ``@width.setter`` -> ``setter``; ``@cache(1)`` -> ``cache``."""
    expr = next((c for c in decorator.named_children if c.type != "comment"), None)
    if expr is not None and expr.type == "call":
        expr = expr.child_by_field_name("function")
    return _text(expr).rsplit(".", 1)[-1].strip()


def _python_assignment(stmt: Any, ctx: _Context, container: str | None, depth: int) -> None:
    for expr in stmt.named_children:
        if expr.type != "assignment":
            continue
        left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
        if left is not None and left.type == "attribute" and depth == 0:
            _python_attribute_assignment(stmt, left, right, ctx)
            continue
        if left is None or left.type != "identifier":
            continue
        name = _text(left)
        if depth == 0 and right is not None and right.type == "call":
            _python_local_binding(stmt, ctx)  # client = Client(): module-level uses of client are Client's
        if right is not None and right.type in ("identifier", "attribute") and depth == 0:
            kind = "alias"  # Name = other.Name: a re-binding, not the definition
        elif name.isupper() or (name[:1] == "_" and name[1:].isupper()):
            kind = "constant"
        else:
            kind = "variable"
        ctx.add(left, stmt, kind, container, depth)


def _python_attribute_assignment(stmt: Any, left: Any, right: Any, ctx: _Context) -> None:
    """``patch.object = _patch_object``, ``Logger.manager = Manager(...)`` at module level: the attribute is bound
    on ``patch`` (``patch.object`` is found as ``Container.name``); an alias when the value is another name."""
    owner, attr = left.child_by_field_name("object"), left.child_by_field_name("attribute")
    if owner is None or attr is None or owner.type != "identifier":
        return  # self.x, a.b.c = ...: not a name a reader looks up
    kind = "alias" if right is not None and right.type in ("identifier", "attribute") else "variable"
    ctx.add(attr, stmt, kind, _text(owner), 1)


def _python_typed_parameters(fn: Any, ctx: _Context) -> None:
    """``def f(msg: Message)``: ``msg`` holds a ``Message`` inside ``f`` (for ``receivers``)."""
    params = fn.child_by_field_name("parameters")
    line = fn.start_point[0] + 1
    for p in params.named_children if params is not None else ():
        if p.type in ("typed_parameter", "typed_default_parameter"):
            name = p.child_by_field_name("name") or (p.named_children[0] if p.named_children else None)
            typ = p.child_by_field_name("type")
            inner = typ.named_children[0] if typ is not None and typ.named_children else None
            if name is not None and name.type == "identifier" and inner is not None and inner.type == "identifier":
                ctx.bindings.append((line, _text(name), _text(inner)))


def _python_local_binding(stmt: Any, ctx: _Context) -> None:
    """``m = Message(...)`` inside a function: ``m`` holds a ``Message`` (a capitalised callee only)."""
    expr = stmt.named_children[0] if stmt.named_children else None
    if expr is None or expr.type != "assignment":
        return
    left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
    if left is None or right is None or left.type != "identifier" or right.type != "call":
        return
    callee = right.child_by_field_name("function")
    if callee is not None and callee.type == "identifier" and _text(callee)[:1].isupper():
        ctx.bindings.append((stmt.start_point[0] + 1, _text(left), _text(callee)))


def _python_import(stmt: Any, ctx: _Context) -> None:
    for name_field in stmt.children_by_field_name("name"):
        alias = name_field.child_by_field_name("alias") if name_field.type == "aliased_import" else None
        node = alias if alias is not None else name_field
        if node.type == "dotted_name":
            node = node.named_children[-1] if stmt.type == "import_from_statement" else node.named_children[0]
        ctx.add(node, stmt, "import", None, 0)


# -- references -----------------------------------------------------------------------------------


def _references(captures: dict[str, list[Any]], ctx: _Context, language: str) -> list[tuple[str, str, int, str]]:
    name_nodes = ctx.name_nodes
    receivers = Receivers(ctx.facts.symbols, ctx.bindings)
    best: dict[int, tuple[int, str, Any]] = {}
    for kind in ("call", "import", "attribute", "mention"):
        prio = _REF_PRIORITY[kind]
        for node in captures.get(kind, ()):
            start = node.start_byte
            if start in name_nodes or start in best:
                continue  # a definition's own name, or already taken by a more specific kind
            best[start] = (prio, kind, node)
    rows: set[tuple[str, str, int, str]] = set()
    for _, kind, node in best.values():
        name = _text(node)
        if kind == "import" and language == "go":
            name = name.strip('"`').rsplit("/", 1)[-1]
        if name:
            rows.add((name, kind, node.start_point[0] + 1, receivers.qualifier(node, name, kind)))
    return sorted(rows, key=lambda r: (r[2], r[0], r[1], r[3]))


# -- files with no grammar ------------------------------------------------------------------------

_FALLBACK = re.compile(
    r"^[ \t]*(?:(?:pub(?:\([^)]*\))?|export|public|private|protected|internal|static|async|unsafe|extern|abstract|"
    r"final|sealed|open|data|inline|override|default)\s+)*"
    r"(?P<kw>def|fn|func|function|class|struct|enum|union|trait|interface|type|typealias|module|mod|impl|sub|"
    r"proc|typedef|object|record|protocol|namespace|defmodule|defp?|macro_rules!)\s+\*?(?P<name>[^\W\d]\w*)",
    re.M,
)
_FALLBACK_KIND = {
    "class": "class", "struct": "class", "record": "class", "object": "class", "interface": "interface",
    "trait": "interface", "protocol": "interface", "enum": "enum", "union": "type", "type": "type",
    "typealias": "type", "typedef": "type", "module": "namespace", "mod": "namespace", "namespace": "namespace",
    "defmodule": "namespace", "impl": "class",
}  # fmt: skip


def fallback_definitions(text: str) -> list[Symbol]:
    """Definitions found with line patterns (``fn name``, ``class Name``, ``struct Name``...), for files with no grammar."""
    out = []
    line, pos = 1, 0
    for m in _FALLBACK.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        indent = len(m.group(0)) - len(m.group(0).lstrip())
        sig = m.group(0).strip()[:200]
        kind = _FALLBACK_KIND.get(m.group("kw"), "function")
        out.append(Symbol(m.group("name"), kind, line, line, None, 1 if indent else 0, sig, ""))
    return out
