"""Output files (``export -o``, ``view -o``, ``artifact -o``) never overwrite a database.

``agentcore export last -o runs.db`` (meant: ``--db runs.db``) would replace the file holding every
recorded run with a trace; ``view -o`` and ``artifact -o`` likewise. ``check_output`` refuses, before
anything is written, an output that is the database the command reads (or its ``-wal``, ``-shm``
or ``-journal`` file, whatever path names it) or any file that is an agentcore SQLite database.
"""

from __future__ import annotations

import os

import click

from agentcore.cli.support import inert, shown
from agentcore.storage.targets import is_conninfo, looks_like_url

__all__ = ("check_output", "check_stdout")

_SQLITE_HEADER = b"SQLite format 3\x00"
_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def _is_agentcore_database(path: str) -> bool:
    from agentcore.storage.sqlite.migrations import APPLICATION_ID  # not loaded by commands on PostgreSQL

    try:
        with open(path, "rb") as f:
            head = f.read(72)
    except OSError:
        return False
    # PRAGMA application_id is the header's big-endian integer at byte 68
    return head.startswith(_SQLITE_HEADER) and int.from_bytes(head[68:72], "big") == APPLICATION_ID


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(output: str | None, db: str) -> None:
    """Refuse (usage error, exit 2) an ``output`` that would overwrite ``db``'s files or an agentcore database.

    ``None`` and ``-`` (stdout) always pass; so does a path that does not exist yet.
    """
    if output is None or output == "-" or not os.path.lexists(output):
        return
    if not looks_like_url(db) and not is_conninfo(db) and any(_same_file(output, db + s) for s in _SIDE_FILES):
        why = f"is the database this command reads ({shown(db)})"
    elif _is_agentcore_database(output):
        why = "is an agentcore database"
    else:
        return
    raise click.BadParameter(
        f"{inert(output)} {why}: writing there would destroy its runs. Choose another file name "
        "(the database is given with --db)",
        param_hint="'-o'",
    )


def check_stdout(output: str | None, as_json: bool) -> None:
    """Refuse ``-o -`` with ``--json`` (usage error): both would go to stdout, which then holds no valid JSON."""
    if output == "-" and as_json:
        raise click.UsageError("-o - and --json both write to stdout: give --json with -o FILE, or drop --json")
