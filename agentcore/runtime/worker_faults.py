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
- ``hand_back``: a worker that is stopped (SIGTERM, Ctrl-C) while it drives a run gives the run back
  to the queue at once, so another worker resumes it from the log without waiting for the lease to
  run out (a killed worker's run still waits ``lease_s``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import datetime, timezone
from typing import Any

from agentcore.core.events import BaseEvent, RunFinished, RunStarted
from agentcore.errors import ConfigError
from agentcore.storage.base import Lease

__all__ = ("APP_TRIES", "check_durations", "fail_run_of_app", "hand_back", "record_app_failure")

log = logging.getLogger("agentcore.worker")

APP_TRIES = 3
"""Claims of one run after which an app failure fails the run instead of queueing it again."""

ENDED = ("succeeded", "failed", "cancelled")


MAX_LEASE_S = 7 * 24 * 3600
"""The longest lease a worker takes, in seconds."""


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


def hand_back(store: Any, lease: Lease, owner: str) -> bool:
    """Give the leased run back to the queue now (blocking: called while the worker's loop shuts down).

    Returns whether it was given back (``False``: the lease was already lost, or the store is away;
    then the lease runs out as if the worker had been killed)."""
    try:
        given = bool(store.release(lease, done=False))
    except Exception as e:
        log.warning("worker %s: could not give run %s back on stopping: %r", owner, lease.run_id, e)
        return False
    if given:
        log.warning("worker %s: stopping; run %s given back to the queue", owner, lease.run_id)
    return given
