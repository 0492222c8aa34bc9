"""The run state and the pure fold that computes it from events.

``fold(events)`` is the only way state comes to be: there is no other store of run state.
The fold is deterministic and does no I/O (timestamps and ids arrive on the events).

Invariant 9 (cost grows with the change, not the state): ``apply`` updates the state *in place*
and touches only what the event names, so folding one event costs the same whether the state
holds ten facts or a hundred thousand. ``fold(events, start)`` copies ``start`` once so callers'
states are never changed behind their back. Values inside the state (facts, steps, questions)
are frozen models; only the containers change.

Patches apply through a small transaction (``_Tx``) that records the RFC 6902 operation of every
change and how to undo it, so a patch applies whole or not at all, ``compile_patch`` gives the
RFC 6902 form of any typed op, and ``check_patch`` dry-runs a patch at the cost of the patch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import jsonpatch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentcore.errors import AgentcoreError, PatchError, PlanError
from agentcore.events import (
    ArtifactRef,
    BaseEvent,
    Decided,
    Event,
    LLMCalled,
    PatchRejected,
    RunFinished,
    RunStarted,
    RunStatus,
    StatePatched,
    StepFailed,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    TokenUsage,
    ToolCall,
    ToolFinished,
    ToolStarted,
    UserMessaged,
    decode_event,
)
from agentcore.patches import (
    AddOpenQuestions,
    AnswerQuestion,
    AppendKnownFacts,
    FactInput,
    JsonPatch,
    PatchOp,
    ReplacePlan,
    SetStepStatus,
    apply_json_patch,
)
from agentcore.plans import FailurePolicy, Plan, RetryPolicy, Step, StepStatus, validate_plan

RECENT_WINDOW = 8
"""How many recent tool payloads the state keeps for the controller."""

_KEPT: tuple[StepStatus, ...] = ("succeeded", "running")
"""Statuses of steps that a new plan keeps as they are (finished or under way)."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Fact(FactInput):
    """A known fact, with the seq of the event that set it."""

    seq: int = 0


class Question(BaseModel):
    """An open (or answered) question."""

    model_config = _FROZEN
    id: str
    text: str
    status: Literal["open", "answered"] = "open"
    answer: str | None = None


class StepState(Step):
    """A plan step with its progress."""

    status: StepStatus = "pending"
    attempts: int = 0
    """Tries started so far."""
    result: ArtifactRef | None = None
    payload: str | None = None
    error: str | None = None


class RecentPayload(BaseModel):
    """A tool result the controller saw recently."""

    model_config = _FROZEN
    call_id: str
    tool: str
    ok: bool
    payload: str
    artifact_id: str | None = None
    seq: int


