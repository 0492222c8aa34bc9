"""``agentcore mcp-serve`` as a real process, driven by the official ``mcp`` SDK client over stdio:
the code-search tools with their schemas, answers confined to the repository, each call recorded
in the database given with ``--db``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from agentcore.core.events import RunFinished, RunStarted, ToolFinished, ToolStarted
from agentcore.storage.sqlite.store import SQLiteEventStore
from tests.support.code_fixtures import PYTHON_DEFINITIONS, make_python_repo


async def session(repo: Path, db: Path) -> dict[str, Any]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "agentcore", "mcp-serve", "--repo", str(repo), "--db", str(db)]
    )
    async with Client(params) as client:
        listed = (await client.list_tools()).tools
        found = await client.call_tool("find_definition", {"symbol": "Cart"})
        read = await client.call_tool("read_file", {"path": "shop/cart.py", "start_line": 1, "end_line": 12})
        escape = await client.call_tool("read_file", {"path": "../outside.txt"})
        bad = await client.call_tool("find_definition", {})
    return {"listed": listed, "found": found, "read": read, "escape": escape, "bad": bad}


def text(result: Any) -> str:
    return "\n".join(b.text for b in result.content if b.type == "text")


def test_mcp_serve_answers_code_search_over_stdio_and_records_each_call(tmp_path: Path) -> None:
    repo = make_python_repo(tmp_path / "repo")
    (tmp_path / "outside.txt").write_text("SECRET outside the repository\n")
    db = tmp_path / "calls.db"
    out = asyncio.run(asyncio.wait_for(session(repo, db), 120))

    tools = {t.name: t for t in out["listed"]}
    assert {"find_definition", "read_file", "search_code", "list_files", "read_artifact"} <= set(tools)
    assert tools["find_definition"].input_schema["required"] == ["symbol"]
    path, line = PYTHON_DEFINITIONS["Cart"]
    assert not out["found"].is_error and f"{path}:{line}" in text(out["found"])
    assert not out["read"].is_error and "class Cart" in text(out["read"])
    assert out["escape"].is_error and "SECRET" not in text(out["escape"])
    assert out["bad"].is_error and "symbol" in text(out["bad"])

    with SQLiteEventStore(db) as store:
        (run,) = store.runs()
        events = list(store.read(run.id))
    assert isinstance(events[0], RunStarted) and events[0].config["mcp_serve"]["repo"] == str(repo.resolve())
    calls = [e.call.name for e in events if isinstance(e, ToolStarted)]
    assert calls == ["find_definition", "read_file", "read_file", "find_definition"]
    assert [e.ok for e in events if isinstance(e, ToolFinished)] == [True, True, False, False]
    assert isinstance(events[-1], RunFinished)


def test_mcp_serve_records_into_agentcore_db_from_the_environment_and_else_nowhere(tmp_path: Path) -> None:
    """`$AGENTCORE_DB` names the database as `--db` does; with neither nothing is recorded (no
    ./agentcore.db appears, unlike the other commands' default). The client here closes stdin at once."""
    repo = make_python_repo(tmp_path / "repo")
    env = {k: v for k, v in os.environ.items() if k != "AGENTCORE_DB"}
    cmd = [sys.executable, "-m", "agentcore", "mcp-serve", "--repo", str(repo)]
    work = tmp_path / "work"
    work.mkdir()
    plain = subprocess.run(cmd, input="", capture_output=True, text=True, cwd=work, env=env, timeout=120)
    assert plain.returncode == 0 and "recorded" not in plain.stderr
    assert list(work.iterdir()) == []
    db = tmp_path / "env.db"
    named = subprocess.run(
        cmd, input="", capture_output=True, text=True, cwd=work, env={**env, "AGENTCORE_DB": str(db)}, timeout=120
    )
    assert named.returncode == 0 and "calls recorded as run" in named.stderr
    with SQLiteEventStore(db) as store:
        (run,) = store.runs()
        events = list(store.read(run.id))
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)


def test_mcp_serve_records_no_environment_key_a_client_reads(tmp_path: Path) -> None:
    """The key in a file the client reads goes to the client (it asked for the file) but the
    recorded run holds `[redacted]`, as every agent run does (it stored the key in an event and
    an artifact)."""
    key = "sk-proj-MCPSERVE-s8-0123456789abcdef"
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "settings.py").write_text(f'OPENAI_API_KEY = "{key}"\n')
    data = tmp_path / "data"
    data.mkdir()
    db = data / "calls.db"
    env = {**{k: v for k, v in os.environ.items() if k != "AGENTCORE_DB"}, "OPENAI_API_KEY": key}

    async def read_settings() -> str:
        args = ["-m", "agentcore", "mcp-serve", "--repo", str(repo), "--db", str(db)]
        async with Client(StdioServerParameters(command=sys.executable, args=args, env=env)) as client:
            return text(await client.call_tool("read_file", {"path": "settings.py"}))

    assert key in asyncio.run(asyncio.wait_for(read_settings(), 120))
    with SQLiteEventStore(db) as store:
        (run,) = store.runs()
        finished = [e for e in store.read(run.id) if isinstance(e, ToolFinished)]
    assert len(finished) == 1 and "[redacted]" in finished[0].model_dump_json()
    assert key.encode() not in b"".join(p.read_bytes() for p in data.iterdir())
