"""Shared fixtures: every store test runs against every store; no real LLM calls leave the machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.support.openai_server",
    "tests.support.torture_plugin",
    "tests.support.postgres",
    "tests.support.pgbouncer",
]


@pytest.fixture(autouse=True)
def _no_real_llm_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse any model server that is not on loopback, and any key from the environment."""
    import agentcore.models.openai as llm

    monkeypatch.setattr(llm, "ALLOW_REAL_REQUESTS", False, raising=True)
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AGENTCORE_MODEL", "OPENAI_MODEL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True, scope="session")
def _code_index_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The code tools' symbol index goes to a temporary cache, not the user's ~/.cache (subprocesses inherit it)."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "agentcore.db"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, db_path: Path) -> Iterator[object]:
    """An empty event store: the in-memory one, a real SQLite file and a real PostgreSQL database."""
    if request.param == "memory":
        from agentcore.storage.memory import MemoryEventStore

        yield MemoryEventStore()
    elif request.param == "postgres":
        from agentcore.storage.postgres.store import PostgresEventStore

        pg = PostgresEventStore(request.getfixturevalue("pg_url"))
        try:
            yield pg
        finally:
            pg.close()
    else:
        from agentcore.storage.sqlite.store import SQLiteEventStore

        s = SQLiteEventStore(db_path)
        try:
            yield s
        finally:
            s.close()
