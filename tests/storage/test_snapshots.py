"""The snapshot codec (storage/snapshots.py): sectioned snapshots whose facts decode on first read.

A snapshot is a cache: whatever its encoding, the state it gives back (after the tail is folded on
it) must equal the fold of the log, in value and in fact order, and a damaged one must be reported,
never read as a different state.
"""

from __future__ import annotations

import itertools
import struct
import tempfile
import zlib
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcore.core.events import BaseEvent, StatePatched
from agentcore.core.fold import Fact, RunState, apply, fold
from agentcore.core.lazy_facts import SEARCHED_KEYS, LazyFacts, StoredSection
from agentcore.core.patches import AppendKnownFacts, FactInput, JsonPatch, ReplacePlan
from agentcore.core.plans import Step
from agentcore.errors import DamagedDatabase
from agentcore.storage import snapshots
from agentcore.storage.snapshots import SECTIONS, SECTIONS_XZ, decode_state, encode_state
from agentcore.storage.sqlite.store import SQLiteEventStore
from tests.storage.test_store import at, fill
from tests.support.strategies import RUN_ID, event_logs


def state_with_facts(count: int, key: str = "fact-{i}") -> RunState:
    events: list[BaseEvent] = []
    for i in range(count):
        f = FactInput(key=key.format(i=i), value=f"value {i} " + "x" * 40, source=f"call_{i}", confidence=0.5)
        events.append(StatePatched(run_id="r", seq=i + 1, at=at(i + 1), ops=(AppendKnownFacts(facts=(f,)),)))
    return fold(events)


def patched(seq: int, *ops: object) -> StatePatched:
    return StatePatched(run_id="r", seq=seq, at=at(seq), ops=tuple(ops))  # type: ignore[arg-type]


def test_a_big_state_is_stored_in_sections_and_its_facts_wait_for_their_first_read() -> None:
    state = state_with_facts(200)
    encoding, data = encode_state(state)
    assert encoding == SECTIONS
    loaded = decode_state(encoding, data)
    facts = loaded.known_facts
    assert isinstance(facts, LazyFacts) and not facts.decoded
    # keys, length and membership need no value
    assert len(facts) == 200 and "fact-7" in facts and "nope" not in facts
    assert list(facts) == list(state.known_facts)
    assert not facts.decoded
    assert facts["fact-7"] == state.known_facts["fact-7"] and facts.decoded
    assert loaded == state and list(loaded.known_facts) == list(state.known_facts)
    assert loaded.model_dump_json() == state.model_dump_json() and loaded.to_json() == state.to_json()


def test_small_states_stay_plain_json_and_old_encodings_are_still_read() -> None:
    small = state_with_facts(2)
    assert encode_state(small)[0] == "json"
    assert decode_state(*encode_state(small)) == small
    big = state_with_facts(100)
    old = zlib.compress(big.model_dump_json().encode(), 1)  # what agentcore 0.1 wrote
    assert decode_state("json+zlib", old) == big
    assert decode_state("json", big.model_dump_json()) == big


@pytest.mark.parametrize("key", ["fact-{i}", "[{i}", "nul\x00{i}", "ünï-{i}-😀", "J{i}"])
def test_any_key_round_trips(key: str) -> None:
    state = state_with_facts(60, key)
    loaded = decode_state(*encode_state(state))
    assert list(loaded.known_facts) == list(state.known_facts)
    assert loaded == state


def test_folding_a_tail_onto_a_loaded_state_does_not_decode_its_facts() -> None:
    state = state_with_facts(100)
    loaded = decode_state(*encode_state(state))
    new = FactInput(key="fact-3", value="superseded", source="s")
    added = FactInput(key="brand-new", value="added", source="s")
    steps = (Step(id="a"), Step(id="b", after=("a",)))
    tail = [patched(101, AppendKnownFacts(facts=(new, added))), patched(102, ReplacePlan(steps=steps), AppendKnownFacts(facts=(added,)))]
    for event in tail:
        apply(loaded, event)
        apply(state, event)
    facts = loaded.known_facts
    assert isinstance(facts, LazyFacts) and not facts.decoded
    assert len(facts) == 101 and list(facts) == list(state.known_facts)  # superseding keeps the position
    assert facts["fact-3"].value == "superseded" and facts["fact-3"].seq == 101
    assert loaded == state and list(loaded.known_facts) == list(state.known_facts)


def test_a_rejected_patch_puts_undecoded_facts_back() -> None:
    state = state_with_facts(100)
    loaded = decode_state(*encode_state(state))
    superseding = AppendKnownFacts(facts=(FactInput(key="fact-5", value="never", source="s"),))
    cycle = ReplacePlan(steps=(Step(id="a", after=("b",)), Step(id="b", after=("a",))))
    with pytest.raises(Exception, match="cycle"):
        apply(loaded, patched(101, superseding, cycle))
    assert loaded.known_facts["fact-5"] == state.known_facts["fact-5"]
    assert loaded == state


