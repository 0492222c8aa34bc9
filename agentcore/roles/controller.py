"""The controller role: show the model a compact state and read back its decision.

The controller never sees raw tool output or the run's history, only a rendering of the current
``RunState`` whose every section has a hard character budget (task, plan, facts, open questions,
recent tool payloads). The prompt's size therefore has a fixed upper bound that does not depend on
how large tool outputs grow (benchmark W5) nor on how many facts the run has collected.

The model answers with native tool calls, a call to the ``ask_user`` pseudo-tool, a JSON decision
(``{"tool_calls": [...]}``, ``{"tool_calls": [], "content": "..."}``, ``{"reply": "..."}``,
``{"ask_user": "..."}``) or plain text, which is the final reply. An answer is a JSON decision only
when it IS one JSON object (a Markdown fence around it and a short lead-in line ending in ``:`` are
tolerated, see ``llm_wire.json_answer``); JSON quoted inside prose leaves the answer plain text.
Anything else is a ``ModelOutputError`` whose message is written to be fed back to the model.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import JsonValue

from agentcore.core.events import Decision, ToolCall
from agentcore.core.fold import RunState
from agentcore.core.json_text import JSONTextError, read_json
from agentcore.core.state import Fact
from agentcore.errors import ConfigError, ModelOutputError
from agentcore.models import openai_wire as llm_wire
from agentcore.models.base import ChatMessage, ChatModel, ChatRequest, ChatResponse, ToolSpec
from agentcore.roles.turn import Attempt, Outcome, ask_until_valid, clip, clip_payload, load_prompt

__all__ = (
    "ASK_USER",
    "ControllerAttempt",
    "ControllerOutcome",
    "ReplyValidator",
    "as_tool_spec",
    "build_controller_request",
    "check_reply",
    "controller_inputs",
    "decide_with_retries",
    "parse_decision",
)

ASK_USER = "ask_user"
"""Name of the pseudo-tool the controller calls to put a question to the user."""

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

MAX_TASK_CHARS = 4000
MAX_PLAN_CHARS = 4000
MAX_FACT_CHARS = 6000
MAX_FACTS = 60
MAX_FACT_VALUE_CHARS = 400
MAX_QUESTION_CHARS = 2000
MAX_PAYLOAD_CHARS = 2000
MAX_RECENT_CHARS = 8000
MAX_FEEDBACK_CHARS = 2000


def as_tool_spec(tool: Any) -> ToolSpec:
    """A ``ToolSpec`` from a ``ToolSpec``, a ``Tool`` (anything with ``.spec()``) or a spec dict.

    Raises:
        ConfigError: ``tool`` is none of these.
    """
    if isinstance(tool, ToolSpec):
        return tool
    spec = getattr(tool, "spec", None)
    if callable(spec):
        return as_tool_spec(spec())
    if isinstance(tool, Mapping):
        fn = tool.get("function") if tool.get("type") == "function" else tool
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            return ToolSpec(
                name=fn["name"],
                description=str(fn.get("description") or ""),
                parameters=dict(fn.get("parameters") or {"type": "object", "properties": {}}),
            )
    if all(hasattr(tool, a) for a in ("name", "description", "parameters")):
        return ToolSpec(name=tool.name, description=tool.description, parameters=dict(tool.parameters))
    raise ConfigError(
        f"cannot use {tool!r} as a tool spec: pass a Tool, a ToolSpec or a dict with name, description, parameters"
    )


# --------------------------------------------------------------------------------------------
# the request


def _fits(lines: Sequence[str], budget: int) -> int:
    """How many of ``lines`` (from the first) fit in ``budget`` characters, one newline each."""
    used = 0
    for n, line in enumerate(lines):
        used += len(line) + 1
        if used > budget:
            return n
    return len(lines)


def _section(title: str, lines: Iterable[str], budget: int, *, newest_first: bool = False) -> str:
    """Lines under a heading, keeping whole lines until ``budget`` characters are used."""
    items = list(lines)
    kept = items[: _fits(items, budget)]
    dropped = len(items) - len(kept)
    if newest_first:
        kept.reverse()
    body = "\n".join(kept) if kept else "(none)"
    if dropped:
        which = "older " if newest_first else ""
        note = f"({dropped} {which}entries not shown)"
        body = note + "\n" + body if newest_first else body + "\n" + note
    return f"# {title}\n{body}"


def _newest_facts(state: RunState, max_facts: int) -> list[Fact]:
    ranked = heapq.nlargest(max_facts, enumerate(state.known_facts.values()), key=lambda p: (p[1].seq, p[0]))
    return [f for _, f in ranked]


def _fact_line(f: Fact, value_chars: int) -> str:
    where = [f"source: {f.source or '?'}"]
    if f.artifact_id:
        where.append(f"artifact: {f.artifact_id}")
    if f.confidence < 1:
        where.append(f"confidence: {f.confidence:g}")
    return f"- {clip(f.key, 200)}: {clip(f.value, value_chars)} [{', '.join(where)}]"


def controller_inputs(
    state: RunState,
    *,
    max_task_chars: int = MAX_TASK_CHARS,
    max_fact_chars: int = MAX_FACT_CHARS,
    max_facts: int = MAX_FACTS,
    max_payload_chars: int = MAX_PAYLOAD_CHARS,
) -> dict[str, JsonValue]:
    """What ``render_state`` shows, as JSON (``ChatRequest.inputs`` of the controller).

    ``facts`` are the facts the prompt lists (newest last, values clipped as shown); ``recent``
    the recent tool results (payloads clipped as shown, newest last).
    """
    newest = _newest_facts(state, max_facts)
    shown = newest[: _fits([_fact_line(f, MAX_FACT_VALUE_CHARS) for f in newest], max_fact_chars)]
    facts: list[JsonValue] = [
        {
            "key": f.key,
            "value": clip(f.value, MAX_FACT_VALUE_CHARS),
            "source": f.source,
            "artifact_id": f.artifact_id,
        }
        for f in reversed(shown)
    ]
    plan: list[JsonValue] = [
        {"id": s.id, "status": s.status, "description": clip(s.description, 300), "after": list(s.after)}
        for s in state.plan.values()
    ]
    questions: list[JsonValue] = [
        {"id": q.id, "text": clip(q.text, 400)} for q in state.open_questions.values() if q.status == "open"
    ]
    recent: list[JsonValue] = [
        {
            "call_id": r.call_id,
            "tool": r.tool,
            "ok": r.ok,
            "artifact_id": r.artifact_id,
            "payload": clip_payload(r.payload, max_payload_chars),
        }
        for r in state.recent
    ]
    return {
        "task": clip(state.task, max_task_chars),
        "decisions": state.decisions,
        "facts": facts,
        "fact_count": len(state.known_facts),
        "plan": plan,
        "questions": questions,
        "recent": recent,
    }


def render_state(
    state: RunState,
    *,
    max_task_chars: int = MAX_TASK_CHARS,
    max_plan_chars: int = MAX_PLAN_CHARS,
    max_fact_chars: int = MAX_FACT_CHARS,
    max_facts: int = MAX_FACTS,
    max_question_chars: int = MAX_QUESTION_CHARS,
    max_payload_chars: int = MAX_PAYLOAD_CHARS,
    max_recent_chars: int = MAX_RECENT_CHARS,
) -> str:
    """The compact, size-bounded text of ``state`` that the controller reads."""
    parts = [f"# Task\n{clip(state.task, max_task_chars)}"]
    parts.append(f"# Progress\nDecisions so far: {state.decisions}. Tool results so far are summarised below.")
    if state.plan:
        plan_lines = [
            f"- [{s.status}] {clip(s.id, 100)}: {clip(s.description, 300)}"
            + (f" (after: {', '.join(s.after)})" if s.after else "")
            for s in state.plan.values()
        ]
        parts.append(_section("Plan", plan_lines, max_plan_chars))
    newest = _newest_facts(state, max_facts)
    fact_lines = [_fact_line(f, MAX_FACT_VALUE_CHARS) for f in newest]
    not_listed = len(state.known_facts) - len(newest)
    facts = _section(
        f"Known facts ({len(state.known_facts)}, newest last)", fact_lines, max_fact_chars, newest_first=True
    )
    if not_listed:
        facts += f"\n({not_listed} older facts not listed)"
    parts.append(facts)
    open_qs = [q for q in state.open_questions.values() if q.status == "open"]
    if open_qs:
        parts.append(
            _section(
                "Open questions", [f"- {clip(q.id, 100)}: {clip(q.text, 400)}" for q in open_qs], max_question_chars
            )
        )
    recent_lines = []
    for r in reversed(state.recent):
        head = f"## call {r.call_id}: {r.tool} {'ok' if r.ok else 'error'}"
        if r.artifact_id:
            head += f" (raw output: artifact {r.artifact_id})"
        recent_lines.append(head + "\n" + clip_payload(r.payload, max_payload_chars))
    parts.append(_section("Recent tool results (newest last)", recent_lines, max_recent_chars, newest_first=True))
    return "\n\n".join(parts)


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
    text = render_state(
        state,
        max_fact_chars=max_fact_chars,
        max_facts=max_facts,
        max_payload_chars=max_payload_chars,
        max_recent_chars=max_recent_chars,
    )
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
    inputs = controller_inputs(
        state, max_fact_chars=max_fact_chars, max_facts=max_facts, max_payload_chars=max_payload_chars
    )
    return ChatRequest(role="controller", messages=tuple(messages), tools=tuple(specs), inputs=inputs)


# --------------------------------------------------------------------------------------------
# the decision


def _arguments(raw: Any, name: str) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = read_json(raw) if raw.strip() else {}
        except JSONTextError as e:
            raise ModelOutputError(
                f"the arguments of your call to {name!r} are {e}: {clip(raw, 300)!r}; "
                "send the arguments as one JSON object"
            ) from None
    if not isinstance(raw, dict):
        raise ModelOutputError(
            f"the arguments of your call to {name!r} must be a JSON object, got {type(raw).__name__}"
        )
    return raw


def _check_name(name: str, tool_names: Sequence[str]) -> None:
    if name != ASK_USER and name not in tool_names:
        available = ", ".join(sorted({*tool_names, ASK_USER}))
        raise ModelOutputError(
            f"unknown tool {name!r}; available tools: {available}. Call one of these by its exact name"
        )


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
    for call_id, name, raw_args in raw_calls:
        _check_name(name, tool_names)
        calls.append(ToolCall(id=call_id, name=name, arguments=_arguments(raw_args, name)))
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
        if not isinstance(value, list):
            raise ModelOutputError('"tool_calls" must be a list of {"name": ..., "arguments": {...}} objects')
        raw_calls = []
        for i, item in enumerate(value, start=1):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ModelOutputError(
                    f'tool call #{i} must be an object with a "name" string and an "arguments" object'
                )
            raw_calls.append((f"call_{i}", item["name"], item.get("arguments", {})))
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
            obj = llm_wire.json_answer(content)
        except ValueError as e:
            raise ModelOutputError(
                f'{e}; the JSON answers are {{"tool_calls": [...]}}, {{"reply": "..."}} and {{"ask_user": "..."}}'
            ) from None
        if obj is None:
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
        model, lambda feedback: build_controller_request(state, specs, feedback=feedback), parse, max_attempts
    )
