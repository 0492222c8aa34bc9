"""The protocols are what the implementations satisfy, checked statically by mypy.

``isinstance`` on a ``runtime_checkable`` protocol only looks at attribute names; these tests run
mypy on ``tests/support/protocol_conformance.py`` (typed assignments of every implementation to
its protocol) and on a deliberately broken store, to show the check can fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = ROOT / "tests" / "support" / "protocol_conformance.py"

BROKEN = '''
from __future__ import annotations
from collections.abc import Iterator
from agentcore.storage.artifacts import ArtifactStore, MemoryArtifactStore
from agentcore.storage.base import EventStore
from agentcore.storage.memory import MemoryEventStore


class NoPutJson:
    """An artifact store that forgot the typed helpers."""

    def put(self, data: bytes, media_type: str = "x") -> object: ...


class WritableFlag(MemoryEventStore):
    """``read_only`` declared as a str: the protocol promises a bool."""

    read_only = "no"  # type: ignore[assignment]


def artifacts(a: NoPutJson) -> ArtifactStore:
    return a


def events(s: WritableFlag) -> EventStore:
    return s
'''


def run_mypy(*files: Path, cache: Path) -> tuple[str, int]:
    out, err, code = mypy_api.run(
        ["--no-error-summary", "--hide-error-context", "--cache-dir", str(cache), *map(str, files)]
    )
    return out + err, code


def test_every_implementation_satisfies_its_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # mypy finds `agentcore` from the repository root
    broken = tmp_path / "broken_store.py"
    broken.write_text(BROKEN, encoding="utf-8")
    output, code = run_mypy(CONFORMANCE, broken, cache=tmp_path / "cache")
    errors = [line for line in output.splitlines() if ": error:" in line]
    assert not [e for e in errors if "protocol_conformance" in e], output
    # the broken file shows the check can fail: both drifts are reported
    assert code == 1
    broken_errors = [e for e in errors if "broken_store" in e]
    assert len(broken_errors) == 2, output
    assert '"NoPutJson"' in broken_errors[0] and '"ArtifactStore"' in broken_errors[0]
    assert '"WritableFlag"' in broken_errors[1] and '"EventStore"' in broken_errors[1]
    assert 'read_only: expected "bool", got "str"' in output
