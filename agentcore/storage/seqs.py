"""The one rule every store applies to a seq given to a public read (``state_at``, ``diff``,
``read``'s ``after``/``upto``) or to ``fork``'s ``at_seq``: an ``int`` that is not a ``bool``.

Without it the stores disagreed: SQLite compared ``True`` as 1 and ``"3"`` as text, PostgreSQL
refused the parameter with "invalid input syntax for type integer", reported as an outage.
"""

from __future__ import annotations

from agentcore.errors import ConfigError


def check_seq(value: object, name: str) -> None:
    """Raise ``ConfigError`` (naming ``name`` and the type) unless ``value`` is an ``int`` and not a ``bool``.

    A seq is a position in a run's log (1 is its first event, 0 before it); range checks are the caller's."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{name} must be an int (a seq), got {type(value).__name__} {value!r}: pass the event's seq as an "
            "integer (int(...) converts text from a command line)"
        )


def check_range(after: object, upto: object) -> None:
    """``check_seq`` for a read's ``after`` and its ``upto`` (``None``: up to the newest event)."""
    check_seq(after, "after")
    if upto is not None:
        check_seq(upto, "upto")
