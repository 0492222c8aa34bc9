"""Where a root's symbol index is kept, and the key a file's parse is stored under.

The index is one SQLite file OUTSIDE the searched root: ``$XDG_CACHE_HOME/agentcore/code-index/`` (or
``~/.cache/...``), or a directory the caller gives. When that place would be inside the root, a
temporary directory is used, and failing that an in-memory database: nothing is ever written into the
repository.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from pathlib import Path

from agentcore.tools.code.extract import default_export_name
from agentcore.tools.code.paths import CodeRoot


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/agentcore/code-index``, or ``~/.cache/agentcore/code-index``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "agentcore" / "code-index"


_NAMED_BY_FILE = frozenset({"javascript", "typescript", "tsx"})
"""Languages whose facts depend on the file's name too (an anonymous default export is named after it)."""


def content_key(lang: str, rel: str, data: bytes) -> str:
    """The key a file's parse is stored under: the SHA-256 of its content (JS/TS: and of its default-export name)."""
    digest = hashlib.sha256(data)
    if lang in _NAMED_BY_FILE:
        digest.update(b"\0" + default_export_name(rel).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def cache_file_for(root: CodeRoot, cache_dir: str | Path | None) -> str:
    """The index file for ``root``: in ``cache_dir`` unless that is inside the root (then a temp dir or memory)."""
    name = hashlib.sha256(str(root.path).encode("utf-8", "surrogateescape")).hexdigest()[:24] + ".sqlite"
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    for candidate in (base, Path(tempfile.gettempdir()) / f"agentcore-code-index-{os.getuid()}"):
        real = os.path.realpath(candidate)
        if not _inside(real, str(root.path)):
            try:
                os.makedirs(real, mode=0o700, exist_ok=True)
            except OSError:
                continue
            return os.path.join(real, name)
    return ":memory:"


def is_empty(db: sqlite3.Connection) -> bool:
    """Whether ``db`` holds no table but (at most) ``meta``."""
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return tables == ["meta"] or tables == []
