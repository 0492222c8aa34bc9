"""Workers: processes that claim queued runs from a shared store and drive them to the end.

A ``Worker`` holds up to ``concurrency`` leases at once (see ``storage.postgres.queue``). For each
claimed run it builds the run's ``Agent`` or ``PlanRunner`` with the app's factory, seeing the
store through the lease (every append is fenced by the lease token), and calls ``resume``: a run
with no event yet is started, one that another worker left is continued from the log (recorded
tool calls are never run again; one that was started but has no result runs again with the same
idempotency key). A heartbeat thread renews every held lease each ``heartbeat_s``; when a renewal
finds the lease lost (the worker was cut off longer than ``lease_s`` and another worker took the
run), the run's task is cancelled and nothing more of it is written.

Idle workers wait on ``LISTEN agentcore_queue`` (with ``poll_s`` as a fallback). A server that goes
away makes store calls raise ``StorageUnavailable``: the worker keeps its lease, waits and resumes
the run from the log again once the server is back; if the lease expired meanwhile another worker
has it and this one drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentcore.core.plans import Plan
from agentcore.errors import ConfigError, LeaseLost, RunNotFound, StorageUnavailable
from agentcore.runtime.plan_runner import PlanRunner

log = logging.getLogger("agentcore.worker")

AppFactory = Callable[[Any, dict[str, Any]], Any]
"""``factory(store, spec) -> Agent | PlanRunner``: builds what drives one queued run."""

RETRY_S = 1.0
"""Pause before trying again after the store was unavailable."""


@dataclass
class WorkerStats:
    """What a worker did: runs it finished, runs it lost to another worker, runs it gave back."""

    finished: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    store_errors: int = 0


class Worker:
    """Claims queued runs and drives them (see the module docstring).

    Args:
        store: A store with a work queue (``PostgresEventStore``).
        factory: Builds the ``Agent``/``PlanRunner`` of a run from the store and the run's spec.
        concurrency: Runs driven at once by this process.
        lease_s: How long a lease lasts without renewal: how soon a dead worker's run moves on.
        heartbeat_s: How often leases are renewed (default ``lease_s / 3``).
        poll_s: Longest idle wait between two looks at the queue (notifications usually come first).
        exit_when_idle: Return once no run is queued or leased and none is in hand (a dead worker's
                lease is waited out and its run taken over first).
        owner: This worker's name in the queue (host:pid:random by default).

    Raises:
        ConfigError: the store has no work queue, or a setting is invalid.
    """

    def __init__(
        self,
        store: Any,
        factory: AppFactory,
        *,
        concurrency: int = 1,
        lease_s: float = 30.0,
        heartbeat_s: float | None = None,
        poll_s: float = 5.0,
        exit_when_idle: bool = False,
        owner: str | None = None,
    ) -> None:
        if not callable(getattr(store, "claim", None)):
            raise ConfigError(f"{store!r} has no work queue: workers need a PostgreSQL store (--db postgresql://...)")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        if not lease_s > 0:
            raise ConfigError(f"lease_s must be > 0 seconds, got {lease_s!r}")
        self.store = store
        self.factory = factory
        self.concurrency = concurrency
        self.lease_s = float(lease_s)
        self.heartbeat_s = float(heartbeat_s) if heartbeat_s is not None else self.lease_s / 3
        self.poll_s = poll_s
        self.exit_when_idle = exit_when_idle
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stats = WorkerStats()
        self._held: dict[str, tuple[Any, asyncio.Task[Any]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def stop(self) -> None:
        """Ask the worker to stop claiming; runs in hand are finished first."""
        self._stop.set()

    def serve_sync(self) -> WorkerStats:
        """``serve`` in an event loop of its own."""
        return asyncio.run(self.serve())

    async def serve(self) -> WorkerStats:
        """Claim and drive runs until ``stop()`` (or, with ``exit_when_idle``, until the queue is empty)."""
        self._loop = asyncio.get_running_loop()
        beat = threading.Thread(target=self._heartbeat, name="agentcore-heartbeat", daemon=True)
        beat.start()
        listener = self.store.listen("agentcore_queue")
        try:
            await self._claim_loop(listener)
        finally:
            self._stop.set()
            listener.close()
        return self.stats

    async def _claim_loop(self, listener: Any) -> None:
        tasks: set[asyncio.Task[Any]] = set()
        while True:
            tasks = {t for t in tasks if not t.done()}
            lease = None
            if not self._stop.is_set() and len(tasks) < self.concurrency:
                lease = await self._claim()
            if lease is not None:
                tasks.add(asyncio.create_task(self._drive(lease)))
                continue
            if not tasks and (self._stop.is_set() or (self.exit_when_idle and not await self._work_remains())):
                return
            waits = (
                [asyncio.ensure_future(asyncio.to_thread(self._wait_for_work, listener))]
                if len(tasks) < self.concurrency and not self._stop.is_set()
                else []
            )
            await asyncio.wait([*tasks, *waits], return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                if not w.done():
                    w.cancel()

    def _wait_for_work(self, listener: Any) -> None:
        try:
            listener.wait(self.poll_s)
        except StorageUnavailable:
            time.sleep(min(self.poll_s, RETRY_S))

    async def _work_remains(self) -> bool:
        """Whether any run is still queued or leased: a run leased by a worker that died is claimable
        once its lease expires, so an idle worker waits for it instead of leaving it stranded."""
        try:
            return bool(await asyncio.to_thread(self.store.unfinished))
        except StorageUnavailable:
            return True

    async def _claim(self) -> Any:
        try:
            return await asyncio.to_thread(self.store.claim, self.owner, lease_s=self.lease_s)
        except StorageUnavailable as e:
            self.stats.store_errors += 1
            log.warning("worker %s: cannot claim: %s", self.owner, e)
            await asyncio.sleep(RETRY_S)
            return None

    async def _drive(self, lease: Any) -> None:
        """Drive one leased run to its end (or until the lease is lost), then release it."""
        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            self._held[lease.run_id] = (lease, task)
        try:
            status = await self._run_until_done(lease)
        except (LeaseLost, asyncio.CancelledError):
            self.stats.lost.append(lease.run_id)
            log.warning("worker %s: lost the lease on %s; dropping it", self.owner, lease.run_id)
            return
        except Exception as e:  # the app failed: give the run back to the queue for another try
            log.exception("worker %s: run %s failed with %r; giving it back", self.owner, lease.run_id, e)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.release, lease, done=False)
            self.stats.released.append(lease.run_id)
            await asyncio.sleep(RETRY_S)
            return
        finally:
            with self._lock:
                self._held.pop(lease.run_id, None)
        if await self._release_done(lease):
            self.stats.finished.append(lease.run_id)
            log.info("worker %s: run %s %s", self.owner, lease.run_id, status)
        else:
            self.stats.lost.append(lease.run_id)

    async def _release_done(self, lease: Any) -> bool:
        while True:
            try:
                return bool(await asyncio.to_thread(self.store.release, lease, done=True))
            except StorageUnavailable:
                self.stats.store_errors += 1
                await asyncio.sleep(RETRY_S)

    async def _run_until_done(self, lease: Any) -> str:
        """``resume`` the run until it ends; a store outage waits and resumes it again from the log."""
        while True:
            try:
                result = await self._run_once(lease)
                return str(result.status)
            except StorageUnavailable as e:
                self.stats.store_errors += 1
                log.warning("worker %s: store unavailable while running %s: %s", self.owner, lease.run_id, e)
                await asyncio.sleep(RETRY_S)
                await self._still_ours(lease)

    async def _still_ours(self, lease: Any) -> None:
        """Wait until the store answers; ``LeaseLost`` if another worker took the run meanwhile.

        Checked before resuming again, so a worker cut off longer than its lease re-runs nothing.
        """
        while True:
            try:
                kept = await asyncio.to_thread(self.store.renew, lease, lease_s=self.lease_s)
            except StorageUnavailable:
                self.stats.store_errors += 1
                await asyncio.sleep(RETRY_S)
                continue
            if not kept:
                raise LeaseLost(f"run {lease.run_id!r} was taken over by another worker while the store was away")
            return

    async def _run_once(self, lease: Any) -> Any:
        store = self.store.leased(lease)
        runner = await asyncio.to_thread(self.factory, store, dict(lease.spec))
        run_id = lease.run_id
        info = await asyncio.to_thread(store.run, run_id)
        plan = lease.spec.get("plan")
        if info.last_seq == 0 and plan is not None and isinstance(runner, PlanRunner):
            return await runner.run(info.task, Plan.model_validate(plan), run_id=run_id)
        try:
            return await runner.resume(run_id)
        finally:
            close = getattr(runner, "aclose", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    await close()

    def _heartbeat(self) -> None:
        """Renew every held lease each ``heartbeat_s``; cancel a run whose lease was lost."""
        cancelled: set[str] = set()
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                held = list(self._held.values())
            for lease, task in held:
                try:
                    kept = self.store.renew(lease, lease_s=self.lease_s)
                except (StorageUnavailable, RunNotFound) as e:
                    log.warning("worker %s: cannot renew the lease on %s: %s", self.owner, lease.run_id, e)
                    continue
                if not kept and self._loop is not None and lease.run_id not in cancelled:
                    cancelled.add(lease.run_id)
                    log.warning("worker %s: lease on %s was taken over; cancelling it", self.owner, lease.run_id)
                    self._loop.call_soon_threadsafe(task.cancel)
