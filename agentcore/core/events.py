"""Events: the only record of what happened in a run.

Every event is a frozen pydantic model named in the past tense, tagged by ``type`` and carrying
``run_id``, ``seq`` (1..n within a run, no gaps), ``at`` (set by the writer; the fold never reads a
clock), ``caused_by`` (the seq that led to it: the provenance chain) and a schema version ``v``.
How events are stored and read back (schema versions, upcasters, ``decode_event``,
``encode_event``, ``EVENT_ADAPTER``) is ``agentcore.core.event_codec``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from agentcore.core.patches import PatchOp
from agentcore.core.plans import Plan
from agentcore.core.values import FROZEN, Role, TokenUsage, redacted_strings
from agentcore.errors import EventError

__all__ = (
    "ArtifactRef",
    "BaseEvent",
    "Decided",
    "Decision",
    "EVENT_TYPES",
    "Event",
    "LLMCalled",
    "PatchRejected",
    "redacted",
    "Role",
    "RunConfig",
    "RunFinished",
    "RunStarted",
    "RunStatus",
    "StatePatched",
    "StepFailed",
    "StepSkipped",
    "StepStarted",
    "StepSucceeded",
    "TokenUsage",
    "ToolCall",
    "ToolFinished",
    "ToolStarted",
    "UserMessaged",
)

RunStatus = Literal["running", "waiting_for_user", "succeeded", "failed", "cancelled"]


class ToolCall(BaseModel):
    """A tool call decided by the controller (or a plan step)."""

    model_config = FROZEN
    id: str
    """Call id, unique within the run; results are recorded in call-id order."""
    name: str
    arguments: dict[str, JsonValue] = Field(default_factory=dict)


class ArtifactRef(BaseModel):
    """A pointer to raw bytes in the artifact store."""

    model_config = FROZEN
    id: str
    """``sha256:<hex>`` of the bytes."""
    size: int = Field(ge=0)
    media_type: str = "application/octet-stream"


class Decision(BaseModel):
    """What the controller chose: call tools, ask the user, or reply."""

    model_config = FROZEN
    kind: Literal["tool_calls", "ask_user", "reply"]
    tool_calls: tuple[ToolCall, ...] = ()
    question: str | None = None
    reply: str | None = None
    thought: str | None = None
    """The model's short reason, when it gave one."""


class BaseEvent(BaseModel):
    """Fields every event has."""

    model_config = FROZEN
    v: int = 1
    run_id: str
    seq: int = Field(ge=1)
    at: datetime
    caused_by: int | None = None
    type: str
    """The event's tag (``run_started``, ...): each event class fixes it with a ``Literal``."""


class RunConfig(BaseModel):
    """``RunStarted.config`` read as typed values (``RunStarted.run_config()``).

    ``Agent.config()`` and ``PlanRunner.config()`` write these keys; keys this version does not
    know are kept (``extra="allow"``) so a newer writer's config still reads.
    """

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False, defer_build=True)
    runner: str = "agent"
    """``"agent"`` (``Agent``) or ``"plan"`` (``PlanRunner``)."""
    controller_model: str | None = None
    processor_model: str | None = None
    planner_model: str | None = None
    tools: tuple[str, ...] = ()
    max_steps: int | None = None
    max_tokens: int | None = None
    max_output_retries: int | None = None
    max_patch_retries: int | None = None
    payload_chars: int | None = None
    max_cost_usd: float | None = None
    prices: dict[str, JsonValue] | None = None
    """User prices per model name, recorded only when given (``Agent(prices=...)``)."""
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    """The caller's JSON facts about the set-up (``Agent(metadata=...)``)."""

    def model_name(self, role: Role) -> str | None:
        """The recorded model name for ``role`` (``None`` when not recorded)."""
        names = {"controller": self.controller_model, "processor": self.processor_model}
        return names.get(role, self.planner_model)


class RunStarted(BaseEvent):
    type: Literal["run_started"] = "run_started"
    task: str
    plan: Plan | None = None
    config: dict[str, JsonValue] = Field(default_factory=dict)
    """How the run was set up (model names, tool names, budgets); never secrets."""

    def run_config(self) -> RunConfig:
        """``config`` as typed values.

        Raises:
            EventError: a known key holds a value of the wrong type.
        """
        try:
            return RunConfig.model_validate(self.config)
        except ValidationError as e:
            raise EventError(f"run {self.run_id!r}: its recorded config does not read: {e}") from None


class UserMessaged(BaseEvent):
    type: Literal["user_messaged"] = "user_messaged"
    text: str
    question: str | None = None
    """The question this message answers, when the run was waiting on one."""


