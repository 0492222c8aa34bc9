"""Shared fixtures of the runtime tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import kill_started


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test() -> Iterator[None]:
    """A test that fails half-way leaves no worker behind (a cut-off one would retry forever)."""
    yield
    kill_started()
