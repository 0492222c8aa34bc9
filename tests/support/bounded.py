"""``bounded(call)``: run a call that might never finish (input built to backtrack) and fail the test if it
has not returned after a generous bound. A bound, not a measurement: speed goes in ``benchmarks/``."""

from __future__ import annotations

import threading
from collections.abc import Callable


def bounded(call: Callable[[], object], seconds: float = 120) -> object:
    """Run ``call`` in a thread and fail if it has not returned after ``seconds``.

    Returns:
        What ``call`` returned, or the exception it raised (for the test to assert on).
    """
    box: list[object] = []

    def run() -> None:
        try:
            box.append(call())
        except BaseException as e:
            box.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert box, f"still running after {seconds} s"
    return box[0]