def test_the_xz_codec_keeps_the_same_sections_in_fewer_bytes_and_reports_damage() -> None:
    state = state_with_facts(300)
    zlib_encoding, zlib_data = encode_state(state)
    encoding, data = encode_state(state, codec="xz")
    assert encoding == SECTIONS_XZ and zlib_encoding == SECTIONS
    assert len(data) < len(zlib_data)
    loaded = decode_state(encoding, data)
    facts = loaded.known_facts
    assert isinstance(facts, LazyFacts) and len(facts) == 300 and not facts.decoded
    assert loaded == state and list(loaded.known_facts) == list(state.known_facts)
    assert isinstance(data, bytes)
    for position in (5, 20, len(data) - 3):  # the head, the keys, the facts (CRC)
        broken = bytearray(data)
        broken[position] ^= 0xFF
        with pytest.raises(DamagedDatabase, match="snapshot is damaged"):
            decode_state(encoding, bytes(broken)).known_facts["fact-1"]
    with pytest.raises(DamagedDatabase, match="snapshot is damaged"):  # zlib bytes under the xz name
        decode_state(SECTIONS_XZ, zlib_data)


def test_copies_share_the_section_and_never_each_others_changes() -> None:
    state = state_with_facts(100)
    loaded = decode_state(*encode_state(state))
    mine = loaded.clone()
    mine.known_facts.pop("fact-1")
    mine.known_facts["x"] = Fact(key="x", value="mine", source="s", seq=9)
    assert "fact-1" in loaded.known_facts and "x" not in loaded.known_facts
    assert loaded == state
    assert len(mine.known_facts) == 100 and mine.known_facts["fact-2"] == state.known_facts["fact-2"]


def test_a_raw_json_patch_on_a_loaded_state_sees_every_fact() -> None:
    state = state_with_facts(100)
    loaded = decode_state(*encode_state(state))
    raw = JsonPatch(patch=({"op": "remove", "path": "/known_facts/fact-4"},))
    apply(loaded, patched(101, raw))
    apply(state, patched(101, raw))
    assert "fact-4" not in loaded.known_facts and loaded == state


def sections(data: bytes) -> tuple[int, int, int]:
    return struct.unpack_from("<III", data)


def test_damaged_bytes_are_reported_by_the_load_not_by_a_later_read() -> None:
    encoding, data = encode_state(state_with_facts(100))
    assert isinstance(data, bytes)
    for position in (5, 20, len(data) - 3):
        broken = bytearray(data)
        broken[position] ^= 0xFF
        with pytest.raises(DamagedDatabase, match="snapshot is damaged"):
            decode_state(encoding, bytes(broken))
    with pytest.raises(DamagedDatabase, match="unknown snapshot encoding"):
        decode_state("msgpack", data)
    with pytest.raises(DamagedDatabase):
        decode_state(encoding, data[:7])


def test_an_intact_but_invalid_facts_section_is_refused_at_its_first_read() -> None:
    """The CRC is not a signature: a section that passes it is still validated as any input."""
    state = state_with_facts(100)
    encoding, data = encode_state(state)
    assert isinstance(data, bytes)
    head_len, keys_len, _ = sections(data)
    start = 12 + head_len + keys_len
    original = zlib.decompress(data[start:])
    forged = zlib.compress(original.replace(b'"confidence":0.5', b'"confidence":7.5', 1))
    bad = struct.pack("<III", head_len, keys_len, zlib.crc32(forged)) + data[12:start] + forged
    loaded = decode_state(encoding, bad)
    assert len(loaded.known_facts) == 100  # keys were fine
    with pytest.raises(DamagedDatabase, match="facts section"):
        loaded.known_facts["fact-0"]
    swapped = zlib.compress(original.replace(b'"key":"fact-0"', b'"key":"fact-X"', 1))
    bad = struct.pack("<III", head_len, keys_len, zlib.crc32(swapped)) + data[12:start] + swapped
    with pytest.raises(DamagedDatabase, match="does not match its keys"):
        list(decode_state(encoding, bad).known_facts.values())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=event_logs(max_events=30), cuts=st.lists(st.integers(1, 30), max_size=8), every=st.integers(1, 4))
