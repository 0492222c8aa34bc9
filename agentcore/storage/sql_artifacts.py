"""``SQLArtifactStore``: raw bytes kept by ``sha256`` in the ``artifacts`` table of a SQL store, once,
read in ranges. One implementation for SQLite and PostgreSQL (``SQLiteArtifactStore`` and
``PostgresArtifactStore`` set the dialect; SQLite reads a range through its blob API).
"""

from __future__ import annotations

from collections.abc import Iterable

from agentcore.core.events import ArtifactRef
from agentcore.core.values import sha256_id
from agentcore.errors import ArtifactNotFound, ConfigError
from agentcore.storage.artifacts import BYTES, ArtifactMixin, check_id
from agentcore.storage.schema import Dialect
from agentcore.storage.sql_rows import SQLConnection, SQLExecutor

_BYTES_TYPES = (bytes, bytearray, memoryview)

_INSERT = "INSERT INTO artifacts (id, media_type, size, content) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"


class SQLArtifactStore(ArtifactMixin):
    """Artifacts in the ``artifacts`` table of a store's database: stored once, read in ranges.

    ``put`` looks first and writes only bytes that are not stored yet (nothing written, and nothing
    sent to a server, for an artifact already there), in one statement that is its own
    transaction; the first media type stored wins.
    """

    dialect: Dialect

    def __init__(self, db: SQLConnection) -> None:
        self._db = db

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._db.where!r})"

    def _missing(self, key: str) -> ArtifactNotFound:
        return ArtifactNotFound(f"no artifact {key} in {self._db.where}")

    def info(self, ident: str) -> ArtifactRef:
        """The reference of a stored artifact; ``ArtifactNotFound`` if absent."""
        key = check_id(ident)
        row = self._db.one(self.dialect.sql("SELECT size, media_type FROM artifacts WHERE id = ?"), (key,))
        if row is None:
            raise self._missing(key)
        return ArtifactRef(id=key, size=row[0], media_type=row[1])

    def exists(self, ident: str) -> bool:
        """Whether an artifact of this id is stored (a malformed id is not)."""
        try:
            key = check_id(ident)
        except ArtifactNotFound:
            return False
        return self._db.one(self.dialect.sql("SELECT 1 FROM artifacts WHERE id = ?"), (key,)) is not None

    def put(self, data: bytes, media_type: str = BYTES) -> ArtifactRef:
        """Store bytes once (by sha256) and return their reference; the first media type wins.

        Raises:
            ConfigError: ``data`` is not bytes, or ``media_type`` is empty.
        """
        if not isinstance(data, _BYTES_TYPES):
            raise ConfigError(f"put() takes bytes, got {type(data).__name__}; use put_text or put_json")
        if not isinstance(media_type, str) or not media_type:
            raise ConfigError(f"media_type must be a non-empty string, got {media_type!r}")
        data = bytes(data)
        ident = sha256_id(data)
        return ArtifactRef(id=ident, size=len(data), media_type=self._put_one(ident, data, media_type))

    def _put_one(self, ident: str, data: bytes, media_type: str) -> str:
        """Store ``data`` under ``ident`` unless it is there; the stored media type. Looks first, so
        bytes already stored are never sent again; a new artifact is one more statement."""
        select = self.dialect.sql("SELECT media_type FROM artifacts WHERE id = ?")
        row = self._db.one(select, (ident,))
        if row is None:
            action = f"store artifact {ident} ({len(data)} bytes)"
            if self._db.execute(self.dialect.sql(_INSERT), (ident, media_type, len(data), data), action):
                return media_type
            row = self._db.one(select, (ident,))  # a racing writer stored it first
            assert row is not None, "artifacts are never deleted"
        return str(row[0])

    def put_many(self, items: Iterable[tuple[bytes, str]]) -> list[ArtifactRef]:
        """Store several ``(bytes, media_type)`` pairs in one transaction (one commit, not one each)."""
        items = list(items)
        if not items:
            return []
        with self._db.transaction(f"store {len(items)} artifact(s)") as conn:
            return self.put_many_in(conn, items)

    def put_many_in(self, conn: SQLExecutor, items: Iterable[tuple[bytes, str]]) -> list[ArtifactRef]:
        """``put_many`` inside a write transaction the caller holds (it commits or rolls back)."""
        rows = []
        for data, media_type in items:
            if not isinstance(data, _BYTES_TYPES):
                raise ConfigError(f"put_many() takes (bytes, media_type) pairs, got {type(data).__name__}")
            raw = bytes(data)
            rows.append((sha256_id(raw), media_type, raw))
        select = self.dialect.sql("SELECT media_type FROM artifacts WHERE id = ?")
        insert = self.dialect.sql(_INSERT)
        refs = []
        for ident, media_type, raw in rows:
            got = conn.execute(select, (ident,)).fetchone()
            if got is None and conn.execute(insert, (ident, media_type, len(raw), raw)).rowcount != 1:
                got = conn.execute(select, (ident,)).fetchone()  # a racing writer stored it first
            refs.append(ArtifactRef(id=ident, size=len(raw), media_type=media_type if got is None else got[0]))
        return refs

    def read(self, ident: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes ``offset`` to ``offset + length`` (all by default); a range never loads the whole blob.

        Raises:
            ArtifactNotFound: no such artifact (or a malformed id).
            ConfigError: a negative ``offset`` or ``length``.
        """
        key = check_id(ident)
        if offset < 0 or (length is not None and length < 0):
            raise ConfigError(f"offset and length must be >= 0, got {offset} and {length}")
        with self._db.lock:
            row = self._db.one(self.dialect.sql("SELECT size FROM artifacts WHERE id = ?"), (key,))
            if row is None:
                raise self._missing(key)
            size = row[0]
            start = min(offset, size)
            stop = size if length is None else min(size, offset + length)
            if start >= stop:
                return b""
            if start == 0 and stop == size:
                full = self._db.one(self.dialect.sql("SELECT content FROM artifacts WHERE id = ?"), (key,))
                return bytes(full[0]) if full else b""
            return self._read_range(key, start, stop - start)

    def _read_range(self, key: str, start: int, count: int) -> bytes:
        """``count`` bytes from byte ``start`` of a stored artifact (the database cuts the range)."""
        sql = self.dialect.sql("SELECT substr(content, ?, ?) FROM artifacts WHERE id = ?")
        row = self._db.one(sql, (start + 1, count, key))
        return bytes(row[0]) if row else b""
