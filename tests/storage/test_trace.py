"""Trace files: exact round trips through both stores, and bad files that import nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentcore.core.event_codec import encode_event
from agentcore.core.events import (
    ArtifactRef,
    BaseEvent,
    LLMCalled,
    RunFinished,
    RunStarted,
    StatePatched,
    TokenUsage,
    ToolCall,
    ToolFinished,
    ToolStarted,
)
from agentcore.core.fold import fold
from agentcore.core.patches import AppendKnownFacts, FactInput
from agentcore.errors import ConfigError, TraceError
from agentcore.storage.base import EventStore
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.sqlite.store import SQLiteEventStore
from agentcore.storage.trace import FORMAT_VERSION, export_run, import_trace, read_trace
from agentcore.testing import demo_agent

TABLE = {"alpha": "first value", "beta": "line one\nline two \u2028 sep", "gamma": "ünïcødé ✓ <b>&amp;</b>"}
T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def record(store: EventStore, table: dict[str, str] = TABLE, run_id: str = "run-a") -> str:
    agent = demo_agent(table, store=store)
    result = asyncio.run(agent.run("Look up " + ", ".join(table), run_id=run_id))
    assert result.status == "succeeded"
    return result.run_id


def without_run_id(event: BaseEvent) -> dict[str, Any]:
    body = json.loads(encode_event(event))
    del body["run_id"]
    return body


def assert_same_run(src: EventStore, src_id: str, dst: EventStore, dst_id: str) -> None:
    a, b = list(src.read(src_id)), list(dst.read(dst_id))
    assert [without_run_id(e) for e in a] == [without_run_id(e) for e in b]
    for seq in range(len(a) + 1):
        sa, sb = src.state_at(src_id, seq), dst.state_at(dst_id, seq)
        sa.run_id = sb.run_id = ""
        assert sa.to_json() == sb.to_json(), f"states differ at seq {seq}"


def artifact_ids(path: Path) -> list[str]:
    return [r["id"] for r in map(json.loads, path.read_text().splitlines()) if r["kind"] == "artifact"]


def reseal(lines: list[str]) -> str:
    """Lines plus a footer whose digest and counts fit them (to test the checks behind the digest)."""
    body = "".join(line + "\n" for line in lines)
    records = [json.loads(line) for line in lines]
    footer = {
        "kind": "footer",
        "events": sum(r["kind"] == "event" for r in records),
        "artifacts": sum(r["kind"] == "artifact" for r in records),
        "sha256": hashlib.sha256(body.encode()).hexdigest(),
    }
    return body + json.dumps(footer, separators=(",", ":")) + "\n"


def test_round_trip_between_stores_is_exact(store: EventStore, tmp_path: Path) -> None:
    run_id = record(store)
    path = tmp_path / "run.jsonl"
    recorded = export_run(store, run_id, path)
    events = list(store.read(run_id))
    assert recorded["events"] == len(events) and recorded["run"]["status"] == "succeeded"
    # every tool output and request body goes along, once
    wanted = {e.artifact.id for e in events if isinstance(e, ToolFinished) and e.artifact}
    wanted |= {e.request_artifact.id for e in events if isinstance(e, LLMCalled) and e.request_artifact}
    assert set(artifact_ids(path)) == wanted and len(artifact_ids(path)) == len(wanted)

    for target in (MemoryEventStore(), SQLiteEventStore(tmp_path / "other.db")):
        new_id = import_trace(target, path)
        assert new_id == run_id  # the id is free in the target store, so it is kept
        assert_same_run(store, run_id, target, new_id)
        for ident in wanted:
            assert target.artifacts.read(ident) == store.artifacts.read(ident)
            assert target.artifacts.info(ident).media_type == store.artifacts.info(ident).media_type
        assert target.run(new_id).status == "succeeded" and target.run(new_id).task == store.run(run_id).task
        # exporting the import gives the same events and artifacts again
        again = tmp_path / f"again-{type(target).__name__}.jsonl"
        export_run(target, new_id, again, at=T0)
        assert [r for r in again.read_text().splitlines()[1:-1]] == path.read_text().splitlines()[1:-1]
        if isinstance(target, SQLiteEventStore):
            target.close()


def test_lines_are_ascii_and_header_names_no_directories(tmp_path: Path) -> None:
    secret_dir = tmp_path / "home-alice-secret-project"
    secret_dir.mkdir()
    with SQLiteEventStore(secret_dir / "agent.db") as store:
        run_id = record(store)
        path = tmp_path / "t.jsonl"
        export_run(store, run_id, path)
    raw = path.read_bytes()
    raw.decode("ascii")  # U+2028 and other non-ASCII text are escaped: any line reader splits correctly
    assert b"alice" not in raw and str(tmp_path).encode() not in raw
    header = json.loads(raw.splitlines()[0])
    assert header["format"] == "agentcore-trace" and header["format_version"] == FORMAT_VERSION
    assert header["recorded"]["source"] == {"store": "SQLiteEventStore", "db": "agent.db"}
    assert header["recorded"]["run"]["task"] == "Look up alpha, beta, gamma"
    assert len(raw.splitlines()) == 1 + header["recorded"]["events"] + header["recorded"]["artifacts"] + 1


def test_import_picks_a_new_id_when_the_original_is_taken(tmp_path: Path) -> None:
    store = MemoryEventStore()
    run_id = record(store)
    path = tmp_path / "t.jsonl"
    export_run(store, run_id, path)
    second = import_trace(store, path)
    assert second != run_id and store.run(second).last_seq == store.run(run_id).last_seq
    assert all(e.run_id == second for e in store.read(second))
    assert_same_run(store, run_id, store, second)
    assert import_trace(store, path, run_id="chosen") == "chosen"
    with pytest.raises(ConfigError, match="'chosen' already exists"):
        import_trace(store, path, run_id="chosen")
    assert len(store.runs()) == 3


def test_a_fork_exports_its_inherited_events(store: EventStore, tmp_path: Path) -> None:
    run_id = record(store)
    fork_id = store.fork(run_id, 7, new_run_id="fork-1")
    path = tmp_path / "fork.jsonl"
    export_run(store, fork_id, path)
    header = json.loads(path.read_text().splitlines()[0])
    assert header["recorded"]["run"]["parent_run_id"] == run_id
    assert header["recorded"]["run"]["forked_at_seq"] == 7
    target = MemoryEventStore()
    new_id = import_trace(target, path)
    assert new_id == "fork-1" and target.run(new_id).parent_run_id is None  # standalone
    assert [e.seq for e in target.read(new_id)] == list(range(1, 8))
    assert_same_run(store, fork_id, target, new_id)
    assert target.state_at(new_id).known_facts["alpha"].value == "first value"


def test_export_refuses_a_run_whose_artifact_is_missing(tmp_path: Path) -> None:
    store = MemoryEventStore()
    store.create_run("t", run_id="r")
    missing = ArtifactRef(id="sha256:" + "ab" * 32, size=3)
    events = [
        RunStarted(run_id="r", seq=1, at=T0, task="t"),
        ToolFinished(run_id="r", seq=2, at=T0, call_id="c1", name="x", ok=True, payload="p", artifact=missing),
    ]
    store.append("r", events, 0)
    with pytest.raises(TraceError, match=r"seq 2 \(tool_finished\) points to artifact sha256:abab"):
        export_run(store, "r", tmp_path / "t.jsonl")
    assert not (tmp_path / "t.jsonl").exists()


# --------------------------------------------------------------------------------------------
# bad files import nothing


@pytest.fixture
def good_trace(tmp_path: Path) -> Path:
    store = MemoryEventStore()
    run_id = record(store)
    path = tmp_path / "good.jsonl"
    export_run(store, run_id, path)
    return path


def edit(path: Path, name: str, change: Any) -> Path:
    out = path.with_name(name)
    data = change(path.read_text())
    out.write_bytes(data if isinstance(data, bytes) else data.encode())
    return out


def _newer_version(text: str) -> str:
    lines = text.splitlines()
    header = json.loads(lines[0])
    header["format_version"] = FORMAT_VERSION + 1
    header["agentcore_version"] = "9.0"
    return reseal([json.dumps(header), *lines[1:-1]])


def _edited_event(text: str) -> str:
    return text.replace("first value", "forged value", 1)


def _bad_artifact(text: str) -> str:
    lines = text.splitlines()[:-1]
    for i, line in enumerate(lines):
        record = json.loads(line)
        if record["kind"] == "artifact" and record["encoding"] == "utf-8" and record["data"] == "first value":
            record["data"] = "forged value"
            record["size"] = len("forged value")
            lines[i] = json.dumps(record)
    return reseal(lines)


def _seq_gap(text: str) -> str:
    lines = text.splitlines()[:-1]
    del lines[3]
    return reseal(lines)


def _unfoldable(text: str) -> str:
    lines = text.splitlines()[:-1]
    last = max(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "event")
    body = json.loads(lines[last])["event"]
    bad = {
        "v": 1, "run_id": body["run_id"], "seq": body["seq"] + 1, "at": body["at"], "caused_by": None,
        "type": "state_patched", "source": "processor", "ops": [{"op": "answer_question", "id": "q9", "answer": "x"}],
    }  # fmt: skip
    lines.insert(last + 1, json.dumps({"kind": "event", "event": bad}))
    return reseal(lines)


BAD_FILES = {
    "newer_version": (_newer_version, r"format version 2 \(written by agentcore 9\.0\).*upgrade agentcore"),
    "cut_mid_line": (lambda t: t[: len(t) // 2], "truncated: its last line is incomplete"),
    "no_footer": (lambda t: "".join(line + "\n" for line in t.splitlines()[:-3]), "truncated: it does not end"),
    "edited_line": (_edited_event, "edited or damaged: its content does not match the footer"),
    "bad_artifact_hash": (_bad_artifact, "does not match its bytes"),
    "garbage": (lambda t: b"\x89PNG\r\n\x1a\n\x00\x00garbage\n", "line 1 is not JSON"),
    "empty": (lambda t: "", "is empty"),
    "other_json": (lambda t: '{"kind": "header", "format": "something-else"}\n', "not an agentcore trace"),
    "seq_gap": (_seq_gap, "event has seq 4, expected 3"),
    "unfoldable": (_unfoldable, "do not fold into a state: .*no question 'q9'"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_are_refused_and_import_nothing(case: str, good_trace: Path, tmp_path: Path) -> None:
    change, message = BAD_FILES[case]
    bad = edit(good_trace, f"{case}.jsonl", change)
    ids = artifact_ids(good_trace)
    with SQLiteEventStore(tmp_path / "target.db") as sqlite_store:
        for target in (MemoryEventStore(), sqlite_store):
            with pytest.raises(TraceError, match=message):
                import_trace(target, bad)
            assert target.runs() == []
            assert not any(target.artifacts.exists(i) for i in ids)
    # the untouched file still imports
    assert import_trace(MemoryEventStore(), good_trace) == "run-a"


def test_missing_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read trace"):
        read_trace(tmp_path / "nope.jsonl")


# --------------------------------------------------------------------------------------------
# property: any run round-trips


texts = st.text(max_size=40)
blobs = st.one_of(st.binary(max_size=64), texts.map(lambda s: s.encode("utf-8")))
steps = st.lists(st.tuples(st.text(min_size=1, max_size=20), texts, blobs, st.booleans()), max_size=6)


def synthetic_run(store: EventStore, task: str, items: list[tuple[str, str, bytes, bool]], finish: bool) -> str:
    run_id = store.create_run(task.replace("\x00", "") or "-")  # no store takes a task with NUL; events may
    at = T0
    events: list[BaseEvent] = []

    def add(cls: type[BaseEvent], **fields: Any) -> None:
        nonlocal at
        at += timedelta(milliseconds=7)
        events.append(cls(run_id=run_id, seq=len(events) + 1, at=at, **fields))

    add(RunStarted, task=task, config={"note": task})
    for i, (key, value, blob, binary) in enumerate(items):
        ref = store.artifacts.put(blob, "application/octet-stream" if binary else "text/plain")
        call = ToolCall(id=f"c{i}", name="t", arguments={"k": key})
        add(ToolStarted, call=call, idempotency_key=f"{run_id}/main/c{i}")
        add(ToolFinished, call_id=call.id, name="t", ok=not binary, payload=value, artifact=ref, caused_by=len(events))
        body = store.artifacts.put_json({"request": value})
        usage = TokenUsage(prompt_tokens=i, completion_tokens=1, total_tokens=i + 1)
        add(LLMCalled, role="processor", model="m", request_digest=body.id, request_artifact=body, usage=usage)
        fact = FactInput(key=key, value=value, source=call.id, artifact_id=ref.id)
        add(StatePatched, ops=(AppendKnownFacts(facts=(fact,)),), caused_by=len(events) - 1)
    if finish:
        add(RunFinished, status="succeeded", reply=task)
    store.append(run_id, events, 0)
    return run_id


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(task=texts, items=steps, finish=st.booleans())
@example(task="a\x00task", items=[("k\x00", "v\x00", b"\x00", False)], finish=True)
def test_any_run_round_trips(tmp_path: Path, task: str, items: list[Any], finish: bool) -> None:
    src = MemoryEventStore()
    run_id = synthetic_run(src, task, items, finish)
    path = tmp_path / "prop.jsonl"
    export_run(src, run_id, path)
    trace = read_trace(path)
    assert [encode_event(e) for e in trace.events] == [encode_event(e) for e in src.read(run_id)]
    for ident, art in trace.artifacts.items():
        assert art.data == src.artifacts.read(ident)
    dst = MemoryEventStore()
    assert import_trace(dst, path) == run_id
    assert [encode_event(e) for e in dst.read(run_id)] == [encode_event(e) for e in src.read(run_id)]
    assert fold(dst.read(run_id)).to_json() == src.state_at(run_id).to_json()


def test_an_import_that_fails_to_write_leaves_no_run_behind(good_trace: Path, tmp_path: Path) -> None:
    from agentcore.errors import StorageUnavailable

    with SQLiteEventStore(tmp_path / "full.db") as store:
        conn = store._db.conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        artifact_pages = sum(len(a.data) for a in read_trace(good_trace).artifacts.values()) // 4096 + 4
        conn.execute(f"PRAGMA max_page_count = {pages + artifact_pages}")  # room for the artifacts only
        with pytest.raises(StorageUnavailable, match="full"):
            import_trace(store, good_trace)
        assert store.runs() == []
        conn.execute("PRAGMA max_page_count = 1073741823")
        assert import_trace(store, good_trace) == "run-a"  # and once there is room, it imports whole
        assert store.last_seq("run-a") == len(read_trace(good_trace).events)
