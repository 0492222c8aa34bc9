"""Where a run may be forked: the fork-point rules every store applies before ``fork``.

A fork keeps seqs ``1..at_seq`` of its parent; it must keep at least one event, and it must not cut
one recorded step in two (``splits_batch``), or resuming it would redo a recorded model answer or
drop decided calls.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentcore.errors import InvalidForkPoint
from agentcore.storage.seqs import check_seq


def check_fork_range(run_id: str, at_seq: int, last_seq: int) -> None:
    """Raise ``InvalidForkPoint`` (a ``ConfigError``) unless ``1 <= at_seq <= last_seq`` (a fork keeps
    at least one event)."""
    check_seq(at_seq, "at_seq")
    if not 1 <= at_seq <= last_seq:
        raise InvalidForkPoint(f"cannot fork run {run_id!r} at seq {at_seq}: it has seqs 1..{last_seq}")


def splits_batch(headers: Sequence[tuple[int, str, int | None]], at_seq: int) -> bool:
    """Whether a fork keeping seqs ``1..at_seq`` would cut one recorded step in two.

    ``headers`` are ``(seq, type, caused_by)`` of the run's events in order. A model's answer
    (``llm_called``) always lands in one batch with what it decided (more attempts, ``decided``, a
    patch, a failure), and a decision with its ``tool_started`` calls or its reply: a fork between
    them would make ``resume`` ask the model again (redoing a recorded answer) or drop decided calls.
    """
    if not 1 <= at_seq < len(headers):
        return False
    types = {seq: kind for seq, kind, _ in headers}
    _, here, _ = headers[at_seq - 1]
    _, nxt, cause = headers[at_seq]
    if here == "llm_called":
        return True
    return cause is not None and types.get(cause) == "decided" and nxt in ("tool_started", "run_finished")


def fork_points(headers: Sequence[tuple[int, str, int | None]]) -> list[int]:
    """The seqs a run may be forked at: every seq that ends a recorded step (see ``splits_batch``)."""
    return [seq for seq, _, _ in headers if not splits_batch(headers, seq)]


def check_fork_point(run_id: str, headers: Sequence[tuple[int, str, int | None]], at_seq: int) -> None:
    """Raise ``InvalidForkPoint`` naming the valid seqs near ``at_seq`` when a fork there splits a step."""
    if not splits_batch(headers, at_seq):
        return
    valid = fork_points(headers)
    before = [s for s in valid if s < at_seq][-3:]
    after = [s for s in valid if s > at_seq][:3]
    raise InvalidForkPoint(
        f"cannot fork run {run_id!r} at seq {at_seq}: it is inside one recorded step (seq {at_seq} is "
        f"{headers[at_seq - 1][1]}, seq {at_seq + 1} is {headers[at_seq][1]} of the same step), and resuming "
        f"there would redo a recorded model answer or drop decided calls. Fork at a seq that ends a step: "
        f"{', '.join(map(str, before + after))} (near {at_seq})"
    )
