"""``SQLiteArtifactStore``: the shared ``SQLArtifactStore`` on a SQLite file, reading ranges through
SQLite's incremental blob I/O (Python 3.11+), which loads only the pages asked for."""

from __future__ import annotations

from agentcore.storage.schema import SQLITE
from agentcore.storage.sql_artifacts import SQLArtifactStore
from agentcore.storage.sqlite.connection import SQLiteConnection


class SQLiteArtifactStore(SQLArtifactStore):
    """Artifacts in the ``artifacts`` table of a store's file: stored once, read in ranges."""

    dialect = SQLITE
    _db: SQLiteConnection

    def __init__(self, db: SQLiteConnection) -> None:
        super().__init__(db)

    def _read_range(self, key: str, start: int, count: int) -> bytes:
        conn = self._db.conn
        if not hasattr(conn, "blobopen"):  # Python 3.10: ``substr`` (it reads the whole blob)
            return super()._read_range(key, start, count)
        with self._db.lock:
            row = self._db.one("SELECT rowid FROM artifacts WHERE id = ?", (key,))
            if row is None:
                raise self._missing(key)

            def read() -> bytes:
                with conn.blobopen("artifacts", "content", row[0], readonly=True) as blob:
                    blob.seek(start)
                    return bytes(blob.read(count))

            self._db.check_open()
            return self._db.retry(read, "read an artifact")
