"""Questions about a recorded run, answered from its log as plain data.

Every function here reads the store and returns dicts and lists of JSON-ready values, so the CLI
can print them as tables or ``--json`` and tests can compare them. Nothing is written. The answers
are computed from the events (the log is the truth): a run's duration from the first and last
event times, token use from ``LLMCalled`` events, a fact's provenance by following ``caused_by``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from agentcore.core.events import (
    EVENT_TYPES,
    BaseEvent,
    LLMCalled,
    TokenUsage,
)
from agentcore.core.patches import AppendKnownFacts, JsonPatch
from agentcore.core.text import clip
from agentcore.errors import ConfigError
from agentcore.storage.base import EventStore, RunStatsSource, stats_of

__all__ = (
    "check_seq",
    "artifact_preview",
    "diff",
    "event_rows",
    "list_events",
    "list_runs",
    "state_at",
    "summarize",
    "usage",
)


def summarize(event: BaseEvent, limit: int = 120) -> str:
    """A one-line human description of an event (for timelines and tables), at most ``limit`` characters."""
    how = _SUMMARIES.get(event.type)
    if how is None:  # pragma: no cover - every event type has a row in _SUMMARIES
        text = event.type
    else:
        text = how.format(e=event) if isinstance(how, str) else how(event)
    return clip(text, limit, one_line=True, mark="ellipsis")


def _decision_summary(e: Any) -> str:
    d = e.decision
    if d.kind == "tool_calls":
        return "call " + ", ".join(
            f"{c.name}({clip(str(c.arguments), 40, one_line=True, mark='ellipsis')})" for c in d.tool_calls
        )
    return f"ask user: {d.question}" if d.kind == "ask_user" else f"reply: {d.reply}"


_SUMMARIES: dict[str, str | Callable[[Any], str]] = {
    # event type -> a template over the event ``e``, or a function of it
    "run_started": "task: {e.task}",
    "user_messaged": "user: {e.text}",
    "llm_called": lambda e: f"{e.role} {e.model} {e.usage.total_tokens} tok" + ("" if e.ok else f" FAILED: {e.error}"),
    "decided": _decision_summary,
    "tool_started": "{e.call.name} [{e.call.id}] {e.call.arguments}",
    "tool_finished": lambda e: (
        f"{e.name} [{e.call_id}] " + (f"ok: {e.payload}" if e.ok else f"error: {e.error or e.payload}")
    ),
    "state_patched": lambda e: f"{e.source}: " + ", ".join(_op_summary(op) for op in e.ops),
    "patch_rejected": "rejected (attempt {e.attempt}): {e.error}",
    "step_started": "step {e.step_id} attempt {e.attempt}",
    "step_succeeded": "step {e.step_id} ok: {e.payload}",
    "step_failed": "step {e.step_id} failed ({e.kind}): {e.error}",
    "step_skipped": "step {e.step_id} skipped: {e.reason}",
    "run_finished": lambda e: f"{e.status}: {e.reply or e.reason}",
}


def _op_summary(op: Any) -> str:
    if isinstance(op, AppendKnownFacts):
        return "facts " + ", ".join(f.key for f in op.facts)
    if isinstance(op, JsonPatch):
        return f"json_patch ({len(op.patch)} ops)"
    return op.op


def _event_row(e: BaseEvent, body: bool = True) -> dict[str, Any]:
    row = {"seq": e.seq, "type": e.type, "at": e.at.isoformat(), "caused_by": e.caused_by, "summary": summarize(e)}
    if body:
        row["event"] = e.model_dump(mode="json")
    return row


def _usage_dict(u: TokenUsage, calls: int) -> dict[str, Any]:
    return {
        "calls": calls,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    }


def list_runs(store: EventStore) -> list[dict[str, Any]]:
    """One row per run: id, task, status, created, events, duration_s, tokens, parent, fork seq.

    ``duration_s`` is the time from the run's first to its last event (``None`` with no events);
    ``tokens`` is the total over its ``LLMCalled`` events, inherited ones included for forks.
    """
    rows = []
    for info in store.runs():
        # a store that can count in SQL answers without decoding a single event
        stats = store.run_stats(info.id) if isinstance(store, RunStatsSource) else stats_of(store.read(info.id))
        rows.append(
            {
                "id": info.id,
                "task": info.task,
                "status": info.status,
                "created": info.created,
                "events": stats.events,
                "duration_s": (stats.last_at - stats.first_at).total_seconds()
                if stats.first_at and stats.last_at
                else None,
                "tokens": stats.tokens,
                "parent_run_id": info.parent_run_id,
                "forked_at_seq": info.forked_at_seq,
            }
        )
    return rows


def check_seq(store: EventStore, run_id: str, seq: int | None, name: str = "seq") -> int:
    """``seq`` checked against the run's events (``None``: the last seq); ``ConfigError`` out of range."""
    last = store.last_seq(run_id)
    if seq is None:
        return last
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= last:
        raise ConfigError(f"{name} {seq!r} is out of range for run {run_id!r}: it has seqs 1..{last} (0 = empty state)")
    return seq


