"""What each event becomes in OpenTelemetry: span ids, names and attributes (pure: no I/O, no SDK).

Ids are derived from the run, so the same run exported twice (or live and again later) gives the
same trace and span ids and a receiver that keys spans by id keeps one copy:

- trace id: the first 16 bytes of ``sha256("agentcore/trace/" + run_id)``;
- the run's root span: ``sha256("agentcore/span/" + run_id + "/run")``, first 8 bytes;
- any other span: the same over ``run_id + "/" + seq`` of the event that opens it (the
  ``LLMCalled`` of a model call, the ``ToolStarted`` of a tool call, the ``StepStarted`` of a
  step attempt).

Attribute names follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``) where one
exists and ``agentcore.*`` otherwise. Raw content (prompts, responses, tool arguments and
payloads, the task and the reply) is left out unless ``content=True``; artifact ids always go in.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from agentcore.core import events as ev
from agentcore.core.patches import AppendKnownFacts
from agentcore.core.text import clip

__all__ = (
    "CONTENT_CHARS",
    "Attributes",
    "decided_event",
    "llm_attributes",
    "nanos",
    "patch_events",
    "root_attributes",
    "root_span_id",
    "span_id",
    "step_attributes",
    "tool_attributes",
    "trace_id",
    "user_event",
)

CONTENT_CHARS = 4000
"""Longest text put in an attribute when content is asked for (the rest is in the log)."""

Attributes = dict[str, Any]


def _digest(text: str, size: int) -> int:
    value = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:size], "big")
    return value or 1  # an all-zero id is invalid in OpenTelemetry


def trace_id(run_id: str) -> int:
    """The run's 128-bit trace id."""
    return _digest("agentcore/trace/" + run_id, 16)


def root_span_id(run_id: str) -> int:
    """The 64-bit id of the run's root span."""
    return _digest(f"agentcore/span/{run_id}/run", 8)


def span_id(run_id: str, seq: int) -> int:
    """The 64-bit id of the span opened by the event at ``seq``."""
    return _digest(f"agentcore/span/{run_id}/{seq}", 8)


def nanos(at: datetime) -> int:
    """An event time as OpenTelemetry nanoseconds since the epoch."""
    return int(at.timestamp() * 1_000_000) * 1000


def root_attributes(
    run_id: str, started: ev.RunStarted | None, finished: ev.RunFinished | None, content: bool
) -> Attributes:
    out: Attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "agentcore",
        "gen_ai.conversation.id": run_id,
        "agentcore.run.id": run_id,
        "agentcore.run.status": finished.status if finished else "running",
        "openinference.span.kind": "AGENT",
    }
    if started is not None:
        models = [started.config.get(k) for k in ("controller_model", "processor_model")]
        out["agentcore.models"] = [str(m) for m in models if m]
        if content:
            out["agentcore.run.task"] = clip(started.task, CONTENT_CHARS)
    if finished is not None:
        if finished.reason:
            out["agentcore.run.reason"] = clip(finished.reason, CONTENT_CHARS)
        if content and finished.reply:
            out["agentcore.run.reply"] = clip(finished.reply, CONTENT_CHARS)
    return out


def llm_attributes(e: ev.LLMCalled, content: bool) -> Attributes:
    """The GenAI attributes of one model call (``chat {model}`` span)."""
    out: Attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": e.model,
        "gen_ai.usage.input_tokens": e.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": e.usage.completion_tokens,
        "agentcore.role": e.role,
        "agentcore.seq": e.seq,
        "agentcore.attempt": e.attempt,
        "agentcore.latency_ms": e.latency_ms,
        "agentcore.request_digest": e.request_digest,
        "openinference.span.kind": "LLM",
        "llm.model_name": e.model,
        "llm.token_count.prompt": e.usage.prompt_tokens,
        "llm.token_count.completion": e.usage.completion_tokens,
        "llm.token_count.total": e.usage.total_tokens,
    }
    model = e.response.get("model")
    out["gen_ai.response.model"] = model if isinstance(model, str) and model else e.model
    reason = e.response.get("finish_reason")
    if isinstance(reason, str) and reason:
        out["gen_ai.response.finish_reasons"] = [reason]
    if e.cost_usd is not None:
        out["agentcore.cost_usd"] = e.cost_usd
    if e.request_artifact is not None:
        out["agentcore.request_artifact.id"] = e.request_artifact.id
    if e.step_id:
        out["agentcore.step.id"] = e.step_id
    if not e.ok:
        out["error.type"] = "invalid_output" if e.response else "model_error"
        out["agentcore.error"] = clip(e.error or "", CONTENT_CHARS)
    if content:
        out["gen_ai.output.messages"] = clip(_json(e.response), CONTENT_CHARS)
    return out


