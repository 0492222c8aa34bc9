"""Rules a processor's new patch must follow on top of applying: no empty plan, visible identifiers.

``agentcore.core.fold.check_patch`` decides whether a patch applies; it also runs on stored events,
so it can never grow stricter without breaking the fold of logs recorded before (invariant 2).
These rules are checked only before a patch is recorded (``agentcore.roles.processor.process``):
a patch that breaks one is refused and fed back to the model, like any patch that does not apply.

- ``replace_plan`` may not leave the run with no plan at all (no steps, and no finished or running
  step kept): a model that wants to stop work marks steps ``skipped``.
- Fact keys, question ids and step ids are identifiers the model and the user read and type back:
  they may not hold control characters (NUL, escape sequences), bidirectional overrides or
  zero-width characters, which make two different keys look the same (``"total"`` and
  ``"total\\u200b"``) or reorder text on screen. Values are data and stay as the model wrote them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence

from agentcore.core.fold import RunState
from agentcore.core.patches import AddOpenQuestions, AppendKnownFacts, JsonPatch, PatchOp, ReplacePlan
from agentcore.core.state import KEPT_STATUSES
from agentcore.errors import PatchError

__all__ = ("check_new_patch", "invisible_character")

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Control, format (bidi controls, zero-width), surrogate, private-use, unassigned, line and paragraph separators."""


def invisible_character(text: str) -> str | None:
    """The first character of ``text`` that is a control, format or unassigned one, as ``U+XXXX``."""
    for ch in text:
        if unicodedata.category(ch) in _INVISIBLE_CATEGORIES:
            return f"U+{ord(ch):04X}"
    return None


def _identifiers(op: PatchOp) -> Iterator[tuple[str, str]]:
    """(what, identifier) pairs a typed op introduces."""
    if isinstance(op, AppendKnownFacts):
        yield from (("fact key", f.key) for f in op.facts)
    elif isinstance(op, AddOpenQuestions):
        yield from (("question id", q.id) for q in op.questions)
    elif isinstance(op, ReplacePlan):
        for step in op.steps:
            yield "step id", step.id
            yield from (("dependency of step " + repr(step.id[:60]), dep) for dep in step.after)


def _raw_identifiers(op: JsonPatch) -> Iterator[tuple[str, str]]:
    """Member names a raw op adds under known_facts, open_questions or plan (``/known_facts/<key>``)."""
    for raw in op.patch:
        path = raw.get("path")
        if raw.get("op") in ("add", "copy", "move") and isinstance(path, str):
            parts = path.split("/")
            if len(parts) >= 3 and parts[1] in ("known_facts", "open_questions", "plan"):
                yield f"{parts[1]} member", parts[2].replace("~1", "/").replace("~0", "~")


def check_new_patch(state: RunState, ops: Sequence[PatchOp]) -> None:
    """Refuse a new patch that breaks one of the module's rules (see the module docstring).

    Identifiers the state already holds are not checked again (a user's plan may name its steps freely).

    Raises:
        PatchError: naming the op index, what is wrong and what to send instead.
    """
    known = {*state.known_facts, *state.open_questions, *state.plan}  # given earlier (say, a user's plan): kept
    for i, op in enumerate(ops):
        named = _raw_identifiers(op) if isinstance(op, JsonPatch) else _identifiers(op)
        for what, ident in named:
            bad = invisible_character(ident) if ident not in known else None
            if bad is not None:
                raise PatchError(
                    f"op {i} ({op.op}): the {what} {ident[:80]!r} contains the invisible or control character "
                    f"{bad}; identifiers must be visible text (letters, digits, punctuation, spaces), "
                    "so send it without that character",
                    op_index=i,
                )
        if isinstance(op, ReplacePlan) and not op.steps:
            if not any(s.status in KEPT_STATUSES for s in state.plan.values()):
                raise PatchError(
                    f"op {i} (replace_plan): the new plan has no steps, which would leave the run without a "
                    "plan; list the steps still to do, or mark steps that should not run with "
                    'set_step_status "skipped"',
                    op_index=i,
                    path="/plan",
                )
