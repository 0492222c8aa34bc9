"""The controller role: show the model the compact state (``state_view``), read back its decision
(``decisions``), re-asking with the error while the answer is unusable (``turn.ask_until_valid``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentcore.core.clock import Clock
from agentcore.core.events import Decision
from agentcore.core.fold import RunState
from agentcore.errors import ModelOutputError
from agentcore.models.base import ChatMessage, ChatModel, ChatRequest, ChatResponse, ToolSpec
from agentcore.roles.decisions import ASK_USER, MAX_TOOL_CALLS_PER_DECISION, call_prefix_for, parse_decision
from agentcore.roles.state_view import (
    MAX_FACT_CHARS,
    MAX_FACTS,
    MAX_PAYLOAD_CHARS,
    MAX_RECENT_CHARS,
    ViewBudget,
    controller_view,
)
from agentcore.roles.turn import Attempt, Outcome, ask_until_valid, clip, load_prompt
from agentcore.tools.base import as_tool_spec

__all__ = (
    "ASK_USER",
    "MAX_TOOL_CALLS_PER_DECISION",
    "ControllerAttempt",
    "ControllerOutcome",
    "ReplyValidator",
    "as_tool_spec",
    "build_controller_request",
    "check_reply",
    "controller_view",
    "decide_with_retries",
    "parse_decision",
)

ASK_USER_SPEC = ToolSpec(
    name=ASK_USER,
    description="Ask the user a question when the task cannot go on without their answer. "
    "The run pauses until the user answers.",
    parameters={
        "type": "object",
        "properties": {"question": {"type": "string", "description": "The question, self-contained."}},
        "required": ["question"],
        "additionalProperties": False,
    },
)

MAX_FEEDBACK_CHARS = 2000


def build_controller_request(
    state: RunState,
    tools: Sequence[Any],
    *,
    feedback: str | None = None,
    max_fact_chars: int = MAX_FACT_CHARS,
    max_facts: int = MAX_FACTS,
    max_payload_chars: int = MAX_PAYLOAD_CHARS,
    max_recent_chars: int = MAX_RECENT_CHARS,
) -> ChatRequest:
    """The controller's request for ``state``: system prompt, compact state, offered tools.

    Args:
        state: The current state of the run.
        tools: The tools the controller may call (``Tool``, ``ToolSpec`` or spec dicts); the
            ``ask_user`` pseudo-tool is added.
        feedback: Why the previous answer was unusable, sent back so the model can fix it.
        max_fact_chars: Character budget of the known-facts section.
        max_facts: At most this many (newest) facts are listed.
        max_payload_chars: Characters shown of each recent tool payload.
        max_recent_chars: Character budget of the recent-results section.

    Returns:
        A request whose size is bounded independently of tool output sizes and fact counts.
    """
    specs = [as_tool_spec(t) for t in tools]
    if not any(s.name == ASK_USER for s in specs):
        specs.append(ASK_USER_SPEC)
    budget = ViewBudget(
        fact_chars=max_fact_chars, facts=max_facts, payload_chars=max_payload_chars, recent_chars=max_recent_chars
    )
    text, inputs = controller_view(state, budget)
    messages = [
        ChatMessage(role="system", content=load_prompt("controller.md")),
        ChatMessage(role="user", content=text),
    ]
    if feedback:
        messages.append(
            ChatMessage(
                role="user",
                content="Your previous answer could not be used:\n"
                + clip(feedback, MAX_FEEDBACK_CHARS)
                + "\nAnswer again, following the rules.",
            )
        )
    return ChatRequest(role="controller", messages=tuple(messages), tools=tuple(specs), inputs=inputs)


ReplyValidator = Callable[[str, RunState], str | None]
"""Checks a final reply against the state: returns why it is refused, or ``None`` to accept it."""


def check_reply(reply: str, state: RunState, validators: Sequence[ReplyValidator]) -> None:
    """Run ``validators`` on a final reply.

    Raises:
        ModelOutputError: a validator refused the reply (its reason, for the model to fix).
    """
    for validator in validators:
        problem = validator(reply, state)
        if problem:
            raise ModelOutputError(f"your reply was refused: {problem}")


ControllerAttempt = Attempt[Decision]
"""One call to the controller model and what came of it (``value`` is the decision)."""
ControllerOutcome = Outcome[Decision]
"""All attempts of one controller turn: a decision (``value``), or the reason there is none."""


async def decide_with_retries(
    model: ChatModel,
    state: RunState,
    tools: Sequence[Any],
    *,
    max_attempts: int = 3,
    reply_validators: Sequence[ReplyValidator] = (),
    clock: Clock | None = None,
) -> ControllerOutcome:
    """Ask for a decision, feeding unusable answers back with their error, ``max_attempts`` times at most.

    A final reply must pass every ``reply_validators`` check (see ``check_reply``); a refused reply
    is sent back with the reason like any other unusable answer. Model errors other than
    ``ModelOutputError`` end the turn at once (``outcome.fatal``); no exception from the model or
    the validators escapes (see ``agentcore.roles.turn.ask_until_valid``).
    """
    specs = [as_tool_spec(t) for t in tools]
    names = [s.name for s in specs]
    prefix = call_prefix_for(state)

    def parse(response: ChatResponse) -> Decision:
        decision = parse_decision(response, names, call_prefix=prefix)
        if decision.kind == "reply" and reply_validators:
            check_reply(decision.reply or "", state, reply_validators)
        return decision

    return await ask_until_valid(
        model,
        lambda feedback: build_controller_request(state, specs, feedback=feedback),
        parse,
        max_attempts,
        clock=clock,
    )
