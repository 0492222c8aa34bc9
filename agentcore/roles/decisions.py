"""The controller's decision: read a model answer as tool calls, a question for the user or a reply.

The model answers with native tool calls, a call to the ``ask_user`` pseudo-tool, a JSON decision
(``{"tool_calls": [...]}``, ``{"tool_calls": [], "content": "..."}``, ``{"reply": "..."}``,
``{"ask_user": "..."}``) or plain text, which is the final reply. An answer is a JSON decision only
when it IS one JSON object (a Markdown fence around it and a short lead-in line ending in ``:`` are
tolerated, see ``agentcore.models.json_decisions.json_answer``, which also reads the call list);
JSON quoted inside prose leaves the answer plain text, except a decision in a code fence that
calls only known tools or asks the user (``fenced_decision``): that answer is refused and re-asked,
since the model meant to act and taking it as the reply would end the run with JSON as its answer. Anything else is a ``ModelOutputError``
whose message is written to be fed back to the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from agentcore.core.events import Decision, ToolCall
from agentcore.core.fold import RunState
from agentcore.core.json_text import JSONTextError, NotJSON, read_json
from agentcore.errors import ModelOutputError
from agentcore.models.base import ChatResponse
from agentcore.models.json_decisions import fenced_decision, json_answer, read_tool_calls
from agentcore.roles.turn import clip

__all__ = ("ASK_USER", "MAX_TOOL_CALLS_PER_DECISION", "call_prefix_for", "parse_decision")

ASK_USER = "ask_user"
"""Name of the pseudo-tool the controller calls to put a question to the user."""


def _arguments(raw: Any, name: str) -> dict[str, Any]:
    if raw is None:  # "arguments": null, as native calls with no arguments are read too
        return {}
    if isinstance(raw, str):
        try:
            raw = read_json(raw) if raw.strip() else {}
        except JSONTextError as e:
            why = f"are {e}" if isinstance(e, NotJSON) else f"cannot be used: {e}"
            raise ModelOutputError(
                f"the arguments of your call to {clip(name, 100)!r} {why}: {clip(raw, 300)!r}; "
                "send the arguments as one JSON object"
            ) from None
        if isinstance(raw, str) and raw.strip().startswith("{"):  # encoded twice: '"{\"key\": 1}"'
            try:
                raw = read_json(raw)
            except JSONTextError:
                pass  # refused below as a string
    if not isinstance(raw, dict):
        raise ModelOutputError(
            f"the arguments of your call to {clip(name, 100)!r} must be a JSON object, got {type(raw).__name__}"
        )
    return raw


def _check_name(name: str, tool_names: Sequence[str]) -> None:
    if name != ASK_USER and name not in tool_names:
        available = ", ".join(sorted({*tool_names, ASK_USER}))
        raise ModelOutputError(
            f"unknown tool {clip(name, 100)!r}; available tools: {available}. Call one of these by its exact name"
        )


MAX_CALL_ID_CHARS = 64
"""Longest tool-call id kept as the model sent it (OpenAI's are about 30 characters)."""
_PLAIN_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_CALL_ID_CHARS}}}")


def _call_id(raw: str, position: int) -> str:
    """The model's call id when it is short plain ASCII, else ``call_<position>``.

    Call ids end up in every event about the call, in prompts, in idempotency keys and in the HTML
    view: an empty, huge, or control-character id (NUL cannot be stored in PostgreSQL text) is
    replaced. Depends only on the answer, so a replayed answer gets the same ids.
    """
    return raw if _PLAIN_ID.fullmatch(raw) else f"call_{position}"


MAX_TOOL_CALLS_PER_DECISION = 16
"""The most tool calls one controller answer may make; an answer with more is refused back to the model
(with the reason, as any invalid answer), so one completion cannot fan out into unbounded work."""


def _from_calls(raw_calls: Sequence[tuple[str, str, Any]], tool_names: Sequence[str], thought: str | None) -> Decision:
    if len(raw_calls) > MAX_TOOL_CALLS_PER_DECISION:
        raise ModelOutputError(
            f"{len(raw_calls)} tool calls in one answer; at most {MAX_TOOL_CALLS_PER_DECISION} are run per decision "
            f"and none of these was run. Call the {MAX_TOOL_CALLS_PER_DECISION} most useful now; you can call more "
            "in your next turn"
        )
    calls = []
    for position, (call_id, name, raw_args) in enumerate(raw_calls, start=1):
        _check_name(name, tool_names)
        calls.append(ToolCall(id=_call_id(call_id, position), name=name, arguments=_arguments(raw_args, name)))
    asks = [c for c in calls if c.name == ASK_USER]
    if asks:
        if len(calls) > 1:
            raise ModelOutputError(f"{ASK_USER!r} must be your only call in an answer; ask first, call tools later")
        question = asks[0].arguments.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ModelOutputError(f"{ASK_USER!r} needs a non-empty string argument 'question'")
        return Decision(kind="ask_user", question=question, thought=thought)
    return Decision(kind="tool_calls", tool_calls=tuple(calls), thought=thought)


