"""`agentcore ask` shows how far the first code index build is: on stderr, only on a terminal or with
--progress, never with --json, and not at all when the index is already built."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from agentcore.cli.agents import IndexProgress

ROOT = Path(__file__).resolve().parents[2]
LINE = "indexing the repository for code search"


def ask(repo: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env |= {"PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "agentcore", "--db", str(repo.parent / "runs.db"), "ask", "Where is Shape42 defined?",
         "--repo", str(repo), *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def make_repo(root: Path, n: int = 150) -> Path:
    for i in range(n):
        (root / "pkg" / f"m{i}.py").parent.mkdir(parents=True, exist_ok=True)
        (root / "pkg" / f"m{i}.py").write_text(f"class Shape{i}:\n    pass\n", encoding="utf-8")
    return root


def test_progress_with_the_flag_off_a_terminal_then_nothing_once_built(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    first = ask(repo, tmp_path / "cache", "--progress")
    assert first.returncode == 0, first.stderr
    shown = [line for line in first.stderr.splitlines() if line.startswith(LINE)]
    assert shown[-1] == f"{LINE}: 150/150 files (100%)"
    assert 2 <= len(shown) <= 11, shown  # a line at every tenth, not one per file
    assert LINE not in first.stdout and "pkg/m42.py:1" in first.stdout
    again = ask(repo, tmp_path / "cache", "--progress")
    assert again.returncode == 0 and LINE not in again.stderr, "a built index has nothing to show"


def test_no_progress_off_a_terminal_without_the_flag_nor_with_json(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    plain = ask(repo, tmp_path / "cache1")
    assert plain.returncode == 0 and LINE not in plain.stderr + plain.stdout
    as_json = ask(repo, tmp_path / "cache2", "--json", "--progress")
    assert as_json.returncode == 0 and LINE not in as_json.stderr + as_json.stdout
    assert json.loads(as_json.stdout)["status"] == "succeeded"


def test_on_a_terminal_one_line_is_redrawn() -> None:
    out = io.StringIO()
    show = IndexProgress(out, terminal=True)
    show(10, 200)
    show(11, 200)  # too soon after the last one: not drawn
    show(200, 200)
    assert out.getvalue() == f"\r{LINE}: 10/200 files (5%)\r{LINE}: 200/200 files (100%)\n"
    small = io.StringIO()
    IndexProgress(small, terminal=True)(5, 20)
    assert small.getvalue() == "", "a small build is not worth a line"
