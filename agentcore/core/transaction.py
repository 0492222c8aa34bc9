"""Applying state patches: all ops or none, validated, with their RFC 6902 form.

Patches apply through a small transaction (``_Tx``) that records the RFC 6902 operation of every
change and how to undo it, so a patch applies whole or not at all, ``compile_patch`` gives the
RFC 6902 form of any typed op, and ``check_patch`` dry-runs a patch at the cost of the patch (a raw
``json_patch`` op costs O(state): it is validated against the whole resulting state).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from agentcore.core.first_use import bind_on_first_use
from agentcore.core.json_patch import apply_json_patch, json_diff, json_equal, json_pointer
from agentcore.core.lazy_facts import LazyFacts
from agentcore.core.patches import (
    AddOpenQuestions,
    AnswerQuestion,
    AppendKnownFacts,
    JsonPatch,
    PatchOp,
    ReplacePlan,
    SetStepStatus,
)
from agentcore.core.plans import validate_plan
from agentcore.core.state import KEPT_STATUSES, Fact, Question, RunState, StepState, step_state
from agentcore.errors import AgentcoreError, PatchError, PlanError

_MISSING: Any = object()
_FIELD = object()
"""Marks an undo entry that restores a whole field of the state."""


class _Tx:
    """Changes to a state that can be undone, each also written down as RFC 6902 when recording."""

    __slots__ = ("_undo", "ops", "record", "state")

    def __init__(self, state: RunState, record: bool) -> None:
        self.state = state
        self.record = record
        self.ops: list[dict[str, Any]] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def set_item(self, field: str, key: str, value: BaseModel) -> None:
        container: MutableMapping[str, Any] = self.state.__dict__[field]
        # a still undecoded fact is kept as it is stored (undoing puts it back): no decode to set a key
        old = container.peek(key, _MISSING) if isinstance(container, LazyFacts) else container.get(key, _MISSING)
        container[key] = value
        self._undo.append((container, key, old))
        if self.record:
            op = "add" if old is _MISSING else "replace"
            self.ops.append({"op": op, "path": json_pointer(field, key), "value": value.model_dump(mode="json")})

    def set_field(self, field: str, value: Any) -> None:
        fields = self.state.__dict__
        self._undo.append((_FIELD, field, fields[field]))
        fields[field] = value
        if self.record:
            as_json = self.state.model_dump(mode="json", include={field})[field]
            self.ops.append({"op": "replace", "path": json_pointer(field), "value": as_json})

    def rollback(self) -> None:
        fields = self.state.__dict__
        for container, key, old in reversed(self._undo):
            if container is _FIELD:
                fields[key] = old
            elif old is _MISSING:
                container.pop(key, None)
            else:
                container[key] = old
        self._undo.clear()


def _op_path(op: BaseModel) -> str:
    if isinstance(op, ReplacePlan):
        return "/plan"
    if isinstance(op, AppendKnownFacts):
        return "/known_facts"
    if isinstance(op, (AddOpenQuestions, AnswerQuestion)):
        return "/open_questions" + (json_pointer(op.id) if isinstance(op, AnswerQuestion) else "")
    if isinstance(op, SetStepStatus):
        return json_pointer("plan", op.step_id, "status")
    return ""


def _apply_replace_plan(tx: _Tx, op: ReplacePlan, seq: int) -> None:
    old = tx.state.plan
    # finished work stays finished: succeeded (and running) steps are kept as they are
    kept = {sid: s for sid, s in old.items() if s.status in KEPT_STATUSES}
    try:
        validate_plan(op.steps, known=kept)
    except PlanError as e:
        raise PatchError(str(e), path="/plan") from None
    new: dict[str, StepState] = {sid: s for sid, s in kept.items() if sid not in {x.id for x in op.steps}}
    for step in op.steps:
        prev = kept.get(step.id)
        new[step.id] = prev if prev is not None else step_state(step)
    tx.set_field("plan", new)
    for name in ("on_failure", "retry", "max_parallel"):
        value = getattr(op, name)
        if value is not None and value != getattr(tx.state, name):
            tx.set_field(name, value)


_validate_fact: Callable[[dict[str, Any]], Fact] = bind_on_first_use(
    globals(), "_validate_fact", lambda: Fact.__pydantic_validator__.validate_python
)


def _apply_facts(tx: _Tx, op: AppendKnownFacts, seq: int) -> None:
    for f in op.facts:
        # the input is a validated FactInput: re-validating its fields plus ``seq`` is the cheap path
        tx.set_item("known_facts", f.key, _validate_fact({**f.__dict__, "seq": seq}))


def _apply_questions(tx: _Tx, op: AddOpenQuestions, seq: int) -> None:
    for q in op.questions:
        if q.id in tx.state.open_questions:
            raise PatchError(
                f"question {q.id!r} already exists; choose a new id", path=json_pointer("open_questions", q.id)
            )
        tx.set_item("open_questions", q.id, Question(id=q.id, text=q.text))


def _apply_answer(tx: _Tx, op: AnswerQuestion, seq: int) -> None:
    q = tx.state.open_questions.get(op.id)
    if q is None:
        known = ", ".join(sorted(tx.state.open_questions)) or "none"
        raise PatchError(f"no question {op.id!r}; open questions: {known}", path=json_pointer("open_questions", op.id))
    tx.set_item("open_questions", op.id, q.model_copy(update={"status": "answered", "answer": op.answer}))


def _apply_step_status(tx: _Tx, op: SetStepStatus, seq: int) -> None:
    step = tx.state.plan.get(op.step_id)
    path = json_pointer("plan", op.step_id, "status")
    if step is None:
        known = ", ".join(tx.state.plan) or "none (the plan is empty)"
        raise PatchError(f"no step {op.step_id!r}; steps: {known}", path=path)
    if step.status == "succeeded" and op.status != "succeeded":
        raise PatchError(f"step {op.step_id!r} already succeeded; finished steps stay finished", path=path)
    missing = [d for d in step.after if d not in tx.state.plan]
    if missing and op.status not in KEPT_STATUSES:
        raise PatchError(
            f"step {op.step_id!r} depends on {', '.join(map(repr, missing))}, which the plan no longer has, so it "
            f"cannot be {op.status}; replace the plan to include them or to drop this step",
            path=path,
        )
    update: dict[str, Any] = {"status": op.status}
    if op.error is not None:
        update["error"] = op.error
    tx.set_item("plan", op.step_id, step.model_copy(update=update))


def _apply_raw(tx: _Tx, op: JsonPatch, seq: int) -> None:
    # the escape hatch costs O(state): dump, patch, validate the whole result. "Changed" is JSON
    # equality (json_equal), never Python's ==, for which true == 1: replacing 1 by true changes the state
    before = tx.state.to_json()
    doc = apply_json_patch(before, op.patch)
    try:
        new = RunState.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        where = json_pointer(*(str(part) for part in first["loc"]))
        raise PatchError(f"the patched state is invalid: {first['msg']} at {where}", path=where) from None
    after = new.to_json()
    changed = [name for name in RunState.model_fields if not json_equal(after[name], before[name])]
    if forbidden := [name for name in changed if name not in RAW_PATCH_FIELDS]:
        raise PatchError(
            f"a json_patch may change only {', '.join(RAW_PATCH_FIELDS)}; it tried to change "
            f"{', '.join(forbidden)}, which only the run's own events set",
            path=json_pointer(forbidden[0]),
        )
    for sid, step in tx.state.plan.items():
        if step.status in KEPT_STATUSES and not json_equal(after["plan"].get(sid), before["plan"][sid]):
            raise PatchError(
                f"step {sid!r} is {step.status}: a patch cannot change or drop it (finished steps stay finished)",
                path=json_pointer("plan", sid),
            )
    _check_consistent(new, plan_changed="plan" in changed)
    # facts this patch set carry its seq, as facts set by append_known_facts do
    old_facts = before["known_facts"]
    for key, f in new.known_facts.items():
        if f.seq != seq and not json_equal(old_facts.get(key), after["known_facts"][key]):
            new.known_facts[key] = f.model_copy(update={"seq": seq})
            changed.append("known_facts")
    record, tx.record = tx.record, False
    for name in dict.fromkeys(changed):
        tx.set_field(name, getattr(new, name))
    tx.record = record
    if record:
        # the raw ops, then what validation added: defaults, coerced values, the facts' seq
        tx.ops.extend([*op.patch, *json_diff(doc, tx.state.to_json())])


RAW_PATCH_FIELDS: tuple[str, ...] = ("known_facts", "open_questions", "plan", "on_failure", "retry", "max_parallel")
"""The parts of the state a raw ``json_patch`` may change: what the processor's typed ops change.

