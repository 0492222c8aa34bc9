"""Arize Phoenix (``arize-phoenix`` from PyPI) as a real OpenTelemetry backend for tests.

Phoenix pins its own versions of many packages, so it lives in a venv of its own: the one named by
``AGENTCORE_PHOENIX`` (the ``phoenix`` executable; ``.ci/run`` installs it into a cache), else
``~/.cache/agentcore-tests/phoenix`` (created here with ``pip install arize-phoenix`` when missing:
the first run takes a minute or two). It is started on 127.0.0.1 with free ports, a temporary
working directory (its SQLite database) and nothing fetched from outside, and stopped after.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_VENV = Path.home() / ".cache" / "agentcore-tests" / "phoenix"


def phoenix_executable() -> Path:
    """The ``phoenix`` command, installed into its own venv first when it is missing."""
    given = os.environ.get("AGENTCORE_PHOENIX")
    if given:
        return Path(given)
    exe = DEFAULT_VENV / "bin" / "phoenix"
    if not exe.exists():
        DEFAULT_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(DEFAULT_VENV)], check=True, timeout=300)
        pip = [str(DEFAULT_VENV / "bin" / "pip"), "install", "-q", "arize-phoenix"]
        subprocess.run(pip, check=True, timeout=900)
    return exe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Phoenix:
    base: str
    """``http://127.0.0.1:PORT``: the UI, the REST API (``/v1``) and OTLP/HTTP (``/v1/traces``)."""
    log: Path

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=30) as response:
            return json.loads(response.read())


@contextmanager
def running_phoenix(workdir: Path, start_timeout: float = 300) -> Iterator[Phoenix]:
    port, grpc = _free_port(), _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))},
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        "PHOENIX_ALLOWED_SANDBOX_PROVIDERS": "NONE",
    }
    log = workdir / "phoenix.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(phoenix_executable()), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
            start_new_session=True,
        )  # fmt: skip
    phoenix = Phoenix(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"phoenix exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(phoenix.base + "/healthz", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"phoenix did not start in {start_timeout} s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield phoenix
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
