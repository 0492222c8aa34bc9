"""Test helpers: assert that a trace replays, and a small scripted agent to record runs with.

``assert_replays(trace_path)`` re-runs the agent of a recorded trace offline and fails with the
first divergence, so a change to prompts, parsing or the run loop that alters recorded behaviour
shows up as a failing test. Regenerate the trace (``traces/make_golden.py``) when the change is
intended.

``demo_agent(table)`` builds a deterministic agent (scripted controller, function processor, one
``lookup`` tool over ``table``) that looks up every key, records one fact per key and replies. It
is what the golden traces, the trace tests and benchmark W6 record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from agentcore.core.clock import Clock
from agentcore.core.values import TokenUsage
from agentcore.errors import ToolError
from agentcore.models.base import ChatModel, ChatRequest, ChatResponse
from agentcore.models.scripted import FunctionChatModel, ScriptedChatModel, call, calls, respond_json, say
from agentcore.replay.replayer import AgentFactory, ReplayReport, replay_trace
from agentcore.storage.base import EventStore
from agentcore.storage.trace import Trace
from agentcore.testing.clock import FakeClock
from agentcore.tools.base import Tool, tool

__all__ = (
    "CONTROLLER_USAGE",
    "PROCESSOR_USAGE",
    "FakeClock",
    "FunctionChatModel",
    "ScriptedChatModel",
    "assert_replays",
    "call",
    "calls",
    "demo_agent",
    "demo_processor",
    "lookup_tool",
    "respond_json",
    "say",
    "ticking_clock",
)

CONTROLLER_USAGE = TokenUsage(prompt_tokens=100, completion_tokens=10, total_tokens=110)
PROCESSOR_USAGE = TokenUsage(prompt_tokens=50, completion_tokens=20, total_tokens=70)


def assert_replays(
    trace_path: str | Path | Trace,
    agent_factory: AgentFactory | None = None,
    *,
    tools: Sequence[Tool] | None = None,
    live_tools: bool = False,
) -> ReplayReport:
    """Replay a trace offline and fail unless it reproduces the recording exactly.

    Args:
        trace_path: The trace (see ``agentcore.replay.replayer.replay_trace`` for the other arguments).
        agent_factory: Builds the agent like ``Agent(controller, processor, tools, store, runner=)``.
        tools: The agent's tools; stand-ins from the trace by default.
        live_tools: Run the tools for real.

    Returns:
        The report, for further checks.

    Raises:
        AssertionError: the first divergence, any request the trace did not record, and unused
            recorded responses.
    """
    report = replay_trace(trace_path, agent_factory, tools=tools, live_tools=live_tools)
    if not report.ok:
        raise AssertionError(report.describe())
    return report


def ticking_clock(start: datetime | None = None, step: timedelta = timedelta(milliseconds=250)) -> FakeClock:
    """A ``FakeClock`` for ``Agent(clock=...)`` that moves ``step`` forward on every ``now()``
    reading (reproducible, distinct event times)."""
    return FakeClock(start or datetime(2025, 1, 1, tzinfo=timezone.utc), tick=step.total_seconds())


def lookup_tool(table: Mapping[str, str]) -> Tool:
    """A ``lookup(key)`` tool answering from ``table`` (a ``ToolError`` for unknown keys)."""

    @tool(name="lookup")
    def lookup(key: str) -> str:
        """Look up the text stored under a key.

        Args:
            key: The key to look up.
        """
        if key not in table:
            raise ToolError(f"no key {key!r}; call lookup with one of the keys named in the task")
        return table[key]

    return lookup


def demo_processor(name: str = "demo-processor") -> FunctionChatModel:
    """A processor that records each tool result as the fact ``<key> = <payload>``.

    A user's answer becomes the fact ``user.answer``.

    It reads the call id, arguments, artifact and payload from the request's structured
    ``inputs`` (never from the prompt text), so its answer is a pure function of the request
    (replays see the same answer) and rewording a prompt cannot change it.
    """

    def answer(request: ChatRequest) -> ChatResponse:
        given = request.inputs
        if given.get("input") == "user_answer":
            fact = {"key": "user.answer", "value": given.get("answer"), "source": "user"}
        else:
            arguments = given.get("arguments")
            call_id = str(given.get("call_id") or "")
            key = arguments.get("key") if isinstance(arguments, dict) else None
            fact = {
                "key": str(key if key is not None else call_id or "result"),
                "value": given.get("payload"),
                "source": call_id,
                "artifact_id": given.get("artifact"),
            }
        return respond_json({"ops": [{"op": "append_known_facts", "facts": [fact]}]}).model_copy(
            update={"usage": PROCESSOR_USAGE}
        )

    return FunctionChatModel(answer, name=name)


def demo_agent(
    table: Mapping[str, str],
    *,
    store: EventStore | None = None,
    reply: str = "Done: every key was looked up.",
    clock: Clock | None = None,
    controller: ChatModel | None = None,
    processor: ChatModel | None = None,
) -> Any:
    """A deterministic agent that looks up every key of ``table`` (one call per step), then replies.

    Args:
        table: Keys to look up and the text the ``lookup`` tool returns for each.
        store: Where runs are recorded (a memory store by default).
        reply: The controller's final reply.
        clock: The agent's ``Clock`` (a ``ticking_clock`` by default, so traces are reproducible).
        controller: Replaces the scripted controller.
        processor: Replaces ``demo_processor()``.

    Returns:
        An ``agentcore.runtime.agent.Agent``; ``await agent.run(task)`` records the run.
    """
    from agentcore.runtime.agent import Agent

    script = [call("lookup", key=k).model_copy(update={"usage": CONTROLLER_USAGE}) for k in table]
    script.append(say(reply, usage=CONTROLLER_USAGE))
    return Agent(
        controller or ScriptedChatModel(script, name="demo-controller"),
        processor or demo_processor(),
        [lookup_tool(table)],
        store,
        max_steps=len(table) + 1,
        clock=clock or ticking_clock(),
    )
