"""The ``agentcore`` command, in process through click's ``CliRunner``, on real SQLite files.

Runs are made with ``agentcore ask`` and the offline model (conftest clears every OPENAI_* variable,
so ``ask`` picks the offline model by itself).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

import agentcore.cli.commands as cli_module
import agentcore.cli.support as support
from agentcore.cli.commands import cli
from agentcore.core.event_codec import encode_event
from agentcore.core.events import LLMCalled, RunStarted, StatePatched, ToolFinished
from agentcore.models.scripted import ScriptedChatModel, call
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.code.agent_tools import code_tools
from tests.support.code_fixtures import PYTHON_DEFINITIONS, make_python_repo

QUESTION = "Where is Cart defined?"
CART = "{}:{}".format(*PYTHON_DEFINITIONS["Cart"])


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich wraps at 80 columns off a terminal; widen it so lines can be asserted whole."""
    monkeypatch.setattr(cli_module.console, "width", 240)
    monkeypatch.setattr(cli_module.err_console, "width", 240)


def invoke(*args: str | Path, code: int = 0) -> Result:
    """Run the CLI; fail on an unexpected exit code or on any exception other than an exit."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def invoke_json(*args: str | Path) -> Any:
    return json.loads(invoke(*args, "--json").stdout)


def copy_db(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")
    return dst


@dataclass
class Made:
    repo: Path
    db: Path
    run_id: str
    answer: dict[str, Any]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """One `ask` run, stored in a database that tests only read (copy it to change it)."""
    base = tmp_path_factory.mktemp("cli")
    repo = make_python_repo(base / "repo")
    db = base / "runs.db"
    result = CliRunner().invoke(cli, ["ask", QUESTION, "--repo", str(repo), "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    return Made(repo=repo, db=db, run_id=answer["run_id"], answer=answer)


@pytest.fixture
def private_db(made: Made, tmp_path: Path) -> Path:
    """A copy of ``made.db`` that a test may change."""
    return copy_db(made.db, tmp_path / "copy.db")


@pytest.fixture
def store(made: Made) -> Iterator[SQLiteEventStore]:
    s = SQLiteEventStore(made.db)
    try:
        yield s
    finally:
        s.close()


def seq_of(store: SQLiteEventStore, run_id: str, cls: type) -> int:
    return next(e.seq for e in store.read(run_id) if isinstance(e, cls))


# ------------------------------------------------------------------------------------------------
# ask


def test_ask_json_answers_and_stores_the_run(made: Made, store: SQLiteEventStore) -> None:
    a = made.answer
    assert a["status"] == "succeeded"
    assert CART in a["reply"]
    assert a["db"] == str(made.db)
    [fact] = a["facts"]
    assert fact["key"] == "definition:Cart" and CART in fact["value"]
    finished = [e for e in store.read(made.run_id) if isinstance(e, ToolFinished)]
    assert [e.call_id for e in finished] == [fact["source"]]
    assert finished[0].artifact is not None and finished[0].artifact.id == fact["artifact_id"]
    state = store.state_at(made.run_id)
    assert state.reply == a["reply"] and state.last_seq == a["events"]
    config = next(iter(store.read(made.run_id, upto=1)))
    assert isinstance(config, RunStarted)
    assert config.config["metadata"] == {"toolkit": "code", "repo": str(made.repo.resolve())}


def test_ask_text_shows_progress_answer_facts_and_next_commands(made: Made, tmp_path: Path) -> None:
    db = tmp_path / "text.db"
    result = invoke("ask", "Who calls apply_tax?", "--repo", made.repo, "--db", db)
    out, err = result.stdout, result.stderr
    # progress, the banner and the hints on stderr; the answer and its facts on stdout
    assert "offline model" in err and "offline model" not in out
    assert 'decided call find_definition(symbol="apply_tax"), find_references(symbol="apply_tax")' in err
    assert "tool find_definition ok" in err and "run succeeded" in err and "decided" not in out
    assert out.startswith("apply_tax is defined at shop/cart.py:22")
    assert "apply_tax has 1 use in 1 file: called 1 time at shop/cart.py:19." in out
    assert "- definition:apply_tax: apply_tax is defined at shop/cart.py:22" in out
    assert "- usages:apply_tax:" in out
    with SQLiteEventStore(db) as s:
        [info] = s.runs()
    assert f"run {info.id}: " in err and "inspect it with" not in out
    assert f"agentcore why {info.id} definition:apply_tax --db {db}" in err


def test_ask_quiet_prints_no_progress(made: Made, tmp_path: Path) -> None:
    out = invoke("ask", QUESTION, "--repo", made.repo, "--db", tmp_path / "q.db", "--quiet").output
    assert "decided" not in out and "tool find_definition" not in out
    assert CART in out


def test_ask_that_runs_out_of_steps_fails_with_exit_code_1(made: Made, tmp_path: Path) -> None:
    result = invoke("ask", "Where is TAX_RATE used?", "--repo", made.repo, "--db", tmp_path / "f.db",
                    "--max-steps", "1", code=1)  # fmt: skip
    assert "Run failed" in result.stderr and "budget: max_steps=1" in result.stderr


# ------------------------------------------------------------------------------------------------
# inspection


def test_runs_lists_the_run(made: Made) -> None:
    [row] = invoke_json("runs", "--db", made.db)
    assert row["id"] == made.run_id and row["task"] == QUESTION
    assert row["status"] == "succeeded" and row["events"] == made.answer["events"]
    text = invoke("runs", "--db", made.db).stdout
    assert made.run_id in text and "succeeded" in text and QUESTION in text


def test_events_all_filtered_and_windowed(made: Made, store: SQLiteEventStore) -> None:
    rows = invoke_json("events", made.run_id, "--db", made.db)
    assert [r["seq"] for r in rows] == list(range(1, made.answer["events"] + 1))
    assert rows[0]["type"] == "run_started" and rows[-1]["type"] == "run_finished"
    assert [r["event"] for r in rows] == [json.loads(encode_event(e)) for e in store.read(made.run_id)]

    only = invoke_json("events", made.run_id, "--type", "tool_finished", "--type", "decided", "--db", made.db)
    assert {r["type"] for r in only} == {"tool_finished", "decided"}
    assert len(only) == sum(r["type"] in ("tool_finished", "decided") for r in rows)

    window = invoke_json("events", made.run_id, "--since", "3", "--until", "5", "--db", made.db)
    assert [r["seq"] for r in window] == [3, 4, 5]

    text = invoke("events", made.run_id, "--type", "tool_finished", "--db", made.db).stdout
    assert "tool_finished" in text and "find_definition" in text and "run_started" not in text


def test_events_with_an_unknown_type_says_which_types_exist(made: Made) -> None:
    result = invoke("events", made.run_id, "--type", "tool_done", "--db", made.db, code=2)
    assert "unknown event type tool_done" in result.stderr and "tool_finished (ToolFinished)" in result.stderr


def test_state_at_a_seq(made: Made, store: SQLiteEventStore) -> None:
    patched = seq_of(store, made.run_id, StatePatched)
    before = json.loads(invoke("state", made.run_id, "--at", patched - 1, "--db", made.db).stdout)
    after = json.loads(invoke("state", made.run_id, "--at", patched, "--db", made.db).stdout)
    assert before["known_facts"] == {} and before["status"] == "running"
    assert list(after["known_facts"]) == ["definition:Cart"]
    assert after == store.state_at(made.run_id, patched).to_json()
    latest = json.loads(invoke("state", made.run_id, "--db", made.db).stdout)
    assert latest["status"] == "succeeded" and latest["reply"] == made.answer["reply"]


def test_diff_between_two_seqs(made: Made, store: SQLiteEventStore) -> None:
    patched = seq_of(store, made.run_id, StatePatched)
    ops = invoke_json("diff", made.run_id, str(patched - 1), str(patched), "--db", made.db)
    assert ops == store.diff(made.run_id, patched - 1, patched)
    assert {"op": "add", "path": "/known_facts/definition:Cart"} in [{"op": o["op"], "path": o["path"]} for o in ops]
    text = invoke("diff", made.run_id, patched - 1, patched, "--db", made.db).stdout
    assert "add      /known_facts/definition:Cart" in text
    assert invoke("diff", made.run_id, 4, 4, "--db", made.db).output.strip() == "no difference"


def test_why_explains_a_fact_back_to_the_decision(made: Made, store: SQLiteEventStore) -> None:
    data = invoke_json("why", made.run_id, "definition:Cart", "--db", made.db)
    assert data["fact"]["key"] == "definition:Cart"
    types = [link["type"] for link in data["chain"]]
    assert types[0] == "state_patched" and "tool_finished" in types and types[-1] in ("decided", "llm_called")
    assert "decided" in types
    tool_link = next(link for link in data["chain"] if link["type"] == "tool_finished")
    assert tool_link["seq"] == seq_of(store, made.run_id, ToolFinished)
    text = invoke("why", made.run_id, "definition:Cart", "--db", made.db).stdout
    assert text.startswith(f"definition:Cart = Cart is defined at {CART}")
    assert f"<- seq {tool_link['seq']:>4} tool_finished: find_definition" in text
    assert made.answer["facts"][0]["artifact_id"] in text


def test_why_of_an_unknown_fact_lists_the_known_ones(made: Made) -> None:
    result = invoke("why", made.run_id, "definition:Nope", "--db", made.db, code=1)
    assert "no fact 'definition:Nope'" in result.stderr and "definition:Cart" in result.stderr


def test_artifact_text_limit_and_output_file(
    made: Made, store: SQLiteEventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = made.answer["facts"][0]["artifact_id"]
    data = store.artifacts.read(ident)
    monkeypatch.setattr(support, "stdout_is_terminal", lambda: True)  # a preview on a terminal
    text = invoke("artifact", ident, "--db", made.db).output
    assert f"{ident}  application/json  {len(data)} bytes" in text
    assert '"definitions":' in text and '"symbol":"Cart"' in text
    short = invoke("artifact", ident, "--limit", "10", "--db", made.db).output
    assert f"{len(data) - 10} more bytes" in short
    out = tmp_path / "artifact.json"
    invoke("artifact", ident, "-o", out, "--db", made.db)
    assert out.read_bytes() == data
    preview = invoke_json("artifact", ident, "--db", made.db)
    assert preview["size"] == len(data) and not preview["truncated"]


def test_usage_counts_calls_per_role(made: Made, store: SQLiteEventStore) -> None:
    data = invoke_json("usage", made.run_id, "--db", made.db)
    calls = [e for e in store.read(made.run_id) if isinstance(e, LLMCalled)]
    for role in ("controller", "processor"):
        assert data["by_role"][role]["calls"] == sum(e.role == role for e in calls)
    assert data["total"]["calls"] == len(calls)
    text = invoke("usage", made.run_id, "--db", made.db).stdout
    for word in ("by role", "controller", "processor", "total", "by step"):
        assert word in text


def test_view_writes_an_html_page_of_the_run(made: Made, tmp_path: Path) -> None:
    page = tmp_path / "run.html"
    out = invoke("view", made.run_id, "-o", page, "--db", made.db).stderr
    assert f"wrote {page}" in out
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and made.run_id in html
    assert invoke_json("view", made.run_id, "-o", page, "--db", made.db)["bytes"] == len(html.encode())


# ------------------------------------------------------------------------------------------------
# fork, resume, answer


def test_fork_then_resume_finishes_the_fork(made: Made, private_db: Path) -> None:
    with SQLiteEventStore(private_db) as s:
        at = seq_of(s, made.run_id, ToolFinished)  # the tool result is in, the processor has not run
    forked = invoke_json("fork", made.run_id, "--at", str(at), "--db", private_db)
    new_id = forked["run_id"]
    assert forked == {"run_id": new_id, "parent_run_id": made.run_id, "forked_at_seq": at} and new_id != made.run_id
    with SQLiteEventStore(private_db) as s:
        assert s.run(new_id).parent_run_id == made.run_id
        assert s.state_at(new_id).status == "running"
    out = invoke("resume", new_id, "--db", private_db).output
    assert "run succeeded" in out and CART in out
    with SQLiteEventStore(private_db) as s:
        fork_state, parent = s.state_at(new_id), s.state_at(made.run_id)
        assert fork_state.status == "succeeded" and fork_state.reply == parent.reply
        assert fork_state.last_seq == parent.last_seq
        assert s.state_at(made.run_id).last_seq == made.answer["events"]  # the parent is untouched
    again = invoke("resume", new_id, "--db", private_db)
    assert f"run {new_id} already succeeded; nothing to resume" in again.stderr


def test_fork_text_output(made: Made, private_db: Path) -> None:
    result = invoke("fork", made.run_id, "--at", "4", "--db", private_db)
    assert result.stderr.startswith(f"forked {made.run_id} at seq 4: new run")
    with SQLiteEventStore(private_db) as s:
        assert s.run(result.stdout.strip()).parent_run_id == made.run_id  # stdout: the new id alone


def test_resume_of_a_finished_run_says_so_and_writes_nothing(made: Made, private_db: Path) -> None:
    out = invoke("resume", made.run_id, "--db", private_db).stderr
    assert out.strip() == f"run {made.run_id} already succeeded; nothing to resume"
    assert invoke_json("resume", made.run_id, "--db", private_db) == {
        "run_id": made.run_id,
        "status": "succeeded",
        "resumed": False,
    }
    with SQLiteEventStore(private_db) as s:
        assert s.last_seq(made.run_id) == made.answer["events"]


def test_answer_continues_a_run_waiting_for_the_user(made: Made, tmp_path: Path) -> None:
    db = tmp_path / "ask_user.db"
    asking = ScriptedChatModel([call("ask_user", question="Which class do you mean?")], name="scripted")
    meta = {"toolkit": "code", "repo": str(made.repo.resolve())}
    with SQLiteEventStore(db) as s:
        waiting = Agent(asking, asking, code_tools(made.repo), s, metadata=meta).run_sync(QUESTION)
    assert waiting.status == "waiting_for_user"
    out = invoke("answer", waiting.run_id, "the Cart class", "--offline", "--db", db).output
    assert "run succeeded" in out and CART in out
    with SQLiteEventStore(db) as s:
        state = s.state_at(waiting.run_id)
    assert state.status == "succeeded" and state.known_facts["user:answer"].value == "the Cart class"
    result = invoke("answer", waiting.run_id, "again", "--offline", "--db", db, code=1)
    assert "is not waiting for an answer" in result.stderr


# ------------------------------------------------------------------------------------------------
# traces


def test_export_import_round_trip(made: Made, store: SQLiteEventStore, tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    info = invoke_json("export", made.run_id, "-o", str(trace), "--db", made.db)
    assert info["events"] == made.answer["events"] and trace.exists()
    other = tmp_path / "other.db"
    imported = invoke_json("import", str(trace), "--db", str(other))
    assert imported["run_id"] == made.run_id
    with SQLiteEventStore(other) as s:
        assert [encode_event(e) for e in s.read(made.run_id)] == [encode_event(e) for e in store.read(made.run_id)]
        ident = made.answer["facts"][0]["artifact_id"]
        assert s.artifacts.read(ident) == store.artifacts.read(ident)
    text = invoke("export", made.run_id, "-o", trace, "--db", made.db).stderr
    assert f"wrote {trace}: {made.answer['events']} events" in text


def test_replay_of_an_exported_run_matches(made: Made, tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    invoke("export", made.run_id, "-o", trace, "--db", made.db)
    out = invoke("replay", trace).stdout
    assert out.strip() == f"replay of {made.run_id} matches: {made.answer['events']} events, status succeeded"
    report = invoke_json("replay", str(trace))
    assert report["ok"] is True and report["divergence"] is None and report["unused"] == 0
    live = invoke_json("replay", str(trace), "--live-tools", "--repo", str(made.repo))
    assert live["ok"] is True


def test_replay_with_live_tools_reports_a_divergence(tmp_path: Path) -> None:
    repo = make_python_repo(tmp_path / "repo")
    db, trace = tmp_path / "r.db", tmp_path / "r.jsonl"
    run_id = invoke_json("ask", QUESTION, "--repo", str(repo), "--db", str(db))["run_id"]
    invoke("export", run_id, "-o", trace, "--db", db)
    cart = repo / "shop" / "cart.py"
    cart.write_text("# moved\n" + cart.read_text(encoding="utf-8"), encoding="utf-8")  # Cart is now on line 10
    result = invoke("replay", trace, "--live-tools", "--repo", repo, code=1)
    assert f"replay of {run_id}" in result.stdout and "diverged" in result.stdout
    assert invoke("replay", trace).exit_code == 0  # from the recording, the trace still replays


# ------------------------------------------------------------------------------------------------
# errors and help


def one_line_error(result: Result, *needles: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in result.output
    assert not re.match(r"Error: [A-Z][a-zA-Z]+(Error|Found|Database|Unavailable):", lines[0]), lines[0]
    for needle in needles:
        assert needle in lines[0]


def test_missing_database_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    for args in (["runs"], ["events", "run_x"], ["state", "run_x"], ["resume", "run_x"], ["usage", "run_x"]):
        one_line_error(invoke(*args, "--db", missing, code=1), f"no database at {missing}", "agentcore ask")
    assert not missing.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["events", "run_nope"],
        ["state", "run_nope"],
        ["diff", "run_nope", "1", "2"],
        ["why", "run_nope", "definition:Cart"],
        ["usage", "run_nope"],
        ["fork", "run_nope", "--at", "1"],
        ["resume", "run_nope"],
        ["answer", "run_nope", "yes"],
        ["export", "run_nope", "-o", "x.jsonl"],
        ["view", "run_nope", "-o", "x.html"],
    ],
)
def test_unknown_run_is_a_one_line_error(
    made: Made, args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # -o x.jsonl / x.html must not land in the repository, even on a bug
    one_line_error(invoke(*args, "--db", made.db, code=1), "no run 'run_nope'")


def test_bad_input_files_are_one_line_errors(made: Made, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all\n")
    one_line_error(invoke("runs", "--db", junk, code=1), str(junk))
    one_line_error(invoke("replay", junk, code=1), "junk.db line 1 is not JSON")
    one_line_error(invoke("import", junk, "--db", tmp_path / "new.db", code=1), "junk.db line 1 is not JSON")
    ident = made.answer["facts"][0]["artifact_id"]
    nowhere = tmp_path / "no" / "such" / "dir"
    one_line_error(invoke("artifact", ident, "-o", nowhere / "a.bin", "--db", made.db, code=1), str(nowhere))
    one_line_error(invoke("view", made.run_id, "-o", nowhere / "v.html", "--db", made.db, code=1), str(nowhere))
    usage = invoke("state", made.run_id, "--at", "999", "--db", made.db, code=2).stderr
    assert "999 is past the end of run" in usage and "Traceback" not in usage


def test_every_command_has_help() -> None:
    assert isinstance(cli, click.Group)
    expected = {"ask", "resume", "answer", "runs", "events", "state", "diff", "why", "artifact", "fork", "usage",
                "export", "import", "replay", "view"}  # fmt: skip
    assert expected <= set(cli.commands)
    top = invoke("--help").stdout
    for name, command in cli.commands.items():
        summary = command.get_short_help_str(limit=200)
        assert summary.strip(), f"`agentcore {name}` has no help text"
        assert name in top
        page = " ".join(invoke(name, "--help").stdout.split())
        assert " ".join((command.help or "").splitlines()[0].split()) in page
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"option {param.opts} of `agentcore {name}` has no help"


def test_offline_flag_wins_over_a_configured_model_server(
    made: Made, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    out = invoke("ask", QUESTION, "--repo", made.repo, "--db", tmp_path / "o.db", "--offline").output
    assert "offline model" in out and CART in out
    with SQLiteEventStore(tmp_path / "o.db") as s:
        [info] = s.runs()
        assert next(iter(s.read(info.id, upto=1))).config["controller_model"] == "agentcore-offline"


def test_last_names_the_newest_run(made: Made, private_db: Path) -> None:
    assert invoke_json("state", "last", "--db", private_db)["run_id"] == made.run_id
    fork = invoke_json("fork", "last", "--at", "4", "--db", private_db)["run_id"]
    assert invoke_json("events", "last", "--db", private_db)[-1]["seq"] == 4  # the fork is newest now
    assert invoke_json("runs", "--db", private_db)[-1]["id"] == fork


def test_last_on_an_empty_database_says_to_ask_first(tmp_path: Path) -> None:
    from agentcore.storage.sqlite.store import SQLiteEventStore

    SQLiteEventStore(tmp_path / "empty.db").close()
    result = invoke("events", "last", "--db", tmp_path / "empty.db", code=1)
    assert "no runs yet" in result.output
