"""The records of a trace file: format constants, the in-memory ``Trace``, and the line encoding.

Every line is one JSON object with a ``kind`` (``header``, ``event``, ``artifact``, ``footer``),
written ASCII-only so that no line reader can split a record on a raw U+2028 or similar.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from agentcore.core.events import BaseEvent, Event, LLMCalled, StepSucceeded, ToolFinished

__all__ = (
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_TRACE_BYTES",
    "RESERVED_RUN_IDS",
    "Trace",
    "TraceArtifact",
    "artifact_line",
    "encode_line",
    "referenced_artifacts",
)

FORMAT = "agentcore-trace"
FORMAT_VERSION = 1
"""The newest trace format this code reads and the one it writes."""

MAX_TRACE_BYTES = 1 << 30
"""The largest trace file ``read_trace`` reads by default (1 GiB); larger files are refused unread."""

RESERVED_RUN_IDS = frozenset({"last"})
"""Run ids the CLI gives a meaning (``last`` is the newest run); an imported run never takes one."""

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True)
class TraceArtifact:
    """One artifact carried by a trace."""

    id: str
    media_type: str
    data: bytes


@dataclass(frozen=True, kw_only=True)
class Trace:
    """A trace file read and checked in memory (nothing written anywhere)."""

    header: dict[str, Any]
    events: list[Event]
    artifacts: dict[str, TraceArtifact] = field(default_factory=dict)

    @property
    def run(self) -> dict[str, Any]:
        """The run info recorded in the header (id, task, status, created, parent, fork seq)."""
        return dict(self.header.get("recorded", {}).get("run", {}))

    @property
    def task(self) -> str:
        """The run's task (from its ``RunStarted`` event, else the header)."""
        for e in self.events:
            if e.type == "run_started":
                return e.task
        return str(self.run.get("task", ""))


def referenced_artifacts(event: BaseEvent) -> tuple[set[str], set[str]]:
    """The artifact ids an event points to, as ``(required, mentioned)``.

    ``required`` are typed references (a tool's raw output, an LLM request body, a step result) that
    must exist; ``mentioned`` are other ``sha256:...`` strings in the body (facts' ``artifact_id``,
    raw JSON patches) that are carried along when the store has them.
    """
    required: set[str] = set()
    if isinstance(event, ToolFinished) and event.artifact is not None:
        required.add(event.artifact.id)
    elif isinstance(event, LLMCalled) and event.request_artifact is not None:
        required.add(event.request_artifact.id)
    elif isinstance(event, StepSucceeded) and event.result is not None:
        required.add(event.result.id)
    mentioned = set(_DIGEST_RE.findall(event.model_dump_json())) - required
    if isinstance(event, LLMCalled):
        mentioned.discard(event.request_digest)  # a digest of the request, not an artifact id
    return required, mentioned


def encode_line(obj: dict[str, Any]) -> bytes:
    """One record as a line: compact JSON, ASCII only, no NaN, ending in ``\\n``."""
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def artifact_line(ident: str, media_type: str, data: bytes) -> bytes:
    """The line of one artifact: its bytes as UTF-8 text when they are, else base64."""
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(data).decode("ascii"), "base64"
    body = {"kind": "artifact", "id": ident, "media_type": media_type, "size": len(data), "encoding": encoding}
    body["data"] = text
    return encode_line(body)