def test_sectioned_snapshot_plus_tail_is_the_full_fold(log: list[BaseEvent], cuts: list[int], every: int) -> None:
    """Every snapshot in sections (however small), then every state compared with the fold,
    facts in order too; the same after the tail is folded and after a copy is taken."""
    with (
        mock.patch.object(snapshots, "INLINE_BYTES", 0),
        tempfile.TemporaryDirectory() as tmp,
        SQLiteEventStore(Path(tmp) / "h.db", snapshot_every=every, snapshot_ratio=0) as s,
    ):
        s.create_run("t", run_id=RUN_ID)
        bounds = sorted({0, len(log), *(c for c in cuts if c < len(log))})
        for lo, hi in itertools.pairwise(bounds):
            s.append(RUN_ID, log[lo:hi], lo)
        with SQLiteEventStore(Path(tmp) / "h.db") as fresh:
            for k in range(len(log) + 1):
                expected, got = fold(log[:k]), fresh.state_at(RUN_ID, k)
                copy = got.clone()
                assert got == expected and copy == expected, k
                assert list(got.known_facts) == list(expected.known_facts), k
                assert got.to_json() == expected.to_json(), k


def test_a_store_serves_the_latest_state_without_decoding_facts(tmp_path: Path) -> None:
    with SQLiteEventStore(tmp_path / "s.db", snapshot_every=5, snapshot_ratio=0) as s:
        run, events = fill(s, steps=40)
    with SQLiteEventStore(tmp_path / "s.db") as fresh:
        snap = fresh._best_snapshot(run, len(events))
        assert snap is not None and snap[1] == SECTIONS
        state = fresh.state_at(run)
        assert isinstance(state.known_facts, LazyFacts) and not state.known_facts.decoded
        assert state == fold(events)


# ------------------------------------------------------------------------------------------------
# LazyFacts against the dict it stands for

_KEYS = st.sampled_from(["a", "ab", "b", "ba", "a b", "é", "10", "1", "k\x00", "x"])
_OPS = st.lists(
    st.tuples(st.sampled_from(["set", "del", "pop", "in", "len", "get", "undo", "copy", "iter"]), _KEYS, st.integers()),
    max_size=25,
)


def lazy_from(stored: dict[str, int], loads: list[int]) -> LazyFacts[int]:
    def load(keys: list[str]) -> dict[str, int]:
        assert keys == list(stored)
        loads.append(1)
        return dict(stored)

    if any("\x00" in k for k in stored):
        return LazyFacts(StoredSection(list(stored), load))
    return LazyFacts(StoredSection("\x00" + "".join(k + "\x00" for k in stored), load))


@settings(max_examples=300, deadline=None)
@given(stored=st.dictionaries(_KEYS, st.integers(), max_size=6), ops=_OPS)
def test_lazy_facts_behave_as_the_dict_they_stand_for(stored: dict[str, int], ops: list[tuple[str, str, int]]) -> None:
    loads: list[int] = []
    lazy, plain = lazy_from(stored, loads), dict(stored)
    for op, key, value in ops:
        if op == "set":
            lazy[key] = plain[key] = value
        elif op == "del" and key in plain:
            del lazy[key], plain[key]
        elif op == "pop":
            assert lazy.pop(key, None) == plain.pop(key, None)
        elif op == "in":
            assert (key in lazy) == (key in plain)
        elif op == "len":
            assert len(lazy) == len(plain)
        elif op == "get":
            assert lazy.get(key) == plain.get(key)
        elif op == "undo":  # what a rejected patch does: set, then put back what was there
            missing = object()
            old = lazy.peek(key, missing)
            lazy[key] = value
            if old is missing:
                lazy.pop(key)
            else:
                lazy[key] = old
        elif op == "copy":
            other = lazy.copy()
            other[key] = value
            assert other.get(key) == value
        elif op == "iter":
            assert list(lazy) == list(plain)
    assert len(lazy) == len(plain) and list(lazy) == list(plain)
    assert lazy == plain and dict(lazy.items()) == plain and lazy.to_dict() == plain
    assert len(loads) <= 1  # the stored values are decoded once at most


def test_setting_keys_after_a_load_decodes_neither_keys_nor_values() -> None:
    stored = {f"fact-{i}": i for i in range(100)}
    loads: list[int] = []
    lazy = lazy_from(stored, loads)
    for i in range(97, 97 + SEARCHED_KEYS):  # 3 stored keys set again, the rest new
        lazy[f"fact-{i}"] = -i
    assert len(lazy) == 97 + SEARCHED_KEYS and "fact-101" in lazy and "fact-1" in lazy and "fact-" not in lazy
    assert lazy._data is None and not loads  # neither the keys were split nor the values decoded
    assert lazy["fact-100"] == -100 and not loads
    assert lazy["fact-3"] == 3 and loads == [1]
    assert list(lazy) == [*stored, *(f"fact-{i}" for i in range(100, 97 + SEARCHED_KEYS))]
