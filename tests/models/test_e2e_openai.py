"""End to end: the real openai client over loopback HTTP, a real tool on a fixture repo, a real SQLite file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import Event, LLMCalled, RunStarted, StatePatched, ToolFinished
from agentcore.models.openai import OpenAIChatModel
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.base import Tool, tool
from tests.support.code_fixtures import PYTHON_DEFINITIONS, make_python_repo
from tests.support.openai_server import (
    OpenAIServer,
    Reply,
    json_answer,
    openai_server,  # noqa: F401
    status,
    text,
    tool_calls,
)

KEY = "test-key"
FILE, LINE = PYTHON_DEFINITIONS["apply_tax"]
WHERE = f"{FILE}:{LINE}"


def make_grep(root: Path, invocations: list[str]) -> Tool:
    @tool
    def grep(pattern: str) -> str:
        """Search the repository for a literal text; answers path:line: text per match.

        Args:
            pattern: The text to look for.
        """
        invocations.append(pattern)
        hits = []
        for path in sorted(root.rglob("*")):
            if path.is_file():
                for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
                    if pattern in line:
                        hits.append(f"{path.relative_to(root).as_posix()}:{number}: {line.strip()}")
        return "\n".join(hits) or "no matches"

    return grep


def processor_reply(body: dict[str, Any]) -> Reply:
    """The processor's answer, read off its prompt: a fact citing the call id, the artifact and file:line."""
    prompt = "\n".join(m["content"] or "" for m in body["messages"] if m["role"] == "user")
    call_id = re.search(r"call id: (\S+)", prompt)
    artifact = re.search(r"artifact: (sha256:[0-9a-f]{64})", prompt)
    hit = re.search(rf"({re.escape(FILE)}:\d+): def apply_tax", prompt)
    assert call_id and artifact and hit, prompt
    fact = {
        "key": "definition:apply_tax",
        "value": f"apply_tax is defined at {hit.group(1)}",
        "source": call_id.group(1),
        "artifact_id": artifact.group(1),
    }
    return json_answer({"ops": [{"op": "append_known_facts", "facts": [fact]}]})


def scripted(body: dict[str, Any]) -> Reply:
    """Answers after the queue: the processor from its prompt, the controller with the final reply."""
    if "response_format" in body:
        return processor_reply(body)
    return text(f"apply_tax is defined at {WHERE}.")


def model(server: OpenAIServer) -> OpenAIChatModel:
    return OpenAIChatModel(base_url=server.base_url, api_key=KEY, model="test", max_attempts=1)


