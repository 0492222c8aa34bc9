"""``PostgresArtifactStore``: the shared ``SQLArtifactStore`` on a PostgreSQL database.

The ``content`` column is stored uncompressed out of line, so ``read(id, offset, length)`` fetches
only the chunks that hold the range, whatever the artifact's size (up to PostgreSQL's 1 GB).
"""

from __future__ import annotations

from agentcore.storage.postgres.connection import PgConnection
from agentcore.storage.schema import POSTGRES
from agentcore.storage.sql_artifacts import SQLArtifactStore


class PostgresArtifactStore(SQLArtifactStore):
    """Artifacts of a PostgreSQL store: stored once (``ON CONFLICT DO NOTHING``), read in ranges."""

    dialect = POSTGRES

    def __init__(self, db: PgConnection) -> None:
        super().__init__(db)
