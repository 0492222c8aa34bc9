"""Provenance: where a fact came from, as a chain of events followed back through their causes.

``why`` answers for one fact with the whole chain; ``next_link`` is the single step the chain is
made of (the HTML view stores one link per event and lets the page follow them); ``provenance``
follows the links from any event.
"""

from __future__ import annotations

import bisect
import difflib
import heapq
from collections.abc import Iterable, Iterator
from typing import Any

from agentcore.core.events import (
    BaseEvent,
    Decided,
    Event,
    LLMCalled,
    RunStarted,
    StatePatched,
    ToolFinished,
    ToolStarted,
    UserMessaged,
)
from agentcore.core.patches import AppendKnownFacts
from agentcore.errors import ConfigError
from agentcore.inspection.queries import check_seq, summarize
from agentcore.storage.base import EventStore

__all__ = ("EventIndex", "link_row", "next_link", "provenance", "why")


def _role_of(e: BaseEvent) -> str:
    """What an event is in a fact's story."""
    if isinstance(e, StatePatched):
        return "set the fact" if e.source == "processor" else f"set the fact ({e.source})"
    if isinstance(e, LLMCalled):
        return "the processor call that wrote the patch" if e.role == "processor" else f"the {e.role} call that decided"
    if isinstance(e, ToolFinished):
        return "the tool result the patch was read from"
    if isinstance(e, UserMessaged):
        return "the user's answer the patch was read from"
    if isinstance(e, ToolStarted):
        return "the tool call"
    if isinstance(e, Decided):
        return "the controller's decision"
    return "led to the next link"


def _link(e: BaseEvent, via: str) -> dict[str, Any]:
    row = {
        "seq": e.seq,
        "type": e.type,
        "why": _role_of(e),
        "via": via,
        "summary": summarize(e),
        "at": e.at.isoformat(),
    }
    if isinstance(e, LLMCalled):
        row.update(role=e.role, model=e.model, request_digest=e.request_digest)
        if e.request_artifact is not None:
            row["artifact"] = e.request_artifact.id
    elif isinstance(e, ToolFinished):
        row.update(tool=e.name, call_id=e.call_id, ok=e.ok, payload=e.payload)
        if e.artifact is not None:
            row["artifact"] = e.artifact.id
    elif isinstance(e, ToolStarted):
        row.update(tool=e.call.name, call_id=e.call.id, arguments=e.call.arguments)
    elif isinstance(e, Decided):
        row.update(kind=e.decision.kind, thought=e.decision.thought)
    return row


def _fits(e: BaseEvent, prev: BaseEvent) -> bool:
    """Whether ``prev`` can be the event behind ``e`` in a fact's story."""
    if isinstance(e, StatePatched):
        return isinstance(prev, LLMCalled) and prev.role == "processor"
    if isinstance(e, LLMCalled) and e.role == "processor":
        return isinstance(prev, (ToolFinished, UserMessaged))
    if isinstance(e, ToolFinished):
        return isinstance(prev, ToolStarted) and prev.call.id == e.call_id
    if isinstance(e, ToolStarted):
        return isinstance(prev, Decided) and any(c.id == e.call.id for c in prev.decision.tool_calls)
    if isinstance(e, Decided):
        return isinstance(prev, LLMCalled) and prev.role == "controller"
    return False


def _cause(e: BaseEvent, by_seq: dict[int, Event]) -> tuple[Event | None, str]:
    """The event behind ``e``: the one ``caused_by`` names when it fits the story, else the nearest fit."""
    named = by_seq.get(e.caused_by) if e.caused_by is not None and e.caused_by < e.seq else None
    if isinstance(e, StatePatched):
        # a patch names its input (the tool result); the processor call that wrote it sits in between
        for s in range(e.seq - 1, (e.caused_by or 0), -1):
            prev = by_seq.get(s)
            if prev is not None and _fits(e, prev) and (named is None or prev.caused_by == e.caused_by):
                return prev, "the processor call for the same input, just before the patch"
    if named is not None and _fits(e, named):
        return named, "caused_by"
    earlier = (
        by_seq.earlier(_kinds_behind(e), e.seq)
        if isinstance(by_seq, EventIndex)
        else (p for p in (by_seq.get(s) for s in range(e.seq - 1, 0, -1)) if p is not None)
    )
    for prev in earlier:
        if _fits(e, prev):
            return prev, "the nearest earlier event of the expected kind (no caused_by)"
    return named, "caused_by" if named is not None else ""


def _kinds_behind(e: BaseEvent) -> tuple[str, ...]:
    """The event types ``_fits`` can accept behind ``e``."""
    if isinstance(e, (StatePatched, Decided)):
        return ("llm_called",)
    if isinstance(e, LLMCalled):
        return ("tool_finished", "user_messaged") if e.role == "processor" else ()
    if isinstance(e, ToolFinished):
        return ("tool_started",)
    if isinstance(e, ToolStarted):
        return ("decided",)
    return ()


