"""Parsing in worker processes gives exactly the index that parsing in this process gives; a worker
that dies has its batch parsed here; progress is reported as files are indexed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentcore.tools.code import parsing
from agentcore.tools.code.index import SymbolIndex
from agentcore.tools.code.paths import CodeRoot
from tests.tools.test_code_index import TREE, write_tree
from tests.tools.test_code_js_shapes import TREE as JS_TREE
from tests.tools.test_code_references import TREE as REF_TREE


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_tree(tmp_path_factory.mktemp("pool"), TREE)
    for tree in (JS_TREE, REF_TREE):
        for rel, text in tree.items():
            (root / "more" / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / "more" / rel).write_text(text, encoding="utf-8")
    for i in range(30):  # enough files for several batches
        (root / "gen" / f"m{i}.py").parent.mkdir(exist_ok=True)
        (root / "gen" / f"m{i}.py").write_text(f"class C{i}:\n    def run(self):\n        return self.run()\n", encoding="utf-8")
    return root


def dump(ix: SymbolIndex) -> dict[str, list[tuple]]:
    q = {
        "files": "SELECT path, hash, lang FROM files ORDER BY path",
        "symbols": "SELECT hash, name, kind, line, end_line, container, depth, signature, doc FROM symbols ORDER BY 1, 4, 2, 3",
        "refs": "SELECT hash, name, kind, count, lines, qual FROM refs ORDER BY 1, 2, 3, 6",
        "chunks": "SELECT name, path, doc, body, file, line, symbol, kind FROM chunks ORDER BY file, line, symbol, kind",
    }
    return {k: ix.db.execute(sql).fetchall() for k, sql in q.items()}


def build(repo: Path, cache: Path, jobs: int) -> SymbolIndex:
    ix = SymbolIndex(CodeRoot(repo), cache, jobs=jobs)
    ix.refresh()
    return ix


def test_worker_processes_build_the_same_index(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsing, "POOL_MIN_FILES", 1)
    monkeypatch.setattr(parsing, "_BATCH_FILES", 4)
    started: list[int] = []
    real_start = parsing._Worker.start

    def counted() -> parsing._Worker | None:
        w = real_start()
        assert w is not None
        started.append(w.proc.pid)
        return w

    monkeypatch.setattr(parsing._Worker, "start", staticmethod(counted))
    pooled = dump(build(repo, tmp_path / "pooled", jobs=2))
    assert len(started) == 2
    here = dump(build(repo, tmp_path / "here", jobs=1))
    assert len(started) == 2, "jobs=1 starts no worker"
    assert pooled == here
    assert len(here["files"]) > 40 and here["symbols"] and here["refs"] and here["chunks"]


def test_a_dead_worker_has_its_batches_parsed_here(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsing, "POOL_MIN_FILES", 1)
    monkeypatch.setattr(parsing, "_BATCH_FILES", 4)

    def dead() -> parsing._Worker:
        return parsing._Worker(subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE, stdout=subprocess.PIPE))

    monkeypatch.setattr(parsing._Worker, "start", staticmethod(dead))
    assert dump(build(repo, tmp_path / "dead", jobs=2)) == dump(build(repo, tmp_path / "here", jobs=1))


def test_progress_is_reported_up_to_the_total(repo: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    ix = SymbolIndex(CodeRoot(repo), tmp_path / "c", jobs=1)
    ix.refresh(progress=lambda done, total: seen.append((done, total)))
    total = ix.db.execute("SELECT count(*) FROM files").fetchone()[0]
    assert seen and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    seen.clear()
    ix.refresh(progress=lambda done, total: seen.append((done, total)))
    assert seen == [], "nothing changed: no progress to show"
