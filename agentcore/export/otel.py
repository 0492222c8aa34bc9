"""A run's log as one OpenTelemetry trace: live as batches commit, or after the fact over OTLP/HTTP.

One trace per run. The run is the root span (``invoke_agent agentcore``); each controller,
processor and planner call is a child span ``chat {model}``; each tool call ``execute_tool {name}``
and each plan step attempt ``step {id}`` (a step's tool call nests under its step). Patches and
facts are span events of the processor call that made them (or of the root span); decisions, user
messages and skipped steps are events of the root span. Every timestamp is an event's own ``at``
(a model call starts ``latency_ms`` before its ``LLMCalled``); ids come from ``spans`` (derived from
the run id and seqs, so a second export repeats the same spans instead of adding new ones).

A span is emitted whole when the event that closes it commits, so the root span appears when the
run finishes (``export_otlp`` also emits it for a run still going, with status ``running``).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from agentcore.core import events as ev
from agentcore.core.text import clip, redact_secrets, shown_url, url_secrets
from agentcore.errors import ConfigError, ExportError
from agentcore.export import spans as S
from agentcore.export.endpoint import header_secrets
from agentcore.storage.base import EventStore

__all__ = ("RunTracer", "export_otlp", "run_spans")

_SCOPE = "agentcore"
_Event = tuple[str, S.Attributes, int]


class _PlannedIds(IdGenerator):
    """Hands out the ids the tracer is told to use next (random ones if none were set)."""

    def __init__(self) -> None:
        self.trace: int | None = None
        self.span: int | None = None

    def generate_trace_id(self) -> int:
        value, self.trace = self.trace, None
        return value if value is not None else random.getrandbits(128)

    def generate_span_id(self) -> int:
        value, self.span = self.span, None
        return value if value is not None else random.getrandbits(64)

    def is_trace_id_random(self) -> bool:
        return False


class RunTracer:
    """Turns one run's committed event batches into spans on ``tracer_provider``.

    Args:
        tracer_provider: An OpenTelemetry ``TracerProvider`` (the SDK's one gives the
            deterministic ids; another provider still gets the spans, with ids of its own).
        run_id: The run (also for a fork, whose inherited events carry the parent's id).
        content: Also put raw content (prompts and responses, tool arguments and payloads, the
            task, the reply, fact values) in attributes, clipped to ``spans.CONTENT_CHARS``.
    """

    def __init__(self, tracer_provider: Any, run_id: str, *, content: bool = False) -> None:
        self.run_id = run_id
        self.content = content
        self.tracer = tracer_provider.get_tracer(_SCOPE)
        self._ids = _PlannedIds()
        if hasattr(self.tracer, "id_generator"):  # the SDK tracer: ids derived from the run
            self.tracer.id_generator = self._ids
        self.trace_id = S.trace_id(run_id)
        self.root_id = S.root_span_id(run_id)
        self._started: ev.RunStarted | None = None
        self._tools: dict[str, ev.ToolStarted] = {}
        self._steps: dict[str, ev.StepStarted] = {}
        self._root_events: list[_Event] = []
        self._last_at: datetime | None = None
        self.root_done = False

    def prime(self, events: Iterable[ev.BaseEvent]) -> None:
        """Take in events that were traced before (a resumed run) without emitting anything."""
        self._feed(list(events), emit=False)

    def on_batch(self, events: Sequence[ev.BaseEvent]) -> None:
        """Emit the spans that the events of one committed batch close."""
        self._feed(list(events), emit=True)

    def finish(self) -> None:
        """Emit the root span now if the run has not finished (status ``running``)."""
        if not self.root_done and self._started is not None:
            self._emit_root(None, self._last_at or self._started.at)

    # -- the mapping -----------------------------------------------------------------------------

    def _feed(self, events: list[ev.BaseEvent], emit: bool) -> None:
        i = 0
        while i < len(events):
            e = events[i]
            self._last_at = e.at
            if isinstance(e, ev.LLMCalled):  # with the patches it made right after it
                j = i + 1
                while j < len(events) and isinstance(events[j], (ev.StatePatched, ev.PatchRejected)):
                    j += 1
                if emit:
                    self._emit_llm(e, events[i + 1 : j])  # type: ignore[arg-type]
                i = j
                continue
            self._one(e, emit)
            i += 1

    def _one(self, e: ev.BaseEvent, emit: bool) -> None:
        if isinstance(e, ev.RunStarted):
            self._started = e
        elif isinstance(e, ev.ToolStarted):
            self._tools[f"{e.step_id}/{e.call.id}"] = e
        elif isinstance(e, ev.ToolFinished):
            start = self._tools.pop(f"{e.step_id}/{e.call_id}", None)
            if emit:
                self._emit_tool(start, e)
        elif isinstance(e, ev.StepStarted):
            self._steps[e.step_id] = e
        elif isinstance(e, (ev.StepSucceeded, ev.StepFailed)):
            step = self._steps.pop(e.step_id, None)
            if emit and step is not None:
                self._emit_step(step, e)
        elif isinstance(e, (ev.StatePatched, ev.PatchRejected)):
            self._root_events += [(n, a, S.nanos(e.at)) for n, a in S.patch_events(e, self.content)]
        elif isinstance(e, ev.Decided):
            self._root_events.append((*S.decided_event(e, self.content), S.nanos(e.at)))
        elif isinstance(e, (ev.UserMessaged, ev.StepSkipped)):
            self._root_events.append((*S.user_event(e, self.content), S.nanos(e.at)))
        elif isinstance(e, ev.RunFinished):
            if emit:
                self._emit_root(e, e.at)
            self.root_done = True

    # -- emitting --------------------------------------------------------------------------------

    def _parent(self, span_id: int | None) -> Context:
        ctx = SpanContext(self.trace_id, span_id or self.root_id, is_remote=False, trace_flags=TraceFlags(1))
        return trace_api.set_span_in_context(NonRecordingSpan(ctx), Context())

    def _step_parent(self, step_id: str | None) -> Context:
        step = self._steps.get(step_id) if step_id else None
        return self._parent(S.span_id(self.run_id, step.seq) if step is not None else None)

    def _span(
        self, name: str, parent: Context | None, span_id: int, kind: SpanKind, attributes: S.Attributes,
        start: int, end: int, events: Iterable[_Event] = (), error: str | None = None,
    ) -> None:  # fmt: skip
        self._ids.trace, self._ids.span = self.trace_id, span_id
        span = self.tracer.start_span(
            name,
            context=parent if parent is not None else Context(),
            kind=kind,
            attributes=attributes,
            start_time=start,
        )
        for event_name, attrs, at in events:
            span.add_event(event_name, attrs, timestamp=at)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error[:500]))
        span.end(end_time=max(end, start))

    def _emit_llm(self, e: ev.LLMCalled, patches: Sequence[ev.StatePatched | ev.PatchRejected]) -> None:
        end = S.nanos(e.at)
        events = [(n, a, S.nanos(p.at)) for p in patches for n, a in S.patch_events(p, self.content)]
        self._span(
            f"chat {e.model}", self._step_parent(e.step_id), S.span_id(self.run_id, e.seq), SpanKind.CLIENT,
            S.llm_attributes(e, self.content), end - int(e.latency_ms * 1_000_000), end, events,
            None if e.ok else (e.error or "unusable answer"),
        )  # fmt: skip

    def _emit_tool(self, start: ev.ToolStarted | None, end: ev.ToolFinished) -> None:
        t1 = S.nanos(end.at)
        t0 = S.nanos(start.at) if start is not None else t1 - int(end.duration_ms * 1_000_000)
        seq = start.seq if start is not None else end.seq
        self._span(
            f"execute_tool {end.name}", self._step_parent(end.step_id), S.span_id(self.run_id, seq),
            SpanKind.INTERNAL, S.tool_attributes(start, end, self.content), t0, t1,
            error=None if end.ok else (end.error or "tool failed"),
        )  # fmt: skip

    def _emit_step(self, start: ev.StepStarted, end: ev.StepSucceeded | ev.StepFailed) -> None:
        self._span(
            f"step {start.step_id}", self._parent(None), S.span_id(self.run_id, start.seq), SpanKind.INTERNAL,
            S.step_attributes(start, end, self.content), S.nanos(start.at), S.nanos(end.at),
            error=end.error if isinstance(end, ev.StepFailed) else None,
        )  # fmt: skip

    def _emit_root(self, finished: ev.RunFinished | None, end_at: datetime) -> None:
        start = self._started.at if self._started is not None else end_at
        failed = finished is not None and finished.status == "failed"
        self._span(
            "invoke_agent agentcore", None, self.root_id, SpanKind.INTERNAL,
            S.root_attributes(self.run_id, self._started, finished, self.content), S.nanos(start), S.nanos(end_at),
            self._root_events, (finished.reason or "failed") if failed and finished is not None else None,
        )  # fmt: skip
        self._root_events = []
        self.root_done = True


def run_spans(store: EventStore, run_id: str, *, content: bool = False) -> list[ReadableSpan]:
    """Every span of a recorded run (the root included, even for a run still going)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = RunTracer(provider, run_id, content=content)
    tracer.on_batch(list(store.read(run_id)))
    tracer.finish()
    provider.shutdown()
    return list(memory.get_finished_spans())


def export_otlp(
    store: EventStore,
    run_id: str,
    endpoint: str,
    *,
    headers: dict[str, str] | None = None,
    content: bool = False,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Send a recorded run to an OTLP/HTTP receiver (protobuf) as one trace.

    Args:
        endpoint: The receiver's traces URL (``http://host:4318/v1/traces``); a URL with no path
            gets ``/v1/traces``.
        headers: Extra HTTP headers (for example a backend's API key; never stored or printed).
        content: Include raw content (see ``RunTracer``).
        timeout: Seconds to wait for the receiver.

    Returns:
        ``{"run_id", "trace_id" (32 hex digits), "spans", "endpoint"}``; ``endpoint`` as it may be
        shown (``shown_url``: no password, no query values).

    Raises:
        ConfigError: ``endpoint`` is not an http(s) URL.
        ExportError: the receiver did not accept the spans (it is down or answered an error; the
            message has its HTTP status, never its answer's text, which may echo the headers).
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    shown = shown_url(endpoint)
    try:
        parts = urlsplit(endpoint)
    except ValueError:  # an unclosed IPv6 bracket, say
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--otlp needs an http(s) URL such as http://127.0.0.1:4318/v1/traces, got {shown!r}")
    if parts.path in ("", "/"):
        endpoint = urlunsplit(parts._replace(path="/v1/traces"))  # before any ?query, not after it
        shown = shown_url(endpoint)
    spans = run_spans(store, run_id, content=content)
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers or {}, timeout=timeout)
    with _exporter_log() as messages:
        try:
            result = exporter.export(spans)
        finally:
            exporter.shutdown()
    if result is not SpanExportResult.SUCCESS:
        # the exporter's words may carry what the receiver said (which may echo the headers) and its URL
        said = redact_secrets(messages[-1], [*url_secrets(endpoint), *header_secrets(headers)]) if messages else ""
        why = ": " + clip(said, 300, one_line=True, mark="ellipsis") if said else ""
        raise ExportError(
            f"the OTLP receiver at {shown} did not accept the {len(spans)} spans of run {run_id!r}{why}"
        )
    return {"run_id": run_id, "trace_id": f"{S.trace_id(run_id):032x}", "spans": len(spans), "endpoint": shown}


# what the exporter logs as it retries and gives up, generic words that say nothing of the cause
_GENERIC = ("Failed to export spans batch due to timeout",)


@contextlib.contextmanager
def _exporter_log() -> Iterator[list[str]]:
    """Keep the OTLP exporter's log records (one per retry) off stderr while it runs; yields their
    messages, the last telling cause first, for the one ``ExportError`` raised instead."""
    kept: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if not message.startswith(_GENERIC):
                kept.append(message)

    logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http")
    handler, propagate = Keep(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield kept
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
