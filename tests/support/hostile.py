"""Checks that a run a hostile model or input went through left a consistent, usable log.

``check_log(db_path, run_id, tmp_path)`` asserts what the hostile-input tests need of every run:
the stored state is ``fold`` of the stored events, the inspection commands (``events``, ``state``,
``why`` for each fact, ``view``) exit 0 on the file, and the exported trace replays offline with
no divergence.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from agentcore.cli import cli
from agentcore.core.fold import fold
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import export_run
from agentcore.testing import assert_replays


def check_log(db_path: Path, run_id: str, tmp_path: Path) -> None:
    """Fail unless the run's log folds, inspects and replays (see the module docstring)."""
    store = SQLiteEventStore(db_path)
    try:
        events = list(store.read(run_id))
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert store.state_at(run_id) == fold(events)
        facts = list(fold(events).known_facts)
        trace = tmp_path / f"{run_id}.jsonl"
        export_run(store, run_id, trace)
    finally:
        store.close()
    commands = [["events", run_id], ["state", run_id], ["view", run_id, "-o", str(tmp_path / f"{run_id}.html")]]
    commands += [["why", run_id, key] for key in facts[:3]]
    for args in commands:
        result = CliRunner().invoke(cli, ["--db", str(db_path), *args])
        assert result.exit_code == 0, (args, result.output, result.exception)
    assert_replays(trace)
