"""A fake clock for tests: virtual time that jumps instead of waiting.

``FakeClock.sleep(s)`` parks the caller until virtual time reaches ``now + s``. Time moves in two
ways: explicitly with ``advance(seconds)``, or by itself whenever the event loop has nothing else
ready to run (like trio's "autojump" mock clock): then it jumps straight to the earliest pending
wake-up. So a retry backoff of 30 s, a step timeout or a run deadline takes no real time, and the
order in which sleepers wake is fixed (by wake time, then by the order they went to sleep).

Only pure-async code is faithful under a fake clock: a coroutine waiting on a thread, a subprocess
or a real ``asyncio.sleep`` looks idle, so virtual time may jump past it. Use ``SystemClock`` for
tests of real concurrency.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import datetime, timedelta, timezone

__all__ = ("FakeClock",)

_EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)


class FakeClock:
    """Virtual time for tests; implements ``agentcore.core.clock.Clock``.

    Args:
        start: The virtual time at creation (timezone-aware; 2025-01-01 UTC by default).
        autojump: Jump to the next wake-up whenever the loop is idle. With ``False`` only
            ``advance`` moves time.
        tick: Seconds every ``now()`` reading moves time on before it reads (so each event of a
            run gets its own reproducible timestamp); 0 by default.

    Attributes:
        sleeps: Every duration passed to ``sleep``, in call order (for asserting backoff).
    """

    __test__ = False

    def __init__(self, start: datetime = _EPOCH, *, autojump: bool = True, tick: float = 0.0) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock(start=...) needs a timezone-aware datetime, e.g. tzinfo=timezone.utc")
        if tick < 0:
            raise ValueError(f"FakeClock(tick=...) must be >= 0 seconds, got {tick}")
        self.tick = tick
        self._start = start
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self.autojump = autojump
        self.sleeps: list[float] = []

    def __repr__(self) -> str:
        return f"FakeClock(elapsed={self._elapsed:g}s, sleepers={len(self._sleepers)})"

    def now(self) -> datetime:
        """The virtual time (moved on by ``tick`` first)."""
        if self.tick:
            self._wake_until(self._elapsed + self.tick)
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        """Virtual seconds since the clock was created (the same as ``elapsed``)."""
        return self._elapsed

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock was created."""
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        """Wait until virtual time has moved on by ``seconds``; takes no real time."""
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._order), fut))
        if self.autojump and (self._driver is None or self._driver.done()):
            self._driver = asyncio.get_running_loop().create_task(self._drive())
        await fut

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` and wake every sleeper that is due."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards (advance({seconds}))")
        self._wake_until(self._elapsed + seconds)

    def _wake_until(self, target: float) -> None:
        self._elapsed = max(self._elapsed, target)
        while self._sleepers and self._sleepers[0][0] <= self._elapsed:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await _until_idle(loop)
            self._drop_cancelled()
            if not self._sleepers:
                return
            self._wake_until(self._sleepers[0][0])


async def _until_idle(loop: asyncio.AbstractEventLoop) -> None:
    """Yield until no other callback is ready to run (best effort on loops without ``_ready``)."""
    for _ in range(10_000):
        for _ in range(3):
            await asyncio.sleep(0)
        ready = getattr(loop, "_ready", None)  # CPython's queue of runnable callbacks
        if ready is None:
            for _ in range(50):
                await asyncio.sleep(0)
            return
        if not ready:
            return
