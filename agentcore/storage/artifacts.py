"""Content-addressed artifacts: raw tool outputs and large request bodies.

An artifact's id is ``sha256:<hex>`` of its bytes, so the same output is stored once however many
events point at it. Events carry only an ``ArtifactRef`` (id, size, media type).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from agentcore.core.events import ArtifactRef
from agentcore.core.values import canonical_json, sha256_id
from agentcore.errors import ArtifactNotFound, ConfigError

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
BYTES = "application/octet-stream"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def check_id(ident: str) -> str:
    """Accept ``sha256:<64 hex>`` (or a bare 64-hex digest) and return the prefixed form."""
    if not isinstance(ident, str):
        raise ArtifactNotFound(f"artifact id must be a string, got {type(ident).__name__}")
    bare = ident.removeprefix("sha256:")
    if _HEX64.fullmatch(bare) is None:
        raise ArtifactNotFound(f"{ident!r} is not an artifact id (expected 'sha256:' and 64 hex digits)")
    return "sha256:" + bare


@runtime_checkable
class ArtifactStore(Protocol):
    """Where raw bytes live, by content. ``MemoryArtifactStore`` and ``SQLiteArtifactStore`` implement it.

    Ids are ``sha256:<64 hex>`` of the bytes; a bare 64-hex digest is accepted too. Reading an id
    that is not stored raises ``ArtifactNotFound``. ``ArtifactMixin`` supplies every method but
    ``put``, ``info``, ``read`` and ``exists`` from those four.
    """

    def put(self, data: bytes, media_type: str = BYTES) -> ArtifactRef:
        """Store bytes (once) and return their reference."""
        ...

    def info(self, ident: str) -> ArtifactRef:
        """The reference of a stored artifact; ``ArtifactNotFound`` if absent."""
        ...

    def read(self, ident: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes ``offset`` to ``offset + length`` of an artifact (all of it by default)."""
        ...

    def exists(self, ident: str) -> bool:
        """Whether the artifact is stored (``False`` for a malformed id too)."""
        ...

    def put_many(self, items: Iterable[tuple[bytes, str]]) -> list[ArtifactRef]:
        """Store several ``(bytes, media_type)`` pairs (in one transaction where the store can)."""
        ...

    def put_text(self, text: str, media_type: str = TEXT) -> ArtifactRef:
        """Store text as UTF-8."""
        ...

    def put_json(self, obj: Any) -> ArtifactRef:
        """Store a JSON value in canonical form (sorted keys, no spaces)."""
        ...

    def get(self, ident: str) -> bytes:
        """All bytes of an artifact."""
        ...

    def get_text(self, ident: str) -> str:
        """An artifact decoded as UTF-8 (undecodable bytes replaced)."""
        ...

    def get_json(self, ident: str) -> Any:
        """An artifact parsed as JSON."""
        ...


class ArtifactMixin:
    """Typed helpers over ``put``/``read`` shared by every artifact store."""

    def put(self, data: bytes, media_type: str = BYTES) -> ArtifactRef:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, ident: str, offset: int = 0, length: int | None = None) -> bytes:  # pragma: no cover
        raise NotImplementedError

    def put_many(self, items: Iterable[tuple[bytes, str]]) -> list[ArtifactRef]:
        """Store several ``(bytes, media_type)`` pairs; stores that can, do it in one transaction."""
        return [self.put(data, media_type) for data, media_type in items]

    def put_text(self, text: str, media_type: str = TEXT) -> ArtifactRef:
        """Store text as UTF-8."""
        return self.put(text.encode("utf-8"), media_type)

    def put_json(self, obj: Any) -> ArtifactRef:
        """Store a JSON value in canonical form."""
        return self.put(canonical_json(obj).encode("utf-8"), JSON)

    def get(self, ident: str) -> bytes:
        """All bytes of an artifact."""
        return self.read(ident)

    def get_text(self, ident: str) -> str:
        """An artifact decoded as UTF-8 (undecodable bytes replaced)."""
        return self.read(ident).decode("utf-8", errors="replace")

    def get_json(self, ident: str) -> Any:
        """An artifact parsed as JSON."""
        return json.loads(self.read(ident))


class MemoryArtifactStore(ArtifactMixin):
    """Artifacts in a dict; for tests and throwaway runs."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, str]] = {}

    def put(self, data: bytes, media_type: str = BYTES) -> ArtifactRef:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ConfigError(f"put() takes bytes, got {type(data).__name__}; use put_text or put_json")
        data = bytes(data)
        ident = sha256_id(data)
        if ident not in self._data:
            self._data[ident] = (data, media_type)
        stored_type = self._data[ident][1]
        return ArtifactRef(id=ident, size=len(data), media_type=stored_type)

    def info(self, ident: str) -> ArtifactRef:
        data, media_type = self._get(ident)
        return ArtifactRef(id=check_id(ident), size=len(data), media_type=media_type)

    def read(self, ident: str, offset: int = 0, length: int | None = None) -> bytes:
        data, _ = self._get(ident)
        if offset < 0 or (length is not None and length < 0):
            raise ConfigError(f"offset and length must be >= 0, got {offset} and {length}")
        return data[offset : None if length is None else offset + length]

    def exists(self, ident: str) -> bool:
        try:
            return check_id(ident) in self._data
        except ArtifactNotFound:
            return False

    def _get(self, ident: str) -> tuple[bytes, str]:
        key = check_id(ident)
        try:
            return self._data[key]
        except KeyError:
            raise ArtifactNotFound(f"no artifact {key} in this store") from None
