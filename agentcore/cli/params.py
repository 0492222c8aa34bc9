"""Command-line parameter types: free text that must be UTF-8, run ids and seqs.

Each refuses bad input as a click usage error (exit code 2) that says what to pass instead.
"""

from __future__ import annotations

from typing import Any

import click

from agentcore.storage.run_ids import run_id_problem

__all__ = ("RUN_ID", "SEQ", "UTF8_TEXT", "RunIdType", "SeqType", "Utf8Text", "utf8_problem")


def utf8_problem(text: str) -> str | None:
    """Why ``text`` (from the command line) cannot be stored, or ``None``: bytes that are not UTF-8
    reach Python as lone surrogates, which no UTF-8 encoder (SQLite, JSON, a terminal) accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = text[e.start : e.end].encode("utf-8", "surrogateescape")
        return f"holds bytes that are not valid UTF-8 ({bad!r} at character {e.start}); pass UTF-8 text"
    return None


class Utf8Text(click.ParamType):
    """Free text (a question, an answer) that must be valid UTF-8 and not blank; anything else is a usage error."""

    name = "TEXT"
    blank_ok = False

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        problem = utf8_problem(text)
        if problem:
            self.fail(problem, param, ctx)
        if not self.blank_ok and not text.strip():
            self.fail("is empty or only spaces: give the text in quotes", param, ctx)
        return text


class RunIdType(Utf8Text):
    """A run id, or ``last`` for the newest run (resolved against the store by ``with_store``)."""

    name = "RUN_ID"
    blank_ok = True  # refused below, with the run id's own hint

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = super().convert(value, param, ctx)
        if not text.strip():
            self.fail("a run id cannot be empty (use `agentcore runs` to list them, or `last`)", param, ctx)
        problem = run_id_problem(text)  # NUL, or longer than any store takes: it names no run
        if problem:
            self.fail(f"{problem}, so it names no run (use `agentcore runs` to list them, or `last`)", param, ctx)
        return text


class SeqType(click.ParamType):
    """A seq: 0 (the empty state) or the number of an event; negative numbers are refused clearly."""

    name = "SEQ"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            seq = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a seq: give a whole number (0 = the empty state)", param, ctx)
        if seq < 0:
            self.fail(f"{seq} is negative: seqs count events from 1 (0 = the empty state)", param, ctx)
        return seq


RUN_ID = RunIdType()
SEQ = SeqType()
UTF8_TEXT = Utf8Text()
