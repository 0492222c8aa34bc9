"""Runs as OpenTelemetry traces, sent over real OTLP/HTTP (protobuf) to a real receiver
(``tests/support/otlp_receiver.py``, decoding with ``opentelemetry-proto``): the tree, the GenAI
attributes, ids that repeat on a second export, the events' own timestamps, live spans equal to the
exported ones, nothing raw unless asked, and a receiver that is down."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from agentcore.cli.commands import cli
from agentcore.core.events import LLMCalled, RunStarted, ToolFinished
from agentcore.core.plans import Plan, Step
from agentcore.errors import ConfigError, ExportError
from agentcore.export import spans as S
from agentcore.export.otel import export_otlp
from agentcore.models.scripted import ScriptedChatModel, call, respond_json, say
from agentcore.runtime.agent import Agent
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing import demo_agent
from agentcore.tools.base import tool
from tests.support.otlp_receiver import OtlpReceiver

RAW = "RAW-TOOL-OUTPUT-7f3a9"
API_KEY = "sk-test-DO-NOT-EXPORT-0123456789"
TABLE = {"alpha": f"alpha is {RAW}", "beta": f"beta is {RAW}-b"}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def provider_to(url: str) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=10)))
    return provider


def recorded(db: Path, tracer_provider: Any = None) -> str:
    with SQLiteEventStore(db) as store:
        agent = demo_agent(TABLE, store=store)
        agent.tracer_provider = tracer_provider
        result = agent.run_sync("look up alpha and beta")
        assert result.status == "succeeded"
        return str(result.run_id)


def cli_export(*args: str, code: int = 0) -> Any:
    out = CliRunner().invoke(cli, ["export", *args, "--json"])
    assert out.exit_code == code, (out.output, out.exception)
    return json.loads(out.stdout) if code == 0 else out


def test_cli_sends_one_trace_and_a_second_export_repeats_the_same_spans(
    receiver: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    db = tmp_path / "runs.db"
    run_id = recorded(db)
    first = cli_export(run_id, "--otlp", receiver.url, "--db", str(db))
    ids = set(receiver.spans)
    assert first["spans"] == len(ids) and first["trace_id"] == f"{S.trace_id(run_id):032x}"
    again = cli_export(run_id, "--otlp", receiver.url.removesuffix("/v1/traces"), "--db", str(db))
    assert len(receiver.bodies) == 2 and set(receiver.spans) == ids and again["spans"] == first["spans"]

    with SQLiteEventStore(db) as store:
        events = list(store.read(run_id))
    spans = list(receiver.spans.values())
    assert {s["trace_id"] for s in spans} == {first["trace_id"]}
    roots = [s for s in spans if s["parent_id"] is None]
    assert [r["name"] for r in roots] == ["invoke_agent agentcore"]
    root = roots[0]
    assert all(s["parent_id"] == root["span_id"] for s in spans if s is not root)
    assert root["start"] == S.nanos(events[0].at) and root["end"] == S.nanos(events[-1].at)
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert root["attributes"]["agentcore.run.status"] == "succeeded"

    calls = [e for e in events if isinstance(e, LLMCalled)]
    llm = sorted((s for s in spans if s["name"].startswith("chat ")), key=lambda s: s["end"])
    assert len(llm) == len(calls)
    for span, e in zip(llm, calls, strict=True):
        a = span["attributes"]
        assert span["name"] == f"chat {e.model}" and span["span_id"] == f"{S.span_id(run_id, e.seq):016x}"
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == e.model
        assert a["gen_ai.response.model"] == e.model and a["agentcore.role"] == e.role
        assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
            e.usage.prompt_tokens,
            e.usage.completion_tokens,
        )
        assert span["end"] == S.nanos(e.at)
    processor_events = [n for s in llm if s["attributes"]["agentcore.role"] == "processor" for n, _, _ in s["events"]]
    assert processor_events.count("state_patched") == 2 and processor_events.count("fact") == 2

    finished = [e for e in events if isinstance(e, ToolFinished)]
    tools = [s for s in spans if s["name"] == "execute_tool lookup"]
    assert len(tools) == len(finished) == 2
    assert {s["attributes"]["agentcore.artifact.id"] for s in tools} == {
        e.artifact.id for e in finished if e.artifact is not None
    }
    assert all(s["attributes"]["gen_ai.tool.name"] == "lookup" and s["status"] != 2 for s in tools)

    sent = b"".join(receiver.bodies)
    assert RAW.encode() not in sent and API_KEY.encode() not in sent  # nothing raw, no key
    assert b"look up alpha and beta" not in sent  # the task is content too


def test_content_is_sent_only_when_asked(receiver: OtlpReceiver, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = recorded(db)
    cli_export(run_id, "--otlp", receiver.url, "--content", "--header", "x-team=agents", "--db", str(db))
    tools = [s for s in receiver.spans.values() if s["name"] == "execute_tool lookup"]
    assert all(RAW in s["attributes"]["gen_ai.tool.call.result"] for s in tools)
    assert receiver.headers[0].get("x-team") == "agents"


def test_live_spans_are_the_exported_spans(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with OtlpReceiver() as live, OtlpReceiver() as later:
        provider = provider_to(live.url)
        run_id = recorded(db, provider)
        provider.shutdown()
        with SQLiteEventStore(db) as store:
            export_otlp(store, run_id, later.url)

        def shape(r: OtlpReceiver) -> dict[tuple[str, str], Any]:
            return {k: (s["name"], s["parent_id"], s["start"], s["end"], s["attributes"]) for k, s in r.spans.items()}

        assert shape(live) == shape(later) and len(live.spans) == 8


def test_a_run_answered_in_another_process_keeps_one_root_with_all_its_events(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with OtlpReceiver() as receiver:
        with SQLiteEventStore(db) as store:
            first = provider_to(receiver.url)
            asking = Agent(
                ScriptedChatModel([call("ask_user", question="Which key?")]),
                ScriptedChatModel([]),
                store=store,
                tracer_provider=first,
            )
            waiting = asking.run_sync("look something up")
            assert waiting.status == "waiting_for_user"
            first.shutdown()
            assert [s["name"] for s in receiver.spans.values()] == ["chat scripted"]  # no root yet
            second = provider_to(receiver.url)
            answering = Agent(
                ScriptedChatModel([say("alpha it is")]),
                ScriptedChatModel([respond_json({"ops": []})]),
                store=store,
                tracer_provider=second,
            )
            done = answering.answer_sync(waiting.run_id, "alpha")
            second.shutdown()
            assert done.status == "succeeded"
            started = next(e for e in store.read(done.run_id) if isinstance(e, RunStarted))
        spans = list(receiver.spans.values())
        roots = [s for s in spans if s["parent_id"] is None]
        assert len(roots) == 1 and roots[0]["start"] == S.nanos(started.at)
        assert [n for n, _, _ in roots[0]["events"]] == ["decided", "user_messaged", "decided"]
        assert sorted(s["name"] for s in spans) == [
            "chat scripted", "chat scripted", "chat scripted", "invoke_agent agentcore",
        ]  # fmt: skip


def test_plan_steps_are_spans_with_status(receiver: OtlpReceiver) -> None:
    @tool
    def provision(name: str) -> str:
        """Provision one thing.

        Args:
            name: What to provision.
        """
        if name == "net":
            raise RuntimeError("no network today")
        return f"{name}: ok"

    plan = Plan(
        steps=(
            Step(id="vm", description="vm", tool="provision", arguments={"name": "vm"}),
            Step(id="net", description="net", after=("vm",), tool="provision", arguments={"name": "net"}),
        )
    )
    provider = provider_to(receiver.url)
    result = asyncio.run(PlanRunner(tools=[provision], tracer_provider=provider).run("set up", plan, run_id="p1"))
    provider.shutdown()
    assert result.status == "failed"
    steps = {s["name"]: s for s in receiver.spans.values() if s["name"].startswith("step ")}
    assert steps["step vm"]["status"] != 2 and steps["step net"]["status"] == 2  # 2 = ERROR
    assert "no network today" in steps["step net"]["status_message"]
    root = next(s for s in receiver.spans.values() if s["parent_id"] is None)
    assert all(s["parent_id"] == root["span_id"] for s in steps.values())


def test_a_receiver_that_is_down_or_a_bad_url_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = recorded(db)
    with OtlpReceiver() as r:
        url = r.url
    with SQLiteEventStore(db) as store:
        with pytest.raises(ExportError, match="did not accept"):
            export_otlp(store, run_id, url, timeout=2)
        with pytest.raises(ConfigError, match="http"):
            export_otlp(store, run_id, "ftp://example/v1/traces")
    out = cli_export(run_id, "--db", str(db), code=2)  # a usage error
    assert "exactly one of -o FILE" in out.output


def test_a_refusing_receiver_is_one_error_line_naming_its_answer(tmp_path: Path) -> None:
    """The exporter's own log lines (one per retry) stay off stderr: the CLI prints one `Error:` line,
    which carries the receiver's answer (here a 401)."""
    db = tmp_path / "runs.db"
    run_id = recorded(db)

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b"bad token for this tenant"
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        cmd = [sys.executable, "-m", "agentcore", "--db", str(db), "export", run_id, "--otlp", url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: the OTLP receiver at "), done.stderr
    assert "code: 401, reason: Unauthorized" in lines[0]
