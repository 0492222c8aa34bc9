"""``read_trace``: read a trace file and check all of it before anything is written anywhere.

The file must be a regular file of at most ``max_bytes``; then every line must be a JSON record,
the header of a format this code reads, the footer's digest and counts right, every artifact's
bytes match its ``sha256`` id, events decode with UTC offsets and seqs 1..n, every artifact an
event needs be present, and the events fold into a state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentcore.core.event_codec import decode_event
from agentcore.core.events import Event
from agentcore.core.fold import fold
from agentcore.core.values import sha256_id
from agentcore.errors import AgentcoreError, EventError, TraceError
from agentcore.storage.trace.records import (
    FORMAT,
    FORMAT_VERSION,
    MAX_TRACE_BYTES,
    Trace,
    TraceArtifact,
    referenced_artifacts,
)

__all__ = ("read_trace",)


def _lines(data: bytes, where: str) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
    if not data:
        raise TraceError(f"{where} is empty; not an agentcore trace")
    if not data.endswith(b"\n"):
        raise TraceError(f"{where} is truncated: its last line is incomplete (no footer); re-export the run")
    start = 0
    number = 0
    while start < len(data):
        end = data.index(b"\n", start) + 1
        number += 1
        raw = data[start:end]
        try:
            obj = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
        except _NotFinite:
            raise TraceError(f"{where} line {number} holds a number that is not finite (NaN or Infinity)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TraceError(f"{where} line {number} is not JSON ({e}); the file is damaged or not a trace") from None
        except RecursionError:
            raise TraceError(f"{where} line {number} is JSON nested too deeply to be a trace record") from None
        if b"\xed" in raw or (b"\\u" in raw and _SURROGATE_ESCAPE.search(raw)):  # else no surrogate can be in it
            _check_encodable(obj, f"{where} line {number}")
        if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
            raise TraceError(f"{where} line {number} is not a trace record (an object with a 'kind')")
        yield number, raw, obj
        start = end


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
"""A ``\\uD800``-``\\uDFFF`` escape. With the lead byte of a surrogate's UTF-8-style bytes (``\\xed``;
``json.loads`` of bytes decodes them with ``surrogatepass``), the only ways a line's text can hold
a surrogate; a line with neither is not dumped again to check it."""


class _NotFinite(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotFinite(name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise _NotFinite(text)
    return value


def _check_encodable(obj: Any, where: str) -> None:
    """Refuse text that cannot be written back as UTF-8 (a lone surrogate such as ``"\\ud800"``)."""
    try:
        json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise TraceError(f"{where} holds text that is not valid Unicode (a lone surrogate escape)") from None
    except ValueError:
        raise TraceError(f"{where} holds a number that is not finite (NaN or Infinity)") from None
    except RecursionError:
        raise TraceError(f"{where} is JSON nested too deeply to be a trace record") from None


def _read_bounded(p: Path, max_bytes: int) -> bytes:
    """Read a regular file of at most ``max_bytes`` bytes (never a device, FIFO or directory)."""
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise TraceError(f"cannot read trace {str(p)!r}: {e.strerror or e}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise TraceError(f"{str(p)!r} is not a regular file (a device, pipe or directory); a trace is a file")
    with os.fdopen(fd, "rb") as f:
        if st.st_size > max_bytes:
            raise TraceError(f"trace {p.name} is {st.st_size} bytes, over the limit of {max_bytes}; not read")
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise TraceError(f"cannot read trace {str(p)!r}: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise TraceError(f"trace {p.name} grew past the limit of {max_bytes} bytes while it was read; not read")
    return data


def _check_header(obj: dict[str, Any], where: str) -> None:
    if obj.get("kind") != "header" or obj.get("format") != FORMAT:
        raise TraceError(f"{where} does not start with an agentcore trace header; not an agentcore trace")
    version = obj.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TraceError(f"{where} has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise TraceError(
            f"{where} is trace format version {version} (written by agentcore {obj.get('agentcore_version')}); "
            f"this agentcore reads up to version {FORMAT_VERSION}: upgrade agentcore to read it"
        )


def _decode_artifact(obj: dict[str, Any], number: int, where: str) -> TraceArtifact:
    ident, data, encoding = obj.get("id"), obj.get("data"), obj.get("encoding")
    if not isinstance(ident, str) or not isinstance(data, str) or not isinstance(obj.get("media_type"), str):
        raise TraceError(f"{where} line {number}: an artifact needs string 'id', 'media_type' and 'data'")
    if encoding == "utf-8":
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise TraceError(f"{where} line {number}: artifact {ident} holds text that is not valid UTF-8") from None
    elif encoding == "base64":
        try:
            raw = base64.b64decode(data, validate=True)
        except binascii.Error as e:
            raise TraceError(f"{where} line {number}: artifact {ident} is not valid base64 ({e})") from None
    else:
        raise TraceError(f"{where} line {number}: artifact {ident} has unknown encoding {encoding!r}")
    if sha256_id(raw) != ident:
        raise TraceError(
            f"{where} line {number}: artifact {ident} does not match its bytes (sha256 is {sha256_id(raw)}); "
            "the file was edited or damaged"
        )
    if obj.get("size") != len(raw):
        raise TraceError(f"{where} line {number}: artifact {ident} says size {obj.get('size')}, has {len(raw)} bytes")
    return TraceArtifact(id=ident, media_type=obj["media_type"], data=raw)


def read_trace(path: str | Path, *, max_bytes: int = MAX_TRACE_BYTES) -> Trace:
    """Read and check a trace file completely; nothing is written anywhere.

    Args:
        path: the trace file; it must be a regular file.
        max_bytes: the largest file read (default ``MAX_TRACE_BYTES``, 1 GiB).

    Raises:
        TraceError: the file is missing, not a regular file, over ``max_bytes``, not a trace, of a
            newer format version, truncated, edited (footer digest or an artifact hash does not
            match), or holds JSON nested too deeply, text that is not valid Unicode, times without
            a UTC offset, or events that do not decode, are not numbered 1..n, or do not fold.
    """
    p = Path(path)
    where = f"trace {p.name}"
    data = _read_bounded(p, max_bytes)
    records = list(_lines(data, where))
    _check_header(records[0][2], where)
    footer = _check_footer(data, records, where)
    events: list[Event] = []
    artifacts: dict[str, TraceArtifact] = {}
    for number, _, obj in records[1:-1]:
        kind = obj["kind"]
        if kind == "event":
            events.append(_decode_event(obj, number, where, expected_seq=len(events) + 1))
        elif kind == "artifact":
            art = _decode_artifact(obj, number, where)
            artifacts[art.id] = art
        else:
            raise TraceError(f"{where} line {number}: unknown record kind {kind!r} (expected event or artifact)")
    _check_whole(events, artifacts, footer, where)
    return Trace(header=records[0][2], events=events, artifacts=artifacts)


def _check_footer(data: bytes, records: list[tuple[int, bytes, dict[str, Any]]], where: str) -> dict[str, Any]:
    """The footer record, once it is there and its sha256 matches every byte before it."""
    _, footer_raw, footer = records[-1]
    if footer.get("kind") != "footer" or len(records) < 2:
        raise TraceError(f"{where} is truncated: it does not end with a footer line; re-export the run")
    body_len = len(data) - len(footer_raw)
    if hashlib.sha256(data[:body_len]).hexdigest() != footer.get("sha256"):
        raise TraceError(f"{where} was edited or damaged: its content does not match the footer's sha256")
    return footer


def _decode_event(obj: dict[str, Any], number: int, where: str, *, expected_seq: int) -> Event:
    try:
        event = decode_event(obj.get("event"))  # type: ignore[arg-type]
    except EventError as e:
        raise TraceError(f"{where} line {number}: {e}") from None
    except RecursionError:
        raise TraceError(f"{where} line {number}: the event is nested too deeply") from None
    if event.at.tzinfo is None or event.at.utcoffset() is None:
        raise TraceError(
            f"{where} line {number}: event seq {event.seq} has time {event.at.isoformat()!r} without a UTC "
            "offset; every event time must say its offset (e.g. '+00:00')"
        )
    if event.seq != expected_seq:
        raise TraceError(
            f"{where} line {number}: event has seq {event.seq}, expected {expected_seq} "
            "(events must be numbered 1..n in order)"
        )
    if event.caused_by is not None and not 0 <= event.caused_by < event.seq:  # as every store's append
        raise TraceError(
            f"{where} line {number}: event seq {event.seq} has caused_by {event.caused_by}: an event is caused "
            f"by an earlier one (a seq below {event.seq}) or by none (null)"
        )
    return event


def _check_whole(events: list[Event], artifacts: dict[str, TraceArtifact], footer: dict[str, Any], where: str) -> None:
    """The footer's counts hold, every artifact an event needs is carried, and the events fold."""
    if footer.get("events") != len(events) or footer.get("artifacts") != len(artifacts):
        raise TraceError(
            f"{where}: footer counts {footer.get('events')} events and {footer.get('artifacts')} artifacts, "
            f"the file holds {len(events)} and {len(artifacts)}"
        )
    for ev in events:
        missing = sorted(a for a in referenced_artifacts(ev)[0] if a not in artifacts)
        if missing:
            raise TraceError(f"{where}: seq {ev.seq} ({ev.type}) needs artifact {missing[0]}, which the trace lacks")
    try:
        fold(events)
    except AgentcoreError as e:
        raise TraceError(f"{where}: its events do not fold into a state: {e}") from None
