"""The planner: plan JSON parsing and checking, re-asking with the error, over the real HTTP client."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from agentcore.core.plans import Plan, RetryPolicy
from agentcore.errors import ConfigError, ModelOutputError, ModelUnavailable, PlanError
from agentcore.models.base import ChatResponse
from agentcore.models.openai import OpenAIChatModel
from agentcore.models.scripted import ScriptedChatModel, respond_json, say
from agentcore.roles.planner import PLAN_SCHEMA, build_planner_request, parse_plan, plan_task, plan_with_attempts
from agentcore.tools.base import as_tool_spec, tool
from tests.support.openai_server import (
    OpenAIServer,
    json_answer,
    openai_server,  # noqa: F401
)


@tool
def create_vm(name: str, cpus: int = 2) -> str:
    """Create a virtual machine.

    Args:
        name: Host name of the VM.
        cpus: Number of CPUs.
    """
    return f"vm {name} with {cpus} cpus"


def answer(steps: list[dict[str, Any]]) -> ChatResponse:
    return respond_json({"steps": steps})


GOOD = [
    {"id": "vm", "description": "create the VM", "tool": "create_vm", "arguments": {"name": "web1"}},
    {"id": "deps", "description": "install dependencies", "after": ["vm"]},
    {"id": "net", "description": "configure the network", "after": ["vm"]},
    {"id": "deploy", "description": "deploy the service", "after": ["deps", "net"]},
]
CYCLE = [
    {"id": "a", "description": "first", "after": ["b"]},
    {"id": "b", "description": "second", "after": ["a"]},
]


def test_a_valid_answer_becomes_a_plan_with_the_given_defaults() -> None:
    defaults = Plan(on_failure="abort", retry=RetryPolicy(max_attempts=5), max_parallel=2)
    plan = parse_plan(answer(GOOD), [create_vm], defaults=defaults)
    assert [s.id for s in plan.steps] == ["vm", "deps", "net", "deploy"]
    assert plan.step("deploy").after == ("deps", "net")
    assert plan.step("vm").tool == "create_vm" and plan.step("vm").arguments == {"name": "web1"}
    assert (plan.on_failure, plan.retry.max_attempts, plan.max_parallel) == ("abort", 5, 2)


def test_fenced_json_is_accepted() -> None:
    fenced = ChatResponse(content="```json\n" + json.dumps({"steps": GOOD}) + "\n```")
    assert len(parse_plan(fenced, [create_vm]).steps) == 4


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (CYCLE, "cycle: a -> b -> a"),
        ([{"id": "a"}, {"id": "a"}], "duplicate step id 'a'"),
        ([{"id": "a", "after": ["ghost"]}], "unknown step 'ghost'"),
        ([{"id": "a", "tool": "rm_rf"}], "unknown tool 'rm_rf'; tools: create_vm"),
        ([{"id": "a", "tool": "create_vm", "arguments": {"cpus": "many"}}], "bad arguments for tool 'create_vm'"),
        ([{"id": "a", "arguments": {"x": 1}}], "has arguments but no tool"),
    ],
)
def test_invalid_plans_are_rejected_with_a_message_for_the_model(steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(PlanError, match=re.escape(message)):
        parse_plan(answer(steps), [create_vm])


def test_a_cycle_error_names_the_cycle() -> None:
    with pytest.raises(PlanError) as info:
        parse_plan(answer(CYCLE))
    assert info.value.cycle == ("a", "b", "a")


@pytest.mark.parametrize(
    "content", ["not json at all", json.dumps({"steps": []}), json.dumps({"plan": GOOD}), json.dumps([1, 2])]
)
def test_answers_that_are_not_plans_are_output_errors(content: str) -> None:
    with pytest.raises(ModelOutputError, match="not a valid plan"):
        parse_plan(ChatResponse(content=content))


def test_the_request_shows_the_task_and_the_tools_and_asks_for_the_plan_schema() -> None:
    req = build_planner_request("deploy the shop", [create_vm])
    assert req.inputs == {"task": "deploy the shop", "tools": ["create_vm"]}
    assert req.role == "planner" and req.response_schema == PLAN_SCHEMA and req.schema_name == "plan"
    text = req.messages[-1].content or ""
    assert "deploy the shop" in text and "create_vm: Create a virtual machine." in text
    assert '"cpus"' in text
    assert "planner" in (req.messages[0].content or "")


def test_a_tool_its_spec_and_a_spec_dict_give_the_same_request() -> None:
    as_tool = build_planner_request("deploy the shop", [create_vm])
    spec = as_tool_spec(create_vm)
    openai_form = {"type": "function", "function": create_vm.spec()}
    for other in ([spec], [create_vm.spec()], [openai_form]):
        assert build_planner_request("deploy the shop", other) == as_tool  # one coercion: tools.base.as_tool_spec
    with pytest.raises(ConfigError, match="cannot use 42 as a tool spec"):
        build_planner_request("deploy the shop", [42])


def test_planner_is_re_asked_with_the_validation_error() -> None:
    model = ScriptedChatModel([answer(CYCLE), answer(GOOD)])
    with model:
        outcome = asyncio.run(plan_with_attempts(model, "deploy the shop", [create_vm]))
    assert outcome.value is not None and len(outcome.value.steps) == 4
    assert [a.error is None for a in outcome.attempts] == [False, True]
    assert "cycle: a -> b -> a" in (outcome.attempts[0].error or "")
    second = model.requests[1]
    assert len(second.messages) == 3
    feedback = second.messages[-1].content or ""
    assert "rejected" in feedback and "cycle: a -> b -> a" in feedback
    assert len(model.requests[0].messages) == 2


def test_plan_task_gives_up_after_max_tries_naming_the_last_error() -> None:
    model = ScriptedChatModel([answer(CYCLE), say("sorry"), answer([{"id": "x", "after": ["y"]}])])
    with pytest.raises(ModelOutputError, match=r"no valid plan after 3 attempts: .*unknown step 'y'"):
        asyncio.run(plan_task(model, "t", max_tries=3))
    model.assert_consumed()


def test_a_model_failure_stops_planning_at_once() -> None:
    model = ScriptedChatModel([ModelUnavailable("server down after 5 attempts")])
    outcome = asyncio.run(plan_with_attempts(model, "t"))
    assert isinstance(outcome.fatal, ModelUnavailable) and outcome.value is None
    assert len(outcome.attempts) == 1
    with pytest.raises(ModelUnavailable):
        asyncio.run(plan_task(ScriptedChatModel([ModelUnavailable("down")]), "t"))


def test_planning_over_http_with_the_real_client(openai_server: OpenAIServer) -> None:  # noqa: F811
    openai_server.enqueue(json_answer({"steps": CYCLE}), json_answer({"steps": GOOD}))
    model = OpenAIChatModel("planner-test", api_key="test-key", base_url=openai_server.base_url)
    plan = asyncio.run(plan_task(model, "deploy the shop", [create_vm]))
    assert plan.step("deploy").after == ("deps", "net")
    bodies = [r.body for r in openai_server.completion_requests]
    assert len(bodies) == 2
    assert bodies[0]["response_format"]["json_schema"]["name"] == "plan"
    assert "cycle: a -> b -> a" in bodies[1]["messages"][-1]["content"]
