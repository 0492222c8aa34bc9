"""``PostgresArtifactStore``: the shared ``SQLArtifactStore`` on a PostgreSQL database.

The ``content`` column is stored uncompressed out of line, so ``read(id, offset, length)`` fetches
only the chunks that hold the range, whatever the artifact's size (up to PostgreSQL's 1 GB).

A run driven under a work-queue lease (``LeasedStore``, ``StepLeasedStore``) puts its artifacts
through ``for_events()``: a small artifact's insert then commits without waiting for the WAL flush
(``synchronous_commit`` off for that one transaction). Nothing is lost by it: the artifact is put
for an event (an LLM call's record, a tool result) that is appended afterwards by a commit that
does wait, and PostgreSQL flushes its WAL in order, so once that event is durable so is every
commit before it, the artifact's included; a crash before then loses the artifact together with
the event that would have named it (and the run re-does that work, as it would have anyway). A
put under a lease costs no fsync wait (W8 (b): 13 of a run's 30 commits; on this VM a synchronous
commit costs ~0.5 ms of client and server CPU more than an asynchronous one, and ~4 ms of wall).
"""

from __future__ import annotations

from agentcore.storage.postgres.connection import PgConnection
from agentcore.storage.schema import POSTGRES
from agentcore.storage.sql_artifacts import SQLArtifactStore

INLINE_PUT = 64 * 1024
"""Artifacts up to this size are sent with the statement that stores them, even if already stored."""


_PUT = (
    "WITH new AS (INSERT INTO artifacts (id, media_type, size, content) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (id) DO NOTHING RETURNING media_type) "
    "SELECT media_type FROM new UNION ALL SELECT media_type FROM artifacts WHERE id = %s"
)
"""A small artifact stored unless it is there, and the stored media type either way: one statement."""

_PUT_FOR_EVENTS = (
    "WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true)), "
    "new AS (INSERT INTO artifacts (id, media_type, size, content) SELECT %s, %s, %s, %s FROM lazy "
    "ON CONFLICT (id) DO NOTHING RETURNING media_type) "
    "SELECT media_type FROM new UNION ALL SELECT media_type FROM artifacts WHERE id = %s"
)
"""``_PUT`` whose transaction (the statement's own) commits without waiting for the WAL flush:
``set_config(..., true)`` lasts until the end of the transaction, so only this commit is affected
(also behind a pooler in transaction mode)."""


class PostgresArtifactStore(SQLArtifactStore):
    """Artifacts of a PostgreSQL store: stored once (``ON CONFLICT DO NOTHING``; a small one in one
    statement), read in ranges.

    Args:
        db: The store's connections.
        for_events: Small artifacts are put for events appended later (see the module): their
            commits do not wait for the WAL flush. ``for_events()`` gives such a view of a store.
    """

    dialect = POSTGRES

    _db: PgConnection

    def __init__(self, db: PgConnection, *, for_events: bool = False) -> None:
        super().__init__(db)
        self._pg = db
        self._put_sql = _PUT_FOR_EVENTS if for_events else _PUT

    def for_events(self) -> PostgresArtifactStore:
        """This artifact store for a writer that appends, after each put, the events that name the
        artifact (a run driven under a lease): a put no longer waits for its WAL flush, the append
        that names it does (see the module)."""
        return PostgresArtifactStore(self._pg, for_events=True)

    def _put_one(self, ident: str, data: bytes, media_type: str) -> str:
        """A small artifact (up to ``INLINE_PUT`` bytes) in ONE statement: insert it unless stored, and
        read the stored media type either way; a larger one is looked up first (never sent twice)."""
        if len(data) > INLINE_PUT:
            return super()._put_one(ident, data, media_type)
        row = self._db.one(
            self._put_sql,
            (ident, media_type, len(data), data, ident),
            f"store artifact {ident} ({len(data)} bytes)",
            reading=False,
        )
        if row is None:  # a racing writer's insert committed after this statement's snapshot
            return super()._put_one(ident, data, media_type)
        return str(row[0])
