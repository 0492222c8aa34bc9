"""The run view's page (issue 14 item 3, issue 17 item 8): header, outcome, plan DAG, artifact links,
shortcuts, and a size that follows the log. Real runs on SQLite, loaded in headless Chromium.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agentcore.cli.agents import code_agent
from agentcore.core.events import RunFinished, RunStarted, StatePatched
from agentcore.core.patches import AppendKnownFacts, FactInput
from agentcore.core.plans import Plan, RetryPolicy, Step
from agentcore.inspection.html import page_data, render_html
from agentcore.models.offline import OfflineCodeModel
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.base import Tool, tool
from tests.inspection.test_view import chromium, section
from tests.support.code_fixtures import PYTHON_DEFINITIONS, make_python_repo

PNG = b"\x89PNG\r\n\x1a\n"


def shot_ok(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 20_000, f"{path} is not a real screenshot ({len(data)} bytes)"


def load(tmp_path: Path, html_text: str, name: str, fragment: str = "") -> str:
    page = tmp_path / f"{name}.html"
    page.write_text(html_text, encoding="utf-8")
    shot = tmp_path / f"{name}.png"
    dom = chromium(tmp_path, page, fragment, screenshot=shot)
    shot_ok(shot)
    assert 'data-ready="1"' in dom, "the page's script did not finish"
    return dom


def text_of(fragment: str) -> str:
    return re.sub(r"<[^>]+>", "", fragment)


# ------------------------------------------------------------------------------------------------
# an agent run and a failed run


@pytest.fixture(scope="module")
def code_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str]:
    base = tmp_path_factory.mktemp("viewruns")
    repo = make_python_repo(base / "repo")
    db = base / "runs.db"
    with SQLiteEventStore(db) as store:
        model = OfflineCodeModel()
        ok = code_agent(str(repo), store, model, model, max_steps=8).run_sync("Who calls apply_tax?")
        failed = code_agent(str(repo), store, model, model, max_steps=1).run_sync("Where is TAX_RATE used?")
    assert ok.status == "succeeded" and failed.status == "failed"
    return repo, db, ok.run_id, failed.run_id


def test_an_agent_run_shows_header_answer_links_and_shortcuts(
    code_runs: tuple[Path, Path, str, str], tmp_path: Path
) -> None:
    repo, db, run_id, _ = code_runs
    with SQLiteEventStore(db) as store:
        html_text = render_html(store, run_id)
        reply = store.state_at(run_id).reply
        data = page_data(store, run_id)
    assert reply and "`" in reply
    dom = load(tmp_path, html_text, "agent")
    # header: repository, models, status, duration, tokens
    assert text_of(section(dom, "h-repository")) == str(repo.resolve())
    assert "controller agentcore-offline" in section(dom, "h-models")
    assert re.fullmatch(r"\d+\.\d s", section(dom, "h-duration"))
    assert section(dom, "h-tokens") == str(data["usage"]["total"]["total_tokens"])
    assert section(dom, "run-status") == "succeeded"
    # the answer as text: the reply itself, not its JSON encoding
    assert section(dom, "outcome-title") == "Answer"
    shown = text_of(section(dom, "outcome-text")).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert shown == reply and '\\"' not in shown
    # artifact ids are links to the preview, in the event JSON, the diffs and the facts
    links = re.findall(r'<button class="art-link" type="button" data-artifact="(sha256:[0-9a-f]{64})"', dom)
    assert links and set(links) <= set(data["artifacts"])
    facts = section(dom, "facts")
    fact_art = next(iter(data["artifacts"]))
    assert "art-link" in facts
    assert fact_art in dom
    # the keyboard shortcuts are listed
    keys = text_of(section(dom, "shortcuts"))
    for words in ("next event", "previous event", "filter the timeline", "first event", "last event"):
        assert words in keys
    assert 'id="plan-card" class="card" hidden' in dom  # no plan, no DAG card


def test_shortcuts_move_the_selection(code_runs: tuple[Path, Path, str, str], tmp_path: Path) -> None:
    _, db, run_id, _ = code_runs
    with SQLiteEventStore(db) as store:
        html_text = render_html(store, run_id)
        last = store.last_seq(run_id)
    page = tmp_path / "keys.html"
    page.write_text(html_text, encoding="utf-8")
    assert f'data-selected="{last - 2}"' in chromium(tmp_path, page, "#keys=kk")
    assert 'data-selected="2"' in chromium(tmp_path, page, "#keys=gjj")
    assert 'data-selected="4"' in chromium(tmp_path, page, "#seq=5&keys=k")
    assert f'data-selected="{last}"' in chromium(tmp_path, page, "#seq=1&keys=G")


def test_a_failed_run_shows_why_it_failed(code_runs: tuple[Path, Path, str, str], tmp_path: Path) -> None:
    _, db, _, run_id = code_runs
    with SQLiteEventStore(db) as store:
        html_text = render_html(store, run_id)
        reason = store.state_at(run_id).reason
    assert reason and reason.startswith("budget: max_steps=1")
    dom = load(tmp_path, html_text, "failed")
    assert section(dom, "outcome-title") == "Why it failed"
    assert text_of(section(dom, "outcome-text")) == reason
    assert 'class="card outcome o-failed"' in dom and section(dom, "run-status") == "failed"


# ------------------------------------------------------------------------------------------------
# a plan run as its DAG


def flaky_tools(failures: dict[str, int]) -> list[Tool]:
    @tool
    async def provision(name: str) -> str:
        """Do one operation step.

        Args:
            name: Which operation.
        """
        if failures.get(name, 0) > 0:
            failures[name] -= 1
            raise ConnectionResetError(f"{name} is not ready yet")  # retryable
        return f"{name}: ok"

    return [provision]


def op(step_id: str, *after: str) -> Step:
    return Step(id=step_id, description=f"do {step_id}", after=after, tool="provision", arguments={"name": step_id})


def test_a_plan_run_is_drawn_as_its_dag(tmp_path: Path) -> None:
    plan = Plan(
        steps=(op("vm"), op("deps", "vm"), op("net", "vm"), op("deploy", "deps", "net"), op("monitor", "deploy"),
               op("backup", "vm")),
        retry=RetryPolicy(max_attempts=2, base_delay=0.0, jitter=False),
    )  # fmt: skip
    with SQLiteEventStore(tmp_path / "plan.db") as store:
        runner = PlanRunner(store, tools=flaky_tools({"net": 1, "backup": 5}))
        result = asyncio.run(runner.run("deploy the service", plan, run_id="plan1"))
        html_text = render_html(store, "plan1")
        state = store.state_at("plan1")
        step_seqs = {
            sid: [e.seq for e in store.read("plan1") if getattr(e, "step_id", None) == sid] for sid in state.plan
        }
    assert state.plan["net"].attempts == 2 and state.plan["backup"].status == "failed"
    dom = load(tmp_path, html_text, "plan")
    assert 'id="plan-card" class="card"' in dom and 'id="plan-card" class="card" hidden' not in dom
    svg = section(dom, "dag")
    nodes = re.findall(r'<g class="step st-(\w+)"[^>]*data-step="(\w+)" data-status="(\w+)" data-attempts="(\d+)"', svg)
    assert {n[1]: (n[0], n[2], int(n[3])) for n in nodes} == {
        sid: (st.status, st.status, st.attempts) for sid, st in state.plan.items()
    }
    assert svg.count('class="edge"') == sum(len(st.after) for st in state.plan.values())
    assert "2 attempts" in svg  # the retried step says so
    assert section(dom, "outcome-title") == ("Answer" if result.status == "succeeded" else "Why it failed")
    # clicking a step (dispatched by the page for #step=) shows only that step's events
    chosen = load(tmp_path, html_text, "plan-step", "#step=net")
    assert 'data-step="net"' in chosen.split("<body", 1)[1].split(">", 1)[0]
    timeline = section(chosen, "timeline")
    tags = re.findall(r'<li data-seq="(\d+)"([^>]*)>', timeline)
    visible = [int(seq) for seq, rest in tags if "hidden" not in rest]
    assert visible
    assert set(visible) - {0} == set(step_seqs["net"])
    assert f'data-selected="{step_seqs["net"][0]}"' in chosen


# ------------------------------------------------------------------------------------------------
# size: provenance by reference


def patch_chain(n: int) -> MemoryEventStore:
    """A run of ``n`` patches, each caused by the one before (the shape that used to grow as n^2)."""
    store = MemoryEventStore()
    store.create_run("chain", run_id="c")
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    events: list[Any] = [RunStarted(run_id="c", seq=1, at=t0, task="chain")]
    for i in range(n):
        fact = FactInput(key=f"fact{i % 50}", value=f"value {i}", source="model")
        events.append(
            StatePatched(run_id="c", seq=i + 2, at=t0 + timedelta(seconds=i), caused_by=i + 1,
                         ops=(AppendKnownFacts(facts=(fact,)),))
        )  # fmt: skip
    events.append(RunFinished(run_id="c", seq=n + 2, at=t0 + timedelta(seconds=n + 2), status="succeeded", reply="ok"))
    store.append("c", events, 0)
    return store


def test_the_page_grows_linearly_with_a_provenance_chain(tmp_path: Path) -> None:
    sizes = {n: len(render_html(patch_chain(n), "c").encode()) for n in (250, 500, 1000)}
    per_event = {n: size / n for n, size in sizes.items()}
    assert per_event[1000] < per_event[250] * 1.2, sizes  # linear: the bytes per event do not grow
    assert sizes[1000] < 2_000_000, sizes  # it was 36.7 MB
    data = page_data(patch_chain(1000), "c")
    assert len(data["links"]) == 1001 and all(link["next"] in (None, int(s) - 1) for s, link in data["links"].items())
    dom = load(tmp_path, render_html(patch_chain(1000), "c"), "chain")
    facts = section(dom, "facts")
    assert "more links" in facts and facts.count("state_patched") <= 50 * 13  # each story is cut at 12 links
    assert data["links"]["1"] == {"type": "run_started", "why": "led to the next link", "next": None}
    assert json.loads(json.dumps(data["links"]["1001"]))["type"] == "state_patched"


def test_why_still_follows_the_whole_chain() -> None:
    from agentcore.inspection.provenance import why

    store = patch_chain(300)
    chain = why(store, "c", "fact49")["chain"]
    assert [link["seq"] for link in chain] == list(range(301, 0, -1))  # every patch back to the start


def test_definitions_fixture_is_what_the_agent_found(code_runs: tuple[Path, Path, str, str]) -> None:
    _, db, run_id, _ = code_runs
    with SQLiteEventStore(db) as store:
        reply = store.state_at(run_id).reply or ""
    assert "{}:{}".format(*PYTHON_DEFINITIONS["apply_tax"]) in reply
