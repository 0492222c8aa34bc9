"""A trace whose recorded model answer was edited into something no model answers (the event
validates: its `response` is a free-form dict) is a one-line TraceError from `replay`, not a
pydantic traceback."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentcore.errors import TraceError
from agentcore.replay.replayer import replay_trace
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import export_run
from agentcore.testing import demo_agent


def edited_trace(tmp_path: Path, response: Any) -> Path:
    """A real run's trace with the first model answer replaced by ``response``, footer recomputed."""
    with SQLiteEventStore(tmp_path / "runs.db") as store:
        assert demo_agent({"a": "1"}, store=store).run_sync("look up a", run_id="r").status == "succeeded"
        export_run(store, "r", tmp_path / "original.jsonl")
    records = [json.loads(line) for line in (tmp_path / "original.jsonl").read_text().splitlines()]
    first_call = next(r for r in records if r.get("event", {}).get("type") == "llm_called")
    first_call["event"]["response"] = response
    footer = records.pop()
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    footer["sha256"] = hashlib.sha256(body).hexdigest()
    path = tmp_path / "edited.jsonl"
    path.write_bytes(body + (json.dumps(footer) + "\n").encode())
    return path


@pytest.mark.parametrize(
    "response",
    [
        {"content": None, "attempts": -1},
        {"content": 5},
        {"content": None, "tool_calls": "lookup"},
        {"content": None, "tool_calls": [1]},
        {"content": None, "tool_calls": [{"id": "c", "name": "lookup", "arguments": "{}", "extra": 1}]},
    ],
    ids=["attempts", "content", "calls-str", "calls-int", "calls-extra"],
)
def test_an_edited_answer_is_a_trace_error(tmp_path: Path, response: dict[str, Any]) -> None:
    path = edited_trace(tmp_path, response)
    with pytest.raises(TraceError, match="seq 2 has a response that is not a model answer"):
        replay_trace(path)


def test_the_cli_says_it_in_one_line_and_in_json(tmp_path: Path) -> None:
    path = edited_trace(tmp_path, {"content": None, "attempts": 0})
    text = subprocess.run([sys.executable, "-m", "agentcore", "replay", str(path)], capture_output=True, text=True)
    assert text.returncode == 1 and "Traceback" not in text.stderr
    assert text.stderr.startswith("Error: the model call recorded at seq 2") and text.stderr.count("\n") == 1
    out = subprocess.run(
        [sys.executable, "-m", "agentcore", "replay", str(path), "--json"], capture_output=True, text=True
    )
    assert out.returncode == 1 and json.loads(out.stdout)["error"]["type"] == "TraceError"