def file_bytes(db_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


@pytest.mark.parametrize("flavour", ["openai", "llama-server"])
def test_code_search_run_end_to_end(
    openai_server: OpenAIServer,  # noqa: F811
    tmp_path: Path,
    db_path: Path,
    flavour: str,
) -> None:
    # "llama-server": no native tool calls (JSON decisions in the content) and no json_schema support
    openai_server.ignore_tools = openai_server.reject_json_schema = flavour == "llama-server"
    root = make_python_repo(tmp_path / "repo")
    invocations: list[str] = []
    openai_server.enqueue(tool_calls([("grep", {"pattern": "def apply_tax"})]))
    openai_server.handler = scripted
    store = SQLiteEventStore(db_path)
    agent = Agent(model(openai_server), tools=[make_grep(root, invocations)], store=store)

    result = agent.run_sync("Where is apply_tax defined?")

    assert result.status == "succeeded"
    assert result.reply == f"apply_tax is defined at {WHERE}."
    assert invocations == ["def apply_tax"]
    events = list(store.read(result.run_id))
    assert [e.type for e in events] == [
        "run_started",
        "llm_called", "decided", "tool_started",
        "tool_finished",
        "llm_called", "state_patched",
        "llm_called", "decided", "run_finished",
    ]  # fmt: skip
    s = {e.seq: e for e in events}
    assert [s[n].caused_by for n in range(2, 11)] == [1, 2, 3, 4, 5, 5, 7, 8, 9]
    assert [s[2].role, s[6].role, s[8].role] == ["controller", "processor", "controller"]  # type: ignore[union-attr]

    finished = s[5]
    assert isinstance(finished, ToolFinished) and finished.ok and finished.artifact is not None
    raw = store.artifacts.read(finished.artifact.id).decode()
    assert f"{WHERE}: def apply_tax(amount: float) -> float:" in raw
    for e in events:
        if isinstance(e, LLMCalled):
            assert e.request_artifact is not None and store.artifacts.exists(e.request_artifact.id)
            assert e.ok and e.model == "test" and e.usage.total_tokens == 18

    fact = result.state.known_facts["definition:apply_tax"]
    assert fact.value == f"apply_tax is defined at {WHERE}"
    assert (fact.source, fact.artifact_id, fact.seq) == ("d1_call_1", finished.artifact.id, 7)
    assert isinstance(s[7], StatePatched)
    assert store.state_at(result.run_id) == result.state

    requests = openai_server.completion_requests
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in requests)  # the key was sent...
    assert requests[0].body["tools"][0]["function"]["name"] == "grep"
    if flavour == "openai":
        assert len(requests) == 3
        assert requests[1].body["response_format"]["json_schema"]["name"] == "state_patch"
    else:  # the processor's json_schema request was refused once, then sent as json_object
        assert len(requests) == 4
        assert [r.body.get("response_format", {}).get("type") for r in requests[1:3]] == ["json_schema", "json_object"]
        assert "tools" not in requests[3].body  # the controller switched to JSON decisions
    assert WHERE in requests[-1].body["messages"][1]["content"]  # the controller sees the fact
    config = next(e for e in events if isinstance(e, RunStarted)).config
    assert config["controller_model"] == "test"
    store.close()
    assert KEY.encode() not in file_bytes(db_path)  # ...and never reached the log


def test_resume_in_a_new_process_store_reruns_nothing(
    openai_server: OpenAIServer,  # noqa: F811
    tmp_path: Path,
    db_path: Path,
) -> None:
    root = make_python_repo(tmp_path / "repo")
    invocations: list[str] = []
    grep = make_grep(root, invocations)
    openai_server.enqueue(tool_calls([("grep", {"pattern": "def apply_tax"})]))
    openai_server.handler = scripted

    def crash(event: Event) -> None:
        if event.type == "tool_finished":
            raise KeyboardInterrupt("killed after the tool result was written")

    first = SQLiteEventStore(db_path)
    with pytest.raises(KeyboardInterrupt):
        Agent(model(openai_server), tools=[grep], store=first, on_event=crash).run_sync("Where is apply_tax defined?")
    run_id = first.runs()[0].id
    first.close()

    second = SQLiteEventStore(db_path)  # what a new process would open
    result = Agent(model(openai_server), tools=[grep], store=second).resume_sync(run_id)
    assert result.status == "succeeded" and WHERE in (result.reply or "")
    assert invocations == ["def apply_tax"]
    kinds = [e.type for e in second.read(run_id)]
    assert kinds.count("tool_started") == kinds.count("tool_finished") == 1
    assert result.state.known_facts["definition:apply_tax"].source == "d1_call_1"
    second.close()


def test_a_refused_key_fails_the_run_without_leaking_it(openai_server: OpenAIServer, db_path: Path) -> None:  # noqa: F811
    body = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}
    openai_server.enqueue(status(401, body=body))
    store = SQLiteEventStore(db_path)
    result = Agent(model(openai_server), store=store).run_sync("anything")
    assert result.status == "failed"
    assert result.reason is not None and "refused the credentials" in result.reason
    assert KEY not in result.reason and "[redacted]" in result.reason
    llm = next(e for e in store.read(result.run_id) if isinstance(e, LLMCalled))
    assert not llm.ok and llm.error is not None
    assert KEY not in json.dumps(llm.model_dump(mode="json"))
    store.close()
    assert KEY.encode() not in file_bytes(db_path)