class EventIndex(dict[int, Event]):
    """A run's events by seq, plus their seqs by type, so looking back for a kind of event skips the rest.

    Pass it wherever a ``by_seq`` dict is taken: following every fact's story of a long run then
    costs about the number of events, not their square.
    """

    def __init__(self, events: Iterable[Event]) -> None:
        super().__init__((e.seq, e) for e in events)
        self._by_type: dict[str, list[int]] = {}
        for seq in sorted(self):
            self._by_type.setdefault(self[seq].type, []).append(seq)

    def earlier(self, types: Iterable[str], seq: int) -> Iterator[Event]:
        """Events of ``types`` before ``seq``, newest first."""
        runs = []
        for t in types:
            seqs = self._by_type.get(t, [])
            runs.append(reversed(seqs[: bisect.bisect_left(seqs, seq)]))
        for s in heapq.merge(*runs, reverse=True):
            yield self[s]


def provenance(by_seq: dict[int, Event], seq: int) -> list[dict[str, Any]]:
    """The chain of events that led to event ``seq``, newest first (see ``why``).

    Args:
        by_seq: The run's events by seq (at least those up to ``seq``).
        seq: Where the chain starts (for a fact: the ``StatePatched`` that set it).
    """
    chain: list[dict[str, Any]] = []
    current: Event | None = by_seq.get(seq)
    via = "start"
    visited: set[int] = set()
    while current is not None and current.seq not in visited:
        visited.add(current.seq)
        chain.append(_link(current, via))
        current, via = next_link(current, by_seq, first=len(chain) == 1)
    return chain


def next_link(event: Event, by_seq: dict[int, Event], *, first: bool = False) -> tuple[Event | None, str]:
    """The event behind ``event`` in a fact's story and how it was found (``None``: the story starts here).

    A story starts at ``RunStarted``, at ``UserMessaged`` and at the controller call behind a
    decision (unless the chain starts there: ``first``). ``provenance`` follows these links; the
    HTML view stores one link per event and lets the page follow them, so chains are never copied.
    """
    if isinstance(event, (RunStarted, UserMessaged)):
        return None, ""
    if isinstance(event, LLMCalled) and event.role == "controller" and not first:
        return None, ""
    return _cause(event, by_seq)


def link_row(event: Event) -> dict[str, Any]:
    """What a fact's story shows of one event: ``seq``, ``type``, ``why`` and ``artifact`` when it has one."""
    row = _link(event, "")
    return {k: row[k] for k in ("seq", "type", "why", "artifact") if k in row}


def why(store: EventStore, run_id: str, fact_key: str, *, seq: int | None = None) -> dict[str, Any]:
    """Explain where a fact came from: the chain of events that led to it, newest first.

    The chain usually reads: ``StatePatched`` (set the fact) <- processor ``LLMCalled`` <-
    ``ToolFinished`` (with the raw output artifact) <- ``ToolStarted`` <- ``Decided`` <- controller
    ``LLMCalled``. Links follow ``caused_by``; where an event has none, the nearest earlier event of
    the expected kind is taken and the link says so.

    Args:
        store: The store.
        run_id: The run.
        fact_key: The fact's key.
        seq: Explain the fact as it stood at this seq (default: the latest).

    Returns:
        ``{"fact": {...}, "set_at": seq, "chain": [link, ...], "artifacts": [ids], "history": [seqs]}``
        where ``history`` lists every seq that set this key (older values stay in the log).

    Raises:
        ConfigError: no fact with that key; the message lists known keys (closest first).
    """
    upto = check_seq(store, run_id, seq)
    state = store.state_at(run_id, upto)
    fact = state.known_facts.get(fact_key)
    if fact is None:
        keys = sorted(state.known_facts)
        close = difflib.get_close_matches(fact_key, keys, n=5, cutoff=0.5)
        shown = sorted(close + [k for k in keys if k not in close][: max(0, 10 - len(close))])
        listing = ", ".join(repr(k) for k in shown) if shown else "none (the run has no facts yet)"
        more = f" and {len(keys) - len(shown)} more" if len(keys) > len(shown) else ""
        raise ConfigError(f"run {run_id!r} has no fact {fact_key!r} at seq {upto}; known keys: {listing}{more}")
    events = list(store.read(run_id, upto=upto))
    by_seq = EventIndex(events)
    history = [
        e.seq
        for e in events
        if isinstance(e, StatePatched)
        and any(isinstance(op, AppendKnownFacts) and any(f.key == fact_key for f in op.facts) for op in e.ops)
    ]
    chain = provenance(by_seq, fact.seq)
    # the raw tool output first: it is what the fact was read from; request bodies after
    artifacts = [link["artifact"] for link in chain if "artifact" in link and link["type"] == "tool_finished"]
    artifacts += [link["artifact"] for link in chain if "artifact" in link and link["artifact"] not in artifacts]
    if fact.artifact_id and fact.artifact_id not in artifacts:
        artifacts.insert(0, fact.artifact_id)
    return {
        "run_id": run_id,
        "fact": fact.model_dump(mode="json"),
        "set_at": fact.seq,
        "chain": chain,
        "artifacts": artifacts,
        "history": history,
    }
