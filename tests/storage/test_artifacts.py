"""Artifact stores: content-addressed, stored once, read whole or in ranges (memory and SQLite)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from agentcore.core.values import canonical_json, sha256_id
from agentcore.errors import ArtifactNotFound, ConfigError
from agentcore.storage.artifacts import BYTES, JSON, TEXT
from agentcore.storage.base import EventStore
from agentcore.storage.sqlite.store import SQLiteEventStore

MISSING = "sha256:" + "0" * 64


def test_put_and_get_bytes(store: EventStore) -> None:
    arts = store.artifacts
    data = b"\x00\x01raw tool output\xff"
    ref = arts.put(data)
    assert ref.id == "sha256:" + hashlib.sha256(data).hexdigest() == sha256_id(data)
    assert (ref.size, ref.media_type) == (len(data), BYTES)
    assert arts.get(ref.id) == data
    assert arts.info(ref.id) == ref
    assert arts.exists(ref.id) and arts.exists(ref.id.removeprefix("sha256:"))
    assert arts.read(ref.id.removeprefix("sha256:")) == data  # a bare digest works too


def test_text_and_json(store: EventStore) -> None:
    arts = store.artifacts
    text = arts.put_text("héllo wörld")
    assert text.media_type == TEXT and text.size == len("héllo wörld".encode())
    assert arts.get_text(text.id) == "héllo wörld"
    obj = {"b": [1, 2.5, None], "a": "x"}
    ref = arts.put_json(obj)
    assert ref.media_type == JSON
    assert arts.get_json(ref.id) == obj
    assert arts.get(ref.id) == canonical_json(obj).encode()
    assert arts.put_json({"a": "x", "b": [1, 2.5, None]}).id == ref.id  # key order does not matter


def test_same_bytes_are_stored_once_and_the_first_media_type_wins(store: EventStore) -> None:
    arts = store.artifacts
    first = arts.put(b"same", "text/plain")
    second = arts.put(b"same", "application/json")
    assert first == second and second.media_type == "text/plain"
    big = os.urandom(200_000)  # past PostgreSQL's one-statement put (looked up before it is sent)
    assert arts.put(big, "a/b") == arts.put(big, "c/d") == arts.info(sha256_id(big))
    assert arts.info(sha256_id(big)).media_type == "a/b" and arts.get(sha256_id(big)) == big


def test_ranged_reads_follow_slice_semantics(store: EventStore) -> None:
    arts = store.artifacts
    data = bytes(range(256)) * 40
    ref = arts.put(data)
    for offset, length in [(0, 10), (100, 1000), (10_000, 5000), (0, None), (5000, None), (10_240, 3), (99_999, 1)]:
        expected = data[offset : None if length is None else offset + length]
        assert arts.read(ref.id, offset, length) == expected, (offset, length)
    assert arts.read(ref.id, 7, 0) == b""
    with pytest.raises(ConfigError, match="must be >= 0"):
        arts.read(ref.id, -1, 3)


def test_missing_and_malformed_ids(store: EventStore) -> None:
    arts = store.artifacts
    for call in (lambda: arts.get(MISSING), lambda: arts.info(MISSING), lambda: arts.read(MISSING, 1, 2)):
        with pytest.raises(ArtifactNotFound, match=MISSING):
            call()
    with pytest.raises(ArtifactNotFound, match="not an artifact id"):
        arts.get("sha256:xyz")
    assert not arts.exists(MISSING) and not arts.exists("garbage")


def test_put_refuses_what_is_not_bytes(store: EventStore) -> None:
    with pytest.raises(ConfigError, match="put_text"):
        store.artifacts.put("text, not bytes")  # type: ignore[arg-type]
    assert store.artifacts.put(bytearray(b"ok")).size == 2


# ------------------------------------------------------------------------------------------------
# SQLite only


def test_artifacts_persist_and_are_stored_once(db_path: Path) -> None:
    with SQLiteEventStore(db_path) as s:
        ref = s.artifacts.put_text("kept")
        s.artifacts.put_text("kept")
    with SQLiteEventStore(db_path) as s:
        assert s.artifacts.get_text(ref.id) == "kept"
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT COUNT(*), size, media_type FROM artifacts").fetchone() == (1, 4, TEXT)


def test_a_50_mb_output(db_path: Path) -> None:
    data = os.urandom(1 << 20) * 50  # 50 MiB; repeating keeps it quick to build
    with SQLiteEventStore(db_path) as s:
        ref = s.artifacts.put(data, "text/plain")
        assert ref.size == len(data) and ref.id == sha256_id(data)
        assert s.artifacts.info(ref.id) == ref
        middle = 25 * (1 << 20) + 12_345
        assert s.artifacts.read(ref.id, middle, 4096) == data[middle : middle + 4096]
        assert s.artifacts.read(ref.id, len(data) - 10) == data[-10:]
        assert s.artifacts.get(ref.id) == data


def test_put_many_stores_a_batch_in_one_transaction(db_path: Path) -> None:
    with SQLiteEventStore(db_path) as s:
        first = s.artifacts.put(b"already here", "text/plain")
        refs = s.artifacts.put_many([(b"one", TEXT), (b"already here", JSON), (bytearray(b"two"), BYTES)])
        assert refs[1] == first  # stored once; the first media type stays
        assert [s.artifacts.get(r.id) for r in refs] == [b"one", b"already here", b"two"]
        assert s.artifacts.put_many([]) == []
        with pytest.raises(ConfigError, match="pairs"):
            s.artifacts.put_many([("text", TEXT)])  # type: ignore[list-item]
