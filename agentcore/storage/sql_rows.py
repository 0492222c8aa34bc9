"""Row readers shared by the SQLite and PostgreSQL stores (the same SQL but for the placeholder).

``RunRows`` gives ``runs``/``run``/``last_seq`` over the ``runs`` table and ``ArtifactRows`` gives
``info``/``exists`` over ``artifacts``. A store sets ``_param`` to its driver's placeholder (``?``
for sqlite3, ``%s`` for psycopg) and has a ``_db`` with ``query(sql, params)`` and ``one(sql, params)``.
"""

from __future__ import annotations

from typing import Any

from agentcore.core.events import ArtifactRef
from agentcore.errors import ArtifactNotFound, RunNotFound
from agentcore.storage.artifacts import check_id
from agentcore.storage.base import RunInfo

RUN_COLUMNS = "id, task, status, created, last_seq, parent_run_id, forked_at_seq"
"""The ``runs`` columns a ``RunInfo`` is read from, in ``run_info``'s order."""


def run_info(row: tuple[Any, ...]) -> RunInfo:
    """The ``RunInfo`` of a row of ``RUN_COLUMNS``."""
    return RunInfo(
        id=row[0], task=row[1], status=row[2], created=row[3], last_seq=row[4],
        parent_run_id=row[5], forked_at_seq=row[6],
    )  # fmt: skip


class RunRows:
    """``runs``, ``run`` and ``last_seq`` of a SQL store."""

    _db: Any
    _param: str

    def _not_found(self, run_id: str) -> RunNotFound:
        raise NotImplementedError  # pragma: no cover - implemented by the store

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        return [run_info(r) for r in self._db.query(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY created, id")]

    def run(self, run_id: str) -> RunInfo:
        """One run's row; ``RunNotFound`` if absent."""
        row = self._db.one(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = {self._param}", (run_id,))
        if row is None:
            raise self._not_found(run_id)
        return run_info(row)

    def last_seq(self, run_id: str) -> int:
        """The seq of the run's last event (0 for a run with none)."""
        return self.run(run_id).last_seq


class ArtifactRows:
    """``info`` and ``exists`` of a SQL artifact store."""

    _db: Any
    _param: str

    def _missing(self, key: str) -> ArtifactNotFound:
        raise NotImplementedError  # pragma: no cover - implemented by the store

    def info(self, ident: str) -> ArtifactRef:
        """The reference of a stored artifact; ``ArtifactNotFound`` if absent."""
        key = check_id(ident)
        row = self._db.one(f"SELECT size, media_type FROM artifacts WHERE id = {self._param}", (key,))
        if row is None:
            raise self._missing(key)
        return ArtifactRef(id=key, size=row[0], media_type=row[1])

    def exists(self, ident: str) -> bool:
        """Whether an artifact of this id is stored (a malformed id is not)."""
        try:
            key = check_id(ident)
        except ArtifactNotFound:
            return False
        return self._db.one(f"SELECT 1 FROM artifacts WHERE id = {self._param}", (key,)) is not None
