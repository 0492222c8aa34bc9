"""Reading JSON and text that came from outside (a model, a server, a tool) so it can always be stored.

Everything agentcore stores is JSON encoded as UTF-8 (events, artifacts, request digests). Three
things a model or a server can send pass Python's ``json`` module but cannot be stored or folded
the same way later:

- non-finite numbers (``NaN``, ``Infinity``, ``-Infinity``), which Python's ``json`` accepts but
  JSON does not carry (``canonical_json`` refuses them);
- lone surrogates (``"\\ud83d"``, half an emoji: a valid JSON escape, but no UTF-8 for it);
- nesting thousands of levels deep, which makes any recursive walk (pydantic, ``deepcopy``,
  ``json.dumps``) raise ``RecursionError``.

``read_json`` refuses the first (and numbers too large for a double, ``1e309``, which Python's
``json`` reads as infinity) and the third with a ``JSONTextError`` whose message can be sent
back to a model, and repairs lone surrogates to U+FFFD; ``repair_text`` does the repair for plain
text. Integers with more digits than Python converts (``sys.get_int_max_str_digits``) are refused too.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = (
    "MAX_JSON_DEPTH",
    "JSONTextError",
    "NotJSON",
    "json_depth",
    "read_json",
    "repair_text",
    "repair_value",
    "strip_fences",
)

MAX_JSON_DEPTH = 64
"""Deepest nesting of objects and arrays accepted from outside (tool arguments, patches, plans)."""

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_FENCE_OPENING = re.compile(r"\A```[A-Za-z0-9_+-]*[ \t]*\n")


class JSONTextError(ValueError):
    """Text that is not JSON agentcore can store; the message says why, for a model to fix."""


class NotJSON(JSONTextError):
    """Text that does not parse as JSON at all (rather than JSON agentcore refuses to store)."""


def repair_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it encodes as UTF-8.

    (A Python ``str`` holds whole code points: every surrogate in one is a lone one.)
    """
    return _LONE_SURROGATE.sub("\ufffd", text)


def repair_value(value: Any) -> Any:
    """A JSON value (dicts, lists, str, numbers) with every string (keys too) ``repair_text``-ed.

    Returns ``value`` itself when nothing needed repair.

    Raises:
        JSONTextError: ``value`` is nested too deeply to walk.
    """
    if isinstance(value, str):
        return repair_text(value)
    if not isinstance(value, (dict, list)):
        return value
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True, check_circular=False)
        if _LONE_SURROGATE.search(text) is None:
            return value
        # surrogates only occur inside strings, so replacing them keeps the JSON well formed
        return json.loads(repair_text(text), parse_constant=float)
    except RecursionError:
        raise JSONTextError("the value is nested too deeply to store; send a flatter value") from None


def strip_fences(text: str) -> str:
    """``text`` stripped, without a Markdown code fence around the whole of it.

    Models often answer ```` ```json\\n{...}\\n``` ```` even when asked for bare JSON. Only a fence
    that opens the text is removed; a missing closing fence is tolerated (an answer cut short
    loses it). Any other text is returned stripped and otherwise unchanged.
    """
    text = text.strip()
    opening = _FENCE_OPENING.match(text)
    if opening is None:
        return text
    rest = text[opening.end() :]
    if rest.endswith("```"):
        return rest[:-3].strip()
    if "```" in rest:  # a closed fence with more text after it: not a fenced answer
        return text
    return rest.strip()


def json_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in JSON ``text`` (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub('""', text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise JSONTextError(f"{name} is not a JSON number; use a finite number, a string or null instead")


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent, refused when it overflows a double (``1e309``)."""
    value = float(text)
    if value in (_INF, -_INF):
        raise JSONTextError(
            f"the number {text[:40]} is too large to store (beyond about 1.8e308); "
            "send a smaller number, or the digits as a string"
        )
    return value


_INF = float("inf")


def read_json(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON ``text`` from outside into a value agentcore can store and fold.

    Lone surrogates in strings become U+FFFD.

    Raises:
        JSONTextError: not JSON (``NotJSON``, with the position), ``NaN``/``Infinity``, a number that
            overflows a double (``1e309``), nesting deeper than
            ``max_depth``, or an integer too long to convert. The message is written for a model.
    """
    if "[" in text or "{" in text:
        depth = json_depth(text)
        if depth > max_depth:
            raise JSONTextError(
                f"the JSON is nested {depth} levels deep; at most {max_depth} levels are accepted, send a flatter value"
            )
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except JSONTextError:
        raise
    except json.JSONDecodeError as e:
        raise NotJSON(f"not valid JSON ({e.msg} at char {e.pos})") from None
    except (ValueError, RecursionError) as e:  # an integer of too many digits; a depth the scan missed
        raise JSONTextError(f"not JSON agentcore can read ({type(e).__name__}: {str(e)[:200]})") from None
    return repair_value(value)
