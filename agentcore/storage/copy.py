"""Copy runs, with the artifacts their events point at, from one store to another (any two stores).

Each run is created in the target with its own events in one transaction (a fork is made a fork
of its copied parent again, still copy-free, with its own events in the same transaction); every
``sha256:`` id its events mention is copied with its media type, before the run. So a copy killed
at any moment leaves the target with whole runs only (at worst with artifacts no run refers to
yet), and running it again finishes it: **a copy is idempotent**. A run the target already holds
with the same log (parent, fork point, last seq and last event alike) is skipped; one whose log is
a prefix of the source's (copied while it was waiting for an answer or still running, and gone on
since) gets the missing events appended in one transaction; one with another log is refused
(``ConcurrencyError``, naming it), nothing of it written. A task holding NUL (which
no store takes now; an older agentcore took one on SQLite) is copied with each NUL shown as the six
characters ``\\u0000``, as the views show it. A run whose id no store takes now (an older agentcore
took ids with NUL, or longer than ``MAX_RUN_ID_BYTES``, on SQLite) stops the copy before anything is
written (``ConfigError``): a copy keeps every run's id, and the target would refuse it.

Queue entries are not copied: a copied run is just a run. A queue entry says which worker of *that*
database drives the run (its lease and fencing token); carrying it over would let the workers of
two databases drive the same run at once and write two different continuations of one log. A run
still queued or leased in the source is copied as far as its log goes and named in
``CopyReport.still_queued``; finish it where it is queued, or copy it again once it is done.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agentcore.core.event_codec import encode_event
from agentcore.errors import ConcurrencyError, ConfigError, RunNotFound
from agentcore.storage.base import RunInfo, WorkQueue
from agentcore.storage.run_ids import run_id_problem

_ARTIFACT_ID = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass
class CopyReport:
    """What ``copy_runs`` did: run ids copied and skipped, artifacts and events written."""

    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    artifacts: int = 0
    events: int = 0
    still_queued: list[str] = field(default_factory=list)
    """Copied runs that the source's work queue still holds as queued or leased (not carried over)."""


def _ordered(runs: list[RunInfo]) -> list[RunInfo]:
    """Parents before their forks (otherwise oldest first)."""
    by_id = {r.id: r for r in runs}
    done: set[str] = set()
    out: list[RunInfo] = []

    def visit(r: RunInfo) -> None:
        if r.id in done:
            return
        if r.parent_run_id in by_id:
            visit(by_id[r.parent_run_id])
        done.add(r.id)
        out.append(r)

    for r in runs:
        visit(r)
    return out


def copy_runs(source: Any, target: Any, run_ids: Iterable[str] | None = None) -> CopyReport:
    """Copy runs (all by default; a fork brings its ancestors) and their artifacts from ``source`` to ``target``.

    Raises:
        RunNotFound: a run id that ``source`` does not hold.
        ConfigError: a run to copy has an id that no store takes now (``run_ids.check_run_id``);
            nothing was written.
        ConcurrencyError: ``target`` holds a run of the same id with another log (not a prefix of
            the source's), or another writer appended to it during the copy.
    """
    every = {r.id: r for r in source.runs()}
    wanted: list[RunInfo] = []
    for rid in run_ids if run_ids is not None else list(every):
        info = every.get(rid) or source.run(rid)
        while info is not None:
            wanted.append(info)
            info = every.get(info.parent_run_id) if info.parent_run_id else None
    _check_ids(wanted)
    report = CopyReport()
    for info in _ordered(list({r.id: r for r in wanted}.values())):
        _copy_one(source, target, info, report)
    if isinstance(source, WorkQueue) and report.copied:
        entries = source.queue_entries(report.copied)
        report.still_queued = [e["run_id"] for e in entries if e["state"] in ("queued", "leased")]
    return report


def _check_ids(runs: list[RunInfo]) -> None:
    """``ConfigError`` before anything is written when a run to copy has an id no store takes now."""
    bad = [(r, problem) for r in runs if (problem := run_id_problem(r.id)) is not None]
    if bad:
        others = f" ({len(bad) - 1} more runs like it)" if len(bad) > 1 else ""
        raise ConfigError(
            f"cannot copy: {bad[0][1]}{others}. A copy keeps run ids, so nothing was copied. Such a run comes "
            "from an older agentcore: name the other runs to copy them, and move this one as a trace "
            "(agentcore.storage.trace.export_run, then `agentcore import`: the import gives it a new id)"
        )


def _same_log(source: Any, target: Any, info: RunInfo, there: RunInfo) -> bool:
    """Whether the target's run ``there`` is the source's run ``info``: same parent, fork point and
    last seq, and the same last event (a diverged copy has written another one by then)."""
    return there.last_seq == info.last_seq and _prefix(source, target, info, there)


def _prefix(source: Any, target: Any, info: RunInfo, there: RunInfo) -> bool:
    """Whether the target's run ``there`` is a prefix of the source's run ``info``: same parent and
    fork point, no more events, and the same event at its last seq (where a diverged log differs)."""
    if (there.parent_run_id, there.forked_at_seq) != (info.parent_run_id, info.forked_at_seq):
        return False
    if there.last_seq > info.last_seq:
        return False
    if there.last_seq == 0:
        return True
    at = there.last_seq
    ours, theirs = list(source.read(info.id, after=at - 1, upto=at)), list(target.read(info.id, after=at - 1))
    return [encode_event(e) for e in ours] == [encode_event(e) for e in theirs]


def _copy_artifacts(source: Any, target: Any, events: list[Any], report: CopyReport) -> None:
    """Copy every artifact ``events`` mention that the target lacks (before the events that point at it)."""
    ids = {m for e in events for m in _ARTIFACT_ID.findall(encode_event(e))}
    for ident in sorted(ids):
        if source.artifacts.exists(ident) and not target.artifacts.exists(ident):
            ref = source.artifacts.info(ident)
            target.artifacts.put(source.artifacts.read(ident), ref.media_type)
            report.artifacts += 1


def _copy_one(source: Any, target: Any, info: RunInfo, report: CopyReport) -> None:
    try:
        there = target.run(info.id)
    except RunNotFound:
        there = None
    if there is not None:
        if _same_log(source, target, info, there):
            report.skipped.append(info.id)
            return
        if _prefix(source, target, info, there):  # the run went on since it was copied: append the rest
            rest = list(source.read(info.id, after=there.last_seq))
            _copy_artifacts(source, target, rest, report)
            target.append(info.id, rest, expected_seq=there.last_seq)
            report.copied.append(info.id)
            report.events += len(rest)
            return
        raise ConcurrencyError(
            f"the target already has a run {info.id!r} with another log (last seq {there.last_seq}, here "
            f"{info.last_seq}); nothing of it was copied. Copy into another database or delete it there."
        )
    own_from = info.forked_at_seq or 0
    events = list(source.read(info.id, after=own_from))
    _copy_artifacts(source, target, events, report)
    created = datetime.fromisoformat(info.created)
    if info.parent_run_id is not None:
        target.fork(info.parent_run_id, own_from, new_run_id=info.id, events=events, created=created)
    else:  # a task with NUL (an older agentcore took one on SQLite) is shown as \u0000, as trace import does
        task = info.task.replace("\x00", "\\u0000")
        target.create_run(task, run_id=info.id, created=created, events=events)
    report.copied.append(info.id)
    report.events += len(events)
