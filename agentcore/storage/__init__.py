"""Where runs are kept: the store protocols, the memory store, SQLite (``storage.sqlite``),
PostgreSQL (``storage.postgres``), trace files, and ``open_store`` (a path or a URL).
"""

from agentcore.storage.targets import default_target, open_store

__all__ = ("default_target", "open_store")
