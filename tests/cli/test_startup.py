"""What the ``agentcore`` command imports at start-up (a behaviour test: no time is asserted).

Each check runs a fresh interpreter, because this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("openai", "httpx", "agentcore.runtime.agent", "agentcore.roles.controller", "agentcore.tools.code")


def loaded_after(code: str) -> set[str]:
    """The names of ``HEAVY`` that are in ``sys.modules`` after running ``code`` in a new interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("code", ["import agentcore", "import agentcore.cli", "from agentcore import fold, SQLiteEventStore"])
def test_importing_the_cli_or_the_package_loads_no_model_client_nor_run_loop(code: str) -> None:
    assert loaded_after(code) == set()


def test_a_name_that_needs_openai_still_imports_from_agentcore() -> None:
    assert loaded_after("from agentcore import OpenAIChatModel") >= {"openai"}


def test_inspection_commands_load_no_model_client(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "a.db"
    code = (
        "import sys\nfrom agentcore.cli.commands import cli\n"
        f"for args in (['runs', '--db', {str(db)!r}], ['--version']):\n"
        "    try:\n        cli(args, standalone_mode=False)\n    except Exception as e:\n        print(type(e).__name__)\n"
    )
    assert loaded_after(code) == set()


def test_version_answers_without_loading_the_commands() -> None:
    """``agentcore --version`` prints what click's version option prints, with none of the
    commands, pydantic, click or importlib.metadata imported (the printed version is
    the package metadata's: click's option reads it in the CliRunner call)."""
    from click.testing import CliRunner

    from agentcore import __version__
    from agentcore.cli import cli

    code = (
        "import sys\nsys.argv = ['agentcore', '--version']\nfrom agentcore.cli import main\nmain()\n"
        "print(sorted(m for m in ('pydantic', 'agentcore.cli.commands', 'sqlite3', 'click', 'importlib.metadata')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    printed, loaded = done.stdout.strip().splitlines()
    assert loaded == "[]"
    assert printed == CliRunner().invoke(cli, ["--version"], prog_name="agentcore").output.strip() == f"agentcore, version {__version__}"


NOT_FOR_INSPECTION = (
    *HEAVY, "asyncio", "sqlite_utils", "rich.live", "rich.progress", "opentelemetry", "mcp",
    "agentcore.cli.traces", "agentcore.cli.work", "agentcore.cli.serving",
)  # fmt: skip
"""What ``runs``, ``events`` and ``state`` on an existing, up-to-date database never need (the event
loop is for running agents and serving MCP; sqlite_utils for creating or migrating a file; live
displays for long commands; the modules of the other commands)."""

NOT_FOR_JSON_OUTPUT = ("rich",)
"""What ``state`` (JSON on stdout) does not need besides: no table, no markup, so no rich."""


def test_runs_events_and_state_import_no_event_loop_nor_migration_tool(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agentcore.core.events import RunStarted
    from agentcore.storage.sqlite.store import SQLiteEventStore
    from tests.storage.test_store import at

    db = tmp_path / "a.db"
    with SQLiteEventStore(db) as store:
        store.create_run("t", run_id="r1", events=[RunStarted(run_id="r1", seq=1, at=at(1), task="t")])
    for args, unwanted in (
        (["runs"], NOT_FOR_INSPECTION),
        (["events", "r1"], NOT_FOR_INSPECTION),
        (["state", "r1"], (*NOT_FOR_INSPECTION, *NOT_FOR_JSON_OUTPUT)),
    ):
        code = (
            "import json, sys\nfrom agentcore.cli import main\n"
            f"sys.argv = ['agentcore', '--db', {str(db)!r}, *{args!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            f"print(json.dumps([m for m in {list(unwanted)!r} if m in sys.modules]))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
        assert json.loads(done.stdout.strip().splitlines()[-1]) == [], (args, done.stderr)
        assert "run_started" in done.stdout or "r1" in done.stdout  # the command printed its answer


def test_every_lazily_loaded_command_is_defined_by_the_module_it_is_filed_under() -> None:
    """``LAZY_COMMANDS`` names each command of the inspection, trace, worker and serving modules
    exactly once, under the module that defines it; the group lists and finds every one."""
    import importlib

    from agentcore.cli.commands import LAZY_COMMANDS, cli

    modules = set(LAZY_COMMANDS.values())
    defined = {c.name: m for m in modules for c in importlib.import_module(m).COMMANDS}
    assert defined == LAZY_COMMANDS
    for name in LAZY_COMMANDS:
        assert cli.get_command(None, name) is not None  # type: ignore[arg-type]
        assert name in cli.list_commands(None)  # type: ignore[arg-type]
    assert {"ask", "resume", "answer"} <= set(cli.commands)


def test_runs_builds_no_pydantic_validator(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``agentcore runs`` answers from SQL: no event, state or patch model builds its validator or
    serializer (they are ``defer_build``; module-level bindings wait for first use), so pydantic's
    schema building and plugin loading are never paid for."""
    from agentcore.core.events import RunStarted
    from agentcore.storage.sqlite.store import SQLiteEventStore
    from tests.storage.test_store import at

    db = tmp_path / "a.db"
    with SQLiteEventStore(db) as store:
        store.create_run("t", run_id="r1", events=[RunStarted(run_id="r1", seq=1, at=at(1), task="t")])
    code = (
        "import json, sys\nfrom agentcore.cli import main\n"
        f"sys.argv = ['agentcore', '--db', {str(db)!r}, 'runs']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "from pydantic import BaseModel\n"
        "def every(c):\n    for s in c.__subclasses__():\n        yield s\n        yield from every(s)\n"
        "ours = [c for c in every(BaseModel) if c.__module__.startswith('agentcore.')]\n"
        "print(json.dumps([len(ours), sorted(c.__name__ for c in ours if c.__pydantic_complete__)]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    count, built = json.loads(done.stdout.strip().splitlines()[-1])
    assert "r1" in done.stdout and count >= 20  # it ran, and the models were defined
    assert built == [], done.stderr


NOT_FOR_POSTGRES_INSPECTION = (
    *(m for m in NOT_FOR_INSPECTION if m != "asyncio"),
    "psycopg_pool", "agentcore.storage.sqlite", "agentcore.storage.sqlite.store", "sqlite3",
)  # fmt: skip
"""What ``runs``, ``events`` and ``state`` on a PostgreSQL database never need: the same (but
``asyncio``, which psycopg itself imports: ``psycopg.errors`` takes its ``CancelledError``), nor the
connection pool (one-shot commands use one connection), nor the SQLite store's modules."""


def test_runs_events_and_state_on_postgresql_import_no_pool_nor_sqlite_and_start_no_thread(pg_url: str) -> None:
    from agentcore.core.events import RunStarted
    from agentcore.storage.postgres.store import PostgresEventStore
    from tests.storage.test_store import at

    with PostgresEventStore(pg_url) as store:
        store.create_run("t", run_id="r1", events=[RunStarted(run_id="r1", seq=1, at=at(1), task="t")])
    for args, unwanted in (
        (["runs"], NOT_FOR_POSTGRES_INSPECTION),
        (["events", "r1"], NOT_FOR_POSTGRES_INSPECTION),
        (["state", "r1"], (*NOT_FOR_POSTGRES_INSPECTION, *NOT_FOR_JSON_OUTPUT)),
    ):
        code = (
            "import json, sys, threading\nfrom agentcore.cli import main\n"
            f"sys.argv = ['agentcore', '--db', {pg_url!r}, *{args!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            f"print(json.dumps([[m for m in {list(unwanted)!r} if m in sys.modules], threading.active_count()]))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
        assert json.loads(done.stdout.strip().splitlines()[-1]) == [[], 1], (args, done.stderr)
        assert "run_started" in done.stdout or "r1" in done.stdout  # the command printed its answer
