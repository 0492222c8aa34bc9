"""Issue 11 kinds 6, 7 and 14: what a run records and shows at its edges.

- kind 6: a tool payload's closing note (how much was left out, where ``read_artifact`` continues)
  survives every clip a role applies, and its offset is exact: the shown text plus the artifact from
  that offset is the whole output;
- kind 7: child runs of plan steps cannot collide (run ``nightly`` step ``report.daily`` vs run
  ``nightly.report`` step ``daily``), and a run recorded with the old ids still resumes its child;
- kind 14: the configured API key (argument or environment) never reaches the database, a trace,
  the HTML view or a returned value, even when a server echoes it in a 200 completion or a tool
  prints it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcore.core.events import RunStarted, StepSucceeded
from agentcore.core.plans import Plan, Step
from agentcore.inspection.html import render_html
from agentcore.models.openai import OpenAIChatModel
from agentcore.models.scripted import ScriptedChatModel, call, say
from agentcore.roles.controller import build_controller_request
from agentcore.roles.processor import ProcessorInput, build_processor_request
from agentcore.roles.turn import clip_payload
from agentcore.runtime.agent import Agent
from agentcore.runtime.plan_runner import PlanRunner, child_run_id, legacy_child_run_id
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import export_run
from agentcore.testing import demo_processor, lookup_tool
from agentcore.tools.base import tool
from tests.guarantees.test_crash_torture import check_log
from tests.support.openai_server import OpenAIServer, json_answer, text, tool_calls

# -- kind 6: the "read the rest" note survives the clip ----------------------------------------------

_NOTE_OFFSET = re.compile(r"read_artifact\(id='(sha256:[0-9a-f]+)', offset=(\d+)\) continues from here")


def log_tool(lines: int, width: int, char: str) -> Any:
    @tool(name="logs")
    def logs() -> str:
        """Return the service log."""
        return "".join(f"{i:05d} {char * width}\n" for i in range(lines))

    return logs


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.integers(300, 4000),
    width=st.integers(5, 60),
    char=st.sampled_from(["x", "é", "€", "😀"]),
    payload_chars=st.integers(500, 7000),
)
def test_the_read_the_rest_note_reaches_the_controller_with_an_exact_offset(
    lines: int, width: int, char: str, payload_chars: int
) -> None:
    store = MemoryEventStore()
    controller = ScriptedChatModel([call("logs"), say("read.")])
    processor = demo_processor()
    agent = Agent(controller, processor, [log_tool(lines, width, char)], store, payload_chars=payload_chars)
    agent.run_sync("Read the log.")
    full = "".join(f"{i:05d} {char * width}\n" for i in range(lines))
    for request in (controller.requests[1], *processor.requests):
        text_seen = "\n".join(m.content or "" for m in request.messages if m.role == "user")
        match = _NOTE_OFFSET.search(text_seen)
        if len(full) <= payload_chars:  # nothing left out: no note
            assert match is None
            continue
        assert match is not None, f"the note was cut away ({request.role})"
        anchor = text_seen.index("# Recent tool results" if request.role == "controller" else "payload:\n")
        seen = text_seen[text_seen.index("00000 ", anchor) : text_seen.rindex("\n[", 0, match.start()) + 1]
        seen = re.sub(r" …\[\d+ more chars not shown\]\n\Z", "", seen)
        rest = store.artifacts.read(match.group(1), int(match.group(2))).decode("utf-8")
        assert full in (seen + rest, seen[:-1] + rest), f"{request.role}: shown text + the rest != the output"


@pytest.mark.parametrize("limit", [200, 1000, 1999, 2500])
def test_clip_payload_keeps_the_note_and_moves_its_offset(limit: int) -> None:
    body = "".join(f"line {i} ü\n" for i in range(400))
    note = "[... 9000 more characters (800 more lines) not shown; full output: artifact sha256:ab (12000 bytes); "
    note += "read_artifact(id='sha256:ab', offset=3000) continues from here]"
    clipped = clip_payload(body + note, limit)
    assert clipped.endswith("continues from here]") and len(clipped) <= max(limit, limit // 2 + len(note)) + 60
    offset = int(_NOTE_OFFSET.search(clipped).group(2))  # type: ignore[union-attr]
    shown = clipped.split(" …[")[0]
    assert offset == len(shown.encode("utf-8")) and body.encode("utf-8")[:offset] == shown.encode("utf-8")
    assert clip_payload("short", limit) == "short"


def test_clip_payload_never_counts_a_negative_cut_when_the_note_is_the_long_part() -> None:
    # a short body under a long note at a small limit: the body is shown whole, so no "more chars" marker
    body = "line 0\nline 1"
    note = "\n[... 9000 more characters not shown; full output: artifact sha256:ab (12000 bytes); "
    note += "read_artifact(id='sha256:ab', offset=3000) continues from here]"
    clipped = clip_payload(body + note, 120)
    assert clipped.startswith(body) and "more chars not shown" not in clipped
    assert int(_NOTE_OFFSET.search(clipped).group(2)) == len(body.encode("utf-8"))  # type: ignore[union-attr]


def test_both_roles_show_the_note_of_a_long_payload() -> None:
    from agentcore.core.events import ArtifactRef, ToolFinished
    from agentcore.core.fold import fold
    from tests.roles.test_controller import AT

    payload = "y" * 7000 + "\n[... 1 more characters; read_artifact(id='sha256:cd', offset=7001) continues from here]"
    finished = ToolFinished(
        run_id="r", seq=2, at=AT, call_id="c", name="t", ok=True, payload=payload,
        artifact=ArtifactRef(id="sha256:cd", size=7002),
    )  # fmt: skip
    state = fold([RunStarted(run_id="r", seq=1, at=AT, task="t"), finished])
    controller = build_controller_request(state, [])
    processor = build_processor_request(state, ProcessorInput.tool_result(finished))
    for request in (controller, processor):
        assert "continues from here]" in (request.messages[1].content or "")
    assert "continues from here]" in str(controller.inputs["recent"]) and "continues" in str(processor.inputs["payload"])


# -- kind 7: child run ids ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    a=st.tuples(st.text("ab.%2E", max_size=6), st.text("ab.%2E", min_size=1, max_size=6), st.integers(1, 3)),
    b=st.tuples(st.text("ab.%2E", max_size=6), st.text("ab.%2E", min_size=1, max_size=6), st.integers(1, 3)),
)
def test_child_run_ids_are_injective(a: tuple[str, str, int], b: tuple[str, str, int]) -> None:
    assert (child_run_id(*a) == child_run_id(*b)) == (a == b)


@settings(max_examples=200, deadline=None)
@given(
    segments=st.lists(st.text("ab%2E", min_size=1, max_size=4), min_size=3, max_size=6),
    i=st.integers(1, 5),
    j=st.integers(1, 5),
    attempt=st.integers(1, 3),
)
def test_moving_a_dot_between_run_and_step_changes_the_child(segments: list[str], i: int, j: int, attempt: int) -> None:
    """The old ids joined run and step with dots: every split of ``a.b.c`` gave the same child."""
    i, j = min(i, len(segments) - 1), min(j, len(segments) - 1)
    first = (".".join(segments[:i]), ".".join(segments[i:]))
    second = (".".join(segments[:j]), ".".join(segments[j:]))
    same = child_run_id(*first, attempt) == child_run_id(*second, attempt)
    assert same == (i == j)


def test_the_nightly_example_no_longer_collides() -> None:
    assert child_run_id("nightly", "report.daily", 1) != child_run_id("nightly.report", "daily", 1)
    assert child_run_id("p", "check", 1) == "p.check.1" == legacy_child_run_id("p", "check", 1)


def agent_plan(step_id: str) -> Plan:
    return Plan(steps=(Step(id=step_id, description=f"do {step_id}"),))


def test_two_runs_whose_old_child_ids_collide_each_get_their_own_answer(tmp_path: Path) -> None:
    with SQLiteEventStore(tmp_path / "p.db") as store:
        first = PlanRunner(store, controller_model=ScriptedChatModel([say("first answer")]))
        one = first.run_sync("nightly job", agent_plan("report.daily"), run_id="nightly")
        second = PlanRunner(store, controller_model=ScriptedChatModel([say("second answer")]))
        two = second.run_sync("nightly job", agent_plan("daily"), run_id="nightly.report")
    assert one.status == two.status == "succeeded"
    assert one.reply and "first answer" in one.reply
    assert two.reply and "second answer" in two.reply and "first answer" not in two.reply
    for run_id in ("nightly", "nightly.report"):
        check_log(tmp_path / "p.db", run_id, run_id)


def test_a_run_recorded_with_the_old_child_id_resumes_that_child(tmp_path: Path) -> None:
    """An older agentcore created child ``r.s.x.1`` and died before the step's outcome: resume uses it."""
    from tests.roles.test_controller import AT

    plan = agent_plan("s.x")
    with SQLiteEventStore(tmp_path / "old.db") as store:
        store.create_run("old task", run_id="r", events=[RunStarted(run_id="r", seq=1, at=AT, task="old task", plan=plan)])
        old_child = legacy_child_run_id("r", "s.x", 1)
        sub_task = "You carry out one step of a larger task.\n\n# Overall task\nold task\n\n# Your step: s.x\ndo s.x"
        agent = Agent(ScriptedChatModel([say("from the old child")]), demo_processor(), [], store)
        asyncio.run(agent.run(sub_task, run_id=old_child))
        resumed = PlanRunner(store, controller_model=ScriptedChatModel([]))  # must not be asked
        result = resumed.resume_sync("r")
        assert result.status == "succeeded" and result.reply and "from the old child" in result.reply
        done = next(e for e in store.read("r") if isinstance(e, StepSucceeded))
        assert old_child in done.payload
        assert not any(r.id == child_run_id("r", "s.x", 1) for r in store.runs())


