"""``PostgresArtifactStore``: raw bytes kept by ``sha256`` in the ``artifacts`` table, once, read in ranges."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentcore.core.events import ArtifactRef
from agentcore.core.values import sha256_id
from agentcore.errors import ArtifactNotFound, ConfigError
from agentcore.storage.artifacts import BYTES, ArtifactMixin, check_id
from agentcore.storage.postgres.connection import PgConnection
from agentcore.storage.sql_rows import ArtifactRows


class PostgresArtifactStore(ArtifactRows, ArtifactMixin):
    """Artifacts of a PostgreSQL store: stored once (``ON CONFLICT DO NOTHING``), read in ranges.

    The column is stored uncompressed out of line, so ``read(id, offset, length)`` fetches only
    the chunks that hold the range, whatever the artifact's size (up to PostgreSQL's 1 GB).
    """

    _param = "%s"
    _db: PgConnection

    def __init__(self, db: PgConnection) -> None:
        self._db = db

    def __repr__(self) -> str:
        return f"PostgresArtifactStore({self._db.where!r})"

    def put(self, data: bytes, media_type: str = BYTES) -> ArtifactRef:
        """Store bytes once (by sha256) and return their reference; the first media type wins."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ConfigError(f"put() takes bytes, got {type(data).__name__}; use put_text or put_json")
        if not isinstance(media_type, str) or not media_type:
            raise ConfigError(f"media_type must be a non-empty string, got {media_type!r}")
        return self.put_many([(data, media_type)])[0]

    def put_many(self, items: Iterable[tuple[bytes, str]]) -> list[ArtifactRef]:
        """Store several ``(bytes, media_type)`` pairs in one transaction."""
        items = list(items)
        if not items:
            return []
        with self._db.transaction(f"store {len(items)} artifact(s)") as conn:
            return self.put_many_in(conn, items)

    def put_many_in(self, conn: Any, items: Iterable[tuple[bytes, str]]) -> list[ArtifactRef]:
        """``put_many`` inside a transaction the caller holds (it commits or rolls back)."""
        rows = []
        for data, media_type in items:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise ConfigError(f"put_many() takes (bytes, media_type) pairs, got {type(data).__name__}")
            raw = bytes(data)
            rows.append((sha256_id(raw), media_type, len(raw), raw))
        refs = []
        for ident, media_type, size, raw in rows:
            got = conn.execute("SELECT media_type FROM artifacts WHERE id = %s", (ident,)).fetchone()
            if got is None:
                conn.execute(
                    "INSERT INTO artifacts (id, media_type, size, content) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (id) DO NOTHING",
                    (ident, media_type, size, raw),
                )
                got = conn.execute("SELECT media_type FROM artifacts WHERE id = %s", (ident,)).fetchone()
            assert got is not None
            refs.append(ArtifactRef(id=ident, size=size, media_type=got[0]))
        return refs

    def read(self, ident: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes ``offset`` to ``offset + length`` (all by default)."""
        key = check_id(ident)
        if offset < 0 or (length is not None and length < 0):
            raise ConfigError(f"offset and length must be >= 0, got {offset} and {length}")
        with self._db.transaction("read an artifact") as conn:
            row = conn.execute("SELECT size FROM artifacts WHERE id = %s", (key,)).fetchone()
            if row is None:
                raise self._missing(key)
            size = row[0]
            start = min(offset, size)
            stop = size if length is None else min(size, offset + length)
            if start >= stop:
                return b""
            if start == 0 and stop == size:
                got = conn.execute("SELECT content FROM artifacts WHERE id = %s", (key,)).fetchone()
            else:
                got = conn.execute(
                    "SELECT substring(content FROM %s FOR %s) FROM artifacts WHERE id = %s",
                    (start + 1, stop - start, key),
                ).fetchone()
        return bytes(got[0]) if got else b""

    def _missing(self, key: str) -> ArtifactNotFound:
        return ArtifactNotFound(f"no artifact {key} in {self._db.where}")
