"""The same runs give the same rows in every view on SQLite and on PostgreSQL.

Real agent runs (the offline code-search model over a small repository, its real code tools,
token counts and a price for each call) are written to a SQLite file and to a PostgreSQL
database, then each database's runs are copied into the other, so both hold the same events.
``facts``, ``tool_calls``, ``llm_usage``, ``llm_cost`` and the header columns of ``events`` are
then compared row by row.

Type normalisation (documented in ``storage/schema.py``): SQLite has no boolean, so PostgreSQL's
``true``/``false`` are compared as 1/0; PostgreSQL's ``SUM`` of a ``bigint`` is a ``numeric``
(``Decimal``), compared as an int; floats are compared to 1e-12 relative (``llm_cost.cost_usd``
is a sum each database may add up in another order; SQLite parses a number's text with its own
code, PostgreSQL with ``strtod``).
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agentcore.cli.agents import code_agent
from agentcore.core.values import TokenUsage
from agentcore.models.base import ChatRequest, ChatResponse
from agentcore.models.offline import OFFLINE_MODEL_NAME, OfflineCodeModel
from agentcore.models.prices import ModelPrice
from agentcore.storage import open_store
from agentcore.storage.copy import copy_runs
from tests.support.code_fixtures import make_python_repo

QUESTIONS = ["where is Cart defined", "what does shop/cart.py contain", "where is add_item defined"]
ORDER = {
    "events": "SELECT run_id, seq, type, v, at, caused_by FROM events ORDER BY run_id, seq",
    "facts": "SELECT * FROM facts ORDER BY run_id, seq, key",
    "tool_calls": "SELECT * FROM tool_calls ORDER BY run_id, seq",
    "llm_usage": "SELECT * FROM llm_usage ORDER BY run_id, seq",
    "llm_cost": "SELECT * FROM llm_cost ORDER BY run_id, role, step_id",
}


def normal(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        assert value == int(value)
        return int(value)
    return value


def rows(conn: Any, view: str) -> list[tuple[Any, ...]]:
    return [tuple(normal(v) for v in row) for row in conn.execute(ORDER[view]).fetchall()]


class Counted:
    """The offline model, with token counts as a server reports them (it reports none)."""

    name = OFFLINE_MODEL_NAME

    def __init__(self) -> None:
        self.inner = OfflineCodeModel()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        answer = await self.inner.complete(request)
        prompt = sum(len(m.content or "") for m in request.messages) // 4
        done = len(answer.content or "") // 4 + 7 * len(answer.tool_calls)
        usage = TokenUsage(prompt_tokens=prompt, completion_tokens=done, total_tokens=prompt + done)
        return answer.model_copy(update={"usage": usage})


def agent_runs(target: str, repo: Path) -> list[str]:
    with open_store(target) as store:
        model = Counted()
        agent = code_agent(str(repo), store, model, model, prices={OFFLINE_MODEL_NAME: ModelPrice(0.15, 0.6)})
        return [agent.run_sync(q).run_id for q in QUESTIONS]


def test_agent_runs_give_the_same_view_rows_on_sqlite_and_postgres(tmp_path: Path, pg_url: str) -> None:
    repo = make_python_repo(tmp_path / "repo")
    path = tmp_path / "runs.db"
    on_sqlite, on_postgres = agent_runs(str(path), repo), agent_runs(pg_url, repo)
    with open_store(str(path)) as lite, open_store(pg_url) as pg:
        assert sorted(copy_runs(lite, pg).copied) == sorted(on_sqlite)
        assert sorted(copy_runs(pg, lite).copied) == sorted(on_postgres)
    conn = sqlite3.connect(path)
    with psycopg.connect(pg_url) as server:
        for view in ORDER:
            a, b = rows(conn, view), rows(server, view)
            assert len(a) == len(b) > 0, view
            for left, right in zip(a, b, strict=True):
                # sums of floats are added up in each database's own order (llm_cost); every float
                # is parsed from the same JSON text by each, within a few ulps of each other at most
                same = tuple(pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for v in left)
                assert same == right, (view, left, right)
    assert {r[5] for r in rows(conn, "tool_calls")} == {1}  # ok, from SQLite's 1 and PostgreSQL's true
    usage = rows(conn, "llm_usage")
    assert all(r[9] is not None and r[9] > 0 for r in usage)  # priced: every call has a cost
    assert {r[4] for r in usage} == {OFFLINE_MODEL_NAME}
