"""Trace files: one run as a portable, self-checking JSON Lines file.

A trace holds everything needed to look at or replay a run with no database and no network::

    {"kind": "header", "format": "agentcore-trace", "format_version": 1, "agentcore_version": ..., "recorded": {...}}
    {"kind": "event", "event": {...}}                  one line per event, seqs 1..n
    {"kind": "artifact", "id": "sha256:...", "media_type": ..., "size": ..., "encoding": "utf-8"|"base64", "data": ...}
    {"kind": "footer", "events": n, "artifacts": m, "sha256": "<hex of every byte before this line>"}

Invariant: ``import_trace(export_run(run))`` gives back the same events, the same artifacts and so
the same state at every seq. Import checks the whole file first (format version, footer digest,
artifact hashes, event bodies, consecutive seqs, that every event folds) and writes only when all of
it is sound, so a bad file imports nothing. A forked run is exported with the events it inherits,
so its trace stands alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agentcore.core.events import BaseEvent, Event, LLMCalled, StepSucceeded, ToolFinished, decode_event
from agentcore.core.fold import fold
from agentcore.core.values import sha256_id
from agentcore.errors import AgentcoreError, ConfigError, EventError, TraceError
from agentcore.storage.base import EventStore, RunInfo, new_run_id
from agentcore.storage.sqlite.store import SQLiteEventStore

__all__ = (
    "FORMAT",
    "FORMAT_VERSION",
    "Trace",
    "TraceArtifact",
    "export_run",
    "import_trace",
    "read_trace",
    "referenced_artifacts",
    "was_imported",
)

FORMAT = "agentcore-trace"
FORMAT_VERSION = 1
"""The newest trace format this code reads and the one it writes."""

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")

MAX_TRACE_BYTES = 1 << 30
"""The largest trace file ``read_trace`` reads by default (1 GiB); larger files are refused unread."""
RESERVED_RUN_IDS = frozenset({"last"})
"""Run ids the CLI gives a meaning (``last`` is the newest run); an imported run never takes one."""


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


def _version() -> str:
    found = getattr(sys.modules.get("agentcore"), "__version__", None)
    if isinstance(found, str):
        return found
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("agentcore")
    except (ImportError, PackageNotFoundError):
        return "unknown"


def _source_name(store: EventStore) -> dict[str, str]:
    # only the file's base name: a full path can carry user names and directory layouts
    info = {"store": type(store).__name__}
    if isinstance(store, SQLiteEventStore) and store.path not in ("", ":memory:"):
        info["db"] = Path(store.path).name
    return info


def _run_dict(info: RunInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "task": info.task,
        "status": info.status,
        "created": info.created,
        "last_seq": info.last_seq,
        "parent_run_id": info.parent_run_id,
        "forked_at_seq": info.forked_at_seq,
    }


def _line(obj: dict[str, Any]) -> bytes:
    # ASCII-only lines: no raw U+2028 or other separators a line reader might split on
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def _artifact_line(ident: str, media_type: str, data: bytes) -> bytes:
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(data).decode("ascii"), "base64"
    body = {"kind": "artifact", "id": ident, "media_type": media_type, "size": len(data), "encoding": encoding}
    body["data"] = text
    return _line(body)


def export_run(store: EventStore, run_id: str, path: str | Path, *, at: datetime | None = None) -> dict[str, Any]:
    """Write run ``run_id`` of ``store`` to the trace file ``path`` (overwritten).

    Args:
        store: The store holding the run.
        run_id: The run to export; a fork is exported with the events it inherits.
        path: Where to write the ``.jsonl`` trace.
        at: The export time recorded in the header (default: now); pass a fixed time for
            byte-identical golden files.

    Returns:
        The header's ``recorded`` block (run info, event and artifact counts).

    Raises:
        RunNotFound: no such run.
        TraceError: an artifact the events need is missing from the store.
    """
    info = store.run(run_id)
    events = list(store.read(run_id))
    wanted: list[str] = []
    seen: set[str] = set()
    for e in events:
        required, mentioned = referenced_artifacts(e)
        for ident in sorted(required):
            if not store.artifacts.exists(ident):
                raise TraceError(
                    f"run {run_id!r} seq {e.seq} ({e.type}) points to artifact {ident}, which is not in "
                    "the store; the run cannot be exported whole"
                )
        for ident in sorted(required) + sorted(mentioned):
            if ident not in seen and (ident in required or store.artifacts.exists(ident)):
                seen.add(ident)
                wanted.append(ident)
    when = (at or datetime.now(timezone.utc)).isoformat()
    recorded = {
        "how": "export",
        "at": when,
        "source": _source_name(store),
        "run": _run_dict(info),
        "events": len(events),
        "artifacts": len(wanted),
    }
    header = {
        "kind": "header",
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "agentcore_version": _version(),
        "recorded": recorded,
    }
    digest = hashlib.sha256()
    target = Path(path)
    tmp = target.with_name(target.name + ".partial")
    with tmp.open("wb") as f:

        def write(chunk: bytes) -> None:
            digest.update(chunk)
            f.write(chunk)

        write(_line(header))
        for e in events:
            write(_line({"kind": "event", "event": e.model_dump(mode="json")}))
        for ident in wanted:
            ref = store.artifacts.info(ident)
            write(_artifact_line(ref.id, ref.media_type, store.artifacts.read(ident)))
        f.write(
            _line({"kind": "footer", "events": len(events), "artifacts": len(wanted), "sha256": digest.hexdigest()})
        )
    tmp.replace(target)  # a crash mid-export never leaves a half-written trace under the real name
    return recorded


# --------------------------------------------------------------------------------------------
# reading


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
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TraceError(f"{where} line {number} is not JSON ({e}); the file is damaged or not a trace") from None
        except RecursionError:
            raise TraceError(f"{where} line {number} is JSON nested too deeply to be a trace record") from None
        _check_encodable(obj, f"{where} line {number}")
        if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
            raise TraceError(f"{where} line {number} is not a trace record (an object with a 'kind')")
        yield number, raw, obj
        start = end


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
    _, footer_raw, footer = records[-1]
    if footer.get("kind") != "footer" or len(records) < 2:
        raise TraceError(f"{where} is truncated: it does not end with a footer line; re-export the run")
    body_len = len(data) - len(footer_raw)
    if hashlib.sha256(data[:body_len]).hexdigest() != footer.get("sha256"):
        raise TraceError(f"{where} was edited or damaged: its content does not match the footer's sha256")
    events: list[Event] = []
    artifacts: dict[str, TraceArtifact] = {}
    for number, _, obj in records[1:-1]:
        kind = obj["kind"]
        if kind == "event":
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
            if event.seq != len(events) + 1:
                raise TraceError(
                    f"{where} line {number}: event has seq {event.seq}, expected {len(events) + 1} "
                    "(events must be numbered 1..n in order)"
                )
            events.append(event)
        elif kind == "artifact":
            art = _decode_artifact(obj, number, where)
            artifacts[art.id] = art
        else:
            raise TraceError(f"{where} line {number}: unknown record kind {kind!r} (expected event or artifact)")
    if footer.get("events") != len(events) or footer.get("artifacts") != len(artifacts):
        raise TraceError(
            f"{where}: footer counts {footer.get('events')} events and {footer.get('artifacts')} artifacts, "
            f"the file holds {len(events)} and {len(artifacts)}"
        )
    for ev in events:
        missing = sorted(referenced_artifacts(ev)[0] - artifacts.keys())
        if missing:
            raise TraceError(f"{where}: seq {ev.seq} ({ev.type}) needs artifact {missing[0]}, which the trace lacks")
    try:
        fold(events)
    except AgentcoreError as e:
        raise TraceError(f"{where}: its events do not fold into a state: {e}") from None
    return Trace(header=records[0][2], events=events, artifacts=artifacts)


def _retarget(events: Iterable[Event], run_id: str) -> list[Event]:
    return [e if e.run_id == run_id else e.model_copy(update={"run_id": run_id}) for e in events]


def _run_exists(store: EventStore, run_id: str) -> bool:
    try:
        store.run(run_id)
    except AgentcoreError:
        return False
    return True


def import_trace(store: EventStore, path: str | Path | Trace, *, run_id: str | None = None) -> str:
    """Import a trace into ``store`` as a new, standalone run and return its id.

    The run keeps the id it had when exported unless that id is taken in ``store`` or reserved
    (``last``): then it gets a fresh id; or ``run_id`` is given. Events of an exported fork become the
    new run's own events. The run, its events and its artifacts are written in one transaction. Its
    creation time is the recorded one in UTC, but never later than the time of the import.

    Args:
        store: Where to write.
        path: The trace file (or a ``Trace`` already read with ``read_trace``).
        run_id: The id for the imported run; it must not exist yet.

    Raises:
        TraceError: the file is not sound (see ``read_trace``); nothing was written.
        ConfigError: ``run_id`` is given and already exists or is reserved.
        StoreError: the store could not write (nothing was written).
    """
    trace = path if isinstance(path, Trace) else read_trace(path)
    if run_id is not None:
        if run_id in RESERVED_RUN_IDS:
            raise ConfigError(f"run id {run_id!r} is reserved (it names the newest run); pick another")
        if _run_exists(store, run_id):
            raise ConfigError(f"run {run_id!r} already exists in this store; pick another run_id or omit it")
        target = run_id
    else:
        original = trace.run.get("id") or (trace.events[0].run_id if trace.events else None)
        usable = isinstance(original, str) and bool(original) and original not in RESERVED_RUN_IDS
        target = str(original) if usable and not _run_exists(store, str(original)) else new_run_id()
    events = _retarget(trace.events, target)
    arts = [(a.data, a.media_type) for a in trace.artifacts.values()]
    arts.append((import_mark(target), IMPORT_MARK_MEDIA_TYPE))
    # the run, its events and its artifacts in one transaction: a failure (a kill, a lock held past the
    # timeout, a full disk) leaves nothing behind. Its `created` is the time of the import (the recorded
    # times stay in the events), so `last` names the run just imported whatever date the trace carries.
    store.create_run(trace.task, run_id=target, events=events, artifacts=arts)
    return target


IMPORT_MARK_MEDIA_TYPE = "application/vnd.agentcore.import-mark+json"


def import_mark(run_id: str) -> bytes:
    """The bytes of the artifact ``import_trace`` stores beside an imported run: its id (the artifact's
    sha256) can be computed from the run id alone, so ``was_imported`` needs no schema of its own."""
    return json.dumps({"imported_run": run_id}, sort_keys=True, ensure_ascii=True).encode("ascii")


def was_imported(store: EventStore, run_id: str) -> bool:
    """Whether ``run_id``, or a run it was forked from, came from a trace file (``import_trace``).

    Nothing recorded in such a run (its repository, for instance) may widen what tools can reach.
    """
    seen: set[str] = set()
    current: str | None = run_id
    while current is not None and current not in seen:
        seen.add(current)
        if store.artifacts.exists(sha256_id(import_mark(current))):
            return True
        current = store.run(current).parent_run_id
    return False

