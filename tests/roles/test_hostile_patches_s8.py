"""Hostile processor patches: an empty plan, invisible identifiers, numbers that overflow, prose.

The unit tests drive ``process`` with a scripted model; the end-to-end test sends the same patches
over the real openai client to a loopback server, into a real SQLite file, and checks the log.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import PatchRejected, StatePatched
from agentcore.core.fold import RunState, apply_patch
from agentcore.core.patches import ReplacePlan, StatePatch
from agentcore.core.plans import Step
from agentcore.errors import PatchError
from agentcore.models.openai import OpenAIChatModel
from agentcore.roles.patch_rules import check_new_patch, invisible_character
from agentcore.roles.processor import ProcessorInput, ProcessorOutcome, process
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing import ScriptedChatModel, lookup_tool, respond_json, say
from tests.support.hostile import check_log
from tests.support.openai_server import OpenAIServer, json_answer, openai_server, text, tool_calls  # noqa: F401

SOURCE = ProcessorInput.user_answer("the total is 12", question="what is the total?")
GOOD = {"ops": [{"op": "append_known_facts", "facts": [{"key": "total", "value": "12"}]}]}


def facts(*items: tuple[str, str]) -> dict[str, Any]:
    return {"ops": [{"op": "append_known_facts", "facts": [{"key": k, "value": v} for k, v in items]}]}


def run_process(state: RunState, *answers: Any) -> ProcessorOutcome:
    model = ScriptedChatModel([say(a) if isinstance(a, str) else respond_json(a) for a in answers])
    return asyncio.run(process(model, state, SOURCE, max_attempts=len(answers)))


def state_with_plan(*statuses: str) -> RunState:
    state = RunState(run_id="r", task="t")
    steps = tuple(Step(id=f"s{i}") for i in range(len(statuses)))
    apply_patch(state, [ReplacePlan(steps=steps)], seq=1)
    for sid, status in zip(state.plan, statuses, strict=True):
        state.plan[sid] = state.plan[sid].model_copy(update={"status": status})
    return state


@pytest.mark.parametrize(
    "key",
    [
        "total\u200b",  # zero-width space: looks like "total"
        "to\u202etal",  # right-to-left override
        "total\x00",  # NUL (PostgreSQL text cannot hold it)
        "total\x1b[31m",  # a terminal escape
        "\u2066total\u2069",  # bidi isolates
        "line\u2028break",  # line separator
    ],
)
def test_an_invisible_character_in_a_new_fact_key_is_refused_and_fed_back(key: str) -> None:
    state = RunState(run_id="r", task="t")
    outcome = run_process(state, facts((key, "12")), GOOD)

    first, second = outcome.attempts
    assert first.error is not None and "invisible or control character U+" in first.error
    assert "identifiers must be visible text" in first.error
    assert outcome.value == StatePatch.model_validate(GOOD)
    assert "Your previous patch was rejected" in (second.request.messages[-1].content or "")


def test_invisible_characters_in_values_and_visible_unicode_in_keys_are_kept() -> None:
    state = RunState(run_id="r", task="t")
    value = "right\u202eto-left, zero\u200bwidth, NUL\x00, -0.0, 2**70 = 1180591620717411303424"
    patch = facts(("prix total (€) — שלום 日本", value))
    outcome = run_process(state, patch)
    assert outcome.value == StatePatch.model_validate(patch)


def test_a_raw_json_patch_cannot_smuggle_an_invisible_key() -> None:
    state = RunState(run_id="r", task="t")
    raw = {
        "ops": [
            {
                "op": "json_patch",
                "patch": [{"op": "add", "path": "/known_facts/k\u200b", "value": {"key": "k\u200b", "value": "v"}}],
            }
        ]
    }
    outcome = run_process(state, raw, GOOD)
    assert outcome.attempts[0].error is not None and "U+200B" in outcome.attempts[0].error
    assert outcome.value is not None


def test_keys_the_state_already_holds_are_not_checked_again() -> None:
    state = state_with_plan("pending")
    state.plan["odd\u200bstep"] = state.plan.pop("s0").model_copy(update={"id": "odd\u200bstep"})
    check_new_patch(state, [ReplacePlan(steps=(Step(id="odd\u200bstep"), Step(id="next", after=("odd\u200bstep",))))])


@pytest.mark.parametrize("statuses", [(), ("pending",), ("pending", "failed", "skipped")])
def test_a_plan_replaced_by_no_steps_is_refused(statuses: tuple[str, ...]) -> None:
    state = state_with_plan(*statuses)
    outcome = run_process(state, {"ops": [{"op": "replace_plan", "steps": []}]}, GOOD)
    error = outcome.attempts[0].error
    assert error is not None and "the new plan has no steps" in error and "set_step_status" in error
    assert outcome.value is not None


def test_no_new_steps_is_allowed_when_finished_work_is_kept() -> None:
    state = state_with_plan("succeeded", "pending")
    outcome = run_process(state, {"ops": [{"op": "replace_plan", "steps": []}]})
    assert outcome.value is not None and outcome.attempts[0].error is None


@pytest.mark.parametrize(
    "answer",
    [
        '{"ops": [{"op": "append_known_facts", "facts": [{"key": "x", "value": "v", "confidence": 1e309}]}]}',
        '{"ops": [{"op": "replace_plan", "steps": [{"id": "a", "timeout_s": -1e400}]}]}',
        '{"ops": [{"op": "json_patch", "patch": [{"op": "add", "path": "/max_parallel", "value": 1E999}]}]}',
    ],
)
def test_a_number_beyond_a_double_is_refused_by_name_not_turned_into_infinity(answer: str) -> None:
    outcome = run_process(RunState(run_id="r", task="t"), answer, GOOD)
    error = outcome.attempts[0].error
    assert error is not None and "is too large to store" in error
    assert outcome.value is not None


def test_invisible_character_names_the_code_point() -> None:
    assert invisible_character("plain text, café, 日本") is None
    assert invisible_character("a\u200db") == "U+200D"
    assert invisible_character("\ufeffbom") == "U+FEFF"


def test_check_new_patch_errors_carry_the_op_index() -> None:
    state = RunState(run_id="r", task="t")
    ops = StatePatch.model_validate({"ops": [GOOD["ops"][0], facts(("bad\x07", "v"))["ops"][0]]}).ops
    with pytest.raises(PatchError) as caught:
        check_new_patch(state, ops)
    assert caught.value.op_index == 1 and str(caught.value).startswith("op 1 (append_known_facts)")


def test_hostile_patches_over_http_leave_a_log_that_folds_and_replays(
    openai_server: OpenAIServer,  # noqa: F811
    db_path: Path,
    tmp_path: Path,
) -> None:
    answers = [
        text('{"ops": [{"op": "replace_plan", "steps": []}]}'),
        json_answer(facts(("total\u200b", "12"))),
        text("Here you go:\n```json\n" + json.dumps(facts(("total", "12 \u202e!"))) + "\n```"),
    ]
    openai_server.enqueue(tool_calls([("lookup", {"key": "total"})]), *answers, text("The total is 12."))
    model = OpenAIChatModel(base_url=openai_server.base_url, api_key="test-key", model="test", max_attempts=1)
    store = SQLiteEventStore(db_path)
    result = Agent(model, tools=[lookup_tool({"total": "12"})], store=store).run_sync("What is the total?")
    log = list(store.read(result.run_id))
    store.close()

    assert result.status == "succeeded" and result.reply == "The total is 12."
    rejected = [e.error for e in log if isinstance(e, PatchRejected)]
    assert len(rejected) == 2
    assert "the new plan has no steps" in rejected[0] and "U+200B" in rejected[1]
    assert [e.type for e in log].count("state_patched") == 1
    patched = next(e for e in log if isinstance(e, StatePatched))
    assert result.state.known_facts["total"].seq == patched.seq
    assert result.state.known_facts["total"].value == "12 \u202e!"
    assert result.state.plan == {}
    check_log(db_path, result.run_id, tmp_path)
