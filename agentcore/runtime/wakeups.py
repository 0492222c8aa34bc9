"""A worker's wake-ups: queue notifications read by one thread and handed to its event loop.

One dedicated connection ``LISTEN``s on ``agentcore_queue`` (a run was queued or given back: the
payload is its id; a plan step attempt was queued: ``step:RUN_ID``), ``agentcore_step_done`` (a
step attempt's outcome was stored: ``run_id/step_id/attempt``) and, for a worker that exits when
idle, ``agentcore_done`` (a run ended: maybe nothing is left). One daemon thread waits on it and
passes what arrives to the worker's loop:

- ``seen(kind)`` counts the notifications of each kind (``"run"``, ``"step"``) and ``changed`` is set
  on each, so the claim loop tries only the claim that can succeed, and never misses a notification
  that arrives while a claim is under way (it compares the counts before and after); a run that
  ended sets ``changed`` too;
- ``step_done(name)`` is an ``asyncio.Event`` set when that attempt's outcome is stored, which a
  plan run's driver (``RemoteSteps``) awaits instead of polling.

Notifications can be lost (the listening connection broke and was reopened): every waiter also
looks on its own every ``poll_s`` seconds, so a lost notification delays, never stalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from agentcore.errors import StorageUnavailable
from agentcore.storage.base import DONE_CHANNEL, QUEUE_CHANNEL, STEP_DONE_CHANNEL, WorkQueue

log = logging.getLogger("agentcore.worker")

LISTEN_SLICE_S = 0.5
"""Longest single wait of the listening thread, so it notices a stop this soon."""


class Wakeups:
    """Notifications for one worker (see the module docstring); ``start()`` it inside the loop.

    Args:
        store: The work queue whose notifications are read.
        on_down: Called (in the thread) with the error when the listening connection fails; the
            thread waits ``retry_s`` and listens again.
        on_up: Called (in the thread) when it listens again after a failure: the server answers.
        ended_runs: Also wake on ``agentcore_done`` (for a worker that exits once nothing is left).
    """

    def __init__(
        self,
        store: WorkQueue,
        *,
        on_down: Callable[[StorageUnavailable], None] = lambda e: None,
        on_up: Callable[[], None] = lambda: None,
        retry_s: float = 1.0,
        ended_runs: bool = False,
    ) -> None:
        self._listener = store.listen(QUEUE_CHANNEL, STEP_DONE_CHANNEL, *((DONE_CHANNEL,) if ended_runs else ()))
        self._on_down = on_down
        self._on_up = on_up
        self._retry_s = retry_s
        self._counts = {"run": 0, "step": 0}
        self._steps: dict[str, asyncio.Event] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.changed = asyncio.Event()
        """Set on every queue notification; the claim loop clears it before it looks."""

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._listen, name="agentcore-listen", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (within ``LISTEN_SLICE_S``) and close the listening connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * LISTEN_SLICE_S + self._retry_s)
        self._listener.close()

    def seen(self, kind: str) -> int:
        """How many notifications of ``kind`` (``"run"`` or ``"step"``) arrived so far."""
        return self._counts[kind]

    @contextlib.contextmanager
    def step_done(self, name: str) -> Iterator[asyncio.Event]:
        """An event set when attempt ``name`` (``run_id/step_id/attempt``) has its outcome stored.

        Register before queueing the attempt, so an outcome stored at once is not missed."""
        event = self._steps.setdefault(name, asyncio.Event())
        try:
            yield event
        finally:
            self._steps.pop(name, None)

    def _listen(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                got = self._listener.notifications(LISTEN_SLICE_S)
            except StorageUnavailable as e:
                failing = True
                self._on_down(e)
                self._stop.wait(self._retry_s)
                continue
            if failing:  # listening again on a new connection: the server is back
                failing = False
                self._on_up()
            if got and self._loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    self._loop.call_soon_threadsafe(self._deliver, got)

    def _deliver(self, notes: list[tuple[str, str]]) -> None:
        """In the loop: count queue notifications by kind, wake the drivers waiting for step outcomes."""
        for channel, payload in notes:
            if channel == QUEUE_CHANNEL:
                self._counts["step" if payload.startswith("step:") else "run"] += 1
                self.changed.set()
            elif channel == STEP_DONE_CHANNEL:
                event = self._steps.get(payload)
                if event is not None:
                    event.set()
            elif channel == DONE_CHANNEL:
                self.changed.set()
