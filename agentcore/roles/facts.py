"""How known facts are shown to a model: the newest ones, one line each.

The one renderer of ``RunState.known_facts`` for every prompt that lists them: the controller's
compact state (with provenance: source, artifact, confidence), the processor's context and the
task of a plan step's sub-agent. Each caller gives its own budgets (how many facts, how many
characters of key and value); the selection (newest by the seq that set them) and the line shape
are the same everywhere.
"""

from __future__ import annotations

from operator import attrgetter

from agentcore.core.fold import RunState
from agentcore.core.state import Fact
from agentcore.core.text import clip

__all__ = ("fact_line", "newest_facts")

_SEQ = attrgetter("seq")


def newest_facts(state: RunState, limit: int) -> list[Fact]:
    """The ``limit`` facts set last (by seq; ties in the order they were added), oldest first."""
    if limit <= 0:
        return []
    return sorted(state.known_facts.values(), key=_SEQ)[-limit:]  # a stable sort keeps the ties in order


def fact_line(fact: Fact, *, key_chars: int, value_chars: int, provenance: bool = False) -> str:
    """``- key: value``, both clipped; with ``provenance``, ``[source: ..., artifact: ..., confidence: ...]``
    follows (artifact and confidence only when there is one / it is below 1)."""
    line = f"- {clip(fact.key, key_chars)}: {clip(fact.value, value_chars)}"
    if not provenance:
        return line
    where = [f"source: {fact.source or '?'}"]
    if fact.artifact_id:
        where.append(f"artifact: {fact.artifact_id}")
    if fact.confidence < 1:
        where.append(f"confidence: {fact.confidence:g}")
    return f"{line} [{', '.join(where)}]"
