"""Plans as data: steps with dependencies, their retry settings, and DAG validation.

A plan is a list of steps; ``after`` names the steps that must succeed first. ``validate_plan``
rejects duplicate ids, unknown dependencies and cycles (the error names the cycle) and returns a
topological order. Nothing here does I/O or reads a clock: delays are computed from an injected
random generator.
"""

from __future__ import annotations

import graphlib
import random
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, JsonValue, field_validator, model_validator

from agentcore.core.values import FROZEN
from agentcore.errors import ConfigError, PlanError

FailurePolicy = Literal["abort", "skip_dependents", "continue"]
"""What a failed step does to the run: stop it, skip the steps that depend on it, or ignore it."""

StepStatus = Literal["pending", "running", "succeeded", "failed", "skipped"]

MAX_STEP_ID_CHARS = 200
"""The longest step id, in characters (at most 800 bytes in UTF-8): step ids travel in PostgreSQL
notifications with a run id (``storage.base.step_done_payload``), whose payload holds 7999 bytes."""

MAX_DELAY_S = 365 * 86400.0
"""The longest backoff delay or run deadline, in seconds (one year). Wall-clock arithmetic
(``now + timedelta(seconds=...)``) overflows near 3e14 s and ``timedelta`` refuses far less, so
``RetryPolicy.delay`` never waits longer, and bigger numbers are refused where they are given
(``long_delays``: a plan given to a run, a new patch) rather than crashing a run in the middle.
The model itself does not refuse them: plans stored before this bound must still be read."""

RETRYABLE_KINDS: tuple[str, ...] = ("rate_limit", "timeout", "server_error", "connection", "transient")
"""Failure kinds retried by default; ``validation`` and ``client_error`` are not."""


class RetryPolicy(BaseModel):
    """How often a step (or call) is tried, and how long to wait between tries."""

    model_config = FROZEN

    max_attempts: int = Field(default=3, ge=1, le=100)
    """Total tries, the first included."""
    base_delay: float = Field(default=0.5, ge=0)
    """Delay before the second try, in seconds (at most ``MAX_DELAY_S``); doubles each try."""
    max_delay: float = Field(default=30.0, ge=0)
    """Cap on any single delay, in seconds (at most ``MAX_DELAY_S``)."""
    jitter: bool = True
    """Multiply each delay by a random factor in [0.5, 1.0] so retries do not stampede."""
    retry_on: tuple[str, ...] = RETRYABLE_KINDS
    """Failure kinds that are retried; any other kind fails the step at once."""

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based) before the next one."""
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt}")
        # a float power, bounded: 2 ** 10_000 as an int would overflow the float product
        raw = min(self.max_delay, MAX_DELAY_S, self.base_delay * 2.0 ** min(attempt - 1, 1000))
        if self.jitter:
            raw *= (rng or random.Random(attempt)).uniform(0.5, 1.0)
        return raw

    def should_retry(self, kind: str, attempt: int) -> bool:
        """Whether a failure of ``kind`` on try ``attempt`` earns another try."""
        return kind in self.retry_on and attempt < self.max_attempts


class Step(BaseModel):
    """One unit of work in a plan."""

    model_config = FROZEN

    id: str = Field(min_length=1, max_length=MAX_STEP_ID_CHARS)
    """Unique within the plan; other steps name it in ``after``."""
    description: str = ""
    """What the step must achieve, for the agent sub-loop that carries it out."""
    after: tuple[str, ...] = ()
    """Ids of the steps that must succeed before this one starts."""
    tool: str | None = None
    """When set, the step runs this tool directly with ``arguments``."""
    arguments: dict[str, JsonValue] = Field(default_factory=dict)
    """Arguments for ``tool``."""
    retry: RetryPolicy | None = None
    """Overrides the plan's retry policy for this step."""
    on_failure: FailurePolicy | None = None
    """Overrides the plan's failure policy for this step."""
    timeout_s: float | None = Field(default=None, gt=0)
    """Per-attempt time limit in seconds."""

    @field_validator("after", mode="before")
    @classmethod
    def _after_as_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value


