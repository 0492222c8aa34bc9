"""The work queue of a PostgreSQL store: queued runs, leases, fencing tokens and wake-ups.

A queued run has a row in ``queue`` (a view of the run entries of the table ``work``, which also
holds the plan step attempts: ``storage.postgres.steps``): ``state`` is ``queued`` (nobody holds
it), ``leased`` (a worker holds it until ``lease_expires``) or ``done`` (it finished or waits for
the user). Claiming takes
the oldest row that is queued or whose lease expired with ``FOR UPDATE SKIP LOCKED`` (so workers
never wait on each other) and bumps its ``lease_token``: a number that only grows, handed to the
claimer. Every append a worker makes under its lease checks the token in the same transaction
(``FOR SHARE`` on the queue row, so a claim cannot slip in between): once another worker has taken
the run over, the old holder's writes are refused with ``LeaseLost`` and nothing of them is
written. A worker renews its lease with a heartbeat; a worker that dies stops renewing and after
``lease_s`` another worker claims the run and resumes it from the log.

``submit`` and a release back to the queue send ``NOTIFY agentcore_queue``, a finished run
``agentcore_done``; idle workers ``LISTEN`` (with a poll as a fallback), and ``agentcore wait``
listens on ``agentcore_done``. Behind a pooler in transaction mode (``prepared_statements=False``)
no notification can arrive (PgBouncer gives it to whichever client the server session serves at
the moment, or drops it), so ``listen`` gives a ``PollingListener`` that only waits: every waiter
already looks on its own (a worker every ``poll_s``, ``agentcore wait`` every second). Claiming, renewing and releasing are one statement each (their
own transaction): one round trip, not ``BEGIN``/statements/``COMMIT``.

A run that waits in the queue (``state`` ``queued``: submitted, or released back, and nobody holds
it) shows the status ``queued`` in ``runs``/``run`` (``QUEUED_RUN_ROWS``), not its row's
``running``; a claimed one shows ``running``.
"""

from __future__ import annotations

import json
import select
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import psycopg

from agentcore.core.events import BaseEvent
from agentcore.errors import ConfigError, LeaseLost, StorageUnavailable
from agentcore.storage.base import (
    DONE_CHANNEL,
    QUEUE_CHANNEL,
    RUN_OPTIONS,
    Lease,
    NewRun,
    NewRunOptions,
    RunOptions,
    new_run,
)
from agentcore.storage.run_ids import check_json_text
from agentcore.storage.sql_store import APPEND_ROW

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from agentcore.storage.postgres.connection import PgConnection
    from agentcore.storage.sql_store import Fence


def _check_plan(plan: object) -> None:
    """Refuse a queued run's plan that no worker could start, before anything is written."""
    from pydantic import ValidationError

    from agentcore.core.plans import Plan

    try:
        Plan.model_validate(plan)
    except ValidationError as e:
        detail = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'plan'}: {x['msg']}" for x in e.errors()[:3])
        raise ConfigError(f"spec['plan'] is not a plan ({detail}); nothing was queued") from None

QUEUED_RUN_ROWS = (
    "SELECT r.id, r.task, CASE WHEN r.status = 'running' AND EXISTS (SELECT 1 FROM queue q WHERE q.run_id = r.id "
    "AND q.state = 'queued') THEN 'queued' ELSE r.status END AS status, r.created, r.last_seq, r.parent_run_id, "
    "r.forked_at_seq FROM runs r"
)
"""The run rows (``sql_rows.RUN_COLUMNS``) with ``queued`` for a running run that waits unclaimed in the queue."""


