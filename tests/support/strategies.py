"""Hypothesis strategies for agentcore's events, patch ops and plans (importable by any test file).

- ``json_values()``: JSON-native values (no NaN, no tuples) that survive a JSON round trip.
- ``events()``: any single event of any type, every optional field exercised.
- ``patch_ops(state)``: typed patch ops, valid or not, naming ids of ``state`` about half the time.
- ``event_logs()``: a valid log (what a store holds): consecutive seqs, ``RunStarted`` first, and
  every ``StatePatched`` checked against the state before it (a failing patch is logged as
  ``PatchRejected`` instead, as the runtime does). Invariant 2: every stored event applies.
"""

from __future__ import annotations

import string
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from agentcore.core.events import (
    ArtifactRef,
    BaseEvent,
    Decided,
    Decision,
    LLMCalled,
    PatchRejected,
    RunFinished,
    RunStarted,
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
)
from agentcore.core.fold import RunState, apply, check_patch
from agentcore.core.patches import (
    AddOpenQuestions,
    AnswerQuestion,
    AppendKnownFacts,
    FactInput,
    JsonPatch,
    QuestionInput,
    ReplacePlan,
    SetStepStatus,
)
from agentcore.core.plans import Plan, RetryPolicy, Step
from agentcore.errors import PatchError

RUN_ID = "run_test"

# ids include "/" and "~" on purpose: they must be escaped in RFC 6902 paths
ids = st.text(alphabet=string.ascii_lowercase + string.digits + "_-/~", min_size=1, max_size=8)
texts = st.text(max_size=30)
small_ints = st.integers(min_value=0, max_value=10_000)
finite_floats = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | texts
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)
json_objects = st.dictionaries(texts, json_values, max_size=4)

# lighter values for the nested parts of logs (plans, patch ops): generating rich text and deep
# JSON dominates the cost of the log properties, and the round-trip tests use the rich ones
short_texts = st.text(alphabet=string.ascii_letters + ' /~é\n"', max_size=8)
light_values = st.none() | st.booleans() | st.integers(-5, 5) | short_texts | st.lists(st.integers(0, 3), max_size=2)
light_objects = st.dictionaries(short_texts, light_values, max_size=2)

# aware (UTC or a whole-minute offset) or naive; pydantic writes offsets to the minute
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
datetimes = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.none() | st.just(timezone.utc) | offsets,
)

artifact_refs = st.builds(
    ArtifactRef,
    id=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h),
    size=small_ints,
    media_type=st.sampled_from(["application/json", "text/plain", "application/octet-stream"]),
)
token_usages = st.builds(TokenUsage, prompt_tokens=small_ints, completion_tokens=small_ints, total_tokens=small_ints)
tool_calls = st.builds(ToolCall, id=ids, name=ids, arguments=json_objects)
retry_policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 10),
    base_delay=st.floats(0, 10),
    max_delay=st.floats(0, 100),
    jitter=st.booleans(),
    retry_on=st.lists(st.sampled_from(["timeout", "rate_limit", "validation"]), max_size=3, unique=True).map(tuple),
)


_index = st.integers(0, 2**16)
_coin = st.booleans()
_policies = st.sampled_from(["abort", "skip_dependents", "continue"])
_statuses = st.sampled_from(["pending", "running", "succeeded", "failed", "skipped"])
_dep_counts = st.integers(0, 3)
_opt_ids = st.none() | ids
_opt_texts = st.none() | short_texts
_opt_retry = st.none() | retry_policies
_opt_policy = st.none() | _policies
_opt_timeout = st.none() | st.floats(0.1, 100)
_step_id_lists = {n: st.lists(ids, max_size=n, unique=True) for n in (4, 6)}
# strategies are built once, here: building them inside draws makes generation several times slower


def pick(draw: st.DrawFn, pool: list[str] | tuple[str, ...], fresh: st.SearchStrategy[str] = ids) -> str:
    """An id from ``pool`` (existing keys) about half the time, else a fresh one."""
    if pool and draw(_coin):
        return pool[draw(_index) % len(pool)]
    return draw(fresh)


@st.composite
def step_lists(draw: st.DrawFn, max_size: int = 6, known: tuple[str, ...] = ()) -> list[Step]:
    """Steps that form a DAG: each depends only on earlier ones (or on ``known`` ids)."""
    step_ids = draw(_step_id_lists[max_size])
    steps: list[Step] = []
    for i, sid in enumerate(step_ids):
        earlier = [*step_ids[:i], *known]
        after = {earlier[draw(_index) % len(earlier)] for _ in range(draw(_dep_counts))} if earlier else set()
        steps.append(
            Step(
                id=sid,
                description=draw(short_texts),
                after=tuple(sorted(after)),
                tool=draw(_opt_ids),
                arguments=draw(light_objects),
                retry=draw(_opt_retry),
                on_failure=draw(_opt_policy),
                timeout_s=draw(_opt_timeout),
            )
        )
    return steps


