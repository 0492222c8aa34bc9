"""Parsing many files for the symbol index: in this process, or in worker processes for a large build.

``parse_all(files, count, jobs)`` turns ``ToParse`` items into ``(item, FileFacts, chunk rows)`` in the
order given (``files`` may be a generator that reads each file when it is reached). With ``jobs > 1``
and at least ``POOL_MIN_FILES`` files, the tree-sitter work (parse, queries,
definitions, references, chunk rows) runs in ``jobs`` worker processes: fresh ``python`` children
running ``serve`` (not ``multiprocessing``: no ``fork`` of a process that may hold threads and a
SQLite connection, and no re-import of the caller's main script), fed batches over a pipe, one in
flight each, so memory stays flat however large the tree; the caller writes the results to SQLite
as they arrive. A worker that cannot start or dies has its batch parsed in this process.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentcore.tools.code.chunks import ChunkRow, chunk_rows
from agentcore.tools.code.extract import FileFacts, default_export_name, extract

POOL_MIN_FILES = 200
"""Fewer files than this are parsed in this process (starting workers costs about half a second)."""
_BATCH_FILES = 48
_BATCH_BYTES = 2 * 1024 * 1024


@dataclass
class ToParse:
    """One file whose content is not in the index yet."""

    rel: str
    lang: str
    data: bytes
    extra: Any = None
    """Anything the caller wants back with the result."""


Parsed = tuple[ToParse, FileFacts, list[ChunkRow]]


def default_jobs() -> int:
    """Worker processes for a large build: the CPUs this process may use, at most 8
    (``AGENTCORE_INDEX_JOBS`` overrides; 1 parses in this process)."""
    env = os.environ.get("AGENTCORE_INDEX_JOBS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def parse_one(rel: str, lang: str, data: bytes) -> tuple[FileFacts, list[ChunkRow]]:
    """The facts and concept-search chunks of one file."""
    facts = extract(lang, data, default_export_name(rel))
    return facts, chunk_rows(rel, facts)


def _parse_batch(batch: list[tuple[str, str, bytes]]) -> list[tuple[FileFacts, list[ChunkRow]]]:
    return [parse_one(rel, lang, data) for rel, lang, data in batch]


def _batches(files: Iterable[ToParse]) -> Iterator[list[ToParse]]:
    batch: list[ToParse] = []
    size = 0
    for f in files:
        batch.append(f)
        size += len(f.data)
        if len(batch) >= _BATCH_FILES or size >= _BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def parse_all(files: Iterable[ToParse], count: int, jobs: int | None = None) -> Iterator[Parsed]:
    """Each file with its facts and chunk rows, in order; ``count``: about how many files there are."""
    jobs = default_jobs() if jobs is None else jobs
    if jobs <= 1 or count < POOL_MIN_FILES:
        for f in files:
            yield (f, *parse_one(f.rel, f.lang, f.data))
        return
    workers = [w for w in (_Worker.start() for _ in range(jobs)) if w is not None]
    try:
        yield from _pooled(files, workers)
    finally:
        for w in workers:
            w.close()


def _pooled(files: Iterable[ToParse], workers: list[_Worker]) -> Iterator[Parsed]:
    """Batches dealt to the workers in turn, one in flight each; results read back in the same order."""
    batches = _batches(files)
    in_flight: deque[tuple[_Worker | None, list[ToParse]]] = deque()
    for worker in workers:
        first = next(batches, None)
        if first is None:
            break
        in_flight.append((worker if worker.send(first) else None, first))
    while in_flight:
        w: _Worker | None
        w, batch = in_flight.popleft()
        results = w.receive() if w is not None else None
        if results is None:  # no worker, or it died: this batch is parsed here
            results = [parse_one(f.rel, f.lang, f.data) for f in batch]
            w = next((x for x in workers if x.alive), None)
        nxt = next(batches, None)
        if nxt is not None:  # the worker gets its next batch before this one is written, so it never waits
            in_flight.append((w if w is not None and w.send(nxt) else None, nxt))
        for f, (facts, rows) in zip(batch, results, strict=True):
            yield f, facts, rows


class _Worker:
    """A ``python`` child process that parses batches sent over its stdin (length-prefixed pickles)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.alive = True

    @classmethod
    def start(cls) -> _Worker | None:
        package_parent = str(Path(__file__).resolve().parents[3])
        code = f"import sys; sys.path.insert(0, {package_parent!r}); from agentcore.tools.code.parsing import serve; serve()"
        try:
            proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError:
            return None
        return cls(proc)

    def send(self, batch: list[ToParse]) -> bool:
        try:
            _write_frame(self.proc.stdin, [(f.rel, f.lang, f.data) for f in batch])
            return True
        except (OSError, ValueError):
            self.alive = False
            return False

    def receive(self) -> list[tuple[FileFacts, list[ChunkRow]]] | None:
        try:
            result: list[tuple[FileFacts, list[ChunkRow]]] | None = _read_frame(self.proc.stdout)
            return result
        except (OSError, EOFError, pickle.UnpicklingError):
            self.alive = False
            return None

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _write_frame(stream: Any, obj: Any) -> None:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(body)) + body)
    stream.flush()


def _read_frame(stream: Any) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("the parse worker ended")
    (size,) = struct.unpack("<Q", head)
    body = stream.read(size)
    if len(body) < size:
        raise EOFError("the parse worker ended mid-answer")
    return pickle.loads(body)  # our own child process's answer, never outside input


def serve() -> None:
    """The worker's loop: read a batch from stdin, write its parse results to stdout, until stdin closes.
    Ctrl-C is left to the parent, which closes the pipe (no traceback from every worker)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            batch = _read_frame(stdin)
        except EOFError:
            return
        _write_frame(stdout, _parse_batch(batch))
