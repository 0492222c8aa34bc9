"""The CLI's conventions (issue 14): where --db comes from, exit codes, stdout vs stderr, --json
errors, pipes, seq checks, event type names, and the small promises about forks, imports and `why`.

In process through click's ``CliRunner`` (stdout and stderr apart), plus real subprocesses where a
real pipe or terminal matters. Runs are made with the offline model on real SQLite files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agentcore.cli.commands import cli
from agentcore.storage.sqlite.store import SQLiteEventStore
from tests.support.code_fixtures import PYTHON_DEFINITIONS, make_python_repo

ROOT = Path(__file__).resolve().parents[2]
CART = "{}:{}".format(*PYTHON_DEFINITIONS["Cart"])
QUESTION = "Where is Cart defined?"


def run(*args: str | Path, code: int = 0, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    result = CliRunner(env=env).invoke(cli, [str(a) for a in args], input=stdin)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def run_json(*args: str | Path, code: int = 0) -> Any:
    return json.loads(run(*args, "--json", code=code).stdout)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_python_repo(tmp_path_factory.mktemp("conv") / "repo")


@pytest.fixture
def db(repo: Path, tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    run("ask", QUESTION, "--repo", repo, "--db", path, "--quiet")
    return path


def only_run(db: Path) -> str:
    with SQLiteEventStore(db) as s:
        [info] = s.runs()
    return info.id


# ------------------------------------------------------------------------------------------------
# where the database comes from


def test_db_as_a_group_option_and_from_the_environment(db: Path, repo: Path, tmp_path: Path) -> None:
    rid = only_run(db)
    assert [r["id"] for r in run_json("--db", db, "runs")] == [rid]
    assert run_json("--db", db, "state", "last")["run_id"] == rid
    assert [r["id"] for r in json.loads(run("runs", "--json", env={"AGENTCORE_DB": str(db)}).stdout)] == [rid]
    # the command's own --db wins over the group's, which wins over the environment
    empty = tmp_path / "empty.db"
    SQLiteEventStore(empty).close()
    assert run_json("--db", db, "runs", "--db", empty) == []
    assert json.loads(run("--db", empty, "runs", "--json", env={"AGENTCORE_DB": str(db)}).stdout) == []
    # ask writes where the group option says
    other = tmp_path / "other.db"
    run("--db", other, "ask", QUESTION, "--repo", repo, "--quiet")
    assert other.exists()


# ------------------------------------------------------------------------------------------------
# exit codes and streams


def test_exit_codes_success_failure_usage_and_waiting(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "codes.db"
    assert run("ask", QUESTION, "--repo", repo, "--db", db, "--quiet").exit_code == 0
    failed = run("ask", "Where is TAX_RATE used?", "--repo", repo, "--db", db, "--max-steps", "1", code=1)
    assert "budget: max_steps=1" in failed.stderr
    run("events", "last", "--db", db, "--since", "9", "--until", "3", code=2)
    run("ask", QUESTION, "--repo", repo, "--db", db, "--max-steps", "0", code=2)
    run("events", "last", "--db", db, "--bogus", code=2)
    # a question for the user: exit 3, the question on stdout, the exact command to continue on stderr
    waiting = run("ask", "what is this about?", "--repo", repo, "--db", db, code=3)
    assert "Which symbol or file should I look for?" in waiting.stdout
    rid = run_json("state", "last", "--db", db)["run_id"]
    assert f"agentcore answer {rid} 'YOUR ANSWER' --db {db}" in waiting.stderr
    assert f"run {rid} is waiting for your answer (exit code 3)" in waiting.stderr
    data = run_json("ask", "what is this about?", "--repo", repo, "--db", db, code=3)
    assert data["status"] == "waiting_for_user" and data["question"].startswith("Which symbol or file")
    assert data["answer_command"] == f"agentcore answer {data['run_id']} 'YOUR ANSWER' --db {db}"
    # the printed command works as printed (with a real answer in place of the placeholder)
    done = run("answer", data["run_id"], "where is Cart defined", "--db", db, "--quiet")
    assert CART in done.stdout


def test_answers_and_data_on_stdout_progress_and_hints_on_stderr(db: Path) -> None:
    rid = only_run(db)
    events = run("events", rid, "--db", db)
    assert "run_started" in events.stdout and events.stderr == ""
    forked = run("fork", rid, "--at", "4", "--db", db)
    assert forked.stdout.strip().startswith("run_") and "forked" in forked.stderr
    imported_id = forked.stdout.strip()
    assert run_json("state", imported_id, "--db", db)["run_id"] == imported_id  # stdout is just the id


def test_no_hard_wrap_off_a_terminal(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "wide.db"
    task = "Where is Cart defined? " + "and please explain the whole module in detail " * 4
    ans = run("ask", task.strip(), "--repo", repo, "--db", db, "--quiet")
    for line in ans.stdout.splitlines():
        if line.startswith("- definition:Cart"):
            assert "artifact sha256:" in line and len(line) > 120  # one line, never folded at 80
    rows = run("runs", "--db", db).stdout.splitlines()
    assert any(task.strip()[:70] in line for line in rows)  # the task is not folded over rows


def test_json_errors_are_json_with_type_and_message(db: Path, tmp_path: Path) -> None:
    err = run_json("state", "run_nope", "--db", db, code=1)["error"]
    assert err["type"] == "RunNotFound" and "run_nope" in err["message"]
    usage = run_json("events", "last", "--since", "9", "--until", "3", "--db", db, code=2)["error"]
    assert usage["type"] == "UsageError" and "since" in usage["message"]
    missing = run_json("runs", "--db", tmp_path / "nope.db", code=1)["error"]
    assert "no database at" in missing["message"]
    neg = run_json("state", "last", "--at", "-2", "--db", db, code=2)["error"]
    assert "negative" in neg["message"]


def test_human_errors_do_not_start_with_class_names(db: Path) -> None:
    for args in (["state", "run_nope"], ["why", "last", "nope"], ["artifact", "sha256:" + "0" * 64]):
        result = run(*args, "--db", db, code=1)
        [line] = result.stderr.strip().splitlines()
        first = line.removeprefix("Error: ").split(":")[0]
        assert " " in first or not first[:1].isupper(), line  # a sentence, not `RunNotFound: ...`


# ------------------------------------------------------------------------------------------------
# seqs and event types


@pytest.mark.parametrize(
    "args",
    [
        ["events", "last", "--since", "-1"],
        ["events", "last", "--until", "-5"],
        ["state", "last", "--at", "-1"],
        ["diff", "last", "-1", "2"],
        ["diff", "last", "1", "-2"],
        ["fork", "last", "--at", "-3"],
    ],
)
def test_negative_seqs_are_refused_clearly(db: Path, args: list[str]) -> None:
    result = run(*args, "--db", db, code=2)
    assert "is negative" in result.stderr and "No such option" not in result.stderr


@pytest.mark.parametrize(
    "args", [["events", "last", "--since", "999"], ["state", "last", "--at", "999"], ["diff", "last", "1", "999"],
             ["fork", "last", "--at", "999"]],
)  # fmt: skip
def test_seqs_past_the_end_are_usage_errors_naming_the_range(db: Path, args: list[str]) -> None:
    result = run(*args, "--db", db, code=2)
    assert "999 is past the end of run" in result.stderr and "it has seqs 1.." in result.stderr


def test_a_fork_at_a_seq_no_fork_can_start_from_is_a_usage_error(db: Path) -> None:
    result = run("fork", "last", "--at", "0", "--db", db, code=2)
    assert "cannot fork run" in result.stderr and "it has seqs 1.." in result.stderr
    rows = run_json("events", "last", "--type", "llm_called", "--db", db)
    inside = rows[0]["seq"]  # a model's answer and what it decided are one recorded step
    result = run("fork", "last", "--at", str(inside), "--db", db, code=2)
    assert "inside one recorded step" in result.stderr and "Fork at a seq that ends a step" in result.stderr


def test_since_after_until_is_a_usage_error(db: Path) -> None:
    result = run("events", "last", "--since", "9", "--until", "3", "--db", db, code=2)
    assert "--since 9 is after --until 3" in result.stderr


@pytest.mark.parametrize("name", ["ToolFinished", "tool_finished", "toolfinished", "TOOL_FINISHED"])
def test_event_types_by_class_name_or_type_name(db: Path, name: str) -> None:
    rows = run_json("events", "last", "--type", name, "--db", db)
    assert rows and {r["type"] for r in rows} == {"tool_finished"}


# ------------------------------------------------------------------------------------------------
# artifacts, pipes


def test_artifact_to_a_file_or_pipe_is_the_exact_bytes(db: Path, tmp_path: Path) -> None:
    data = bytes(range(256)) * 40 + "é\n\x1b[2J".encode()
    with SQLiteEventStore(db) as s:
        ident = s.artifacts.put(data, "application/octet-stream").id
    assert run("artifact", ident, "--db", db).stdout_bytes == data  # stdout is not a terminal here
    assert run("artifact", ident, "-o", "-", "--db", db).stdout_bytes == data
    out = tmp_path / "a.bin"
    run("artifact", ident, "-o", out, "--db", db)
    assert out.read_bytes() == data
    meta = run_json("artifact", ident, "--db", db)
    assert meta["size"] == len(data) and meta["binary"] is True


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENTCORE_"))}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_a_closed_pipe_ends_quietly(db: Path) -> None:
    with SQLiteEventStore(db) as s:
        ident = s.artifacts.put(b"line\n" * 400_000, "text/plain").id  # 2 MB: more than a pipe holds
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentcore", "artifact", ident, "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env(),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(5) == b"line\n"
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert err == b"", err.decode()


def test_a_closed_pipe_while_printing_a_table_ends_quietly(db: Path) -> None:
    rid = only_run(db)
    with SQLiteEventStore(db) as s:
        for _ in range(150):
            s.fork(rid, 4)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentcore", "runs", "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env(),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert err == b"", err.decode()


# ------------------------------------------------------------------------------------------------
# forks, imports, why, export


def test_state_of_a_fork_shows_the_forks_id(db: Path) -> None:
    fork = run_json("fork", "last", "--at", "4", "--db", db)["run_id"]
    assert run_json("state", fork, "--db", db)["run_id"] == fork
    assert run_json("state", fork, "--at", "2", "--db", db)["run_id"] == fork


def test_last_after_import_is_the_imported_run_and_a_second_import_writes_nothing(
    db: Path, repo: Path, tmp_path: Path
) -> None:
    rid = only_run(db)
    trace = tmp_path / "t.jsonl"
    exported = run_json("export", rid, "-o", trace, "--db", db)
    assert exported["output"] == str(trace) and exported["run_id"] == rid
    other = tmp_path / "other.db"
    run("ask", "Where is TAX_RATE used?", "--repo", repo, "--db", other, "--quiet")  # a newer run
    first = run_json("import", trace, "--db", other)
    assert first == {"run_id": rid, "already_imported": False, "trace": str(trace)}
    assert run_json("state", "last", "--db", other)["run_id"] == rid  # older trace, but stored last
    again = run("import", trace, "--db", other)
    assert again.stdout.strip() == rid and "already imported" in again.stderr
    assert run_json("import", trace, "--db", other)["already_imported"] is True
    assert len(run_json("runs", "--db", other)) == 2


def test_why_lists_known_keys_in_a_stable_order(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "why.db"
    run("ask", "Who calls apply_tax?", "--repo", repo, "--db", db, "--quiet")
    messages = {run("why", "last", "usages", "--db", db, code=1).stderr for _ in range(3)}
    [message] = messages
    listed = message.split("known keys: ")[1].strip()
    keys = [k.strip().strip("'") for k in listed.split(",")]
    assert keys == sorted(keys) and "usages:apply_tax" in keys


# ------------------------------------------------------------------------------------------------
# resume and answer take the options ask takes; a budget-stopped run continues with a bigger budget


def test_a_run_stopped_by_its_step_budget_continues_with_a_bigger_one(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "budget.db"
    stopped = run_json("ask", "Who calls apply_tax?", "--repo", repo, "--db", db, "--max-steps", "1", code=1)
    assert stopped["reason"].startswith("budget: max_steps=1")
    same = run("resume", stopped["run_id"], "--db", db, "--quiet")
    assert "pass --max-steps N" in same.stderr
    more = run("resume", stopped["run_id"], "--db", db, "--max-steps", "8", "--quiet")
    assert "apply_tax is defined at shop/cart.py:22" in more.stdout
    assert f"run {stopped['run_id']} stopped at its step budget; continuing as fork" in more.stderr
    with SQLiteEventStore(db) as s:
        runs = s.runs()
        parent = s.state_at(stopped["run_id"])
    assert parent.status == "failed"  # the log of the stopped run is untouched
    [fork] = [r for r in runs if r.parent_run_id == stopped["run_id"]]
    assert fork.status == "succeeded"


def test_resume_and_answer_take_model_max_steps_and_quiet(repo: Path, tmp_path: Path) -> None:
    for name in ("resume", "answer"):
        page = run(name, "--help").stdout
        for option in ("--max-steps", "--model", "--quiet", "--offline", "--json", "--db"):
            assert option in page, (name, option)
    db = tmp_path / "ans.db"
    waiting = run_json("ask", "what is this about?", "--repo", repo, "--db", db, code=3)
    quiet = run("answer", waiting["run_id"], "where is Cart defined", "--db", db, "--quiet", "--max-steps", "4")
    assert "decided" not in quiet.stderr and CART in quiet.stdout
    with SQLiteEventStore(db) as s:
        assert s.state_at(waiting["run_id"]).status == "succeeded"


def test_ask_prompts_in_place_on_a_terminal(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import agentcore.cli.commands as commands

    monkeypatch.setattr(commands, "_interactive", lambda as_json: True)
    db = tmp_path / "tty.db"
    result = run("ask", "what is this about?", "--repo", repo, "--db", db, stdin="where is Cart defined\n")
    assert CART in result.stdout and "your answer" in result.stderr
    with SQLiteEventStore(db) as s:
        [info] = s.runs()
        assert s.state_at(info.id).known_facts["user:answer"].value == "where is Cart defined"
