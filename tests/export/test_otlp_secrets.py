"""Secrets given to `agentcore export --otlp` stay out of everything it prints.

A receiver URL may carry credentials (``http://user:token@host/...``, ``?api_key=...``) and a
receiver that refuses may echo the request's headers in its answer (``Authorization: Bearer ...``).
Each case runs the real command in a subprocess against a real HTTP server on loopback and checks
stdout and stderr, with and without ``--json``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.text import shown_url
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing import demo_agent
from tests.support.otlp_receiver import OtlpReceiver

URL_PASSWORD = "url-pw-7d1e0c"
QUERY_TOKEN = "query-token-93ab"
HEADER_TOKEN = "header-token-55f0e2"
SECRETS = (URL_PASSWORD, QUERY_TOKEN, HEADER_TOKEN)


class EchoingRefusal:
    """An HTTP server that answers every POST with 401, echoing the request's headers in its reason
    phrase and body."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = ("denied; you sent:\n" + str(self.headers)).encode()
                # the reason phrase, which the exporter reports, echoes the token too
                self.send_response(401, f"Unauthorized {self.headers.get('Authorization')} at {self.path}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def refusing() -> Iterator[EchoingRefusal]:
    server = EchoingRefusal()
    yield server
    server.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    with SQLiteEventStore(path) as store:
        assert demo_agent({"k": "v"}, store=store).run_sync("look up k").status == "succeeded"
    return path


def export(db: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "agentcore", "--db", str(db), "export", "last", "--otlp", url, *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked in {text!r}"


def test_the_endpoint_is_shown_without_its_password_or_query_values() -> None:
    url = f"https://ingest:{URL_PASSWORD}@otel.example:4318/v1/traces?api_key={QUERY_TOKEN}&debug"
    assert shown_url(url) == "https://ingest:***@otel.example:4318/v1/traces?api_key=***&debug"
    assert shown_url("http://127.0.0.1:4318/v1/traces") == "http://127.0.0.1:4318/v1/traces"
    assert URL_PASSWORD not in shown_url(f"http://u:{URL_PASSWORD}@[::1/v1/traces")  # does not parse


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("user_info", [True, False])  # with it, the client sends Basic credentials instead
def test_a_refusing_receiver_that_echoes_headers_leaks_no_secret(
    refusing: EchoingRefusal, db: Path, as_json: bool, user_info: bool
) -> None:
    who = f"ingest:{URL_PASSWORD}@" if user_info else ""
    url = f"http://{who}127.0.0.1:{refusing.port}/v1/traces?api_key={QUERY_TOKEN}"
    out = export(db, url, "--header", f"Authorization=Bearer {HEADER_TOKEN}", *(["--json"] if as_json else []))
    assert out.returncode == 1, out
    assert_no_secret(out.stdout, out.stderr)
    basic = base64.b64encode(f"ingest:{URL_PASSWORD}".encode()).decode()
    assert basic not in out.stdout + out.stderr and "[redacted]" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    if as_json:
        error = json.loads(out.stdout)["error"]
        assert error["type"] == "ExportError"
        message = error["message"]
        assert out.stderr == ""  # the exporter's own log lines stay off stderr
    else:
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("Error: "), out.stderr
        message = out.stderr
    assert "401" in message and "api_key=***" in message
    assert ("ingest:***@127.0.0.1" in message) == user_info


def test_a_receiver_that_is_down_is_one_line_without_the_password(db: Path) -> None:
    with OtlpReceiver() as gone:
        url = gone.url.replace("http://", f"http://ingest:{URL_PASSWORD}@")
    out = export(db, url)
    assert out.returncode == 1
    assert_no_secret(out.stdout, out.stderr)
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("Error: the OTLP receiver at http://ingest:***@")


def test_a_successful_export_prints_the_endpoint_without_its_secrets(db: Path) -> None:
    with OtlpReceiver() as receiver:
        url = receiver.url.replace("http://", f"http://ingest:{URL_PASSWORD}@")  # it serves one exact path
        out = export(db, url, "--header", f"Authorization=Bearer {HEADER_TOKEN}", "--json")
        assert out.returncode == 0, out
        assert receiver.spans  # the receiver got the run
    assert_no_secret(out.stdout, out.stderr)
    assert json.loads(out.stdout)["endpoint"].startswith("http://ingest:***@127.0.0.1:")


def test_a_url_that_is_not_http_is_refused_without_its_password(db: Path) -> None:
    out = export(db, f"ftp://ingest:{URL_PASSWORD}@example/v1/traces", "--json")
    assert out.returncode == 2
    assert_no_secret(out.stdout, out.stderr)
    assert json.loads(out.stdout)["error"]["type"] == "ConfigError"


def test_a_url_with_no_path_gets_v1_traces_before_its_query(tmp_path: Path) -> None:
    """``http://host:4318?api_key=k`` posts to ``/v1/traces?api_key=k`` (it posted to ``/?api_key=k/v1/traces``,
    which sent the token ``k/v1/traces`` and no receiver serves)."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    from agentcore.export.otel import export_otlp

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with SQLiteEventStore(tmp_path / "runs.db") as store:
            run_id = demo_agent({"k": "v"}, store=store).run_sync("look up k").run_id
            info = export_otlp(store, run_id, f"http://127.0.0.1:{server.server_address[1]}?api_key={QUERY_TOKEN}")
    finally:
        server.shutdown()
        server.server_close()
    assert paths == [f"/v1/traces?api_key={QUERY_TOKEN}"]
    assert info["endpoint"] == f"http://127.0.0.1:{server.server_address[1]}/v1/traces?api_key=***"


def test_a_query_token_the_client_percent_encodes_is_not_shown(db: Path) -> None:
    """The HTTP client sends `?k=tok|en%ZZ` as `tok%7Cen%25ZZ` and its error quotes that form, which
    the error printed (the token's raw, decoded forms were scrubbed, not the one the client made)."""
    with OtlpReceiver() as gone:
        url = f"{gone.url}?k=TOKSECRET|x%ZZ"
    out = export(db, url)
    assert out.returncode == 1 and out.stderr.startswith("Error: the OTLP receiver at "), out.stderr
    assert "TOKSECRET" not in out.stdout + out.stderr
