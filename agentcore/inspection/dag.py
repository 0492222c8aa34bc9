"""A plan as a drawable DAG: each step's layer (longest path from a root) and row, for the run view.

The page draws the layout as inline SVG; this module only computes positions, so the drawing can
be tested as data and the page needs no layout library.
"""

from __future__ import annotations

import graphlib
from typing import Any

from agentcore.core.state import RunState

__all__ = ("plan_layout",)


def plan_layout(state: RunState) -> dict[str, Any] | None:
    """The plan of ``state`` laid out left to right, or ``None`` for a run without a plan.

    Returns:
        ``{"steps": [{"id", "description", "status", "attempts", "error", "after", "layer", "row"}],
        "layers": n, "rows": m}``: ``layer`` is the length of the longest chain of dependencies
        before the step (roots are layer 0) and ``row`` its place within the layer, in plan order.
        Dependencies on steps not in the plan are ignored.
    """
    if not state.plan:
        return None
    deps = {sid: [d for d in step.after if d in state.plan] for sid, step in state.plan.items()}
    layer: dict[str, int] = {}
    try:
        order = list(graphlib.TopologicalSorter(deps).static_order())
    except graphlib.CycleError:  # a folded plan is validated; draw a damaged one flat rather than fail
        order, deps = list(deps), {sid: [] for sid in deps}
    for sid in order:
        layer[sid] = 1 + max((layer[d] for d in deps[sid]), default=-1)

    rows: dict[int, int] = {}
    steps = []
    for step_id, step in state.plan.items():
        n = layer[step_id]
        row = rows.get(n, 0)
        rows[n] = row + 1
        steps.append(
            {
                "id": step_id,
                "description": step.description,
                "status": step.status,
                "attempts": step.attempts,
                "error": step.error,
                "after": deps[step_id],
                "layer": n,
                "row": row,
            }
        )
    return {"steps": steps, "layers": max(rows) + 1, "rows": max(rows.values())}
