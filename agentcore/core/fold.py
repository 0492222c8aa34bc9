"""The run state and the pure fold that computes it from events.

``fold(events)`` is the only way state comes to be: there is no other store of run state.
The fold is deterministic and does no I/O (timestamps and ids arrive on the events).

Invariant 9 (cost grows with the change, not the state): ``apply`` updates the state *in place*
and touches only what the event names, so folding one event costs the same whether the state
holds ten facts or a hundred thousand. ``fold(events, start)`` copies ``start`` once so callers'
states are never changed behind their back.

The state's model lives in ``state_model`` and patch application in ``state_patches``; this
module re-exports both, so ``agentcore.core.fold`` is the one place to import them from.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Any

from agentcore.core.event_codec import decode_event
from agentcore.core.events import (
    BaseEvent,
    Decided,
    Event,
    LLMCalled,
    PatchRejected,
    RunFinished,
    RunStarted,
    StatePatched,
    StepFailed,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    ToolCall,
    ToolFinished,
    ToolStarted,
    UserMessaged,
)
from agentcore.core.first_use import bind_on_first_use
from agentcore.core.json_patch import apply_json_patch, json_diff
from agentcore.core.plans import Plan
from agentcore.core.state import (
    RECENT_WINDOW,
    Fact,
    Question,
    RecentPayload,
    RunState,
    StepState,
    step_state,
    step_with,
)
from agentcore.core.transaction import apply_patch, check_patch, compile_patch

__all__ = [
    "RECENT_WINDOW",
    "Fact",
    "Question",
    "RecentPayload",
    "RunState",
    "StepState",
    "apply",
    "apply_json_patch",
    "apply_patch",
    "check_patch",
    "compile_patch",
    "diff_states",
    "fold",
]

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
    state.plan = {s.id: step_state(s) for s in plan.steps}
    state.on_failure = plan.on_failure
    state.retry = plan.retry
    state.max_parallel = plan.max_parallel


@_on(UserMessaged)
def _user_messaged(event: UserMessaged, state: RunState) -> None:
    if state.status == "waiting_for_user":
        state.status = "running"
    state.waiting_on = None


# The handlers of the most frequent events update the state's fields through ``__dict__`` and build
# values with their validators: pydantic's ``__setattr__`` and ``__init__`` cost more than the update
# (loading a state folds every event after its snapshot; see benchmarks W3).


@_on(LLMCalled)
def _llm_called(event: LLMCalled, state: RunState) -> None:
    fields = state.__dict__
    fields["llm_calls"] += 1
    usage = fields["usage"]
    prev = usage.get(event.role)
    usage[event.role] = event.usage if prev is None else prev + event.usage
    if event.cost_usd is None:
        fields["unpriced_calls"] += 1
    else:
        fields["cost_usd"] += event.cost_usd


@_on(Decided)
def _decided(event: Decided, state: RunState) -> None:
    state.__dict__["decisions"] += 1
    d = event.decision
    if d.kind == "ask_user":
        state.status = "waiting_for_user"
        state.waiting_on = d.question
    elif d.kind == "reply":
        state.reply = d.reply


_copy_call: Callable[[dict[str, Any]], ToolCall] = bind_on_first_use(
    globals(), "_copy_call", lambda: ToolCall.__pydantic_validator__.validate_python
)
_recent_payload: Callable[[dict[str, Any]], RecentPayload] = bind_on_first_use(
    globals(), "_recent_payload", lambda: RecentPayload.__pydantic_validator__.validate_python
)


@_on(ToolStarted)
def _tool_started(event: ToolStarted, state: RunState) -> None:
    # validating the call's fields again copies its arguments: the state never shares the event's dicts
    state.pending_calls[event.call.id] = _copy_call(event.call.__dict__)


@_on(ToolFinished)
def _tool_finished(event: ToolFinished, state: RunState) -> None:
    state.pending_calls.pop(event.call_id, None)
    recent = state.recent
    recent.append(
        _recent_payload(
            {
                "call_id": event.call_id,
                "tool": event.name,
                "ok": event.ok,
                "payload": event.payload,
                "artifact_id": event.artifact.id if event.artifact else None,
                "seq": event.seq,
            }
        )
    )
    if len(recent) > RECENT_WINDOW:
        del recent[0]


@_on(StatePatched)
def _state_patched(event: StatePatched, state: RunState) -> None:
    apply_patch(state, event.ops, event.seq)


@_on(PatchRejected)
def _patch_rejected(event: PatchRejected, state: RunState) -> None:
    state.patches_rejected += 1


def _update_step(state: RunState, step_id: str, **update: Any) -> None:
    step = state.plan.get(step_id)
    if step is not None:  # a step dropped by a later plan revision keeps its history in the log only
        state.plan[step_id] = step_with(step, update)


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

    ``fold(a + b) == fold(b, start=fold(a))`` for any split; ``start`` is not modified. The cyclic
    garbage collector is paused while the fold runs (see benchmarks W2); reference counting is not.

    Raises:
        PatchError: a ``StatePatched`` event does not apply (the log broke invariant 2).
        TypeError: an event of a type the fold has no case for.
    """
    state = start.clone() if start is not None else RunState()
    fields = state.__dict__
    # The fold allocates long-lived objects and makes no reference cycles, so the cyclic garbage
    # collector would only re-scan the growing state, again and again (a third of the time at
    # 100,000 facts; see benchmarks W2). Reference counting still frees all garbage meanwhile.
    paused = gc.isenabled()
    gc.disable()
    try:
        for event in events:
            handler = _FOLDERS.get(type(event))
            if handler is None:
                _apply(event, state)  # raises, naming the type
            else:
                handler(event, state)
            fields["last_seq"] = event.seq
    finally:
        if paused:
            gc.enable()
    return state


def diff_states(a: RunState, b: RunState) -> list[dict[str, Any]]:
    """RFC 6902 operations that turn state ``a`` into state ``b``."""
    return json_diff(a.to_json(), b.to_json())
