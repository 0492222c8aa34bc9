"""Event stores: the append-only log of every run.

Contract (every implementation, checked by one parametrised test suite):

- ``append(run_id, events, expected_seq)`` writes a batch atomically. The events must carry seqs
  ``expected_seq + 1 ..`` in order and the run's last seq must still be ``expected_seq``;
  otherwise ``ConcurrencyError`` and nothing is written.
- ``read(run_id, after=, upto=)`` streams events in seq order; a fork reads its parent's events
  up to ``forked_at_seq``, then its own.
- ``state_at(run_id, seq)`` is ``fold(read(run_id, upto=seq))``; stores may speed it up with
  snapshots, which are caches only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypedDict, runtime_checkable

from agentcore.core.events import BaseEvent, Decided, Event, LLMCalled, RunFinished, RunStarted, UserMessaged
from agentcore.core.fold import RunState
from agentcore.errors import ConcurrencyError, ConfigError
from agentcore.storage.artifacts import ArtifactStore
from agentcore.storage.run_ids import MAX_RUN_ID_BYTES as MAX_RUN_ID_BYTES  # re-exported: the stores' rules
from agentcore.storage.run_ids import check_run_id
from agentcore.storage.run_ids import new_run_id as new_run_id
from agentcore.storage.run_ids import no_nul as no_nul
from agentcore.storage.seqs import check_seq

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    """One row of the runs table."""

    id: str
    task: str
    status: str
    """Cached from the log: ``running`` until a ``RunFinished`` event says otherwise."""
    created: str
    last_seq: int
    parent_run_id: str | None = None
    forked_at_seq: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def check_batch(run_id: str, events: Sequence[BaseEvent], expected_seq: int) -> None:
    """Raise ``ConfigError`` unless events belong to ``run_id`` with seqs expected_seq+1, +2, ...,
    each ``caused_by`` (if any) naming an earlier seq; ``expected_seq`` is a seq (``seqs.check_seq``:
    an ``int``, not a ``bool``, a float, a string or ``None``)."""
    check_seq(expected_seq, "expected_seq")
    if expected_seq < 0:
        raise ConfigError(f"expected_seq must be >= 0, got {expected_seq}")
    for i, e in enumerate(events):
        if e.run_id != run_id:
            raise ConfigError(f"event {i} ({e.type}) belongs to run {e.run_id!r}, not {run_id!r}")
        if e.at.tzinfo is None or e.at.utcoffset() is None:
            raise ConfigError(
                f"event {i} ({e.type}) has time {e.at.isoformat()!r} without a UTC offset; "
                "event times must be timezone-aware"
            )
        if e.seq != expected_seq + 1 + i:
            raise ConfigError(
                f"event {i} ({e.type}) has seq {e.seq}; this batch must continue at seq "
                f"{expected_seq + 1 + i} (seqs are consecutive from expected_seq + 1)"
            )
        if e.caused_by is not None and not 0 <= e.caused_by < e.seq:
            raise ConfigError(
                f"event {i} ({e.type}) at seq {e.seq} has caused_by {e.caused_by}: an event is caused by an "
                f"earlier one (a seq below {e.seq}) or by none (None)"
            )


class RunOptions(TypedDict, total=False):
    """What a new run may start with: keyword arguments of ``EventStore.create_run`` and
    ``WorkQueue.submit`` (written once here; ``new_run`` settles the defaults)."""

    run_id: str | None
    """The run's id; a new ``run_...`` id when absent or ``None``."""
    events: Sequence[BaseEvent]
    """Its first events (seqs 1.., usually its ``RunStarted``), written with the run."""


class NewRunOptions(RunOptions, total=False):
    """The keyword arguments of ``EventStore.create_run``."""

    created: datetime | None
    """When the run was created; now (local time) when absent or ``None``."""
    artifacts: Sequence[tuple[bytes, str]]
    """``(bytes, media_type)`` pairs the first events refer to, stored in the same transaction."""


