"""The processor role: turn one tool result (or user answer) into a typed state patch.

The processor model sees a bounded view of the state (task, plan, fact keys, open questions) and
the one input to digest, and answers with a ``StatePatch``. Before anything is recorded the patch
is dry-run against the current state (``agentcore.core.fold.check_patch``): a patch that does not parse
or does not apply goes back to the model with the error, a bounded number of times. Only a patch
that applies is ever written as ``StatePatched``, so every stored event folds (invariant 2).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import JsonValue, ValidationError

from agentcore.core.clock import Clock
from agentcore.core.events import ToolCall, ToolFinished
from agentcore.core.fold import RunState, check_patch
from agentcore.core.patches import StatePatch
from agentcore.core.state import StepState
from agentcore.errors import ModelOutputError, PatchError
from agentcore.models.base import ChatMessage, ChatModel, ChatRequest, ChatResponse
from agentcore.roles.facts import fact_line, newest_facts
from agentcore.roles.patch_rules import check_new_patch
from agentcore.roles.turn import Attempt, Outcome, ask_until_valid, clip, clip_payload, load_prompt, read_model_json

__all__ = (
    "PatchAttempt",
    "PatchRefused",
    "ProcessorInput",
    "ProcessorOutcome",
    "build_processor_request",
    "parse_patch",
    "process",
    "rejected_ops",
)

PATCH_SCHEMA: dict[str, Any] = StatePatch.model_json_schema()
"""The JSON schema of the processor's answer."""

MAX_PAYLOAD_CHARS = 6000
MAX_CONTEXT_FACTS = 40
MAX_ANSWER_CHARS = 4000
MAX_FEEDBACK_CHARS = 2000


def _context(state: RunState) -> str:
    parts = [f"# Task\n{clip(state.task, 2000)}"]
    if state.plan:
        steps = [
            f"- {clip(s.id, 100)} [{s.status}]: {clip(s.description, 200)}" for s in list(state.plan.values())[:30]
        ]
        if len(state.plan) > 30:
            steps.append(f"({len(state.plan) - 30} more steps not shown)")
        parts.append("# Plan\n" + "\n".join(steps))
    if state.known_facts:
        newest = newest_facts(state, MAX_CONTEXT_FACTS)
        lines = [fact_line(f, key_chars=150, value_chars=150) for f in newest]
        more = len(state.known_facts) - len(newest)
        head = f"# Known facts (newest {len(newest)} of {len(state.known_facts)}; reuse a key to replace a fact)"
        parts.append(head + ("\n" + f"({more} older facts not shown)" if more else "") + "\n" + "\n".join(lines))
    open_qs = [q for q in state.open_questions.values() if q.status == "open"][:20]
    if open_qs:
        parts.append("# Open questions\n" + "\n".join(f"- {clip(q.id, 100)}: {clip(q.text, 300)}" for q in open_qs))
    return "\n\n".join(parts)


@dataclass(frozen=True, kw_only=True)
class ProcessorInput:
    """The one input a processor turn digests: a tool result (or finished plan step), or the
    user's answer. Build it with ``tool_result``, ``step_outcome`` or ``user_answer``."""

    kind: Literal["tool_result", "user_answer"]
    call_id: str = ""
    tool: str = ""
    arguments: dict[str, Any] | None = None
    """The call's arguments, when known."""
    ok: bool = True
    artifact: str | None = None
    """Id of the artifact holding the raw output."""
    error: str | None = None
    payload: str = ""
    question: str | None = None
    answer: str = ""

    @classmethod
    def tool_result(cls, finished: ToolFinished, call: ToolCall | None = None) -> ProcessorInput:
        """The input for a recorded tool result (``call`` shows its arguments)."""
        return cls(
            kind="tool_result",
            call_id=finished.call_id,
            tool=finished.name,
            arguments=dict(call.arguments) if call is not None else None,
            ok=finished.ok,
            artifact=finished.artifact.id if finished.artifact is not None else None,
            error=finished.error,
            payload=finished.payload,
        )

    @classmethod
    def step_outcome(cls, step: StepState) -> ProcessorInput:
        """The input for a finished plan step (its tool and arguments, or ``agent`` and its description)."""
        return cls(
            kind="tool_result",
            call_id=step.id,
            tool=step.tool or "agent",
            arguments=dict(step.arguments) or {"description": step.description},
            ok=step.status == "succeeded",
            artifact=step.result.id if step.result is not None else None,
            error=step.error,
            payload=step.payload or "",
        )

    @classmethod
    def user_answer(cls, text: str, question: str | None = None) -> ProcessorInput:
        """The input for the user's answer to ``question``."""
        return cls(kind="user_answer", answer=text, question=question)

    def inputs(self, max_payload_chars: int) -> dict[str, JsonValue]:
        """The structured view recorded as ``ChatRequest.inputs`` (the payload as shown)."""
        if self.kind == "user_answer":
            return {"input": self.kind, "question": self.question, "answer": clip(self.answer, MAX_ANSWER_CHARS)}
        return {
            "input": self.kind,
            "call_id": self.call_id,
            "tool": self.tool,
            "arguments": self.arguments,
            "ok": self.ok,
            "artifact": self.artifact,
            "error": self.error,
            "payload": clip_payload(self.payload, max_payload_chars),
        }

    def render(self, max_payload_chars: int) -> str:
        """The input as the processor's prompt shows it."""
        if self.kind == "user_answer":
            return "\n".join(
                [
                    "# Input: the user's answer",
                    f"question: {clip(self.question or '(none recorded)', 1000)}",
                    "answer:\n" + clip(self.answer, MAX_ANSWER_CHARS),
                    "(use source: user for facts taken from this answer)",
                ]
            )
        lines = ["# Input: a tool result", f"call id: {self.call_id or '?'}", f"tool: {self.tool or '?'}"]
        if self.arguments is not None:
            lines.append(f"arguments: {clip(json.dumps(self.arguments, ensure_ascii=False, sort_keys=True), 1000)}")
        lines.append(f"ok: {'true' if self.ok else 'false'}")
        lines.append(f"artifact: {self.artifact or 'none'}")
        if self.error:
            lines.append(f"error: {clip(self.error, 1000)}")
        lines.append("payload:\n" + clip_payload(self.payload, max_payload_chars))
        return "\n".join(lines)


