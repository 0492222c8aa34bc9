"""A scripted OpenAI-compatible chat server on 127.0.0.1, for tests.

The server speaks just enough of the OpenAI HTTP API for the real ``openai`` client:
``POST /v1/chat/completions`` and ``GET /v1/models``. Each completion request takes the next
scripted reply from a queue (see the helpers ``text``, ``tool_calls``, ``json_answer``, ``status``,
``malformed``, ``invalid_completion``, ``raw_body``, ``slow`` and ``cut``); when the queue is empty an optional
``handler(request_json) -> Reply`` answers, else the server answers HTTP 500 saying the script ran
out. Every request is recorded in ``.requests`` (parsed JSON body and lower-cased headers).

Two flags emulate local servers: ``ignore_tools`` (llama.cpp's llama-server: tool calls come back as
JSON text in ``content``, never as ``tool_calls``) and ``reject_json_schema`` (llama-cpp-python:
HTTP 500 to any request whose ``response_format.type`` is ``json_schema``).

Standard library only. The ``openai_server`` pytest fixture is defined at the bottom.
"""

from __future__ import annotations

import collections
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

DEFAULT_USAGE: dict[str, int] = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


@dataclass(frozen=True, kw_only=True)
class Reply:
    """One scripted answer of the server; build it with the module's helper functions."""

    kind: str
    """One of "completion", "status", "raw", "cut", "slow"."""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    message: dict[str, Any] | None = None
    """For "completion": the assistant message (content and/or tool_calls)."""
    usage: dict[str, int] | None = None
    finish_reason: str = "stop"
    delay: float = 0.0
    then: Reply | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body: Any
    """The parsed JSON body (None for GET or an unparsable body)."""


def text(content: str | None, usage: dict[str, int] | None = DEFAULT_USAGE) -> Reply:
    """A completion whose assistant message is ``content``; ``usage=None`` omits the usage block."""
    return Reply(kind="completion", message={"role": "assistant", "content": content}, usage=usage)


def tool_calls(calls: list[tuple[str, dict[str, Any]]], usage: dict[str, int] | None = DEFAULT_USAGE) -> Reply:
    """A completion with native tool calls ``[(name, arguments), ...]`` (ids ``call_1``, ...)."""
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for i, (name, args) in enumerate(calls, start=1)
        ],
    }
    return Reply(kind="completion", message=message, usage=usage, finish_reason="tool_calls")


def json_answer(obj: Any, usage: dict[str, int] | None = DEFAULT_USAGE) -> Reply:
    """A completion whose content is ``json.dumps(obj)``."""
    return text(json.dumps(obj), usage=usage)


def status(code: int, headers: dict[str, str] | None = None, body: Any = None) -> Reply:
    """An HTTP error reply; ``body`` is a dict (sent as JSON), str or bytes, else an OpenAI error body."""
    if body is None:
        body = {"error": {"message": f"scripted HTTP {code}", "type": "scripted_error", "code": None}}
    headers = dict(headers or {})
    if isinstance(body, dict):
        raw = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    else:
        raw = body.encode() if isinstance(body, str) else bytes(body)
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    return Reply(kind="status", status=code, headers=headers, body=raw)


def malformed() -> Reply:
    """HTTP 200 whose body is not JSON at all."""
    return Reply(kind="raw", headers={"Content-Type": "application/json"}, body=b"<html>upstream error</html>")


def raw_body(body: str, status: int = 200) -> Reply:
    """An answer whose body is ``body`` exactly (generated completions: any JSON, or none)."""
    data = body.encode("utf-8", "surrogatepass")
    return Reply(kind="raw", status=status, headers={"Content-Type": "application/json"}, body=data)


def invalid_completion() -> Reply:
    """HTTP 200 with valid JSON that is not a chat completion."""
    return Reply(kind="raw", headers={"Content-Type": "application/json"}, body=b'{"object": "list", "data": []}')


def slow(seconds: float, then: Reply) -> Reply:
    """Wait ``seconds`` before answering with ``then`` (a client with a shorter timeout gives up)."""
    return Reply(kind="slow", delay=seconds, then=then)


def cut() -> Reply:
    """Send the status line, headers and part of the body, then drop the connection."""
    return Reply(kind="cut")


