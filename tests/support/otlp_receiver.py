"""A small real OTLP/HTTP trace receiver: protobuf ``ExportTraceServiceRequest`` bodies decoded with
``opentelemetry-proto`` (the official message definitions), spans kept by (trace id, span id) like a
backend that de-duplicates, and every raw request body kept so tests can search the bytes sent.

It runs in a thread of the test process on 127.0.0.1: ``with OtlpReceiver() as r: ... r.url``.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def any_value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


class OtlpReceiver:
    """Collects spans sent to ``url`` (``http://127.0.0.1:PORT/v1/traces``)."""

    def __init__(self) -> None:
        self.spans: dict[tuple[str, str], dict[str, Any]] = {}
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_error(404 if self.path != "/v1/traces" else 415)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.take(body, dict(self.headers), request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def take(self, body: bytes, headers: dict[str, str], request: ExportTraceServiceRequest) -> None:
        with self.lock:
            self.bodies.append(body)
            self.headers.append(headers)
            for rs in request.resource_spans:
                resource = {kv.key: any_value(kv.value) for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        key = (span.trace_id.hex(), span.span_id.hex())
                        self.spans[key] = {
                            "trace_id": key[0],
                            "span_id": key[1],
                            "parent_id": span.parent_span_id.hex() or None,
                            "name": span.name,
                            "kind": span.kind,
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                            "status": span.status.code,
                            "status_message": span.status.message,
                            "attributes": {kv.key: any_value(kv.value) for kv in span.attributes},
                            "events": [
                                (e.name, e.time_unix_nano, {kv.key: any_value(kv.value) for kv in e.attributes})
                                for e in span.events
                            ],
                            "scope": ss.scope.name,
                            "resource": resource,
                        }

    def __enter__(self) -> OtlpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
