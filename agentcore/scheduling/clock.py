"""Clocks: where the scheduler reads the time and waits.

Code that waits or reads the time takes a ``Clock`` so tests can pass
``agentcore.testing.clock.FakeClock``, whose ``sleep`` advances virtual time without waiting.
Standard library only.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

__all__ = ("Clock", "SystemClock")


@runtime_checkable
class Clock(Protocol):
    """A source of time and a way to wait."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (``<= 0`` just yields to the event loop)."""
        ...


class SystemClock:
    """The real clock: UTC wall time and ``asyncio.sleep``."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(timezone.utc)

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(max(0, seconds))``."""
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"
