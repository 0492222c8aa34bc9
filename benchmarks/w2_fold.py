"""W2 — fold scaling: fold 100,000 ``StatePatched`` events, each appending one fact, from memory.

Reported (medians over ``repeat`` runs):

- ``events_per_s``: the whole fold from the JSON bodies a store holds (``decode_event`` + ``fold``).
- ``floor_events_per_s``: the same bodies through ``json.loads`` plus a plain ``dict`` update, in
  the same process: the floor for a Python fold.
- ``per_event_us_1k`` / ``per_event_us_100k``: decode + ``apply`` of one more event onto a state that
  already holds ~1,000 / ~``n`` facts (median over windows of ``WINDOW`` events, each window on a
  fresh copy of the state; the copy is not timed). Invariant 9 says these should be about equal.

Extra keys: ``objects_events_per_s`` (fold of already-decoded events: no JSON, no validation),
``ratio_to_floor`` (``floor / events_per_s``), ``per_event_ratio`` (100k / 1k), and the per-event
cost over the first and last tenth of the whole fold (``per_event_us_first_tenth`` /
``per_event_us_last_tenth``) and of the floor (``floor_us_first_tenth`` / ``floor_us_last_tenth``):
growth that the floor shows too is the interpreter's (allocation), not the fold's.

Times are CPU time of this process (``time.process_time``): the machines are shared, and CPU time
is what a single-threaded in-memory fold costs. Each measurement starts after ``gc.collect()`` on a
heap that holds only what it needs.
"""

from __future__ import annotations

import gc
import json
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pydantic

from agentcore.core.event_codec import decode_event, encode_event
from agentcore.core.events import StatePatched
from agentcore.core.fold import RunState, apply, fold
from agentcore.core.patches import AppendKnownFacts, FactInput

DEFAULT_N = 100_000
WINDOW = 1_000
WINDOWS = 7
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def body(seq: int, key: str) -> str:
    """One stored ``StatePatched`` body appending one fact of about 190 bytes of JSON."""
    fact = FactInput(
        key=key,
        value=f"src/agentcore/module_{seq % 97}.py:{seq % 500}: def handler_{seq}(event, state) -> None",
        source=f"call_{seq}",
        artifact_id="sha256:" + f"{seq:064x}",
        confidence=0.9,
    )
    event = StatePatched(
        run_id="run_w2", seq=seq, at=T0 + timedelta(milliseconds=seq), ops=(AppendKnownFacts(facts=(fact,)),)
    )
    return encode_event(event)


def floor_fold(bodies: Iterable[str]) -> dict[str, Any]:
    """The floor: parse each body and put its facts in a dict, nothing else."""
    facts: dict[str, Any] = {}
    for text in bodies:
        event = json.loads(text)
        for op in event["ops"]:
            for fact in op["facts"]:
                fact["seq"] = event["seq"]
                facts[fact["key"]] = fact
    return facts


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    """CPU seconds of ``fn(*args)`` (the machine is shared: CPU time is what the fold costs), and its result."""
    gc.collect()
    start = time.process_time()
    out = fn(*args)
    return time.process_time() - start, out


def window_cost_us(base: RunState, window: list[str]) -> float:
    """Median per-event µs of decode + ``apply`` of ``window`` onto fresh copies of ``base``."""
    costs = []
    for _ in range(WINDOWS):
        state = base.clone()
        gc.collect()
        start = time.process_time()
        for text in window:
            apply(state, decode_event(text))
        costs.append((time.process_time() - start) / len(window) * 1e6)
    return statistics.median(costs)


def tenths_us(consume: Callable[[Iterable[str]], object], bodies: list[str]) -> list[float]:
    """Per-event µs of ``consume`` over each tenth of the bodies (the state grows as it goes)."""
    n, marks = len(bodies), []

    def marked() -> Iterator[str]:
        for i, text in enumerate(bodies):
            if i % (n // 10) == 0:
                marks.append(time.process_time())
            yield text

    gc.collect()
    consume(marked())
    marks = [*marks[:10], time.process_time()]
    sizes = [n // 10] * 9 + [n - 9 * (n // 10)]
    return [(marks[i + 1] - marks[i]) / sizes[i] * 1e6 for i in range(10)]


def once(bodies: list[str], extra: list[str]) -> dict[str, float]:
    """One run of every measurement, each on a heap holding only what it needs."""
    n = len(bodies)
    t_floor, facts = timed(floor_fold, bodies)
    assert len(facts) == n
    del facts

    t_json, state = timed(lambda: fold(decode_event(b) for b in bodies))
    assert len(state.known_facts) == n and state.last_seq == n
    per_big = window_cost_us(state, extra)
    del state

    small = fold(decode_event(b) for b in bodies[:1_000])
    per_1k = window_cost_us(small, extra)
    del small

    events = [decode_event(b) for b in bodies]
    t_objects, again = timed(fold, events)
    assert len(again.known_facts) == n
    del events, again

    tenths = tenths_us(lambda texts: fold(decode_event(t) for t in texts), bodies)
    floor_tenths = tenths_us(floor_fold, bodies)
    return {
        "events_per_s": n / t_json,
        "floor_events_per_s": n / t_floor,
        "objects_events_per_s": n / t_objects,
        "per_event_us_1k": per_1k,
        "per_event_us_100k": per_big,
        "per_event_us_first_tenth": tenths[0],
        "per_event_us_last_tenth": tenths[-1],
        "floor_us_first_tenth": floor_tenths[0],
        "floor_us_last_tenth": floor_tenths[-1],
    }


def run(n: int | None = None, repeat: int = 3) -> dict[str, Any]:
    """Run W2 ``repeat`` times and return the medians (``n`` facts; default 100,000)."""
    n = n or DEFAULT_N
    if n < 10_000:
        raise ValueError(f"W2 needs n >= 10,000 events to compare 1k facts with n facts, got {n}")
    bodies = [body(seq, f"fact_{seq}") for seq in range(1, n + 1)]
    extra = [body(seq, f"extra_{seq}") for seq in range(n + 1, n + 1 + WINDOW)]
    runs = [once(bodies, extra) for _ in range(repeat)]
    result: dict[str, Any] = {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}
    result["ratio_to_floor"] = round(result["floor_events_per_s"] / result["events_per_s"], 2)
    result["per_event_ratio"] = round(result["per_event_us_100k"] / result["per_event_us_1k"], 2)
    result.update(
        n=n,
        repeat=repeat,
        body_bytes=len(bodies[0]),
        python=platform.python_version(),
        pydantic=pydantic.VERSION,
    )
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
