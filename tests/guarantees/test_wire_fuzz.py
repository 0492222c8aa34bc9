"""The wire fuzzer: generated completions, through the real openai client, to every role.

The loopback server (``tests/support/openai_server.py``) answers each completion request of a
controller, processor or planner call with a body hypothesis wrote: arbitrary JSON with
non-finite numbers, lone surrogates, huge integers, nesting thousands of levels deep, empty and
missing fields, wrong types, tool calls with odd ids and argument shapes, every finish reason
(and bodies that are no completion at all). ``Agent`` and ``PlanRunner`` runs on a real SQLite file
take those answers through ``OpenAIChatModel``. Whatever comes, every run ends with a status and
a reason, nothing escapes, and the log folds to what ``state_at`` returns (``check_log``).

At least ``PER_ROLE`` generated completions reach each role (counted by the server's handler).
"""

from __future__ import annotations

import asyncio
import collections
import json
import tempfile
import threading
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcore.models.openai import OpenAIChatModel
from agentcore.runtime.agent import Agent, RunResult
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing import lookup_tool
from agentcore.testing.clock import FakeClock
from tests.guarantees.test_crash_torture import check_log
from tests.support.openai_server import OpenAIServer, Reply, json_answer, raw_body, text, tool_calls

PER_ROLE = 1000
"""Generated completions each role must receive in one test run."""
EXAMPLES = 21
BATCH = 50
"""Generated completions per role per hypothesis example (the runs of an example use them up)."""
TABLE = {"a": "the value of a", "b": "the value of b"}
ROLES = ("controller", "processor", "planner")

# -- generated bodies --------------------------------------------------------------------------------
# A body is built as Python data with markers (``DEEP:n``, ``HUGE:n``) that the encoder turns into
# text json.dumps cannot write (nesting thousands deep, integers of thousands of digits).

_surrogate = st.integers(0xD800, 0xDFFF).map(chr)
_text = st.one_of(
    st.text(max_size=30),
    st.tuples(st.text(max_size=10), _surrogate, st.text(max_size=10)).map("".join),
    st.sampled_from(["", " ", "done.", "a is the value of a.", "```json\n{", "# Task\nx\n# Progress\ny"]),
)
_number = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(300, 6000).map(lambda n: f"HUGE:{n}"),
)
_scalar = st.one_of(st.none(), st.booleans(), _number, _text)
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=8,
)
_deep = st.integers(50, 5000).map(lambda n: f"DEEP:{n}")
_any = st.one_of(_value, _deep)


def _arguments(tool_names: tuple[str, ...]) -> st.SearchStrategy[Any]:
    good = st.fixed_dictionaries({"key": st.sampled_from(["a", "b", "zz"])})
    return st.one_of(
        good.map(json.dumps),
        st.dictionaries(st.sampled_from(["key", "limit", "x"]), _any, max_size=3).map(_encode),
        _any.map(_encode),
        _any,  # not a string: an object, array or number where the wire has a string
        st.sampled_from(["", "{", "null", "[]", '{"key": NaN}', '{"key": "a", "n": Infinity}']),
    )


def _tool_call(tool_names: tuple[str, ...]) -> st.SearchStrategy[Any]:
    call = st.fixed_dictionaries(
        {
            "id": st.one_of(st.sampled_from(["call_1", "call_1", "", "x" * 300]), _text, _number, st.none()),
            "type": st.sampled_from(["function", "other"]),
            "function": st.one_of(
                st.fixed_dictionaries(
                    {"name": st.one_of(st.sampled_from(tool_names), _text, _number), "arguments": _arguments(tool_names)}
                ),
                _scalar,
            ),
        }
    )
    return st.one_of(call, _scalar)


