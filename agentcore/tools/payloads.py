"""The model's side of a tool: argument models from signatures, bounded payloads, messages.

Argument models: every parameter's type hint becomes a pydantic field (``extra="forbid"``, so a
misspelt argument is an error the model can fix); descriptions come from the Google-style docstring.

Payloads: the invariant this module keeps is that a payload never exceeds
``payload_chars + PAYLOAD_NOTE_CHARS`` characters, whatever the size of the raw output, and whenever
something is left out the payload says how much and names the artifact that holds all of it, so the
controller can page through it with ``read_artifact``. Raw outputs are stored whole, once, by
content (``store_output``).
"""

from __future__ import annotations

import difflib
import inspect
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from agentcore.core.events import ArtifactRef
from agentcore.core.json_text import repair_text, repair_value
from agentcore.core.text import clip
from agentcore.core.values import canonical_json
from agentcore.storage.artifacts import BYTES, JSON, TEXT, ArtifactStore

PAYLOAD_NOTE_CHARS = 300
"""Most characters a payload may use beyond ``payload_chars`` for its note (what was left out, where)."""

_NUMBER_RUNS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class StoredOutput:
    """A raw tool output after it was written to the artifact store."""

    value: Any
    """The value the tool returned."""
    ref: ArtifactRef | None
    """Where its bytes live; ``None`` when the tool returned ``None``."""
    text: str | None
    """The stored bytes as text (str outputs and JSON forms); ``None`` for bytes and ``None``."""
    items: list[Any] | None
    """The JSON items when the output is a sequence (list, tuple, set, generator)."""


def store_output(value: Any, artifacts: ArtifactStore) -> StoredOutput:
    """Store a tool's raw output as one artifact.

    ``str`` is stored as UTF-8 text, ``bytes`` as ``application/octet-stream``, anything else
    (pydantic models, dataclasses, dicts, lists, numbers) as canonical JSON; values JSON cannot
    hold are stored as their ``str()``. ``None`` stores nothing. Lone surrogates in text (no UTF-8
    for them) become U+FFFD.

    Raises:
        ValueError: the value is nested too deeply (or is circular) to store.
    """
    if value is None:
        return StoredOutput(value, None, None, None)
    if isinstance(value, str):
        value = repair_text(value)  # a lone surrogate (an undecodable file name...) has no UTF-8: U+FFFD
        return StoredOutput(value, artifacts.put(value.encode("utf-8"), TEXT), value, None)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return StoredOutput(value, artifacts.put(bytes(value), BYTES), None, None)
    jsonable = repair_value(to_jsonable_python(value, serialize_unknown=True))
    try:
        text = canonical_json(jsonable)
    except ValueError:  # NaN or infinity inside: not JSON, so the value's text is what is kept
        shown = str(value)
        return StoredOutput(value, artifacts.put(shown.encode("utf-8"), TEXT), shown, None)
    ref = artifacts.put(text.encode("utf-8"), JSON)
    return StoredOutput(value, ref, text, jsonable if isinstance(jsonable, list) else None)


def render_payload(
    out: StoredOutput,
    *,
    payload_chars: int,
    top_k: int,
    summarize: Callable[[Any], str] | None = None,
    tool_top_k: int | None = None,
) -> str:
    """The short text the controller sees for a stored output.

    In order: the tool's ``summarize(value)``; else the value's own ``summary`` method when it has
    one (the convention for result objects, see below); else the first ``top_k`` items of a sequence
    (``tool_top_k`` when the tool sets one); else the head of the text (or JSON). Anything left out
    is counted in a note naming the artifact.

    A result object's ``summary(self, top_k: int) -> str`` gets the tool's ``top_k`` when the tool
    sets one, else the runner's ``top_k`` when the argument is required; a ``summary`` whose
    ``top_k`` has a default (or that takes none) is called with no argument, since the object knows
    what the caller asked for (say, a ``max_results`` argument of the tool).
    """
    value, ref = out.value, out.ref
    if summarize is not None:
        return summary_payload(summarize(value), ref, payload_chars)
    method = getattr(value, "summary", None)
    if callable(method) and not isinstance(value, (str, bytes, bytearray, memoryview, dict, list, tuple)):
        arity = _summary_arity(method)
        if arity == 2 or (arity == 1 and tool_top_k is not None):
            return summary_payload(method(tool_top_k or top_k), ref, payload_chars)
        return summary_payload(method(), ref, payload_chars)
    if value is None:
        return "(no output)"
    if out.items is not None:
        return list_payload(out.items, ref, payload_chars, tool_top_k or top_k)
    if out.text is not None:
        return bound_text(out.text, ref, payload_chars, aligned=True)
    data = bytes(value)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(data)} bytes of binary data>" + _note(f"full output: {_where(ref)}")
    return bound_text(text, ref, payload_chars, aligned=True)