def _from_json(obj: dict[str, Any], tool_names: Sequence[str]) -> Decision:
    thought = obj.get("thought") if isinstance(obj.get("thought"), str) else None
    actions = [k for k in ("tool_calls", "reply", "ask_user") if obj.get(k) not in (None, [])]
    if "tool_calls" in obj and not actions and isinstance(obj.get("content"), str) and obj["content"].strip():
        return Decision(kind="reply", reply=obj["content"], thought=thought)  # {"tool_calls": [], "content": "..."}
    if len(actions) != 1:
        raise ModelOutputError(
            f"your JSON answer has keys {sorted(obj)}; it needs exactly one of "
            '"tool_calls" (a non-empty list), "reply" (a string) or "ask_user" (a string)'
        )
    action = actions[0]
    value = obj[action]
    if action == "tool_calls":
        try:
            raw_calls = read_tool_calls(value)
        except ValueError as e:
            raise ModelOutputError(str(e)) from None
        return _from_calls(raw_calls, tool_names, thought)
    if not isinstance(value, str) or not value.strip():
        raise ModelOutputError(f'"{action}" must be a non-empty string')
    if action == "reply":
        return Decision(kind="reply", reply=value, thought=thought)
    return Decision(kind="ask_user", question=value, thought=thought)


def parse_decision(response: ChatResponse, tool_names: Sequence[str], *, call_prefix: str = "") -> Decision:
    """Read the controller's decision from a model response.

    Args:
        response: The model's answer.
        tool_names: Names of the tools the controller may call (``ask_user`` is always allowed).
        call_prefix: Prepended to the model's call ids (which are often unique only within one
            response) to make them unique within the run.

    Raises:
        ModelOutputError: the answer is not a usable decision; the message says what to fix.
    """
    if response.tool_calls:
        thought = response.content.strip() if response.content and response.content.strip() else None
        raw = [(c.id, c.name, c.arguments) for c in response.tool_calls]
        decision = _from_calls(raw, tool_names, thought)
    else:
        content = (response.content or "").strip()
        if not content:
            raise ModelOutputError("your answer was empty; call a tool, ask the user, or reply with text")
        try:
            obj = json_answer(content)
        except ValueError as e:
            raise ModelOutputError(
                f'{e}; the JSON answers are {{"tool_calls": [...]}}, {{"reply": "..."}} and {{"ask_user": "..."}}'
            ) from None
        if obj is None:
            quoted = fenced_decision(content, {*tool_names, ASK_USER})
            if quoted is not None:
                raise ModelOutputError(
                    f'your answer has a JSON "{quoted}" decision inside other text, so it was neither run nor '
                    f'taken as your reply; to act, answer with the JSON object alone (nothing before or after '
                    "it, no code fence needed); to give the final reply, write plain text without that object"
                )
            return Decision(kind="reply", reply=content)
        decision = _from_json(obj, tool_names)
    if decision.kind != "tool_calls" or not call_prefix:
        return decision
    return decision.model_copy(update={"tool_calls": _unique_ids(decision.tool_calls, call_prefix)})


def _unique_ids(calls: Sequence[ToolCall], prefix: str) -> tuple[ToolCall, ...]:
    """``calls`` with ids ``prefix + id``, made unique within the batch deterministically.

    A repeated id gets ``_2``, ``_3``, ... (the first suffix that is still free), so ids the model
    sent as ``["x_2", "x", "x"]`` become ``d1_x_2``, ``d1_x``, ``d1_x_3``. The result depends only
    on the ids and their order, so a replayed response yields the same ids. The prefix (``d<n>_``,
    one per decision) keeps batches of different decisions apart.
    """
    taken = {f"{prefix}{c.id}" for c in calls}
    seen: set[str] = set()
    out = []
    for c in calls:
        new_id = f"{prefix}{c.id}"
        if new_id in seen:
            n = 2
            while f"{new_id}_{n}" in seen or f"{new_id}_{n}" in taken:
                n += 1
            new_id = f"{new_id}_{n}"
        seen.add(new_id)
        out.append(c.model_copy(update={"id": new_id}))
    return tuple(out)


def call_prefix_for(state: RunState) -> str:
    """The prefix that makes the call ids of the next decision unique in the run (``d3_``)."""
    return f"d{state.decisions + 1}_"