class OpenAIServer:
    """A scripted OpenAI-compatible server bound to 127.0.0.1 on a random port.

    Args:
        model: The model name reported by ``GET /v1/models`` and in completions when the request
            names none.
        ignore_tools: Emulate llama-server: scripted tool calls come back as JSON text
            ``{"tool_calls": [{"name", "arguments"}], "content": null}`` in ``content``.
        reject_json_schema: Emulate llama-cpp-python: HTTP 500 to any request whose
            ``response_format.type`` is ``json_schema`` (the scripted reply stays queued).
        handler: Answers requests when the queue is empty.
    """

    def __init__(
        self,
        *,
        model: str = "test-model",
        ignore_tools: bool = False,
        reject_json_schema: bool = False,
        handler: Callable[[Any], Reply] | None = None,
    ) -> None:
        self.model = model
        self.ignore_tools = ignore_tools
        self.reject_json_schema = reject_json_schema
        self.handler = handler
        self.requests: list[RecordedRequest] = []
        self._queue: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``; the server must be started."""
        if self._httpd is None:
            raise RuntimeError("OpenAIServer is not started; call .start() or use it as a context manager")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def completion_requests(self) -> list[RecordedRequest]:
        """The recorded ``POST /v1/chat/completions`` requests."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies, answered in order to the next completion requests."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many queued replies are not yet served."""
        with self._lock:
            return len(self._queue)

    def start(self) -> OpenAIServer:
        """Bind and serve in a background thread; returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="openai-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open (keep-alive) connections."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals used by the request handler ------------------------------------------------

    def _next_reply(self, body: Any) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.handler is not None:
            return self.handler(body)
        return status(
            500,
            body={
                "error": {
                    "message": f"OpenAIServer: no scripted reply left for request #{len(self.requests)}; "
                    "enqueue more replies or set a handler",
                    "type": "script_exhausted",
                }
            },
        )

    def _completion_body(self, reply: Reply, request: Any) -> bytes:
        message = dict(reply.message or {"role": "assistant", "content": ""})
        finish_reason = reply.finish_reason
        if self.ignore_tools and message.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                for c in message.pop("tool_calls")
            ]
            message["content"] = json.dumps({"tool_calls": calls, "content": message.get("content")})
            finish_reason = "stop"
        with self._lock:
            self._counter += 1
            number = self._counter
        model = request.get("model") if isinstance(request, dict) else None
        completion: dict[str, Any] = {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model or self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        }
        if reply.usage is not None:
            completion["usage"] = reply.usage
        return json.dumps(completion).encode()


def _make_handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
            # client's delayed ACK add ~40 ms to every answer
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with server._lock:
                server._connections.add(self.connection)

        def finish(self) -> None:
            with server._lock:
                server._connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the per-request stderr log."""

        def _record(self, body: Any) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            with server._lock:
                server.requests.append(RecordedRequest(self.command, self.path, headers, body))

        def _send(self, code: int, headers: dict[str, str], body: bytes) -> None:
            try:
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
            except OSError:  # the client gave up (timeout) and closed the socket
                self.close_connection = True

        def _send_json(self, code: int, obj: Any) -> None:
            self._send(code, {"Content-Type": "application/json"}, json.dumps(obj).encode())

        def do_GET(self) -> None:
            self._record(None)
            if self.path.rstrip("/") == "/v1/models":
                data = [{"id": server.model, "object": "model", "created": 0, "owned_by": "test"}]
                self._send_json(200, {"object": "list", "data": data})
            else:
                self._send_json(404, {"error": {"message": f"Unknown path {self.path}", "type": "not_found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            self._record(body)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send_json(404, {"error": {"message": f"Unknown path {self.path}", "type": "not_found"}})
                return
            if server.reject_json_schema and isinstance(body, dict):
                fmt = body.get("response_format")
                if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
                    self._send_json(500, {"error": {"message": "Internal Server Error", "type": "server_error"}})
                    return
            self._serve(server._next_reply(body), body)

        def _serve(self, reply: Reply, body: Any) -> None:
            if reply.kind == "slow":
                if server._stopping.wait(reply.delay):
                    self.close_connection = True
                    return
                assert reply.then is not None
                self._serve(reply.then, body)
            elif reply.kind == "completion":
                self._send(200, {"Content-Type": "application/json"}, server._completion_body(reply, body))
            elif reply.kind in ("status", "raw"):
                self._send(reply.status, reply.headers, reply.body)
            elif reply.kind == "cut":
                self.close_connection = True
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "4096")
                    self.end_headers()
                    self.wfile.write(b'{"id": "chatcmpl-cut", "choices": [')
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            else:
                raise ValueError(f"unknown reply kind {reply.kind!r}")

    return Handler


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A started ``OpenAIServer``; stopped after the test."""
    with OpenAIServer() as server:
        yield server
