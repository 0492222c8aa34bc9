"""Terminal rendering for the CLI: live progress of a run and tables (the only other rich user)."""

from __future__ import annotations

import functools
import json
import string
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from agentcore.cli.support import print_json, safe
from agentcore.core.events import (
    BaseEvent,
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
        how = _PROGRESS.get(e.type)
        if how is None:
            return None
        body = _MARKUP.format(how, e=e) if isinstance(how, str) else how(e)
        return None if body is None else f"[dim]{e.seq:>4}[/dim] {body}"


class _Markup(string.Formatter):
    """Fills a rich-markup template with run data: every field made safe, ``{x:line}`` also on one clipped line."""

    def format_field(self, value: Any, format_spec: str) -> str:
        text = str(value)
        return safe(one_line(text) if format_spec == "line" else text)


_MARKUP = _Markup()


def _failed_call_line(e: Any) -> str | None:
    if e.ok:
        return None
    return _MARKUP.format(
        "[yellow]{e.role} call failed[/yellow] (attempt {e.attempt}): {err:line}", e=e, err=e.error or ""
    )


def _decision_line(e: Any) -> str:
    d = e.decision
    if d.kind == "tool_calls":
        names = ", ".join(f"{c.name}({_args(c.arguments)})" for c in d.tool_calls)
        return f"[cyan]decided[/cyan] call {safe(names)}"
    if d.kind == "ask_user":
        return _MARKUP.format("[cyan]decided[/cyan] ask the user: {q:line}", q=d.question or "")
    return "[cyan]decided[/cyan] reply"


def _tool_line(e: Any) -> str:
    status = "[green]ok[/green]" if e.ok else "[red]error[/red]"
    first = (e.payload or e.error or "").splitlines()[0] if (e.payload or e.error) else ""
    return f"tool {safe(e.name)} {status} {e.duration_ms:.0f} ms: {safe(one_line(first))}"


def _patch_line(e: Any) -> str:
    parts = []
    for op in e.ops:
        parts += [f"fact {f.key}" for f in op.facts] if isinstance(op, AppendKnownFacts) else [op.op]
    return _MARKUP.format("[magenta]patched[/magenta] {what:line}", what=", ".join(parts) or "no change")


def _finished_line(e: Any) -> str:
    colour = "green" if e.status == "succeeded" else "red"
    reason = _MARKUP.format(": {r:line}", r=e.reason) if e.reason else ""
    return f"[bold {colour}]run {e.status}[/bold {colour}]{reason}"


_PROGRESS: dict[str, str | Callable[[Any], str | None]] = {
    # event type -> a template over the event ``e`` (see ``_Markup``), or a function of it; no row: quiet
    "run_started": "[bold]run started[/bold] {e.task:line}",
    "llm_called": _failed_call_line,
    "decided": _decision_line,
    "tool_finished": _tool_line,
    "state_patched": _patch_line,
    "patch_rejected": "[yellow]patch rejected[/yellow]: {e.error:line}",
    "step_started": "step {e.step_id} started (attempt {e.attempt})",
    "step_succeeded": "step {e.step_id} [green]succeeded[/green]",
    "step_failed": "step {e.step_id} [red]failed[/red]: {e.error:line}",
    "step_skipped": "step {e.step_id} skipped: {e.reason:line}",
    "run_finished": _finished_line,
}


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
