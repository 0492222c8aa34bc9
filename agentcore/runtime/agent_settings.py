"""``Agent``'s settings: checking them, the ones a run records, and the budgets that end a run.

``Agent.config()`` records ``RECORDED_SETTINGS`` in ``RunStarted.config`` so that a recorded run
can be set up again (``Agent.recorded_settings``, used by replay). The budgets (``max_steps``,
``max_tokens``, ``max_cost_usd``) are checked before each controller turn by ``budget_reason``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentcore.core.fold import RunState
from agentcore.errors import ConfigError
from agentcore.tools.runner import ToolRunner

__all__ = ("RECORDED_SETTINGS", "DEFAULT_PAYLOAD_CHARS", "budget_reason", "check_settings", "payload_chars_for")

RECORDED_SETTINGS = (
    "max_steps", "max_tokens", "max_output_retries", "max_patch_retries", "payload_chars", "metadata", "prices",
    "max_cost_usd",
)  # fmt: skip
"""``Agent`` keyword arguments that ``Agent.config()`` records in ``RunStarted.config``."""

DEFAULT_PAYLOAD_CHARS = 2000
"""Characters of each tool output the models see, unless set (or the given runner's)."""


def payload_chars_for(payload_chars: int | None, tools: Sequence[Any], runner: ToolRunner | None) -> int:
    """The payload size an agent uses: ``payload_chars``, else the runner's, else the default.

    Raises:
        ConfigError: ``runner`` is not a ``ToolRunner``, both ``tools`` and ``runner`` are given,
            or ``payload_chars`` differs from the runner's.
    """
    if runner is None:
        return DEFAULT_PAYLOAD_CHARS if payload_chars is None else payload_chars
    if not isinstance(runner, ToolRunner):
        raise ConfigError(f"runner must be a ToolRunner, got {runner!r}")
    if list(tools):
        raise ConfigError("give the agent tools=[...] or runner=ToolRunner(...), not both")
    if payload_chars is not None and payload_chars != runner.payload_chars:
        raise ConfigError(
            f"payload_chars={payload_chars!r} differs from the runner's {runner.payload_chars}; set it on the runner"
        )
    return runner.payload_chars


def check_settings(
    *,
    max_steps: Any,
    max_output_retries: Any,
    max_patch_retries: Any,
    payload_chars: Any,
    max_tokens: Any,
    models: Sequence[tuple[str, Any]],
    reply_validators: Sequence[Any],
) -> None:
    """Refuse settings an agent cannot run with.

    Raises:
        ConfigError: a count is not an integer >= 1, ``max_tokens`` is neither ``None`` nor one, a
            model (given as ``(argument name, model)``) has no async ``complete``, or a reply
            validator is not callable.
    """
    for name, value in (
        ("max_steps", max_steps),
        ("max_output_retries", max_output_retries),
        ("max_patch_retries", max_patch_retries),
        ("payload_chars", payload_chars),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ConfigError(f"max_tokens must be None or an integer >= 1, got {max_tokens!r}")
    for role, model in models:
        if model is not None and not callable(getattr(model, "complete", None)):
            raise ConfigError(f"{role} must be a ChatModel (with async complete()), got {model!r}")
    for check in reply_validators:
        if not callable(check):
            raise ConfigError(f"reply_validators must be functions (reply, state) -> reason or None, got {check!r}")


def budget_reason(state: RunState, *, max_steps: int, max_tokens: int | None, max_cost_usd: float | None) -> str | None:
    """Why the run must stop before another controller turn (``"budget: ..."``), or ``None``."""
    if state.decisions >= max_steps:
        return f"budget: max_steps={max_steps} decisions made without a reply"
    if max_tokens is not None and state.tokens >= max_tokens:
        return f"budget: {state.tokens} tokens used, max_tokens={max_tokens}"
    if max_cost_usd is not None and state.cost_usd >= max_cost_usd:
        return f"budget: ${state.cost_usd:.6f} spent, max_cost_usd={max_cost_usd}"
    return None
