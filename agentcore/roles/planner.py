"""The planner role: decompose a task into a ``Plan`` with a chat model.

The planner model answers with the JSON of a plan (``PLAN_SCHEMA``, steps with ``id``,
``description``, ``after`` and optionally a ``tool`` with ``arguments``). An answer that does not
parse, does not form a DAG (``validate_plan``: duplicate ids, unknown dependencies, cycles), names
an unknown tool or gives a tool arguments that do not fit its schema is sent back with the error,
``max_tries`` times at most. Every call is returned as a ``PlanAttempt`` so the caller (the plan
runner) records each one as ``LLMCalled(role="planner")``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from agentcore.core.clock import Clock
from agentcore.core.plans import Plan, Step
from agentcore.errors import ConfigError, ModelOutputError, PlanError
from agentcore.models.base import ChatMessage, ChatModel, ChatRequest, ChatResponse
from agentcore.roles.turn import Attempt, Outcome, ask_until_valid, clip, load_prompt, read_model_json
from agentcore.tools.base import as_tool_spec

__all__ = (
    "PLAN_SCHEMA",
    "PlanAttempt",
    "PlanDraft",
    "PlanningOutcome",
    "build_planner_request",
    "parse_plan",
    "plan_task",
)

MAX_TASK_CHARS = 8000
MAX_TOOL_CHARS = 1500
MAX_FEEDBACK_CHARS = 2000


class StepDraft(BaseModel):
    """A step as the planner writes it."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)
    description: str = ""
    after: list[str] = Field(default_factory=list)
    tool: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)


class PlanDraft(BaseModel):
    """The planner's answer."""

    model_config = ConfigDict(extra="forbid")
    steps: list[StepDraft] = Field(min_length=1)


PLAN_SCHEMA: dict[str, Any] = PlanDraft.model_json_schema()
"""The JSON schema of the planner's answer."""


PlanAttempt = Attempt[Plan]
"""One call to the planner model and what came of it (``value`` is the accepted plan)."""
PlanningOutcome = Outcome[Plan]
"""Every attempt at a plan; ``value`` is set when the last one was accepted."""


def build_planner_request(task: str, tools: Sequence[Any] = (), *, feedback: str | None = None) -> ChatRequest:
    """The planner's request: the task, the tools a step may call, and the last rejection, if any."""
    lines = [f"# Task\n{clip(task, MAX_TASK_CHARS)}", "# Tools a step may call directly"]
    specs = [as_tool_spec(t) for t in tools]
    for spec in specs:
        params = json.dumps(spec.parameters, sort_keys=True, separators=(",", ":"))
        lines.append(clip(f"- {spec.name}: {spec.description}\n  parameters: {params}", MAX_TOOL_CHARS))
    if not specs:
        lines.append("(none: every step is carried out by an agent from its description)")
    messages = [
        ChatMessage(role="system", content=load_prompt("planner.md")),
        ChatMessage(role="user", content="\n".join(lines)),
    ]
    if feedback:
        messages.append(
            ChatMessage(
                role="user",
                content="Your previous plan was rejected:\n"
                + clip(feedback, MAX_FEEDBACK_CHARS)
                + '\nSend the whole corrected plan as one JSON object {"steps": [...]}.',
            )
        )
    inputs: dict[str, JsonValue] = {"task": clip(task, MAX_TASK_CHARS), "tools": [spec.name for spec in specs]}
    return ChatRequest(
        role="planner", messages=tuple(messages), response_schema=PLAN_SCHEMA, schema_name="plan", inputs=inputs
    )


def _where(err: Any) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(answer)"


