"""Plan steps on the work queue: one plan's ready steps run on several workers at once.

The worker that holds a plan run's lease drives it (its scheduler decides what is ready and writes
every event of the run's log). Instead of running a ready step itself it queues the attempt in
``step_queue``, a view of the attempt rows of the table ``work`` whose run entries are ``queue``
(``submit_step``, fenced by its run lease token, so a driver that lost the run queues nothing). Any worker claims an attempt (``claim_step``: ``FOR UPDATE SKIP LOCKED``, a lease
with its own token, the same heartbeat as runs), runs it with the attempt's idempotency key and
stores the outcome (``finish_step``, refused once its step lease was taken over). The driver reads
the outcome back (``step_result``) and appends ``StepSucceeded``/``StepFailed`` to the log under
its run lease: the log is written by one lease holder at a time, so it stays one sequence.

A worker killed mid-step stops renewing; after ``lease_s`` another worker claims the same attempt
and runs it again with the same idempotency key (the log saw one ``StepStarted`` for it). A driver
killed mid-run loses its run lease; the worker that takes the run over cancels the attempts still
queued (``cancel_steps``) and resumes from the log, which records those attempts as interrupted.
Only attempts of runs whose lease is held (and unexpired) are claimed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import psycopg

from agentcore.core.events import BaseEvent
from agentcore.core.plans import MAX_STEP_ID_CHARS
from agentcore.errors import ConfigError, LeaseLost
from agentcore.storage.base import (
    QUEUE_CHANNEL,
    STEP_DONE_CHANNEL,
    Lease,
    NewRunOptions,
    StepLease,
    new_run,
    step_done_payload,
)
from agentcore.storage.run_ids import short

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from agentcore.storage.postgres.connection import PgConnection


class StepQueueMixin:
    """Step-queue methods of ``PostgresEventStore`` (they share its connection pool)."""

    _db: PgConnection

    def _check_lease_in(self, conn: psycopg.Connection[Any], run_id: str, token: int) -> None:
        raise NotImplementedError  # pragma: no cover - implemented by QueueMixin

    def submit_step(self, lease: Lease, step_id: str, attempt: int, idempotency_key: str) -> None:
        """Queue one attempt of a step of the leased run for any worker (idempotent per attempt).

        Raises:
            ConfigError: ``step_id`` is empty or longer than ``plans.MAX_STEP_ID_CHARS`` (a plan's step
                ids never are): it could not travel in the step's notification.
            LeaseLost: another worker holds the run now; nothing was queued.
        """
        if not step_id or len(step_id) > MAX_STEP_ID_CHARS:
            raise ConfigError(
                f"step id {short(step_id)} has {len(step_id)} characters; a step id has 1 to {MAX_STEP_ID_CHARS} "
                "(plans.Step.id), so it fits a notification with its run id: nothing was queued"
            )
        with self._db.transaction(f"queue step {step_id!r} of run {lease.run_id!r}") as conn:
            self._check_lease_in(conn, lease.run_id, lease.token)
            conn.execute(
                "INSERT INTO step_queue (run_id, step_id, attempt, idempotency_key) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (run_id, step_id, attempt) DO NOTHING",
                (lease.run_id, step_id, attempt, idempotency_key),
            )
            conn.execute("SELECT pg_notify(%s, %s)", (QUEUE_CHANNEL, f"step:{lease.run_id}"))

    def claim_step(self, owner: str, *, lease_s: float = 30.0) -> StepLease | None:
        """Take the oldest queued step attempt (or one whose step lease expired) of a run whose driver
        holds its lease, for ``lease_s`` seconds; ``None`` when there is none (one statement)."""
        with self._db.statement("claim a queued plan step") as conn:
            got = conn.execute(
                "UPDATE step_queue s SET state = 'leased', lease_owner = %s, lease_token = s.lease_token + 1, "
                "lease_expires = now() + make_interval(secs => %s), claims = s.claims + 1 FROM queue q "
                "WHERE (s.run_id, s.step_id, s.attempt) = ("
                "SELECT s2.run_id, s2.step_id, s2.attempt FROM step_queue s2 JOIN queue q2 ON q2.run_id = s2.run_id "
                "WHERE (s2.state = 'queued' OR (s2.state = 'leased' AND s2.lease_expires < now())) "
                "AND q2.state = 'leased' AND q2.lease_expires >= now() "
                "ORDER BY s2.submitted, s2.run_id, s2.step_id LIMIT 1 FOR UPDATE OF s2 SKIP LOCKED) "
                "AND q.run_id = s.run_id "
                "RETURNING s.run_id, s.step_id, s.attempt, s.lease_token, s.idempotency_key, q.spec::text, s.claims",
                (owner, lease_s),
            ).fetchone()
        if got is None:
            return None
        return StepLease(
            run_id=got[0], step_id=got[1], attempt=got[2], idempotency_key=got[4], token=got[3], owner=owner,
            spec=json.loads(got[5]), claims=got[6],
        )  # fmt: skip

    def renew_step(self, lease: StepLease, *, lease_s: float = 30.0) -> bool:
        """Extend a step lease; ``False`` once it was lost (taken over, or the attempt was cancelled)."""
        return self._update_held(
            lease, "lease_expires = now() + make_interval(secs => %s)", (lease_s,),
            f"renew the lease on step {lease.step_id!r}",
        )  # fmt: skip

    def _update_held(
        self, lease: StepLease, assignments: str, values: tuple[Any, ...], action: str,
        notify: tuple[str, str] | None = None,
    ) -> bool:  # fmt: skip
        """``UPDATE step_queue SET assignments`` on the attempt ``lease`` holds, in one statement (its own
        transaction), sending ``notify`` (channel, payload) when it changed the row; ``False`` (nothing
        changed) once the step lease was lost. ``values`` fill the assignments."""
        sql = (
            f"UPDATE step_queue SET {assignments} WHERE run_id = %s AND step_id = %s AND attempt = %s "
            "AND lease_token = %s AND state = 'leased'"
        )
        params = (*values, lease.run_id, lease.step_id, lease.attempt, lease.token)
        with self._db.statement(action) as conn:
            if notify is None:
                return conn.execute(sql, params).rowcount == 1
            held = f"WITH held AS ({sql} RETURNING 1) SELECT pg_notify(%s, %s) FROM held"
            return conn.execute(held, (*params, *notify)).fetchone() is not None

    def finish_step(self, lease: StepLease, result: Mapping[str, Any]) -> bool:
        """Store the attempt's outcome (a JSON object) for the run's driver and wake it
        (``NOTIFY agentcore_step_done``, payload ``run_id/step_id/attempt``), in one statement;
        ``False`` (nothing stored) when the step lease was lost.

        Raises:
            ConfigError: ``result`` is not JSON.
        """
        try:
            text = json.dumps(dict(result), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"a step result must be a JSON object: {e}") from None
        return self._update_held(
            lease, "state = 'done', result = %s, lease_expires = NULL", (text,),
            f"record step {lease.step_id!r} of run {lease.run_id!r}",
            notify=(STEP_DONE_CHANNEL, step_done_payload(lease.run_id, lease.step_id, lease.attempt)),
        )  # fmt: skip

    def _check_step_lease_in(self, conn: psycopg.Connection[Any], lease: StepLease) -> None:
        row = conn.execute(
            "SELECT lease_token, state FROM step_queue WHERE run_id = %s AND step_id = %s AND attempt = %s FOR SHARE",
            (lease.run_id, lease.step_id, lease.attempt),
        ).fetchone()
        if row is None or row[0] != lease.token or row[1] != "leased":
            now = "not queued" if row is None else f"token {row[0]}, {row[1]}"
            raise LeaseLost(
                f"step {lease.step_id!r} (attempt {lease.attempt}) of run {lease.run_id!r}: this worker's step lease "
                f"(token {lease.token}) is no longer valid ({now}): another worker has taken the attempt over, or it "
                "ended or was cancelled; nothing of this batch was written. Drop the step."
            )

    def step_leased(self, lease: StepLease) -> StepLeasedStore:
        """This store seen through a step lease: every run it creates or appends to (the step's
        child run) is fenced by the step token, and the plan run's own log is refused (its driver
        alone writes it)."""
        return StepLeasedStore(self, lease)

    def step_result(self, run_id: str, step_id: str, attempt: int) -> dict[str, Any] | None:
        """The outcome a worker stored for this attempt; ``None`` while it is queued or running.

        Raises:
            LeaseLost: the attempt was cancelled or was never queued.
        """
        row = self._db.one(
            "SELECT state, result::text FROM step_queue WHERE run_id = %s AND step_id = %s AND attempt = %s",
            (run_id, step_id, attempt),
            f"read step {step_id!r} of run {run_id!r}",
        )
        if row is None or row[0] == "cancelled":
            what = "was cancelled" if row else "is not queued"
            raise LeaseLost(f"run {run_id!r}: attempt {attempt} of step {step_id!r} {what}")
        return dict(json.loads(row[1])) if row[0] == "done" else None

    def cancel_steps(self, lease: Lease, step_id: str | None = None) -> int:
        """Cancel the leased run's step attempts not yet done (only ``step_id``'s when given).

        Raises:
            LeaseLost: another worker holds the run now; nothing changed.
        """
        with self._db.transaction(f"cancel the steps of run {lease.run_id!r}") as conn:
            self._check_lease_in(conn, lease.run_id, lease.token)
            cur = conn.execute(
                "UPDATE step_queue SET state = 'cancelled', lease_expires = NULL WHERE run_id = %s "
                "AND state IN ('queued', 'leased') AND (%s::text IS NULL OR step_id = %s)",
                (lease.run_id, step_id, step_id),
            )
            return cur.rowcount

    def step_entries(self, run_id: str) -> list[dict[str, Any]]:
        """The run's step attempts (step id, attempt, key, state, claims, lease owner), in queue order."""
        rows = self._db.query(
            "SELECT step_id, attempt, idempotency_key, state, claims, lease_owner FROM step_queue "
            "WHERE run_id = %s ORDER BY submitted, step_id, attempt",
            (run_id,),
        )
        keys = ("step_id", "attempt", "idempotency_key", "state", "claims", "lease_owner")
        return [dict(zip(keys, r, strict=True)) for r in rows]


class StepLeasedStore:
    """A store whose writes are fenced by a step lease (see ``StepQueueMixin.step_leased``); reads
    and artifacts pass through."""

    def __init__(self, store: Any, lease: StepLease) -> None:
        self._store = store
        self.lease = lease
        self.artifacts = store.artifacts.for_events()  # put for the events this writer appends next
        self._fence = partial(store._check_step_lease_in, lease=lease)

    def _writable(self, run_id: str | None) -> None:
        if run_id == self.lease.run_id:
            raise LeaseLost(
                f"run {run_id!r} is written only by the worker driving it; a worker running one of its steps "
                "stores the step's outcome (finish_step) instead"
            )

    def append(self, run_id: str, events: Sequence[BaseEvent], expected_seq: int) -> int:
        self._writable(run_id)
        return int(self._store._append(run_id, events, expected_seq, self._fence))

    def create_run(self, task: str, **options: Unpack[NewRunOptions]) -> str:
        new = new_run(options)
        self._writable(new.id)
        self._store._insert_run(task, new, fence=self._fence)
        return new.id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def __repr__(self) -> str:
        return f"{self._store!r} (step lease {self.lease.token} on {self.lease.run_id}/{self.lease.step_id})"
