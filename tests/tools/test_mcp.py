"""MCP servers' tools as agentcore tools, end to end with real processes: an MCP server written with
the ``mcp`` SDK (``tests/support/mcp_server.py``) over stdio and over streamable HTTP, the npm
``@modelcontextprotocol/server-filesystem`` server, and a run that used MCP tools replayed from its
trace with no server at all."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import ToolCall, ToolFinished, ToolStarted
from agentcore.errors import ConfigError
from agentcore.models.scripted import ScriptedChatModel, call, respond_json, say
from agentcore.replay.replayer import replay_trace
from agentcore.runtime.agent import Agent
from agentcore.storage.artifacts import MemoryArtifactStore
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import export_run
from agentcore.tools.base import Tool, call_idempotency_key
from agentcore.tools.mcp import MCPTool, mcp_tools
from agentcore.tools.runner import ToolRunner

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER = [sys.executable, "-m", "tests.support.mcp_server"]


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    return tmp_path / "calls.jsonl"


@pytest.fixture
def stdio_tools(server_log: Path) -> Iterator[list[Tool]]:
    tools = mcp_tools(SERVER, prefix="t_", timeout=60, env={"MCP_TEST_LOG": str(server_log)}, cwd=str(REPO_ROOT))
    yield tools
    assert isinstance(tools[0], MCPTool)
    tools[0].connection.close()


def logged(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_an_mcp_servers_tools_keep_their_schemas(stdio_tools: list[Tool]) -> None:
    by_name = {t.name: t for t in stdio_tools}
    assert set(by_name) == {"t_add", "t_echo", "t_idempotency_key", "t_fail", "t_big", "t_slow", "t_die"}
    add = by_name["t_add"].parameters
    assert add["required"] == ["a", "b"] and add["properties"]["a"]["type"] == "integer"
    assert by_name["t_add"].description == "Add two integers."


def test_a_run_with_mcp_tools_records_everything_survives_a_dying_server_and_replays_with_no_server(
    stdio_tools: list[Tool], server_log: Path, tmp_path: Path
) -> None:
    controller = ScriptedChatModel(
        [
            call("t_add", a=2, b=40),
            call("t_add", a="two"),  # refused before it reaches the server
            call("t_idempotency_key"),
            call("t_big"),
            call("t_fail", reason="not today"),
            call("t_die"),  # the server exits mid-call
            call("t_echo", text="still here"),  # a new server process answers
            say("done"),
        ]
    )
    processor = ScriptedChatModel([respond_json({"ops": []})] * 10)
    db = tmp_path / "runs.db"
    with SQLiteEventStore(db) as store:
        result = Agent(controller, processor, stdio_tools, store, payload_chars=500).run_sync("use the server")
        assert result.status == "succeeded", result.reason
        events = list(store.read(result.run_id))
        finished = [e for e in events if isinstance(e, ToolFinished)]
        started = {e.call.id: e for e in events if isinstance(e, ToolStarted)}
        by_name = [(e.name, e.ok) for e in finished]
        assert by_name == [
            ("t_add", True), ("t_add", False), ("t_idempotency_key", True), ("t_big", True), ("t_fail", False),
            ("t_die", False), ("t_echo", True),
        ]  # fmt: skip
        add, bad, key, big, fail, die, echo = finished
        assert '"sum":42' in add.payload.replace(" ", "")
        assert "a: 'two' is not of type 'integer'" in bad.payload and "'b' is a required property" in bad.payload
        expected_key = call_idempotency_key(result.run_id, key.call_id)
        assert started[key.call_id].idempotency_key == expected_key and expected_key in key.payload
        assert big.artifact is not None and big.artifact.size > 100_000 and len(big.payload) < 1000
        assert "refused: not today" in (fail.error or "")
        assert "went away" in (die.error or "") and "still here" in echo.payload
        assert [c["tool"] for c in logged(server_log)] == ["add", "idempotency_key", "die", "echo"]
        assert logged(server_log)[1]["key"] == expected_key
        trace = tmp_path / "run.jsonl"
        export_run(store, result.run_id, trace)

    stdio_tools[0].connection.close()  # and no server can be started: the replay needs none
    report = replay_trace(trace)
    assert report.ok, report.describe()
    assert [c["tool"] for c in logged(server_log)] == ["add", "idempotency_key", "die", "echo"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_streamable_http_server(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [*SERVER, "http", str(port)], cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the HTTP MCP server did not start"
                time.sleep(0.2)
        tools = mcp_tools(f"http://127.0.0.1:{port}/mcp", only=["add", "slow"], timeout=2)
        assert [t.name for t in tools] == ["add", "slow"]
        runner = ToolRunner(tools, MemoryArtifactStore())
        import asyncio

        ok = asyncio.run(runner.run(ToolCall(id="c1", name="add", arguments={"a": 1, "b": 2})))
        slow = asyncio.run(runner.run(ToolCall(id="c2", name="slow", arguments={"seconds": 30})))
        assert ok.ok and '"sum":3' in ok.payload.replace(" ", "")
        assert not slow.ok and slow.kind == "timeout"
        tools[0].connection.close()  # type: ignore[attr-defined]
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_bad_servers_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="never run through a shell"):
        mcp_tools("python -m tests.support.mcp_server")
    with pytest.raises(ConfigError, match="no tool named"):
        mcp_tools(SERVER, only=["nope"])
    from agentcore.errors import ToolError

    with pytest.raises(ToolError, match="cannot connect"):
        mcp_tools([str(tmp_path / "no-such-server")])


# -- a third-party server from npm ------------------------------------------------------------------

NPM_PACKAGE = "@modelcontextprotocol/server-filesystem"
NPM_CACHE = Path.home() / ".cache" / "agentcore-tests" / "npm"


def filesystem_server() -> str:
    """The server's executable: ``$AGENTCORE_MCP_FILESYSTEM``, or installed with npm into a cache."""
    given = os.environ.get("AGENTCORE_MCP_FILESYSTEM")
    if given and Path(given).exists():
        return given
    exe = NPM_CACHE / "node_modules" / ".bin" / "mcp-server-filesystem"
    if not exe.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(f"npm is not installed, so {NPM_PACKAGE} cannot be installed")
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        cmd = [npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(NPM_CACHE), NPM_PACKAGE]
        subprocess.run(cmd, check=True, timeout=600)
    return str(exe)


def test_the_npm_filesystem_server(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    (root / "notes.txt").write_text("the meeting is on Tuesday\n")
    (tmp_path / "secret.txt").write_text("outside the root\n")
    tools = mcp_tools([filesystem_server(), str(root)], prefix="fs_", timeout=60)
    try:
        names = {t.name for t in tools}
        assert {"fs_read_text_file", "fs_list_directory", "fs_write_file"} <= names
        runner = ToolRunner(tools, MemoryArtifactStore())
        import asyncio

        async def both() -> list[Any]:
            return [
                await runner.run(ToolCall(id="c1", name="fs_read_text_file", arguments={"path": str(root / "notes.txt")})),
                await runner.run(ToolCall(id="c2", name="fs_read_text_file", arguments={"path": str(tmp_path / "secret.txt")})),
            ]  # fmt: skip

        inside, outside = asyncio.run(both())
        assert inside.ok and "Tuesday" in inside.payload
        assert not outside.ok and "outside the root" not in outside.payload
    finally:
        tools[0].connection.close()  # type: ignore[attr-defined]
