"""A search stopped by its timeout reaches the model as a timeout error, never as "nothing found"
(a real agent run: offline processor, real SQLite file, a real ``rg`` process that never finishes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentcore.core.events import ToolFinished
from agentcore.models.base import ChatRequest, ChatResponse
from agentcore.models.offline import OfflineCodeModel
from agentcore.models.scripted import FunctionChatModel, calls, say
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.code.agent_tools import code_tools
from tests.support.code_fixtures import make_python_repo


@pytest.mark.parametrize("search", [{"query": "Cart"}, {"query": "add_.*", "regex": True}, {"query": "x", "glob": "*.py"}])
def test_a_search_that_times_out_is_reported_as_a_timeout(tmp_path: Path, search: dict[str, object]) -> None:
    repo = make_python_repo(tmp_path / "repo")
    slow = tmp_path / "bin" / "rg"
    slow.parent.mkdir()
    slow.write_text("#!/bin/sh\nexec sleep 600\n")
    slow.chmod(0o755)

    def controller(request: ChatRequest) -> ChatResponse:
        prompt = request.messages[1].content or ""
        if re.search(r"Decisions so far: 0\.", prompt):
            return calls(("search_code", search))
        return say("Nothing was found; what the search said: " + prompt.partition("# Known facts")[2][:2000])

    with SQLiteEventStore(tmp_path / "t.db") as store:
        tools = code_tools(repo, rg=str(slow), timeout=1)
        agent = Agent(FunctionChatModel(controller), OfflineCodeModel(), tools, store, max_steps=4)
        result = agent.run_sync("where is Cart?")
        finished = [e for e in store.read(result.run_id) if isinstance(e, ToolFinished)]
    (searched,) = [e for e in finished if e.name == "search_code"]
    assert not searched.ok and "took longer than 1 s" in (searched.error or "")
    facts = [f.value for f in result.state.known_facts.values()]
    assert facts and all("failed" in v and "took longer than 1 s" in v for v in facts), facts
    assert not any("does not appear" in v or "no uses" in v for v in facts)
    assert "took longer than 1 s" in (result.reply or "")