def build_processor_request(
    state: RunState,
    source: ProcessorInput,
    *,
    feedback: str | None = None,
    max_payload_chars: int = MAX_PAYLOAD_CHARS,
) -> ChatRequest:
    """The processor's request for one input.

    Args:
        state: The state the patch will apply to.
        source: The tool result or user answer to digest.
        feedback: Why the previous patch was rejected.
        max_payload_chars: Characters of the payload shown.
    """
    messages = [
        ChatMessage(role="system", content=load_prompt("processor.md")),
        ChatMessage(role="user", content=_context(state) + "\n\n" + source.render(max_payload_chars)),
    ]
    if feedback:
        messages.append(
            ChatMessage(
                role="user",
                content="Your previous patch was rejected:\n"
                + clip(feedback, MAX_FEEDBACK_CHARS)
                + '\nSend the whole corrected patch as one JSON object {"ops": [...]}.',
            )
        )
    return ChatRequest(
        role="processor",
        messages=tuple(messages),
        response_schema=PATCH_SCHEMA,
        schema_name="state_patch",
        inputs=source.inputs(max_payload_chars),
    )


def parse_patch(response: ChatResponse) -> StatePatch:
    """Read a ``StatePatch`` from the processor's answer.

    Raises:
        ModelOutputError: the answer is empty, not JSON (or JSON agentcore cannot store: NaN,
            nesting too deep), or not a valid patch (pydantic's message).
    """
    content = (response.content or "").strip()
    if not content:
        raise ModelOutputError('your answer was empty; answer with one JSON object {"ops": [...]}')
    data = read_model_json(content)
    if isinstance(data, list):
        data = {"ops": data}  # a bare list of ops is a common slip; its meaning is unambiguous
    try:
        return StatePatch.model_validate(data)
    except ValidationError as e:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in e.errors()[:8]
        )
        raise ModelOutputError(f"your patch does not match the schema: {clip(details, 1500)}") from None


class PatchRefused(ModelOutputError):
    """A patch that parsed but does not apply to the state (from ``check_patch``'s ``PatchError``)."""

    def __init__(self, error: PatchError, ops: tuple[dict[str, Any], ...]) -> None:
        super().__init__(str(error))
        self.op_index = error.op_index
        self.path = error.path
        self.ops = ops


def _raw_ops(response: ChatResponse | None) -> tuple[dict[str, Any], ...]:
    """The ops of an answer as plain JSON, as far as they can be read (for the rejection record)."""
    if response is None or not response.content:
        return ()
    try:
        data = read_model_json(response.content)
    except ModelOutputError:
        return ()
    ops = data.get("ops") if isinstance(data, dict) else data
    if not isinstance(ops, list):
        return ()
    return tuple(op if isinstance(op, dict) else {"value": op} for op in ops)


def rejected_ops(attempt: PatchAttempt) -> tuple[dict[str, Any], ...]:
    """The ops of a refused attempt as plain JSON: the parsed patch's, or what can be read of the answer."""
    if isinstance(attempt.problem, PatchRefused):
        return attempt.problem.ops
    return _raw_ops(attempt.response)


PatchAttempt = Attempt[StatePatch]
"""One call to the processor model and what came of it (``value`` is the patch that applies)."""
ProcessorOutcome = Outcome[StatePatch]
"""All attempts at patching the state from one input (``value`` is the accepted patch)."""


async def process(
    model: ChatModel,
    state: RunState,
    source: ProcessorInput,
    *,
    max_attempts: int = 3,
    clock: Clock | None = None,
    tools: Collection[str] | None = None,
) -> ProcessorOutcome:
    """Get a patch that applies to ``state`` from the processor model.

    ``tools`` names the tools plan steps may call (a step naming another is refused and fed back);
    ``None`` does not check step tools.

    Each refused answer (bad JSON, schema violation, ``PatchError`` from the dry run or from the
    rules on new patches in ``agentcore.roles.patch_rules``, an answer cut short) goes back to the model with the error, ``max_attempts`` times at most. Model errors
    other than ``ModelOutputError`` stop at once (``outcome.fatal``); no exception from the model
    escapes. The state is not changed.
    """

    def parse(response: ChatResponse) -> StatePatch:
        patch = parse_patch(response)
        try:
            check_new_patch(state, patch.ops, tools)
            check_patch(state, patch.ops)
        except PatchError as e:
            raise PatchRefused(e, tuple(op.model_dump(mode="json") for op in patch.ops)) from None
        return patch

    return await ask_until_valid(
        model,
        lambda feedback: build_processor_request(state, source, feedback=feedback),
        parse,
        max_attempts,
        clock=clock,
    )
