"""Fixtures shared by the model tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcore.storage.sqlite.store import SQLiteEventStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteEventStore]:
    """A real SQLite store in a fresh file, closed after the test."""
    s = SQLiteEventStore(tmp_path / "runs.db")
    try:
        yield s
    finally:
        s.close()
