"""``export_run``: write one run of a store as a trace file (header, events, artifacts, footer)."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path
from typing import Any

from agentcore.core.events import Event
from agentcore.errors import TraceError
from agentcore.storage.base import EventStore, RunInfo
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace.records import FORMAT, FORMAT_VERSION, artifact_line, encode_line, referenced_artifacts

__all__ = ("export_run",)


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
    wanted = _artifacts_to_carry(store, run_id, events)
    recorded = {
        "how": "export",
        "at": (at or datetime.now(timezone.utc)).isoformat(),
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
    lines = chain(
        [encode_line(header)],
        (encode_line({"kind": "event", "event": e.model_dump(mode="json")}) for e in events),
        # one artifact in memory at a time
        (
            artifact_line(ref.id, ref.media_type, store.artifacts.read(ref.id))
            for ref in map(store.artifacts.info, wanted)
        ),
    )
    _write_with_footer(Path(path), lines, {"events": len(events), "artifacts": len(wanted)})
    return recorded


def _artifacts_to_carry(store: EventStore, run_id: str, events: Sequence[Event]) -> list[str]:
    """The artifact ids the trace carries, in first-reference order: every required one (all must
    exist), then the mentioned ones the store has.

    Raises:
        TraceError: a required artifact is missing from the store.
    """
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
    return wanted


def _write_with_footer(target: Path, lines: Iterable[bytes], counts: dict[str, int]) -> None:
    """Write ``lines`` and a footer with ``counts`` and the sha256 of every byte before it.

    The file is written beside ``target`` and renamed over it at the end, so a crash mid-export
    never leaves a half-written trace under the real name.
    """
    digest = hashlib.sha256()
    tmp = target.with_name(target.name + ".partial")
    with tmp.open("wb") as f:
        for chunk in lines:
            digest.update(chunk)
            f.write(chunk)
        f.write(encode_line({"kind": "footer", **counts, "sha256": digest.hexdigest()}))
    tmp.replace(target)


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