def parse_plan(response: ChatResponse, tools: Sequence[Any] = (), *, defaults: Plan | None = None) -> Plan:
    """Read and check the planner's answer.

    Args:
        response: The model's answer.
        tools: The tools steps may name (``Tool`` objects also get their arguments validated).
        defaults: A plan whose ``on_failure``, ``retry`` and ``max_parallel`` the result takes.

    Raises:
        ModelOutputError: the answer is not JSON (or JSON agentcore cannot store: NaN, nesting
            too deep) or not a plan (pydantic's message).
        PlanError: the steps do not form a DAG, name an unknown tool or give a tool bad arguments.
    """
    try:
        data = read_model_json(response.content or "")  # one JSON object among prose is read too
    except ModelOutputError as e:
        raise ModelOutputError(f"the answer is not a valid plan: {e}") from None
    try:
        draft = PlanDraft.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(answer)'}: {err['msg']}" for err in e.errors()
        )
        raise ModelOutputError(f"the answer is not a valid plan: {clip(problems, 1500)}") from None
    by_name = {as_tool_spec(t).name: t for t in tools}
    steps = []
    for s in draft.steps:
        if s.tool is not None:
            if s.tool not in by_name:
                choices = ", ".join(sorted(by_name)) or "none (leave tool null)"
                raise PlanError(f"step {s.id!r} names unknown tool {s.tool!r}; tools: {choices}")
            bind = getattr(by_name[s.tool], "bind", None)
            if callable(bind):
                try:
                    bind(s.arguments)
                except ValidationError as e:
                    bad = "; ".join(_where(err) + f": {err['msg']}" for err in e.errors())
                    raise PlanError(f"step {s.id!r}: bad arguments for tool {s.tool!r}: {bad}") from None
        elif s.arguments:
            raise PlanError(f"step {s.id!r} has arguments but no tool; name the tool or drop the arguments")
        steps.append(Step(id=s.id, description=s.description, after=tuple(s.after), tool=s.tool, arguments=s.arguments))
    base = defaults or Plan()
    try:
        return Plan(steps=tuple(steps), on_failure=base.on_failure, retry=base.retry, max_parallel=base.max_parallel)
    except ValidationError as e:  # a Step field out of range; DAG errors raise PlanError directly
        raise PlanError(f"the plan is invalid: {_where(e.errors()[0])}: {e.errors()[0]['msg']}") from None


async def plan_with_attempts(
    model: ChatModel,
    task: str,
    tools: Sequence[Any] = (),
    *,
    max_tries: int = 3,
    defaults: Plan | None = None,
    clock: Clock | None = None,
) -> PlanningOutcome:
    """Ask the planner model for a plan, re-asking with the error when the answer is invalid.

    Model errors other than ``ModelOutputError`` stop at once (``outcome.fatal``); no exception
    from the model escapes.

    Raises:
        ConfigError: ``max_tries`` < 1 or ``task`` is empty.
    """
    if not task.strip():
        raise ConfigError("the task to plan is empty; give the planner a task")
    return await ask_until_valid(
        model,
        lambda feedback: build_planner_request(task, tools, feedback=feedback),
        lambda response: parse_plan(response, tools, defaults=defaults),
        max_tries,
        refusals=(PlanError,),
        clock=clock,
    )


async def plan_task(
    model: ChatModel, task: str, tools: Sequence[Any] = (), *, max_tries: int = 3, defaults: Plan | None = None
) -> Plan:
    """Decompose ``task`` into a validated ``Plan`` (see ``plan_with_attempts``).

    Args:
        model: The planner model.
        task: What the plan must achieve.
        tools: ``Tool`` objects (or spec dicts) that steps may call directly.
        max_tries: Attempts, the first included.
        defaults: A plan whose ``on_failure``, ``retry`` and ``max_parallel`` the result takes.

    Raises:
        ModelOutputError: no valid plan after ``max_tries`` attempts (the last error is named).
        ModelError: the model failed for another reason.
    """
    outcome = await plan_with_attempts(model, task, tools, max_tries=max_tries, defaults=defaults)
    if outcome.fatal is not None:
        raise outcome.fatal
    if outcome.value is None:
        raise ModelOutputError(f"no valid plan after {len(outcome.attempts)} attempts: {outcome.reason}")
    return outcome.value
