"""RFC 6902 on plain JSON documents, through the ``jsonpatch`` library (a thin adapter).

``apply_json_patch`` checks each operation's shape (op name, members, pointer syntax), applies it
with ``jsonpatch`` and turns every library error into a ``PatchError`` naming the op index, the path
and the reason. The pinned ``jsonpatch``/``jsonpointer`` releases are strict where RFC 6902 is
(``test`` compares JSON types, indexes have no leading zeros, strings are not containers);
``tests/guarantees/test_conformance.py`` holds them to the public json-patch-tests suite.

``json_equal`` is RFC 6902 equality (``1`` is not ``true``, ``1`` is ``1.0``): use it, not ``==``,
wherever "did this JSON value change" matters, since Python says ``True == 1``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

import jsonpatch
import jsonpointer

from agentcore.errors import PatchError

__all__ = ("apply_json_patch", "json_diff", "json_equal", "json_pointer")

_MEMBERS: dict[str, tuple[str, ...]] = {
    "add": ("path", "value"),
    "remove": ("path",),
    "replace": ("path", "value"),
    "move": ("from", "path"),
    "copy": ("from", "path"),
    "test": ("path", "value"),
}
_BAD_ESCAPE = re.compile(r"~(?![01])")
_NON_CONTAINER = re.compile(r"token '(.*)' to non-container type <class '(\w+)'>", re.S)
_NOT_INDEXABLE = re.compile(r"Document '<class '(\w+)'>' does not support indexing", re.S)
_BAD_INDEX = re.compile(r"'(.*)' is not a valid sequence index", re.S)
_NO_MEMBER = re.compile(r"non-existent object '(.*)'$|member '(.*)' not found in|^'(.*)'$", re.S)
_PY_TO_JSON = {"str": "string", "int": "number", "float": "number", "bool": "boolean", "NoneType": "null"}
_REWORDED = (  # library wording -> ours (the reasons tests/guarantees/test_conformance.py names)
    ("EndOfList", "'-' is not an array index here: it names the position after the last item"),
    ("outside of list", "array index out of range"),
    ("out of bounds", "array index out of range"),
    ("into their own children", "cannot move a value into its own child"),
    ("remove the whole document", "cannot remove the whole document; use replace with path ''"),
)


def json_pointer(*tokens: str | int) -> str:
    """The RFC 6901 pointer of ``tokens`` (``~`` and ``/`` escaped): ``json_pointer("a/b", 0) == "/a~1b/0"``."""
    return "".join("/" + jsonpointer.escape(str(t)) for t in tokens)


def _json_type(value: Any) -> str:
    return _PY_TO_JSON.get(type(value).__name__, "array" if isinstance(value, list) else "object")


def json_equal(a: Any, b: Any) -> bool:
    """Equality as RFC 6902's ``test`` defines it: same JSON type and equal value (``1 == 1.0``, ``1 != true``)."""
    if _json_type(a) != _json_type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def json_diff(a: Any, b: Any) -> list[dict[str, Any]]:
    """RFC 6902 operations turning JSON document ``a`` into ``b`` (``jsonpatch.make_patch``)."""
    ops: list[dict[str, Any]] = jsonpatch.make_patch(a, b).patch
    return ops


def _shape_error(op: dict[str, Any]) -> str | None:
    """Why ``op`` is not a well-formed RFC 6902 operation, or ``None`` when it is."""
    kind = op.get("op")
    if not isinstance(kind, str) or kind not in _MEMBERS:
        return f"unknown op {kind!r}; valid ops: {', '.join(_MEMBERS)}"
    for member in _MEMBERS[kind]:
        if member not in op:
            return f"a {kind!r} operation needs a {member!r} member"
        pointer = op[member]
        if member == "value":
            continue
        if not isinstance(pointer, str):
            return f"'{member}' must be a JSON pointer string, got {pointer!r}"
        if pointer and not pointer.startswith("/"):
            return f"'{member}' {pointer!r} must be empty or start with '/'"
        if _BAD_ESCAPE.search(pointer):
            return f"'{member}' {pointer!r} has an invalid escape: '~' must be followed by 0 or 1"
    return None


def _reason(e: Exception, kind: str) -> str:
    """A library error as a reason a model (or a person) can act on."""
    text = str(e)
    if m := _NON_CONTAINER.search(text):
        return f"cannot look up {m.group(1)!r} in a {_PY_TO_JSON.get(m.group(2), m.group(2))}"
    if m := _NOT_INDEXABLE.search(text):
        found = _PY_TO_JSON.get(m.group(1), m.group(1))
        return f"cannot add a member to a {found}" if kind == "add" else f"cannot look up a member in a {found}"
    if m := _BAD_INDEX.search(text):
        return f"{m.group(1)!r} is not an array index (use 0, 1, ... without leading zeros)"
    if m := _NO_MEMBER.search(text):
        return f"no member {next(g for g in m.groups() if g is not None)!r}"
    for fragment, reworded in _REWORDED:
        if fragment in text:
            return reworded
    if isinstance(e, jsonpatch.JsonPatchTestFailed):
        return f"test failed: {text}"
    return text or type(e).__name__


def apply_json_patch(document: Any, patch: Sequence[dict[str, Any]]) -> Any:
    """Apply raw RFC 6902 operations to a plain JSON document and return the new document.

    Neither ``document`` nor ``patch`` is changed, and the result shares no objects with them.
    Strict where RFC 6902 is: ``test`` compares JSON types (``1`` is not ``true``), array indexes
    have no leading zeros, strings are not containers, members missing from an op are errors.

    Raises:
        PatchError: naming the op index, the path and the reason; nothing else escapes.
    """
    if not isinstance(patch, (list, tuple)):
        raise PatchError(f"a JSON patch must be a list of operations, got {type(patch).__name__}")
    doc = copy.deepcopy(document)
    for i, op in enumerate(copy.deepcopy(list(patch))):
        if not isinstance(op, dict):
            raise PatchError(f"op {i}: an operation must be a JSON object, got {op!r}", op_index=i)
        path = op.get("path")
        where = path if isinstance(path, str) else None
        reason = _shape_error(op)
        if reason is None:
            try:
                doc = jsonpatch.JsonPatch([op]).apply(doc, in_place=True)
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
                reason = _reason(e, op["op"])
            except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError) as e:
                reason = f"{type(e).__name__}: {e}"  # a library bug or an odd document: still a PatchError
        if reason is not None:
            raise PatchError(f"op {i} ({op.get('op')} {path!r}): {reason}", op_index=i, path=where)
    return doc
