"""Hostile trace files and imports: all-or-nothing writes, bounded reads, times, reserved ids, one-line errors.

Real SQLite files, real processes killed with SIGKILL, a real lock held by another connection.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from agentcore.errors import ConfigError, StoreError, TraceError
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import export_run, import_trace, read_trace, was_imported
from tests.storage.test_trace import record, reseal


def exported(tmp_path: Path, name: str = "t.jsonl", run_id: str = "run-a", table: dict[str, str] | None = None) -> Path:
    store = MemoryEventStore()
    rid = record(store, table or {"alpha": "first", "beta": "second"}, run_id=run_id)
    path = tmp_path / name
    export_run(store, rid, path)
    return path


def rewrite(path: Path, name: str, change: Any) -> Path:
    """A copy of ``path`` whose records went through ``change(list of dicts)``, resealed so the digest fits."""
    records = [json.loads(line) for line in path.read_text().splitlines()[:-1]]
    records = change(records)
    out = path.with_name(name)
    out.write_text(reseal([json.dumps(r, separators=(",", ":")) for r in records]))
    return out


def counts(db: Path) -> tuple[int, int, int]:
    with sqlite3.connect(db) as conn:
        return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "events", "artifacts"))  # type: ignore[return-value]


# -- one transaction ------------------------------------------------------------------------------------


def big_trace(tmp_path: Path) -> Path:
    table = {f"k{i}": os.urandom(300_000).hex() for i in range(12)}  # ~7 MB of artifacts
    return exported(tmp_path, "big.jsonl", table=table)


def test_an_import_killed_at_any_moment_leaves_the_whole_run_or_nothing(tmp_path: Path) -> None:
    trace = big_trace(tmp_path)
    code = "import sys\nfrom agentcore.storage.sqlite.store import SQLiteEventStore\n"
    code += "from agentcore.storage.trace import import_trace\n"
    code += (
        "with SQLiteEventStore(sys.argv[1]) as s:\n    print('open', flush=True)\n    import_trace(s, sys.argv[2])\n"
    )
    outcomes = {"whole": 0, "nothing": 0}
    for i in range(8):
        db = tmp_path / f"k{i}.db"
        proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(trace)], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"open\n"
        time.sleep(0.02 * i)  # from "just opened" to "well into the write"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        runs, events, artifacts = counts(db)
        if runs:
            assert (runs, events) == (1, len(read_trace(trace).events)) and artifacts >= 12
            outcomes["whole"] += 1
        else:
            assert (events, artifacts) == (0, 0), "a killed import left artifacts without its run"
            outcomes["nothing"] += 1
    print(outcomes)


def test_an_import_that_meets_a_lock_held_past_its_timeout_writes_nothing(tmp_path: Path) -> None:
    trace = big_trace(tmp_path)
    db = tmp_path / "locked.db"
    SQLiteEventStore(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with SQLiteEventStore(db, busy_timeout_s=0.3) as store, pytest.raises(StoreError):
            import_trace(store, trace)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert counts(db) == (0, 0, 0)


def test_an_import_that_fills_the_disk_writes_nothing(tmp_path: Path) -> None:
    trace = big_trace(tmp_path)
    db = tmp_path / "full.db"
    with SQLiteEventStore(db) as store:
        pages = store._db.conn.execute("PRAGMA page_count").fetchone()[0]
        store._db.conn.execute(f"PRAGMA max_page_count = {pages + 200}")  # far less than the trace needs
        with pytest.raises(StoreError):
            import_trace(store, trace)
    assert counts(db) == (0, 0, 0)


# -- times ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("at", ["2025-03-01T10:00:00", "2025-03-01 10:00:00.123456", "2025-03-01T10:00"])
def test_an_event_time_without_a_utc_offset_is_refused_and_the_database_stays_usable(tmp_path: Path, at: str) -> None:
    good = exported(tmp_path)

    def naive(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records[2]["event"]["at"] = at
        return records

    bad = rewrite(good, "naive.jsonl", naive)
    with pytest.raises(TraceError, match="without a UTC offset"):
        read_trace(bad)
    db = tmp_path / "t.db"
    with SQLiteEventStore(db) as store:
        import_trace(store, good)
        with pytest.raises(TraceError):
            import_trace(store, bad)
        event = next(iter(store.read("run-a", after=2, upto=3)))
        with pytest.raises(ConfigError, match="without a UTC offset"):  # no other path writes one either
            store.append("run-a", [event.model_copy(update={"seq": 99, "at": datetime(2025, 3, 1)})], 98)
    from agentcore.inspection.queries import list_runs

    with SQLiteEventStore(db) as store:
        assert [r["id"] for r in list_runs(store)] == ["run-a"]


@pytest.mark.parametrize("created", ["9999-12-31T23:59:59+00:00", "3000-01-01T00:00:00-12:00", "2999-06-01"])
def test_a_far_future_or_naive_creation_date_never_makes_an_import_the_newest_run_forever(
    tmp_path: Path, created: str
) -> None:
    def future(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records[0]["recorded"]["run"]["created"] = created
        return records

    trace = rewrite(exported(tmp_path), "future.jsonl", future)
    with SQLiteEventStore(tmp_path / "t.db") as store:
        imported = import_trace(store, trace)
        assert datetime.fromisoformat(store.run(imported).created) <= datetime.now(timezone.utc)
        later = store.create_run("a run made after the import", run_id="made-later")
        assert store.runs()[-1].id == later


def test_a_run_id_the_cli_reserves_is_never_taken(tmp_path: Path) -> None:
    trace = exported(tmp_path, run_id="last")
    with SQLiteEventStore(tmp_path / "t.db") as store:
        imported = import_trace(store, trace)
        assert imported != "last" and [r.id for r in store.runs()] == [imported]
        with pytest.raises(ConfigError, match="reserved"):
            import_trace(store, trace, run_id="last")


# -- bounded reads and one-line errors -------------------------------------------------------------------


def test_only_regular_files_of_bounded_size_are_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in ("/dev/zero", "/dev/urandom", str(fifo), str(tmp_path)):
        with pytest.raises(TraceError, match="not a regular file"):
            read_trace(path)
    good = exported(tmp_path)
    with pytest.raises(TraceError, match="over the limit"):
        read_trace(good, max_bytes=good.stat().st_size - 1)
    assert read_trace(good, max_bytes=good.stat().st_size).events


def run_cli(*args: str | bytes, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "agentcore", *args], capture_output=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess[bytes], *needles: str) -> None:
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode not in (0, None) and "Traceback" not in err, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("Usage:", "Try "))]
    assert len(lines) == 1, err[-2000:]  # one line (a usage error also shows the usage and --help hint)
    for needle in needles:
        assert needle in lines[0], err[-2000:]


def _nested(depth: int) -> str:
    return '{"kind":"event","event":' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize(
    "line",
    [
        _nested(100_000),
        '{"kind":"event","event":' + '{"a":' * 50_000 + "1" + "}" * 50_000 + "}",
        "EVENT_WITH_SURROGATE",
        '{"kind":"artifact","id":"\\ud800","media_type":"x","data":"","encoding":"utf-8","size":0}',
    ],
)
def test_hostile_lines_give_one_line_errors_from_import_and_replay(tmp_path: Path, line: str) -> None:
    good = exported(tmp_path)
    lines = good.read_text().splitlines()[:-1]
    if line == "EVENT_WITH_SURROGATE":
        record0 = json.loads(lines[1])
        record0["event"]["task"] = "look \ud800 up"
        line = json.dumps(record0)
    bad = tmp_path / "bad.jsonl"
    body = "".join(x + "\n" for x in [*lines[:2], line, *lines[2:]])
    kinds = [json.loads(x)["kind"] for x in lines] + ["event" if '"kind":"event"' in line else "artifact"]
    footer = {"kind": "footer", "events": kinds.count("event"), "artifacts": kinds.count("artifact")}
    footer["sha256"] = hashlib.sha256(body.encode()).hexdigest()
    bad.write_text(body + json.dumps(footer) + "\n")
    with pytest.raises(TraceError):
        read_trace(bad)
    assert_one_line_error(run_cli("import", str(bad), "--db", str(tmp_path / "x.db")))
    assert_one_line_error(run_cli("replay", str(bad)))
    assert not (tmp_path / "x.db").exists() or counts(tmp_path / "x.db")[0] == 0


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"NaN", "not finite"),
        (b"-Infinity", "not finite"),
        (b"1e999", "not finite"),
        (b'"\xed\xa0\x80"', "not valid Unicode"),  # the UTF-8-style bytes of a lone surrogate
        (b'"\\udfff"', "not valid Unicode"),
    ],
)
def test_numbers_json_cannot_write_back_and_lone_surrogates_are_refused(
    tmp_path: Path, value: bytes, reason: str
) -> None:
    lines = exported(tmp_path).read_bytes().splitlines()[:-1]
    started = json.loads(lines[1])
    started["event"]["config"]["metadata"] = {"x": "HERE"}
    body = b"".join(x + b"\n" for x in [lines[0], json.dumps(started).encode().replace(b'"HERE"', value), *lines[2:]])
    footer = json.loads(exported(tmp_path, name="again.jsonl").read_bytes().splitlines()[-1])
    footer["sha256"] = hashlib.sha256(body).hexdigest()
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(body + json.dumps(footer).encode() + b"\n")
    with pytest.raises(TraceError, match=reason):
        read_trace(bad)


def test_import_of_dev_zero_is_refused_without_reading_it(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("import", "/dev/zero", "--db", str(tmp_path / "x.db")), "not a regular file")


@pytest.mark.parametrize("question", [b"where is \xff\xfe defined", b"caf\xe9", b"\xed\xa0\x80 surrogate bytes"])
def test_ask_with_bytes_that_are_not_utf8_is_a_one_line_error(tmp_path: Path, question: bytes) -> None:
    (tmp_path / "repo").mkdir()
    db = tmp_path / "x.db"
    proc = run_cli("ask", question, "--repo", str(tmp_path / "repo"), "--db", str(db), "--offline")
    assert_one_line_error(proc, "not valid UTF-8")
    assert not db.exists() or counts(db)[0] == 0


# -- an imported run never chooses where tools read --------------------------------------------------------


def test_an_imported_run_needs_the_user_to_name_the_repository(tmp_path: Path) -> None:
    from tests.support.code_fixtures import make_python_repo

    repo = make_python_repo(tmp_path / "repo")
    home = tmp_path / "home"
    home.mkdir()
    (home / "secret.txt").write_text("HOME-SECRET-91c2\n")
    db = tmp_path / "mine.db"
    made = run_cli("ask", "where is Cart defined", "--repo", str(repo), "--db", str(db), "--offline", "--json")
    assert made.returncode == 0, made.stderr
    run_id = json.loads(made.stdout)["run_id"]
    trace = tmp_path / "t.jsonl"
    assert run_cli("export", run_id, "-o", str(trace), "--db", str(db)).returncode == 0

    def point_at_home(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records[1]["event"]["config"]["metadata"]["repo"] = str(home)
        return [r for r in records if r["kind"] != "event" or r["event"]["seq"] == 1]

    hostile = rewrite(trace, "hostile.jsonl", point_at_home)
    other = tmp_path / "other.db"
    imported = json.loads(run_cli("import", str(hostile), "--db", str(other), "--json").stdout)["run_id"]
    with SQLiteEventStore(other) as store:
        assert was_imported(store, imported)
    resumed = run_cli("resume", imported, "--db", str(other), "--offline")
    assert_one_line_error(resumed, "--repo", str(home))
    assert b"HOME-SECRET" not in other.read_bytes()
    ok = run_cli("resume", imported, "--db", str(other), "--offline", "--repo", str(repo), "--json")
    assert ok.returncode == 0, ok.stderr
    assert b"HOME-SECRET" not in other.read_bytes()
    assert_one_line_error(run_cli("replay", str(hostile), "--live-tools"), "--repo")
    with SQLiteEventStore(db) as store:
        assert not was_imported(store, run_id)  # a run made here resumes with its recorded repository


def test_was_imported_follows_forks(tmp_path: Path) -> None:
    with SQLiteEventStore(tmp_path / "t.db") as store:
        imported = import_trace(store, exported(tmp_path))
        fork = store.fork(imported, 1)
        local = record(store, {"q": "r"}, run_id="local")
        assert was_imported(store, imported) and was_imported(store, fork) and not was_imported(store, local)


def test_a_trace_whose_run_id_and_task_hold_nul_imports_under_a_new_id(tmp_path: Path) -> None:
    """An older agentcore took a run id and task with NUL on SQLite; no store takes one now (PostgreSQL's
    text cannot hold it): the run gets a new id, its row shows the task's NUL as \\u0000, its events stay exact."""

    def with_nul(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        def edit(text: str) -> str:
            return text.replace("run-a", "run\\u0000a").replace("Look up alpha, beta", "find\\u0000 it")

        return [json.loads(edit(json.dumps(r))) if r["kind"] in ("header", "event") else r for r in records]

    trace = rewrite(exported(tmp_path), "nul.jsonl", with_nul)
    assert read_trace(trace).events[0].run_id == "run\x00a"
    with SQLiteEventStore(tmp_path / "n.db") as store:
        new_id = import_trace(store, trace)
        assert "\x00" not in new_id and new_id != "run\x00a"
        assert store.run(new_id).task == "find\\u0000 it"
        first = next(iter(store.read(new_id)))
        assert first.type == "run_started" and first.task == "find\x00 it"  # type: ignore[union-attr]


def _edit_event(seq: int, **fields: Any) -> Any:
    def change(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in records:
            if r.get("kind") == "event" and r["event"]["seq"] == seq:
                r["event"].update(fields)
        return records

    return change


def _edit_first_fact(**fields: Any) -> Any:
    def change(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in records:
            for op in r.get("event", {}).get("ops", []):
                for fact in op.get("facts", []):
                    fact.update(fields)
                    return records
        raise AssertionError("the trace has no fact to edit")

    return change


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_edit_event(3, caused_by=2**70), "caused_by"),  # past SQLite's INTEGER: was an OverflowError traceback
        (_edit_event(3, caused_by=2**40), "caused_by"),  # past PostgreSQL's events.caused_by (integer)
        (_edit_event(3, caused_by=-4), "caused_by"),
        (_edit_event(3, caused_by=3), "caused_by"),
        (_edit_event(3, caused_by=4), "caused_by"),
        (_edit_event(3, evil="x"), "evil"),  # pydantic's error spanned 4 lines
        (_edit_first_fact(confidence=7), "confidence"),
    ],
)
def test_an_edited_event_with_a_resealed_digest_is_a_one_line_error_and_nothing_is_written(
    tmp_path: Path, change: Any, says: str
) -> None:
    bad = rewrite(exported(tmp_path), "edited.jsonl", change)
    with pytest.raises(TraceError, match=says):
        read_trace(bad)
    db = tmp_path / "x.db"
    assert_one_line_error(run_cli("import", str(bad), "--db", str(db)), says, "edited.jsonl")
    assert not db.exists() or counts(db) == (0, 0, 0)
