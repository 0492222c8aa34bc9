"""The environment's OPENAI_API_KEY never reaches a run's log, whatever model the run uses.

`agentcore ask --offline` with the key set (as it is on a developer's machine) over a repository
whose settings file holds the key: the database file, the trace export, the HTML view and every
command's output carry `[redacted]`, never the key. The same for a scripted agent in Python.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentcore.runtime.redaction import environment_secrets
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing import demo_agent

KEY = "sk-proj-ENVKEY-s8-0123456789abcdefABCDEF"


def agentcore(db: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentcore", "--db", str(db), *args], capture_output=True, text=True, env=env, timeout=300
    )


def all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


def test_an_offline_run_over_a_file_holding_the_key_records_none_of_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "settings.py").write_text(f'OPENAI_API_KEY = "{KEY}"\n\ndef load_settings():\n    return OPENAI_API_KEY\n')
    data = tmp_path / "data"
    data.mkdir()
    db = data / "runs.db"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENAI_API_KEY": KEY, "XDG_CACHE_HOME": str(tmp_path)}

    asked = agentcore(db, "ask", "--offline", f"where is {KEY} set?", "--repo", str(repo), "--json", env=env)
    assert asked.returncode == 0, asked.stderr
    outputs = [asked.stdout, asked.stderr]
    for args in (["events", "last", "--json"], ["state", "last"], ["runs", "--json"]):
        done = agentcore(db, *args, env=env)
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
    assert agentcore(db, "export", "last", "-o", str(tmp_path / "run.jsonl"), env=env).returncode == 0
    assert agentcore(db, "view", "last", "-o", str(tmp_path / "run.html"), env=env).returncode == 0

    assert "[redacted]" in (tmp_path / "run.jsonl").read_text()  # the task and the file's line
    for text in outputs:
        assert KEY not in text
    for written in (tmp_path / "run.jsonl", tmp_path / "run.html"):
        assert KEY.encode() not in written.read_bytes()
    assert KEY.encode() not in all_bytes(data)  # the database, its WAL and anything beside it


def test_a_scripted_agent_redacts_the_environment_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    db = tmp_path / "runs.db"
    with SQLiteEventStore(db) as store:
        result = demo_agent({"k": f"the key is {KEY}"}, store=store).run_sync(f"look up k ({KEY})")
        assert result.status == "succeeded"
        facts = store.state_at(result.run_id).known_facts
        assert facts["k"].value == "the key is [redacted]"
        assert all(KEY not in e.model_dump_json() for e in store.read(result.run_id))
    assert KEY.encode() not in all_bytes(tmp_path)


def test_placeholder_values_are_not_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    assert environment_secrets({"OPENAI_API_KEY": "dummy"}) == []  # a local server's placeholder
    assert environment_secrets({"OPENAI_API_KEY": KEY, "OTHER": "x" * 40}) == [KEY]
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert environment_secrets() == []
