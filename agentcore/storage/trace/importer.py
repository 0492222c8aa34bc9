"""``import_trace``: a trace file becomes a new, standalone run of a store, in one transaction.

An imported run is marked by an artifact whose bytes derive from its run id alone
(``import_mark``), so ``was_imported`` can tell, with no schema of its own, that nothing recorded
in it may widen what tools can reach.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from agentcore.core.events import Event
from agentcore.core.values import sha256_id
from agentcore.errors import AgentcoreError, ConfigError
from agentcore.storage.base import EventStore
from agentcore.storage.run_ids import check_run_id, new_run_id, run_id_problem
from agentcore.storage.trace.reader import read_trace
from agentcore.storage.trace.records import RESERVED_RUN_IDS, Trace

__all__ = ("IMPORT_MARK_MEDIA_TYPE", "import_mark", "import_trace", "was_imported")

IMPORT_MARK_MEDIA_TYPE = "application/vnd.agentcore.import-mark+json"


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

    The run keeps the id it had when exported unless that id is taken in ``store``, reserved
    (``last``) or one that no store takes now (an older agentcore took ids with NUL, or longer than
    ``MAX_RUN_ID_BYTES``): then it gets a fresh id; or ``run_id`` is given. Events of an exported fork become the
    new run's own events. The run, its events and its artifacts are written in one transaction. Its
    creation time is the recorded one in UTC, but never later than the time of the import.

    Args:
        store: Where to write.
        path: The trace file (or a ``Trace`` already read with ``read_trace``).
        run_id: The id for the imported run; it must not exist yet.

    Raises:
        TraceError: the file is not sound (see ``read_trace``); nothing was written.
        ConfigError: ``run_id`` is given and already exists, is reserved or is not a usable run id
            (``run_ids.check_run_id``: NUL, longer than ``MAX_RUN_ID_BYTES``).
        StoreError: the store could not write (nothing was written).
    """
    trace = path if isinstance(path, Trace) else read_trace(path)
    if run_id is not None:
        check_run_id(run_id)
        if run_id in RESERVED_RUN_IDS:
            raise ConfigError(f"run id {run_id!r} is reserved (it names the newest run); pick another")
        if _run_exists(store, run_id):
            raise ConfigError(f"run {run_id!r} already exists in this store; pick another run_id or omit it")
        target = run_id
    else:
        original = trace.run.get("id") or (trace.events[0].run_id if trace.events else None)
        usable = isinstance(original, str) and bool(original) and original not in RESERVED_RUN_IDS
        usable = usable and run_id_problem(str(original)) is None  # NUL, too long: no store takes it now
        target = str(original) if usable and not _run_exists(store, str(original)) else new_run_id()
    events = _retarget(trace.events, target)
    arts = [(a.data, a.media_type) for a in trace.artifacts.values()]
    arts.append((import_mark(target), IMPORT_MARK_MEDIA_TYPE))
    # the run, its events and its artifacts in one transaction: a failure (a kill, a lock held past the
    # timeout, a full disk) leaves nothing behind. Its `created` is the time of the import (the recorded
    # times stay in the events), so `last` names the run just imported whatever date the trace carries.
    # no store takes a task with NUL (PostgreSQL's text cannot hold it): the run's row shows it as the
    # six characters \u0000, as the views do; its RunStarted keeps the task exact
    store.create_run(trace.task.replace("\x00", "\\u0000"), run_id=target, events=events, artifacts=arts)
    return target


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
