"""What a worker refuses at start, and what it does when the app itself fails on a run.

- ``check_durations``: the worker's durations must be finite numbers of seconds above 0 (a zero
  heartbeat or poll would spin against the database; an infinite lease does not fit PostgreSQL's
  ``interval``, so every claim would fail).
- ``record_app_failure``: an exception that escapes the app (its factory raises, builds something
  that cannot ``resume``, or the run itself raises) gives the run back to the queue for another
  try; once the run has been claimed ``APP_TRIES`` times, the worker instead ends it in its log with
  ``RunFinished(status="failed")`` naming the error (after a ``RunStarted`` when the run had no
  event yet). ``agentcore wait`` then reports it as failed and ``--exit-when-idle`` workers can
  stop, instead of the run going round the queue forever.
- ``Outage``: how long the store has been unreachable, for a worker that gives up after
  ``give_up_s`` (``--exit-when-idle``); the first failure noticed in any thread wakes its loop,
  and the store is asked once more at the give-up time (``still_away``).
- ``hand_back``: a worker that is stopped (SIGTERM, Ctrl-C) while it drives a run gives the run back
  to the queue at once, so another worker resumes it from the log without waiting for the lease to
  run out (a killed worker's run still waits ``lease_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from agentcore.core.events import BaseEvent, RunFinished, RunStarted
from agentcore.errors import ConfigError, StorageUnavailable
from agentcore.storage.base import Lease

__all__ = ("APP_TRIES", "LateClaim", "Outage", "check_durations", "fail_run_of_app", "hand_back", "record_app_failure")

log = logging.getLogger("agentcore.worker")

APP_TRIES = 3
"""Claims of one run after which an app failure fails the run instead of queueing it again."""

ENDED = ("succeeded", "failed", "cancelled")


MAX_LEASE_S = 7 * 24 * 3600
"""The longest lease a worker takes, in seconds."""


class Outage:
    """Since when the store has been unreachable, as a worker's threads (heartbeat, listener) and its
    loop see it, and when the worker gives up on it.

    ``went_down`` (any thread) records a failed call; the first one of an outage sets ``noticed`` in
    the loop given to ``bind``, so a loop waiting for its next poll looks at the give-up time at
    once. ``came_back`` (a call that worked, or the listener listening again) ends the outage. With
    ``enabled`` false (a worker that does not exit when idle) it never gives up: ``give_up_at`` is
    ``inf``.
    """

    def __init__(self, give_up_s: float, *, enabled: bool) -> None:
        self.give_up_s = give_up_s
        self.enabled = enabled
        self._down: tuple[float, StorageUnavailable] | None = None  # (monotonic start, last error): one write
        self.noticed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop ``noticed`` is set in (the worker's)."""
        self._loop = loop

    @property
    def down(self) -> bool:
        """Whether the last call to the store failed."""
        return self._down is not None

    def went_down(self, e: StorageUnavailable) -> None:
        """Record a failed call (from any thread); the first of an outage wakes the loop."""
        down = self._down  # read once: another thread may end the outage meanwhile
        self._down = (down[0] if down is not None else time.monotonic(), e)
        if down is None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self.noticed.set)

    def came_back(self) -> None:
        """Record a call that worked: the outage, if any, is over."""
        self._down = None

    def give_up_at(self) -> float:
        """When (``time.monotonic``) the worker gives up: ``inf`` while the store answers or if not ``enabled``."""
        down = self._down
        return down[0] + self.give_up_s if self.enabled and down is not None else math.inf

    def too_long(self) -> bool:
        """Whether the give-up time has passed."""
        return time.monotonic() > self.give_up_at()

    async def still_away(self, probe: Callable[[], object], within_s: float) -> bool:
        """Whether the store is still away once ``too_long``: ``probe`` (a read, run in a thread) gets
        ``within_s`` seconds to answer. An answer ends the outage: the server may have come back
        without any call of the worker seeing it (a run inside a tool call, a heartbeat rarer than
        ``give_up_s``). A probe left running past ``within_s`` only reads."""
        try:
            await asyncio.wait_for(asyncio.to_thread(probe), within_s)
        except asyncio.TimeoutError:
            return True
        except StorageUnavailable as e:
            self.went_down(e)
            return True
        self.came_back()
        return False

    def give_up_error(self, in_hand: int) -> StorageUnavailable:
        """The error a worker that gives up raises, with the outage's last error and the work it drops."""
        down = self._down
        last = down[1] if down is not None else None
        return StorageUnavailable(
            f"the store has been unreachable for more than {self.give_up_s:g}s, so this worker (exit when idle) "
            f"gives up; {in_hand} run(s)/step(s) in hand go to other workers once their leases expire. "
            f"Last error: {last}"
        )