# -- kind 14: the API key is never recorded or shown -------------------------------------------------

KEY = "sk-live-echo-4d1c9a7b2e"


def echoing(server: OpenAIServer) -> Any:
    """A server (or proxy) that echoes the Authorization header inside successful answers."""

    def handler(body: dict[str, Any]) -> Any:
        header = server.requests[-1].headers.get("authorization", "")
        fmt = body.get("response_format")
        if fmt is not None:
            fact = {"key": "echo", "value": f"saw {header}", "source": "x"}
            return json_answer({"ops": [{"op": "append_known_facts", "facts": [fact]}]})
        prompt = "\n".join(str(m.get("content")) for m in body["messages"])
        if "Decisions so far: 0." in prompt:
            return tool_calls([("lookup", {"key": f"{header}"})])
        return text(f"Done. Your request had the header Authorization: {header}")

    return handler


@pytest.mark.parametrize("source", ["argument", "environment"])
def test_a_key_echoed_in_200_completions_is_never_recorded_or_shown(
    tmp_path: Path, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    openai_server.handler = echoing(openai_server)
    if source == "environment":
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        model = OpenAIChatModel("m", base_url=openai_server.base_url)
    else:
        model = OpenAIChatModel("m", api_key=KEY, base_url=openai_server.base_url)
    db = tmp_path / "k.db"
    with SQLiteEventStore(db) as store:
        agent = Agent(model, model, [lookup_tool({"a": "b"})], store)
        result = agent.run_sync("Say what header you saw.")
        assert result.status == "succeeded", result.reason
        assert result.reply and "[redacted]" in result.reply
        export_run(store, result.run_id, tmp_path / "k.jsonl")
        page = render_html(store, result.run_id)
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in openai_server.completion_requests)
    check_log(db, result.run_id, "echo")
    found = [p.name for p in tmp_path.iterdir() if p.is_file() and KEY.encode() in p.read_bytes()]
    assert found == [], f"the key is in {found}"
    assert KEY not in page and KEY not in repr(result)


def test_a_key_a_tool_prints_is_redacted_from_payload_and_artifact(tmp_path: Path, openai_server: OpenAIServer) -> None:
    @tool(name="env")
    def env() -> str:
        """Print the environment."""
        return f"HOME=/root\nOPENAI_API_KEY={KEY}\n" + "PATH=/bin\n" * 500

    openai_server.enqueue(tool_calls([("env", {})]), json_answer({"ops": []}), text("done"))
    model = OpenAIChatModel("m", api_key=KEY, base_url=openai_server.base_url)
    with SQLiteEventStore(tmp_path / "t.db") as store:
        result = Agent(model, model, [env], store).run_sync("What is in the environment?")
    assert result.status == "succeeded"
    assert KEY.encode() not in (tmp_path / "t.db").read_bytes()
    assert "[redacted]" in result.state.recent[0].payload