plans = st.builds(
    Plan,
    steps=step_lists().map(tuple),
    on_failure=_policies,
    retry=retry_policies,
    max_parallel=st.integers(1, 16),
)
fact_inputs = st.builds(
    FactInput,
    key=ids,
    value=short_texts,
    source=st.sampled_from(["", "user", "model", "call_1"]),
    artifact_id=st.none() | artifact_refs.map(lambda r: r.id),
    confidence=st.floats(0, 1),
)
question_inputs = st.builds(QuestionInput, id=ids, text=short_texts.filter(bool))
_fact_lists = st.lists(fact_inputs, min_size=1, max_size=3)
_question_lists = st.lists(question_inputs, min_size=1, max_size=3)
_op_kinds = st.sampled_from(["facts", "questions", "answer", "status", "plan", "raw"])
_raw_fields = ["known_facts", "open_questions", "plan", "status", "task", "reply", "decisions", "nope"]
_raw_ops = st.sampled_from(["add", "replace", "remove", "test"])
_raw_values = light_values | st.sampled_from(["succeeded", "running", "waiting_for_user"])
_raw_counts = st.integers(1, 3)
_run_statuses = st.sampled_from(["running", "waiting_for_user", "succeeded", "sleeping"])


def _esc(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


@st.composite
def raw_json_patches(draw: st.DrawFn, state: RunState | None = None) -> JsonPatch:
    """Raw RFC 6902 ops on the state document: about half shaped to succeed, the rest anything."""
    facts = tuple(state.known_facts) if state is not None else ()
    ops: list[dict[str, Any]] = []
    for _ in range(draw(_raw_counts)):
        if draw(_coin):
            key = pick(draw, facts)
            template = draw(_index) % 4
            if template == 0:
                ops.append({"op": "replace", "path": "/task", "value": draw(short_texts)})
            elif template == 1:
                value = {"key": key, "value": draw(short_texts)}
                ops.append({"op": "add", "path": "/known_facts/" + _esc(key), "value": value})
            elif template == 2:
                ops.append({"op": "remove", "path": "/known_facts/" + _esc(key)})
            else:
                ops.append({"op": "replace", "path": "/status", "value": draw(_run_statuses)})
            continue
        path = "/" + _raw_fields[draw(_index) % len(_raw_fields)]
        if draw(_coin):
            path += "/" + _esc(pick(draw, facts))
        op: dict[str, Any] = {"op": draw(_raw_ops), "path": path}
        if draw(_coin) or op["op"] != "remove":
            op["value"] = draw(_raw_values)
        ops.append(op)
    return JsonPatch(patch=tuple(ops))


@st.composite
def patch_ops(draw: st.DrawFn, state: RunState | None = None) -> Any:
    """Any typed op, valid or not; about half the ids it names exist in ``state``."""
    questions = tuple(state.open_questions) if state is not None else ()
    plan_ids = tuple(state.plan) if state is not None else ()
    kind = draw(_op_kinds)
    if kind == "facts":
        return AppendKnownFacts(facts=tuple(draw(_fact_lists)))
    if kind == "questions":
        return AddOpenQuestions(questions=tuple(draw(_question_lists)))
    if kind == "answer":
        return AnswerQuestion(id=pick(draw, questions), answer=draw(short_texts))
    if kind == "status":
        return SetStepStatus(step_id=pick(draw, plan_ids), status=draw(_statuses), error=draw(_opt_texts))
    if kind == "plan":
        return ReplacePlan(steps=tuple(draw(step_lists(max_size=4, known=plan_ids))), on_failure=draw(_opt_policy))
    return draw(raw_json_patches(state))


def _base(seq: int) -> dict[str, Any]:
    return {"run_id": RUN_ID, "seq": seq}


def event_of(cls: type[BaseEvent], seq: int | None = None, run_id: str | None = None) -> st.SearchStrategy[BaseEvent]:
    """One event of class ``cls`` with every field drawn (optional ones sometimes ``None``)."""
    common = {
        "run_id": ids if run_id is None else st.just(run_id),
        "seq": st.integers(1, 10**9) if seq is None else st.just(seq),
        "at": datetimes,
        "caused_by": st.none() | st.integers(1, 10**9),
    }
    fields: dict[str, st.SearchStrategy[Any]] = {
        RunStarted: {"task": texts, "plan": st.none() | plans, "config": json_objects},
        UserMessaged: {"text": texts, "question": st.none() | texts},
        LLMCalled: {
            "role": st.sampled_from(["controller", "processor", "planner"]),
            "model": ids,
            "request_digest": ids,
            "request_artifact": st.none() | artifact_refs,
            "response": json_objects,
            "usage": token_usages,
            "latency_ms": finite_floats,
            "attempt": st.integers(1, 5),
            "ok": st.booleans(),
            "error": st.none() | texts,
            "step_id": st.none() | ids,
        },
        Decided: {
            "decision": st.builds(
                Decision,
                kind=st.sampled_from(["tool_calls", "ask_user", "reply"]),
                tool_calls=st.lists(tool_calls, max_size=3).map(tuple),
                question=st.none() | texts,
                reply=st.none() | texts,
                thought=st.none() | texts,
            ),
            "step_id": st.none() | ids,
        },
        ToolStarted: {"call": tool_calls, "idempotency_key": ids, "step_id": st.none() | ids},
        ToolFinished: {
            "call_id": ids,
            "name": ids,
            "ok": st.booleans(),
            "payload": texts,
            "artifact": st.none() | artifact_refs,
            "error": st.none() | texts,
            "duration_ms": finite_floats,
            "step_id": st.none() | ids,
        },
        StatePatched: {"ops": st.lists(patch_ops(), min_size=1, max_size=3).map(tuple), "source": ids},
        PatchRejected: {
            "ops": st.lists(json_objects, max_size=2).map(tuple),
            "error": texts,
            "op_index": st.none() | small_ints,
            "path": st.none() | texts,
            "attempt": st.integers(1, 5),
        },
        StepStarted: {"step_id": ids, "attempt": st.integers(1, 5), "idempotency_key": ids},
        StepSucceeded: {
            "step_id": ids,
            "attempt": st.integers(1, 5),
            "payload": texts,
            "result": st.none() | artifact_refs,
        },
        StepFailed: {
            "step_id": ids,
            "attempt": st.integers(1, 5),
            "error": texts,
            "kind": st.sampled_from(["error", "timeout", "rate_limit", "validation"]),
            "retryable": st.booleans(),
            "next_attempt_at": st.none() | datetimes,
        },
        StepSkipped: {"step_id": ids, "reason": texts},
        RunFinished: {
            "status": st.sampled_from(["succeeded", "failed", "cancelled"]),
            "reason": texts,
            "reply": st.none() | texts,
        },
    }[cls]
    return st.builds(cls, **common, **fields)


def events() -> st.SearchStrategy[BaseEvent]:
    """Any one event of any type."""
    from agentcore.core.events import EVENT_TYPES

    return st.one_of(*(event_of(cls) for cls in EVENT_TYPES.values()))


AT = datetime(2025, 1, 1, tzinfo=timezone.utc)
_event_kinds = st.sampled_from(["patch", "patch", "patch", "llm", "decide", "tool", "step", "user", "finish"])
_step_events = st.sampled_from([StepStarted, StepSucceeded, StepFailed, StepSkipped])


_opt_plans = st.none() | plans


@st.composite
def event_logs(draw: st.DrawFn, max_events: int = 25) -> list[BaseEvent]:
    """A valid log of one run: what a store holds and what ``fold`` must never fail on."""
    state = RunState()
    log: list[BaseEvent] = []

    def add(event: BaseEvent) -> None:
        apply(state, event)
        log.append(event)

    add(RunStarted(**_base(1), at=AT, task=draw(short_texts), plan=draw(_opt_plans)))
    for _ in range(draw(st.integers(0, max_events))):
        seq = len(log) + 1
        at = AT + timedelta(seconds=seq)
        plan_ids = tuple(state.plan)
        pending = list(state.pending_calls)
        kind = draw(_event_kinds)
        if kind == "patch":
            ops = tuple(draw(patch_ops(state)) for _ in range(draw(_raw_counts)))
            try:
                check_patch(state, ops, seq)
            except PatchError as e:
                add(PatchRejected(**_base(seq), at=at, ops=(), error=e.reason, op_index=e.op_index, path=e.path))
            else:
                add(StatePatched(**_base(seq), at=at, ops=ops, caused_by=seq - 1))
        elif kind == "llm":
            role = ("controller", "processor", "planner")[draw(_index) % 3]
            add(LLMCalled(**_base(seq), at=at, role=role, model="m", request_digest="d", usage=draw(token_usages)))
        elif kind == "decide":
            kind = ("tool_calls", "ask_user", "reply")[draw(_index) % 3]
            text = draw(short_texts)
            decision = Decision(kind=kind, question=text if kind == "ask_user" else None, reply=text)
            add(Decided(**_base(seq), at=at, decision=decision))
        elif kind == "tool":
            if pending and draw(_coin):
                call_id = pending[draw(_index) % len(pending)]
                add(
                    ToolFinished(
                        **_base(seq), at=at, call_id=call_id, name="t", ok=draw(_coin), payload=draw(short_texts)
                    )
                )
            else:
                call = ToolCall(id=draw(ids), name="search", arguments=draw(light_objects))
                add(ToolStarted(**_base(seq), at=at, call=call, idempotency_key=f"{RUN_ID}/{call.id}"))
        elif kind == "step":
            sid = pick(draw, plan_ids)
            which = draw(_step_events)
            extra: dict[str, Any] = {
                StepStarted: {"attempt": 1, "idempotency_key": f"{RUN_ID}/{sid}/1"},
                StepSucceeded: {"attempt": 1, "payload": draw(short_texts)},
                StepFailed: {"attempt": 1, "error": "boom", "next_attempt_at": at if draw(_coin) else None},
                StepSkipped: {"reason": "dependency failed"},
            }[which]
            add(which(**_base(seq), at=at, step_id=sid, **extra))
        elif kind == "user":
            add(UserMessaged(**_base(seq), at=at, text=draw(short_texts)))
        else:
            add(RunFinished(**_base(seq), at=at, status="succeeded" if draw(_coin) else "failed"))
    return log
