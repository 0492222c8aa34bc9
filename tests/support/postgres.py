"""A throwaway PostgreSQL cluster for tests and benchmarks, started from the Debian server binaries.

``LocalPostgres.start()`` runs ``initdb`` in a temporary directory (as the unprivileged user
``nobody`` when we are root: PostgreSQL refuses to run as root), then ``pg_ctl start`` listening
on 127.0.0.1 on a free port, with its Unix socket in the same directory. The superuser
``agentcore`` has a password and connections over TCP must give it (``scram-sha-256``), so the
tests see real credentials in their URLs. ``stop()`` stops the server and deletes the directory.

No server binaries on the machine: as root with apt-get, Debian's ``postgresql`` is installed;
otherwise it is an error that says how to get them (``apt-get install postgresql``), never a skip. The ``postgres_server`` fixture (session scope) is defined at the
bottom; ``pg_url`` gives each test a fresh database on it.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

USER = "agentcore"
PASSWORD = "s3cret-Pw-9f2c"  # a throwaway cluster's password: tests check it never leaks
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or under /usr/lib/postgresql/*/bin. "
    "Install them with `apt-get install -y postgresql` (or run .ci/run, which does), or set "
    "AGENTCORE_PG_BIN to the directory holding initdb and pg_ctl."
)


def find_bin_dir() -> Path:
    """The directory with ``initdb``, ``pg_ctl`` and ``postgres`` (newest version first).

    When none is found and we are root on a Debian-like machine, Debian's ``postgresql`` package is
    installed first (as the Chromium helper does), so the README's test command needs no manual set-up.
    """
    try:
        return _search_bin_dir()
    except RuntimeError:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, env=env, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "postgresql"], check=False, capture_output=True, env=env, timeout=900
    )
    return _search_bin_dir()


def _search_bin_dir() -> Path:
    candidates = []
    if os.environ.get("AGENTCORE_PG_BIN"):
        candidates.append(Path(os.environ["AGENTCORE_PG_BIN"]))
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(os.path.realpath(found)).parent)

    def version(p: str) -> int:
        part = Path(p).parent.name
        return int(part) if part.isdigit() else 0

    candidates.extend(Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True))
    for d in candidates:
        if all((d / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return d
    raise RuntimeError(INSTALL_HINT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalPostgres:
    """One throwaway cluster. ``settings`` go into postgresql.conf (``fsync=off`` for tests)."""

    settings: dict[str, str] = field(default_factory=lambda: {"fsync": "off", "full_page_writes": "off"})
    listen: str = "127.0.0.1"
    port: int = 0
    root: Path | None = None
    bin_dir: Path | None = None
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def _as_owner(self) -> dict[str, object]:
        return {"user": "nobody", "group": "nogroup", "extra_groups": []} if os.geteuid() == 0 else {}

    def _run(self, *args: str) -> None:
        assert self.bin_dir is not None
        done = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]], capture_output=True, text=True, timeout=120,
            cwd=self.root, **self._as_owner(),  # type: ignore[arg-type]
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> LocalPostgres:
        self.bin_dir = self.bin_dir or find_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="agentcore-pg-"))
        os.chmod(self.root, 0o755)
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.root, "nobody", "nogroup")
            shutil.chown(pwfile, "nobody", "nogroup")
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        self.port = self.port or free_port()
        conf = {
            "listen_addresses": f"'{self.listen}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "200",
            **self.settings,
        }
        with (self.data / "postgresql.conf").open("a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        if self.listen not in ("127.0.0.1", "localhost"):
            with (self.data / "pg_hba.conf").open("a") as f:
                f.write("host all all 0.0.0.0/0 scram-sha-256\n")
        self.server_start()
        return self

    def server_start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")

    def server_stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> None:
        """Stop the server (``immediate``: connections are cut) and start it again on the same port."""
        self.server_stop("immediate")
        self.server_start()

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            self.server_stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def url(self, dbname: str = "postgres", *, password: str | None = PASSWORD, host: str = "127.0.0.1") -> str:
        auth = USER if password is None else f"{USER}:{password}"
        return f"postgresql://{auth}@{host}:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = name or f"t{next(self._names)}_{os.getpid()}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """A PostgreSQL cluster for the whole test session (fails, never skips, without PostgreSQL)."""
    try:
        server = LocalPostgres().start()
    except RuntimeError as e:
        pytest.fail(f"cannot start the test PostgreSQL server: {e}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server: LocalPostgres) -> str:
    """The URL (with password) of a fresh, empty database on the session's server."""
    return postgres_server.create_database()


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
