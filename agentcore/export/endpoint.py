"""What may be shown of an OTLP receiver: its URL without secrets, and its failure without its echo.

A receiver's URL may carry credentials (``https://user:token@host/v1/traces``, or a token in the
query, ``?api_key=...``), and an error answer may echo the request's headers (``Authorization``).
Messages and ``--json`` print the URL as ``agentcore.core.text.shown_url`` shows it (the password
or a token user-info, and every query value, as ``***``). ``scrubbed`` takes the URL's secrets and the ``--header`` values
(``header_secrets``) out of the exporter's last words before ``export_otlp`` puts them into its one
error.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ("header_secrets", "scrubbed")


def header_secrets(headers: Mapping[str, str] | None) -> list[str]:
    """What of ``--header`` values may not be shown: each value, and each of its words of 8
    characters or more (the token of ``Bearer <token>``, which a receiver may echo alone)."""
    found: set[str] = set()
    for value in (headers or {}).values():
        whole = value.strip()
        if len(whole) >= 4:
            found.add(whole)
        found.update(word for word in whole.split() if len(word) >= 8)
    return sorted(found, key=lambda w: (-len(w), w))


def scrubbed(text: str, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` (longest first) replaced by ``[redacted]``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text
