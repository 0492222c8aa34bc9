"""Disk and file problems under a real agent run: a full disk, a file made read-only, a corrupted file.

``tests/storage/test_sqlite_store.py`` checks a capped file size and a ``read_only`` store with bare appends.
Here the failures hit a whole ``Agent`` run half-way (the deterministic agent of
``tests/support/crash_worker.py``): the run stops with ``StorageUnavailable``, every event committed before
it is there, nothing of the failed batch is, the file passes ``PRAGMA integrity_check``, and once
the disk has room (or the file is writable) again, ``resume`` finishes the run with the state of an
undisturbed run.

How the failures are made, honestly, as root (where ``chmod`` stops nothing):

- full disk: a 1 MB tmpfs mounted for the test (``ENOSPC`` from the kernel), grown afterwards with
  ``mount -o remount,size=``. Where mounting is not allowed, ``PRAGMA max_page_count`` caps the file
  instead (SQLite then fails exactly as on a full disk); the test prints which one it used.
- read-only file: ``chattr +i`` on the database and its WAL while the store has them open (the
  kernel then refuses every write, even through open descriptors; never on the ``-shm``, which is
  memory-mapped: writes there would kill the process with SIGBUS); a read-only bind mount (or
  ``chattr +i`` on the directory) for a file on a read-only file system.
- corruption: bytes overwritten on the pages of a chosen table, found with SQLite's ``dbstat``.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.events import Event
from agentcore.core.fold import RunState, fold
from agentcore.errors import AgentcoreError, NotAnAgentcoreDatabase, StorageUnavailable, StoreError
from agentcore.models.scripted import FunctionChatModel
from agentcore.runtime.agent import Agent
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.tools.base import Tool, tool
from tests.guarantees.test_crash_torture import check_log, comparable
from tests.support import crash_worker

BIG = 150_000
"""Bytes of output of each tool call in the full-disk runs (stored whole as an artifact)."""


def big_record_tool(effects: Path, size: int) -> Tool:
    """``crash_worker``'s ``record`` tool, with a large output."""

    @tool(name="record", timeout=None)
    def record(item: str, idempotency_key: str | None = None) -> str:
        """Record one item in the side-effect log.

        Args:
            item: What to record.
        """
        with effects.open("a") as f:
            f.write(f"{idempotency_key} {item}\n")
        return f"recorded {item}\n" + item * (size // max(1, len(item)))

    return record


def make_agent(
    store: SQLiteEventStore, effects: Path, size: int = 0, on_event: Callable[[Event], None] | None = None
) -> Agent:
    """The deterministic agent of the crash torture test (6 decisions of 2 calls, then a reply)."""
    return Agent(
        FunctionChatModel(crash_worker.controller_answer, name="torture-controller"),
        FunctionChatModel(crash_worker.processor_answer, name="torture-processor"),
        tools=[big_record_tool(effects, size)],
        store=store,
        max_steps=crash_worker.DECISIONS + 2,
        on_event=on_event,
    )


def reference_state(tmp: Path, size: int = 0) -> RunState:
    with SQLiteEventStore(tmp / "reference.db") as store:
        result = make_agent(store, tmp / "reference.effects", size).run_sync(crash_worker.TASK, run_id="ref")
        assert result.status == "succeeded"
        return result.state


def fingerprint(path: Path) -> tuple[str, list[str]]:
    """The file's sha256 and the names in its directory."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(os.listdir(path.parent))


def run_cmd(*args: str) -> bool:
    """Run a system command (an argument list); whether it worked."""
    try:
        return subprocess.run(list(args), capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# -- a full disk ---------------------------------------------------------------------------------------


class SmallDisk:
    """Where the full-disk run keeps its database, and how to give it room again."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "small-disk"
        self.dir.mkdir()
        self.mounted = run_cmd("mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(self.dir))
        self.how = "a 1 MB tmpfs" if self.mounted else "PRAGMA max_page_count"

    def limit(self, store: SQLiteEventStore) -> None:
        if not self.mounted:  # the store's own connection: the cap holds for its writes
            pages = store._db.conn.execute("PRAGMA page_count").fetchone()[0]
            store._db.conn.execute(f"PRAGMA max_page_count = {pages + 250}")

    def grow(self, store: SQLiteEventStore) -> None:
        if self.mounted:
            assert run_cmd("mount", "-o", "remount,size=64m", str(self.dir))
        else:
            store._db.conn.execute("PRAGMA max_page_count = 1073741823")

    def remove(self) -> None:
        if self.mounted:
            run_cmd("umount", "-l", str(self.dir))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path)
    print(f"full disk made with {disk.how}")
    try:
        yield disk
    finally:
        disk.remove()


def test_a_full_disk_stops_the_run_cleanly_and_it_resumes_once_there_is_room(
    small_disk: SmallDisk, tmp_path: Path
) -> None:
    want = reference_state(tmp_path, BIG)
    db, effects = small_disk.dir / "runs.db", tmp_path / "effects"
    committed: list[Event] = []
    store = SQLiteEventStore(db)
    try:
        small_disk.limit(store)
        with pytest.raises(StorageUnavailable, match="disk is full") as err:
            make_agent(store, effects, BIG, on_event=committed.append).run_sync(crash_worker.TASK, run_id="full")
        assert "nothing of it was written" in str(err.value)
        assert len(committed) > 5  # the run got going before the disk filled up
        events = check_log(db, "full", "after the disk filled up")
        assert events == committed  # every committed event, and not one event of the failed batch
        assert not fold(events).finished

        small_disk.grow(store)
        result = make_agent(store, effects, BIG).resume_sync("full")  # the same store goes on
        assert result.status == "succeeded"
    finally:
        store.close()
    final = check_log(db, "full", "after the resume")
    assert final[: len(committed)] == committed
    assert comparable(result.state) == comparable(want)
    keys = [line.split(" ")[0] for line in effects.read_text().splitlines()]
    assert set(keys) == {e.idempotency_key for e in final if e.type == "tool_started"}  # type: ignore[attr-defined]


# -- a file made read-only -------------------------------------------------------------------------------


@contextmanager
def immutable(*paths: Path) -> Iterator[bool]:
    """``chattr +i`` on ``paths`` (never a ``-shm``); yields whether the file system supports it."""
    assert not any(p.name.endswith("-shm") for p in paths)
    done = run_cmd("chattr", "+i", *map(str, paths))
    try:
        yield done
    finally:
        if done:
            assert run_cmd("chattr", "-i", *map(str, paths))


def test_a_database_made_read_only_mid_run_stops_it_cleanly_and_it_resumes_later(tmp_path: Path) -> None:
    want = reference_state(tmp_path)
    db, effects = tmp_path / "runs.db", tmp_path / "effects"
    committed: list[Event] = []
    frozen: list[Any] = []

    def freeze_after_first_result(event: Event) -> None:
        committed.append(event)
        if event.type == "tool_finished" and not frozen:
            cm = immutable(db, db.with_name(db.name + "-wal"))
            frozen.append((cm, cm.__enter__()))

    with SQLiteEventStore(db) as store:
        try:
            with pytest.raises(StorageUnavailable, match="nothing was written") as err:
                make_agent(store, effects, on_event=freeze_after_first_result).run_sync(crash_worker.TASK, run_id="ro")
        finally:
            for cm, _ in frozen:
                cm.__exit__(None, None, None)
        assert frozen, "the run never got to its first tool result"
        if not frozen[0][1]:  # no chattr here: the failure came from elsewhere; say so loudly
            pytest.fail(f"chattr +i is not supported on {tmp_path}; the test cannot make the file read-only")
        print(f"the run stopped with: {err.value}")
        events = check_log(db, "ro", "after the file turned read-only")
        assert events == committed
        result = make_agent(store, effects).resume_sync("ro")  # writable again: the same store goes on
        assert result.status == "succeeded"
    assert comparable(result.state) == comparable(want)
    assert check_log(db, "ro", "after the resume")[: len(committed)] == committed


def test_a_read_only_store_refuses_to_go_on_and_changes_nothing(tmp_path: Path) -> None:
    db, effects = tmp_path / "runs.db", tmp_path / "effects"

    def stop_after_first_result(event: Event) -> None:
        if event.type == "tool_finished":
            raise KeyboardInterrupt("the process stops here")

    with SQLiteEventStore(db) as store, pytest.raises(KeyboardInterrupt):
        make_agent(store, effects, on_event=stop_after_first_result).run_sync(crash_worker.TASK, run_id="half")
    before = fingerprint(db)
    with SQLiteEventStore(db, read_only=True) as ro:
        last = ro.last_seq("half")
        with pytest.raises(StorageUnavailable, match="read-only"):
            make_agent(ro, effects).resume_sync("half")
        with pytest.raises(StorageUnavailable, match="read-only"):
            make_agent(ro, effects).run_sync("a new run")
        assert ro.last_seq("half") == last
    assert fingerprint(db)[0] == before[0]  # (a read-only connection leaves its empty -wal and -shm behind)
    with SQLiteEventStore(db) as store:  # a writable store finishes it
        assert make_agent(store, effects).resume_sync("half").status == "succeeded"


@contextmanager
def read_only_directory(source: Path, tmp: Path) -> Iterator[tuple[Path, str]]:
    """``source``'s files on a read-only file system (a read-only bind mount), or in an immutable directory."""
    view = tmp / "read-only-view"
    view.mkdir()
    if run_cmd("mount", "--bind", str(source), str(view)):
        try:
            if run_cmd("mount", "-o", "remount,ro,bind", str(view)):
                yield view, "a read-only bind mount"
                return
        finally:
            run_cmd("umount", "-l", str(view))
    with immutable(source) as done:
        assert done, "neither a read-only bind mount nor chattr +i is possible here"
        yield source, "an immutable directory (chattr +i)"


def test_a_database_on_a_read_only_file_system_says_so_and_changes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "data"
    source.mkdir()
    with SQLiteEventStore(source / "runs.db") as store:
        result = make_agent(store, tmp_path / "effects").run_sync(crash_worker.TASK, run_id="done")
        store.checkpoint()
    before = fingerprint(source / "runs.db")
    with read_only_directory(source, tmp_path) as (where, how):
        print(f"read-only file system made with {how}")
        db = where / "runs.db"
        with pytest.raises(StorageUnavailable) as err:
            SQLiteEventStore(db)  # it cannot even create its WAL files
        assert str(db) in str(err.value) and "nothing was written" in str(err.value)
        try:
            ro = SQLiteEventStore(db, read_only=True)
        except StorageUnavailable as e:  # SQLite's WAL mode needs a writable -shm to read, too
            assert str(db) in str(e)
        else:
            with ro:
                assert ro.state_at("done") == result.state
                with pytest.raises(StorageUnavailable):
                    ro.create_run("x")
    assert fingerprint(source / "runs.db") == before


# -- a corrupted file ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database of three finished runs, checkpointed into one file."""
    tmp = tmp_path_factory.mktemp("good")
    db = tmp / "good.db"
    with SQLiteEventStore(db) as store:
        for i in range(3):
            assert make_agent(store, tmp / "effects").run_sync(crash_worker.TASK, run_id=f"r{i}").status == "succeeded"
        store.checkpoint()
    assert sorted(os.listdir(tmp)) == ["effects", "good.db"]
    return db


def pages_of(db: Path, table: str) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno", (table,))]
    finally:
        conn.close()


def corrupted_copy(good: Path, tmp: Path, offset: int, length: int, seed: int) -> Path:
    data = bytearray(good.read_bytes())
    data[offset : offset + length] = random.Random(seed).randbytes(length)
    bad = tmp / "bad" / "runs.db"
    bad.parent.mkdir()
    bad.write_bytes(bytes(data))
    return bad


def read_everything(db: Path) -> None:
    with SQLiteEventStore(db) as store:
        for run in store.runs():
            events = list(store.read(run.id))
            store.state_at(run.id)
            for e in events:
                ref = getattr(e, "request_artifact", None) or getattr(e, "artifact", None)
                if ref is not None:
                    store.artifacts.read(ref.id)


@pytest.mark.parametrize(
    ("where", "error", "says"),
    [
        ("header", NotAnAgentcoreDatabase, "is not an SQLite database"),
        ("schema", NotAnAgentcoreDatabase, "cannot be read"),
        ("events", StoreError, "malformed"),
    ],
)
def test_a_corrupted_database_says_so_and_is_left_as_it_was(
    good_db: Path, tmp_path: Path, where: str, error: type[Exception], says: str
) -> None:
    page = 4096
    offset = {"header": 0, "schema": 100, "events": (pages_of(good_db, "events")[1] - 1) * page}[where]
    bad = corrupted_copy(good_db, tmp_path, offset, page - 100 if where == "schema" else page, seed=7)
    before = fingerprint(bad)
    with pytest.raises(error, match=says) as err:
        read_everything(bad)
    assert str(bad) in str(err.value)
    assert fingerprint(bad) == before  # not a byte changed, no -wal or -shm left behind


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_in_the_middle_never_escape_as_raw_errors_or_change_the_file(
    good_db: Path, tmp_path: Path, seed: int
) -> None:
    size = good_db.stat().st_size
    offset = random.Random(seed).randrange(size // 4, 3 * size // 4)
    bad = corrupted_copy(good_db, tmp_path, offset, 512, seed)
    before = fingerprint(bad)
    try:
        read_everything(bad)
    except AgentcoreError as e:  # what it says is up to where the bytes landed; never a raw sqlite3 error
        print(f"seed {seed}: {type(e).__name__}: {e}")
    assert fingerprint(bad) == before
    shutil.rmtree(bad.parent)


def test_a_read_only_directory_is_named_as_the_directory_not_the_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with SQLiteEventStore(data / "runs.db") as store:
        store.create_run("t", run_id="r")
    before = fingerprint(data / "runs.db")
    with immutable(data) as done:
        assert done, "chattr +i is not possible here"
        with pytest.raises(StorageUnavailable) as err:
            SQLiteEventStore(data / "runs.db")
        assert f"the directory {data} is read-only" in str(err.value) and "file" in str(err.value)
    assert fingerprint(data / "runs.db") == before
    with immutable(data / "runs.db") as done, pytest.raises(StorageUnavailable, match=r"the file .*runs.db is read-only"):
        with SQLiteEventStore(data / "runs.db") as store:  # the file itself (SQLite opens it read-only): named as the file
            store.create_run("t2")
