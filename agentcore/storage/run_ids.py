"""Run ids: how new ones are made, and what every store takes as the id of a new run.

A run id is a key that appears in every row of the run, in URLs, in PostgreSQL notifications
(``NOTIFY`` payloads hold at most 7999 bytes) and on terminal lines. Every store (memory, SQLite,
PostgreSQL) refuses, with ``ConfigError``, a new run id that one of them could not hold or send, so
any run copies between any two of them: one with NUL (U+0000, which PostgreSQL's text cannot
store), one that is not valid Unicode (a lone surrogate, which no UTF-8 encoder writes) and one
longer than ``MAX_RUN_ID_BYTES``. Runs created before a rule existed stay readable and writable;
the rules apply where an id is chosen: a new run, a fork, a submitted run, a copy, a trace import
(which gives such a run a fresh id) and the command line.
"""

from __future__ import annotations

import uuid

from agentcore.errors import ConfigError

MAX_RUN_ID_BYTES = 512
"""The longest run id any store takes, in UTF-8 bytes (128 to 512 characters).

Generous: our own ids (``new_run_id``) are 20 bytes, and a key chosen by a user (a ticket URL, a
``tenant/session/turn`` path, a UUID with a prefix) fits many times over. Small enough that a run id
stays well inside every limit it meets: a PostgreSQL notification payload (8000 bytes) carrying a run
id, a plan step id (at most 200 characters, so 800 bytes) and an attempt number; a B-tree index entry
(PostgreSQL refuses entries over about 2700 bytes, and run ids key several indexes); a URL or a
terminal line that a person still reads."""

_SHOWN = 40
"""How many characters of a refused id an error message shows."""


def new_run_id() -> str:
    """A fresh run id (sortable by creation time is not promised)."""
    return "run_" + uuid.uuid4().hex[:16]


def short(value: str, limit: int = _SHOWN) -> str:
    """``repr`` of ``value``'s first ``limit`` characters, with ``…`` when it is longer (for messages)."""
    return repr(value[:limit]) + ("…" if len(value) > limit else "")


def no_nul(value: str, what: str) -> None:
    """``ConfigError`` for a run id or task holding NUL (U+0000): PostgreSQL's text cannot store it,
    so no store takes it (a run must copy between databases). An event's strings may hold NUL."""
    if "\x00" in value:
        raise ConfigError(
            f"the {what} holds a NUL character (U+0000) at index {value.index(chr(0))}, which PostgreSQL cannot "
            f"store in text, so no agentcore store takes it: remove it ({what} {short(value, 80)})"
        )


def surrogate_at(value: str) -> int | None:
    """Index of the first lone surrogate (U+D800..U+DFFF) in ``value``, or ``None`` when it is valid Unicode."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        return e.start
    return None


def check_text(value: str, what: str) -> None:
    """Refuse text a store keeps in a text column of the run's row (a task, a queued run's spec):
    it must be valid Unicode (UTF-8 encodable, which no lone surrogate is) and hold no NUL.

    Raises:
        ConfigError: naming ``what``, the bad character and its index, and what to do.
    """
    index = surrogate_at(value)
    if index is not None:
        raise ConfigError(
            f"the {what} is not valid Unicode text (a lone surrogate U+{ord(value[index]):04X} at index {index}, "
            "what Python makes of bytes that are not UTF-8), which no database can store, so no agentcore store "
            f"takes it: decode the text's bytes as UTF-8 (errors='replace' keeps the rest) or remove the character "
            f"({what} {value[:80]!a})"
        )
    no_nul(value, what)


def check_json_text(value: object, what: str) -> None:
    """``check_text`` on every string of a JSON value (object keys too), such as a queued run's spec:
    a NUL (``\\u0000`` in the JSON) makes PostgreSQL's ``->>`` refuse the whole object, and a lone
    surrogate (``\\ud800``) makes its JSON type refuse it, so nothing with either is stored.

    Raises:
        ConfigError: naming where in ``value`` the string is (``spec['tools'][2]``).
    """
    stack: list[tuple[object, tuple[object, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or surrogate_at(item) is not None:
                check_text(item, what + "".join(f"[{p!a}]" for p in path))
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and ("\x00" in key or surrogate_at(key) is not None):
                    check_text(key, "key of " + what + "".join(f"[{p!a}]" for p in path))
                stack.append((child, (*path, key)))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, (*path, i)) for i, child in enumerate(item))


def run_id_problem(run_id: str) -> str | None:
    """Why no store takes ``run_id`` as a new run's id (a sentence for a message), or ``None``.

    The checks of ``check_run_id``; for callers that do something else than refuse (trace import
    gives such a run a fresh id, the command line makes it a usage error)."""
    if not isinstance(run_id, str):
        return f"a run id must be a string, got {type(run_id).__name__}"
    if "\x00" in run_id:
        return (
            f"the run id {short(run_id)} holds a NUL character (U+0000) at index {run_id.index(chr(0))}, which "
            "PostgreSQL cannot store in text"
        )
    try:
        size = len(run_id.encode("utf-8"))
    except UnicodeEncodeError as e:
        return (
            f"the run id {short(run_id)} is not valid Unicode text (a lone surrogate at index {e.start}), which "
            "no database can store"
        )
    if size > MAX_RUN_ID_BYTES:
        return (
            f"the run id {short(run_id)} is {size} bytes long (UTF-8); run ids are at most {MAX_RUN_ID_BYTES} "
            "bytes (they key every row of the run and travel in PostgreSQL notifications)"
        )
    return None


def check_run_id(run_id: str) -> None:
    """Refuse a new run's id that some store could not hold or send.

    Raises:
        ConfigError: ``run_id`` is not a string, holds NUL, is not valid Unicode, or is longer than
            ``MAX_RUN_ID_BYTES`` in UTF-8 (the message gives the limit, the id's length and only its
            first characters).
    """
    problem = run_id_problem(run_id)
    if problem is not None:
        raise ConfigError(f"{problem}, so no agentcore store takes it: choose another run id (or none, for a new one)")
