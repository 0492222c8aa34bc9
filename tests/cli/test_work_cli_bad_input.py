"""Bad input to the queue commands and to ``--db``, as a newcomer types it, in real processes.

A URL that does not parse, a libpq ``key=value`` string, bytes that are not UTF-8 in a question,
``last`` and odd timeouts for ``wait``, ``submit``/``worker`` pointed at an SQLite path, and ``--app``
specs that cannot be imported: each is one ``Error:`` line (exit 1, or 2 for a usage error: a ``--db``
refused as a setting is one), never a traceback, never the password, and nothing is created on the way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.postgres import PASSWORD

ROOT = str(Path(__file__).resolve().parents[2])
SCRIPT = str(Path(sys.executable).parent / "agentcore")  # the console script (no cwd on sys.path)


def run(
    *args: str, cwd: str | Path = ROOT, env: dict[str, str] | None = None, script: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    cmd = [SCRIPT] if script else [sys.executable, "-m", "agentcore"]
    return subprocess.run(
        [*cmd, *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def one_error_line(got: subprocess.CompletedProcess[str], *, code: int = 1) -> str:
    """The single ``Error:`` line of a refused command (no traceback, no password)."""
    out = got.stdout + got.stderr
    assert got.returncode == code, out
    assert "Traceback" not in out and PASSWORD not in out, out
    errors = [line for line in got.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, out
    return errors[0]


def test_a_url_that_does_not_parse_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://agentcore:{PASSWORD}@[::1:5432/agentcore"
    for args in (("--db", url, "runs"), ("runs",)):
        got = run(*args, cwd=tmp_path, env={"AGENTCORE_DB": url})
        assert "agentcore:***@" in one_error_line(got, code=2)  # the user's input: exit 2 (was 1)
    assert list(tmp_path.iterdir()) == []


def test_a_libpq_key_value_string_is_refused_without_the_password_and_without_a_file(tmp_path: Path) -> None:
    conninfo = f"host=127.0.0.1 port=5432 user=agentcore password={PASSWORD} dbname=agentcore"
    for args in (("--db", conninfo, "runs"), ("--db", conninfo, "ask", "where is x?", "--repo", ROOT)):
        line = one_error_line(run(*args, cwd=tmp_path), code=2)  # the user's input: exit 2 (was 1)
        assert "password=***" in line and "postgresql://" in line
    assert list(tmp_path.iterdir()) == []  # not an SQLite file named after the string


def test_connection_errors_are_one_line(tmp_path: Path) -> None:
    from tests.support.postgres import free_port

    port = free_port()  # nobody listens: libpq's message spans two lines
    got = run("--db", f"postgresql://agentcore:{PASSWORD}@127.0.0.1:{port}/x", "runs", cwd=tmp_path)
    line = one_error_line(got)
    assert "Connection refused" in line and got.stderr.strip() == line


@pytest.mark.parametrize(
    ("spoil", "says"),
    [("?sslmode=bogus", 'invalid sslmode value: "bogus"'), ("?bogus=1", 'invalid URI query parameter: "bogus"')],
)
def test_a_connection_setting_libpq_refuses_is_a_usage_error_of_every_command(
    pg_url: str, tmp_path: Path, spoil: str, says: str
) -> None:
    """It was "cannot connect ... Is it running?" (exit 1): the setting is named, exit 2, no password."""
    bad = pg_url + spoil
    for args, env in (
        (("runs",), {"AGENTCORE_DB": bad}),
        (("submit", "where is x?", "--offline"), {"AGENTCORE_DB": bad}),
        (("worker", "--exit-when-idle"), {"AGENTCORE_DB": bad}),
        (("wait", "last"), {"AGENTCORE_DB": bad}),
        (("copy", "--to", str(tmp_path / "all.db")), {"AGENTCORE_DB": bad}),  # the source
        (("copy", "--from", pg_url, "--to", bad), {}),  # the target
    ):
        line = one_error_line(run(*args, cwd=tmp_path, env=env, timeout=60), code=2)
        assert says in line and "the connection settings are invalid" in line and "agentcore:***@" in line, line
    got = run("runs", "--json", cwd=tmp_path, env={"AGENTCORE_DB": bad})
    assert got.returncode == 2 and json.loads(got.stdout)["error"]["type"] == "ConfigError", got
    assert list(tmp_path.iterdir()) == []


def test_submit_and_worker_refuse_an_sqlite_path_without_creating_it(tmp_path: Path) -> None:
    for args in (("submit", "where is x?", "--offline"), ("worker", "--exit-when-idle")):
        got = run(*args, "--db", str(tmp_path / "new.db"), cwd=tmp_path)
        assert "has no work queue" in one_error_line(got)
    assert list(tmp_path.iterdir()) == []


def test_a_question_that_is_not_utf8_is_a_usage_error(pg_url: str) -> None:
    got = subprocess.run(
        [sys.executable, "-m", "agentcore", "submit", b"where is \xff\xfe?", "--offline", "--db", pg_url],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "not valid UTF-8" in one_error_line(got, code=2)
    from agentcore.storage import open_store

    with open_store(pg_url) as store:
        assert store.runs() == []


def test_ask_with_a_question_that_is_not_utf8_is_a_usage_error_and_stores_nothing(tmp_path: Path) -> None:
    """Python makes lone surrogates of argv bytes that are not UTF-8; ``ask`` refuses them as ``submit`` does."""
    db = tmp_path / "runs.db"
    got = subprocess.run(
        [sys.executable, "-m", "agentcore", "--db", str(db), "ask", b"ab\xffc", "--offline"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "not valid UTF-8 (b'\\xff' at character 2)" in one_error_line(got, code=2)
    if db.exists():
        from agentcore.storage import open_store

        with open_store(str(db)) as store:
            assert store.runs() == []


def test_submit_refuses_a_step_budget_that_ask_refuses(pg_url: str) -> None:
    for bad in ("0", "-5"):  # the worker used 12 for 0, and failed on -5 only when it took the run
        got = run("submit", "where is x?", "--offline", "--max-steps", bad, "--db", pg_url)
        assert "--max-steps" in one_error_line(got, code=2)
    from agentcore.storage import open_store

    with open_store(pg_url) as store:
        assert store.runs() == []


def test_wait_takes_last_and_refuses_timeouts_that_are_not_seconds(pg_url: str) -> None:
    from agentcore.storage import open_store
    from tests.storage.test_store import fill, finished

    with open_store(pg_url) as store:
        rid, _ = fill(store, steps=1)
        store.append(rid, [finished(rid, 7, "succeeded")], 6)
    got = run("wait", "last", "--json", "--db", pg_url)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["runs"] == {rid: "succeeded"}
    for bad in ("nan", "-1"):
        assert "--timeout" in one_error_line(run("wait", rid, "--timeout", bad, "--db", pg_url, timeout=30), code=2)
    assert "cannot be empty" in one_error_line(run("wait", "", "--db", pg_url), code=2)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("..relative:build", "cannot import '..relative'"),
        ("explodes:build", "RuntimeError: exploded at import"),
        ("broken_syntax:build", "SyntaxError"),
    ],
)
def test_an_app_that_cannot_be_imported_is_one_line(pg_url: str, tmp_path: Path, spec: str, says: str) -> None:
    (tmp_path / "explodes.py").write_text("raise RuntimeError('exploded at import')\n")
    (tmp_path / "broken_syntax.py").write_text("def build(:\n")
    got = run("worker", "--exit-when-idle", "--app", spec, "--db", pg_url, cwd=tmp_path)
    assert says in one_error_line(got)


def test_an_app_in_the_current_directory_is_found_by_the_console_script(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text("def build(store, spec):\n    raise AssertionError('not called')\n")
    got = run("worker", "--exit-when-idle", "--app", "myapp:build", "--json", "--db", pg_url, cwd=tmp_path, script=True)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["finished"] == 0


@pytest.mark.parametrize(
    "option",
    [
        "--heartbeat=0", "--heartbeat=-1", "--heartbeat=nan", "--poll=0", "--lease=inf", "--heartbeat=40",
        "--lease=1e308",  # finite, but now() + lease is past PostgreSQL's timestamps: every claim failed
        "--lease=1e10",
    ],
)  # fmt: skip
def test_worker_durations_that_would_spin_or_never_claim_are_refused(pg_url: str, option: str) -> None:
    got = run("worker", "--exit-when-idle", option, "--db", pg_url, timeout=30)
    assert "seconds" in one_error_line(got) or "shorter than" in one_error_line(got)


def test_resume_and_answer_of_a_queued_run_say_it_has_not_started(pg_url: str) -> None:
    got = run("submit", "where is x?", "--offline", "--json", "--db", pg_url)
    rid = json.loads(got.stdout)["run_id"]
    for args in (("resume", rid), ("answer", rid, "yes")):
        line = one_error_line(run(*args, "--db", pg_url))
        assert "has not started yet" in line and "agentcore worker" in line  # was: "has no run_started event"


@pytest.mark.parametrize(
    "target",
    [
        f"postgresql+psycopg://agentcore:{PASSWORD}@127.0.0.1:5432/agentcore",  # SQLAlchemy's spelling
        f"postgresql:/agentcore:{PASSWORD}@127.0.0.1:5432/agentcore",  # one slash
        f"mysql://agentcore:{PASSWORD}@127.0.0.1:3306/agentcore",
    ],
)
def test_a_url_of_another_scheme_is_refused_without_the_password_and_without_a_file(tmp_path: Path, target: str) -> None:
    for args in (("runs",), ("ask", "where is x?", "--repo", ROOT), ("submit", "where is x?", "--offline")):
        line = one_error_line(run(*args, cwd=tmp_path, env={"AGENTCORE_DB": target}), code=2)  # was exit 1
        assert "not a database agentcore can open" in line and "agentcore:***@" in line, line
    assert list(tmp_path.iterdir()) == []  # was: "cannot create postgresql+psycopg://agentcore:PASSWORD@..."


def test_an_upper_case_scheme_and_stray_spaces_still_reach_the_server(pg_url: str) -> None:
    scheme, rest = pg_url.split("://", 1)
    got = run("runs", "--json", env={"AGENTCORE_DB": f"  {scheme.upper()}://{rest} "})
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == []


def test_copy_reads_agentcore_db_by_default_takes_last_and_checks_ids_before_creating_the_target(
    pg_url: str, tmp_path: Path
) -> None:
    from agentcore.storage import open_store
    from tests.storage.test_store import fill

    with open_store(pg_url) as store:
        first, _ = fill(store, steps=1)
        newest, _ = fill(store, steps=1)
    env = {"AGENTCORE_DB": pg_url}
    got = run("copy", "--to", str(tmp_path / "all.db"), "--json", env=env)  # was: Missing option '--from'
    assert got.returncode == 0, got.stderr
    assert sorted(json.loads(got.stdout)["copied"]) == sorted([first, newest])
    got = run("copy", "last", "--to", str(tmp_path / "last.db"), "--json", env=env)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["copied"] == [newest]
    assert "run_nope" in one_error_line(run("copy", "run_nope", "--to", str(tmp_path / "none.db"), env=env))
    assert not (tmp_path / "none.db").exists()  # was created empty before the id was found missing


def test_the_postgresql_names_the_readme_uses_import_from_agentcore_without_loading_psycopg_early() -> None:
    code = (
        "import sys, agentcore; assert 'psycopg' not in sys.modules; "
        "from agentcore import LeaseLost, PostgresEventStore, Worker, open_store; "
        "assert 'psycopg' in sys.modules and PostgresEventStore.__name__ == 'PostgresEventStore'"
    )  # was: ImportError for each ("PostgresEventStore(url)", "open_store(target)" in the README)
    got = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr


def test_an_over_long_run_id_is_a_short_usage_error(pg_url: str, tmp_path: Path) -> None:
    """No store takes a run id over 512 bytes, so none names a run: said in one line, the id cut short."""
    long_id = "x" * 9000
    db = tmp_path / "a.db"
    from agentcore.storage import open_store

    with open_store(db):
        pass
    for args in (("wait", long_id, "--db", pg_url), ("state", long_id, "--db", str(db)),
                 ("copy", long_id, "--from", pg_url, "--to", str(tmp_path / "b.db"))):  # fmt: skip
        line = one_error_line(run(*args), code=2)
        assert "9000 bytes long" in line and "at most 512 bytes" in line and "agentcore runs" in line, line
        assert "x" * 41 not in line and len(line) < 400, line
    assert not (tmp_path / "b.db").exists()


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_concurrency_that_is_not_a_positive_count_is_a_usage_error(pg_url: str, value: str) -> None:
    got = run("worker", "--exit-when-idle", "--concurrency", value, "--db", pg_url)  # was exit 1, a ConfigError
    assert got.returncode == 2 and "Invalid value for '--concurrency'" in got.stderr, got.stderr
    assert "Traceback" not in got.stderr and PASSWORD not in got.stdout + got.stderr
