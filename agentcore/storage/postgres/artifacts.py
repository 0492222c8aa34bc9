"""``PostgresArtifactStore``: the shared ``SQLArtifactStore`` on a PostgreSQL database.

The ``content`` column is stored uncompressed out of line, so ``read(id, offset, length)`` fetches
only the chunks that hold the range, whatever the artifact's size (up to PostgreSQL's 1 GB).
"""

from __future__ import annotations

from agentcore.storage.postgres.connection import PgConnection
from agentcore.storage.schema import POSTGRES
from agentcore.storage.sql_artifacts import SQLArtifactStore

INLINE_PUT = 64 * 1024
"""Artifacts up to this size are sent with the statement that stores them, even if already stored."""


class PostgresArtifactStore(SQLArtifactStore):
    """Artifacts of a PostgreSQL store: stored once (``ON CONFLICT DO NOTHING``; a small one in one
    statement), read in ranges."""

    dialect = POSTGRES

    _db: PgConnection

    def __init__(self, db: PgConnection) -> None:
        super().__init__(db)

    def _put_one(self, ident: str, data: bytes, media_type: str) -> str:
        """A small artifact (up to ``INLINE_PUT`` bytes) in ONE statement: insert it unless stored, and
        read the stored media type either way; a larger one is looked up first (never sent twice)."""
        if len(data) > INLINE_PUT:
            return super()._put_one(ident, data, media_type)
        row = self._db.one(
            "WITH new AS (INSERT INTO artifacts (id, media_type, size, content) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (id) DO NOTHING RETURNING media_type) "
            "SELECT media_type FROM new UNION ALL SELECT media_type FROM artifacts WHERE id = %s",
            (ident, media_type, len(data), data, ident),
            f"store artifact {ident} ({len(data)} bytes)",
            reading=False,
        )
        if row is None:  # a racing writer's insert committed after this statement's snapshot
            return super()._put_one(ident, data, media_type)
        return str(row[0])
