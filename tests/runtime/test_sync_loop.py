"""agentcore's own sync entry points run on ``agentcore.event_loop`` (sub-millisecond timer waits).

``new_event_loop`` is wrapped to keep every loop it makes, and ``FineEpollSelector._wait`` to keep
every fine wait: each entry point must have made exactly one loop, run its work on that loop (a
tool sees it as the running loop), waited its timers with their fraction of a millisecond and
closed the loop. The worker's ``serve_sync`` is covered by the worker tests (a real worker process
on PostgreSQL, stopped with SIGTERM in ``test_worker_stop.py``); the MCP client's connection thread
by ``tests/tools/test_mcp.py``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

import agentcore.models.openai as llm
from agentcore import event_loop
from agentcore.core.plans import Plan, Step
from agentcore.event_loop import FineEpollSelector
from agentcore.models.base import ChatMessage, ChatRequest
from agentcore.models.openai import OpenAIChatModel
from agentcore.replay.replayer import replay_trace
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.trace import export_run
from agentcore.testing import demo_agent
from agentcore.tools.base import Tool, tool
from tests.support.openai_server import OpenAIServer, text

pytest_plugins = ["tests.support.openai_server"]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the fine selector is epoll's (Linux)")


class Loops:
    def __init__(self) -> None:
        self.made: list[asyncio.AbstractEventLoop] = []
        self.waits: list[float] = []
        self.running: list[asyncio.AbstractEventLoop] = []
        """Loops that a tool found running."""

    def reset(self) -> None:
        self.made.clear()
        self.running.clear()

    def only(self) -> asyncio.AbstractEventLoop:
        assert len(self.made) == 1, self.made
        loop = self.made[0]
        assert loop.is_closed()
        assert all(seen is loop for seen in self.running)
        return loop


@pytest.fixture
def loops(monkeypatch: pytest.MonkeyPatch) -> Loops:
    seen = Loops()
    make, wait = event_loop.new_event_loop, FineEpollSelector._wait

    def new_event_loop() -> asyncio.AbstractEventLoop:
        seen.made.append(make())
        return seen.made[-1]

    def recording(self: FineEpollSelector, timeout: float) -> None:
        seen.waits.append(timeout)
        wait(self, timeout)

    monkeypatch.setattr(event_loop, "new_event_loop", new_event_loop)
    monkeypatch.setattr(FineEpollSelector, "_wait", recording)
    return seen


def napping_tool(seen: Loops) -> Tool:
    @tool(timeout=None)
    async def nap(i: int) -> str:
        """Sleep 1.5 ms.

        Args:
            i: Step number.
        """
        seen.running.append(asyncio.get_running_loop())
        await asyncio.sleep(0.0015)
        return f"napped {i}"

    return nap


def test_plan_runner_run_sync_and_resume_sync(loops: Loops) -> None:
    store = MemoryEventStore()
    runner = PlanRunner(store, tools=[napping_tool(loops)])
    plan = Plan(
        steps=(Step(id="a", tool="nap", arguments={"i": 1}), Step(id="b", tool="nap", arguments={"i": 2}, after=("a",)))
    )
    result = runner.run_sync("two naps", plan)
    assert result.status == "succeeded"
    loops.only()
    assert len(loops.running) == 2
    assert any(0 < w < 0.0015 and w % 0.001 > 1e-7 for w in loops.waits)  # not rounded up to 2 ms
    loops.reset()
    assert runner.resume_sync(result.run_id).status == "succeeded"
    loops.only()


def test_agent_run_sync_and_replay_trace(loops: Loops, tmp_path: Path) -> None:
    store = MemoryEventStore()
    result = demo_agent({"k1": "v1", "k2": "v2"}, store=store).run_sync("Look up every key")
    assert result.status == "succeeded"
    loops.only()
    path = tmp_path / "run.jsonl"
    export_run(store, result.run_id, path)
    loops.reset()
    report = replay_trace(path)
    assert report.ok, report.describe()
    loops.only()


def test_openai_complete_sync_over_http(
    loops: Loops, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llm, "ALLOW_REAL_REQUESTS", False)
    openai_server.enqueue(text("hello from the server"))
    model = OpenAIChatModel("test-model", api_key="sk-test-0", base_url=openai_server.base_url, timeout=30.0)
    request = ChatRequest(role="controller", messages=(ChatMessage(role="user", content="hi"),))
    response = model.complete_sync(request)
    assert response.content == "hello from the server"
    loops.only()
