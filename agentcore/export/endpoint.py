"""What may be shown of an OTLP receiver: its URL without secrets, and its failure without its echo.

A receiver's URL may carry credentials (``https://user:token@host/v1/traces``, or a token in the
query, ``?api_key=...``), and an error answer may echo the request's headers (``Authorization``).
``shown_endpoint`` is the URL as messages and ``--json`` print it: the password and every query
value replaced by ``***``. ``quiet_exporter_logs`` keeps the OpenTelemetry exporter's own log lines
(retries, "Failed to export ... reason: <the receiver's body>") off stderr while an export runs and
hands back only the HTTP status codes it saw, which ``export_otlp`` puts into its one error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from agentcore.core.text import shown_url

__all__ = ("quiet_exporter_logs", "shown_endpoint")

_EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
_FAILED_WITH_CODE = "Failed to export %s batch code: %s, reason: %s"


def shown_endpoint(endpoint: str) -> str:
    """``endpoint`` with the user-info's password and every query value shown as ``***``.

    ``http://u:pw@h:4318/v1/traces?api_key=k&x`` -> ``http://u:***@h:4318/v1/traces?api_key=***&x``
    (``agentcore.core.text.shown_url``). Never raises.
    """
    return shown_url(endpoint)


class _StatusCodes(logging.Handler):
    """Keeps the HTTP status codes of the exporter's failure records, and nothing of their text."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.codes: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == _FAILED_WITH_CODE and len(args) >= 2 and isinstance(args[1], int):
            self.codes.append(args[1])


@contextmanager
def quiet_exporter_logs() -> Iterator[list[int]]:
    """While the block runs, the OTLP/HTTP span exporter logs nothing to stderr.

    Yields:
        A list that receives the HTTP status codes of the receiver's refusals (empty when it could
        not be reached at all).
    """
    logger = logging.getLogger(_EXPORTER_LOGGER)
    handler = _StatusCodes()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.codes
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
