"""Replay keeps its result (issue 14 item 1): `agentcore replay FILE --db DB` stores the replayed run,
plan runs replay (steps answered from the trace, or re-run with live tools), and the hint names
flags that exist. Real SQLite files, real trace files, the CLI through click's runner.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agentcore.cli.commands import cli
from agentcore.core.events import LLMCalled, StepFailed, StepStarted
from agentcore.core.plans import Plan, RetryPolicy, Step
from agentcore.models.scripted import ScriptedChatModel, respond_json
from agentcore.replay.replayer import replay_trace
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import export_run
from agentcore.tools.base import Tool, tool
from tests.support.code_fixtures import make_python_repo


def invoke(*args: str | Path, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def invoke_json(*args: str | Path, code: int = 0) -> Any:
    return json.loads(invoke(*args, "--json", code=code).stdout)


def flaky(failures: dict[str, int], calls: list[str] | None = None) -> list[Tool]:
    @tool
    async def provision(name: str) -> str:
        """Do one operation step.

        Args:
            name: Which operation.
        """
        if calls is not None:
            calls.append(name)
        if failures.get(name, 0) > 0:
            failures[name] -= 1
            raise ConnectionResetError(f"{name} is not ready yet")
        return f"{name}: ok"

    return [provision]


def op(step_id: str, *after: str) -> Step:
    return Step(id=step_id, description=f"do {step_id}", after=after, tool="provision", arguments={"name": step_id})


PLAN = Plan(
    steps=(op("vm"), op("deps", "vm"), op("net", "vm"), op("deploy", "deps", "net"), op("backup", "vm")),
    retry=RetryPolicy(max_attempts=2, base_delay=0.0, jitter=False),
)
PLANNED = {
    "steps": [
        {"id": "vm", "description": "create the VM", "tool": "provision", "arguments": {"name": "vm"}},
        {"id": "deps", "description": "install", "after": ["vm"], "tool": "provision", "arguments": {"name": "deps"}},
    ]
}


@pytest.fixture(scope="module")
def agent_trace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    base = tmp_path_factory.mktemp("agenttrace")
    repo = make_python_repo(base / "repo")
    db = base / "orig.db"
    ran = invoke_json("ask", "Who calls apply_tax?", "--repo", repo, "--db", db)
    trace = base / "agent.jsonl"
    invoke("export", ran["run_id"], "-o", trace, "--db", db)
    return trace, ran["run_id"], ran["events"]


@pytest.fixture(scope="module")
def plan_trace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("plantrace")
    with SQLiteEventStore(base / "orig.db") as store:
        result = asyncio.run(
            PlanRunner(store, tools=flaky({"net": 1, "backup": 5})).run("deploy", PLAN, run_id="plan1")
        )
        assert result.status == "failed"  # backup gave up after 2 attempts; net succeeded on its second
        export_run(store, "plan1", base / "plan.jsonl")
    return base / "plan.jsonl", "plan1"


# ------------------------------------------------------------------------------------------------
# replay --db stores the run


def test_replay_db_stores_an_agent_run_that_every_command_reads(
    agent_trace: tuple[Path, str, int], tmp_path: Path
) -> None:
    trace, original, count = agent_trace
    db = tmp_path / "replays.db"
    report = invoke_json("replay", trace, "--db", db)
    assert report["ok"] is True and report["original_run_id"] == original
    rid = report["run_id"]
    assert rid and report["actual_events"] == count
    # the stored run is inspectable like any other
    rows = invoke_json("events", rid, "--db", db)
    assert len(rows) == count and rows[-1]["type"] == "run_finished"
    state = invoke_json("state", rid, "--db", db)
    assert state["status"] == "succeeded" and state["run_id"] == rid
    assert invoke_json("diff", rid, "0", str(count), "--db", db)
    page = tmp_path / "replay.html"
    assert invoke_json("view", rid, "-o", page, "--db", db)["bytes"] > 1000
    facts = list(state["known_facts"])
    assert invoke_json("why", rid, facts[0], "--db", db)["fact"]["key"] == facts[0]
    # a second replay into the same database gets its own run; the text output names it on stdout
    again = invoke("replay", trace, "--db", db)
    second = re.search(r"stored as run (\S+) in ", again.stdout)
    assert second and second.group(1) != rid
    assert {r["id"] for r in invoke_json("runs", "--db", db)} == {rid, second.group(1)}


def test_replay_of_an_exported_fork_names_the_fork_not_its_parent(
    agent_trace: tuple[Path, str, int], tmp_path: Path
) -> None:
    """A fork's trace holds its parent's events up to the fork point (with the parent's run id): the
    replay reports, and stores as, the run that was exported, not the parent."""
    trace, _, count = agent_trace
    db = tmp_path / "forks.db"
    parent = invoke("import", trace, "--db", db).stdout.strip()
    fork = invoke("fork", parent, "--at", "5", "--db", db).stdout.strip()
    invoke("resume", fork, "--quiet", "--repo", make_python_repo(tmp_path / "repo"), "--db", db)
    fork_trace = tmp_path / "fork.jsonl"
    invoke("export", fork, "-o", fork_trace, "--db", db)
    target = tmp_path / "replays.db"
    report = invoke_json("replay", fork_trace, "--db", target)
    assert report["ok"] is True and report["actual_events"] == count
    assert report["original_run_id"] == fork and report["run_id"] == fork  # was the parent's id, twice
    assert invoke("replay", fork_trace).stdout.startswith(f"replay of {fork} matches")
    # in the database that holds the fork, the replay gets an id of its own
    again = invoke_json("replay", fork_trace, "--db", db)
    assert again["original_run_id"] == fork and again["run_id"] not in (fork, parent)


def test_replay_without_db_stores_nothing(
    agent_trace: tuple[Path, str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace, _, _ = agent_trace
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTCORE_DB", raising=False)
    report = invoke_json("replay", trace)
    assert report["ok"] is True and report["run_id"] is None
    assert not list(tmp_path.glob("*.db"))


def test_replay_group_db_option_stores_too(agent_trace: tuple[Path, str, int], tmp_path: Path) -> None:
    trace, _, _ = agent_trace
    db = tmp_path / "g.db"
    report = json.loads(invoke("--db", db, "replay", trace, "--json").stdout)
    assert invoke_json("state", report["run_id"], "--db", db)["status"] == "succeeded"


# ------------------------------------------------------------------------------------------------
# plan runs


def test_replay_of_a_plan_trace_matches_and_is_stored(plan_trace: tuple[Path, str], tmp_path: Path) -> None:
    trace, original = plan_trace
    db = tmp_path / "plans.db"
    report = invoke_json("replay", trace, "--db", db, code=0)
    assert report["ok"] is True and report["divergence"] is None and report["status"] == "failed"
    assert report["original_run_id"] == original
    rid = report["run_id"]
    with SQLiteEventStore(db) as store:
        events = list(store.read(rid))
        state = store.state_at(rid)
    assert [e.step_id for e in events if isinstance(e, StepStarted)].count("net") == 2  # the retry, again
    assert state.plan["backup"].status == "failed" and state.plan["deploy"].status == "succeeded"
    assert invoke_json("state", rid, "--db", db)["plan"]["net"]["attempts"] == 2
    page = tmp_path / "plan.html"
    invoke("view", rid, "-o", page, "--db", db)
    assert 'id="dag-svg"' in page.read_text(encoding="utf-8")


def test_replay_of_a_plan_with_live_tools_runs_them_and_reports_a_divergence(plan_trace: tuple[Path, str]) -> None:
    trace, _ = plan_trace
    calls: list[str] = []
    same = replay_trace(trace, tools=flaky({"net": 1, "backup": 5}, calls), live_tools=True)
    assert same.ok, same.describe()
    assert sorted(calls) == sorted(["vm", "deps", "net", "net", "deploy", "backup", "backup"])
    fixed = replay_trace(trace, tools=flaky({}), live_tools=True)  # the flaky steps now work at once
    assert not fixed.ok and fixed.divergence is not None
    assert fixed.divergence.expected is not None and fixed.divergence.expected["type"] == "step_failed"
    assert fixed.status == "succeeded"
    assert any(op["path"] == "/status" for op in fixed.state_diff)


def test_replay_of_a_planned_and_revised_plan_run_answers_the_planner_and_processor(tmp_path: Path) -> None:
    planner = ScriptedChatModel([respond_json(PLANNED)], name="planner-model")
    processor = ScriptedChatModel([respond_json({"ops": []}), respond_json({"ops": []})], name="proc-model")
    with SQLiteEventStore(tmp_path / "orig.db") as store:
        runner = PlanRunner(store, tools=flaky({}), planner_model=planner, processor_model=processor, revise=True)
        with planner, processor:
            result = asyncio.run(runner.run("deploy", run_id="planned"))
        assert result.status == "succeeded"
        roles = [e.role for e in store.read("planned") if isinstance(e, LLMCalled)]
        assert roles == ["planner", "processor", "processor"]
        export_run(store, "planned", tmp_path / "planned.jsonl")
    db = tmp_path / "replay.db"
    report = invoke_json("replay", tmp_path / "planned.jsonl", "--db", db)
    assert report["ok"] is True and report["unused"] == 0, report["summary"]
    with SQLiteEventStore(db) as store:
        replayed = [e.role for e in store.read(report["run_id"]) if isinstance(e, LLMCalled)]
    assert replayed == roles


def test_a_plan_trace_whose_steps_went_another_way_is_a_mismatch(plan_trace: tuple[Path, str], tmp_path: Path) -> None:
    trace, _ = plan_trace
    lines = trace.read_text(encoding="utf-8").splitlines()
    # the same run with a retry policy of 3 attempts: backup's third attempt was never recorded
    from agentcore.storage.trace import read_trace

    t = read_trace(trace)
    started = t.events[0]
    assert started.plan is not None
    plan3 = started.plan.model_copy(update={"retry": RetryPolicy(max_attempts=3, base_delay=0.0, jitter=False)})
    report = asyncio.run(_replay_with_plan(t, plan3))
    assert not report.ok and report.mismatch and "attempt 3" in report.mismatch
    assert lines  # the file itself is untouched


async def _replay_with_plan(t: Any, plan: Plan) -> Any:
    from agentcore.replay.replayer import replay_trace_async
    from agentcore.storage.trace import Trace

    events = [t.events[0].model_copy(update={"plan": plan}), *t.events[1:]]
    return await replay_trace_async(Trace(header=t.header, events=events, artifacts=t.artifacts))


# ------------------------------------------------------------------------------------------------
# counterfactual replay from the CLI, and the hint


def test_a_mismatch_hint_names_replay_flags_that_exist(agent_trace: tuple[Path, str, int], tmp_path: Path) -> None:
    trace, _, _ = agent_trace
    # a live processor that is a different model: the controller's later prompts change
    report = invoke_json("replay", trace, "--processor-model", "agentcore-offline", "--db", tmp_path / "c.db")
    assert report["live_roles"] == ["processor"]
    # the recorded controller cannot answer a changed request: its hint names real options
    from agentcore.replay.recorded import RecordedModels
    from agentcore.storage.trace import read_trace

    t = read_trace(trace)
    recorded = RecordedModels(t.events)
    from agentcore.errors import ReplayMismatch
    from agentcore.models.base import ChatMessage, ChatRequest

    with pytest.raises(ReplayMismatch) as info:
        recorded.take(
            ChatRequest(role="controller", messages=(ChatMessage(role="user", content="?"),)),
            by_order=False,
            where="here",
        )
    flags = set(re.findall(r"--[a-z][a-z-]+", str(info.value)))
    replay_options = {opt for p in cli.commands["replay"].params for opt in getattr(p, "opts", [])}
    assert flags and flags <= replay_options, (flags, replay_options)
    for role, flag in (("processor", "--processor-model"), ("planner", "--planner-model")):
        with pytest.raises(ReplayMismatch, match=flag):
            recorded.take(
                ChatRequest(role=role, messages=(ChatMessage(role="user", content="?"),)), by_order=False, where="x"
            )


def test_step_failed_next_attempt_at_is_a_wall_clock_field(plan_trace: tuple[Path, str]) -> None:
    from agentcore.replay.replayer import IGNORED_FIELDS
    from agentcore.storage.trace import read_trace

    assert "next_attempt_at" in IGNORED_FIELDS
    retried = [e for e in read_trace(plan_trace[0]).events if isinstance(e, StepFailed) and e.next_attempt_at]
    assert retried  # the trace has one, and it replays (test above) although its time differs


def test_replay_into_postgresql_and_inspect_it_there(
    agent_trace: tuple[Path, str, int], plan_trace: tuple[Path, str], pg_url: str, tmp_path: Path
) -> None:
    """`--db postgresql://...` works like a file: the replays are stored and read back; no password is printed."""
    trace, original, count = agent_trace
    out = invoke("replay", trace, "--db", pg_url)
    stored = re.search(r"stored as run (\S+) in (\S+)", out.stdout)
    assert stored and stored.group(1) == original
    password = re.search(r"://[^:/@]+:([^@]+)@", pg_url)
    if password:
        assert password.group(1) not in out.output
    assert len(invoke_json("events", original, "--db", pg_url)) == count
    plan = invoke_json("replay", plan_trace[0], "--db", pg_url)
    assert plan["ok"] is True
    assert invoke_json("state", plan["run_id"], "--db", pg_url)["plan"]["net"]["attempts"] == 2
    page = tmp_path / "pg.html"
    invoke("view", plan["run_id"], "-o", page, "--db", pg_url)
    assert 'data-step="net"' not in page.read_text(encoding="utf-8")  # drawn by the page's script, not the server
