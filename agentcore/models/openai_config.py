"""``OpenAIChatModel``'s settings: the model name, base URL and API key (arguments first, then the
environment), and the range checks of the other settings. No I/O beyond reading the environment.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from agentcore.core.plans import MAX_DELAY_S
from agentcore.core.text import shown_url
from agentcore.errors import ConfigError

__all__ = ("DEFAULT_BASE_URL", "check_settings", "endpoint")

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def endpoint(model: str | None, api_key: str | None, base_url: str | None) -> tuple[str, str, str | None]:
    """The model name, base URL and API key, from the arguments, then the environment.

    Raises:
        ConfigError: no model name, neither a key nor a base URL, or a base URL that is not http(s).
    """
    resolved = model or os.environ.get("AGENTCORE_MODEL") or os.environ.get("OPENAI_MODEL")
    if not resolved:
        raise ConfigError("no model name: pass OpenAIChatModel(model=...) or set AGENTCORE_MODEL (or OPENAI_MODEL)")
    url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    key = api_key or os.environ.get("OPENAI_API_KEY") or None
    if key is None and url is None:
        raise ConfigError(
            "no API key: set OPENAI_API_KEY (or pass api_key=...); for a local OpenAI-compatible "
            "server that needs no key, set OPENAI_BASE_URL (e.g. http://127.0.0.1:8080/v1) instead"
        )
    base = (url or DEFAULT_BASE_URL).rstrip("/")
    try:
        parts = urlsplit(base)
    except ValueError:  # an unclosed IPv6 bracket
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"base URL {shown_url(base)!r} is not an http(s) URL; set OPENAI_BASE_URL (or base_url=) "
            "to something like http://127.0.0.1:8080/v1"
        )
    return resolved, base, key


def check_settings(
    tool_mode: str, schema_mode: str, timeout: float, max_attempts: int, backoff_base: float, backoff_cap: float
) -> None:
    """Raises ``ConfigError`` naming the first setting out of range."""
    if tool_mode not in ("auto", "native", "json"):
        raise ConfigError(f"tool_mode must be 'auto', 'native' or 'json', got {tool_mode!r}")
    if schema_mode not in ("auto", "json_schema", "json_object"):
        raise ConfigError(f"schema_mode must be 'auto', 'json_schema' or 'json_object', got {schema_mode!r}")
    if not timeout > 0:
        raise ConfigError(f"timeout must be > 0 seconds, got {timeout}")
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ConfigError(f"max_attempts must be >= 1, got {max_attempts!r}; pass a whole number of attempts")
    for name, value in (("backoff_base", backoff_base), ("backoff_cap", backoff_cap)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_DELAY_S:
            raise ConfigError(f"{name} must be a number of seconds from 0 to {MAX_DELAY_S:g} (one year), got {value!r}")
    if backoff_cap < backoff_base:
        raise ConfigError(
            f"need 0 <= backoff_base <= backoff_cap, got backoff_base={backoff_base}, backoff_cap={backoff_cap}"
        )
