"""`agentcore copy` of a run the target already holds: a run copied while it waited for an answer
and answered since gets its new events appended (both ways between SQLite and PostgreSQL); a run
that went another way on the target is refused and nothing of it is written.

Before, a second copy of a grown run was refused as "another log" and the user was told to delete
the copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agentcore.core.fold import fold
from agentcore.storage.targets import open_store


def agentcore(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTCORE_DB", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return subprocess.run([sys.executable, "-m", "agentcore", *args], capture_output=True, text=True, env=env, timeout=120)


def waiting_run(db: str, repo: Path) -> str:
    asked = agentcore("--db", db, "ask", "?", "--repo", str(repo), "--offline", "--no-input", "--json")
    assert asked.returncode == 3, asked.stderr  # the offline model asks which symbol to look for
    return str(json.loads(asked.stdout)["run_id"])


def answer(db: str, run_id: str, text: str) -> None:
    done = agentcore("--db", db, "answer", run_id, text, "--quiet", "--json")
    assert done.returncode == 0, done.stderr


def copy(source: str, target: str, run_id: str) -> Any:
    out = agentcore("copy", run_id, "--from", source, "--to", target, "--json")
    return out.returncode, json.loads(out.stdout)


def log_of(db: str, run_id: str) -> tuple[list[str], Any]:
    with open_store(db) as store:
        events = list(store.read(run_id))
        assert fold(events) == store.state_at(run_id)
        return [e.model_dump_json() for e in events], store.run(run_id).status


def repo_with_code(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "shop.py").write_text("class Cart:\n    pass\n")
    return repo


def grows_and_is_copied_again(source: str, target: str, repo: Path) -> None:
    run_id = waiting_run(source, repo)
    assert copy(source, target, run_id) == (0, {**copy_shape(), "copied": [run_id], "artifacts": 1, "events": 3})
    answer(source, run_id, "where is Cart defined?")
    code, report = copy(source, target, run_id)
    assert code == 0 and report["copied"] == [run_id] and report["events"] > 0
    assert log_of(target, run_id) == log_of(source, run_id)
    assert log_of(target, run_id)[1] == "succeeded"
    assert copy(source, target, run_id)[1]["skipped"] == [run_id]  # and a third copy changes nothing


def copy_shape() -> dict[str, Any]:
    return {"copied": [], "skipped": [], "artifacts": 0, "events": 0, "still_queued": []}


def test_a_run_answered_after_its_copy_is_brought_up_to_date(tmp_path: Path) -> None:
    grows_and_is_copied_again(str(tmp_path / "a.db"), str(tmp_path / "b.db"), repo_with_code(tmp_path))


def test_a_run_that_went_another_way_on_the_target_is_refused_whole(tmp_path: Path) -> None:
    source, target, repo = str(tmp_path / "a.db"), str(tmp_path / "b.db"), repo_with_code(tmp_path)
    run_id = waiting_run(source, repo)
    assert copy(source, target, run_id)[0] == 0
    answer(target, run_id, "what does shop.py contain?")  # the copy goes on by itself
    answer(source, run_id, "where is Cart defined?")
    before = log_of(target, run_id)
    code, report = copy(source, target, run_id)
    assert code == 1 and report["error"]["type"] == "ConcurrencyError" and "another log" in report["error"]["message"]
    assert log_of(target, run_id) == before


def test_both_ways_with_postgresql(tmp_path: Path, pg_url: str) -> None:
    repo = repo_with_code(tmp_path)
    grows_and_is_copied_again(str(tmp_path / "a.db"), pg_url, repo)
    grows_and_is_copied_again(pg_url, str(tmp_path / "back.db"), repo)
