"""The store contract across processes: every store a path or URL names (a real SQLite file, a real
PostgreSQL database), written by several OS processes at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentcore.storage import open_store

ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, db_path: Path) -> str:
    """Where the processes meet: an SQLite file path or a PostgreSQL URL (a fresh database)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(db_path)


WRITER = """
import json, sys
from datetime import datetime, timezone
sys.path.insert(0, sys.argv[1])
from agentcore.errors import ConcurrencyError, StoreError
from agentcore.core.events import UserMessaged
from agentcore.storage import open_store
from pathlib import Path
import time
db, run, who, n, go = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), Path(sys.argv[6])
Path(go.parent / ("ready-" + who)).touch()
while not go.exists():
    time.sleep(0.005)
store = open_store(db)
if run == "own":
    run = store.create_run("writer " + who, run_id="run-" + who)
won = conflicts = errors = 0
while won < n:
    last = store.last_seq(run)
    event = UserMessaged(run_id=run, seq=last + 1, at=datetime.now(timezone.utc), text=who)
    try:
        store.append(run, [event], last)
        won += 1
    except ConcurrencyError:
        conflicts += 1
    except StoreError as e:
        errors += 1
        print(repr(e), file=sys.stderr)
        if errors > 100:
            break
store.close()
print(json.dumps({"won": won, "conflicts": conflicts, "errors": errors}))
"""


def run_writers(tmp_path: Path, target: str, run: str, names: list[str], n: int) -> list[dict[str, int]]:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, ROOT, target, run, name, str(n), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{name}").exists() for name in names):
        dead = [p for p in procs if p.poll() is not None]
        assert not dead and time.monotonic() < deadline, [p.communicate() for p in dead] or "writers never got ready"
        time.sleep(0.01)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert err == "", err
        results.append(json.loads(out))
    return results


def test_two_processes_racing_on_one_run(tmp_path: Path, target: str) -> None:
    with open_store(target) as s:
        run = s.create_run("contended")
    n = 50
    results = run_writers(tmp_path, target, run, ["a", "b"], n)
    assert [r["won"] for r in results] == [n, n]
    assert all(r["errors"] == 0 for r in results)
    with open_store(target) as s:
        log = list(s.read(run))
        assert [e.seq for e in log] == list(range(1, 2 * n + 1))  # no gap, no duplicate
        assert sorted(e.text for e in log) == ["a"] * n + ["b"] * n  # type: ignore[attr-defined]
        assert s.last_seq(run) == sum(r["won"] for r in results)


def test_six_processes_on_six_runs_in_one_new_database(tmp_path: Path, target: str) -> None:
    names = [f"w{i}" for i in range(6)]
    n = 30
    results = run_writers(tmp_path, target, "own", names, n)  # they also race to create the schema
    assert all(r == {"won": n, "conflicts": 0, "errors": 0} for r in results)
    with open_store(target) as s:
        assert sorted(r.id for r in s.runs()) == [f"run-{name}" for name in names]
        for name in names:
            assert [e.seq for e in s.read(f"run-{name}")] == list(range(1, n + 1))
