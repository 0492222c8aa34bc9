"""Reply validators: checks a controller's final reply must pass before a run may succeed.

A validator is ``(reply, state) -> str | None``: the reason the reply is refused, or ``None``. A
refused reply goes back to the model with the reason, like any unusable answer, at most
``Agent(max_output_retries=...)`` times; then the run fails with the reason. ``Agent`` always
applies ``not_a_prompt_echo``; pass more with ``Agent(reply_validators=[...])``.
"""

from __future__ import annotations

import re

from agentcore.core.fold import RunState

__all__ = ("cites_a_known_location", "known_locations", "not_a_prompt_echo", "says_nothing_was_found")

_PROMPT_HEADINGS = ("# Task\n", "# Progress\n", "# Known facts (", "# Recent tool results", "# Open questions\n")
_LOCATION = re.compile(r"(?<![\w./-])(?P<path>\w[\w./-]*\.\w+):(?P<line>\d+)\b")
_NOTHING = re.compile(
    r"\b(?:no|nothing|none|not|never|couldn't|could not|cannot|can't|didn't|did not|unable to|there (?:is|are) no)\b"
    r"[^.!?\n]{0,120}?\b(?:found|find|exists?|defined|definitions?|match(?:es|ing)?|uses?|used|usages?|results?|"
    r"occurrences?|references?|read)\b"
    r"|\b(?:found|find|finds|returned|gave|has|have)\s+(?:no|nothing|none|zero)\b"
    r"|\bthere (?:is|are|was|were) no\b|\b(?:does|do|did) not exist\b|\bnowhere\b",
    re.IGNORECASE,
)


def not_a_prompt_echo(reply: str, state: RunState) -> str | None:
    """Refuse a reply that repeats the controller's own prompt (two or more of its section headings)."""
    del state
    echoed = [h.strip() for h in _PROMPT_HEADINGS if h in reply]
    if len(echoed) >= 2:
        return (
            f"it repeats your instructions' sections ({', '.join(echoed)}) instead of answering; "
            "answer the task itself, in your own words"
        )
    return None


def known_locations(state: RunState) -> set[str]:
    """The ``path:line`` places named by the run's known facts, and the paths of ``file:<path>`` facts."""
    places: set[str] = set()
    for key, fact in state.known_facts.items():
        for match in _LOCATION.finditer(fact.value):
            places.add(f"{match['path']}:{match['line']}")
        if key.startswith("file:") and len(key) > 5:
            places.add(key[5:])
    return places


def says_nothing_was_found(reply: str) -> bool:
    """Whether ``reply`` says plainly that nothing was found (``"I found no uses of x"``, ``"x is not defined"``)."""
    return _NOTHING.search(reply) is not None


def cites_a_known_location(reply: str, state: RunState) -> str | None:
    """The code-search agent's check: the reply cites a place a known fact names, or says plainly
    that nothing was found. A reply citing only places no fact names is refused too."""
    places = known_locations(state)
    if any(place in reply for place in places):
        return None
    if says_nothing_was_found(reply):
        return None
    if places:
        shown = ", ".join(sorted(places)[:5])
        return (
            f"it cites no place the known facts name (for example {shown}); cite the file:line your "
            "answer rests on, or say plainly that nothing was found"
        )
    return (
        "no fact names a place in the code yet, so the reply cannot cite one; search first, "
        "or say plainly that nothing was found"
    )