def list_events(
    store: EventStore,
    run_id: str,
    types: Iterable[str] | None = None,
    since: int | None = None,
    until: int | None = None,
    *,
    bodies: bool = True,
) -> list[dict[str, Any]]:
    """The run's events as rows (seq, type, at, caused_by, summary, event), oldest first.

    Args:
        store: The store.
        run_id: The run.
        types: Keep only these event types (``tool_finished``, ``llm_called``, ...).
        since: Keep seqs >= ``since``.
        until: Keep seqs <= ``until``.
        bodies: Include ``event`` (the whole event as JSON); a table that shows only the summary
            passes ``False`` and skips serializing each event.

    Raises:
        ConfigError: an unknown event type, or ``since`` > ``until``.
        RunNotFound: no such run.
    """
    wanted = set(types) if types is not None else None
    if wanted is not None:
        unknown = sorted(wanted - EVENT_TYPES.keys())
        if unknown:
            raise ConfigError(f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(sorted(EVENT_TYPES))}")
    if since is not None and until is not None and since > until:
        raise ConfigError(f"since ({since}) is after until ({until}); give since <= until")
    after = max(0, since - 1) if since is not None else 0
    return [
        _event_row(e, bodies) for e in store.read(run_id, after=after, upto=until) if wanted is None or e.type in wanted
    ]


def state_at(store: EventStore, run_id: str, seq: int | None = None) -> dict[str, Any]:
    """The run's state as a JSON document after event ``seq`` (default: the latest).

    Raises:
        ConfigError: ``seq`` is outside ``0..last seq``.
        RunNotFound: no such run.
    """
    doc = store.state_at(run_id, check_seq(store, run_id, seq)).to_json()
    doc["run_id"] = run_id  # a fork's events up to the fork point are its parent's; the state is the fork's
    return doc


def diff(store: EventStore, run_id: str, a: int, b: int) -> list[dict[str, Any]]:
    """RFC 6902 operations turning the state at seq ``a`` into the state at seq ``b``.

    Raises:
        ConfigError: a seq is outside ``0..last seq``.
    """
    return store.diff(run_id, check_seq(store, run_id, a, "a"), check_seq(store, run_id, b, "b"))


class _Tally:
    """Token and dollar sums of a group of ``LLMCalled`` events."""

    def __init__(self) -> None:
        self.calls = self.unpriced = 0
        self.tokens = TokenUsage()
        self.cost = 0.0

    def add(self, e: LLMCalled, cost: float | None) -> None:
        self.calls += 1
        self.tokens = self.tokens + e.usage
        if cost is None:
            self.unpriced += 1
        else:
            self.cost += cost

    def to_json(self) -> dict[str, Any]:
        return {
            **_usage_dict(self.tokens, self.calls),
            "cost_usd": None if self.unpriced else round(self.cost, 9),
            "unpriced_calls": self.unpriced,
        }


def usage(
    store: EventStore, run_id: str, *, price: Callable[[LLMCalled], float | None] | None = None
) -> dict[str, Any]:
    """Token use and cost of a run from its ``LLMCalled`` events: total, per role and per step id.

    Args:
        price: Prices each call again now (for example with your own prices); by default each
            call's recorded ``cost_usd`` is used.

    Returns:
        ``{"total": u, "by_role": {role: u}, "by_step": {step_id: u}}``; each ``u`` has ``calls``,
        ``prompt_tokens``, ``completion_tokens``, ``total_tokens``, ``cost_usd`` (US dollars, or
        ``None`` -- unknown, never 0 -- when any call in the group has no known price) and
        ``unpriced_calls``. Calls made outside any plan step are filed under the step id ``"-"``.
    """
    total, by_role, by_step = _Tally(), dict[str, _Tally](), dict[str, _Tally]()
    for e in store.read(run_id):
        if not isinstance(e, LLMCalled):
            continue
        cost = e.cost_usd if price is None else price(e)
        for tally in (total, by_role.setdefault(e.role, _Tally()), by_step.setdefault(e.step_id or "-", _Tally())):
            tally.add(e, cost)
    return {
        "total": total.to_json(),
        "by_role": {k: v.to_json() for k, v in sorted(by_role.items())},
        "by_step": {k: v.to_json() for k, v in sorted(by_step.items())},
    }


def _looks_binary(data: bytes) -> bool:
    if b"\x00" in data:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start < len(data) - 3  # only a character cut at the end of the preview is fine
    return False


def artifact_preview(store: EventStore, ident: str, limit: int = 2048) -> dict[str, Any]:
    """The first ``limit`` bytes of an artifact, as text when it is text.

    Returns:
        ``{"id", "media_type", "size", "binary", "truncated", "preview"}``; ``preview`` is the text
        (UTF-8) or, for binary content, a hex dump of the first bytes.

    Raises:
        ArtifactNotFound: no such artifact (or not an artifact id).
        ConfigError: ``limit`` < 1.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"limit must be a positive number of bytes, got {limit!r}")
    ref = store.artifacts.info(ident)
    head = store.artifacts.read(ref.id, 0, limit)
    binary = _looks_binary(head)
    if binary:
        preview = " ".join(f"{b:02x}" for b in head[: min(limit, 512)])
    else:
        preview = head.decode("utf-8", errors="ignore" if len(head) < ref.size else "replace")
    return {
        "id": ref.id,
        "media_type": ref.media_type,
        "size": ref.size,
        "binary": binary,
        "truncated": ref.size > len(head),
        "preview": preview,
    }


def event_rows(events: Sequence[BaseEvent]) -> list[dict[str, Any]]:
    """Rows like ``list_events`` for events already in hand."""
    return [_event_row(e) for e in events]
