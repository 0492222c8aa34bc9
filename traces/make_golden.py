"""Record the golden traces in this directory: ``python traces/make_golden.py``.

Each scenario runs a deterministic scripted agent (``agentcore.testing.demo_agent``) and exports
the run. ``tests/test_replay.py`` replays every ``*.jsonl`` here and fails on the first divergence,
so a change to prompts, parsing or the run loop that alters recorded behaviour is caught. When such
a change is intended, run this script again and commit the new files (model latencies and tool
durations differ between recordings; everything else is stable).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from agentcore.models.base import ChatRequest, ChatResponse
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.trace import export_run
from agentcore.testing import (  # noqa: E402
    CONTROLLER_USAGE,
    FunctionChatModel,
    ScriptedChatModel,
    call,
    demo_agent,
    demo_processor,
    respond_json,
    say,
)

EXPORTED_AT = datetime(2025, 1, 1, tzinfo=timezone.utc)
TABLE = {"alpha": "Paris has 2.1 million people", "beta": "Lyon has 0.5 million", "gamma": "Nice: 0.34 million"}


def _usage(response: ChatResponse) -> ChatResponse:
    return response.model_copy(update={"usage": CONTROLLER_USAGE})


async def basic(store: MemoryEventStore) -> str:
    """Three lookups, three facts, a reply."""
    agent = demo_agent(TABLE, store=store, reply="Paris 2.1M, Lyon 0.5M, Nice 0.34M.")
    result = await agent.run("Find the populations of alpha, beta and gamma.", run_id="golden-basic")
    return result.run_id


async def recovery(store: MemoryEventStore) -> str:
    """An unusable controller answer, a failing tool call and a rejected patch, each recovered from."""
    script = [
        _usage(call("fetch", key="alpha")),  # no such tool: sent back to the model
        _usage(call("lookup", key="omega")),  # the tool fails: a ToolError result
        _usage(call("lookup", key="alpha")),
        say("alpha: Paris has 2.1 million people.", usage=CONTROLLER_USAGE),
    ]
    processor = demo_processor()
    first = [True]

    def flaky(request: ChatRequest) -> Any:
        if first[0]:
            first[0] = False  # the first patch answers a question that does not exist: rejected
            return respond_json({"ops": [{"op": "answer_question", "id": "q-unknown", "answer": "?"}]})
        return processor.fn(request)

    agent = demo_agent(
        TABLE, store=store, controller=ScriptedChatModel(script, name="demo-controller"),
        processor=FunctionChatModel(flaky, name="demo-processor"),
    )  # fmt: skip
    result = await agent.run("Find the population of alpha.", run_id="golden-recovery")
    return result.run_id


async def ask_user(store: MemoryEventStore) -> str:
    """The controller asks which key to look up; the user answers; the run goes on."""
    script = [
        _usage(call("ask_user", question="Which city do you mean: alpha, beta or gamma?")),
        _usage(call("lookup", key="beta")),
        say("Lyon has 0.5 million people.", usage=CONTROLLER_USAGE),
    ]
    agent = demo_agent(TABLE, store=store, controller=ScriptedChatModel(script, name="demo-controller"))
    result = await agent.run("How many people live in the city I mean?", run_id="golden-ask-user")
    assert result.status == "waiting_for_user"
    result = await agent.answer(result.run_id, "beta, please")
    return result.run_id


SCENARIOS: dict[str, Callable[[MemoryEventStore], Any]] = {"basic": basic, "recovery": recovery, "ask_user": ask_user}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Re-record the golden traces in traces/ (after an intended change of agent behaviour)."
    )
    parser.parse_args(argv)
    for name, scenario in SCENARIOS.items():
        store = MemoryEventStore()
        run_id = asyncio.run(scenario(store))
        status = store.run(run_id).status
        if status != "succeeded":
            raise SystemExit(f"scenario {name} ended {status}; not writing its trace")
        recorded = export_run(store, run_id, HERE / f"{name}.jsonl", at=EXPORTED_AT)
        print(f"{name}.jsonl: {recorded['events']} events, {recorded['artifacts']} artifacts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
