"""Issue 11 kinds 1, 2, 3, 9 and 10, as kinds: every role, every place a model's value arrives.

Each test drives a real ``Agent`` (or ``PlanRunner``) on a real SQLite file with a scripted model
whose answer carries the bad value (hypothesis varies where and which), then checks what the
Guarantees promise: nothing escapes ``run``; the run ends with a status and a reason (or goes on
with the bad answer refused and re-asked); every stored event decodes and the log folds to what
``state_at`` returns (``check_log``).

- kind 1: non-finite numbers (``NaN``, ``Infinity``, ``-Infinity``) in tool-call arguments, in a
  JSON decision, in a processor patch and in a planner plan;
- kind 2: lone surrogates in a reply, a tool call's arguments, id and name, a patch's fact and a plan;
- kind 3: ``finish_reason`` ``"length"`` (or ``"content_filter"``) for every role: never accepted;
- kind 9: reply validators (a user function; the code-search agent's location check);
- kind 10: JSON nested thousands of levels deep in arguments, decisions, patches and plans.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcore.core.events import LLMCalled
from agentcore.core.fold import RunState
from agentcore.models.base import ChatRequest, ChatResponse, ToolCallRequest
from agentcore.models.scripted import FunctionChatModel, ScriptedChatModel, call, respond_json, say
from agentcore.roles.validators import cites_a_known_location, not_a_prompt_echo
from agentcore.runtime.agent import Agent, RunResult
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing import demo_processor, lookup_tool
from tests.guarantees.test_crash_torture import check_log

TABLE = {"a": "the value of a"}
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity"])
surrogate = st.integers(0xD800, 0xDFFF).map(chr)
depth = st.integers(min_value=65, max_value=6000)
cut_reason = st.sampled_from(["length", "content_filter", "LENGTH"])


def raw(content: str | None = None, calls: tuple[ToolCallRequest, ...] = (), finish: str | None = None) -> ChatResponse:
    return ChatResponse(content=content, tool_calls=calls, finish_reason=finish)


def nested(levels: int, leaf: str = "1") -> str:
    return "[" * levels + leaf + "]" * levels


def with_text(text: str, sur: str, where: int) -> str:
    where = where % (len(text) + 1)
    return text[:where] + sur + text[where:]


def run_agent(db: Path, controller: Any, processor: Any | None = None, **kwargs: Any) -> RunResult:
    with SQLiteEventStore(db) as store:
        agent = Agent(controller, processor or demo_processor(), [lookup_tool(TABLE)], store, **kwargs)
        result = agent.run_sync("Look up a.")
    events = check_log(db, result.run_id, "after the run")
    assert result.status in ("succeeded", "failed", "waiting_for_user"), result
    if result.status == "failed":
        assert result.reason, "a failed run says why"
    assert events[-1].type == "run_finished" or result.status == "waiting_for_user"
    return result


def fresh_db(tmp_path: Path) -> Path:
    n = len(list(tmp_path.glob("*.db")))
    return tmp_path / f"run{n}.db"


def good_then_reply() -> list[ChatResponse]:
    return [call("lookup", key="a"), say("a is the value of a.")]


# -- kind 1: non-finite numbers ----------------------------------------------------------------------


@SETTINGS
@given(bad=non_finite, key=st.sampled_from(["limit", "x", "nested"]))
def test_non_finite_tool_arguments_are_refused_and_re_asked(tmp_path: Path, bad: str, key: str) -> None:
    value = f'{{"deep": [{bad}]}}' if key == "nested" else bad
    answer = raw(calls=(ToolCallRequest(id="c1", name="lookup", arguments=f'{{"key": "a", "{key}": {value}}}'),))
    controller = ScriptedChatModel([answer, *good_then_reply()])
    result = run_agent(fresh_db(tmp_path), controller)
    assert result.status == "succeeded" and result.reply == "a is the value of a."
    request = controller.requests[1]
    assert f"{bad} is not a JSON number" in (request.messages[-1].content or "")


@SETTINGS
@given(bad=non_finite)
def test_non_finite_numbers_everywhere_end_the_run_with_a_reason(tmp_path: Path, bad: str) -> None:
    """Only bad answers: the run fails after the bounded attempts with the reason, never escapes."""
    decision = raw(f'{{"tool_calls": [{{"name": "lookup", "arguments": {{"key": "a", "n": {bad}}}}}]}}')
    result = run_agent(fresh_db(tmp_path), ScriptedChatModel([decision] * 3))
    assert result.status == "failed"
    assert result.reason and "controller output invalid after 3 attempts" in result.reason
    assert f"{bad} is not a JSON number" in result.reason


@SETTINGS
@given(bad=non_finite)
def test_non_finite_numbers_in_a_patch_are_refused(tmp_path: Path, bad: str) -> None:
    fact = '{"key": "k", "value": "v", "confidence": ' + bad + "}"
    patch = '{"ops": [{"op": "append_known_facts", "facts": [' + fact + "]}]}"
    processor = ScriptedChatModel([raw(patch), respond_json({"ops": []})])
    db = fresh_db(tmp_path)
    result = run_agent(db, ScriptedChatModel(good_then_reply()), processor)
    assert result.status == "succeeded"
    rejected = [e for e in check_log(db, result.run_id, "patch") if e.type == "patch_rejected"]
    assert len(rejected) == 1 and f"{bad} is not a JSON number" in rejected[0].error  # type: ignore[union-attr]
    assert f"{bad} is not a JSON number" in (processor.requests[1].messages[-1].content or "")


# -- kind 2: lone surrogates -------------------------------------------------------------------------


@SETTINGS
@given(sur=surrogate, where=st.integers(0, 40))
def test_a_reply_with_a_lone_surrogate_is_stored(tmp_path: Path, sur: str, where: int) -> None:
    reply = with_text("Found it in calc.py at line 3", sur, where)
    result = run_agent(fresh_db(tmp_path), ScriptedChatModel([say(reply)]))
    assert result.status == "succeeded" and result.reply == reply.replace(sur, "\ufffd")


@SETTINGS
@given(sur=surrogate, field=st.sampled_from(["arguments", "id", "name"]))
def test_lone_surrogates_in_tool_calls_never_break_the_run(tmp_path: Path, sur: str, field: str) -> None:
    escaped = json.dumps(sur)[1:-1]  # "\\udXXX": valid JSON text for half a character
    parts = {"id": "c1", "name": "lookup", "arguments": '{"key": "a"}'}
    parts[field] = {"arguments": f'{{"key": "a{escaped}"}}', "id": f"c{sur}", "name": f"look{sur}up"}[field]
    controller = ScriptedChatModel([raw(calls=(ToolCallRequest(**parts),)), *good_then_reply()])
    run_agent(fresh_db(tmp_path), controller)


@SETTINGS
@given(sur=surrogate)
def test_lone_surrogates_in_a_patch_are_stored(tmp_path: Path, sur: str) -> None:
    escaped = json.dumps(sur)[1:-1]
    fact = f'{{"key": "k{escaped}", "value": "v{escaped}"}}'
    patch = '{"ops": [{"op": "append_known_facts", "facts": [' + fact + "]}]}"
    result = run_agent(fresh_db(tmp_path), ScriptedChatModel(good_then_reply()), ScriptedChatModel([raw(patch)]))
    assert result.status == "succeeded" and result.state.known_facts["k\ufffd"].value == "v\ufffd"


# -- kind 3: cut answers -----------------------------------------------------------------------------


@SETTINGS
@given(reason=cut_reason)
def test_a_cut_reply_is_never_accepted_as_whole(tmp_path: Path, reason: str) -> None:
    cut = raw("RunState is defined in agentcore/state_model.py at line 6", finish=reason)
    result = run_agent(fresh_db(tmp_path), ScriptedChatModel([cut] * 3))
    assert result.status == "failed" and result.reply is None
    assert result.reason and "cut off" in result.reason and "controller output invalid" in result.reason


@SETTINGS
@given(reason=cut_reason)
def test_a_cut_answer_is_re_asked_and_the_whole_one_used(tmp_path: Path, reason: str) -> None:
    cut_call = raw(calls=(ToolCallRequest(id="c1", name="lookup", arguments='{"key": "a"}'),), finish=reason)
    controller = ScriptedChatModel([cut_call, *good_then_reply()])
    result = run_agent(fresh_db(tmp_path), controller)
    assert result.status == "succeeded"
    assert "cut off" in (controller.requests[1].messages[-1].content or "")


@SETTINGS
@given(reason=cut_reason)
def test_a_cut_patch_is_never_applied(tmp_path: Path, reason: str) -> None:
    whole = {"ops": [{"op": "append_known_facts", "facts": [{"key": "k", "value": "cut here"}]}]}
    processor = ScriptedChatModel([raw(json.dumps(whole), finish=reason)] * 3)
    db = fresh_db(tmp_path)
    result = run_agent(db, ScriptedChatModel(good_then_reply()), processor)
    assert "k" not in result.state.known_facts  # the input is recorded as rejected, the run goes on
    rejected = [e for e in check_log(db, result.run_id, "cut patch") if e.type == "patch_rejected"]
    assert len(rejected) == 3 and all("cut off" in e.error for e in rejected)  # type: ignore[union-attr]


@SETTINGS
@given(reason=cut_reason)
def test_a_cut_plan_is_never_run(tmp_path: Path, reason: str) -> None:
    plan = {"steps": [{"id": "s1", "description": "", "tool": "lookup", "arguments": {"key": "a"}}]}
    planner = ScriptedChatModel([raw(json.dumps(plan), finish=reason)] * 3)
    with SQLiteEventStore(fresh_db(tmp_path)) as store:
        runner = PlanRunner(store, tools=[lookup_tool(TABLE)], planner_model=planner)
        result = runner.run_sync("Look up a.")
        assert result.status == "failed" and result.reason and "cut off" in result.reason
        assert not result.state.plan


# -- kind 10: deep nesting ---------------------------------------------------------------------------


@SETTINGS
@given(levels=depth, where=st.sampled_from(["arguments", "decision", "patch", "plan"]))
def test_deep_nesting_never_escapes(tmp_path: Path, levels: int, where: str) -> None:
    deep = nested(levels)
    db = fresh_db(tmp_path)
    if where == "plan":
        planner = ScriptedChatModel([raw('{"steps": ' + deep + "}")] * 3)
        with SQLiteEventStore(db) as store:
            result = PlanRunner(store, tools=[lookup_tool(TABLE)], planner_model=planner).run_sync("Look up a.")
        check_log(db, result.run_id, "plan")
        assert result.status == "failed" and result.reason and "levels deep" in result.reason
        return
    if where == "patch":
        result = run_agent(db, ScriptedChatModel(good_then_reply()), ScriptedChatModel([raw('{"ops": ' + deep + "}")] * 3))
        assert result.status == "succeeded" and not result.state.known_facts
        return
    if where == "arguments":
        bad = raw(calls=(ToolCallRequest(id="c1", name="lookup", arguments='{"key": ' + deep + "}"),))
    else:
        bad = raw('{"reply": ' + deep + "}")
    result = run_agent(db, ScriptedChatModel([bad] * 3))
    assert result.status == "failed" and result.reason and "levels deep" in result.reason


# -- kind 9: reply validators ------------------------------------------------------------------------

ECHO = "# Task\nLook up a.\n\n# Progress\nDecisions so far: 0.\n\n# Known facts (0, newest last)\n(none)"


def test_a_reply_that_echoes_the_prompt_is_refused_then_the_run_fails_with_the_reason(tmp_path: Path) -> None:
    controller = ScriptedChatModel([say(ECHO)] * 3)
    result = run_agent(fresh_db(tmp_path), controller)
    assert result.status == "failed" and result.reason and "repeats your instructions" in result.reason
    assert "repeats your instructions" in (controller.requests[1].messages[-1].content or "")


@pytest.mark.parametrize(
    ("replies", "status"),
    [
        (["It is somewhere.", "It is in the code.", "Trust me."], "failed"),
        (["It is somewhere.", "a is the value of a (source lookup)."], "succeeded"),
    ],
)
def test_a_user_reply_validator_re_asks_with_the_reason_then_fails(tmp_path: Path, replies: list[str], status: str) -> None:
    def must_quote_a_fact(reply: str, state: RunState) -> str | None:
        values = [f.value for f in state.known_facts.values()]
        return None if any(v in reply for v in values) else "quote a known fact"

    controller = ScriptedChatModel([call("lookup", key="a"), *[say(r) for r in replies]])
    result = run_agent(fresh_db(tmp_path), controller, reply_validators=[must_quote_a_fact])
    assert result.status == status
    if status == "failed":
        assert result.reason and "your reply was refused: quote a known fact" in result.reason
    assert "quote a known fact" in (controller.requests[2].messages[-1].content or "")


def test_a_validator_that_raises_fails_the_run_with_the_reason_it_does_not_escape(tmp_path: Path) -> None:
    def broken(reply: str, state: RunState) -> str | None:
        raise KeyError("oops")

    result = run_agent(fresh_db(tmp_path), ScriptedChatModel([say("done")] * 3), reply_validators=[broken])
    assert result.status == "failed" and result.reason and "KeyError" in result.reason


def fact_state(*facts: tuple[str, str]) -> RunState:
    from agentcore.core.events import RunStarted, StatePatched
    from agentcore.core.fold import fold
    from agentcore.core.patches import AppendKnownFacts, FactInput
    from tests.roles.test_controller import AT

    return fold(
        [
            RunStarted(run_id="r", seq=1, at=AT, task="t"),
            StatePatched(
                run_id="r", seq=2, at=AT,
                ops=(AppendKnownFacts(facts=tuple(FactInput(key=k, value=v) for k, v in facts)),),
            ),
        ]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "ok"),
    [
        ("apply_tax is defined at shop/tax.py:12.", True),
        ("See shop/tax.py:12 and nothing else", True),
        ("It is defined in shop/tax.py:99.", False),  # a place no fact names
        ("apply_tax lives in the tax module.", False),
        ("I found no definition of apply_tax in this repository.", True),
        ("There is no function called apply_tax here.", True),
        (ECHO, False),
        ("utils/io.py has 40 lines", True),
    ],
)
def test_the_code_search_check_wants_a_known_location_or_a_plain_nothing_found(reply: str, ok: bool) -> None:
    state = fact_state(
        ("definition:apply_tax", "apply_tax is defined at shop/tax.py:12: `def apply_tax(x):`"),
        ("file:utils/io.py", "utils/io.py has 40 lines"),
    )
    assert (cites_a_known_location(reply, state) is None) is ok
    assert not_a_prompt_echo(ECHO, state) is not None


def test_the_code_search_agent_refuses_an_echo_and_an_uncited_answer(tmp_path: Path) -> None:
    from agentcore.cli.agents import code_agent

    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    controller = ScriptedChatModel([say(ECHO), say("add is somewhere in the code."), say("It adds.")])
    with SQLiteEventStore(tmp_path / "c.db") as store:
        agent = code_agent(str(tmp_path / "repo"), store, controller, demo_processor())
        result = agent.run_sync("Where is add defined?")
    check_log(tmp_path / "c.db", result.run_id, "code agent")
    assert result.status == "failed" and result.reason and "say plainly that nothing was found" in result.reason
    calls = [e for e in check_log(tmp_path / "c.db", result.run_id, "x") if isinstance(e, LLMCalled)]
    assert [c.ok for c in calls] == [False, False, False]


# -- the same kinds through a function model that raises ---------------------------------------------


@pytest.mark.parametrize("exc", [RecursionError("deep"), ValueError("bad"), RuntimeError("boom"), UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")])
def test_a_model_that_raises_never_breaks_the_run(tmp_path: Path, exc: Exception) -> None:
    def answer(request: ChatRequest) -> ChatResponse:
        raise exc

    result = run_agent(fresh_db(tmp_path), FunctionChatModel(answer))
    assert result.status == "failed" and result.reason and type(exc).__name__ in result.reason


def test_tool_call_ids_stay_run_unique_after_repair(tmp_path: Path) -> None:
    """Two ids that differ only in their lone surrogate both become U+FFFD: still unique in the run."""
    bad = raw(calls=(
        ToolCallRequest(id="c\ud800", name="lookup", arguments='{"key": "a"}'),
        ToolCallRequest(id="c\ud801", name="lookup", arguments='{"key": "a"}'),
    ))  # fmt: skip
    result = run_agent(fresh_db(tmp_path), ScriptedChatModel([bad, say("a is the value of a.")]))
    assert result.status == "succeeded"
    assert len({r.call_id for r in result.state.recent}) == 2
