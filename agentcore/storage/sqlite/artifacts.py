"""``SQLiteArtifactStore``: raw bytes kept by ``sha256`` in the store's file, once, read in ranges."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from agentcore.core.events import ArtifactRef
from agentcore.core.values import sha256_id
from agentcore.errors import ArtifactNotFound, ConfigError
from agentcore.storage.artifacts import BYTES, ArtifactMixin, check_id
from agentcore.storage.sql_rows import ArtifactRows
from agentcore.storage.sqlite.connection import SQLiteConnection


class SQLiteArtifactStore(ArtifactRows, ArtifactMixin):
    """Artifacts in the ``artifacts`` table of a store's file: stored once, read in ranges."""

    _param = "?"
    _db: SQLiteConnection

    def __init__(self, db: SQLiteConnection) -> None:
        self._db = db

    def __repr__(self) -> str:
        return f"SQLiteArtifactStore({self._db.where!r})"

    def put(self, data: bytes, media_type: str = BYTES) -> ArtifactRef:
        """Store bytes once (by sha256) and return their reference; the first media type wins."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ConfigError(f"put() takes bytes, got {type(data).__name__}; use put_text or put_json")
        if not isinstance(media_type, str) or not media_type:
            raise ConfigError(f"media_type must be a non-empty string, got {media_type!r}")
        data = bytes(data)
        ident = sha256_id(data)
        row = self._db.one("SELECT media_type FROM artifacts WHERE id = ?", (ident,))
        if row is None:
            with self._db.write(f"store artifact {ident} ({len(data)} bytes)") as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO artifacts (id, media_type, size, content) VALUES (?, ?, ?, ?)",
                    (ident, media_type, len(data), data),
                )
                row = conn.execute("SELECT media_type FROM artifacts WHERE id = ?", (ident,)).fetchone()
        return ArtifactRef(id=ident, size=len(data), media_type=row[0])

    def put_many(self, items: Iterable[tuple[bytes, str]]) -> list[ArtifactRef]:
        """Store several ``(bytes, media_type)`` pairs in one transaction (one commit, not one each)."""
        items = list(items)
        if not items:
            return []
        with self._db.write(f"store {len(items)} artifacts") as conn:
            return self.put_many_in(conn, items)

    def put_many_in(self, conn: sqlite3.Connection, items: Iterable[tuple[bytes, str]]) -> list[ArtifactRef]:
        """``put_many`` inside a write transaction the caller holds (it commits or rolls back)."""
        rows = []
        for data, media_type in items:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise ConfigError(f"put_many() takes (bytes, media_type) pairs, got {type(data).__name__}")
            data = bytes(data)
            rows.append((sha256_id(data), media_type, len(data), data))
        conn.executemany("INSERT OR IGNORE INTO artifacts (id, media_type, size, content) VALUES (?, ?, ?, ?)", rows)
        refs = []
        for ident, _, size, _ in rows:
            stored = conn.execute("SELECT media_type FROM artifacts WHERE id = ?", (ident,)).fetchone()
            refs.append(ArtifactRef(id=ident, size=size, media_type=stored[0]))
        return refs

    def read(self, ident: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes ``offset`` to ``offset + length`` (all by default); a range never loads the whole blob."""
        key = check_id(ident)
        if offset < 0 or (length is not None and length < 0):
            raise ConfigError(f"offset and length must be >= 0, got {offset} and {length}")
        with self._db.lock:
            row = self._db.one("SELECT rowid, size FROM artifacts WHERE id = ?", (key,))
            if row is None:
                raise self._missing(key)
            rowid, size = row
            start = min(offset, size)
            stop = size if length is None else min(size, offset + length)
            if start >= stop:
                return b""
            if start == 0 and stop == size:
                full = self._db.one("SELECT content FROM artifacts WHERE rowid = ?", (rowid,))
                return bytes(full[0]) if full else b""
            return self._read_range(rowid, start, stop - start)

    def _read_range(self, rowid: int, start: int, count: int) -> bytes:
        conn = self._db.conn
        if hasattr(conn, "blobopen"):  # Python 3.11+: incremental blob I/O reads only the pages asked for

            def read() -> bytes:
                with conn.blobopen("artifacts", "content", rowid, readonly=True) as blob:
                    blob.seek(start)
                    return bytes(blob.read(count))

            with self._db.lock:
                self._db.check_open()
                return self._db.retry(read, "read an artifact")
        row = self._db.one("SELECT substr(content, ?, ?) FROM artifacts WHERE rowid = ?", (start + 1, count, rowid))
        return bytes(row[0]) if row else b""

    def _missing(self, key: str) -> ArtifactNotFound:
        return ArtifactNotFound(f"no artifact {key} in {self._db.where}")
