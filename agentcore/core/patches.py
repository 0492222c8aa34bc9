"""The processor's vocabulary: typed state-patch operations.

These are pure data (pydantic models with an ``op`` tag). ``agentcore.core.fold`` applies them,
compiles them to RFC 6902 and rejects the ones that do not fit the current state. The models are
strict (``extra="forbid"``) so a typo in an LLM's JSON fails loudly instead of being ignored.

``apply_json_patch`` applies raw RFC 6902 operations (the ``json_patch`` op) to plain JSON
documents. It is written here rather than delegated to ``jsonpatch``, which accepts some patches
the RFC forbids (``test`` of ``1`` against ``true``, pointers into strings) and fails on others
with bare exceptions (a ``TypeError``); it passes the public json-patch-tests suite
(``tests/test_conformance.py``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from agentcore.core.plans import FailurePolicy, RetryPolicy, Step, StepStatus
from agentcore.core.values import FROZEN
from agentcore.errors import PatchError


class FactInput(BaseModel):
    """A fact as the processor states it; the state adds the ``seq`` that set it."""

    model_config = FROZEN

    key: str = Field(min_length=1, max_length=500)
    """Stable name of the fact; a later fact with the same key supersedes this one."""
    value: str
    """What is known, in words (for code search: include file:line)."""
    source: str = ""
    """Where it came from: a tool call id, ``user``, or ``model``."""
    artifact_id: str | None = None
    """The artifact holding the raw output the fact was read from."""
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)


class QuestionInput(BaseModel):
    """An open question to track until it is answered."""

    model_config = FROZEN

    id: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1)


class ReplacePlan(BaseModel):
    """Replace the plan; steps that already succeeded keep their status and result."""

    model_config = FROZEN
    op: Literal["replace_plan"] = "replace_plan"
    steps: tuple[Step, ...]
    on_failure: FailurePolicy | None = None
    """The plan's failure policy; unchanged when omitted."""
    retry: RetryPolicy | None = None
    """The plan's default retry policy; unchanged when omitted."""
    max_parallel: int | None = Field(default=None, ge=1, le=1024)
    """How many steps may run at once; unchanged when omitted."""


class AppendKnownFacts(BaseModel):
    """Add facts (or supersede facts with the same key)."""

    model_config = FROZEN
    op: Literal["append_known_facts"] = "append_known_facts"
    facts: tuple[FactInput, ...] = Field(min_length=1)


class AddOpenQuestions(BaseModel):
    """Add open questions; ids must be new."""

    model_config = FROZEN
    op: Literal["add_open_questions"] = "add_open_questions"
    questions: tuple[QuestionInput, ...] = Field(min_length=1)


class AnswerQuestion(BaseModel):
    """Mark an open question answered."""

    model_config = FROZEN
    op: Literal["answer_question"] = "answer_question"
    id: str
    answer: str


class SetStepStatus(BaseModel):
    """Set the status of a plan step; a succeeded step cannot be changed."""

    model_config = FROZEN
    op: Literal["set_step_status"] = "set_step_status"
    step_id: str
    status: StepStatus
    error: str | None = None


class JsonPatch(BaseModel):
    """Raw RFC 6902 operations on the state's JSON document (the escape hatch)."""

    model_config = FROZEN
    op: Literal["json_patch"] = "json_patch"
    patch: tuple[dict[str, Any], ...]


PatchOp = Annotated[
    ReplacePlan | AppendKnownFacts | AddOpenQuestions | AnswerQuestion | SetStepStatus | JsonPatch,
    Field(discriminator="op"),
]


class StatePatch(BaseModel):
    """What the processor returns: a list of ops applied all together or not at all."""

    model_config = FROZEN
    ops: tuple[PatchOp, ...] = ()


PATCH_OP_ADAPTER: TypeAdapter[PatchOp] = TypeAdapter(PatchOp)


# --------------------------------------------------------------------------------------------
# RFC 6902 on plain JSON documents (the ``json_patch`` op and the conformance suite)

_OP_MEMBERS: dict[str, tuple[str, ...]] = {
    "add": ("path", "value"),
    "remove": ("path",),
    "replace": ("path", "value"),
    "move": ("from", "path"),
    "copy": ("from", "path"),
    "test": ("path", "value"),
}
_INDEX = re.compile(r"0|[1-9][0-9]*")