RUN_OPTIONS = RunOptions.__required_keys__ | RunOptions.__optional_keys__
NEW_RUN_OPTIONS = NewRunOptions.__required_keys__ | NewRunOptions.__optional_keys__


@dataclass(frozen=True, kw_only=True)
class NewRun:
    """A run about to be created, with every option settled (``new_run``)."""

    id: str
    created: str
    """ISO 8601 with a UTC offset."""
    events: Sequence[BaseEvent]
    artifacts: Sequence[tuple[bytes, str]]


def new_run(options: NewRunOptions, *, caller: str = "create_run", allowed: frozenset[str] = NEW_RUN_OPTIONS) -> NewRun:
    """What every store's ``create_run`` (and ``submit``) checks and settles first: the run's id
    (a new one when ``None``) and its ``created`` time as ISO text (now, in local time, when ``None``).

    Raises:
        TypeError: an option ``caller`` does not take (not one of ``allowed``).
        ConfigError: the first ``events`` do not belong to the run or do not start at seq 1; a run
            id that no store takes (``run_ids.check_run_id``: NUL, over ``MAX_RUN_ID_BYTES``).
    """
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    run_id = options.get("run_id") or new_run_id()
    check_run_id(run_id)
    events = options.get("events", ())
    check_batch(run_id, events, 0)
    created = (options.get("created") or datetime.now().astimezone()).isoformat()
    return NewRun(id=run_id, created=created, events=events, artifacts=options.get("artifacts", ()))


def new_fork(fork_id: str | None, at_seq: int, events: Sequence[BaseEvent], created: datetime | None) -> tuple[str, str]:
    """What every store's ``fork`` checks and settles first: the fork's id (a new one when ``None``)
    and its ``created`` time as ISO text (now, in local time, when ``None``). ``ConfigError``:
    ``events`` without a ``fork_id`` (they carry it), or not continuing the fork at ``at_seq + 1``; a
    ``fork_id`` that no store takes (``run_ids.check_run_id``)."""
    if events and fork_id is None:
        raise ConfigError("a fork's own events carry its run id: pass new_run_id with events")
    fork_id = fork_id or new_run_id()
    check_run_id(fork_id)
    if events:  # (the store checks ``at_seq`` against the log, naming its seqs)
        check_batch(fork_id, events, at_seq)
    return fork_id, (created or datetime.now().astimezone()).isoformat()


def stale_seq(run_id: str, expected_seq: int, last: int) -> ConcurrencyError:
    """The error for an append whose ``expected_seq`` is no longer the run's last seq."""
    return ConcurrencyError(
        f"run {run_id!r}: expected last seq {expected_seq}, but it is {last}; "
        "another writer appended first: re-read the run and retry"
    )


def taken(run_id: str, where: str) -> ConcurrencyError:
    """The error for a new run (created or forked) whose id is already used in ``where``."""
    return ConcurrencyError(f"run {run_id!r} already exists in {where}; choose another id")


_STATUS_EVENTS = (RunFinished, RunStarted, UserMessaged, Decided)


def status_after(events: Sequence[BaseEvent], current: str) -> str:
    """The run status cached in the runs table after ``events`` are appended (the fold's rules)."""
    for e in events:
        if not isinstance(e, _STATUS_EVENTS):  # most events (steps, tools, patches) leave it as it is
            continue
        if isinstance(e, RunFinished):
            current = e.status
        elif isinstance(e, (RunStarted, UserMessaged)):
            current = "running"
        elif isinstance(e, Decided) and e.decision.kind == "ask_user":
            current = "waiting_for_user"
    return current


