"""A search stopped by its timeout reaches the model as a timeout error, never as "nothing found"
(a real agent run: offline model, real SQLite file, a real ``rg`` process that never finishes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcore.core.events import ToolFinished
from agentcore.models.offline import OfflineCodeModel
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.code.agent_tools import code_tools
from tests.support.code_fixtures import make_python_repo


@pytest.mark.parametrize("question", ["where is Cart defined", "where is add_item used"])
def test_a_search_that_times_out_is_reported_as_a_timeout(tmp_path: Path, question: str) -> None:
    repo = make_python_repo(tmp_path / "repo")
    slow = tmp_path / "bin" / "rg"
    slow.parent.mkdir()
    slow.write_text("#!/bin/sh\nexec sleep 600\n")
    slow.chmod(0o755)
    model = OfflineCodeModel()
    with SQLiteEventStore(tmp_path / "t.db") as store:
        agent = Agent(model, model, code_tools(repo, rg=str(slow), timeout=1), store, max_steps=4)
        result = agent.run_sync(question)
        finished = [e for e in store.read(result.run_id) if isinstance(e, ToolFinished)]
    searches = [e for e in finished if e.name in ("search_code", "find_definition")]
    assert searches and all(not e.ok and "took longer than 1 s" in (e.error or "") for e in searches)
    assert "took longer than 1 s" in (result.reply or result.reason or "")
    assert "no definition" not in (result.reply or "") and "no uses" not in (result.reply or "")
