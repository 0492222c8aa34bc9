"""Keeping secrets out of the log: every event, request body and tool output of a run passes here.

``redactor(models)`` combines the ``redact`` of each model that holds a secret (``Redacting``,
e.g. ``OpenAIChatModel`` and its API key), whatever the secret came from (an argument or an
environment variable). ``RunLog`` applies it to each event and request body before they are
stored; ``RedactingArtifacts`` applies it to the raw tool outputs the ``ToolRunner`` stores. So a
server that echoes the key in a 200 completion, a tool that prints it, or a task that quotes it
never puts it into the database, a trace, the HTML view or the terminal.

The environment's ``OPENAI_API_KEY`` is a secret of the machine whatever model a run uses: an
offline or scripted run whose tool reads a ``.env`` file holding it (or whose task quotes it)
records ``[redacted]`` in its place too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

from agentcore.core.events import ArtifactRef
from agentcore.core.text import MIN_SECRET_CHARS, redact_secrets
from agentcore.models.base import Redacting
from agentcore.storage.artifacts import BYTES, ArtifactMixin, ArtifactStore

__all__ = ("ENV_SECRETS", "RedactingArtifacts", "Redactor", "environment_secrets", "redactor")

ENV_SECRETS = ("OPENAI_API_KEY",)
"""Environment variables whose values are secrets, redacted from every run of this process."""

MIN_ENV_SECRET_CHARS = MIN_SECRET_CHARS
"""Shorter values (``x``, ``dummy`` for a local server) are placeholders, not keys: not redacted."""

Redactor = Callable[[str], str]
"""Returns its text with every secret replaced."""


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of ``ENV_SECRETS`` set in ``environ`` (``os.environ``), at least 8 characters long."""
    env = os.environ if environ is None else environ
    values = (env.get(name, "") for name in ENV_SECRETS)
    return [v for v in values if len(v) >= MIN_ENV_SECRET_CHARS]


def redactor(models: Iterable[object], environ: Mapping[str, str] | None = None) -> Redactor | None:
    """One function applying the ``redact`` of every ``Redacting`` model and replacing each
    ``environment_secrets(environ)`` value by ``[redacted]``; ``None`` when there is no secret."""
    unique = {id(m): m for m in models if isinstance(m, Redacting)}
    steps: list[Redactor] = [m.redact for m in unique.values()]
    secrets = environment_secrets(environ)
    if secrets:
        steps.append(lambda text: redact_secrets(text, secrets))
    if not steps:
        return None

    def redact(text: str) -> str:
        for step in steps:
            text = step(text)
        return text

    return redact


class RedactingArtifacts(ArtifactMixin):
    """An ``ArtifactStore`` that redacts the UTF-8 text of what it stores (bytes that are not
    UTF-8 are stored as they are); the typed helpers (``put_json``...) come from ``ArtifactMixin``."""

    def __init__(self, inner: ArtifactStore, redact: Redactor) -> None:
        self.inner = inner
        self.redact = redact

    def _clean(self, data: bytes) -> bytes:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return data
        clean = self.redact(text)
        return data if clean == text else clean.encode("utf-8")

    def put(self, data: bytes, media_type: str = BYTES) -> ArtifactRef:
        return self.inner.put(self._clean(data), media_type)

    def info(self, ident: str) -> ArtifactRef:
        return self.inner.info(ident)

    def read(self, ident: str, offset: int = 0, length: int | None = None) -> bytes:
        return self.inner.read(ident, offset, length)

    def exists(self, ident: str) -> bool:
        return self.inner.exists(ident)

    def put_many(self, items: Iterable[tuple[bytes, str]]) -> list[ArtifactRef]:
        return self.inner.put_many((self._clean(data), media_type) for data, media_type in items)