Status, reply, usage, pending calls, recent payloads and counters are the record of what the run did;
only the run's own events (``RunFinished``, ``LLMCalled``, ``ToolFinished``, ...) set them.
"""


def _check_consistent(state: RunState, *, plan_changed: bool) -> None:
    """What the typed ops guarantee and a raw patch could break: keys match ids, the plan is a DAG."""
    for field, attr in (("plan", "id"), ("known_facts", "key"), ("open_questions", "id"), ("pending_calls", "id")):
        for key, value in getattr(state, field).items():
            if getattr(value, attr) != key:
                raise PatchError(
                    f"{field} entry {key!r} has {attr} {getattr(value, attr)!r}: the key must equal the {attr}",
                    path=json_pointer(field, key),
                )
    if not plan_changed:
        return
    kept = [sid for sid, s in state.plan.items() if s.status in KEPT_STATUSES]
    try:
        validate_plan([s for s in state.plan.values() if s.status not in KEPT_STATUSES], known=kept)
    except PlanError as e:
        raise PatchError(f"the patched plan is invalid: {e}", path="/plan") from None


_OP_HANDLERS: dict[type, Callable[[_Tx, Any, int], None]] = {
    ReplacePlan: _apply_replace_plan,
    AppendKnownFacts: _apply_facts,
    AddOpenQuestions: _apply_questions,
    AnswerQuestion: _apply_answer,
    SetStepStatus: _apply_step_status,
    JsonPatch: _apply_raw,
}


def _run_patch(state: RunState, ops: Sequence[PatchOp], seq: int, *, keep: bool, record: bool) -> list[dict[str, Any]]:
    tx = _Tx(state, record)
    try:
        for i, op in enumerate(ops):
            try:
                _OP_HANDLERS[type(op)](tx, op, seq)
            except PatchError as e:
                path = e.path if e.path is not None else _op_path(op)
                raise PatchError(f"op {i} ({op.op}) at {path or '/'}: {e.reason}", op_index=i, path=path) from None
            except AgentcoreError as e:
                raise PatchError(f"op {i} ({op.op}): {e}", op_index=i, path=_op_path(op)) from None
    except BaseException:
        tx.rollback()
        raise
    if not keep:
        tx.rollback()
    return tx.ops


def check_patch(state: RunState, ops: Sequence[PatchOp], seq: int | None = None) -> None:
    """Dry-run ``ops`` against ``state``; the state is left unchanged either way.

    Raises:
        PatchError: naming the op index, the path and the reason.
    """
    _run_patch(state, ops, seq if seq is not None else state.last_seq + 1, keep=False, record=False)


def compile_patch(state: RunState, ops: Sequence[PatchOp], seq: int | None = None) -> list[dict[str, Any]]:
    """The RFC 6902 operations that ``ops`` amount to on ``state`` (state left unchanged).

    ``jsonpatch.apply_patch(state.to_json(), compile_patch(state, ops))`` equals the JSON of the
    state after ``apply_patch(state, ops)``.

    Raises:
        PatchError: as ``check_patch``.
    """
    return _run_patch(state, ops, seq if seq is not None else state.last_seq + 1, keep=False, record=True)


def apply_patch(state: RunState, ops: Sequence[PatchOp], seq: int) -> RunState:
    """Apply ``ops`` to ``state`` in place, all or nothing, and return it.

    Raises:
        PatchError: naming the op index, the path and the reason; the state is left as it was.
    """
    if all(type(op) is AppendKnownFacts for op in ops):
        # the common case cannot fail (every FactInput is valid and any key may be set or
        # superseded), so it needs no transaction to undo
        facts = state.known_facts
        for op in ops:
            for f in op.facts:  # type: ignore[union-attr]
                facts[f.key] = _validate_fact({**f.__dict__, "seq": seq})
        return state
    _run_patch(state, ops, seq, keep=True, record=False)
    return state