def _content(role: str) -> st.SearchStrategy[Any]:
    if role == "controller":
        shaped = st.one_of(
            st.fixed_dictionaries({"reply": _any}),
            st.fixed_dictionaries({"ask_user": _any}),
            st.fixed_dictionaries({"tool_calls": st.lists(st.fixed_dictionaries({"name": _text, "arguments": _any}), max_size=2)}),
        )
    elif role == "processor":
        fact = st.fixed_dictionaries({"key": _any, "value": _any}, optional={"confidence": _number, "source": _any})
        op = st.one_of(
            st.fixed_dictionaries({"op": st.just("append_known_facts"), "facts": st.lists(fact, max_size=2)}),
            st.fixed_dictionaries({"op": _text}, optional={"path": _any, "value": _any}),
        )
        shaped = st.one_of(st.fixed_dictionaries({"ops": st.one_of(st.lists(op, max_size=2), _any)}), st.lists(op, max_size=2))
    else:
        step = st.fixed_dictionaries(
            {"id": _any}, optional={"tool": st.one_of(st.just("lookup"), _any), "arguments": _any, "after": _any}
        )
        shaped = st.fixed_dictionaries({"steps": st.one_of(st.lists(step, max_size=3), _any)})
    return st.one_of(
        shaped.map(_encode),  # JSON text, as the content of a schema or JSON-mode answer
        shaped.map(lambda v: "```json\n" + _encode(v) + "\n```"),
        _text,
        _any,  # a content that is no string at all
        st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _text}), max_size=2),  # content parts
    )


def completions(role: str) -> st.SearchStrategy[str]:
    """Raw completion bodies for ``role`` (JSON text, or not)."""
    tools = ("lookup", "read_artifact", "ask_user")
    message = st.fixed_dictionaries(
        {},
        optional={
            "role": st.one_of(st.just("assistant"), _scalar),
            "content": _content(role),
            "tool_calls": st.one_of(st.lists(_tool_call(tools), max_size=3), _scalar),
        },
    )
    usage = st.one_of(
        st.fixed_dictionaries({}, optional={k: st.one_of(_number, _text) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}),
        _scalar,
    )
    choice = st.fixed_dictionaries(
        {"message": st.one_of(message, _scalar)},
        optional={
            "finish_reason": st.one_of(
                st.sampled_from(["stop", "length", "tool_calls", "content_filter", "function_call", "LENGTH", "eos"]),
                _scalar,
            ),
            "index": _number,
        },
    )
    body = st.fixed_dictionaries(
        {},
        optional={
            "choices": st.one_of(st.lists(choice, min_size=1, max_size=2), _scalar, st.just([])),
            "usage": usage,
            "model": st.one_of(st.just("fuzz-model"), _scalar),
            "object": st.just("chat.completion"),
        },
    )
    whole = st.one_of(body.map(_encode), st.sampled_from(["", "{", "[]", "null", "<html>", "NaN"]), _deep.map(_encode))
    return st.one_of(whole, whole, whole, whole, whole, whole, whole, whole, st.just("VALID"))


def _encode(value: Any) -> str:
    """JSON text of ``value`` with NaN/Infinity, lone-surrogate escapes and the DEEP/HUGE markers expanded."""
    marks: dict[str, str] = {}

    def walk(v: Any) -> Any:
        if isinstance(v, str) and v.startswith(("DEEP:", "HUGE:")) and v[5:].isdigit():
            n = int(v[5:])
            token = f"@@{len(marks)}@@"
            marks[token] = "[" * n + "1" + "]" * n if v.startswith("DEEP") else "9" * n
            return token
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {(k if isinstance(k, str) else str(k)): walk(x) for k, x in v.items()}
        return v

    out = json.dumps(walk(value), ensure_ascii=True, allow_nan=True)
    for token, expansion in marks.items():
        out = out.replace(f'"{token}"', expansion)
    return out


# -- the server side ---------------------------------------------------------------------------------


def role_of(body: Any) -> str:
    """Which role sent a request: the schema name says processor or planner; the rest is the controller."""
    fmt = body.get("response_format") if isinstance(body, dict) else None
    schema = fmt.get("json_schema") if isinstance(fmt, dict) else None
    name = schema.get("name") if isinstance(schema, dict) else None
    return {"plan": "planner", "state_patch": "processor"}.get(str(name), "controller")


