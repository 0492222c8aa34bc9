"""Worker processes started by a test, killed when the test ends (see ``tests/runtime/conftest.py``)."""

from __future__ import annotations

import subprocess

STARTED: list[subprocess.Popen[str]] = []
"""Append every worker process a test starts; none outlives its test."""


def kill_started() -> None:
    """Kill and reap every process in ``STARTED`` that is still running, emptying the list."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
