"""What the controller sees: a compact, size-bounded rendering of the ``RunState``.

The controller never sees raw tool output or the run's history, only this rendering, whose every
section has a hard character budget (task, plan, facts, open questions, recent tool payloads). The
prompt's size therefore has a fixed upper bound that does not depend on how large tool outputs grow
(benchmark W5) nor on how many facts the run has collected. ``controller_view`` gives the text and
the same view as JSON (``ChatRequest.inputs``: recorded, part of the digest, never sent), built from
one selection of the facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import JsonValue

from agentcore.core.fold import RunState
from agentcore.core.state import Fact
from agentcore.roles.facts import fact_line, newest_facts
from agentcore.roles.turn import clip, clip_payload

__all__ = ("ViewBudget", "controller_view")

MAX_TASK_CHARS = 4000
MAX_PLAN_CHARS = 4000
MAX_FACT_CHARS = 6000
MAX_FACTS = 60
MAX_FACT_VALUE_CHARS = 400
MAX_QUESTION_CHARS = 2000
MAX_PAYLOAD_CHARS = 2000
MAX_RECENT_CHARS = 8000


@dataclass(frozen=True, kw_only=True)
class ViewBudget:
    """How much of a state the controller's view shows: characters per section, facts listed."""

    task_chars: int = MAX_TASK_CHARS
    plan_chars: int = MAX_PLAN_CHARS
    fact_chars: int = MAX_FACT_CHARS
    """Characters of the known-facts section (whole lines, newest kept)."""
    facts: int = MAX_FACTS
    """At most this many (newest) facts are listed."""
    question_chars: int = MAX_QUESTION_CHARS
    payload_chars: int = MAX_PAYLOAD_CHARS
    """Characters shown of each recent tool payload."""
    recent_chars: int = MAX_RECENT_CHARS


def _fits(lines: Sequence[str], budget: int) -> int:
    """How many of ``lines`` (from the first) fit in ``budget`` characters, one newline each."""
    used = 0
    for n, line in enumerate(lines):
        used += len(line) + 1
        if used > budget:
            return n
    return len(lines)


def _section(title: str, lines: Iterable[str], budget: int, *, newest_first: bool = False) -> str:
    """Lines under a heading, keeping whole lines until ``budget`` characters are used."""
    items = list(lines)
    kept = items[: _fits(items, budget)]
    dropped = len(items) - len(kept)
    if newest_first:
        kept.reverse()
    body = "\n".join(kept) if kept else "(none)"
    if dropped:
        which = "older " if newest_first else ""
        note = f"({dropped} {which}entries not shown)"
        body = note + "\n" + body if newest_first else body + "\n" + note
    return f"# {title}\n{body}"


def _fact_line(f: Fact) -> str:
    return fact_line(f, key_chars=200, value_chars=MAX_FACT_VALUE_CHARS, provenance=True)


def _fact_input(f: Fact) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {
        "key": f.key,
        "value": f.value[:MAX_FACT_VALUE_CHARS],
        "source": f.source,
        "artifact_id": f.artifact_id,
    }
    if len(f.value) > MAX_FACT_VALUE_CHARS:
        out["cut"] = len(f.value) - MAX_FACT_VALUE_CHARS
    return out


def controller_view(state: RunState, budget: ViewBudget = ViewBudget()) -> tuple[str, dict[str, JsonValue]]:
    """The compact, size-bounded text of ``state`` that the controller reads, and the same view as
    JSON (``ChatRequest.inputs`` of the controller).

    The JSON holds ``task``, ``decisions``, ``fact_count``; ``facts``, the facts the text lists,
    newest last: ``key``, ``value`` (the characters shown), ``source``, ``artifact_id``, and ``cut``
    (how many characters of the value are not shown) when the value was clipped; ``plan``,
    ``questions`` (open ones) and ``recent`` (the recent tool results, payloads clipped as shown,
    newest last).
    """
    newest = newest_facts(state, budget.facts)[::-1]  # newest first: a budget that runs out drops the oldest
    lines = [_fact_line(f) for f in newest]
    return _render(state, budget, lines), _inputs(state, budget, newest[: _fits(lines, budget.fact_chars)])


def _inputs(state: RunState, budget: ViewBudget, shown: Sequence[Fact]) -> dict[str, JsonValue]:
    facts: list[JsonValue] = [_fact_input(f) for f in reversed(shown)]
    plan: list[JsonValue] = [
        {"id": s.id, "status": s.status, "description": clip(s.description, 300), "after": list(s.after)}
        for s in state.plan.values()
    ]
    questions: list[JsonValue] = [
        {"id": q.id, "text": clip(q.text, 400)} for q in state.open_questions.values() if q.status == "open"
    ]
    recent: list[JsonValue] = [
        {
            "call_id": r.call_id,
            "tool": r.tool,
            "ok": r.ok,
            "artifact_id": r.artifact_id,
            "payload": clip_payload(r.payload, budget.payload_chars),
        }
        for r in state.recent
    ]
    return {
        "task": clip(state.task, budget.task_chars),
        "decisions": state.decisions,
        "facts": facts,
        "fact_count": len(state.known_facts),
        "plan": plan,
        "questions": questions,
        "recent": recent,
    }


def _render(state: RunState, budget: ViewBudget, fact_lines: list[str]) -> str:
    parts = [f"# Task\n{clip(state.task, budget.task_chars)}"]
    parts.append(f"# Progress\nDecisions so far: {state.decisions}. Tool results so far are summarised below.")
    if state.plan:
        plan_lines = [
            f"- [{s.status}] {clip(s.id, 100)}: {clip(s.description, 300)}"
            + (f" (after: {', '.join(s.after)})" if s.after else "")
            for s in state.plan.values()
        ]
        parts.append(_section("Plan", plan_lines, budget.plan_chars))
    shown = fact_lines[: _fits(fact_lines, budget.fact_chars)]  # newest first: the budget drops the oldest
    older = len(state.known_facts) - len(shown)  # past the count or the character budget: one note
    facts = "\n".join([*([f"({older} older facts not shown)"] if older else []), *reversed(shown)]) or "(none)"
    parts.append(f"# Known facts ({len(state.known_facts)}, newest last)\n{facts}")
    open_qs = [q for q in state.open_questions.values() if q.status == "open"]
    if open_qs:
        questions = [f"- {clip(q.id, 100)}: {clip(q.text, 400)}" for q in open_qs]
        parts.append(_section("Open questions", questions, budget.question_chars))
    recent_lines = []
    for r in reversed(state.recent):
        head = f"## call {r.call_id}: {r.tool} {'ok' if r.ok else 'error'}"
        if r.artifact_id:
            head += f" (raw output: artifact {r.artifact_id})"
        recent_lines.append(head + "\n" + clip_payload(r.payload, budget.payload_chars))
    parts.append(_section("Recent tool results (newest last)", recent_lines, budget.recent_chars, newest_first=True))
    return "\n\n".join(parts)
