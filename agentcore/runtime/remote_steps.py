"""Plan steps run by other workers: the driver's side (``RemoteSteps``) and the stored outcome.

``RemoteSteps`` is the ``PlanRunner.step_dispatcher`` a worker gives the plan runs it drives: each
ready step attempt goes to the store's step queue (``WorkQueue.submit_step``) for any worker to
claim, and the driver waits for the outcome that worker stores (``finish_step``) before its
scheduler records it in the run's log. Outcomes travel as the JSON of a ``StepResult``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from agentcore.core.events import ArtifactRef
from agentcore.errors import StorageUnavailable
from agentcore.scheduling.scheduler import StepResult, StepRun
from agentcore.storage.base import Lease, StepLease, WorkQueue, step_done_payload

if TYPE_CHECKING:
    from agentcore.runtime.wakeups import Wakeups

log = logging.getLogger("agentcore.worker")

RETRY_S = 1.0
"""Pause before trying again after the store was unavailable."""

STEP_POLL_S = 5.0
"""How often a plan run's driver looks for a step's outcome on its own (a notification usually
wakes it first; this bounds the wait when one was lost)."""


def step_name(lease: StepLease) -> str:
    """``run_id/step_id/attempt``: one step attempt, as workers report it."""
    return step_done_payload(lease.run_id, lease.step_id, lease.attempt)


def result_to_json(result: StepResult) -> dict[str, Any]:
    """A ``StepResult`` as the JSON object ``WorkQueue.finish_step`` stores."""
    body = asdict(result)
    body["result"] = result.result.model_dump(mode="json") if result.result is not None else None
    return body


def result_from_json(body: dict[str, Any]) -> StepResult:
    """The ``StepResult`` a worker stored with ``finish_step``."""
    ref = body.get("result")
    return StepResult(
        ok=bool(body["ok"]), payload=str(body.get("payload") or ""),
        result=ArtifactRef.model_validate(ref) if ref is not None else None, error=body.get("error"),
        kind=str(body.get("kind") or "ok"), worker=body.get("worker"),
    )  # fmt: skip


class RemoteSteps:
    """A ``PlanRunner.step_dispatcher`` that queues each step attempt for any worker and waits for it.

    Only the driver (the holder of ``lease``) records the outcome in the run's log. The driver
    sleeps until the step worker's ``agentcore_step_done`` notification (``wakeups``) and looks on
    its own every ``poll_s`` seconds in case one was lost (without ``wakeups``: it only polls). A
    store outage is waited out; a cancelled attempt (the run's deadline, an ``abort``, a step
    timeout) is withdrawn from the queue.
    """

    def __init__(
        self, store: WorkQueue, lease: Lease, poll_s: float = STEP_POLL_S, wakeups: Wakeups | None = None
    ) -> None:
        self.store = store
        self.lease = lease
        self.poll_s = poll_s
        self.wakeups = wakeups
        self._queueing = asyncio.Lock()
        """Attempts are queued one at a time, in the order they began (the scheduler's priority:
        longest remaining path first): workers claim the oldest queued attempt, so a worker with
        fewer slots than the attempts started together takes them in that order, not in whichever
        order concurrent inserts happened to commit."""

    async def __call__(self, run: StepRun) -> StepResult:
        step, attempt = run.step.id, run.attempt
        name = step_done_payload(run.run_id, step, attempt)
        with self.wakeups.step_done(name) if self.wakeups else contextlib.nullcontext(asyncio.Event()) as done:
            async with self._queueing:
                await self._retrying(self.store.submit_step, self.lease, step, attempt, run.idempotency_key)
            try:
                while True:
                    done.clear()
                    got = await self._retrying(self.store.step_result, run.run_id, step, attempt)
                    if got is not None:
                        return result_from_json(got)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(done.wait(), self.poll_s)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    self.store.cancel_steps(self.lease, step)
                raise

    async def _retrying(self, call: Callable[..., Any], *args: Any) -> Any:
        while True:
            try:
                return await asyncio.to_thread(call, *args)
            except StorageUnavailable as e:
                log.warning("run %s: store unavailable while waiting for a step: %s", self.lease.run_id, e)
                await asyncio.sleep(RETRY_S)