class _Bad(Exception):
    """One operation failed; ``apply_json_patch`` adds the op index and path."""


def _tokens(pointer: Any, member: str) -> list[str]:
    if not isinstance(pointer, str):
        raise _Bad(f"'{member}' must be a JSON pointer string, got {pointer!r}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise _Bad(f"'{member}' {pointer!r} must be empty or start with '/'")
    parts = pointer[1:].split("/")
    for part in parts:
        if re.search(r"~(?![01])", part):
            raise _Bad(f"'{member}' {pointer!r} has an invalid escape: '~' must be followed by 0 or 1")
    return [p.replace("~1", "/").replace("~0", "~") for p in parts]


def _index(token: str, array: list[Any], *, end_ok: bool) -> int:
    if token == "-" and end_ok:
        return len(array)
    if not _INDEX.fullmatch(token):
        raise _Bad(f"{token!r} is not an array index (use 0, 1, ... without leading zeros)")
    i = int(token)
    if i > len(array) or (i == len(array) and not end_ok):
        raise _Bad(f"array index {i} is out of range (the array has {len(array)} items)")
    return i


def _resolve(doc: Any, tokens: list[str]) -> Any:
    for n, token in enumerate(tokens):
        if isinstance(doc, dict):
            if token not in doc:
                raise _Bad(f"no member {token!r} at {_pointer(tokens[:n]) or 'the root'}")
            doc = doc[token]
        elif isinstance(doc, list):
            doc = doc[_index(token, doc, end_ok=False)]
        else:
            raise _Bad(f"cannot look up {token!r} in a {_json_type(doc)} at {_pointer(tokens[:n]) or 'the root'}")
    return doc


def _pointer(tokens: list[str]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def json_equal(a: Any, b: Any) -> bool:
    """Equality as RFC 6902's ``test`` defines it: same JSON type and equal value (``1 == 1.0``, ``1 != true``)."""
    if _json_type(a) != _json_type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1])
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(tokens[-1], parent, end_ok=True), value)
    else:
        raise _Bad(f"cannot add a member to a {_json_type(parent)}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise _Bad("cannot remove the whole document; use replace with path ''")
    parent = _resolve(doc, tokens[:-1])
    _resolve(parent, tokens[-1:])
    if isinstance(parent, dict):
        del parent[tokens[-1]]
    else:
        del parent[_index(tokens[-1], parent, end_ok=False)]
    return doc


def _apply_one(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    if not isinstance(kind, str) or kind not in _OP_MEMBERS:
        raise _Bad(f"unknown op {kind!r}; valid ops: {', '.join(_OP_MEMBERS)}")
    for member in _OP_MEMBERS[kind]:
        if member not in op:
            raise _Bad(f"a {kind!r} operation needs a {member!r} member")
    path = _tokens(op["path"], "path")
    if kind == "add":
        return _add(doc, path, copy.deepcopy(op["value"]))
    if kind == "remove":
        return _remove(doc, path)
    if kind == "replace":
        _resolve(doc, path)
        return _add(_remove(doc, path), path, copy.deepcopy(op["value"])) if path else copy.deepcopy(op["value"])
    if kind == "test":
        actual = _resolve(doc, path)
        if not json_equal(actual, op["value"]):
            raise _Bad(f"test failed: the value is {actual!r}, not {op['value']!r}")
        return doc
    source = _tokens(op["from"], "from")
    value = _resolve(doc, source)
    if kind == "copy":
        return _add(doc, path, copy.deepcopy(value))
    if path == source:
        return doc
    if path[: len(source)] == source:
        raise _Bad(f"cannot move {op['from']!r} into its own child {op['path']!r}")
    return _add(_remove(doc, source), path, value)


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
    for i, op in enumerate(patch):
        if not isinstance(op, dict):
            raise PatchError(f"op {i}: an operation must be a JSON object, got {op!r}", op_index=i)
        path = op.get("path")
        where = path if isinstance(path, str) else None
        try:
            doc = _apply_one(doc, op)
        except _Bad as e:
            raise PatchError(f"op {i} ({op.get('op')} {path!r}): {e}", op_index=i, path=where) from None
        except (TypeError, ValueError, KeyError, IndexError, RecursionError) as e:  # pragma: no cover - defensive
            raise PatchError(f"op {i} ({op.get('op')} {path!r}): {e!r}", op_index=i, path=where) from None
    return doc
