"""A throwaway PgBouncer in transaction mode in front of the tests' PostgreSQL server.

``LocalPgBouncer(server).start()`` writes ``pgbouncer.ini`` and ``userlist.txt`` into a temporary
directory and runs ``pgbouncer`` in the foreground on a free 127.0.0.1 port (as ``nobody`` when we
are root, as the PostgreSQL helper runs ``initdb``), ``pool_mode = transaction``, any database name
passed on to the server (``* =``), clients and server authenticated with the server's real
password (``scram-sha-256``). ``url(direct)`` is a database URL of the server rewritten to go
through the pooler. ``stop()`` terminates it and deletes the directory.

No ``pgbouncer`` on PATH (or under /usr/sbin): the ``pgbouncer`` fixture FAILS, saying to install it
(``apt-get install -y pgbouncer``; ``.ci/run`` does), never skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.postgres import PASSWORD, USER, LocalPostgres, free_port

INSTALL_HINT = (
    "pgbouncer was not found on PATH or in /usr/sbin: the transaction-mode pooler tests need a real "
    "PgBouncer. Install it with `apt-get install -y pgbouncer` (or run .ci/run, which does)."
)


def find_pgbouncer() -> str:
    """The path of the ``pgbouncer`` executable (Debian puts it in /usr/sbin); ``RuntimeError`` if none."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError(INSTALL_HINT)
    return found


class LocalPgBouncer:
    """One PgBouncer process (``pool_mode = transaction`` by default) in front of ``server``.

    Args:
        server: The running PostgreSQL cluster it pools connections to.
        pool_size: Server connections per (database, user) pair: few, so clients share them.
        pool_mode: ``transaction`` (the tests') or ``session`` (for comparisons).
    """

    def __init__(self, server: LocalPostgres, *, pool_size: int = 2, pool_mode: str = "transaction") -> None:
        self.server = server
        self.pool_size = pool_size
        self.pool_mode = pool_mode
        self.port = 0
        self.root: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalPgBouncer:
        binary = find_pgbouncer()
        self.root = Path(tempfile.mkdtemp(prefix="agentcore-pgbouncer-"))
        self.port = free_port()
        ini = self.root / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.server.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = scram-sha-256\nauth_file = {self.root / 'userlist.txt'}\n"
            f"pool_mode = {self.pool_mode}\ndefault_pool_size = {self.pool_size}\nmax_client_conn = 200\n"
            f"logfile = {self.root / 'pgbouncer.log'}\n"
        )
        (self.root / "userlist.txt").write_text(f'"{USER}" "{PASSWORD}"\n')
        owner: dict[str, object] = {}
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            for path in (self.root, *self.root.iterdir()):
                shutil.chown(path, "nobody", "nogroup")
            owner = {"user": "nobody", "group": "nogroup", "extra_groups": []}
        with (self.root / "stderr.txt").open("wb") as err:  # a file: a pipe nobody reads would fill up
            self.proc = subprocess.Popen(  # type: ignore[call-overload]
                [binary, str(ini)], stdout=subprocess.DEVNULL, stderr=err, cwd=self.root, **owner
            )
        deadline = time.monotonic() + 30
        while not self._accepting():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err_text = (self.root / "stderr.txt").read_text(errors="replace").strip()
                self.stop()
                raise RuntimeError(f"pgbouncer did not start on 127.0.0.1:{self.port}: {err_text or 'timed out'}")
            time.sleep(0.05)
        return self

    def _accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def url(self, direct: str) -> str:
        """``direct`` (a database URL of ``server``) with its host and port made the pooler's."""
        parts = urlsplit(direct)
        userinfo = parts.netloc.rpartition("@")[0]
        return urlunsplit(parts._replace(netloc=f"{userinfo}@127.0.0.1:{self.port}"))

    def log(self) -> str:
        """What PgBouncer wrote to its log so far (for assertion messages)."""
        assert self.root is not None
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            self.proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> LocalPgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def pgbouncer(postgres_server: LocalPostgres) -> Iterator[LocalPgBouncer]:
    """A PgBouncer in transaction mode in front of the session's server (fails, never skips, without it)."""
    try:
        bouncer = LocalPgBouncer(postgres_server).start()
    except RuntimeError as e:
        pytest.fail(f"cannot start the test PgBouncer: {e}", pytrace=False)
    try:
        yield bouncer
    finally:
        bouncer.stop()
