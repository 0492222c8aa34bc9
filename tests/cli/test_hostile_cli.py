"""Odd arguments to the `agentcore` command, each run as a real subprocess: one-line errors (or a
JSON error object with --json), the README's exit codes, no hang and nothing recorded lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentcore.core.events import ToolFinished
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.testing import demo_agent


def agentcore(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AGENTCORE_DB"}
    return subprocess.run(
        [sys.executable, "-m", "agentcore", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    with SQLiteEventStore(path) as store:
        assert demo_agent({"k": "v"}, store=store).run_sync("look up k", run_id="r1").status == "succeeded"
    return path


def assert_json_error(out: subprocess.CompletedProcess[str], code: int, kind: str, words: str) -> None:
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    error = json.loads(out.stdout)["error"]
    assert error["type"] == kind and words in error["message"], error
    assert "Traceback" not in out.stderr


def unchanged_log(db: Path) -> None:
    with SQLiteEventStore(db) as store:
        assert store.last_seq("r1") == len(list(store.read("r1"))) > 0
        assert store.state_at("r1").status == "succeeded"


def test_prices_from_a_device_or_a_fifo_are_refused_without_reading(db: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "prices.fifo"
    os.mkfifo(fifo)  # nobody ever writes to it: reading it would wait forever
    for source in ("/dev/zero", str(fifo)):
        out = agentcore("--db", str(db), "usage", "r1", "--prices", source, "--json", timeout=30)
        assert_json_error(out, 2, "ConfigError", "not a regular file")
        text = agentcore("--db", str(db), "usage", "r1", "--prices", source, timeout=30)
        assert text.returncode == 2 and text.stderr.startswith("Error: ") and text.stderr.count("\n") == 1
    unchanged_log(db)


def test_a_huge_or_deeply_nested_price_file_is_a_one_line_error(db: Path, tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * (2 << 20) + b"{}")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    out = agentcore("--db", str(db), "usage", "r1", "--prices", str(huge), "--json")
    assert_json_error(out, 2, "ConfigError", "larger than")
    out = agentcore("--db", str(db), "usage", "r1", "--prices", str(deep), "--json")
    assert_json_error(out, 2, "ConfigError", "cannot read prices")
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"demo-controller": {"input_mtok": 1.0, "output_mtok": 2.0}}))
    priced = agentcore("--db", str(db), "usage", "r1", "--prices", str(ok), "--json")
    assert priced.returncode == 0 and json.loads(priced.stdout)["by_role"]["controller"]["cost_usd"] > 0


@pytest.mark.parametrize(
    "args",
    [
        ["--db", "", "runs"],
        ["runs", "--db", ""],
        ["--db", "  ", "state", "last"],
        ["ask", "where?", "--repo", ".", "--offline", "--db", ""],
        ["mcp-serve", "--repo", ".", "--db", ""],
    ],
    ids=["group", "command", "blank", "ask", "mcp-serve"],
)
def test_an_empty_db_is_a_usage_error_not_the_default_file(tmp_path: Path, args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "agentcore", *args, "--json"] if args[0] != "mcp-serve" else
        [sys.executable, "-m", "agentcore", *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "AGENTCORE_DB"},
    )  # fmt: skip
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    if args[0] != "mcp-serve":
        assert "--db" in json.loads(out.stdout)["error"]["message"]
    assert list(tmp_path.iterdir()) == []  # no agentcore.db made in the current directory


def test_an_output_file_never_overwrites_a_database(db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with SQLiteEventStore(other) as store:
        assert demo_agent({"x": "y"}, store=store).run_sync("look up x").status == "succeeded"
    with SQLiteEventStore(db) as store:
        artifact_id = next(e.artifact.id for e in store.read("r1") if isinstance(e, ToolFinished) and e.artifact)
    alias = tmp_path / "alias.db"
    alias.symlink_to(db)
    before = {p: p.read_bytes() for p in (db, other)}
    attempts = [
        ["export", "r1", "-o", str(db)],  # meant: --db runs.db
        ["export", "r1", "-o", str(alias)],  # the same file by another name
        ["view", "r1", "-o", str(db)],
        ["view", "r1", "-o", str(other)],  # another agentcore database
        ["artifact", artifact_id, "-o", str(db)],
    ]
    for args in attempts:
        out = agentcore("--db", str(db), *args, "--json")
        assert_json_error(out, 2, "UsageError", "would destroy its runs")
    assert {p: p.read_bytes() for p in (db, other)} == before
    unchanged_log(db)
    written = tmp_path / "run.jsonl"
    assert agentcore("--db", str(db), "export", "r1", "-o", str(written)).returncode == 0
    assert agentcore("--db", str(db), "export", "r1", "-o", str(written)).returncode == 0  # a trace is replaced


def test_a_blank_question_or_answer_is_a_usage_error_and_writes_nothing(db: Path, tmp_path: Path) -> None:
    before = db.read_bytes()
    for args in (["ask", "", "--repo", str(tmp_path), "--offline"], ["ask", " \t ", "--repo", str(tmp_path)],
                 ["answer", "r1", ""], ["submit", "  ", "--repo", str(tmp_path)]):  # fmt: skip
        out = agentcore("--db", str(db), *args, "--json")
        assert_json_error(out, 2, "UsageError", "is empty")
    assert db.read_bytes() == before
    unchanged_log(db)


def test_stdout_output_with_json_is_a_usage_error_in_json(db: Path) -> None:
    with SQLiteEventStore(db) as store:
        artifact_id = next(e.artifact.id for e in store.read("r1") if isinstance(e, ToolFinished) and e.artifact)
    for args in (["view", "r1", "-o", "-"], ["artifact", artifact_id, "-o", "-"]):
        out = agentcore("--db", str(db), *args, "--json")
        assert_json_error(out, 2, "UsageError", "both write to stdout")


def test_a_device_or_fifo_as_db_is_a_bad_value(tmp_path: Path) -> None:
    fifo = tmp_path / "runs.fifo"
    os.mkfifo(fifo)
    for target in ("/dev/null", str(fifo)):
        for args in (["runs"], ["ask", "where?", "--repo", str(tmp_path), "--offline"]):
            out = agentcore("--db", target, *args, "--json", timeout=30)
            assert_json_error(out, 2, "ConfigError", "not a regular file")
    assert fifo.is_fifo()
