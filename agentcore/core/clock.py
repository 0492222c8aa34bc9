"""The one clock: where agentcore reads the time and waits.

Everything that stamps, measures or waits takes a ``Clock``: ``Agent`` and ``RunLog`` (each event's
``at``), ``ToolRunner`` (``duration_ms``), the plan ``Scheduler`` (backoff, timeouts, deadlines) and
``PlanRunner``. Tests pass ``agentcore.testing.FakeClock`` (virtual time that jumps instead of
waiting); everything else gets ``SystemClock``.

This is the one module of ``core/`` that reads the real clock; the fold and the events never import
it (``tests/test_architecture.py`` checks both), so the fold stays a pure function of the log.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

__all__ = ("Clock", "SystemClock")


@runtime_checkable
class Clock(Protocol):
    """A source of time and a way to wait."""

    def now(self) -> datetime:
        """The current wall time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never goes back (for durations, not dates)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (``<= 0`` just yields to the event loop)."""
        ...


class SystemClock:
    """The real clock: UTC wall time, ``time.perf_counter`` and ``asyncio.sleep``."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        """``time.perf_counter()``: monotonic seconds at the best resolution the platform has."""
        return time.perf_counter()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(max(0, seconds))``."""
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"
