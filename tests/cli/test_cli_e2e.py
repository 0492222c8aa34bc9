"""`agentcore ask` end to end: the CLI as a subprocess, the real ``openai`` client, a loopback server.

The server's answers come from the offline model (a scripted "LLM" that reads the very prompts a
real model gets), so the run does real work: real tool calls on a fixture repo, real patches, a
real SQLite file. Then the file and the CLI output are searched for the API key.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agentcore.models.base import ChatMessage, ChatRequest, ToolSpec
from agentcore.models.offline import OfflineCodeModel
from agentcore.storage.sqlite.store import SQLiteEventStore
from tests.support.code_fixtures import GO_DEFINITIONS, make_go_repo
from tests.support.openai_server import DEFAULT_USAGE, OpenAIServer, Reply, status, text, tool_calls

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-test-" + "e2e0key0never0stored0" + "7f3a9c"
MODEL = "test-model"


def offline_llm(body: Any) -> Reply:
    """Answer an OpenAI chat request the way the offline model answers the same ChatRequest."""
    tools = tuple(
        ToolSpec(name=t["function"]["name"], description=t["function"].get("description", ""),
                 parameters=t["function"].get("parameters", {}))
        for t in body.get("tools", [])
    )  # fmt: skip
    messages = tuple(
        ChatMessage(role=m["role"], content=m.get("content"))
        for m in body["messages"]
        if m["role"] in ("system", "user")
    )
    role = "controller" if tools else "processor"
    response = asyncio.run(OfflineCodeModel().complete(ChatRequest(role=role, messages=messages, tools=tools)))
    if response.tool_calls:
        return tool_calls([(c.name, json.loads(c.arguments)) for c in response.tool_calls])
    return text(response.content)


def run_cli(server: OpenAIServer, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        OPENAI_BASE_URL=server.base_url,
        OPENAI_API_KEY=API_KEY,
        PYTHONPATH=str(ROOT),
        COLUMNS="200",
    )
    return subprocess.run(
        [sys.executable, "-m", "agentcore", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def db_bytes(db: Path) -> bytes:
    return b"".join(Path(f"{db}{s}").read_bytes() for s in ("", "-wal", "-shm") if Path(f"{db}{s}").exists())


def assert_key_absent(db: Path, *outputs: str) -> None:
    data = db_bytes(db)
    assert data, "the database should exist"
    for needle in (API_KEY, API_KEY[8:]):  # the whole key and its secret part
        assert needle.encode() not in data
        for out in outputs:
            assert needle not in out


def test_ask_through_an_openai_compatible_server(tmp_path: Path) -> None:
    repo = make_go_repo(tmp_path / "repo")
    db = tmp_path / "runs.db"
    path, line = GO_DEFINITIONS["ClientError"]
    with OpenAIServer(model=MODEL, handler=offline_llm) as server:
        proc = run_cli(server, "ask", "Where is ClientError defined?", "--repo", repo, "--db", db,
                       "--model", MODEL, cwd=tmp_path)  # fmt: skip
        requests = server.completion_requests
    assert proc.returncode == 0, proc.stderr
    out, err = proc.stdout, proc.stderr
    assert f"model: {MODEL} (processor: {MODEL})" in err
    assert "offline model" not in err
    assert out.startswith(f"ClientError is defined at {path}:{line}")  # stdout: the answer first

    # what went over the wire: the key as a bearer token, the model, native tools, a schema request
    assert requests and all(r.headers.get("authorization") == f"Bearer {API_KEY}" for r in requests)
    assert {r.body["model"] for r in requests} == {MODEL}
    controller = [r for r in requests if r.body.get("tools")]
    processor = [r for r in requests if r.body.get("response_format")]
    assert len(controller) == 2 and len(processor) == 1
    assert "find_definition" in {t["function"]["name"] for t in controller[0].body["tools"]}

    with SQLiteEventStore(db) as store:
        [info] = store.runs()
        state = store.state_at(info.id)
        assert state.status == "succeeded" and state.reply and f"{path}:{line}" in state.reply
        assert state.known_facts["definition:ClientError"].value.startswith(f"ClientError is defined at {path}:{line}")
        started = next(iter(store.read(info.id, upto=1)))
        assert started.config["controller_model"] == MODEL
        assert state.tokens == DEFAULT_USAGE["total_tokens"] * len(requests)
    assert f"run {info.id}: {state.last_seq} events, {state.tokens} tokens" in err
    assert_key_absent(db, proc.stdout, proc.stderr)

    # and the CLI reads the run back, with no model server at all
    events = run_cli_offline("events", info.id, "--db", db, "--json", cwd=tmp_path)
    assert events.returncode == 0, events.stderr
    assert [e["type"] for e in json.loads(events.stdout)][-1] == "run_finished"
    assert_key_absent(db, events.stdout)


def run_cli_offline(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "agentcore", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_a_server_that_echoes_the_key_fails_the_run_without_leaking_it(tmp_path: Path) -> None:
    repo = make_go_repo(tmp_path / "repo")
    db = tmp_path / "runs.db"
    echo = {"error": {"message": f"Incorrect API key provided: {API_KEY}", "type": "invalid_request_error"}}
    with OpenAIServer(model=MODEL) as server:
        server.enqueue(status(401, body=echo))
        proc = run_cli(server, "ask", "Where is Client defined?", "--repo", repo, "--db", db, "--model", MODEL,
                       cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1
    assert "Run failed" in proc.stderr and "401" in proc.stderr
    assert "Incorrect API key provided: [redacted]" in proc.stderr  # the server's words, minus the key
    assert "Traceback" not in proc.stderr
    with SQLiteEventStore(db) as store:
        [info] = store.runs()
        assert store.state_at(info.id).status == "failed"
    assert_key_absent(db, proc.stdout, proc.stderr)


# ------------------------------------------------------------------------------------------------
# examples/code_search.py


def run_example(repo: Path, question: str, db: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "code_search.py"), str(repo), question, str(db)],
        cwd=db.parent,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_example_offline_prints_the_answer_and_cited_facts(tmp_path: Path) -> None:
    repo = make_go_repo(tmp_path / "repo")
    db = tmp_path / "example.db"
    proc = run_example(repo, "Who calls NewClient?", db, {})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    path, line = GO_DEFINITIONS["NewClient"]
    assert lines[0].startswith(f"NewClient is defined at {path}:{line}")
    # the one call; the doc comment above the definition (client/client.go:21) is not a use
    assert "NewClient has 1 use in 1 file: called 1 time at cmd/fetch/main.go:10." in lines
    with SQLiteEventStore(db) as store:
        [info] = store.runs()
        facts = store.state_at(info.id).known_facts
    assert set(facts) == {"definition:NewClient", "usages:NewClient"}
    for fact in facts.values():
        assert f"- {fact.key}: {fact.value} (tool call {fact.source}, artifact {fact.artifact_id})" in lines
    assert lines[-1] == f"run {info.id} stored in {db}"


def test_example_uses_the_model_server_when_one_is_configured(tmp_path: Path) -> None:
    repo = make_go_repo(tmp_path / "repo")
    db = tmp_path / "example.db"
    with OpenAIServer(model=MODEL, handler=offline_llm) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": API_KEY, "AGENTCORE_MODEL": MODEL}
        proc = run_example(repo, "Where is Doer defined?", db, env)
        served = len(server.completion_requests)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Doer is defined at {}:{}".format(*GO_DEFINITIONS["Doer"]))
    assert served == 3  # controller, processor, controller
    with SQLiteEventStore(db) as store:
        [info] = store.runs()
        assert next(iter(store.read(info.id, upto=1))).config["controller_model"] == MODEL
    assert_key_absent(db, proc.stdout, proc.stderr)


def test_ask_with_json_modes_for_servers_without_tool_calling(tmp_path: Path) -> None:
    """--tool-mode json / --schema-mode json_object: no `tools` and no json_schema go over the wire."""
    repo = make_go_repo(tmp_path / "repo")
    db = tmp_path / "runs.db"
    path, line = GO_DEFINITIONS["ClientError"]
    code_tools = tuple(
        ToolSpec(name=n, description="", parameters={})
        for n in ("search_code", "read_file", "list_files", "find_definition")
    )

    def json_mode_llm(body: Any) -> Reply:
        assert "tools" not in body, "json tool mode must not send native tools"
        messages = tuple(ChatMessage(role=m["role"], content=m.get("content")) for m in body["messages"])
        is_processor = body.get("response_format", {}).get("type") == "json_object"
        request = ChatRequest(
            role="processor" if is_processor else "controller",
            messages=tuple(m for m in messages if m.role in ("system", "user")),
            tools=() if is_processor else code_tools,
        )
        response = asyncio.run(OfflineCodeModel().complete(request))
        if response.tool_calls:
            calls = [{"name": c.name, "arguments": json.loads(c.arguments)} for c in response.tool_calls]
            return text(json.dumps({"tool_calls": calls}))
        return text(response.content)

    with OpenAIServer(model=MODEL, handler=json_mode_llm) as server:
        proc = run_cli(server, "ask", "Where is ClientError defined?", "--repo", repo, "--db", db, "--model", MODEL,
                       "--tool-mode", "json", "--schema-mode", "json_object", cwd=tmp_path)  # fmt: skip
        requests = server.completion_requests
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"ClientError is defined at {path}:{line}")
    formats = [r.body.get("response_format", {}).get("type") for r in requests]
    assert formats.count("json_object") == 1 and "json_schema" not in formats
    with SQLiteEventStore(db) as store:
        [info] = store.runs()
        modes = [e.response.get("structured_mode") for e in store.read(info.id) if e.type == "llm_called"]
    assert modes == ["json_decision", "json_object", "json_decision"]


def test_a_huge_reply_is_shown_as_a_bounded_preview_that_says_where_the_rest_is(tmp_path: Path) -> None:
    from agentcore.cli.commands import REPLY_PREVIEW_CHARS

    huge = "Nothing was found for that, so here is a long note instead.\n"  # a reply the validator accepts
    huge += "".join(f"line {i} of a very long answer\n" for i in range(250_000))  # ~7.5 MB
    repo = make_go_repo(tmp_path / "repo")
    db = tmp_path / "huge.db"
    with OpenAIServer(handler=lambda body: text(huge)) as server:
        proc = run_cli(server, "ask", "say a lot", "--repo", repo, "--db", db, "--model", MODEL, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with SQLiteEventStore(db) as store:
        reply = store.state_at(store.runs()[-1].id).reply or ""
    assert reply.strip() == huge.strip()  # nothing of it was lost
    assert huge[:REPLY_PREVIEW_CHARS] in proc.stdout and len(proc.stdout) < REPLY_PREVIEW_CHARS + 5000
    assert f"the reply has {len(reply)} characters" in proc.stderr and "agentcore state" in proc.stderr
