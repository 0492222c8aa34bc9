"""The event loop agentcore runs on: asyncio's, with timer waits finer than a millisecond.

Why. asyncio's default loop on Linux waits in ``epoll_wait``, whose timeout is whole milliseconds,
and ``selectors.EpollSelector`` rounds every wait *up* (``math.ceil``) so as never to wake early. A
timer therefore fires at the loop's first wake-up after its deadline, which is up to 1 ms late,
and worse: a ``sleep(0.010)`` started while the loop is still busy (recording a wave of finished
plan steps, say) ends at (the moment the loop goes idle) + the remaining time rounded up to the
next whole millisecond, so every level of a plan costs the loop's whole busy period, whatever
order the steps were started in. Measured on W4 (b) (200 steps of 10 ms, ``max_parallel`` 16,
2 shared cores, load ~1.3): makespan / calibrated bound 1.325 / 1.196 / 1.179 on seeds 0-2 with
the default loop, 1.364 / 1.113 / 1.110 with this one (``benchmarks/README.md``, W4 in sessions
5 and 6).

How. :func:`new_event_loop` returns a ``SelectorEventLoop`` (on Unix, the same class asyncio uses:
subprocesses, ``add_signal_handler``, sockets and TLS behave as on the default loop) whose selector
waits on the epoll file descriptor itself with ``select.select([epfd], [], [], timeout)``, which
takes a timeout in microseconds, then collects the ready events with a zero-timeout
``epoll_wait``. An epoll descriptor is readable exactly when one of its registered descriptors has
an event, so the wait ends on the first I/O event (or signal: asyncio's wake-up pipe is one of them)
or on the timeout, whichever comes first.

What it costs. Two system calls instead of one for each wait that has a finite, positive timeout
(a loop with no timer pending, or with callbacks ready, waits as before), and the timer
resolution is the kernel's (timer slack, 50 µs by default) instead of 1 ms. Timers less than a
millisecond apart no longer share a wake-up, so a loop with many spread timers wakes more often:
W4 (b) wakes 286 times per run instead of 101, and on a shared 2-core VM each wake-up from idle
costs ~100 µs of CPU (cold caches), so its CPU per step rises from ~145 to ~215 µs while its
makespan falls. If the epoll
descriptor's number is beyond what ``select()`` accepts (``FD_SETSIZE``, 1,024 on Linux: a process
that had over a thousand files open when the loop was made), the loop falls back to millisecond
waits for good, with no error.

Elsewhere. kqueue (macOS, BSD) already takes a timeout in nanoseconds and ``select()`` in
microseconds, so there :func:`new_event_loop` is ``asyncio.new_event_loop()``, as it is on Windows
(the proactor loop) and on the rare platforms whose best selector is ``poll`` or ``/dev/poll``
(millisecond waits, as before).

Every place where agentcore starts a loop itself uses this one: ``PlanRunner.run_sync`` /
``resume_sync``, the ``Agent``'s ``*_sync`` methods, ``OpenAIChatModel.complete_sync``, the
worker's ``serve_sync``, ``replay_trace``, ``agentcore mcp-serve`` and the MCP client's connection
thread. Code that runs its own loop may use it too::

    from agentcore.event_loop import new_event_loop, run

    run(main())                                            # like asyncio.run(main())
    with asyncio.Runner(loop_factory=new_event_loop) as r:  # Python 3.11+
        r.run(main())
    asyncio.run(main(), loop_factory=new_event_loop)         # Python 3.12+
"""

from __future__ import annotations

import asyncio
import select
import selectors
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["new_event_loop", "run"]

T = TypeVar("T")

if sys.platform == "linux":

    class FineEpollSelector(selectors.EpollSelector):
        """``selectors.EpollSelector`` whose waits end within microseconds of their timeout.

        ``select(timeout)``: a positive, finite ``timeout`` (seconds) is waited in ``select()`` on
        the epoll descriptor (microsecond timeout), then the events are read with a zero timeout;
        ``None`` (wait for I/O only) and ``0`` (poll) go straight to ``epoll_wait``. Returns what
        ``EpollSelector.select`` returns: ``(key, events)`` pairs for the ready descriptors.
        """

        def __init__(self) -> None:
            super().__init__()
            self.fine = True
            """False once ``select()`` refused the epoll descriptor (over ``FD_SETSIZE``)."""

        def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            if timeout is not None and timeout > 0 and self.fine:
                try:
                    self._wait(timeout)
                except ValueError:  # "filedescriptor out of range in select()": ms waits from now on
                    self.fine = False
                else:
                    timeout = 0
            return super().select(timeout)

        def _wait(self, timeout: float) -> None:
            """Block until the epoll descriptor has an event or ``timeout`` seconds have passed."""
            select.select([self.fileno()], [], [], timeout)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop whose timers fire within microseconds of their deadline where the
    platform allows it (see the module docstring): a ``SelectorEventLoop`` on a
    :class:`FineEpollSelector` on Linux, else ``asyncio.new_event_loop()``.
    The caller owns the loop (runs it, closes it); it is not made the thread's current loop."""
    if sys.platform == "linux":
        return asyncio.SelectorEventLoop(FineEpollSelector())
    return asyncio.new_event_loop()  # pragma: no cover - not Linux


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """Run the coroutine ``main`` to completion on a new :func:`new_event_loop` and return its
    result, as ``asyncio.run(main)`` does: then the tasks still pending are cancelled (and
    awaited), async generators are finalised, the default executor is shut down and the loop is
    closed. ``debug`` sets the loop's debug mode (``None``: asyncio's default).

    Raises ``RuntimeError`` when called from a running event loop, ``ValueError`` when ``main`` is
    not a coroutine, and whatever ``main`` raises. Ctrl-C cancels ``main`` and raises
    ``KeyboardInterrupt`` on Python 3.11+ (as ``asyncio.run`` does there)."""
    if not asyncio.iscoroutine(main):
        raise ValueError(f"agentcore.event_loop.run() needs a coroutine, got {main!r}")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        main.close()  # never to be awaited: no "was never awaited" warning
        raise RuntimeError("agentcore.event_loop.run() cannot be called from a running event loop; await the coroutine")
    if sys.version_info >= (3, 11):
        with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
            return runner.run(main)
    return _run_py310(main, debug)  # pragma: no cover - Python 3.10


def _run_py310(main: Coroutine[Any, Any, T], debug: bool | None) -> T:
    """``asyncio.run`` of Python 3.10, on :func:`new_event_loop` (3.10 has no ``asyncio.Runner``)."""
    loop = new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still pending on ``loop``, wait for them, and report their errors to the
    loop's exception handler (what ``asyncio.run`` does before closing its loop)."""
    pending = asyncio.all_tasks(loop)
    if not pending:
        return
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    for task in pending:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during agentcore.event_loop.run() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
