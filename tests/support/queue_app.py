"""The app the worker tests run: ``python -m agentcore worker --app tests.support.queue_app:build``.

``build(store, spec)`` gives an ``Agent`` whose controller (a ``FunctionChatModel``) makes
``spec["decisions"]`` decisions of two parallel calls to the ``record`` tool, then replies; its
processor turns every result into a fact. Both read only their prompt, so a run resumed by another
worker asks them the same questions and its log equals an uninterrupted run's. ``record`` appends
``<idempotency key> <item> <pid>`` to ``spec["effects"]`` (one ``write``), then works ``spec["work_s"]``
seconds: a kill or a cut network during that time leaves a side effect whose result is unrecorded.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agentcore.core.values import TokenUsage
from agentcore.models.base import ChatRequest, ChatResponse
from agentcore.models.scripted import FunctionChatModel, calls, respond_json, say
from agentcore.runtime.agent import Agent
from agentcore.tools.base import Tool, tool

USAGE = TokenUsage(prompt_tokens=10, completion_tokens=2, total_tokens=12)
_DECISIONS_SO_FAR = re.compile(r"Decisions so far: (\d+)\.")
_FACT_COUNT = re.compile(r"# Known facts \((\d+), newest last\)")
_CALL_ID = re.compile(r"^call id: (\S+)$", re.MULTILINE)
_PAYLOAD = re.compile(r"^payload:\n(.*)$", re.MULTILINE)


def _prompt(request: ChatRequest) -> str:
    return "\n".join(m.content or "" for m in request.messages if m.role == "user")


def controller(decisions: int) -> FunctionChatModel:
    def answer(request: ChatRequest) -> ChatResponse:
        prompt = _prompt(request)
        found = _DECISIONS_SO_FAR.search(prompt)
        assert found, "the controller prompt no longer says how many decisions were made"
        made = int(found.group(1))
        if made < decisions:
            response = calls(("record", {"item": f"d{made}-a"}), ("record", {"item": f"d{made}-b"}))
            return response.model_copy(update={"usage": USAGE})
        facts = _FACT_COUNT.search(prompt)
        return say(f"done: {facts.group(1) if facts else '?'} facts known", usage=USAGE)

    return FunctionChatModel(answer, name="queue-controller")


def processor_answer(request: ChatRequest) -> ChatResponse:
    prompt = _prompt(request)
    call_id, payload = _CALL_ID.search(prompt), _PAYLOAD.search(prompt)
    assert call_id and payload, "the processor prompt no longer shows the call id and payload"
    fact = {"key": call_id.group(1), "value": payload.group(1), "source": call_id.group(1)}
    return respond_json({"ops": [{"op": "append_known_facts", "facts": [fact]}]}).model_copy(update={"usage": USAGE})


def record_tool(effects: Path, work_s: float) -> Tool:
    @tool(timeout=None)
    async def record(item: str, idempotency_key: str | None = None) -> str:
        """Record one item in the side-effect log.

        Args:
            item: What to record.
        """
        fd = os.open(effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, f"{idempotency_key} {item} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
        await asyncio.sleep(work_s)
        return f"recorded {item}"

    return record


def build(store: Any, spec: dict[str, Any]) -> Agent:
    """The agent of one queued run (spec: ``effects`` path, ``decisions``, ``work_s``)."""
    decisions = int(spec.get("decisions", 2))
    return Agent(
        controller(decisions),
        FunctionChatModel(processor_answer, name="queue-processor"),
        tools=[record_tool(Path(spec["effects"]), float(spec.get("work_s", 0.01)))],
        store=store,
        max_steps=decisions + 2,
    )


def build_plan(store: Any, spec: dict[str, Any]) -> Any:
    """A plan run (the plan comes with the spec): ``record`` steps, each result revised into a fact."""
    from agentcore.runtime.plan_runner import PlanRunner

    return PlanRunner(
        store,
        tools=[record_tool(Path(spec["effects"]), float(spec.get("work_s", 0.05)))],
        processor_model=FunctionChatModel(processor_answer, name="queue-processor"),
        revise=True,
        seed=7,
    )


def build_steps(store: Any, spec: dict[str, Any]) -> Any:
    """A plan run of ``record`` steps and nothing else (no model): its steps spread over the workers."""
    from agentcore.runtime.plan_runner import PlanRunner

    return PlanRunner(store, tools=[record_tool(Path(spec["effects"]), float(spec.get("work_s", 0.05)))], seed=7)