def bound_text(text: str, ref: ArtifactRef | None, payload_chars: int, *, aligned: bool) -> str:
    """``text`` cut to ``payload_chars`` (at a line break when one is near), with a note on the rest.

    Args:
        text: The text to show.
        ref: The artifact holding the whole output, if any.
        payload_chars: The most characters of ``text`` to show.
        aligned: The artifact's bytes are exactly ``text`` in UTF-8, so the note can give the byte
            offset where ``read_artifact`` continues.
    """
    if len(text) <= payload_chars:
        return text
    head = text[:payload_chars]
    cut = head.rfind("\n", payload_chars // 2)
    if cut != -1:
        head = head[: cut + 1]
    left = len(text) - len(head)
    lines = text.count("\n", len(head)) + (not text.endswith("\n"))
    offset = len(head.encode("utf-8")) if aligned and ref is not None else None
    where = "" if ref is None else f"; full output: {_where(ref, offset)}"
    return head + _note(f"... {left} more characters ({lines} more lines) not shown{where}", after=head)


def list_payload(items: Sequence[Any], ref: ArtifactRef | None, payload_chars: int, top_k: int) -> str:
    """The first ``top_k`` items, one per line, then a note with the count of items left out."""
    if not items:
        return "[]"
    shown = [_item_line(item) for item in items[:top_k]]
    body = "\n".join(shown)
    complete, cut = len(shown), ""
    if len(body) > payload_chars:
        body = body[:payload_chars]
        complete, cut = body.count("\n"), "the last item shown is cut; "
    if complete == len(items):
        return body
    return body + _note(
        f"{cut}... {len(items) - complete} more items not shown ({len(items)} in all); full output: {_where(ref)}"
    )


def summary_payload(summary: str, ref: ArtifactRef | None, payload_chars: int) -> str:
    """A summary (cut to ``payload_chars``) with a note pointing at the full output."""
    if not isinstance(summary, str):
        raise TypeError(f"a summary must be a str, got {type(summary).__name__}")
    cut = len(summary) > payload_chars
    if cut:
        summary = summary[:payload_chars]
    what = f"summary, cut to {payload_chars} characters" if cut else "summary"
    return summary + _note(f"{what}; full output: {_where(ref)}")


def tool_output_payload(text: str, note: str, payload_chars: int) -> str:
    """A payload a tool wrote itself (``ToolOutput``): its text bounded, then its note."""
    if len(text) > payload_chars:
        note = f"... {len(text) - payload_chars} more characters not shown. {note}".strip()
        text = text[:payload_chars]
    return text + _note(note) if note else text


def unknown_tool_message(name: str, available: Iterable[str]) -> str:
    """``Unknown tool 'x'; available: a, b, c`` plus the closest name when there is one."""
    names = sorted(available)
    message = f"Unknown tool {name!r}; available: {', '.join(names) or '(none)'}"
    close = difflib.get_close_matches(str(name), names, n=1)
    return message + (f". Did you mean {close[0]!r}?" if close else ". Call one of these instead.")


def validation_message(tool: str, error: ValidationError, schema: dict[str, Any]) -> str:
    """A message for the model listing each bad argument, what was expected and what came."""
    props = schema.get("properties", {})
    lines = [f"Invalid arguments for tool {tool!r}:"]
    for err in error.errors(include_url=False):
        loc = err["loc"]
        path = ".".join(str(p) for p in loc) or "(arguments)"
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            lines.append(f"- {path}: not a parameter of {tool!r} (its parameters: {', '.join(props) or 'none'})")
            continue
        expected = _expected(schema, loc)
        detail = [f"expected {expected}"] if expected else []
        if err["type"] != "missing":
            detail.append(f"got {_short(err.get('input'))}")
        suffix = f" ({'; '.join(detail)})" if detail else ""
        lines.append(f"- {path}: {err['msg']}{suffix}")
    lines.append(f"Fix these arguments and call {tool!r} again.")
    return "\n".join(lines)


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key putting ``call_2`` before ``call_10`` (digit runs compare as numbers)."""
    parts = _NUMBER_RUNS.split(text)
    return (*(int(p) if i % 2 else p for i, p in enumerate(parts)), text)


def _summary_arity(method: Callable[..., Any]) -> int:
    """0: ``summary()`` takes no count; 1: it takes an optional one; 2: it needs one."""
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return 2
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            return 2 if p.default is p.empty else 1
        if p.kind is p.VAR_POSITIONAL:
            return 1
    return 0


def _note(text: str, after: str = "") -> str:
    """``[text]`` on a line of its own (after ``after``), within ``PAYLOAD_NOTE_CHARS``."""
    opening = "[" if after.endswith("\n") else "\n["
    return opening + clip(text, PAYLOAD_NOTE_CHARS - len(opening) - 1, mark="ellipsis") + "]"


def _where(ref: ArtifactRef | None, offset: int | None = None) -> str:
    if ref is None:
        return "the full output was not stored"
    where = f"artifact {ref.id} ({ref.size} bytes)"
    if offset is not None:
        return f"{where}; read_artifact(id={ref.id!r}, offset={offset}) continues from here"
    return f"{where}; page through it with read_artifact(id={ref.id!r})"


def _item_line(item: Any) -> str:
    if isinstance(item, str) and "\n" not in item:
        return item
    return json.dumps(item, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _short(value: Any, limit: int = 80) -> str:
    return clip(json.dumps(value, ensure_ascii=False, default=repr), limit, mark="ellipsis")


def _expected(schema: dict[str, Any], loc: tuple[int | str, ...]) -> str | None:
    """The expected type at ``loc``, walking as deep into the schema as the location allows."""
    defs = schema.get("$defs", {})
    node: dict[str, Any] | None = None
    current: dict[str, Any] = schema
    for part in loc:
        current = _resolve(current, defs)
        if isinstance(part, int):
            nxt = current.get("items")
        else:
            nxt = current.get("properties", {}).get(part)
        if not isinstance(nxt, dict):
            break
        node = current = nxt
    return None if node is None else _describe(node, defs)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return defs.get(ref.removeprefix("#/$defs/"), node)
    for key in ("anyOf", "oneOf"):  # Optional[Model]: walk into the non-null member
        members = [m for m in node.get(key, ()) if m.get("type") != "null"]
        if len(members) == 1:
            return _resolve(members[0], defs)
    return node


def _describe(node: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> str:
    if depth > 3:
        return "value"
    ref = node.get("$ref")
    if isinstance(ref, str):
        return f"object {ref.rsplit('/', 1)[-1]}"
    if "enum" in node:
        return "one of " + ", ".join(json.dumps(v) for v in node["enum"])
    if "const" in node:
        return json.dumps(node["const"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            return " or ".join(_describe(m, defs, depth + 1) for m in node[key])
    kind = node.get("type")
    if kind == "array":
        items = node.get("items")
        return f"array of {_describe(items, defs, depth + 1)}" if isinstance(items, dict) else "array"
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    return str(kind) if kind else "value"


WINDOW_SLACK = 6
"""Bytes past ``limit`` that ``whole_chars`` needs in its window: 3 to skip a partial character at
the start and 3 to finish the first character when ``limit`` is smaller than it."""


def _continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def whole_chars(window: bytes, offset: int, limit: int) -> tuple[int, bytes]:
    """A page of whole UTF-8 characters: about ``limit`` bytes of an artifact from ``offset`` on.

    Args:
        window: The artifact's bytes from ``offset``: at least ``limit + WINDOW_SLACK`` of them,
            or all of them up to the end of the artifact.
        offset: Where ``window`` starts in the artifact.
        limit: Most bytes wanted.

    Returns:
        ``(start, page)``. A page starting inside a character begins at the next one (``start``
        moves up to 3 bytes forward); it never ends inside a character; and it holds at least one
        whole character, so it is up to 3 bytes longer than ``limit`` when the first character is
        wider than ``limit``. The page is empty only at the end of the artifact, so the next
        offset, ``start + len(page)``, always advances. Invalid UTF-8 is cut at ``limit``.
    """
    skip = 0
    while offset and skip < min(3, len(window)) and _continuation(window[skip]):
        skip += 1
    data = window[skip:]
    start = offset + skip
    if len(data) <= limit:  # the window holds limit + 3 bytes here unless it reached the end
        return start, data
    cut = limit
    while cut > 0 and limit - cut < 3 and _continuation(data[cut]):
        cut -= 1
    if cut == 0:  # the first character is wider than limit: finish it (at most 3 more bytes)
        cut = limit
        while cut < len(data) and cut - limit < 3 and _continuation(data[cut]):
            cut += 1
    elif _continuation(data[cut]):  # no character start within 3 bytes: not UTF-8, cut at limit
        cut = limit
    return start, data[:cut]
