"""A run exported to Arize Phoenix (a real OpenTelemetry backend, started here on 127.0.0.1) and read
back through Phoenix's own REST API: one trace, the tree, the names, the token counts, no API key
and no raw tool output; exporting again adds no span."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agentcore.cli.commands import cli
from agentcore.core.events import LLMCalled
from agentcore.export import spans as S
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing import demo_agent
from tests.support.phoenix import Phoenix, running_phoenix

RAW = "RAW-TOOL-OUTPUT-5c1e2"
API_KEY = "sk-test-DO-NOT-EXPORT-9876543210"


def flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Phoenix nests dotted attribute names (``{"gen_ai": {"usage": ...}}``); flatten them back."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for k, v in value.items():
        out.update(flat(v, f"{prefix}.{k}" if prefix else k))
    return out


def spans_of(phoenix: Phoenix, trace_id: str, expected: int, wait: float = 60) -> list[dict[str, Any]]:
    """The trace's spans once Phoenix has ingested ``expected`` of them (it writes in the background),
    or after ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        data = phoenix.get(f"/v1/projects/default/spans?trace_id={trace_id}&limit=1000")["data"]
        if len(data) >= expected or time.monotonic() > deadline:
            return list(data)
        time.sleep(0.5)


def test_phoenix_receives_the_run_as_one_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    db = tmp_path / "runs.db"
    with SQLiteEventStore(db) as store:
        result = demo_agent({"alpha": f"alpha is {RAW}", "beta": f"beta is {RAW}"}, store=store).run_sync("keys")
        calls = [e for e in store.read(result.run_id) if isinstance(e, LLMCalled)]
    workdir = tmp_path / "phoenix"
    workdir.mkdir()
    with running_phoenix(workdir) as phoenix:
        runner = CliRunner()
        args = ["export", result.run_id, "--otlp", phoenix.base + "/v1/traces", "--db", str(db), "--json"]
        out = runner.invoke(cli, args)
        assert out.exit_code == 0, out.output
        sent = json.loads(out.stdout)
        spans = spans_of(phoenix, sent["trace_id"], sent["spans"])
        assert len(spans) == sent["spans"] == len(calls) + 2 + 1  # model calls, 2 tool calls, the run

        by_id = {s["context"]["span_id"]: s for s in spans}
        root = [s for s in spans if not s.get("parent_id")]
        assert [r["name"] for r in root] == ["invoke_agent agentcore"]
        assert root[0]["context"]["span_id"] == f"{S.root_span_id(result.run_id):016x}"
        assert all(s["parent_id"] == root[0]["context"]["span_id"] for s in spans if s is not root[0])
        assert sorted(s["name"] for s in spans) == sorted(
            [f"chat {e.model}" for e in calls] + ["execute_tool lookup"] * 2 + ["invoke_agent agentcore"]
        )
        for e in calls:
            attrs = flat(by_id[f"{S.span_id(result.run_id, e.seq):016x}"]["attributes"])
            assert attrs["gen_ai.usage.input_tokens"] == e.usage.prompt_tokens
            assert attrs["gen_ai.usage.output_tokens"] == e.usage.completion_tokens
            assert attrs["gen_ai.request.model"] == e.model and attrs["agentcore.role"] == e.role
        text = json.dumps(spans)
        assert API_KEY not in text and RAW not in text
        assert "agentcore.artifact.id" in json.dumps([flat(s["attributes"]) for s in spans])

        again = runner.invoke(cli, args)  # the same ids: Phoenix keeps one copy of each span
        assert again.exit_code == 0, again.output
        assert len(spans_of(phoenix, sent["trace_id"], sent["spans"] + 1, wait=5)) == sent["spans"]
