"""What may be shown of an OTLP receiver: its URL without secrets, and its failure without its echo.

A receiver's URL may carry credentials (``https://user:token@host/v1/traces``, or a token in the
query, ``?api_key=...``), and an error answer may echo the request's headers (``Authorization``).
Messages and ``--json`` print the URL as ``agentcore.core.text.shown_url`` shows it (the password
or a token user-info, and every query value, as ``***``). ``agentcore.core.text.redact_secrets`` takes the URL's secrets and the ``--header`` values
(``header_secrets``) out of the exporter's last words before ``export_otlp`` puts them into its one
error.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ("header_secrets",)


def header_secrets(headers: Mapping[str, str] | None) -> list[str]:
    """What of ``--header`` values may not be shown: each value, and each of its words (the token of
    ``Bearer <token>``, which a receiver may echo alone); ``redact_secrets`` leaves out those under
    ``MIN_SECRET_CHARS``."""
    found: set[str] = set()
    for value in (headers or {}).values():
        whole = value.strip()
        found.add(whole)
        found.update(whole.split())
    return sorted(found, key=lambda w: (-len(w), w))
