"""``MemoryEventStore``: the store contract in a dict, for tests and throwaway runs.

Events are kept as their encoded bodies, as a file would keep them: every read decodes new
objects, so nothing a caller gets back (events or states) aliases what the store holds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agentcore.core.event_codec import decode_event, encode_event
from agentcore.core.events import BaseEvent, Event
from agentcore.core.fold import RunState, diff_states, fold
from agentcore.errors import ConfigError, RunNotFound
from agentcore.storage import base, forks
from agentcore.storage.artifacts import MemoryArtifactStore
from agentcore.storage.base import NewRunOptions, RunInfo, RunStats, check_batch, stats_of, status_after
from agentcore.storage.run_ids import check_text
from agentcore.storage.seqs import check_range, check_seq

if TYPE_CHECKING:
    from typing_extensions import Unpack


class MemoryEventStore:
    """The store contract in a dict: for tests and throwaway runs. Thread-safe."""

    def __init__(self) -> None:
        self.artifacts = MemoryArtifactStore()
        self._runs: dict[str, RunInfo] = {}
        self._events: dict[str, list[tuple[int, str]]] = {}
        """Each run's own events as ``(seq, encoded body)``."""
        self._lock = threading.Lock()

    @property
    def read_only(self) -> bool:
        """Always ``False``: a memory store takes writes."""
        return False

    def close(self) -> None:
        """Nothing to release; the runs stay readable."""

    def create_run(self, task: str, **options: Unpack[NewRunOptions]) -> str:
        new = base.new_run(options)
        check_text(task, "task")
        with self._lock:
            if new.id in self._runs:
                raise base.taken(new.id, "this store")
            self.artifacts.put_many(new.artifacts)
            self._runs[new.id] = RunInfo(
                id=new.id, task=task, status=status_after(new.events, "running"), created=new.created,
                last_seq=len(new.events),
            )  # fmt: skip
            self._events[new.id] = [(e.seq, encode_event(e)) for e in new.events]
        return new.id

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
                raise base.stale_seq(run_id, expected_seq, info.last_seq)
            self._events[run_id].extend((e.seq, encode_event(e)) for e in events)
            last = expected_seq + len(events)
            self._runs[run_id] = RunInfo(
                **{**info.__dict__, "last_seq": last, "status": status_after(events, info.status)}
            )
            return last

    def read(self, run_id: str, *, after: int = 0, upto: int | None = None) -> Iterator[Event]:
        check_range(after, upto)
        with self._lock:
            chain = self._chain(run_id)
        hi = upto if upto is not None else float("inf")
        return iter([decode_event(body) for seq, body in chain if after < seq <= hi])

    def _chain(self, run_id: str) -> list[tuple[int, str]]:
        """A run's ``(seq, body)`` pairs with its fork ancestry's first; the caller holds the lock."""
        info = self._info(run_id)
        chain: list[tuple[int, str]] = []
        if info.parent_run_id is not None:
            assert info.forked_at_seq is not None
            chain.extend(e for e in self._chain(info.parent_run_id) if e[0] <= info.forked_at_seq)
        chain.extend(self._events[run_id])
        return chain

    def run_stats(self, run_id: str) -> RunStats:
        return stats_of(self.read(run_id))

    def state_at(self, run_id: str, seq: int | None = None) -> RunState:
        if seq is not None:
            check_seq(seq, "seq")
        if seq is not None and seq < 0:
            raise ConfigError(f"seq must be >= 0, got {seq}")
        return fold(self.read(run_id, upto=seq))

    def fork(
        self, run_id: str, at_seq: int, *, new_run_id: str | None = None, events: Sequence[BaseEvent] = (),
        created: datetime | None = None,
    ) -> str:
        new_id, when = base.new_fork(new_run_id, at_seq, events, created)
        with self._lock:
            info = self._info(run_id)
            forks.check_fork_range(run_id, at_seq, info.last_seq)
            if new_id in self._runs:
                raise base.taken(new_id, "this store")
            chain = [decode_event(body) for _, body in self._chain(run_id)]
            forks.check_fork_point(run_id, [(e.seq, e.type, e.caused_by) for e in chain], at_seq)
            inherited = [e for e in chain if e.seq <= at_seq]
            self._runs[new_id] = RunInfo(
                id=new_id,
                task=info.task,
                status=status_after(events, status_after(inherited, "running")),
                created=when,
                last_seq=at_seq + len(events),
                parent_run_id=run_id,
                forked_at_seq=at_seq,
            )
            self._events[new_id] = [(e.seq, encode_event(e)) for e in events]
        return new_id

    def diff(self, run_id: str, a: int, b: int) -> list[dict[str, Any]]:
        check_seq(a, "a")
        check_seq(b, "b")
        return diff_states(self.state_at(run_id, a), self.state_at(run_id, b))