@runtime_checkable
class EventStore(Protocol):
    """The log of runs. ``SQLiteEventStore`` and ``MemoryEventStore`` implement it.

    Every method but ``close`` raises ``RunNotFound`` for an unknown run id; writes on a read-only
    store raise ``StorageUnavailable``; a lost append race raises ``ConcurrencyError``.
    """

    @property
    def artifacts(self) -> ArtifactStore:
        """The content-addressed artifacts of this store's runs."""
        ...

    @property
    def read_only(self) -> bool:
        """True when the store refuses writes (an inspection handle)."""
        ...

    def close(self) -> None:
        """Release the store's resources (idempotent)."""
        ...

    def create_run(self, task: str, **options: Unpack[NewRunOptions]) -> str:
        """Add a run and return its id. ``options`` (``NewRunOptions``): ``run_id``, ``created``, and
        its first ``events`` (seqs 1..) and the ``artifacts`` they refer to, written in the same
        transaction (a run never exists without its first event, whatever kills the process)."""
        ...

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        ...

    def run(self, run_id: str) -> RunInfo:
        """One run's row."""
        ...

    def last_seq(self, run_id: str) -> int:
        """The seq of the run's newest event (0 for a run with no events)."""
        ...

    def append(self, run_id: str, events: Sequence[BaseEvent], expected_seq: int) -> int:
        """Write ``events`` (seqs ``expected_seq + 1 ..``) atomically; return the new last seq."""
        ...

    def read(self, run_id: str, *, after: int = 0, upto: int | None = None) -> Iterator[Event]:
        """Events with ``after < seq <= upto`` in seq order (a fork's inherited ones first)."""
        ...

    def state_at(self, run_id: str, seq: int | None = None) -> RunState:
        """``fold`` of the events up to ``seq`` (the newest when ``None``)."""
        ...

    def fork(
        self, run_id: str, at_seq: int, *, new_run_id: str | None = None, events: Sequence[BaseEvent] = (),
        created: datetime | None = None,
    ) -> str:
        """A new run that shares this run's events up to ``at_seq``, then its own ``events`` (seqs
        ``at_seq + 1 ..``, written with it: no moment shows the fork without them); returns its id."""
        ...

    def diff(self, run_id: str, a: int, b: int) -> list[dict[str, Any]]:
        """The RFC 6902 operations turning the state at seq ``a`` into the state at seq ``b``."""
        ...


class RunStats(NamedTuple):
    """Counts over a run's log (a fork's inherited events included), for listings."""

    events: int
    first_at: datetime | None
    """``at`` of the first event (``None`` for a run with no events)."""
    last_at: datetime | None
    tokens: int
    """Total tokens over its ``LLMCalled`` events."""


def stats_of(events: Iterable[Event]) -> RunStats:
    """``RunStats`` of decoded events: the reference any faster ``run_stats`` must agree with."""
    count = tokens = 0
    first = last = None
    for e in events:
        count += 1
        first = first or e.at
        last = e.at
        if isinstance(e, LLMCalled):
            tokens += e.usage.total_tokens
    return RunStats(count, first, last, tokens)


@runtime_checkable
class RunStatsSource(Protocol):
    """A store that can count a run's log without decoding it (SQL aggregates)."""

    def run_stats(self, run_id: str) -> RunStats:
        """The run's ``RunStats``; ``RunNotFound`` if absent."""
        ...


# ------------------------------------------------------------------------------------------------
# the work queue (a store that workers on several machines share: PostgreSQL)


@dataclass(frozen=True, kw_only=True)
class Lease:
    """A worker's hold on a queued run until its lease expires (renew it with ``WorkQueue.renew``)."""

    run_id: str
    token: int
    """The fencing token: appends under this lease are refused once a later claim raised it."""
    owner: str
    spec: dict[str, Any]
    """What the submitter asked for (the factory that builds the run's agent reads it)."""
    claims: int
    """How many times the run was claimed, this claim included (> 1: it is being taken over)."""


@dataclass(frozen=True, kw_only=True)
class StepLease:
    """A worker's hold on one attempt of one plan step of a queued run (see ``WorkQueue.claim_step``)."""

    run_id: str
    step_id: str
    attempt: int
    idempotency_key: str
    """``run_id/step_id/attempt``: the same for every worker that takes this attempt over."""
    token: int
    """Fences ``finish_step``: a worker whose step lease another worker took over writes nothing."""
    owner: str
    spec: dict[str, Any]
    """The run's spec (the same factory builds the runner that executes the step)."""
    claims: int


