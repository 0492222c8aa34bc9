"""Value types and helpers shared by the events, the state and the model adapters.

One home for what several layers need to agree on: the frozen model configuration, the LLM role
names, token usage, canonical JSON and ``sha256:`` content ids. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ("FROZEN", "Role", "TokenUsage", "canonical_json", "redacted_strings", "sha256_id")

FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, defer_build=True)
"""Values are immutable, reject unknown fields, and hold only finite floats (JSON has no NaN).

``defer_build``: a class's validator and serializer are built when it is first used, not when it
is defined, so a command that never validates an event (``agentcore runs``) does not build them."""

Role = Literal["controller", "processor", "planner"]
"""The agentcore role that made an LLM call."""


class TokenUsage(BaseModel):
    """Token counts of one or more LLM calls; add them with ``+`` (``sum()`` works too)."""

    model_config = FROZEN
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        if not isinstance(other, TokenUsage):
            return NotImplemented
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )

    def __radd__(self, other: object) -> TokenUsage:
        if other == 0:  # sum() starts from 0
            return self
        return NotImplemented


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text (and ids) in every process.

    Raises:
        ValueError: ``obj`` holds NaN or infinity, which JSON cannot carry.
        TypeError: ``obj`` holds a value that is not JSON (a set, a datetime, ...).
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_id(data: bytes) -> str:
    """The content id of ``data``: ``"sha256:"`` and 64 lowercase hex digits."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def redacted_strings(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` (JSON data: dicts, lists, strings, numbers, booleans, ``None``) with ``redact``
    applied to every string in it, keys included (a tool argument or fact named by a secret).

    Secrets are taken out of the data, never out of its JSON text: a secret that is also a JSON
    word or number (a proxy password ``null`` or ``1234``) would break the syntax there
    (``"reason":[redacted]``), and one holding a quote or a backslash would be missed in its
    escaped form.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(k): redacted_strings(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted_strings(v, redact) for v in value]
    return value