class RunState(BaseModel):
    """Everything known about a run at one seq; always ``fold(events)``."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = ""
    task: str = ""
    status: RunStatus = "running"
    plan: dict[str, StepState] = Field(default_factory=dict)
    """Steps by id, in plan order."""
    on_failure: FailurePolicy = "skip_dependents"
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    max_parallel: int = 4
    known_facts: dict[str, Fact] = Field(default_factory=dict)
    open_questions: dict[str, Question] = Field(default_factory=dict)
    recent: list[RecentPayload] = Field(default_factory=list)
    """The last ``RECENT_WINDOW`` tool payloads, oldest first."""
    pending_calls: dict[str, ToolCall] = Field(default_factory=dict)
    """Tool calls started and not yet finished (after a crash: to be re-run or given up)."""
    waiting_on: str | None = None
    """The question put to the user while ``status`` is ``waiting_for_user``."""
    usage: dict[str, TokenUsage] = Field(default_factory=dict)
    """Token usage per LLM role."""
    decisions: int = 0
    llm_calls: int = 0
    patches_rejected: int = 0
    reply: str | None = None
    reason: str | None = None
    last_seq: int = 0

    @property
    def tokens(self) -> int:
        """Total tokens over all roles."""
        return sum(u.total_tokens for u in self.usage.values())

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")

    def to_json(self) -> dict[str, Any]:
        """The state as a JSON document (what RFC 6902 paths address)."""
        return self.model_dump(mode="json")

    def clone(self) -> RunState:
        """An independent copy (containers copied; frozen values shared)."""
        new = self.model_copy()
        for name in ("plan", "known_facts", "open_questions", "usage", "pending_calls"):
            setattr(new, name, dict(getattr(self, name)))
        new.recent = list(self.recent)
        return new


# --------------------------------------------------------------------------------------------
# patches


def _ptr(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


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
        container: dict[str, Any] = self.state.__dict__[field]
        old = container.get(key, _MISSING)
        container[key] = value
        self._undo.append((container, key, old))
        if self.record:
            op = "add" if old is _MISSING else "replace"
            self.ops.append({"op": op, "path": _ptr(field, key), "value": value.model_dump(mode="json")})

    def set_field(self, field: str, value: Any) -> None:
        fields = self.state.__dict__
        self._undo.append((_FIELD, field, fields[field]))
        fields[field] = value
        if self.record:
            as_json = self.state.model_dump(mode="json", include={field})[field]
            self.ops.append({"op": "replace", "path": _ptr(field), "value": as_json})

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
        return "/open_questions" + (_ptr(op.id) if isinstance(op, AnswerQuestion) else "")
    if isinstance(op, SetStepStatus):
        return _ptr("plan", op.step_id, "status")
    return ""


def _apply_replace_plan(tx: _Tx, op: ReplacePlan, seq: int) -> None:
    old = tx.state.plan
    # finished work stays finished: succeeded (and running) steps are kept as they are
    kept = {sid: s for sid, s in old.items() if s.status in _KEPT}
    try:
        validate_plan(op.steps, known=kept)
    except PlanError as e:
        raise PatchError(str(e), path="/plan") from None
    new: dict[str, StepState] = {sid: s for sid, s in kept.items() if sid not in {x.id for x in op.steps}}
    for step in op.steps:
        prev = kept.get(step.id)
        new[step.id] = prev if prev is not None else StepState(**step.model_dump())
    tx.set_field("plan", new)
    if op.on_failure is not None:
        tx.set_field("on_failure", op.on_failure)


_validate_fact = Fact.__pydantic_validator__.validate_python


def _apply_facts(tx: _Tx, op: AppendKnownFacts, seq: int) -> None:
    for f in op.facts:
        # the input is a validated FactInput: re-validating its fields plus ``seq`` is the cheap path
        tx.set_item("known_facts", f.key, _validate_fact({**f.__dict__, "seq": seq}))


def _apply_questions(tx: _Tx, op: AddOpenQuestions, seq: int) -> None:
    for q in op.questions:
        if q.id in tx.state.open_questions:
            raise PatchError(f"question {q.id!r} already exists; choose a new id", path=_ptr("open_questions", q.id))
        tx.set_item("open_questions", q.id, Question(id=q.id, text=q.text))


def _apply_answer(tx: _Tx, op: AnswerQuestion, seq: int) -> None:
    q = tx.state.open_questions.get(op.id)
    if q is None:
        known = ", ".join(sorted(tx.state.open_questions)) or "none"
        raise PatchError(f"no question {op.id!r}; open questions: {known}", path=_ptr("open_questions", op.id))
    tx.set_item("open_questions", op.id, q.model_copy(update={"status": "answered", "answer": op.answer}))


def _apply_step_status(tx: _Tx, op: SetStepStatus, seq: int) -> None:
    step = tx.state.plan.get(op.step_id)
    path = _ptr("plan", op.step_id, "status")
    if step is None:
        known = ", ".join(tx.state.plan) or "none (the plan is empty)"
        raise PatchError(f"no step {op.step_id!r}; steps: {known}", path=path)
    if step.status == "succeeded" and op.status != "succeeded":
        raise PatchError(f"step {op.step_id!r} already succeeded; finished steps stay finished", path=path)
    update: dict[str, Any] = {"status": op.status}
    if op.error is not None:
        update["error"] = op.error
    tx.set_item("plan", op.step_id, step.model_copy(update=update))


def _apply_raw(tx: _Tx, op: JsonPatch, seq: int) -> None:
    # the escape hatch costs O(state): dump, patch, validate the whole result
    doc = apply_json_patch(tx.state.to_json(), op.patch)
    try:
        new = RunState.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        where = "/" + "/".join(str(part) for part in first["loc"])
        raise PatchError(f"the patched state is invalid: {first['msg']} at {where}", path=where) from None
    _check_consistent(new)
    for name in RunState.model_fields:
        if getattr(new, name) != getattr(tx.state, name):
            tx.set_field(name, getattr(new, name))


def _check_consistent(state: RunState) -> None:
    """What the typed ops guarantee and a raw patch could break: keys match ids, the plan is a DAG."""
    for field, attr in (("plan", "id"), ("known_facts", "key"), ("open_questions", "id"), ("pending_calls", "id")):
        for key, value in getattr(state, field).items():
            if getattr(value, attr) != key:
                raise PatchError(
                    f"{field} entry {key!r} has {attr} {getattr(value, attr)!r}: the key must equal the {attr}",
                    path=_ptr(field, key),
                )
    kept = [sid for sid, s in state.plan.items() if s.status in _KEPT]
    try:
        validate_plan([s for s in state.plan.values() if s.status not in _KEPT], known=kept)
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
            start = len(tx.ops)
            try:
                _OP_HANDLERS[type(op)](tx, op, seq)
            except PatchError as e:
                path = e.path if e.path is not None else _op_path(op)
                raise PatchError(f"op {i} ({op.op}) at {path or '/'}: {e.reason}", op_index=i, path=path) from None
            except AgentcoreError as e:
                raise PatchError(f"op {i} ({op.op}): {e}", op_index=i, path=_op_path(op)) from None
            if record and isinstance(op, JsonPatch):
                del tx.ops[start:]
                tx.ops.extend(op.patch)
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
    """The RFC 6902 operations that ``ops`` amount to on ``state`` (state left unchanged)."""
    return _run_patch(state, ops, seq if seq is not None else state.last_seq + 1, keep=False, record=True)


def apply_patch(state: RunState, ops: Sequence[PatchOp], seq: int) -> RunState:
    """Apply ``ops`` to ``state`` in place, all or nothing, and return it."""
    _run_patch(state, ops, seq, keep=True, record=False)
    return state


# --------------------------------------------------------------------------------------------
# the fold


_FOLDERS: dict[type[BaseEvent], Callable[[Any, RunState], None]] = {}
"""One small function per event type (a dict, not ``singledispatch``: the fold's hot path)."""


def _on(cls: type[BaseEvent]) -> Callable[[Callable[[Any, RunState], None]], Callable[[Any, RunState], None]]:
    def register(fn: Callable[[Any, RunState], None]) -> Callable[[Any, RunState], None]:
        _FOLDERS[cls] = fn
        return fn

    return register


def _apply(event: BaseEvent, state: RunState) -> None:
    try:
        handler = _FOLDERS[type(event)]
    except KeyError:
        raise TypeError(f"apply() has no case for {type(event).__name__}") from None
    handler(event, state)


@_on(RunStarted)
def _run_started(event: RunStarted, state: RunState) -> None:
    state.run_id = event.run_id
    state.task = event.task
    state.status = "running"
    if event.plan is not None:
        _load_plan(state, event.plan)


def _load_plan(state: RunState, plan: Plan) -> None:
    state.plan = {s.id: StepState(**s.model_dump()) for s in plan.steps}
    state.on_failure = plan.on_failure
    state.retry = plan.retry
    state.max_parallel = plan.max_parallel


@_on(UserMessaged)
def _user_messaged(event: UserMessaged, state: RunState) -> None:
    if state.status == "waiting_for_user":
        state.status = "running"
    state.waiting_on = None


@_on(LLMCalled)
def _llm_called(event: LLMCalled, state: RunState) -> None:
    state.llm_calls += 1
    prev = state.usage.get(event.role)
    state.usage[event.role] = event.usage if prev is None else prev + event.usage


@_on(Decided)
def _decided(event: Decided, state: RunState) -> None:
    state.decisions += 1
    d = event.decision
    if d.kind == "ask_user":
        state.status = "waiting_for_user"
        state.waiting_on = d.question
    elif d.kind == "reply":
        state.reply = d.reply


@_on(ToolStarted)
def _tool_started(event: ToolStarted, state: RunState) -> None:
    state.pending_calls[event.call.id] = event.call


@_on(ToolFinished)
def _tool_finished(event: ToolFinished, state: RunState) -> None:
    state.pending_calls.pop(event.call_id, None)
    state.recent.append(
        RecentPayload(
            call_id=event.call_id,
            tool=event.name,
            ok=event.ok,
            payload=event.payload,
            artifact_id=event.artifact.id if event.artifact else None,
            seq=event.seq,
        )
    )
    if len(state.recent) > RECENT_WINDOW:
        del state.recent[0]


@_on(StatePatched)
def _state_patched(event: StatePatched, state: RunState) -> None:
    apply_patch(state, event.ops, event.seq)


@_on(PatchRejected)
def _patch_rejected(event: PatchRejected, state: RunState) -> None:
    state.patches_rejected += 1


def _update_step(state: RunState, step_id: str, **update: Any) -> None:
    step = state.plan.get(step_id)
    if step is not None:  # a step dropped by a later plan revision keeps its history in the log only
        state.plan[step_id] = step.model_copy(update=update)


@_on(StepStarted)
def _step_started(event: StepStarted, state: RunState) -> None:
    _update_step(state, event.step_id, status="running", attempts=event.attempt)


@_on(StepSucceeded)
def _step_succeeded(event: StepSucceeded, state: RunState) -> None:
    _update_step(state, event.step_id, status="succeeded", result=event.result, payload=event.payload, error=None)


@_on(StepFailed)
def _step_failed(event: StepFailed, state: RunState) -> None:
    status = "pending" if event.next_attempt_at is not None else "failed"
    _update_step(state, event.step_id, status=status, error=event.error)


@_on(StepSkipped)
def _step_skipped(event: StepSkipped, state: RunState) -> None:
    _update_step(state, event.step_id, status="skipped", error=event.reason)


@_on(RunFinished)
def _run_finished(event: RunFinished, state: RunState) -> None:
    state.status = event.status
    state.reason = event.reason or None
    if event.reply is not None:
        state.reply = event.reply
    state.waiting_on = None


def apply(state: RunState, event: Event | dict[str, Any]) -> RunState:
    """Fold one event onto ``state`` *in place* and return it.

    The cost depends on the event, not on the size of the state. Use ``fold`` (or
    ``state.clone()`` first) when the input state must stay as it was.
    """
    if isinstance(event, dict):
        event = decode_event(event)
    _apply(event, state)
    state.__dict__["last_seq"] = event.seq
    return state


def fold(events: Iterable[Event], start: RunState | None = None) -> RunState:
    """The state after ``events``, starting from ``start`` (or an empty state).

    ``fold(a + b) == fold(b, start=fold(a))`` for any split; ``start`` is not modified.
    """
    state = start.clone() if start is not None else RunState()
    fields = state.__dict__
    for event in events:
        handler = _FOLDERS.get(type(event))
        if handler is None:
            _apply(event, state)  # raises, naming the type
        else:
            handler(event, state)
        fields["last_seq"] = event.seq
    return state


def diff_states(a: RunState, b: RunState) -> list[dict[str, Any]]:
    """RFC 6902 operations that turn state ``a`` into state ``b``."""
    return list(jsonpatch.make_patch(a.to_json(), b.to_json()).patch)
