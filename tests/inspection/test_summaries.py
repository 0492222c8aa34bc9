"""One-line views of events: the inspection summary and the CLI's live progress line, for every event type."""

from __future__ import annotations

import re

from hypothesis import given, settings

from agentcore.cli.render import Progress
from agentcore.core.events import EVENT_TYPES, BaseEvent
from agentcore.inspection.queries import summarize
from tests.support.strategies import events

QUIET = {"tool_started", "user_messaged"}
"""Event types the progress view leaves out (a call is shown when it finishes; the user typed the answer)."""


def test_every_event_type_has_its_own_summary_and_progress_line() -> None:
    from agentcore.cli.render import _PROGRESS
    from agentcore.inspection.queries import _SUMMARIES

    assert set(_SUMMARIES) == set(EVENT_TYPES)
    assert set(_PROGRESS) == set(EVENT_TYPES) - QUIET


@settings(max_examples=300)
@given(events())
def test_a_summary_is_one_line_within_its_limit(event: BaseEvent) -> None:
    for limit in (120, 20):
        text = summarize(event, limit)
        assert len(text) <= limit and "\n" not in text and text


@settings(max_examples=300)
@given(events())
def test_a_progress_line_starts_with_the_seq_and_escapes_run_data(event: BaseEvent) -> None:
    line = Progress.line(event)
    if event.type in QUIET or (event.type == "llm_called" and getattr(event, "ok", False)):
        assert line is None
        return
    assert line is not None and line.startswith(f"[dim]{event.seq:>4}[/dim] ")
    assert "\n" not in line
    # run data never opens a markup tag of its own: every "[" it brings is escaped ("\[")
    tags = re.findall(r"(?<!\\)\[(/?[a-z ]+)\]", line)
    assert set(tags) <= {"dim", "/dim", "bold", "/bold", "cyan", "/cyan", "yellow", "/yellow", "green", "/green",
                         "red", "/red", "magenta", "/magenta", "bold green", "/bold green", "bold red", "/bold red"}  # fmt: skip
