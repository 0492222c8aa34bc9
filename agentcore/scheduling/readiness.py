"""Incremental readiness: which pending plan steps may start, by counting unmet dependencies.

Built from ``RunState.plan`` (the fold of the log) in O(V + E); each finished step then costs
O(its dependents), and ready steps come off a heap (longest remaining chain first, then plan order), so a
whole run costs O((V + E) log V) with no rescan of the plan per step. Nothing here is a private record of what is
done: a tracker built from a resumed run's state picks up exactly where the log stopped.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from agentcore.core.fold import StepState
from agentcore.core.plans import FailurePolicy

__all__ = ("ReadyTracker",)


class ReadyTracker:
    """Which pending steps may start, kept up to date by counting unmet dependencies.

    Built from a plan (``RunState.plan``) in O(V + E); ``done`` costs O(dependents). Ready steps
    are handed out longest remaining chain first (a step's height: the most steps on a path from
    it to the end of the plan), ties in plan order, so the critical path is not starved when fewer
    slots than ready steps are free (critical-path-first list scheduling); the order depends on
    the plan only, never on timing. Steps in
    ``held`` (waiting out a retry backoff) are not handed out until ``release``.
    """

    def __init__(self, plan: Mapping[str, StepState], default_policy: FailurePolicy, held: Iterable[str] = ()) -> None:
        self.plan = plan
        self.default_policy = default_policy
        self.held: set[str] = set(held)
        self._unmet: dict[str, int] = {}
        self._dependents: dict[str, list[str]] = {}
        self._ready: list[tuple[int, int, str]] = []
        self._order = {sid: i for i, sid in enumerate(plan)}
        """Each step's place in the plan: the tie-break between steps of equal height."""
        dependents = self._dependents
        for sid, step in plan.items():
            for dep in step.after:
                if dep in dependents:
                    dependents[dep].append(sid)
                else:
                    dependents[dep] = [sid]
        self.height = self._heights()
        # the steps that let their dependents start, found once (a new run has none): a dependency
        # outside the plan is unmet, as ``satisfies`` says
        met = {
            sid
            for sid, s in plan.items()
            if s.status == "succeeded" or (s.status == "failed" and self.policy(sid) == "continue")
        }
        height, order, held_ = self.height, self._order, self.held
        for sid, step in plan.items():
            if step.status != "pending":
                continue
            unmet = sum(1 for dep in step.after if dep not in met) if met else len(step.after)
            self._unmet[sid] = unmet
            if unmet == 0 and sid not in held_:
                self._ready.append((-height[sid], order[sid], sid))
        heapq.heapify(self._ready)

    def _heights(self) -> dict[str, int]:
        """Steps on the longest path from each step to a step nothing depends on.

        One pass from the plan's end when every step's dependents come after it (plans are
        usually written in that order), else Kahn's algorithm over the reversed graph.
        """
        height: dict[str, int] = {}
        dependents = self._dependents
        for sid in reversed(list(self.plan)):
            below = dependents.get(sid)
            if not below:
                height[sid] = 1
                continue
            best = 0
            for d in below:
                h = height.get(d)
                if h is None:  # a dependent comes earlier in the plan
                    return self._heights_kahn()
                if h > best:
                    best = h
            height[sid] = best + 1
        return height

    def _heights_kahn(self) -> dict[str, int]:
        left = {sid: len(self._dependents.get(sid, ())) for sid in self.plan}
        height = dict.fromkeys(self.plan, 1)
        stack = [sid for sid, n in left.items() if n == 0]
        while stack:
            sid = stack.pop()
            for dep in self.plan[sid].after:
                if dep in left:
                    height[dep] = max(height[dep], height[sid] + 1)
                    left[dep] -= 1
                    if left[dep] == 0:
                        stack.append(dep)
        return height

    def _push(self, step_id: str) -> None:
        heapq.heappush(self._ready, (-self.height.get(step_id, 1), self._order.get(step_id, len(self._order)), step_id))

    def policy(self, step_id: str) -> FailurePolicy:
        """The failure policy that applies to a step."""
        return self.plan[step_id].on_failure or self.default_policy

    def satisfies(self, step_id: str) -> bool:
        """Whether a finished step lets its dependents start."""
        step = self.plan.get(step_id)
        if step is None:
            return False
        return step.status == "succeeded" or (step.status == "failed" and self.policy(step_id) == "continue")

    def blocked(self) -> list[str]:
        """Pending steps that can never start: a dependency was skipped or failed (not tolerated)."""
        dead = [
            sid
            for sid, s in self.plan.items()
            if s.status == "skipped" or (s.status == "failed" and self.policy(sid) != "continue")
        ]
        return self.dependents_closure(dead)

    def dependents_closure(self, step_ids: Iterable[str]) -> list[str]:
        """Pending steps that depend, directly or not, on any of ``step_ids`` (in id order)."""
        seen: set[str] = set()
        stack = list(step_ids)
        while stack:
            for dep in self._dependents.get(stack.pop(), ()):
                if dep not in seen and dep in self._unmet:
                    seen.add(dep)
                    stack.append(dep)
        return sorted(seen)

    def pop_ready(self, limit: int) -> list[str]:
        """Take up to ``limit`` ready steps, longest remaining chain first, then in plan order."""
        out: list[str] = []
        while self._ready and len(out) < limit:
            _, _, sid = heapq.heappop(self._ready)
            if self._unmet.pop(sid, None) is not None:
                out.append(sid)
        return out

    @property
    def has_ready(self) -> bool:
        """Whether some step may start now."""
        return bool(self._ready)

    def pending(self) -> list[str]:
        """Steps not yet started (ready, waiting on dependencies, or held), in id order."""
        return sorted(self._unmet)

    def done(self, step_id: str) -> None:
        """``step_id`` finished in a way that satisfies its dependents: some may become ready."""
        for dep in self._dependents.get(step_id, ()):
            left = self._unmet.get(dep)
            if left is None:
                continue
            self._unmet[dep] = left - 1
            if left == 1 and dep not in self.held:
                self._push(dep)

    def requeue(self, step_id: str) -> None:
        """Put a step whose attempt failed back as pending, held until ``release``."""
        self.held.add(step_id)
        self._unmet[step_id] = 0

    def release(self, step_id: str) -> None:
        """End a step's backoff: it is ready again if its dependencies are met."""
        self.held.discard(step_id)
        if self._unmet.get(step_id) == 0:
            self._push(step_id)

    def remove(self, step_ids: Iterable[str]) -> None:
        """Forget pending steps (skipped or cancelled)."""
        for sid in step_ids:
            self._unmet.pop(sid, None)
            self.held.discard(sid)
