"""Reading a model's answer as a JSON decision: the one reader of ``{"tool_calls": [...]}`` objects.

Models that do not return native ``tool_calls`` answer with one JSON object instead, either this
layer's ``{"tool_calls": [{"name": ..., "arguments": {...}}], "content": <text or null>}`` (the
OpenAI adapter's JSON tool mode, ``parse_json_decision``) or one of the controller's own shapes
(``{"reply": ...}``, ``{"ask_user": ...}``; ``agentcore.roles.decisions``). Both read the call list
with ``read_tool_calls``. Only an answer that IS one JSON object is a decision (``json_answer``;
``fenced_decision`` spots a decision fenced inside prose, which the controller refuses);
JSON quoted in prose is text. No I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

from agentcore.core.json_text import read_json, strip_fences

__all__ = ("fenced_decision", "json_answer", "looks_like_json_decision", "parse_json_decision", "read_tool_calls")


def read_tool_calls(value: Any) -> list[tuple[str, str, Any]]:
    """The calls of a JSON decision's ``"tool_calls"`` list: ``[(id, name, arguments as given)]``.

    Ids are ``call_1``, ``call_2``, ... in order; ``arguments`` is what the model wrote (an object,
    or a string of JSON, or anything else: the caller checks it).

    Raises:
        ValueError: ``value`` is not a list, or an item is not an object with a non-empty
            ``"name"`` string; the message is written for the model.
    """
    if not isinstance(value, list):
        raise ValueError('"tool_calls" must be a list of {"name": ..., "arguments": {...}} objects')
    calls: list[tuple[str, str, Any]] = []
    for i, item in enumerate(value, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ValueError(f'tool call #{i} must be an object with a "name" string and an "arguments" object')
        calls.append((f"call_{i}", item["name"], item.get("arguments", {})))
    return calls


MAX_LEAD_IN_CHARS = 100
"""Longest lead-in line (``Here is my answer:``) tolerated before a JSON answer."""

_LAYER_KEYS = frozenset({"tool_calls", "content", "thought"})
"""Keys of this layer's JSON decision ``{"tool_calls": [...], "content": ...}``."""
_DECISION_KEYS = _LAYER_KEYS | {"reply", "ask_user"}
"""Keys an object after a lead-in line must limit itself to (adds the controller's own shapes)."""


def json_answer(content: str | None) -> dict[str, Any] | None:
    """The JSON object an answer consists of, or None when the answer is prose.

    An answer is a JSON object only when it IS one: once surrounding whitespace and a Markdown
    fence around the whole text are removed, the text starts with ``{`` and is exactly one object.
    JSON quoted inside prose (``such as {"role": "user"} ...``) never counts. One exception is
    tolerated, because models write it: a single lead-in line of at most ``MAX_LEAD_IN_CHARS``
    characters that ends with ``:`` (and holds no ``{`` or backtick), followed on the next lines by
    the object (fenced or not) with nothing after it, and only when the object's keys are decision
    keys (``tool_calls``, ``content``, ``reply``, ``ask_user``, ``thought``); otherwise such a text
    is prose too.

    Raises:
        ValueError: the answer starts like JSON but is not exactly one valid JSON object; the
            message is written for the model.
    """
    if not content:
        return None
    text = strip_fences(content.strip()).strip()
    if text.startswith("{"):
        try:
            obj = read_json(text)
        except ValueError as e:
            raise ValueError(
                f"your answer starts like JSON but is {e}; answer with "
                "exactly one JSON object and nothing before or after it, or with plain text"
            ) from None
        return obj  # text starting with "{" that parses is an object
    head, newline, rest = text.partition("\n")
    head = head.strip()
    if not newline or len(head) > MAX_LEAD_IN_CHARS or not head.endswith(":") or "{" in head or "`" in head:
        return None
    body = strip_fences(rest.strip()).strip()
    if not body.startswith("{"):
        return None
    try:
        obj = read_json(body)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not obj or not set(obj) <= _DECISION_KEYS or set(obj) == {"thought"}:
        return None
    return obj


_FENCED = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n(.*?)```", re.DOTALL)
MAX_FENCES_SCANNED = 20
"""How many fenced blocks of a prose answer ``fenced_decision`` reads."""


def fenced_decision(content: str | None, tool_names: Collection[str]) -> str | None:
    """The action of a JSON decision fenced inside prose (``"tool_calls"`` or ``"ask_user"``), or None.

    ``json_answer`` takes such an answer as prose (a reply may quote JSON), but a model that writes
    ``Sure! ```json {"tool_calls": [...]}``` Hope this helps`` meant to act: taken as the reply, the
    call would be lost and the run would end with JSON as its answer. Only a fenced block (of the
    first ``MAX_FENCES_SCANNED``) that is one JSON object counts, and only when it asks the user
    (an ``ask_user`` string) or calls tools that all exist (a non-empty ``tool_calls`` list whose
    names are all in ``tool_names``): JSON quoted in running text, or an example naming other
    tools, stays part of a reply.
    """
    if not content or "```" not in content:
        return None
    for block in _FENCED.findall(content)[:MAX_FENCES_SCANNED]:
        try:
            obj = json.loads(block)
        except (ValueError, RecursionError):
            continue
        if not isinstance(obj, dict):
            continue
        if isinstance(obj.get("ask_user"), str):
            return "ask_user"
        calls = obj.get("tool_calls")
        if isinstance(calls, list) and calls and all(isinstance(c, dict) and _known(c.get("name"), tool_names) for c in calls):
            return "tool_calls"
    return None


def _known(name: Any, tool_names: Collection[str]) -> bool:
    """Whether ``name`` is one of ``tool_names`` (a list or object as a name, unhashable in a set, is not)."""
    return isinstance(name, str) and name in tool_names


def _is_layer_decision(obj: dict[str, Any]) -> bool:
    return "tool_calls" in obj or ("content" in obj and set(obj) <= _LAYER_KEYS)


def looks_like_json_decision(content: str | None) -> bool:
    """Whether ``content`` is a JSON-mode decision object (one with a ``tool_calls`` key).

    Only an answer that is that object counts (see ``json_answer``); JSON quoted in prose does not.
    """
    try:
        obj = json_answer(content)
    except ValueError:
        return False
    return obj is not None and "tool_calls" in obj


def parse_json_decision(content: str | None) -> tuple[list[tuple[str, str, str]], str | None]:
    """Parse a JSON-mode answer into ``([(id, name, raw arguments)], content)``.

    Ids are ``call_1``, ``call_2``, ... in order. Only an answer that is one JSON object (see
    ``json_answer``) is a decision; any other text is a plain answer, returned unchanged with no
    tool calls. So is an object that is not this layer's shape (the controller's ``{"reply": ...}``
    or ``{"ask_user": ...}``, or any other object): the caller reads the text and judges it.

    Raises:
        ValueError: the answer starts like JSON but is not one valid JSON object, or it is a
            decision whose ``tool_calls`` are malformed; the message is written for the model.
    """
    if content is None:
        return [], None
    try:
        obj = json_answer(content)
    except ValueError as e:
        raise ValueError(
            f'{e}; to call tools answer {{"tool_calls": [{{"name": ..., "arguments": {{...}}}}], "content": null}}'
        ) from None
    if obj is None or not _is_layer_decision(obj):
        return [], content
    calls = [
        (call_id, name, arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False))
        for call_id, name, arguments in read_tool_calls(obj.get("tool_calls") or [])
    ]
    text = obj.get("content")
    if text is not None and not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False)
    return calls, text
