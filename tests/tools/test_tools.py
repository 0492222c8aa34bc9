"""Tools: schemas from type hints and docstrings, the runner's results, bounded payloads, read_artifact."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from agentcore.core.events import ArtifactRef, ToolCall, ToolFinished
from agentcore.core.values import sha256_id
from agentcore.errors import ConfigError, ToolError, ToolTimeout
from agentcore.storage.artifacts import JSON, TEXT, ArtifactStore, MemoryArtifactStore
from agentcore.testing.clock import FakeClock
from agentcore.tools.base import Tool, ToolContext, ToolResult, tool
from agentcore.tools.builtin import read_artifact
from agentcore.tools.payloads import PAYLOAD_NOTE_CHARS, bound_text, list_payload, natural_key
from agentcore.tools.runner import MAX_ERROR_CHARS, ToolRunner

ID = sha256_id(b"x")
REF = ArtifactRef(id=ID, size=1)


@pytest.fixture(params=["memory", "sqlite"])
def artifacts(request: pytest.FixtureRequest, db_path: Path) -> Iterator[ArtifactStore]:
    """The in-memory artifact store and the one in a real SQLite file."""
    if request.param == "memory":
        yield MemoryArtifactStore()
        return
    from agentcore.storage.sqlite.store import SQLiteEventStore

    store = SQLiteEventStore(db_path)
    try:
        yield store.artifacts
    finally:
        store.close()


def run(
    runner: ToolRunner, name: str, key: str | None = None, call_id: str = "call_1", **arguments: object
) -> ToolResult:
    return asyncio.run(runner.run(ToolCall(id=call_id, name=name, arguments=arguments), idempotency_key=key))


def bounded(result: ToolResult, runner: ToolRunner) -> bool:
    return len(result.payload) <= runner.payload_chars + PAYLOAD_NOTE_CHARS


# --- schemas -------------------------------------------------------------------------------------


class Window(BaseModel):
    start: int
    end: int = 10


@tool
def search(
    query: str,
    mode: Literal["exact", "regex"] = "exact",
    paths: list[str] | None = None,
    limit: int = 5,
    window: Window | None = None,
    idempotency_key: str | None = None,
) -> list[str]:
    """Search the documents for a query.

    Longer explanation that is not part of the description.

    Args:
        query: The text to find.
            It may span two lines.
        mode (str): How to match.
        paths: Only these paths.
        limit: Most results.
        window: Line window.
        idempotency_key: Filled by the runner.

    Returns:
        Matching lines.
    """
    return [f"{query}:{i}" for i in range(limit)]


def test_schema_from_type_hints_and_docstring() -> None:
    spec = search.spec()
    assert spec["name"] == "search"
    assert spec["description"] == "Search the documents for a query."
    params = spec["parameters"]
    props = params["properties"]
    assert list(props) == ["query", "mode", "paths", "limit", "window"]  # the key is the runner's, not the model's
    assert params["required"] == ["query"]
    assert params["additionalProperties"] is False
    assert props["query"] == {"type": "string", "description": "The text to find. It may span two lines."}
    assert props["mode"]["enum"] == ["exact", "regex"] and props["mode"]["default"] == "exact"
    assert props["mode"]["description"] == "How to match."
    assert props["paths"]["anyOf"] == [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
    assert props["limit"] == {"type": "integer", "default": 5, "description": "Most results."}
    assert props["window"]["anyOf"][0] == {"$ref": "#/$defs/Window"}
    assert params["$defs"]["Window"]["required"] == ["start"]
    assert "title" not in json.dumps(params)


def test_options_override_name_and_description_and_context_is_hidden() -> None:
    @tool(name="lookup", description="Look a key up.", timeout=None, top_k=3)
    async def fn(key: str, ctx: ToolContext) -> str:
        return key

    assert fn.spec() == {
        "name": "lookup",
        "description": "Look a key up.",
        "parameters": {
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "required": ["key"],
            "additionalProperties": False,
        },
    }
    assert fn.is_async and fn.timeout is None and fn.top_k == 3 and fn.context_params == ("ctx",)


def test_parameter_names_that_clash_with_pydantic_still_work(artifacts: ArtifactStore) -> None:
    @tool
    def echo(schema: str, model_name: str = "m") -> dict:
        """Echo."""
        return {"schema": schema, "model_name": model_name}

    assert list(echo.parameters["properties"]) == ["schema", "model_name"]
    result = run(ToolRunner([echo], artifacts), "echo", schema="s", model_name="n")
    assert result.ok and json.loads(result.payload) == {"schema": "s", "model_name": "n"}


def test_decoration_errors_name_the_problem() -> None:
    def no_hint(query, limit: int = 3) -> str:  # type: ignore[no-untyped-def]
        return ""

    with pytest.raises(ConfigError, match=r"parameter 'query' has no type hint"):
        tool(no_hint)

    def star(*names: str) -> str:
        return ""

    with pytest.raises(ConfigError, match="'names' is variadic positional"):
        tool(star)

    def documented_typo(query: str) -> str:
        """Find.

        Args:
            qeury: The text.
        """
        return ""

    with pytest.raises(ConfigError, match="documents 'qeury', which is not a parameter"):
        tool(documented_typo)

    class Local(BaseModel):
        x: int

    def local_type(v: Local) -> str:
        return ""

    with pytest.raises(ConfigError, match="define the types it uses at module level"):
        tool(local_type)
    with pytest.raises(ConfigError, match="tool name 'bad name'"):
        tool(name="bad name")(search.fn)
    with pytest.raises(ConfigError, match="timeout must be > 0"):
        tool(timeout=0)(search.fn)


# --- running tools -------------------------------------------------------------------------------


@tool
def sync_thread() -> int:
    """Report the thread it runs on."""
    return threading.get_ident()


@tool
async def async_thread() -> int:
    """Report the thread it runs on."""
    return threading.get_ident()


def test_sync_tools_run_in_a_worker_thread_and_async_tools_in_the_loop(artifacts: ArtifactStore) -> None:
    runner = ToolRunner([sync_thread, async_thread], artifacts)

    async def main() -> tuple[ToolResult, ToolResult, int]:
        a = await runner.run(ToolCall(id="a", name="sync_thread"))
        b = await runner.run(ToolCall(id="b", name="async_thread"))
        return a, b, threading.get_ident()

    a, b, loop_thread = asyncio.run(main())
    assert a.ok and b.ok and a.kind == b.kind == "ok"
    assert int(b.payload) == loop_thread and int(a.payload) != loop_thread
    assert sync_thread() == threading.get_ident()  # a Tool still calls its function


def test_an_awaitable_a_tool_returns_is_awaited_and_its_value_is_the_result(artifacts: ArtifactStore) -> None:
    """A tool may return an awaitable (a sync tool returning a coroutine, an async tool returning a
    future): the runner awaits it, however deep, and stores its value."""

    @tool(timeout=None)
    async def later(text: str) -> object:
        """Return an awaitable of an awaitable of the text."""
        return asyncio.sleep(0, result=asyncio.sleep(0, result=text))

    @tool
    def deferred(text: str) -> object:
        """Return a coroutine of the text, from a worker thread."""

        async def value() -> str:
            return text

        return value()

    runner = ToolRunner([later, deferred], artifacts)
    for name in ("later", "deferred"):
        result = run(runner, name, text="done")
        assert result.ok and result.payload == "done" and result.artifact is not None
        assert artifacts.read(result.artifact.id) == b"done"


def test_results_store_the_raw_output_by_type(artifacts: ArtifactStore) -> None:
    @tool
    def out(kind: str) -> object:
        """Return one kind of value."""
        values: dict[str, object] = {
            "text": "héllo",
            "bytes": b"\x00\xff\xfe",
            "dict": {"b": 1, "a": [1, 2]},
            "model": Window(start=3),
            "none": None,
        }
        return values[kind]

    runner = ToolRunner([out], artifacts)
    text = run(runner, "out", kind="text")
    assert text.payload == "héllo" and text.artifact is not None and text.artifact.media_type == TEXT
    assert artifacts.read(text.artifact.id) == "héllo".encode() and text.output_size == 6
    raw = run(runner, "out", kind="bytes")
    assert raw.artifact is not None and artifacts.read(raw.artifact.id) == b"\x00\xff\xfe"
    assert raw.payload.startswith("<3 bytes of binary data>") and raw.artifact.id in raw.payload
    obj = run(runner, "out", kind="dict")
    assert obj.payload == '{"a":[1,2],"b":1}' and obj.artifact is not None and obj.artifact.media_type == JSON
    model = run(runner, "out", kind="model")
    assert model.artifact is not None and json.loads(artifacts.read(model.artifact.id)) == {"start": 3, "end": 10}
    nothing = run(runner, "out", kind="none")
    assert nothing.ok and nothing.artifact is None and nothing.payload == "(no output)"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_an_output_json_cannot_hold_is_stored_as_its_text(artifacts: ArtifactStore, value: float) -> None:
    @tool
    def measure() -> object:
        """Return a measurement that is not a JSON number."""
        return {"ratio": value, "items": [1, value]}

    result = run(ToolRunner([measure], artifacts), "measure")
    expected = str({"ratio": value, "items": [1, value]})
    assert result.ok and result.artifact is not None and result.artifact.media_type == TEXT
    assert artifacts.read(result.artifact.id).decode() == expected and result.payload == expected
    with pytest.raises(ValueError):
        artifacts.put_json({"ratio": value})  # canonical JSON never writes NaN or Infinity


def test_tool_error_is_a_message_other_exceptions_are_failures(artifacts: ArtifactStore) -> None:
    @tool
    def fails(how: str) -> str:
        """Fail on purpose."""
        if how == "tool_error":
            raise ToolError("no row 42; call list_rows first")
        if how == "tool_timeout":
            raise ToolTimeout("the backend did not answer in 5 s")
        if how == "exit":
            raise SystemExit(3)
        raise ValueError("boom")

    runner = ToolRunner([fails], artifacts)
    told = run(runner, "fails", how="tool_error")
    assert (told.ok, told.kind, told.payload, told.error) == (
        False, "tool_error", "no row 42; call list_rows first", "no row 42; call list_rows first",
    )  # fmt: skip
    crashed = run(runner, "fails", how="value")
    assert (crashed.ok, crashed.kind) == (False, "error")
    assert crashed.error == "Tool 'fails' failed: ValueError: boom" and crashed.artifact is None
    assert crashed.exception is ValueError and told.exception is None  # typed: nobody parses the text
    assert run(runner, "fails", how="tool_timeout").kind == "timeout"
    exited = run(runner, "fails", how="exit")
    assert (exited.kind, exited.error) == ("error", "Tool 'fails' failed: SystemExit: 3")


def test_timeouts_of_async_and_sync_tools(artifacts: ArtifactStore) -> None:
    release = threading.Event()

    @tool(timeout=0.05)
    async def hangs() -> str:
        """Wait forever."""
        await asyncio.Event().wait()
        return "never"

    @tool(timeout=0.05)
    def blocks() -> str:
        """Block until released."""
        release.wait(30)
        return "late"

    runner = ToolRunner([hangs, blocks], artifacts)
    try:
        for name in ("hangs", "blocks"):
            result = run(runner, name)
            assert (result.ok, result.kind) == (False, "timeout")
            assert result.error == f"Tool {name!r} timed out after 0.05 s and was abandoned; " + (
                "try narrower arguments or another approach"
            )
    finally:
        release.set()


def test_unknown_tool_lists_the_available_tools(artifacts: ArtifactStore) -> None:
    runner = ToolRunner([search, sync_thread], artifacts)
    result = run(runner, "serch", query="x")
    assert (result.ok, result.kind) == (False, "unknown_tool")
    assert result.payload == (
        "Unknown tool 'serch'; available: read_artifact, search, sync_thread. Did you mean 'search'?"
    )


def test_invalid_arguments_list_each_field_and_the_tool_is_not_called(artifacts: ArtifactStore) -> None:
    calls: list[str] = []

    @tool
    def find(query: str, limit: int = 5, mode: Literal["a", "b"] = "a") -> str:
        """Find."""
        calls.append(query)
        return query

    runner = ToolRunner([find], artifacts)
    result = run(runner, "find", limit="many", mode="c", colour="red")
    assert (result.ok, result.kind, calls) == (False, "validation", [])
    assert result.payload.splitlines() == [
        "Invalid arguments for tool 'find':",
        "- query: Field required (expected string)",
        '- limit: Input should be a valid integer, unable to parse string as an integer (expected integer; got "many")',
        '- mode: Input should be \'a\' or \'b\' (expected one of "a", "b"; got "c")',
        "- colour: not a parameter of 'find' (its parameters: query, limit, mode)",
        "Fix these arguments and call 'find' again.",
    ]
    nested = run(ToolRunner([search], artifacts), "search", query="q", window={"start": "x"})
    assert "- window.start: Input should be a valid integer" in nested.payload
    assert '(expected integer; got "x")' in nested.payload


def test_idempotency_key_reaches_the_tool_and_the_model_cannot_set_it(artifacts: ArtifactStore) -> None:
    @tool
    def charge(amount: int, idempotency_key: str | None = None) -> str:
        """Charge once per key."""
        return f"{amount} {idempotency_key}"

    @tool
    def ctx_tool(ctx: ToolContext) -> str:
        """Report its context."""
        return f"{ctx.call_id} {ctx.tool} {ctx.idempotency_key} {ctx.artifacts is artifacts}"

    runner = ToolRunner([charge, ctx_tool], artifacts)
    assert run(runner, "charge", key="run_1/s1/2", amount=5).payload == "5 run_1/s1/2"
    assert run(runner, "charge", amount=5).payload == "5 None"
    spoofed = run(runner, "charge", amount=5, idempotency_key="mine")
    assert spoofed.kind == "validation" and "idempotency_key: not a parameter" in spoofed.payload
    results = asyncio.run(
        runner.run_many(
            [ToolCall(id="c2", name="ctx_tool"), ToolCall(id="c1", name="charge", arguments={"amount": 1})],
            idempotency_keys={"c1": "r/s/1", "c2": "r/s/2"},
        )
    )
    assert [r.payload for r in results] == ["1 r/s/1", "c2 ctx_tool r/s/2 True"]


def test_duration_comes_from_the_injected_clock_and_results_become_events(artifacts: ArtifactStore) -> None:
    clock = FakeClock()

    @tool(name="search")
    async def slow_search(query: str) -> str:
        """Search slowly (a quarter of a virtual second)."""
        await clock.sleep(0.25)
        return f"{query}:0"

    runner = ToolRunner([slow_search], artifacts, clock=clock)
    result = run(runner, "search", query="q")
    assert result.duration_ms == 250.0 and clock.monotonic() == 0.25  # virtual time, no real wait
    assert run(runner, "search", query="q").duration_ms == 250.0
    at = datetime(2024, 1, 1, tzinfo=timezone.utc)
    event = result.to_event(run_id="r", seq=4, at=at, caused_by=3, step_id="s1")
    assert isinstance(event, ToolFinished)
    assert (event.call_id, event.name, event.ok, event.payload, event.artifact) == (
        "call_1", "search", True, "q:0", result.artifact,
    )  # fmt: skip
    assert (event.duration_ms, event.caused_by, event.step_id) == (250.0, 3, "s1")


def test_runner_settings_are_checked(artifacts: ArtifactStore) -> None:
    with pytest.raises(ConfigError, match="two tools are named 'search'"):
        ToolRunner([search, search], artifacts)
    with pytest.raises(ConfigError, match="decorate the function with @tool"):
        ToolRunner([search.fn], artifacts)  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="payload_chars must be >= 1"):
        ToolRunner([], artifacts, payload_chars=0)
    runner = ToolRunner([search], artifacts, include_read_artifact=False)
    assert runner.names == ("search",) and runner.get("search") is search and runner.get("nope") is None
    assert runner.specs() == [search.spec()]
    assert ToolRunner([search], artifacts).names == ("search", "read_artifact")


# --- payloads ------------------------------------------------------------------------------------


def test_text_payload_is_the_head_with_counts_and_where_to_continue(artifacts: ArtifactStore) -> None:
    text = "".join(f"line {i:04d} é\n" for i in range(1000))  # 12 characters, 13 bytes per line

    @tool
    def dump() -> str:
        """Dump text."""
        return text

    runner = ToolRunner([dump], artifacts, payload_chars=100)
    result = run(runner, "dump")
    assert result.artifact is not None and bounded(result, runner)
    shown, note = result.payload.split("[... ", 1)
    assert text.startswith(shown) and len(shown) == 96  # 8 whole lines: the cut falls on a line break
    offset = len(shown.encode())
    assert note == (
        f"{len(text) - 96} more characters (992 more lines) not shown; full output: "
        f"artifact {result.artifact.id} ({len(text.encode())} bytes); "
        f"read_artifact(id='{result.artifact.id}', offset={offset}) continues from here]"
    )
    rest = run(runner, "read_artifact", id=result.artifact.id, offset=offset, limit=28)
    assert rest.payload.startswith("line 0008 é\nline 0009 é\n")


def test_list_payload_shows_top_k_items(artifacts: ArtifactStore) -> None:
    @tool(top_k=3)
    def many(n: int) -> list[dict]:
        """Many items."""
        return [{"i": i} for i in range(n)]

    runner = ToolRunner([many], artifacts)
    result = run(runner, "many", n=50)
    assert result.artifact is not None and len(json.loads(artifacts.read(result.artifact.id))) == 50
    lines = result.payload.splitlines()
    assert lines[:3] == ['{"i":0}', '{"i":1}', '{"i":2}']
    assert lines[3].startswith(f"[... 47 more items not shown (50 in all); full output: artifact {result.artifact.id}")
    assert run(runner, "many", n=3).payload == '{"i":0}\n{"i":1}\n{"i":2}'  # nothing left out: no note
    default_k = run(ToolRunner([search], artifacts, top_k=2), "search", query="q", limit=4)
    assert default_k.payload.startswith("q:0\nq:1\n[... 2 more items not shown (4 in all)")


class Report(BaseModel):
    rows: list[int]

    def summary(self, top_k: int) -> str:
        return f"{len(self.rows)} rows; first {top_k}: {self.rows[:top_k]}"


class Page(BaseModel):
    text: str

    def summary(self) -> str:
        return self.text


class Hits(BaseModel):
    hits: list[int]
    show: int

    def summary(self, top_k: int | None = None) -> str:
        return f"hits {self.hits[: top_k or self.show]}"


def test_summaries_from_the_tool_or_the_result_object(artifacts: ArtifactStore) -> None:
    @tool(summarize=lambda rows: f"{len(rows)} rows, max {max(rows)}")
    def rows() -> list[int]:
        """Rows."""
        return list(range(100))

    @tool(top_k=2)
    def report() -> Report:
        """A report."""
        return Report(rows=[5, 6, 7])

    @tool
    def page(size: int) -> Page:
        """A page."""
        return Page(text="x" * size)

    @tool(summarize=lambda _: 1 / 0)  # type: ignore[arg-type,misc]
    def broken() -> str:
        """Summary fails."""
        return "raw"

    @tool
    def hits(show: int) -> Hits:
        """Hits; the model says how many to show."""
        return Hits(hits=[1, 2, 3, 4], show=show)

    @tool(top_k=1)
    def one_hit() -> Hits:
        """Hits; the tool says how many to show."""
        return Hits(hits=[1, 2, 3, 4], show=3)

    runner = ToolRunner([rows, report, page, broken, hits, one_hit], artifacts, payload_chars=50, top_k=2)
    assert run(runner, "hits", show=3).payload.startswith("hits [1, 2, 3]\n[summary; ")  # not the runner's top_k
    assert run(runner, "one_hit").payload.startswith("hits [1]\n[summary; ")
    by_tool = run(runner, "rows")
    assert by_tool.artifact is not None
    assert by_tool.payload == f"100 rows, max 99\n[summary; full output: artifact {by_tool.artifact.id} " + (
        f"({by_tool.artifact.size} bytes); page through it with read_artifact(id='{by_tool.artifact.id}')]"
    )
    assert run(runner, "report").payload.startswith("3 rows; first 2: [5, 6]\n[summary; full output: artifact ")
    cut = run(runner, "page", size=500)
    assert cut.payload.startswith("x" * 50 + "\n[summary, cut to 50 characters; full output") and bounded(cut, runner)
    failed = run(runner, "broken")
    assert (failed.ok, failed.kind) == (False, "error") and bounded(failed, runner)
    assert failed.error == "Tool 'broken' ran, but summarizing its output failed: ZeroDivisionError: division by zero"
    assert failed.artifact is not None and artifacts.read(failed.artifact.id) == b"raw"  # the output is kept


@settings(deadline=None)
@given(text=st.text(max_size=3000), limit=st.integers(1, 500), aligned=st.booleans())
def test_bound_text_never_exceeds_the_bound_and_shows_a_prefix(text: str, limit: int, aligned: bool) -> None:
    payload = bound_text(text, REF, limit, aligned=aligned)
    assert len(payload) <= limit + PAYLOAD_NOTE_CHARS
    if len(text) <= limit:
        assert payload == text
    else:
        head, note = payload.rsplit("[... ", 1)
        left = int(note.split(" ", 1)[0])
        shown = text[: len(text) - left]
        assert 0 < left <= len(text) and len(shown) <= limit
        assert head == shown + ("" if shown.endswith("\n") else "\n")  # the note starts on a line of its own
        assert ID in note


@settings(deadline=None)
@given(items=st.lists(st.text(max_size=200) | st.integers()), limit=st.integers(1, 400), top_k=st.integers(1, 20))
def test_list_payload_never_exceeds_the_bound(items: list[object], limit: int, top_k: int) -> None:
    payload = list_payload(items, REF, limit, top_k)
    assert len(payload) <= limit + PAYLOAD_NOTE_CHARS
    if len(items) > top_k:
        assert "more items not shown" in payload and f"({len(items)} in all)" in payload


def test_natural_order_of_call_ids() -> None:
    ids = ["call_10", "call_2", "b", "call_1", "a10", "a9"]
    assert sorted(ids, key=natural_key) == ["a9", "a10", "b", "call_1", "call_2", "call_10"]


# --- run_many ------------------------------------------------------------------------------------


def test_run_many_runs_concurrently_and_orders_results_by_call_id(artifacts: ArtifactStore) -> None:
    ping_ready, pong_ready = asyncio.Event(), asyncio.Event()
    barrier = threading.Barrier(2, timeout=10)

    @tool(timeout=10)
    async def ping() -> str:
        """Wait for pong."""
        ping_ready.set()
        await pong_ready.wait()  # deadlocks (and times out) unless pong runs at the same time
        return "ping"

    @tool(timeout=10)
    async def pong() -> str:
        """Wait for ping."""
        pong_ready.set()
        await ping_ready.wait()
        return "pong"

    @tool(timeout=10)
    def meet(who: str) -> str:
        """Meet in two threads."""
        barrier.wait()  # BrokenBarrierError unless both sync calls run at once
        return who

    runner = ToolRunner([ping, pong, meet], artifacts)
    calls = [
        ToolCall(id="call_10", name="ping"),
        ToolCall(id="call_2", name="pong"),
        ToolCall(id="call_1", name="meet", arguments={"who": "x"}),
        ToolCall(id="call_3", name="meet", arguments={"who": "y"}),
        ToolCall(id="call_11", name="nope"),
    ]
    results = asyncio.run(runner.run_many(calls))
    assert [r.call_id for r in results] == ["call_1", "call_2", "call_3", "call_10", "call_11"]
    assert [r.payload for r in results[:4]] == ["x", "pong", "y", "ping"]
    assert results[4].kind == "unknown_tool"
    with pytest.raises(ConfigError, match="repeated: a"):
        asyncio.run(runner.run_many([ToolCall(id="a", name="ping"), ToolCall(id="a", name="pong")]))
    with pytest.raises(ConfigError, match="not in the batch: zz"):
        asyncio.run(runner.run_many([ToolCall(id="a", name="ping")], idempotency_keys={"zz": "k"}))


# --- read_artifact and large outputs -------------------------------------------------------------


def test_read_artifact_pages_to_the_end_without_splitting_characters(artifacts: ArtifactStore) -> None:
    text = "".join(f"{i} añb €😀 line\n" for i in range(4000))  # multi-byte characters everywhere
    ref = artifacts.put(text.encode(), TEXT)
    runner = ToolRunner([], artifacts, payload_chars=997)
    pages, offset = [], 0
    while True:
        result = run(runner, "read_artifact", id=ref.id, offset=offset, limit=4000)
        assert result.ok and result.artifact == ref and bounded(result, runner)
        body, note = result.payload.rsplit("\n[", 1)
        assert "\ufffd" not in body
        pages.append(body)
        start, end = (int(x) for x in note.split("bytes ")[1].split(" of")[0].split(".."))
        assert start == offset and end - start <= 997
        if note.endswith("end of artifact]"):
            break
        assert note.endswith(f"; next: offset={end}]")
        offset = end
    assert "".join(pages) == text
    assert -(-ref.size // 997) <= len(pages) <= -(-ref.size // 994)  # a page gives back at most 3 bytes
    assert not artifacts.exists(sha256_id(pages[0].encode()))  # a page is not stored again


def page_through(runner: ToolRunner, artifact: str, limit: int, offset: int = 0) -> list[tuple[int, int, str]]:
    """(start, end, text) of every page from ``offset`` to the end; fails if the next offset stalls."""
    pages = []
    for _ in range(100):
        result = run(runner, "read_artifact", id=artifact, offset=offset, limit=limit)
        assert result.ok, result.payload
        body, note = result.payload.rsplit("\n[", 1)
        start, end = (int(x) for x in note.split("bytes ")[1].split(" of")[0].split(".."))
        pages.append((start, end, body))
        if note.endswith("end of artifact]"):
            return pages
        assert note.endswith(f"; next: offset={end}]") and end > offset, note
        offset = end
    raise AssertionError(f"no end after 100 pages: {pages[-3:]}")


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_read_artifact_with_a_limit_smaller_than_a_character_shows_each_character_once(
    artifacts: ArtifactStore, limit: int
) -> None:
    ref = artifacts.put("€€€".encode(), TEXT)  # 3 bytes per character
    runner = ToolRunner([], artifacts)
    pages = page_through(runner, ref.id, limit)
    assert [(start, end, body) for start, end, body in pages] == [(0, 3, "€"), (3, 6, "€"), (6, 9, "€")]
    mid = page_through(runner, ref.id, limit, offset=1)  # inside a character: starts at the next one
    assert [body for _, _, body in mid] == ["€", "€"] and mid[0][0] == 3
    mixed = artifacts.put("a€😀b".encode(), TEXT)  # 1, 3, 4 and 1 bytes
    assert "".join(body for _, _, body in page_through(runner, mixed.id, limit)) == "a€😀b"
    assert all("\ufffd" not in body and body for _, _, body in page_through(runner, mixed.id, limit))


def test_read_artifact_errors_are_messages_for_the_model(artifacts: ArtifactStore) -> None:
    ref = artifacts.put(b"abc", TEXT)
    runner = ToolRunner([], artifacts)
    missing = run(runner, "read_artifact", id=sha256_id(b"nothing"))
    assert missing.kind == "tool_error" and "pass an artifact id exactly as a tool result gave it" in missing.payload
    assert run(runner, "read_artifact", id="nonsense").kind == "tool_error"
    past = run(runner, "read_artifact", id=ref.id, offset=9)
    assert past.payload == f"offset 9 is past the end of artifact {ref.id} (3 bytes); use 0..3"
    negative = run(runner, "read_artifact", id=ref.id, offset=-1)
    assert negative.kind == "validation" and "offset: Input should be greater than or equal to 0" in negative.payload
    middle = run(runner, "read_artifact", id=ref.id, offset=1, limit=1)
    assert middle.payload == f"b\n[{TEXT}, bytes 1..2 of 3; next: offset=2]"
    assert read_artifact.spec()["parameters"]["required"] == ["id"]


def test_50_mb_output_is_stored_once_and_the_payload_stays_bounded(artifacts: ArtifactStore) -> None:
    line = "0123456789abcdef" * 4 + "\n"  # 65 bytes
    big = line * (50 * 1024 * 1024 // len(line))

    @tool
    def huge() -> str:
        """Return 50 MB of text."""
        return big

    runner = ToolRunner([huge], artifacts)
    result = run(runner, "huge")
    assert result.ok and result.artifact is not None and result.output_size == len(big) > 50_000_000
    assert artifacts.info(result.artifact.id).size == len(big)
    assert bounded(result, runner) and result.payload.startswith(line)
    shown = result.payload.index("[... ")
    assert f"... {len(big) - shown} more characters ({len(big) // len(line) - shown // len(line)} more lines)" in (
        result.payload
    )
    last = run(runner, "read_artifact", id=result.artifact.id, offset=len(big) - 100)
    assert last.payload == big[-100:] + f"\n[{TEXT}, bytes {len(big) - 100}..{len(big)} of {len(big)}; end of artifact]"
    again = run(runner, "huge")
    assert again.artifact == result.artifact


def test_a_tool_object_is_what_the_decorator_returns() -> None:
    assert isinstance(search, Tool) and isinstance(read_artifact, Tool)
    assert search(query="q", limit=2) == ["q:0", "q:1"]


def _factory(default: int) -> Tool:
    @tool
    def scale(x: int, factor: int = default) -> int:
        """Scale a number.

        Args:
            x: The number.
            factor: How much.
        """
        return x * factor

    return scale


def test_a_tool_defined_in_a_factory_is_described_once_per_shape() -> None:
    """A factory that defines its tool inside (one closure per run, as a worker's app does) reuses
    the arguments model and schema while the function's parts are the same; a different default
    gets its own schema, and no two tools share a mutable schema."""
    first, second, other = _factory(2), _factory(2), _factory(3)
    assert first.args_model is second.args_model
    assert first.parameters == second.parameters and first.parameters is not second.parameters
    assert first.parameters["properties"]["factor"]["default"] == 2
    assert other.parameters["properties"]["factor"]["default"] == 3 and other.args_model is not first.args_model
    first.parameters["properties"].clear()
    assert _factory(2).parameters["properties"]["factor"]["default"] == 2
    assert first.bind({"x": 4}) == {"x": 4, "factor": 2} and other.bind({"x": 4}) == {"x": 4, "factor": 3}


# --- long failure messages -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["tool_error", "exception", "unknown_tool"])
def test_a_long_failure_message_is_bounded_in_the_result_and_kept_whole_as_an_artifact(
    artifacts: ArtifactStore, how: str
) -> None:
    """A tool that fails with a huge message (a command's whole stderr, an echoed argument) must not
    put it into the ``ToolFinished`` event (nor, for a plan step, into the state): the result's error
    is bounded like a payload and points to the artifact holding the message whole."""
    message = "line of stderr \ud800\n" * 50_000  # a lone surrogate too: a tool's bytes are not always text

    @tool
    def noisy() -> str:
        """Fail loudly."""
        if how == "tool_error":
            raise ToolError(message)
        raise RuntimeError(message)

    runner = ToolRunner([noisy], artifacts, payload_chars=500)
    result = run(runner, "noisy" if how != "unknown_tool" else message.replace("\ud800", "?"))
    assert not result.ok and result.error is not None
    assert len(result.error) <= MAX_ERROR_CHARS + PAYLOAD_NOTE_CHARS and bounded(result, runner)
    assert result.error.startswith(result.payload[:100])
    assert result.artifact is not None and result.artifact.id in result.error
    whole = artifacts.read(result.artifact.id).decode("utf-8")
    if how == "unknown_tool":  # the message quotes the name the model sent (repr)
        assert whole.startswith("Unknown tool 'line of stderr ?") and whole.count("line of stderr") == 50_000
    else:
        assert whole.count("line of stderr \ufffd\n") == 50_000
    event = result.to_event(run_id="run_x", seq=2, at=datetime.now(timezone.utc))
    assert len(event.error or "") + len(event.payload) <= MAX_ERROR_CHARS + runner.payload_chars + 2 * PAYLOAD_NOTE_CHARS


def test_a_short_failure_message_stays_as_it_is(artifacts: ArtifactStore) -> None:
    @tool
    def brief() -> str:
        """Fail briefly."""
        raise ToolError("no such row; call list_rows first")

    result = run(ToolRunner([brief], artifacts), "brief")
    assert (result.ok, result.error, result.payload, result.artifact) == (
        False, "no such row; call list_rows first", "no such row; call list_rows first", None,
    )  # fmt: skip
