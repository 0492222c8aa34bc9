"""Event bodies that try to confuse the PostgreSQL segment splitter (storage/postgres/segments.py):
strings that look like event headers, ``},{`` and ``]``, unicode, NUL, a body longer than a
sealed segment; every store must give back exactly what was appended, and fold the same state."""

from __future__ import annotations

from agentcore.core.fold import fold
from tests.storage.test_store import fact, finished

TRICKY = [
    '{"v":1,"run_id":"r","seq":3,"at":"2026-01-01T00:00:00+00:00","caused_by":null,"type":"RunFinished"',
    '"},{"v":1,"run_id":"x","seq":2,"at":"a","caused_by":null,"type":"StatePatched"}]',
    "]", "},{", "[", "\\", '\\"', "caf\u00e9 \u2603 \U0001f600 \u200b", "nul\x00byte", "",
    "x" * 5000,  # longer than a sealed segment
    "y" * 1_000_000,  # one event of 1 MB
]


def test_tricky_bodies_come_back_unchanged_and_fold_the_same(store) -> None:  # type: ignore[no-untyped-def]
    run = store.create_run("tricky")
    events = [fact(run, seq, value=value) for seq, value in enumerate(TRICKY, start=1)]
    events[0] = events[0].model_copy(update={"caused_by": None})
    head = len(events)
    for k, event in enumerate(events):  # one append each: the open segment grows and seals
        store.append(run, [event], k)
    store.append(run, [finished(run, head + 1)], head)
    events.append(finished(run, head + 1))
    assert list(store.read(run)) == events
    for seq in (1, 3, 7, head, head + 1):
        assert store.state_at(run, seq) == fold(events[:seq])
    assert store.state_at(run) == fold(events)


def test_state_at_every_seq_and_forks_inside_sealed_and_open_segments_match_memory(store) -> None:  # type: ignore[no-untyped-def]
    from agentcore.storage.memory import MemoryEventStore
    from tests.storage.test_store import fill

    reference = MemoryEventStore()
    run, events = fill(store, steps=60)  # 301 events: many sealed segments and an open tail
    ref_run, ref_events = fill(reference, steps=60)
    assert len(events) > 300
    for seq in range(1, len(events) + 1):
        assert store.state_at(run, seq) == fold(events[:seq]), seq
    for at_seq in (3, 150, len(events) - 2):  # inside a sealed segment, and inside the open tail
        child = store.fork(run, at_seq)
        ref_child = reference.fork(ref_run, at_seq)
        extra = [fact(child, at_seq + 1 + k, key=f"after{k}") for k in range(40)]
        ref_extra = [fact(ref_child, at_seq + 1 + k, key=f"after{k}") for k in range(40)]
        for k in range(0, 40, 7):
            store.append(child, extra[k : k + 7], at_seq + k)
            reference.append(ref_child, ref_extra[k : k + 7], at_seq + k)
        store.append(run, [fact(run, len(events) + 1, key=f"parent{at_seq}")], len(events))
        events.append(fact(run, len(events) + 1, key=f"parent{at_seq}"))
        reference.append(ref_run, [fact(ref_run, len(ref_events) + 1, key=f"parent{at_seq}")], len(ref_events))
        ref_events.append(fact(ref_run, len(ref_events) + 1, key=f"parent{at_seq}"))
        def plain(text: str, *ids: str) -> str:  # run ids differ (in run_id and idempotency keys)
            for i in ids:
                text = text.replace(i, "RUN")
            return text

        got = [plain(e.model_dump_json(), run, child) for e in store.read(child)]
        want = [plain(e.model_dump_json(), ref_run, ref_child) for e in reference.read(ref_child)]
        assert got == want
        assert plain(store.state_at(child).model_dump_json(), run, child) == plain(
            reference.state_at(ref_child).model_dump_json(), ref_run, ref_child
        )
        assert list(store.read(run)) == events