class LLMCalled(BaseEvent):
    v: int = 2
    type: Literal["llm_called"] = "llm_called"
    role: Role
    model: str
    request_digest: str
    request_artifact: ArtifactRef | None = None
    """The full request body, stored as an artifact (it can be large)."""
    response: dict[str, Any] = Field(default_factory=dict)
    """The parsed response (content, tool calls) as the model gave it."""
    usage: TokenUsage = Field(default_factory=TokenUsage)
    latency_ms: float = 0.0
    attempt: int = 1
    ok: bool = True
    error: str | None = None
    """Why the response was not usable (parse or validation error), when ``ok`` is false."""
    step_id: str | None = None
    cost_usd: float | None = Field(default=None, ge=0)
    """What the call cost in US dollars, priced when it was recorded (the caller's prices, then
    ``genai-prices``); ``None`` when the model has no known price (never ``0`` for "unknown")."""


class Decided(BaseEvent):
    type: Literal["decided"] = "decided"
    decision: Decision
    step_id: str | None = None


class ToolStarted(BaseEvent):
    type: Literal["tool_started"] = "tool_started"
    call: ToolCall
    idempotency_key: str
    step_id: str | None = None


class ToolFinished(BaseEvent):
    type: Literal["tool_finished"] = "tool_finished"
    call_id: str
    name: str
    ok: bool
    payload: str
    """The short result the controller sees."""
    artifact: ArtifactRef | None = None
    error: str | None = None
    duration_ms: float = 0.0
    step_id: str | None = None


class StatePatched(BaseEvent):
    type: Literal["state_patched"] = "state_patched"
    ops: tuple[PatchOp, ...]
    source: str = "processor"


class PatchRejected(BaseEvent):
    type: Literal["patch_rejected"] = "patch_rejected"
    ops: tuple[dict[str, Any], ...] = ()
    error: str
    op_index: int | None = None
    path: str | None = None
    attempt: int = 1


class StepStarted(BaseEvent):
    type: Literal["step_started"] = "step_started"
    step_id: str
    attempt: int = Field(ge=1)
    idempotency_key: str


class StepSucceeded(BaseEvent):
    v: int = 2
    type: Literal["step_succeeded"] = "step_succeeded"
    step_id: str
    attempt: int = Field(ge=1)
    payload: str = ""
    result: ArtifactRef | None = None
    worker: str | None = None
    """The worker that ran the attempt when a plan's steps are spread over workers (``None``: the
    process that drives the run ran it). Not part of the state."""


class StepFailed(BaseEvent):
    v: int = 3
    type: Literal["step_failed"] = "step_failed"
    step_id: str
    attempt: int = Field(ge=1)
    error: str
    kind: str = "error"
    """Failure class used by retry policies (``timeout``, ``rate_limit``, ``validation``, ...);
    ``deadline`` when the run's deadline stopped the attempt, ``cancelled`` when an ``abort`` did."""
    retryable: bool = False
    next_attempt_at: datetime | None = None
    """When the next try is due; ``None`` when the step will not be tried again."""
    worker: str | None = None
    """The worker that ran the attempt (see ``StepSucceeded.worker``)."""


class StepSkipped(BaseEvent):
    type: Literal["step_skipped"] = "step_skipped"
    step_id: str
    reason: str


class RunFinished(BaseEvent):
    type: Literal["run_finished"] = "run_finished"
    status: Literal["succeeded", "failed", "cancelled"]
    reason: str = ""
    reply: str | None = None


Event = Annotated[
    RunStarted
    | UserMessaged
    | LLMCalled
    | Decided
    | ToolStarted
    | ToolFinished
    | StatePatched
    | PatchRejected
    | StepStarted
    | StepSucceeded
    | StepFailed
    | StepSkipped
    | RunFinished,
    Field(discriminator="type"),
]
EVENT_TYPES: dict[str, type[BaseEvent]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        RunStarted, UserMessaged, LLMCalled, Decided, ToolStarted, ToolFinished, StatePatched,
        PatchRejected, StepStarted, StepSucceeded, StepFailed, StepSkipped, RunFinished,
    )
}  # fmt: skip
"""Event class by type tag."""


E = TypeVar("E", bound=BaseEvent)


def redacted(event: E, redact: Callable[[str], str]) -> E:
    """``event`` with ``redact`` applied to every string it holds (``redacted_strings``: never to
    its JSON syntax), validated again as its own class; ``event`` itself when nothing changed."""
    data = event.model_dump(mode="json")
    clean = redacted_strings(data, redact)
    return event if clean == data else type(event).model_validate_json(json.dumps(clean, ensure_ascii=False))