class Plan(BaseModel):
    """Steps plus the defaults that apply to all of them."""

    model_config = FROZEN

    steps: tuple[Step, ...] = ()
    on_failure: FailurePolicy = "skip_dependents"
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    max_parallel: int = Field(default=4, ge=1, le=1024)

    @model_validator(mode="after")
    def _valid_dag(self) -> Plan:
        # pydantic runs this again each time a Plan instance is put into another model (an event's
        # field): a frozen plan checked once stays valid, so that costs one lookup, not a sort
        if _CHECKED.get(id(self)) is not self:
            validate_plan(self.steps)
            _CHECKED[id(self)] = self
        return self

    def step(self, step_id: str) -> Step:
        """The step with this id; ``KeyError`` naming the known ids when absent."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(f"no step {step_id!r}; steps: {', '.join(s.id for s in self.steps)}")


_CHECKED: weakref.WeakValueDictionary[int, Plan] = weakref.WeakValueDictionary()
"""Plans whose steps ``validate_plan`` has accepted, by ``id`` (an entry goes with its plan)."""


def long_delays(policies: Iterable[tuple[str, RetryPolicy | None]]) -> list[str]:
    """The delays over ``MAX_DELAY_S`` among named retry policies, each as ``"<name>.max_delay=<s>"``.

    Callers refuse them where a policy is given (``PlanRunner.run``, a processor's new patch);
    stored plans are not checked (``RetryPolicy.delay`` caps the wait at ``MAX_DELAY_S`` anyway).
    """
    found = []
    for name, policy in policies:
        for field in ("base_delay", "max_delay"):
            value = getattr(policy, field, 0.0)
            if value > MAX_DELAY_S:
                found.append(f"{name}.{field}={value:g}")
    return found


def retry_policies(retry: RetryPolicy | None, steps: Iterable[Step]) -> list[tuple[str, RetryPolicy | None]]:
    """A plan's (or a ``replace_plan``'s) retry policy and each step's own, named ``retry`` and
    ``steps[<id>].retry``, for ``long_delays``."""
    return [("retry", retry), *((f"steps[{s.id[:100]!r}].retry", s.retry) for s in steps)]


def check_deadline(deadline_s: float | None) -> None:
    """Refuse a run deadline that is not a number of seconds in (0, ``MAX_DELAY_S``].

    Raises:
        ConfigError: NaN, infinite, zero, negative, longer than ``MAX_DELAY_S``, or not a number.
    """
    if deadline_s is None:
        return
    if isinstance(deadline_s, bool) or not isinstance(deadline_s, (int, float)) or not 0 < deadline_s <= MAX_DELAY_S:
        raise ConfigError(
            f"deadline_s must be > 0 seconds and at most {MAX_DELAY_S:g} (one year), got {deadline_s!r}; "
            "pass a number of seconds, or None for no deadline"
        )


def validate_plan(steps: Sequence[Step] | Iterable[Step], known: Iterable[str] = ()) -> list[str]:
    """Check that steps form a DAG and return their ids in a topological order.

    Args:
        steps: The steps of the plan.
        known: Ids of steps outside ``steps`` that may be depended on (finished steps kept
            from an earlier plan).

    Raises:
        PlanError: on a duplicate id, a dependency on an unknown id, or a cycle (named in the
            message and in ``PlanError.cycle``).
    """
    steps = list(steps)
    ids: set[str] = set()
    for s in steps:
        if s.id in ids:
            raise PlanError(f"duplicate step id {s.id!r}: every step needs its own id")
        ids.add(s.id)
    extra = set(known)
    for s in steps:
        for dep in s.after:
            if dep not in ids and dep not in extra:
                choices = ", ".join(sorted(ids | extra))
                raise PlanError(f"step {s.id!r} depends on unknown step {dep!r}; known steps: {choices}")
            if dep == s.id:
                raise PlanError(f"step {s.id!r} depends on itself", cycle=(s.id, s.id))
    order = _topological_order(steps, ids)
    if order is not None:
        return order
    # a cycle: graphlib names one (slower, and only on this path)
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for s in steps:
        sorter.add(s.id, *(d for d in s.after if d in ids))
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as e:
        cycle = tuple(e.args[1])
        raise PlanError(
            f"plan has a cycle: {' -> '.join(cycle)} (each step waits for the one before it); "
            "remove one of these dependencies",
            cycle=cycle,
        ) from None


def _topological_order(steps: list[Step], ids: set[str]) -> list[str] | None:
    """Kahn's algorithm over the dependencies inside ``ids``: an order, or ``None`` on a cycle.

    The fold re-checks every plan revision, so this runs per ``replace_plan`` event; it costs a
    fraction of ``graphlib``'s general sorter for plans of a few dozen steps."""
    waiting: dict[str, int] = {}
    dependents: dict[str, list[str]] = {}
    for s in steps:
        deps = {d for d in s.after if d in ids}
        waiting[s.id] = len(deps)
        for d in deps:
            dependents.setdefault(d, []).append(s.id)
    order = [sid for sid, n in waiting.items() if n == 0]
    for sid in order:  # grows while it is walked
        for nxt in dependents.get(sid, ()):
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                order.append(nxt)
    return order if len(order) == len(waiting) else None
