"""A model base URL's credentials (a proxy's `user:password@`, a `?token=`) are never recorded or shown.

Before, `model 'm' at http://proxyuser:PASSWORD@...` went into the run's failure reason (so the
database, `--json`, exports and the view) and `OpenAIChatModel.describe()`/`repr`.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from agentcore.core.text import shown_url, url_secrets
from agentcore.models.openai import OpenAIChatModel
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing import demo_processor
from tests.support.openai_server import OpenAIServer, status

PASSWORD = "proxy-pw-1c9e77"
TOKEN = "query-tok-4a02bd"


def all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_shown_url_and_url_secrets() -> None:
    url = f"http://proxyuser:{PASSWORD}@127.0.0.1:8080/v1?token={TOKEN}&debug"
    assert shown_url(url) == "http://proxyuser:***@127.0.0.1:8080/v1?token=***&debug"
    basic = base64.b64encode(f"proxyuser:{PASSWORD}".encode()).decode()  # what the client sends for it
    assert set(url_secrets(url)) == {PASSWORD, TOKEN, basic}
    assert {"p%40ssword", "p@ssword"} <= set(url_secrets("http://u:p%40ssword@h/v1"))
    token_url = "https://ghp_0123456789abcdef@proxy.example/v1"  # a token as the whole user-info
    assert shown_url(token_url) == "https://***@proxy.example/v1"
    assert "ghp_0123456789abcdef" in url_secrets(token_url)
    assert shown_url("https://api.openai.com/v1") == "https://api.openai.com/v1"


def test_a_refusal_through_a_proxy_with_credentials_records_none_of_them(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        base = server.base_url.replace("http://", f"http://proxyuser:{PASSWORD}@")
        model = OpenAIChatModel("m", base_url=base, api_key="sk-test-0123456789")
        server.enqueue(status(401, body={"error": {"message": f"bad credentials proxyuser:{PASSWORD}"}}))
        with SQLiteEventStore(tmp_path / "runs.db") as store:
            result = Agent(model, demo_processor(), [], store).run_sync("say hi")
            reason = store.state_at(result.run_id).reason or ""
    assert result.status == "failed" and "proxyuser:***@127.0.0.1" in reason and "[redacted]" in reason
    assert PASSWORD not in repr(model) and PASSWORD not in json.dumps(model.describe())
    assert PASSWORD.encode() not in all_bytes(tmp_path)


def test_ask_with_a_base_url_holding_credentials_shows_and_stores_none(tmp_path: Path) -> None:
    base = f"http://proxyuser:{PASSWORD}@127.0.0.1:{closed_port()}/v1?token={TOKEN}"
    env = {**os.environ, "OPENAI_BASE_URL": base, "OPENAI_API_KEY": "sk-test-0123456789"}
    env.pop("AGENTCORE_DB", None)
    data = tmp_path / "data"
    data.mkdir()
    args = ["--db", str(data / "runs.db"), "ask", "where is main?", "--model", "m", "--repo", str(tmp_path)]
    out = subprocess.run(
        [sys.executable, "-m", "agentcore", *args, "--no-input", "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "proxyuser:***@127.0.0.1" in json.loads(out.stdout)["reason"]
    for secret in (PASSWORD, TOKEN):
        assert secret not in out.stdout and secret not in out.stderr
        assert secret.encode() not in all_bytes(data)


def test_an_mcp_server_url_with_credentials_is_shown_without_them() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import pytest

    from agentcore.errors import ToolError
    from agentcore.tools.mcp.client import MCPConnection

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://mcpuser:{PASSWORD}@127.0.0.1:{server.server_address[1]}/mcp?key={TOKEN}"
        connection = MCPConnection(url, connect_timeout=30)
        with pytest.raises(ToolError) as refused:
            connection.tools()
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
    for text in (str(refused.value), repr(connection)):
        assert PASSWORD not in text and TOKEN not in text and "mcpuser:***@127.0.0.1" in text, text
