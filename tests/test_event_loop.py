"""``agentcore.event_loop``: the loop agentcore's sync entry points run on (sub-millisecond timers).

Real sockets, a real subprocess, a real signal, a real epoll descriptor; no timing assertions (the
precision itself is measured by W4, ``benchmarks/w4_scheduling.py``). What is asserted: timers fire
in deadline order and never before their deadline; the selector's wait is handed the fractional
timeout as it is (the default ``EpollSelector`` rounds it up to whole milliseconds) and still
returns the events of ready descriptors; an epoll descriptor that ``select()`` cannot take falls
back to millisecond waits; ``run`` cleans up as ``asyncio.run`` does; agentcore's sync entry points
run on this loop.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from agentcore import event_loop
from agentcore.event_loop import FineEpollSelector, new_event_loop, run

RESOLUTION = time.get_clock_info("monotonic").resolution
"""asyncio runs a timer whose deadline is within the clock's resolution of now (1 ns on Linux)."""

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the fine selector is epoll's (Linux)")


class RecordingSelector(FineEpollSelector):
    """The fine selector, keeping the timeout each of its ``select()`` waits was given."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def _wait(self, timeout: float) -> None:
        self.waits.append(timeout)
        super()._wait(timeout)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The timeouts of every fine wait made in this test, on any loop (the class's method is wrapped)."""
    seen: list[float] = []
    wait = FineEpollSelector._wait

    def recording(self: FineEpollSelector, timeout: float) -> None:
        seen.append(timeout)
        wait(self, timeout)

    monkeypatch.setattr(FineEpollSelector, "_wait", recording)
    return seen


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


# -- the selector ----------------------------------------------------------------------------


def test_the_wait_is_given_the_fractional_timeout_not_whole_milliseconds(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, _ = pair
    with RecordingSelector() as sel:
        sel.register(a, selectors.EVENT_READ)
        assert sel.select(0.0025) == []  # nothing to read: the wait times out
        assert sel.select(0.0001) == []
        assert sel.waits == [0.0025, 0.0001]  # EpollSelector would wait 3 ms and 1 ms
        assert sel.fine


def test_zero_and_no_timeout_go_straight_to_epoll(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    with RecordingSelector() as sel:
        sel.register(a, selectors.EVENT_READ, data="a")
        assert sel.select(0) == []
        assert sel.select(-1.0) == []
        b.send(b"x")
        (key, events), *rest = sel.select(None)  # would block for ever if the event were lost
        assert sel.waits == [] and rest == []
        assert key.fileobj is a and key.data == "a" and events == selectors.EVENT_READ


def test_ready_descriptors_come_back_with_their_events(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    with RecordingSelector() as sel:
        sel.register(a, selectors.EVENT_READ, data="reader")
        sel.register(b, selectors.EVENT_WRITE, data="writer")
        ready = {key.data: events for key, events in sel.select(30.0)}  # b is writable at once
        assert ready == {"writer": selectors.EVENT_WRITE}
        sel.unregister(b)
        b.send(b"ping")
        ready = {key.data: events for key, events in sel.select(30.0)}
        assert ready == {"reader": selectors.EVENT_READ}
        assert sel.waits == [30.0, 30.0]


def test_an_epoll_descriptor_beyond_fd_setsize_falls_back_to_millisecond_waits(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"the hard limit on open files ({hard}) leaves no descriptor above 1,024 to test with")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    null = os.open(os.devnull, os.O_RDONLY)
    filler: list[int] = [null]
    try:
        while filler[-1] < 1030:  # every number below 1,030 in use: epoll gets a higher one
            filler.append(os.dup(null))
        a, b = pair
        with RecordingSelector() as sel:
            assert sel.fileno() > 1024
            sel.register(a, selectors.EVENT_READ, data="a")
            assert sel.select(0.001) == [] and not sel.fine  # select() refused the descriptor: no error
            b.send(b"x")
            assert [key.data for key, _ in sel.select(0.001)] == ["a"]
            assert sel.waits == [0.001]  # tried once, never again
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- the loop --------------------------------------------------------------------------------


def test_timers_fire_in_deadline_order_and_never_early() -> None:
    selector = RecordingSelector()
    loop = asyncio.SelectorEventLoop(selector)
    fired: list[tuple[float, float]] = []  # (deadline, loop time when it fired)
    rng = random.Random(7)
    try:
        start = loop.time()
        deadlines = [start + 0.002 + rng.random() * 0.02 for _ in range(60)]
        done: asyncio.Future[None] = loop.create_future()

        def fire(when: float) -> None:
            fired.append((when, loop.time()))

        for when in deadlines:
            loop.call_at(when, fire, when)
        loop.call_at(max(deadlines), done.set_result, None)
        loop.run_until_complete(done)
        slept = loop.run_until_complete(_sleeps([0.0003, 0.0015, 0.0042, 0.0101]))
    finally:
        loop.close()
    assert [when for when, _ in fired] == sorted(deadlines)
    assert all(at >= when - RESOLUTION for when, at in fired)
    assert all(took >= asked - RESOLUTION for asked, took in slept)
    assert any(w % 0.001 > 1e-7 for w in selector.waits)  # fractions of a millisecond reached the wait


async def _sleeps(delays: list[float]) -> list[tuple[float, float]]:
    loop = asyncio.get_running_loop()
    out = []
    for delay in delays:
        start = loop.time()
        await asyncio.sleep(delay)
        out.append((delay, loop.time() - start))
    return out


def test_sockets_work_on_the_loop() -> None:
    async def main() -> bytes:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello over tcp\n")
        line = await asyncio.wait_for(reader.readline(), 30)
        writer.close()
        server.close()
        await server.wait_closed()
        return line

    assert run(main()) == b"HELLO OVER TCP\n"


async def _child_output() -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(b"olleh"), 60)
    assert proc.returncode is not None
    return proc.returncode, out


def test_a_subprocess_runs_on_the_loop() -> None:
    assert run(_child_output()) == (0, b"hello\n")


def test_a_subprocess_runs_on_the_loop_in_another_thread() -> None:
    """As the MCP client does: ``new_event_loop()`` run in a thread of its own (stdio servers)."""
    loop = new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        got = asyncio.run_coroutine_threadsafe(_child_output(), loop).result(timeout=60)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
    assert got == (0, b"hello\n")


def test_a_signal_handler_wakes_a_loop_that_waits_on_a_long_timer() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        got = asyncio.Event()
        seen: list[str] = []

        def on_usr1() -> None:
            seen.append("usr1")
            got.set()

        loop.add_signal_handler(signal.SIGUSR1, on_usr1)
        try:
            far = loop.call_later(3600, seen.append, "timer")  # the loop's wait has an hour's timeout
            loop.call_later(0.0015, os.kill, os.getpid(), signal.SIGUSR1)
            await asyncio.wait_for(got.wait(), 60)
            far.cancel()
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)
        return seen

    assert run(main()) == ["usr1"]


# -- run ---------------------------------------------------------------------------------------


def test_run_returns_the_result_on_a_fine_loop_and_closes_it(waits: list[float]) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> str:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0.0015)
        return "done"

    assert run(main()) == "done"
    assert waits and waits[0] <= 0.0015  # the sleep was waited with its fraction of a millisecond
    assert loops[0].is_closed()


