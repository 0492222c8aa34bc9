"""A plan's agent step whose id, description or the parent's facts hold NUL still runs as a child run.

No store takes a run id or task with NUL (PostgreSQL's text cannot hold it), while a fact or a
tool's output may hold one: the child's id percent-encodes it (``%00``) and its sub-task shows it
as the six characters ``\\u0000``, on every store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcore.core.plans import Plan, Step
from agentcore.models.scripted import ScriptedChatModel, respond_json, say
from agentcore.runtime.plan_runner import PlanRunner, child_run_id
from agentcore.storage import open_store
from agentcore.storage.base import EventStore
from tests.runtime.test_plan_runs import Ops, op


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "memory":
        from agentcore.storage.memory import MemoryEventStore

        yield MemoryEventStore()
        return
    target = str(tmp_path / "p.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with open_store(target) as s:
        yield s


def test_an_agent_step_with_nul_in_its_id_description_and_facts_runs(any_store: EventStore) -> None:
    step = Step(id="che\x00ck", description="check port 22\x00 on web1", after=("vm",))
    plan = Plan(steps=(op("vm"), step))
    fact = {"key": "vm-ip", "value": "10.0.0.5\x00", "source": "vm"}
    controller = ScriptedChatModel([say("port 22 is open on web1")], name="ctrl")
    processor = ScriptedChatModel(
        [respond_json({"ops": [{"op": "append_known_facts", "facts": [fact]}]}), respond_json({"ops": []})],
        name="proc",
    )
    runner = PlanRunner(
        any_store, tools=Ops().tools(), controller_model=controller, processor_model=processor, revise=True
    )
    with controller, processor:
        result = asyncio.run(runner.run("set up web1", plan, run_id="p"))
    assert result.status == "succeeded", result.reason
    child = child_run_id("p", step.id, 1)
    assert child == "p.che%00ck.1"
    task = any_store.run(child).task
    assert "# Your step: che\\u0000ck\ncheck port 22\\u0000 on web1" in task
    assert "vm-ip: 10.0.0.5\\u0000" in task
    assert any_store.state_at(child).reply == "port 22 is open on web1"
