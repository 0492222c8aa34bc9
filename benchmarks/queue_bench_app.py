"""The app W8 (b) drains: ``agentcore worker --app queue_bench_app:build`` (``benchmarks/`` on ``PYTHONPATH``).

A run is ``STEPS`` controller decisions; each waits ``spec["wait_s"]`` (standing in for a model
call) and, but for the last (the reply), calls the ``mark`` tool once, whose result the processor
turns into a fact. ``mark`` appends its idempotency key to ``spec["effects"]``.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

from agentcore.core.values import TokenUsage
from agentcore.models.base import ChatRequest, ChatResponse
from agentcore.models.scripted import FunctionChatModel, calls, respond_json, say
from agentcore.runtime.agent import Agent
from agentcore.tools.base import Tool, tool

STEPS = 5
USAGE = TokenUsage(prompt_tokens=10, completion_tokens=2, total_tokens=12)
_MADE = re.compile(r"Decisions so far: (\d+)\.")
_CALL_ID = re.compile(r"^call id: (\S+)$", re.MULTILINE)


def _prompt(request: ChatRequest) -> str:
    return "\n".join(m.content or "" for m in request.messages if m.role == "user")


def build(store: Any, spec: dict[str, Any]) -> Agent:
    wait_s = float(spec.get("wait_s", 0.05))
    effects = Path(spec["effects"])

    async def controller(request: ChatRequest) -> ChatResponse:
        await asyncio.sleep(wait_s)
        found = _MADE.search(_prompt(request))
        made = int(found.group(1)) if found else 0
        if made < STEPS - 1:
            return calls(("mark", {"step": made})).model_copy(update={"usage": USAGE})
        return say("done", usage=USAGE)

    def processor(request: ChatRequest) -> ChatResponse:
        found = _CALL_ID.search(_prompt(request))
        key = found.group(1) if found else "call"
        fact = {"key": key, "value": "marked", "source": key}
        return respond_json({"ops": [{"op": "append_known_facts", "facts": [fact]}]}).model_copy(update={"usage": USAGE})

    @tool(timeout=None)
    def mark(step: int, idempotency_key: str | None = None) -> str:
        """Mark one step done.

        Args:
            step: The step number.
        """
        fd = os.open(effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, f"{idempotency_key}\n".encode())
        finally:
            os.close(fd)
        return f"marked {step}"

    tools: list[Tool] = [mark]
    return Agent(
        FunctionChatModel(controller, name="w8-controller"),
        FunctionChatModel(processor, name="w8-processor"),
        tools=tools,
        store=store,
        max_steps=STEPS + 1,
    )
