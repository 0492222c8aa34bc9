"""Event stores: the append-only log of every run.

Contract (every implementation, checked by one parametrised test suite):

- ``append(run_id, events, expected_seq)`` writes a batch atomically. The events must carry seqs
  ``expected_seq + 1 ..`` in order and the run's last seq must still be ``expected_seq``;
  otherwise ``ConcurrencyError`` and nothing is written.
- ``read(run_id, after=, upto=)`` streams events in seq order; a fork reads its parent's events
  up to ``forked_at_seq``, then its own.
- ``state_at(run_id, seq)`` is ``fold(read(run_id, upto=seq))``; stores may speed it up with
  snapshots, which are caches only.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from agentcore.artifacts import ArtifactStore, MemoryArtifactStore
from agentcore.errors import ConcurrencyError, ConfigError, RunNotFound
from agentcore.events import BaseEvent, Decided, Event, RunFinished, RunStarted, UserMessaged
from agentcore.state import RunState, diff_states, fold


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    """One row of the runs table."""

    id: str
    task: str
    status: str
    """Cached from the log: ``running`` until a ``RunFinished`` event says otherwise."""
    created: str
    last_seq: int
    parent_run_id: str | None = None
    forked_at_seq: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def new_run_id() -> str:
    """A fresh run id (sortable by creation time is not promised)."""
    return "run_" + uuid.uuid4().hex[:16]


def check_batch(run_id: str, events: Sequence[BaseEvent], expected_seq: int) -> None:
    """Raise ``ConfigError`` unless events belong to ``run_id`` with seqs expected_seq+1, +2, ..."""
    if expected_seq < 0:
        raise ConfigError(f"expected_seq must be >= 0, got {expected_seq}")
    for i, e in enumerate(events):
        if e.run_id != run_id:
            raise ConfigError(f"event {i} ({e.type}) belongs to run {e.run_id!r}, not {run_id!r}")  # type: ignore[attr-defined]
        if e.seq != expected_seq + 1 + i:
            raise ConfigError(
                f"event {i} ({e.type}) has seq {e.seq}; this batch must continue at seq "  # type: ignore[attr-defined]
                f"{expected_seq + 1 + i} (seqs are consecutive from expected_seq + 1)"
            )


def status_after(events: Sequence[BaseEvent], current: str) -> str:
    """The run status cached in the runs table after ``events`` are appended (the fold's rules)."""
    for e in events:
        if isinstance(e, RunFinished):
            current = e.status
        elif isinstance(e, (RunStarted, UserMessaged)):
            current = "running"
        elif isinstance(e, Decided) and e.decision.kind == "ask_user":
            current = "waiting_for_user"
    return current


_make_id = new_run_id


@runtime_checkable
class EventStore(Protocol):
    """The log of runs. ``SQLiteEventStore`` and ``MemoryEventStore`` implement it."""

    artifacts: ArtifactStore

    def create_run(
        self,
        task: str,
        *,
        run_id: str | None = None,
        created: datetime | None = None,
        events: Sequence[BaseEvent] = (),
    ) -> str:
        """Add a run; its first ``events`` (seqs 1..), if any, are written in the same transaction."""
        ...

    def runs(self) -> list[RunInfo]: ...
    def run(self, run_id: str) -> RunInfo: ...
    def last_seq(self, run_id: str) -> int: ...
    def append(self, run_id: str, events: Sequence[BaseEvent], expected_seq: int) -> int: ...
    def read(self, run_id: str, *, after: int = 0, upto: int | None = None) -> Iterator[Event]: ...
    def state_at(self, run_id: str, seq: int | None = None) -> RunState: ...
    def fork(self, run_id: str, at_seq: int, *, new_run_id: str | None = None) -> str: ...
    def diff(self, run_id: str, a: int, b: int) -> list[dict[str, Any]]: ...


class MemoryEventStore:
    """The store contract in a dict: for tests and throwaway runs. Thread-safe."""

    def __init__(self) -> None:
        self.artifacts = MemoryArtifactStore()
        self._runs: dict[str, RunInfo] = {}
        self._events: dict[str, list[Event]] = {}
        self._lock = threading.Lock()

    def create_run(
        self,
        task: str,
        *,
        run_id: str | None = None,
        created: datetime | None = None,
        events: Sequence[BaseEvent] = (),
    ) -> str:
        run_id = run_id or new_run_id()
        check_batch(run_id, events, 0)
        with self._lock:
            if run_id in self._runs:
                raise ConcurrencyError(f"run {run_id!r} already exists")
            when = (created or datetime.now().astimezone()).isoformat()
            self._runs[run_id] = RunInfo(
                id=run_id, task=task, status=status_after(events, "running"), created=when, last_seq=len(events)
            )
            self._events[run_id] = list(events)  # type: ignore[arg-type]
        return run_id

    def runs(self) -> list[RunInfo]:
        with self._lock:
            return sorted(self._runs.values(), key=lambda r: (r.created, r.id))

    def run(self, run_id: str) -> RunInfo:
        with self._lock:
            return self._info(run_id)

    def _info(self, run_id: str) -> RunInfo:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunNotFound(f"no run {run_id!r} in this store") from None

    def last_seq(self, run_id: str) -> int:
        return self.run(run_id).last_seq

    def append(self, run_id: str, events: Sequence[BaseEvent], expected_seq: int) -> int:
        check_batch(run_id, events, expected_seq)
        with self._lock:
            info = self._info(run_id)
            if info.last_seq != expected_seq:
                raise ConcurrencyError(
                    f"run {run_id!r}: expected last seq {expected_seq}, but it is {info.last_seq}; "
                    "another writer appended first: re-read the run and retry"
                )
            self._events[run_id].extend(events)  # type: ignore[arg-type]
            last = expected_seq + len(events)
            self._runs[run_id] = RunInfo(
                **{**info.__dict__, "last_seq": last, "status": status_after(events, info.status)}
            )
            return last

    def read(self, run_id: str, *, after: int = 0, upto: int | None = None) -> Iterator[Event]:
        with self._lock:
            chain = self._chain(run_id)
        hi = upto if upto is not None else float("inf")
        return iter([e for e in chain if after < e.seq <= hi])

    def _chain(self, run_id: str) -> list[Event]:
        """A run's events with its fork ancestry's first; the caller holds the lock."""
        info = self._info(run_id)
        chain: list[Event] = []
        if info.parent_run_id is not None:
            assert info.forked_at_seq is not None
            chain.extend(e for e in self._chain(info.parent_run_id) if e.seq <= info.forked_at_seq)
        chain.extend(self._events[run_id])
        return chain

    def state_at(self, run_id: str, seq: int | None = None) -> RunState:
        if seq is not None and seq < 0:
            raise ConfigError(f"seq must be >= 0, got {seq}")
        return fold(self.read(run_id, upto=seq))

    def fork(self, run_id: str, at_seq: int, *, new_run_id: str | None = None) -> str:
        with self._lock:
            info = self._info(run_id)
            if not 1 <= at_seq <= info.last_seq:
                raise ConfigError(f"cannot fork run {run_id!r} at seq {at_seq}: it has seqs 1..{info.last_seq}")
            new_id = new_run_id or _make_id()
            if new_id in self._runs:
                raise ConcurrencyError(f"run {new_id!r} already exists")
            inherited = [e for e in self._chain(run_id) if e.seq <= at_seq]
            self._runs[new_id] = RunInfo(
                id=new_id,
                task=info.task,
                status=status_after(inherited, "running"),
                created=datetime.now().astimezone().isoformat(),
                last_seq=at_seq,
                parent_run_id=run_id,
                forked_at_seq=at_seq,
            )
            self._events[new_id] = []
        return new_id

    def diff(self, run_id: str, a: int, b: int) -> list[dict[str, Any]]:
        return diff_states(self.state_at(run_id, a), self.state_at(run_id, b))