def test_run_cleans_up_like_asyncio_run() -> None:
    log: list[str] = []
    threads: list[threading.Thread] = []

    async def ticks() -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            log.append("generator closed")

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            log.append("leftover task cancelled")
            raise

    async def main() -> int:
        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0)
        gen = ticks()
        first = await gen.__anext__()  # left open, half-way
        await asyncio.get_running_loop().run_in_executor(None, lambda: threads.append(threading.current_thread()))
        return first

    assert run(main()) == 0
    assert sorted(log) == ["generator closed", "leftover task cancelled"]
    assert threads and not threads[0].is_alive()  # the default executor was shut down


def test_run_propagates_what_main_raises_and_refuses_misuse() -> None:
    async def fails() -> None:
        await asyncio.sleep(0.0005)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        run(fails())
    with pytest.raises(ValueError):
        run(lambda: None)  # type: ignore[arg-type]

    async def nested() -> None:
        inner = fails()
        try:
            run(inner)
        finally:
            inner.close()

    with pytest.raises(RuntimeError, match="running event loop"):
        run(nested())


def test_run_on_python_3_10_cleans_up_the_same() -> None:
    """The 3.10 path (no ``asyncio.Runner``) runs here too, on any version."""
    log: list[str] = []

    async def gen() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            log.append("generator closed")

    async def main() -> Any:
        asyncio.get_running_loop().create_task(asyncio.sleep(3600)).add_done_callback(
            lambda t: log.append("cancelled" if t.cancelled() else "finished")
        )
        g = gen()
        return await g.__anext__(), asyncio.get_running_loop()

    value, loop = event_loop._run_py310(main(), None)
    assert value == 1 and loop.is_closed()
    assert sorted(log) == ["cancelled", "generator closed"]
