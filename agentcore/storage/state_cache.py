"""The latest states a store keeps in memory, so an append can write its snapshot without re-reading.

A SQL store folds each batch it appends onto the state it remembers for that run (if that state is
at the batch's ``expected_seq``); when a snapshot falls due it encodes that state instead of
loading the snapshot before and folding the tail. The log stays the truth: an event that does not
fold drops the entry, and so does any failed write.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from agentcore.core.events import BaseEvent
from agentcore.core.fold import RunState, apply

CACHE_RUNS = 8
"""Latest states kept in memory (per process) so appends can snapshot without re-reading."""


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building a state: its many objects form no cycles, and a full
    collection in the middle would walk all of them for nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class StateCache:
    """``run_id -> (seq, state)`` for the ``CACHE_RUNS`` runs used last. The states are the cache's
    own: callers get ``clone()``s of them. A state may be remembered as how to build it
    (``remember_lazy``): it is built on first use, so a load that is never followed by an append
    costs no copy."""

    def __init__(self, size: int = CACHE_RUNS) -> None:
        self._size = size
        self._states: OrderedDict[str, tuple[int, RunState | Callable[[], RunState]]] = OrderedDict()

    def at(self, run_id: str, seq: int) -> RunState | None:
        """The remembered state of ``run_id`` if it is the one after ``seq`` (not a copy)."""
        hit = self._states.get(run_id)
        if hit is None or hit[0] != seq:
            return None
        state = hit[1]
        if isinstance(state, RunState):
            return state
        try:
            with gc_paused():
                built = state()
        except Exception:  # it was built once already; whatever broke, the log is the truth
            self.drop(run_id)
            return None
        self._states[run_id] = (seq, built)
        return built

    def remember(self, run_id: str, seq: int, state: RunState) -> None:
        """Keep ``state`` as the run's state after ``seq`` (it becomes the cache's own)."""
        self._remember(run_id, seq, state)

    def remember_lazy(self, run_id: str, seq: int, build: Callable[[], RunState]) -> None:
        """Keep the run's state after ``seq`` as ``build``, which returns a new copy of it (called
        at most once, when the state is first asked for; it must not touch the database)."""
        self._remember(run_id, seq, build)

    def _remember(self, run_id: str, seq: int, state: RunState | Callable[[], RunState]) -> None:
        self._states[run_id] = (seq, state)
        self._states.move_to_end(run_id)
        while len(self._states) > self._size:
            self._states.popitem(last=False)

    def advance(self, run_id: str, expected: int, new_last: int, events: Sequence[BaseEvent]) -> RunState | None:
        """Fold a batch onto the remembered state at ``expected``, if there is one; the new state
        (now remembered at ``new_last``), or ``None``."""
        state = self.at(run_id, expected)
        if state is None:
            return None
        try:
            for e in events:
                apply(state, e)  # type: ignore[arg-type]
        except Exception:  # an event that does not apply: drop the entry, the log is the truth
            self.drop(run_id)
            return None
        self.remember(run_id, new_last, state)
        return state

    def drop(self, run_id: str) -> None:
        """Forget the run's state (a write failed: the cache may be ahead of the log)."""
        self._states.pop(run_id, None)

    def clear(self) -> None:
        """Forget every state."""
        self._states.clear()