class LateClaim:
    """One claim that the worker waits for only until a deadline (the give-up time). ``call`` runs the
    claim in a thread; ``abandon`` (in the loop, at the deadline) tells whether its answer is still to
    come. A run claimed after that is given back at once in the claim's thread (not left leased,
    undriven, until its lease expires); a late step attempt's lease still expires."""

    def __init__(self, store: Any, owner: str) -> None:
        self._store = store
        self._owner = owner
        self._lock = threading.Lock()
        self._state = "waiting"  # then "answered" (the loop gets the answer) or "abandoned"

    def call(self, claim: Any, lease_s: float) -> Any:
        """In a thread: ``claim(owner, lease_s=...)``; ``None`` if abandoned meanwhile (errors pass through)."""
        got = claim(self._owner, lease_s=lease_s)
        with self._lock:
            if self._state == "waiting":
                self._state = "answered"
                return got
        if isinstance(got, Lease):
            hand_back(self._store, got, self._owner, why="claimed after the give-up time")
        return None

    def abandon(self) -> bool:
        """At the deadline: ``True`` if the answer is not in (then ``call`` deals with it), ``False`` if it is."""
        with self._lock:
            if self._state == "answered":
                return False
            self._state = "abandoned"
            return True


def check_durations(*, lease_s: float, heartbeat_s: float | None, poll_s: float, give_up_s: float) -> None:
    """``ConfigError`` unless each duration is a finite number of seconds above 0 (``heartbeat_s`` may be
    ``None``: a third of the lease), the lease is at most ``MAX_LEASE_S`` and a heartbeat comes before
    its lease ends."""
    for name, value in (
        ("lease_s", lease_s),
        ("heartbeat_s", heartbeat_s),
        ("poll_s", poll_s),
        ("give_up_s", give_up_s),
    ):
        if value is not None and not (isinstance(value, (int, float)) and 0 < value < math.inf):
            raise ConfigError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    if lease_s > MAX_LEASE_S:
        raise ConfigError(
            f"lease_s must be at most {MAX_LEASE_S:,} seconds (a week), got {lease_s!r}: a lease is renewed by the "
            "heartbeat, and a longer one only keeps a dead worker's runs waiting (and past PostgreSQL's "
            "timestamps no run can be claimed at all)"
        )
    if heartbeat_s is not None and not heartbeat_s < lease_s:
        raise ConfigError(
            f"heartbeat_s ({heartbeat_s!r}) must be shorter than lease_s ({lease_s!r}): renew before it ends"
        )


async def fail_run_of_app(store: Any, lease: Lease, error: Exception, owner: str) -> bool:
    """``record_app_failure`` under ``lease`` (in a thread); ``False`` if it could not be recorded
    (the store is away, the lease was lost, the run waits for the user): the run goes back to the queue."""
    run_id = lease.run_id
    log.error(
        "worker %s: run %s failed with %r on claim %d; recording it as failed", owner, run_id, error, lease.claims
    )
    try:
        return await asyncio.to_thread(record_app_failure, store.leased(lease), run_id, error, lease.claims)
    except Exception as again:
        log.warning("worker %s: could not record the failure of %s: %r", owner, run_id, again)
        return False


def record_app_failure(store: Any, run_id: str, error: BaseException, claims: int) -> bool:
    """End ``run_id`` as failed because the app raised ``error`` on its ``claims``-th claim.

    Args:
        store: The store seen through the worker's lease (the append is fenced by its token).
        run_id: The leased run.
        error: What escaped the app.
        claims: How many times the run was claimed, this claim included.

    Returns:
        ``True`` when the run has ended (now or before); ``False`` when it waits for the user (the
        failure is not recorded then: an answer may let it go on).

    Raises:
        LeaseLost, StorageUnavailable, ConcurrencyError: as ``store.append``.
    """
    info = store.run(run_id)
    if info.status in ENDED:
        return True
    if info.status == "waiting_for_user":
        return False
    now = datetime.now(timezone.utc)
    last = info.last_seq
    events: list[BaseEvent] = []
    if last == 0:
        events.append(RunStarted(run_id=run_id, seq=1, at=now, task=info.task))
    reason = (
        f"the worker's app raised on claim {claims} of this run (it is claimed at most {APP_TRIES} times "
        f"when the app fails): {type(error).__name__}: {error}"
    )[:2000]
    seq = last + len(events) + 1
    events.append(RunFinished(run_id=run_id, seq=seq, at=now, status="failed", reason=reason, caused_by=seq - 1))
    store.append(run_id, events, expected_seq=last)
    return True


def hand_back(store: Any, lease: Lease, owner: str, *, why: str = "stopping") -> bool:
    """Give the leased run back to the queue now (blocking: called while the worker's loop shuts down,
    or in the thread of a claim that came too late, ``LateClaim``); ``why`` goes into the log lines.

    Returns whether it was given back (``False``: the lease was already lost, or the store is away;
    then the lease runs out as if the worker had been killed)."""
    try:
        given = bool(store.release(lease, done=False))
    except Exception as e:
        log.warning("worker %s: could not give run %s back (%s): %r", owner, lease.run_id, why, e)
        return False
    if given:
        log.warning("worker %s: %s; run %s given back to the queue", owner, why, lease.run_id)
    return given
