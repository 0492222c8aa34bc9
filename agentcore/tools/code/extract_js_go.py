"""Definitions in JavaScript, TypeScript and Go syntax trees (see ``extract``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentcore.tools.code.extract import _Context

_JS_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function"}
_JS_CLASS_NODES = {"class_declaration", "abstract_class_declaration", "class"}
_JS_SIMPLE = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "function_signature": "function",
    "interface_declaration": "interface",
    "type_alias_declaration": "type",
    "enum_declaration": "enum",
    "internal_module": "namespace",
    "module": "namespace",
}
_JS_NESTED_BLOCKS = {"statement_block", "if_statement", "else_clause", "try_statement", "catch_clause"}


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def js_definitions(root: Any, ctx: _Context) -> None:
    """Top-level JS/TS definitions, class members, exported and CommonJS-exported names."""
    _js_block(root, ctx, None, 0)


def _js_block(node: Any, ctx: _Context, container: str | None, depth: int) -> None:
    for child in node.named_children:
        _js_statement(child, child, ctx, container, depth)


def _js_statement(node: Any, anchor: Any, ctx: _Context, container: str | None, depth: int) -> None:
    kind = node.type
    if kind in ("export_statement", "ambient_declaration"):
        decl = node.child_by_field_name("declaration")
        targets = [decl] if decl is not None else [c for c in node.named_children if c.type != "comment"]
        for target in targets:
            if target.type == "export_clause":
                for spec in target.named_children:
                    alias = spec.child_by_field_name("alias") or spec.child_by_field_name("name")
                    ctx.add(alias, node, "export", container, depth)
            elif target.type in ("identifier", "string"):
                continue  # export default someName / export * from "x"
            elif _anonymous(target):  # export default function () {} / class {} / () => {} / { ... }
                _js_value(target, node, ctx, ctx.default_name, container, depth)
            else:
                _js_statement(target, node, ctx, container, depth)
        return
    if kind in _JS_CLASS_NODES:
        name_node = node.child_by_field_name("name")
        ctx.add(name_node, anchor, "class", container, depth)
        body = node.child_by_field_name("body")
        if body is not None and name_node is not None:
            _js_class_body(body, ctx, _text(name_node), depth + 1)
    elif kind in _JS_SIMPLE:
        name_node = node.child_by_field_name("name")
        ctx.add(name_node, anchor, _JS_SIMPLE[kind], container, depth)
        body = node.child_by_field_name("body")
        if body is not None and kind in ("internal_module", "module"):
            _js_block(body, ctx, _text(name_node), depth + 1)
        elif body is not None and kind == "interface_declaration" and name_node is not None:
            for member in body.named_children:  # the interface's method and property signatures
                if member.type in ("method_signature", "property_signature"):
                    kind_ = "method" if member.type == "method_signature" else "variable"
                    ctx.add(member.child_by_field_name("name"), member, kind_, _text(name_node), depth + 1)
    elif kind in ("lexical_declaration", "variable_declaration"):
        for decl in node.named_children:
            if decl.type == "variable_declarator":
                _js_declarator(decl, anchor, ctx, container, depth)
    elif kind == "import_statement":
        _js_import(node, ctx)
    elif kind == "expression_statement" and node.named_children and node.named_children[0].type == "internal_module":
        _js_statement(node.named_children[0], anchor, ctx, container, depth)
    elif kind == "expression_statement" and depth == 0:
        _js_commonjs(node, ctx)
    elif kind in _JS_NESTED_BLOCKS and depth == 0:
        _js_block(node, ctx, container, depth)


def _js_declarator(decl: Any, anchor: Any, ctx: _Context, container: str | None, depth: int) -> None:
    name_node = decl.child_by_field_name("name")
    if name_node is None or name_node.type != "identifier":
        return  # destructuring: const { a, b } = ...
    value = decl.child_by_field_name("value")
    vtype = value.type if value is not None else ""
    if vtype == "object":
        _js_object(value, ctx, _text(name_node), depth + 1)
    if vtype in _JS_FUNCTION_VALUES:
        kind = "function"
    elif vtype in _JS_CLASS_NODES:
        kind = "class"
    elif vtype == "call_expression" and _text(value.child_by_field_name("function")) == "require":
        kind = "require"
    elif vtype == "new_expression" and (ctor := value.child_by_field_name("constructor")) is not None:
        ctx.bindings.append((decl.start_point[0] + 1, _text(name_node), _text(ctor)))  # const c = new Client()
        kind = "constant" if depth == 0 else "variable"
    else:
        name = _text(name_node)
        kind = "constant" if name.isupper() or anchor.type == "export_statement" or depth == 0 else "variable"
    ctx.add(name_node, anchor, kind, container, depth)


def _anonymous(node: Any) -> bool:
    """A function, class or object literal with no name of its own (a default export's value)."""
    if node.type == "object":
        return True
    named = node.child_by_field_name("name")
    return (node.type in _JS_FUNCTION_VALUES or node.type in _JS_CLASS_NODES) and named is None


def _js_value(value: Any, anchor: Any, ctx: _Context, name: str, container: str | None, depth: int) -> None:
    """A nameless function, class or object bound to ``name`` (a default export, ``module.exports = ...``)."""
    if value.type in _JS_CLASS_NODES:
        ctx.add(None, anchor, "class", container, depth, name=name)
        body = value.child_by_field_name("body")
        if body is not None:
            _js_class_body(body, ctx, name, depth + 1)
    elif value.type == "object":
        ctx.add(None, anchor, "constant", container, depth, name=name)
        _js_object(value, ctx, name, depth + 1)
    else:
        ctx.add(None, anchor, "function", container, depth, name=name)


def _js_object(obj: Any, ctx: _Context, owner: str | None, depth: int, *, kind: str = "method") -> None:
    """Functions in an object literal: ``get() {}``, ``post: function () {}``, ``put: () => {}`` (nested
    objects one level down, their functions under the key's name)."""
    for member in obj.named_children:
        if member.type == "method_definition":
            key = member.child_by_field_name("name")
            if key is not None and key.type in ("property_identifier", "string", "private_property_identifier"):
                ctx.add(key, member, kind, owner, depth, name=_text(key).strip("'\"`"))
        elif member.type == "pair":
            key, value = member.child_by_field_name("key"), member.child_by_field_name("value")
            if key is None or value is None or key.type not in ("property_identifier", "string", "number"):
                continue
            name = _text(key).strip("'\"`")
            if value.type in _JS_FUNCTION_VALUES:
                ctx.add(key, member, kind, owner, depth, name=name)
            elif value.type == "object" and depth < 3:
                _js_object(value, ctx, name, depth + 1)


def _js_class_body(body: Any, ctx: _Context, cls: str, depth: int) -> None:
    for member in body.named_children:
        if member.type in ("method_definition", "method_signature", "abstract_method_signature"):
            ctx.add(member.child_by_field_name("name"), member, "method", cls, depth)
        elif member.type in ("public_field_definition", "field_definition"):
            name_node = member.child_by_field_name("name") or member.child_by_field_name("property")
            value = member.child_by_field_name("value")
            is_fn = value is not None and value.type in _JS_FUNCTION_VALUES
            ctx.add(name_node, member, "method" if is_fn else "variable", cls, depth)


def _js_import(node: Any, ctx: _Context) -> None:
    clause = next((c for c in node.named_children if c.type == "import_clause"), None)
    if clause is None:
        return
    for part in clause.named_children:
        if part.type == "identifier":
            ctx.add(part, node, "import", None, 0)
        elif part.type == "namespace_import":
            ident = next((c for c in part.named_children if c.type == "identifier"), None)
            ctx.add(ident, node, "import", None, 0)
        elif part.type == "named_imports":
            for spec in part.named_children:
                if spec.type == "import_specifier":
                    ctx.add(
                        spec.child_by_field_name("alias") or spec.child_by_field_name("name"), node, "import", None, 0
                    )


def _js_commonjs(stmt: Any, ctx: _Context) -> None:
    """``module.exports.name = ...`` and ``exports.name = ...`` define ``name`` (``= other``: an export of it)."""
    expr = stmt.named_children[0] if stmt.named_children else None
    if expr is None or expr.type != "assignment_expression":
        return
    left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
    if left is None or left.type != "member_expression":
        return
    if _text(left) == "module.exports" and right is not None:
        if right.type == "object":  # module.exports = { a() {}, b: () => 1 }: the module's functions
            _js_object(right, ctx, None, 0, kind="function")
        elif _anonymous(right):  # module.exports = function () {}
            _js_value(right, stmt, ctx, ctx.default_name, None, 0)
        return
    obj = _text(left.child_by_field_name("object"))
    if obj not in ("exports", "module.exports"):
        return
    kind = "function" if right is not None and right.type in _JS_FUNCTION_VALUES else "constant"
    if right is not None and right.type in _JS_CLASS_NODES:
        kind = "class"
    elif right is not None and right.type in ("identifier", "member_expression"):
        kind = "export"  # module.exports.insert = insert: the function below is the definition
    ctx.add(left.child_by_field_name("property"), stmt, kind, None, 0)


# -- Go --------------------------------------------------------------------------------------------

_GO_TYPE_KIND = {"struct_type": "class", "interface_type": "interface"}


def go_definitions(root: Any, ctx: _Context) -> None:
    """Go funcs, methods (with their receiver type), types, consts and vars, interface methods."""
    for node in root.named_children:
        kind = node.type
        if kind == "function_declaration":
            ctx.add(node.child_by_field_name("name"), node, "function", None, 0)
        elif kind == "method_declaration":
            receiver = _go_receiver(node)
            ctx.add(node.child_by_field_name("name"), node, "method", receiver[1] if receiver else None, 1)
            if receiver is not None and receiver[0]:  # func (s *Server) ...: s is a Server inside
                ctx.bindings.append((node.start_point[0] + 1, receiver[0], receiver[1]))
        elif kind == "type_declaration":
            for spec in node.named_children:
                if spec.type not in ("type_spec", "type_alias"):
                    continue
                typ = spec.child_by_field_name("type")
                name_node = spec.child_by_field_name("name")
                anchor = node if len(node.named_children) == 1 else spec
                ctx.add(name_node, anchor, _GO_TYPE_KIND.get(typ.type if typ else "", "type"), None, 0)
                if typ is not None and typ.type == "interface_type":
                    for elem in typ.named_children:
                        if elem.type in ("method_elem", "method_spec"):
                            ctx.add(elem.child_by_field_name("name"), elem, "method", _text(name_node), 1)
        elif kind in ("const_declaration", "var_declaration"):
            for spec in _go_specs(node):
                for name_node in spec.children_by_field_name("name"):
                    ctx.add(name_node, spec, "constant" if kind == "const_declaration" else "variable", None, 0)


def _go_specs(node: Any) -> list[Any]:
    out = []
    for child in node.named_children:
        if child.type in ("const_spec", "var_spec"):
            out.append(child)
        elif child.type == "var_spec_list":
            out.extend(c for c in child.named_children if c.type == "var_spec")
    return out


def _go_receiver(node: Any) -> tuple[str, str] | None:
    """``(variable, type)`` of a Go method's receiver (the variable may be ``""``)."""
    receiver = node.child_by_field_name("receiver")
    if receiver is None:
        return None
    for param in receiver.named_children:
        typ = param.child_by_field_name("type")
        while typ is not None and typ.type in ("pointer_type", "generic_type"):
            typ = (
                typ.child_by_field_name("type")
                if typ.type == "generic_type"
                else (typ.named_children[0] if typ.named_children else None)
            )
        if typ is not None:
            return _text(param.child_by_field_name("name")), _text(typ)
    return None