QUEUE_CHANNEL = "agentcore_queue"
"""Notified when a run is queued (payload: its id) or a plan step attempt is (``step:RUN_ID``)."""
DONE_CHANNEL = "agentcore_done"
"""Notified when a queued run ends (payload: its id)."""
STEP_DONE_CHANNEL = "agentcore_step_done"
"""Notified when a plan step attempt's outcome is stored (payload: ``step_done_payload(...)``)."""


def step_done_payload(run_id: str, step_id: str, attempt: int) -> str:
    """``run_id/step_id/attempt``: the attempt an ``agentcore_step_done`` notification is about.

    At most ``MAX_RUN_ID_BYTES`` + 1 + 800 (a step id of ``plans.MAX_STEP_ID_CHARS`` characters in
    UTF-8) + 1 + the attempt's digits: far below the 7999 bytes of a PostgreSQL notification payload."""
    return f"{run_id}/{step_id}/{attempt}"


class QueueListener(Protocol):
    """A connection waiting for queue notifications."""

    def wait(self, timeout: float) -> list[str]:
        """Payloads of notifications that arrived within ``timeout`` seconds (maybe none)."""
        ...

    def notifications(self, timeout: float) -> list[tuple[str, str]]:
        """``(channel, payload)`` of notifications that arrived within ``timeout`` seconds (maybe none)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class WorkQueue(Protocol):
    """Queued runs and plan steps with leases, shared by workers (``PostgresEventStore`` has one).

    Runs: ``claim`` takes a queued run (or one whose lease expired) and raises its fencing token;
    ``renew`` extends the lease; ``release`` ends it; ``leased`` is the store seen through a lease
    (its appends to that run are refused with ``LeaseLost`` once another worker holds it).

    Plan steps: the worker driving a plan run (holding the run's lease) queues each ready step
    attempt with ``submit_step``; any worker ``claim_step``s it, runs it and ``finish_step``s it with
    the result; the driver reads it back with ``step_result`` and records it in the run's log. Only
    the run's lease holder writes the log, so it stays one sequence.

    Every method raises ``StorageUnavailable`` when the server cannot be reached.
    """

    def submit(self, task: str, *, spec: Mapping[str, Any] | None = None, **options: Unpack[RunOptions]) -> str: ...

    def claim(self, owner: str, *, lease_s: float = 30.0) -> Lease | None: ...

    def renew(self, lease: Lease, *, lease_s: float = 30.0) -> bool: ...

    def release(self, lease: Lease, *, done: bool) -> bool: ...

    def leased(self, lease: Lease) -> Any:
        """The store with appends to ``lease.run_id`` fenced by the lease token (an ``EventStore``)."""
        ...

    def unfinished(self) -> int:
        """Runs queued or leased plus step attempts queued or leased."""
        ...

    def queue_entries(self, run_ids: Iterable[str] | None = None) -> list[dict[str, Any]]: ...

    def listen(self, *channels: str) -> QueueListener: ...

    def submit_step(self, lease: Lease, step_id: str, attempt: int, idempotency_key: str) -> None:
        """Queue one attempt of a step of the leased run (``LeaseLost`` if the lease is gone)."""
        ...

    def claim_step(self, owner: str, *, lease_s: float = 30.0) -> StepLease | None: ...

    def step_leased(self, lease: StepLease) -> Any:
        """The store with every write fenced by the step lease (the step's child run) and the plan
        run's own log refused (an ``EventStore``)."""
        ...

    def renew_step(self, lease: StepLease, *, lease_s: float = 30.0) -> bool: ...

    def finish_step(self, lease: StepLease, result: Mapping[str, Any]) -> bool:
        """Store an attempt's result (a JSON object); ``False`` if the step lease was lost."""
        ...

    def step_result(self, run_id: str, step_id: str, attempt: int) -> dict[str, Any] | None:
        """The finished attempt's result, ``None`` while it runs; ``LeaseLost`` if it was cancelled."""
        ...

    def cancel_steps(self, lease: Lease, step_id: str | None = None) -> int:
        """Cancel the leased run's unfinished step attempts (one step's, or all); how many."""
        ...