class QueueMixin:
    """Queue methods of ``PostgresEventStore`` (they share its connection pool)."""

    _db: PgConnection
    where: str

    def _insert_run(self, task: str, new: NewRun, spec: str | None = None, fence: Fence | None = None) -> None:
        raise NotImplementedError  # pragma: no cover - implemented by the store

    def _append(self, run_id: str, events: Sequence[BaseEvent], expected_seq: int, fence: Fence | None = None) -> int:
        raise NotImplementedError  # pragma: no cover - implemented by the store

    # -- submitting ------------------------------------------------------------------------------

    def submit(self, task: str, *, spec: Mapping[str, Any] | None = None, **options: Unpack[RunOptions]) -> str:
        """Create a run and queue it for a worker, in one transaction; returns the run id.

        ``spec`` (a JSON object) tells the worker's factory what to build (for the built-in
        code-search agent: ``{"kind": "ask", "repo": PATH, ...}``). ``options`` (``RunOptions``):
        ``run_id``, and ``events`` that may start the run (its ``RunStarted``); without them the
        worker starts it.

        Raises:
            ConfigError: an empty task, a spec that is not a JSON object or holds a string with NUL
                or a lone surrogate (``run_ids.check_json_text``), or a ``spec["plan"]`` that is not a
                plan (the worker would start a ``PlanRunner`` run with it).
            PlanError: ``spec["plan"]`` has duplicate step ids, an unknown dependency or a cycle.
            ConcurrencyError: a run with ``run_id`` exists.
        """
        if not isinstance(task, str) or not task.strip():
            raise ConfigError(f"task must be a non-empty string, got {task!r}")
        try:
            text = json.dumps(dict(spec or {}), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"spec must be a JSON object: {e}") from None
        check_json_text(dict(spec or {}), "spec")
        if spec and spec.get("plan") is not None:
            _check_plan(spec["plan"])
        new = new_run(cast("NewRunOptions", options), caller="submit", allowed=RUN_OPTIONS)  # only RunOptions' keys
        self._insert_run(task, new, spec=text)
        return new.id

    def _enqueue_in(self, conn: psycopg.Connection[Any], run_id: str, spec: str) -> None:
        conn.execute("INSERT INTO queue (run_id, spec) VALUES (%s, %s)", (run_id, spec))
        conn.execute("SELECT pg_notify(%s, %s)", (QUEUE_CHANNEL, run_id))

    # -- leases ----------------------------------------------------------------------------------

    def claim(self, owner: str, *, lease_s: float = 30.0) -> Lease | None:
        """Take the oldest queued run (or one whose lease expired) for ``lease_s`` seconds, or ``None``.

        One statement (its own transaction): the row is picked with ``FOR UPDATE SKIP LOCKED`` and
        leased in the same ``UPDATE``."""
        with self._db.statement("claim a queued run") as conn:
            got = conn.execute(
                "UPDATE queue SET state = 'leased', lease_owner = %s, lease_token = lease_token + 1, "
                "lease_expires = now() + make_interval(secs => %s), claims = claims + 1 WHERE run_id = ("
                "SELECT run_id FROM queue WHERE state = 'queued' OR (state = 'leased' AND lease_expires < now()) "
                "ORDER BY submitted, run_id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "RETURNING run_id, lease_token, spec::text, claims",
                (owner, lease_s),
            ).fetchone()
        if got is None:
            return None
        return Lease(run_id=got[0], token=got[1], owner=owner, spec=json.loads(got[2]), claims=got[3])

    def renew(self, lease: Lease, *, lease_s: float = 30.0) -> bool:
        """Extend a lease by ``lease_s`` from now; ``False`` if it was lost (another worker took the run).

        The renewal commits without waiting for the WAL flush (``synchronous_commit`` off for its
        own transaction): a renewal lost to a server crash only makes the lease end sooner, and a
        run taken over then is still fenced by the token (the claim's commit waits, as appends do)."""
        with self._db.statement(f"renew the lease on run {lease.run_id!r}") as conn:
            cur = conn.execute(
                "WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true)) "
                "UPDATE queue SET lease_expires = now() + make_interval(secs => %s) FROM lazy "
                "WHERE run_id = %s AND lease_token = %s AND state = 'leased'",
                (lease_s, lease.run_id, lease.token),
            )
            return cur.rowcount == 1

    def release(self, lease: Lease, *, done: bool) -> bool:
        """End a lease: ``done`` (the run finished or waits for the user) or back to the queue.

        The run's unfinished step attempts are cancelled and the waiters told (``agentcore_done``,
        or ``agentcore_queue`` when it goes back), in the same statement. Returns ``False`` when the
        lease had already been lost (nothing changed then).
        """
        state = "done" if done else "queued"
        with self._db.statement(f"release run {lease.run_id!r}") as conn:
            row = conn.execute(
                "WITH ended AS (UPDATE queue SET state = %s, lease_owner = NULL, lease_expires = NULL, "
                "finished = CASE WHEN %s THEN now() END WHERE run_id = %s AND lease_token = %s AND state = 'leased' "
                "RETURNING run_id), "
                "steps AS (UPDATE step_queue SET state = 'cancelled', lease_expires = NULL "
                "WHERE run_id IN (SELECT run_id FROM ended) AND state IN ('queued', 'leased')) "
                "SELECT pg_notify(%s, run_id) FROM ended",
                (state, done, lease.run_id, lease.token, DONE_CHANNEL if done else QUEUE_CHANNEL),
            ).fetchone()
            return row is not None

    def _fence_and_lock_in(self, conn: psycopg.Connection[Any], run_id: str, token: int) -> tuple[Any, ...] | None:
        """A leased append's fence (``_check_lease_in``) and the run row's lock in ONE statement: the
        queue entry ``FOR SHARE`` (so no claim slips in), then the run's row ``FOR UPDATE`` (rows are
        locked in ``FROM`` order: the order of the two statements this replaces); returns the run's
        ``APPEND_ROW``. ``LeaseLost`` as ``_check_lease_in`` (which words it) once the lease is gone."""
        row = conn.execute(
            f"SELECT {', '.join('r.' + c for c in APPEND_ROW.split(', '))}, w.lease_token, w.state "
            "FROM work w JOIN runs r ON r.id = w.run_id "
            "WHERE w.run_id = %s AND w.step_id = '' AND w.attempt = 0 FOR SHARE OF w FOR UPDATE OF r",
            (run_id,),
        ).fetchone()
        if row is None or row[-2] != token or row[-1] != "leased":
            self._check_lease_in(conn, run_id, token)  # raises LeaseLost, saying why
            return None  # pragma: no cover - the entry changed between the two reads of one transaction
        return tuple(row[:-2])

    def _check_lease_in(self, conn: psycopg.Connection[Any], run_id: str, token: int) -> None:
        row = conn.execute("SELECT lease_token, state FROM queue WHERE run_id = %s FOR SHARE", (run_id,)).fetchone()
        if row is None or row[0] != token or row[1] != "leased":
            now = "no queue entry" if row is None else f"token {row[0]}, {row[1]}"
            raise LeaseLost(
                f"run {run_id!r}: this worker's lease (token {token}) is no longer valid ({now}): another "
                "worker has taken the run over; nothing of this batch was written. Drop the run."
            )

    def leased(self, lease: Lease) -> LeasedStore:
        """This store seen through ``lease``: its appends to the leased run are fenced by the token."""
        return LeasedStore(self, lease)

    def unfinished(self) -> int:
        """How many runs and plan-step attempts are queued or leased (a lease of a dead worker counts
        until it is taken over)."""
        row = self._db.one(
            "SELECT (SELECT count(*) FROM queue WHERE state IN ('queued', 'leased')) + "
            "(SELECT count(*) FROM step_queue WHERE state IN ('queued', 'leased'))",
            (),
            "count unfinished runs",
        )
        return int(row[0]) if row else 0

    # -- watching --------------------------------------------------------------------------------

    def queue_entries(self, run_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Queue rows (run id, state, claims, lease owner/token, whether the lease expired, run status), oldest first."""
        ids = None if run_ids is None else list(run_ids)
        rows = self._db.query(
            "SELECT q.run_id, q.state, q.claims, q.lease_owner, q.lease_token, q.lease_expires < now(), r.status "
            "FROM queue q "
            "JOIN runs r ON r.id = q.run_id WHERE %s::text[] IS NULL OR q.run_id = ANY(%s::text[]) "
            "ORDER BY q.submitted, q.run_id",
            (ids, ids),
        )
        keys = ("run_id", "state", "claims", "lease_owner", "lease_token", "lease_expired", "status")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def listen(self, *channels: str) -> Listener | PollingListener:
        """A connection listening on ``channels`` (``QUEUE_CHANNEL``, ``DONE_CHANNEL``); behind a pooler
        in transaction mode (``prepared_statements`` off) a ``PollingListener``, which hears nothing."""
        if not self._db.prepared_statements:
            return PollingListener()
        return Listener(self._db, channels)


class PollingListener:
    """What ``listen`` gives behind a pooler in transaction mode: no connection, no notification.
    ``wait(timeout)`` sleeps ``timeout`` seconds and returns nothing, so a waiter wakes by its own
    poll only (a worker's ``poll_s``, ``agentcore wait``'s second)."""

    def wait(self, timeout: float) -> list[str]:
        """Nothing, after ``timeout`` seconds."""
        time.sleep(max(0.0, timeout))
        return []

    def notifications(self, timeout: float) -> list[tuple[str, str]]:
        """Nothing, after ``timeout`` seconds."""
        time.sleep(max(0.0, timeout))
        return []

    def close(self) -> None:
        """Nothing to close."""


class Listener:
    """A dedicated connection that ``LISTEN``s; ``wait(timeout)`` returns when a notification arrives."""

    def __init__(self, db: PgConnection, channels: Sequence[str]) -> None:
        self._db = db
        self._channels = tuple(channels)
        self._conn: psycopg.Connection[Any] | None = None

    def _open(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = self._db.connect(autocommit=True)
            if self._channels:  # our constants; one round trip for all
                conn.execute("; ".join(f"LISTEN {ch}" for ch in self._channels))
            self._conn = conn
        return self._conn

    def wait(self, timeout: float) -> list[str]:
        """Payloads of the notifications that arrived within ``timeout`` s (maybe none)."""
        return [payload for _, payload in self.notifications(timeout)]

    def notifications(self, timeout: float) -> list[tuple[str, str]]:
        """``(channel, payload)`` of the notifications that arrived within ``timeout`` s (maybe none)."""
        try:
            conn = self._open()
            got = [(n.channel, n.payload) for n in conn.notifies(timeout=0, stop_after=1000)]
            if got:
                return got
            ready, _, _ = select.select([conn.fileno()], [], [], timeout)
            return [(n.channel, n.payload) for n in conn.notifies(timeout=0, stop_after=1000)] if ready else []
        except psycopg.Error as e:
            self.close()
            raise self._db.lost(e, "listen for queue notifications") from None
        except StorageUnavailable:
            time.sleep(min(timeout, 1.0))
            raise

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None


class LeasedStore:
    """A store whose appends to one run are fenced by a lease token (everything else passes through)."""

    def __init__(self, store: Any, lease: Lease) -> None:
        self._store = store
        self.lease = lease
        self.artifacts = store.artifacts.for_events()  # put for the events this writer appends next

    def append(self, run_id: str, events: Sequence[BaseEvent], expected_seq: int) -> int:
        if run_id != self.lease.run_id:
            return int(self._store.append(run_id, events, expected_seq))
        fence = partial(self._store._fence_and_lock_in, run_id=run_id, token=self.lease.token)
        return int(self._store._append(run_id, events, expected_seq, fence))

    def create_run(self, task: str, **kwargs: Any) -> str:
        if kwargs.get("run_id") == self.lease.run_id:
            raise LeaseLost(f"run {self.lease.run_id!r} already exists; resume it instead of creating it")
        return str(self._store.create_run(task, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def __repr__(self) -> str:
        return f"{self._store!r} (lease {self.lease.token} on {self.lease.run_id})"
