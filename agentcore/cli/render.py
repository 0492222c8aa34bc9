"""Terminal rendering for the CLI: live progress of a run and tables (the only other rich user)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from agentcore.cli.support import print_json, safe
from agentcore.core.events import (
    BaseEvent,
    Decided,
    LLMCalled,
    PatchRejected,
    RunFinished,
    RunStarted,
    StatePatched,
    StepFailed,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    ToolFinished,
    ToolStarted,
)
from agentcore.core.patches import AppendKnownFacts
from agentcore.core.text import clip

__all__ = ("Progress", "one_line", "print_json", "table")


one_line = functools.partial(clip, limit=100, one_line=True, mark="ellipsis")
"""``one_line(text, limit=100)``: ``text`` on one line, at most ``limit`` characters (``…`` marks a cut)."""


class Progress:
    """Prints each decision, tool call and patch of a run as it is committed."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: BaseEvent) -> None:
        line = self.line(event)
        if line:
            self.console.print(line, highlight=False)

    @staticmethod
    def line(e: BaseEvent) -> str | None:
        """The progress line for one event (rich markup; run data escaped), or None to stay quiet."""
        seq = f"[dim]{e.seq:>4}[/dim]"
        if isinstance(e, RunStarted):
            return f"{seq} [bold]run started[/bold] {safe(one_line(e.task))}"
        if isinstance(e, LLMCalled) and not e.ok:
            return f"{seq} [yellow]{e.role} call failed[/yellow] (attempt {e.attempt}): {safe(one_line(e.error or ''))}"
        if isinstance(e, Decided):
            d = e.decision
            if d.kind == "tool_calls":
                names = ", ".join(f"{c.name}({_args(c.arguments)})" for c in d.tool_calls)
                return f"{seq} [cyan]decided[/cyan] call {safe(names)}"
            if d.kind == "ask_user":
                return f"{seq} [cyan]decided[/cyan] ask the user: {safe(one_line(d.question or ''))}"
            return f"{seq} [cyan]decided[/cyan] reply"
        if isinstance(e, ToolStarted):
            return None
        if isinstance(e, ToolFinished):
            status = "[green]ok[/green]" if e.ok else "[red]error[/red]"
            first = (e.payload or e.error or "").splitlines()[0] if (e.payload or e.error) else ""
            return f"{seq} tool {safe(e.name)} {status} {e.duration_ms:.0f} ms: {safe(one_line(first))}"
        if isinstance(e, StatePatched):
            parts = []
            for op in e.ops:
                if isinstance(op, AppendKnownFacts):
                    parts += [f"fact {f.key}" for f in op.facts]
                else:
                    parts.append(op.op)
            return f"{seq} [magenta]patched[/magenta] {safe(one_line(', '.join(parts) or 'no change'))}"
        if isinstance(e, PatchRejected):
            return f"{seq} [yellow]patch rejected[/yellow]: {safe(one_line(e.error))}"
        if isinstance(e, StepStarted):
            return f"{seq} step {safe(e.step_id)} started (attempt {e.attempt})"
        if isinstance(e, StepSucceeded):
            return f"{seq} step {safe(e.step_id)} [green]succeeded[/green]"
        if isinstance(e, StepFailed):
            return f"{seq} step {safe(e.step_id)} [red]failed[/red]: {safe(one_line(e.error))}"
        if isinstance(e, StepSkipped):
            return f"{seq} step {safe(e.step_id)} skipped: {safe(one_line(e.reason))}"
        if isinstance(e, RunFinished):
            colour = "green" if e.status == "succeeded" else "red"
            reason = f": {safe(one_line(e.reason))}" if e.reason else ""
            return f"{seq} [bold {colour}]run {e.status}[/bold {colour}]{reason}"
        return None


def _args(arguments: dict[str, Any]) -> str:
    return one_line(", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items()), limit=80)


def table(console: Console, rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> None:
    """Print rows as a table of the given columns (values escaped, long text clipped)."""
    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold", no_wrap=c in ("id", "run_id"))  # ids stay copy-pastable
    for row in rows:
        t.add_row(*(safe(one_line("" if row.get(c) is None else str(row.get(c)), limit=80)) for c in columns))
    if console.is_terminal:
        console.print(t)
        return
    saved = console.width
    console.width = 10_000  # off a terminal no cell is wrapped: each row stays on one line
    try:
        console.print(t)
    finally:
        console.width = saved