def valid(role: str, feed: Feed, body: Any) -> Reply:
    """A healthy answer once a role's generated ones are used up: a lookup while the processor
    still has generated answers to take (so it gets asked), then a reply that ends the run."""
    if role == "controller":
        if not feed.left("processor"):
            return text("a is the value of a.")
        if isinstance(body, dict) and body.get("tools"):
            return tool_calls([("lookup", {"key": "a"})])
        return json_answer({"tool_calls": [{"name": "lookup", "arguments": {"key": "a"}}], "content": None})
    if role == "processor":
        return json_answer({"ops": []})
    return json_answer({"steps": [{"id": "s1", "description": "look up a", "tool": "lookup", "arguments": {"key": "a"}}]})


class Feed:
    """Per role, the generated bodies still to serve; counts what was served."""

    def __init__(self) -> None:
        self.queues: dict[str, collections.deque[str]] = {r: collections.deque() for r in ROLES}
        self.served: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def handler(self, body: Any) -> Reply:
        role = role_of(body)
        with self.lock:
            raw = self.queues[role].popleft() if self.queues[role] else None
            if raw is not None:
                self.served[role] += 1
        if raw is None or raw == "VALID":
            return valid(role, self, body)
        return raw_body(raw)

    def left(self, role: str) -> int:
        with self.lock:
            return len(self.queues[role])


def _model(server: OpenAIServer, tool_mode: str) -> OpenAIChatModel:
    return OpenAIChatModel(
        "fuzz-model",
        api_key="sk-fuzz-0123456789",
        base_url=server.base_url,
        tool_mode=tool_mode,  # type: ignore[arg-type]
        schema_mode="json_schema",
        max_attempts=2,
        timeout=10,
        clock=FakeClock(),
    )


def _check(db: Path, result: RunResult) -> None:
    assert result.status in ("succeeded", "failed", "waiting_for_user"), result
    if result.status == "failed":
        assert result.reason, result
    if result.status == "waiting_for_user":
        assert result.reason, "a run waiting for the user names the question"
    check_log(db, result.run_id, f"run {result.run_id} ({result.status}: {result.reason})")


async def _drive(feed: Feed, server: OpenAIServer, db: Path, tool_mode: str) -> int:
    runs = 0
    model = _model(server, tool_mode)
    with SQLiteEventStore(db) as store:
        agent = Agent(model, model, [lookup_tool(TABLE)], store, max_steps=3, max_output_retries=3, max_patch_retries=2)
        planner = PlanRunner(store, tools=[lookup_tool(TABLE)], planner_model=model, max_planner_tries=3)
        try:
            for _ in range(200):
                if not any(feed.left(r) for r in ("controller", "processor")):
                    break
                result = await agent.run("Look up a and b.")
                _check(db, result)
                if result.status == "waiting_for_user":
                    result = await agent.answer(result.run_id, "yes, go on")
                    _check(db, result)
                runs += 1
            for _ in range(200):
                if not feed.left("planner"):
                    break
                _check(db, await planner.run("Look up a."))
                runs += 1
        finally:
            await model.aclose()
    return runs


def test_generated_completions_never_break_a_run(openai_server: OpenAIServer) -> None:
    feed = Feed()
    openai_server.handler = feed.handler

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        controller=st.lists(completions("controller"), min_size=BATCH, max_size=BATCH),
        processor=st.lists(completions("processor"), min_size=BATCH, max_size=BATCH),
        planner=st.lists(completions("planner"), min_size=BATCH, max_size=BATCH),
        tool_mode=st.sampled_from(["native", "json", "auto"]),
    )
    def example(controller: list[str], processor: list[str], planner: list[str], tool_mode: str) -> None:
        for role, batch in (("controller", controller), ("processor", processor), ("planner", planner)):
            feed.queues[role].clear()
            feed.queues[role].extend(batch)
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(_drive(feed, openai_server, Path(tmp) / "fuzz.db", tool_mode))
        assert not any(feed.left(r) for r in ROLES), "every generated completion was served"

    example()
    assert all(feed.served[r] >= PER_ROLE for r in ROLES), feed.served