def tool_attributes(start: ev.ToolStarted | None, end: ev.ToolFinished, content: bool) -> Attributes:
    """The attributes of one tool call (``execute_tool {name}`` span)."""
    out: Attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": end.name,
        "gen_ai.tool.call.id": end.call_id,
        "agentcore.seq": end.seq,
        "agentcore.tool.ok": end.ok,
        "agentcore.tool.duration_ms": end.duration_ms,
        "openinference.span.kind": "TOOL",
        "tool.name": end.name,
    }
    if start is not None:
        out["agentcore.idempotency_key"] = start.idempotency_key
    if end.artifact is not None:
        out["agentcore.artifact.id"] = end.artifact.id
        out["agentcore.artifact.size"] = end.artifact.size
        out["agentcore.artifact.media_type"] = end.artifact.media_type
    if end.step_id:
        out["agentcore.step.id"] = end.step_id
    if not end.ok:
        out["error.type"] = "tool_error"
    if content:
        if start is not None:
            out["gen_ai.tool.call.arguments"] = clip(_json(start.call.arguments), CONTENT_CHARS)
        out["gen_ai.tool.call.result"] = clip(end.payload, CONTENT_CHARS)
    return out


def step_attributes(start: ev.StepStarted, end: ev.StepSucceeded | ev.StepFailed, content: bool) -> Attributes:
    """The attributes of one plan step attempt (``step {id}`` span)."""
    out: Attributes = {
        "agentcore.step.id": start.step_id,
        "agentcore.step.attempt": start.attempt,
        "agentcore.idempotency_key": start.idempotency_key,
        "agentcore.seq": start.seq,
        "openinference.span.kind": "CHAIN",
    }
    if isinstance(end, ev.StepSucceeded):
        if end.result is not None:
            out["agentcore.artifact.id"] = end.result.id
        if content and end.payload:
            out["agentcore.step.payload"] = clip(end.payload, CONTENT_CHARS)
    else:
        out["error.type"] = end.kind
        out["agentcore.step.retryable"] = end.retryable
    return out


def patch_events(e: ev.StatePatched | ev.PatchRejected, content: bool) -> list[tuple[str, Attributes]]:
    """Span events for a patch: one ``state_patched`` (or ``patch_rejected``) and one ``fact`` per
    fact (its key, source and artifact id; its value only with ``content``)."""
    if isinstance(e, ev.PatchRejected):
        attrs: Attributes = {"agentcore.seq": e.seq, "agentcore.patch.error": clip(e.error, CONTENT_CHARS)}
        if e.path is not None:
            attrs["agentcore.patch.path"] = e.path
        return [("patch_rejected", attrs)]
    events: list[tuple[str, Attributes]] = [
        ("state_patched", {"agentcore.seq": e.seq, "agentcore.patch.source": e.source,
                           "agentcore.patch.ops": [op.op for op in e.ops]})
    ]  # fmt: skip
    for op in e.ops:
        if isinstance(op, AppendKnownFacts):
            for fact in op.facts:
                attrs = {"agentcore.fact.key": fact.key, "agentcore.fact.source": fact.source,
                         "agentcore.fact.confidence": fact.confidence}  # fmt: skip
                if content:
                    attrs["agentcore.fact.value"] = clip(fact.value, CONTENT_CHARS)
                if fact.artifact_id:
                    attrs["agentcore.artifact.id"] = fact.artifact_id
                events.append(("fact", attrs))
    return events


def decided_event(e: ev.Decided, content: bool) -> tuple[str, Attributes]:
    d = e.decision
    attrs: Attributes = {"agentcore.seq": e.seq, "agentcore.decision.kind": d.kind,
                         "agentcore.decision.tools": [c.name for c in d.tool_calls]}  # fmt: skip
    if content and d.question:
        attrs["agentcore.decision.question"] = clip(d.question, CONTENT_CHARS)
    return "decided", attrs


def user_event(e: ev.UserMessaged | ev.StepSkipped, content: bool) -> tuple[str, Attributes]:
    if isinstance(e, ev.StepSkipped):
        return "step_skipped", {"agentcore.seq": e.seq, "agentcore.step.id": e.step_id, "agentcore.reason": e.reason}
    attrs: Attributes = {"agentcore.seq": e.seq}
    if content:
        attrs["agentcore.user.text"] = clip(e.text, CONTENT_CHARS)
    return "user_messaged", attrs


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
