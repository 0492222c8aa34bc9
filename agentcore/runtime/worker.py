"""Workers: processes that claim queued runs from a shared store and drive them to the end.

A ``Worker`` holds up to ``concurrency`` leases at once (see ``storage.postgres.queue``). For each
claimed run it builds the run's ``Agent`` or ``PlanRunner`` with the app's factory, seeing the
store through the lease (every append is fenced by the lease token), and calls ``resume``: a run
with no event yet is started, one that another worker left is continued from the log (recorded
tool calls are never run again; one that was started but has no result runs again with the same
idempotency key). A heartbeat thread renews every held lease each ``heartbeat_s``; when a renewal
finds the lease lost (the worker was cut off longer than ``lease_s`` and another worker took the
run), the run's task is cancelled and nothing more of it is written.

Plan runs are spread over workers step by step: the worker holding a plan run's lease drives it
(its scheduler decides what is ready and writes the whole log, fenced by its token) and queues each
ready step attempt (``WorkQueue.submit_step``); every worker claims step attempts as well as runs
(up to ``concurrency`` of each), runs them with the attempt's idempotency key on the store seen
through the step lease (a description-only step's child run is fenced by it) and stores the
outcome, which the driver records as ``StepSucceeded``/``StepFailed`` naming the worker. A worker
killed mid-step loses its step lease and another runs the same attempt again, with the same key.

Workers wait on ``LISTEN`` (``runtime.wakeups``), with a look every ``poll_s`` as well. A server
that goes away makes store calls raise ``StorageUnavailable``: the worker keeps its lease, waits
and resumes the run from the log once the server is back (unless another worker took it meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from agentcore import event_loop
from agentcore.core.plans import Plan
from agentcore.errors import ConfigError, LeaseLost, RunNotFound, StorageUnavailable
from agentcore.runtime.plan_runner import PlanRunner
from agentcore.runtime.remote_steps import RETRY_S, RemoteSteps, result_to_json, step_name
from agentcore.runtime.wakeups import Wakeups
from agentcore.runtime.worker_faults import APP_TRIES, LateClaim, Outage, check_durations, fail_run_of_app, hand_back
from agentcore.scheduling.outcomes import failed_result
from agentcore.scheduling.scheduler import StepResult, StepRun
from agentcore.storage.base import Lease, StepLease, WorkQueue

log = logging.getLogger("agentcore.worker")

AppFactory = Callable[[Any, dict[str, Any]], Any]
"""``factory(store, spec) -> Agent | PlanRunner``: builds what drives one queued run."""


@dataclass
class WorkerStats:
    """What a worker did: runs it finished, runs it lost to another worker, runs it gave back."""

    finished: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    store_errors: int = 0
    failed: list[str] = field(default_factory=list)
    """Runs the app kept failing on, recorded as failed (``worker_faults.APP_TRIES``)."""
    steps: list[str] = field(default_factory=list)
    """Plan step attempts this worker ran and recorded (``run_id/step_id/attempt``)."""


class Worker:
    """Claims queued runs and drives them (see the module docstring).

    Args:
        store: A store with a work queue (``WorkQueue``: ``PostgresEventStore``).
        factory: Builds the ``Agent``/``PlanRunner`` of a run from the store and the run's spec.
        concurrency: Runs driven at once by this process, and plan step attempts run at once.
        lease_s: How long a lease lasts without renewal: how soon a dead worker's run moves on.
        heartbeat_s: How often leases are renewed (default ``lease_s / 3``).
        poll_s: Seconds between two looks at the queue, and at an awaited step outcome, when no
                notification came (notifications wake the worker first; this bounds a lost one).
        exit_when_idle: Return once no run is queued or leased and none is in hand (a dead worker's
                lease is waited out and its run taken over first).
        give_up_s: With ``exit_when_idle``: once the store has been unreachable this many seconds in
                a row (and still does not answer then, within ``RETRY_S``), ``serve`` stops the runs
                in hand (their leases expire and other workers take them over) and raises
                ``StorageUnavailable``. Without it a worker waits for the server however long it takes.
        owner: This worker's name in the queue (host:pid:random by default).

    Raises:
        ConfigError: the store has no work queue, or a setting is invalid.
    """

    def __init__(
        self,
        store: WorkQueue,
        factory: AppFactory,
        *,
        concurrency: int = 1,
        lease_s: float = 30.0,
        heartbeat_s: float | None = None,
        poll_s: float = 5.0,
        exit_when_idle: bool = False,
        give_up_s: float = 60.0,
        owner: str | None = None,
    ) -> None:
        if not isinstance(store, WorkQueue):
            raise ConfigError(f"{store!r} has no work queue: workers need a PostgreSQL store (--db postgresql://...)")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        check_durations(lease_s=lease_s, heartbeat_s=heartbeat_s, poll_s=poll_s, give_up_s=give_up_s)
        self.store = store
        self.factory = factory
        self.concurrency = concurrency
        self.lease_s = float(lease_s)
        self.heartbeat_s = float(heartbeat_s) if heartbeat_s is not None else self.lease_s / 3
        self.poll_s = poll_s
        self.exit_when_idle = exit_when_idle
        self.give_up_s = float(give_up_s)
        self._outage = Outage(self.give_up_s, enabled=exit_when_idle)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stats = WorkerStats()
        self._held: dict[str, tuple[Lease, asyncio.Task[Any]]] = {}
        self._held_steps: dict[str, tuple[StepLease, asyncio.Task[Any]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeups: Wakeups | None = None

    def stop(self) -> None:
        """Ask the worker to stop claiming; runs in hand are finished first."""
        self._stop.set()

    def serve_sync(self) -> WorkerStats:
        """``serve`` in an event loop of its own (``agentcore.event_loop``: sub-millisecond timers)."""
        return event_loop.run(self.serve())

    async def serve(self) -> WorkerStats:
        """Claim and drive runs until ``stop()`` (or, with ``exit_when_idle``, until the queue is empty)."""
        self._loop = asyncio.get_running_loop()
        self._outage.bind(self._loop)
        beat = threading.Thread(target=self._heartbeat, name="agentcore-heartbeat", daemon=True)
        beat.start()
        self._wakeups = Wakeups(
            self.store,
            on_down=self._outage.went_down,
            on_up=self._outage.came_back,
            retry_s=min(self.poll_s, RETRY_S),
            ended_runs=self.exit_when_idle,
        )
        self._wakeups.start()
        try:
            await self._claim_loop(self._wakeups)
        finally:
            self._stop.set()
            await asyncio.to_thread(self._wakeups.close)
        return self.stats

    async def _claim_loop(self, wake: Wakeups) -> None:
        """Claim step attempts and runs while there is room and something may be claimable.

        A kind of work is looked for when a notification of it arrived, when the last claim of it
        succeeded (there may be more), and every ``poll_s`` (leases that expired notify nobody)."""
        runs: set[asyncio.Task[Any]] = set()
        steps: set[asyncio.Task[Any]] = set()
        look = {"run": True, "step": True}
        counted = {kind: wake.seen(kind) for kind in look}
        next_poll = time.monotonic() + self.poll_s
        while True:
            runs = {t for t in runs if not t.done()}
            steps = {t for t in steps if not t.done()}
            # checked first: claims and runs blocked on the store must not delay it; one last look, as
            # the server may be back with no call of ours having seen it (the outage is then over)
            if self._outage.too_long() and await self._outage.still_away(self.store.unfinished, RETRY_S):
                await self._abandon(runs | steps)
            stopping = self._stop.is_set()
            wake.changed.clear()
            self._outage.noticed.clear()
            if time.monotonic() >= next_poll:
                look = {"run": True, "step": True}
                next_poll = time.monotonic() + self.poll_s
            for kind in look:
                if wake.seen(kind) != counted[kind]:
                    look[kind], counted[kind] = True, wake.seen(kind)
            claimed = False
            for kind, held, claim, start in (
                ("step", steps, self.store.claim_step, self._run_step),
                ("run", runs, self.store.claim, self._drive),
            ):
                if stopping or not look[kind] or len(held) >= self.concurrency:
                    continue
                got = await self._claim(claim)
                if got is not None:
                    held.add(asyncio.create_task(start(got)))
                    claimed = True
                elif not self._outage.down:  # nothing there; a store outage keeps looking
                    look[kind] = False
            if claimed:
                continue
            busy = runs | steps
            if not busy and (stopping or (self.exit_when_idle and not await self._work_remains())):
                return
            room = len(runs) < self.concurrency or len(steps) < self.concurrency
            waits = [asyncio.ensure_future(wake.changed.wait())] if room and not stopping else []
            if self.exit_when_idle and not self._outage.down:
                waits.append(asyncio.ensure_future(self._outage.noticed.wait()))
            timeout = max(0.0, min(next_poll, self._outage.give_up_at()) - time.monotonic())
            await asyncio.wait([*busy, *waits], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()

    async def _abandon(self, busy: set[asyncio.Task[Any]]) -> None:
        """Stop the work in hand and raise: the store stayed away longer than ``give_up_s``."""
        for t in busy:
            t.cancel()
        if busy:
            await asyncio.wait(busy)
        raise self._outage.give_up_error(len(busy))

    async def _work_remains(self) -> bool:
        """Whether any run is still queued or leased: a run leased by a worker that died is claimable
        once its lease expires, so an idle worker waits for it instead of leaving it stranded."""
        try:
            remains = bool(await asyncio.to_thread(self.store.unfinished))
        except StorageUnavailable as e:
            self._outage.went_down(e)
            return True
        self._outage.came_back()
        return remains

    async def _claim(self, claim: Callable[..., Any]) -> Any:
        """What ``claim`` got (``None``: nothing, or the store is away). While the store is away, a
        claim is waited for only until the give-up time: a run it claims after that (the server came
        back meanwhile) is given back to the queue at once (``worker_faults.LateClaim``)."""
        left = self._outage.give_up_at() - time.monotonic()
        if left <= 0:
            return None  # the give-up time has come: nothing more is claimed
        try:
            if left == math.inf:  # the store answers (or the worker never gives up): as before, no deadline
                got = await asyncio.to_thread(claim, self.owner, lease_s=self.lease_s)
            else:
                late = LateClaim(self.store, self.owner)
                call = asyncio.ensure_future(asyncio.to_thread(late.call, claim, self.lease_s))
                done, _ = await asyncio.wait({call}, timeout=left)
                if not done and late.abandon():
                    call.add_done_callback(lambda t: t.cancelled() or t.exception())  # its error is no one's
                    return None
                got = await call
        except StorageUnavailable as e:
            self.stats.store_errors += 1
            self._outage.went_down(e)
            log.warning("worker %s: cannot claim: %s", self.owner, e)
            await asyncio.sleep(RETRY_S)
            return None
        self._outage.came_back()
        return got

    async def _drive(self, lease: Any) -> None:
        """Drive one leased run to its end (or until the lease is lost), then release it."""
        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            self._held[lease.run_id] = (lease, task)
        try:
            status = await self._run_until_done(lease)
        except (LeaseLost, asyncio.CancelledError) as e:
            if isinstance(e, asyncio.CancelledError) and self._stop.is_set() and hand_back(self.store, lease, self.owner):
                self.stats.released.append(lease.run_id)  # stopping (SIGTERM, Ctrl-C): no lease left to wait out
                return
            self.stats.lost.append(lease.run_id)
            log.warning("worker %s: lost the lease on %s; dropping it", self.owner, lease.run_id)
            return
        except Exception as e:  # the app failed: another try, or (after APP_TRIES claims) a failed run
            if lease.claims >= APP_TRIES and await fail_run_of_app(self.store, lease, e, self.owner):
                if await self._release_done(lease):
                    self.stats.failed.append(lease.run_id)
                return
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
                self._outage.went_down(e)
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

    async def _run_once(self, lease: Lease) -> Any:
        store = self.store.leased(lease)
        runner = await asyncio.to_thread(self.factory, store, dict(lease.spec))
        run_id = lease.run_id
        if isinstance(runner, PlanRunner):
            # attempts an earlier driver queued are recorded as interrupted by the resume: stop them
            await asyncio.to_thread(self.store.cancel_steps, lease)
            runner.step_dispatcher = RemoteSteps(self.store, lease, poll_s=self.poll_s, wakeups=self._wakeups)
        plan = lease.spec.get("plan")
        try:
            if plan is not None and isinstance(runner, PlanRunner):  # a plan run not started yet starts with it
                info = await asyncio.to_thread(store.run, run_id)
                if info.last_seq == 0:
                    return await runner.run(info.task, Plan.model_validate(plan), run_id=run_id)
            return await runner.resume(run_id)
        finally:
            close = getattr(runner, "aclose", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    await close()

    # -- plan steps run for another worker's plan run -------------------------------------------

    async def _run_step(self, lease: StepLease) -> None:
        """Run one claimed step attempt and store its outcome for the run's driver."""
        name = step_name(lease)
        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            self._held_steps[name] = (lease, task)
        try:
            result = await self._execute_step(lease)
            body = result_to_json(replace(result, worker=self.owner))
            while True:
                try:
                    stored = await asyncio.to_thread(self.store.finish_step, lease, body)
                    break
                except StorageUnavailable:
                    self.stats.store_errors += 1
                    await asyncio.sleep(RETRY_S)
            if stored:
                self.stats.steps.append(name)
            else:
                log.warning("worker %s: step %s was taken over; its outcome is dropped", self.owner, name)
        except (asyncio.CancelledError, LeaseLost):
            log.warning("worker %s: lost the lease on step %s; dropping it", self.owner, name)
        finally:
            with self._lock:
                self._held_steps.pop(name, None)

    async def _execute_step(self, lease: StepLease) -> StepResult:
        try:
            runner = await asyncio.to_thread(self.factory, self.store.step_leased(lease), dict(lease.spec))
            if not isinstance(runner, PlanRunner):
                raise ConfigError(f"the app builds {type(runner).__name__} for run {lease.run_id!r}, not a PlanRunner")
            state = await asyncio.to_thread(runner.store.state_at, lease.run_id)
            step = state.plan.get(lease.step_id)
            if step is None:
                raise ConfigError(f"step {lease.step_id!r} is no longer in the plan of run {lease.run_id!r}")
            run = StepRun(
                run_id=lease.run_id, step=step, attempt=lease.attempt, idempotency_key=lease.idempotency_key,
                state=state,
            )  # fmt: skip
            return await runner.execute_step(run)
        except (StorageUnavailable, LeaseLost, asyncio.CancelledError):
            raise
        except Exception as e:
            return failed_result(e)

    def _heartbeat(self) -> None:
        """Renew every held lease each ``heartbeat_s``; cancel a run or step whose lease was lost."""
        cancelled: set[str] = set()
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                held: list[tuple[str, Any, asyncio.Task[Any]]] = [
                    *((lease.run_id, lease, task) for lease, task in self._held.values()),
                    *((name, lease, task) for name, (lease, task) in self._held_steps.items()),
                ]
            for name, lease, task in held:
                if self._stop.is_set():  # stopped mid-round: the store may be closed by now
                    return
                renew = self.store.renew_step if isinstance(lease, StepLease) else self.store.renew
                try:
                    kept = renew(lease, lease_s=self.lease_s)
                except (StorageUnavailable, RunNotFound) as e:
                    if isinstance(e, StorageUnavailable):
                        self._outage.went_down(e)
                    log.warning("worker %s: cannot renew the lease on %s: %s", self.owner, name, e)
                    continue
                self._outage.came_back()
                if not kept and self._loop is not None and name not in cancelled:
                    cancelled.add(name)
                    log.warning("worker %s: lease on %s was taken over; cancelling it", self.owner, name)
                    self._loop.call_soon_threadsafe(task.cancel)
