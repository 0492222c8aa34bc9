"""The run state: what is known about a run at one seq (``RunState`` and the values inside it).

The state is only ever built by folding events (``agentcore.core.fold.fold``). Values inside it
(facts, steps, questions, payloads) are frozen models; only the containers change as events apply.
"""

from __future__ import annotations

import copy
from collections.abc import MutableMapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_serializer

from agentcore.core.events import ArtifactRef, RunStatus, ToolCall
from agentcore.core.lazy_facts import LazyFacts
from agentcore.core.patches import FactInput
from agentcore.core.plans import FailurePolicy, RetryPolicy, Step, StepStatus
from agentcore.core.values import FROZEN, TokenUsage

RECENT_WINDOW = 8
"""How many recent tool payloads the state keeps for the controller."""

KEPT_STATUSES: tuple[StepStatus, ...] = ("succeeded", "running")
"""Statuses of steps that a new plan keeps as they are (finished or under way)."""


class Fact(FactInput):
    """A known fact, with the seq of the event that set it."""

    seq: int = 0


class Question(BaseModel):
    """An open (or answered) question."""

    model_config = FROZEN
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

    model_config = FROZEN
    call_id: str
    tool: str
    ok: bool
    payload: str
    artifact_id: str | None = None
    seq: int


class RunState(BaseModel):
    """Everything known about a run at one seq; always ``fold(events)``."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use, as ``FROZEN`` models

    run_id: str = ""
    task: str = ""
    status: RunStatus = "running"
    plan: dict[str, StepState] = Field(default_factory=dict)
    """Steps by id, in plan order."""
    on_failure: FailurePolicy = "skip_dependents"
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    max_parallel: int = 4
    known_facts: MutableMapping[str, Fact] = Field(default_factory=dict)
    """Facts by key, in the order they were first set: a ``dict``, or after a snapshot load a
    ``LazyFacts`` that decodes the stored values on first read (same mapping, same equality)."""
    open_questions: dict[str, Question] = Field(default_factory=dict)
    recent: list[RecentPayload] = Field(default_factory=list)
    """The last ``RECENT_WINDOW`` tool payloads, oldest first."""
    pending_calls: dict[str, ToolCall] = Field(default_factory=dict)
    """Tool calls started and not yet finished (after a crash: to be re-run or given up)."""
    waiting_on: str | None = None
    """The question put to the user while ``status`` is ``waiting_for_user``."""
    usage: dict[str, TokenUsage] = Field(default_factory=dict)
    """Token usage per LLM role."""
    cost_usd: float = 0.0
    """Dollars of the LLM calls that have a known price (``LLMCalled.cost_usd``)."""
    unpriced_calls: int = 0
    """LLM calls whose model has no known price (their cost is unknown, not 0)."""
    decisions: int = 0
    llm_calls: int = 0
    patches_rejected: int = 0
    reply: str | None = None
    reason: str | None = None
    last_seq: int = 0

    @field_serializer("known_facts", mode="wrap")
    def _dump_facts(self, facts: MutableMapping[str, Fact], handler: SerializerFunctionWrapHandler) -> Any:
        return handler(facts.to_dict() if isinstance(facts, LazyFacts) else facts)

    @property
    def tokens(self) -> int:
        """Total tokens over all roles."""
        return sum(u.total_tokens for u in self.usage.values())

    @property
    def finished(self) -> bool:
        """Whether the run has ended (succeeded, failed or cancelled)."""
        return self.status in ("succeeded", "failed", "cancelled")

    def to_json(self) -> dict[str, Any]:
        """The state as a JSON document (what RFC 6902 paths address)."""
        return self.model_dump(mode="json")

    def clone(self) -> RunState:
        """An independent copy: nothing mutable is shared with ``self``.

        Containers are copied, and so are the JSON ``arguments`` dicts inside plan steps and
        pending calls (frozen models, but their dicts can still be edited in place). Frozen values
        made only of scalars and tuples (facts, questions, payloads, usage) are shared, and so is a
        still undecoded facts section (it is decoded at most once).
        """
        new = self.model_copy()
        fields = new.__dict__
        fields["plan"] = {k: owned(s) for k, s in self.plan.items()}
        fields["pending_calls"] = {k: owned(c) for k, c in self.pending_calls.items()}
        facts = self.known_facts
        fields["known_facts"] = facts.copy() if isinstance(facts, LazyFacts) else dict(facts)
        for name in ("open_questions", "usage"):
            fields[name] = dict(getattr(self, name))
        fields["recent"] = list(self.recent)
        return new


def step_state(step: Step) -> StepState:
    """A new plan step's progress record (pending, no attempts), sharing nothing mutable with ``step``.

    Built from the step's fields without validating them again (a ``Step`` is valid; the fold makes
    one record per plan step): what ``StepState.model_validate`` of the step's fields that are not
    ``None`` gives, with the ``arguments`` copied.
    """
    given = step.__dict__
    values = {**_STEP_DEFAULTS, **given}  # a Step's None fields are None by default in a StepState
    values["arguments"] = copy_json(given["arguments"])
    new = StepState.__new__(StepState)
    _set(new, "__dict__", values)
    _set(new, "__pydantic_fields_set__", {name for name, value in given.items() if value is not None})
    _set(new, "__pydantic_extra__", None)
    _set(new, "__pydantic_private__", None)
    return new


_set = object.__setattr__


def step_with(step: StepState, update: dict[str, Any]) -> StepState:
    """A copy of a step record with the fields in ``update`` replaced (what ``model_copy(update=)``
    gives, at about half its cost: the fold makes one per step status change).

    Not validated: the values come from events, which are. Like ``model_copy`` the copy is
    shallow (the records are frozen; ``RunState.clone`` copies the ``arguments`` dicts).
    """
    new = StepState.__new__(StepState)
    _set(new, "__dict__", {**step.__dict__, **update})
    _set(new, "__pydantic_fields_set__", step.__pydantic_fields_set__ | update.keys())
    _set(new, "__pydantic_extra__", None)
    _set(new, "__pydantic_private__", None)
    return new


_STEP_DEFAULTS: dict[str, Any] = {
    name: info.get_default(call_default_factory=True) for name, info in StepState.model_fields.items()
}
"""A new step record's values before the step's own (``arguments`` is copied per record)."""

_M = TypeVar("_M", StepState, ToolCall)


def owned(value: _M) -> _M:
    """A copy of a step or tool call whose ``arguments`` (nested JSON) share nothing with ``value``."""
    new = copy.copy(value)
    new.__dict__["arguments"] = copy_json(value.arguments)
    return new


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists and scalars): faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: v if type(v) in _SCALARS else copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in _SCALARS else copy_json(v) for v in value]
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""JSON values that are immutable: ``copy_json`` keeps them as they are without a call per value."""
