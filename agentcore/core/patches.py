"""The processor's vocabulary: typed state-patch operations.

These are pure data (pydantic models with an ``op`` tag). ``agentcore.core.fold`` applies them,
compiles them to RFC 6902 and rejects the ones that do not fit the current state. The models are
strict (``extra="forbid"``) so a typo in an LLM's JSON fails loudly instead of being ignored.

The raw ``json_patch`` op carries RFC 6902 operations; ``agentcore.core.json_patch`` applies them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agentcore.core.plans import FailurePolicy, RetryPolicy, Step, StepStatus
from agentcore.core.values import FROZEN


class FactInput(BaseModel):
    """A fact as the processor states it; the state adds the ``seq`` that set it."""

    model_config = FROZEN

    key: str = Field(min_length=1, max_length=500)
    """Stable name of the fact; a later fact with the same key supersedes this one."""
    value: str
    """What is known, in words (for code search: include file:line)."""
    source: str = ""
    """Where it came from: a tool call id, ``user``, or ``model``."""
    artifact_id: str | None = None
    """The artifact holding the raw output the fact was read from."""
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)


class QuestionInput(BaseModel):
    """An open question to track until it is answered."""

    model_config = FROZEN

    id: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1)


class ReplacePlan(BaseModel):
    """Replace the plan; steps that already succeeded keep their status and result."""

    model_config = FROZEN
    op: Literal["replace_plan"] = "replace_plan"
    steps: tuple[Step, ...]
    on_failure: FailurePolicy | None = None
    """The plan's failure policy; unchanged when omitted."""
    retry: RetryPolicy | None = None
    """The plan's default retry policy; unchanged when omitted."""
    max_parallel: int | None = Field(default=None, ge=1, le=1024)
    """How many steps may run at once; unchanged when omitted."""


class AppendKnownFacts(BaseModel):
    """Add facts (or supersede facts with the same key)."""

    model_config = FROZEN
    op: Literal["append_known_facts"] = "append_known_facts"
    facts: tuple[FactInput, ...] = Field(min_length=1)


class AddOpenQuestions(BaseModel):
    """Add open questions; ids must be new."""

    model_config = FROZEN
    op: Literal["add_open_questions"] = "add_open_questions"
    questions: tuple[QuestionInput, ...] = Field(min_length=1)


class AnswerQuestion(BaseModel):
    """Mark an open question answered."""

    model_config = FROZEN
    op: Literal["answer_question"] = "answer_question"
    id: str
    answer: str


class SetStepStatus(BaseModel):
    """Set the status of a plan step; a succeeded step cannot be changed."""

    model_config = FROZEN
    op: Literal["set_step_status"] = "set_step_status"
    step_id: str
    status: StepStatus
    error: str | None = None


class JsonPatch(BaseModel):
    """Raw RFC 6902 operations on the state's JSON document (the escape hatch)."""

    model_config = FROZEN
    op: Literal["json_patch"] = "json_patch"
    patch: tuple[dict[str, Any], ...]


PatchOp = Annotated[
    ReplacePlan | AppendKnownFacts | AddOpenQuestions | AnswerQuestion | SetStepStatus | JsonPatch,
    Field(discriminator="op"),
]


class StatePatch(BaseModel):
    """What the processor returns: a list of ops applied all together or not at all."""

    model_config = FROZEN
    ops: tuple[PatchOp, ...] = ()


PATCH_OP_ADAPTER: TypeAdapter[PatchOp] = TypeAdapter(PatchOp, config=ConfigDict(defer_build=True))
