"""The symbol index: definitions, references and concept chunks of every source file under a ``CodeRoot``.

It lives in one SQLite file OUTSIDE the searched root: ``$XDG_CACHE_HOME/agentcore/code-index/`` (or
``~/.cache/...``), or a directory the caller gives. When that place would be inside the root, a
temporary directory is used, and failing that an in-memory database: nothing is ever written into the
repository. ``sqlite3`` is imported here (and not only in ``storage.sqlite``) because this is the
toolkit's own cache, not the event log; it holds nothing the log needs.

- Files are met through ``CodeRoot.walk`` (ignore files respected, symbolic links never followed) and
  opened through ``CodeRoot.open_entry``, so the index sees exactly what the other code tools may read.
- Parse results are keyed by the SHA-256 of the file's content (``cache.content_key``): ``refresh``
  re-reads a file only when its size or modification time changed and re-parses it only when its
  content hash changed. A large build parses in worker processes (``parsing``); this process writes.
- A cache file that is not a SQLite database, has another format version, or was made for another
  root is deleted and rebuilt, never trusted.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agentcore.tools.code.cache import cache_file_for, content_key, is_empty
from agentcore.tools.code.chunks import ChunkRow, chunk_rows
from agentcore.tools.code.extract import DEFINITION_KINDS, FileFacts, Symbol
from agentcore.tools.code.grammars import MAX_INDEXED_BYTES, language_of
from agentcore.tools.code.parsing import ToParse, parse_all
from agentcore.tools.code.paths import CodeRoot, WalkEntry, display_path
from agentcore.tools.code.ranking import pagerank

FORMAT = "agentcore-code-index/14"
_NOISE = frozenset({"self", "cls", "this"})
"""Names too common to be worth a reference row."""
_RANK_STALE_SHARE = 0.05

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, hash TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    lang TEXT NOT NULL, rank REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS files_hash ON files(hash);
CREATE TABLE IF NOT EXISTS contents (hash TEXT PRIMARY KEY, lines INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS comments (hash TEXT NOT NULL, line INTEGER NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS comments_hash ON comments(hash);
CREATE TABLE IF NOT EXISTS symbols (
    hash TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, line INTEGER NOT NULL, end_line INTEGER NOT NULL,
    container TEXT, depth INTEGER NOT NULL, signature TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS symbols_name ON symbols(name);
CREATE INDEX IF NOT EXISTS symbols_name_nocase ON symbols(name COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS symbols_hash ON symbols(hash);
CREATE TABLE IF NOT EXISTS refs (
    hash TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL, lines TEXT NOT NULL,
    qual TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS refs_name ON refs(name);
CREATE INDEX IF NOT EXISTS refs_hash ON refs(hash);
CREATE TABLE IF NOT EXISTS chunk_owner (file TEXT PRIMARY KEY, lo INTEGER NOT NULL, hi INTEGER NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(
    name, path, doc, body, file UNINDEXED, line UNINDEXED, symbol UNINDEXED, kind UNINDEXED,
    container UNINDEXED, summary UNINDEXED, tokenize = 'porter unicode61 remove_diacritics 2');
"""


Progress = Callable[[int, int], None]
"""``progress(done, total)``: files indexed so far out of those to (re)read."""


@dataclass(frozen=True)
class RefreshStats:
    """What one ``refresh`` did."""

    files: int
    """Indexed files under the root now."""
    parsed: int
    """Files whose content was new and was parsed."""
    removed: int
    """Files gone from the root (or now ignored) and dropped from the index."""


class SymbolIndex:
    """The index of one root (see the module docstring).

    Args:
        root: the confined root the files come from.
        cache_dir: where the index file goes (default ``cache.default_cache_dir()``); never inside ``root``.
        max_file_size: larger files are not indexed (bytes).
        jobs: worker processes for a large build (default ``parsing.default_jobs()``; 1: none).
    """

    def __init__(
        self,
        root: CodeRoot,
        cache_dir: str | Path | None = None,
        *,
        max_file_size: int = MAX_INDEXED_BYTES,
        jobs: int | None = None,
    ):
        self.root = root
        self.max_file_size = max_file_size
        self.jobs = jobs
        self.path = cache_file_for(root, cache_dir)
        self.db = self._open()
        self.lock = threading.RLock()
        """Held by the tools around ``refresh`` and a query: one connection, used by one thread at a time."""
        self._names: list[str] | None = None

    def close(self) -> None:
        self.db.close()

    def _open(self) -> sqlite3.Connection:
        try:
            db = self._connect()
            row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            root_row = db.execute("SELECT value FROM meta WHERE key = 'root'").fetchone()
            if row is not None and row[0] == FORMAT and root_row is not None and root_row[0] == self._root_key():
                db.execute("SELECT count(*) FROM chunks WHERE chunks MATCH 'x'").fetchone()
                return db
            if row is None and root_row is None and is_empty(db):
                return self._init(db)
            db.close()
        except sqlite3.DatabaseError:
            pass
        self._discard()
        return self._init(self._connect())

    def _root_key(self) -> str:
        return display_path(str(self.root.path))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 30000")
        if self.path != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
        return db

    def _init(self, db: sqlite3.Connection) -> sqlite3.Connection:
        db.executescript(_SCHEMA)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?), ('root', ?)", (FORMAT, self._root_key()))
        return db

    def _discard(self) -> None:
        if self.path == ":memory:":
            return
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except FileNotFoundError:
                pass

    # -- updating ----------------------------------------------------------------------------------

    def refresh(self, progress: Progress | None = None) -> RefreshStats:
        """Bring the index up to date with the files under the root (only changed files are re-read).

        A first pass only lists and ``stat``-s the files; when nothing changed it writes nothing. Otherwise
        the update runs in one write transaction that re-reads the index first, so two processes
        refreshing the same cache never store a file twice. New contents are parsed by ``parsing.parse_all``
        (worker processes for a large build). ``progress(done, total)`` is called as files are indexed
        (``total``: files whose size or mtime changed), at most about every 1% and at the end.
        """
        self.root.clear_cache()
        if not self._changed():
            total = self.db.execute("SELECT count(*) FROM files").fetchone()[0]
            return RefreshStats(files=total, parsed=0, removed=0)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            stats = self._update(progress)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self._maybe_rank()
        return stats

    def _update(self, progress: Progress | None) -> RefreshStats:
        known = {p: (h, s, m) for p, h, s, m in self.db.execute("SELECT path, hash, size, mtime_ns FROM files")}
        have = {h for (h,) in self.db.execute("SELECT hash FROM contents")}
        seen: set[str] = set()
        dropped: set[str] = set()
        known_content: list[tuple[str, str, os.stat_result, str]] = []
        n_todo = sum(
            1 for _i, rel, _l, st in self._indexable() if known.get(rel, ("",))[1:] != (st.st_size, st.st_mtime_ns)
        )

        def contents() -> Iterator[ToParse]:  # read during the walk: an entry's directory is open only then
            for item, rel, lang, st in self._indexable():
                old = known.get(rel)
                if old is not None and (old[1], old[2]) == (st.st_size, st.st_mtime_ns):
                    seen.add(rel)
                    continue
                data = self._read(item)
                if data is None:
                    continue
                seen.add(rel)
                digest = content_key(lang, rel, data)
                if old is not None and old[0] != digest:
                    dropped.add(old[0])
                if digest in have:  # indexed already (or earlier in this pass): stored after the parses
                    known_content.append((rel, lang, st, digest))
                    continue
                have.add(digest)
                yield ToParse(rel, lang, data, (st, digest))

        parsed = 0
        step = max(1, n_todo // 100)
        for f, facts, rows in parse_all(contents(), n_todo, self.jobs):
            st, digest = f.extra
            self._store_content(digest, f.data, facts)
            self._store_file(f.rel, digest, st, f.lang)
            self._store_chunks(f.rel, rows)
            parsed += 1
            if progress is not None and parsed % step == 0:
                progress(parsed, n_todo)
        for rel, lang, st, digest in known_content:
            old = known.get(rel)
            self._store_file(rel, digest, st, lang)
            if old is None or old[0] != digest:
                self._store_chunks(rel, chunk_rows(rel, self._load_facts(digest)))
        if progress is not None:
            progress(n_todo, n_todo)
        gone = [p for p in known if p not in seen]
        for p in gone:
            dropped.add(known[p][0])
            self.db.execute("DELETE FROM files WHERE path = ?", (p,))
            self._drop_chunks(p)
        self._collect(dropped)
        if parsed + len(gone):
            self._bump_changes(parsed + len(gone))
            self._names = None
        total = self.db.execute("SELECT count(*) FROM files").fetchone()[0]
        return RefreshStats(files=total, parsed=parsed, removed=len(gone))

    def _read(self, item: WalkEntry) -> bytes | None:
        """The file's bytes through the confined root, or ``None`` (gone, unreadable or too large)."""
        opened = self.root.open_entry(item)
        if opened is None:
            return None
        with opened[0] as f:
            data: bytes = f.read(self.max_file_size + 1)
        return data if len(data) <= self.max_file_size else None

    def _store_file(self, rel: str, digest: str, st: os.stat_result, lang: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO files (path, hash, size, mtime_ns, lang, rank) VALUES (?, ?, ?, ?, ?, "
            "COALESCE((SELECT rank FROM files WHERE path = ?), 0))",
            (rel, digest, st.st_size, st.st_mtime_ns, lang, rel),
        )

    def _indexable(self) -> Iterator[tuple[WalkEntry, str, str, os.stat_result]]:
        for item in self.root.walk():
            rel = display_path(item.rel)
            lang = language_of(rel)
            if lang is None:
                continue
            try:
                st = item.entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_size <= self.max_file_size:
                yield item, rel, lang, st

    def _changed(self) -> bool:
        """Whether any indexable file was added, removed, or changed size or mtime (no file is read)."""
        known = {p: (s, m) for p, s, m in self.db.execute("SELECT path, size, mtime_ns FROM files")}
        count = 0
        for _item, rel, _lang, st in self._indexable():
            count += 1
            if known.get(rel) != (st.st_size, st.st_mtime_ns):
                return True
        return count != len(known)

    def defined_names(self) -> list[str]:
        """Every distinct name with a real definition (for close-name suggestions)."""
        if self._names is None:
            kinds = ",".join(f"'{k}'" for k in DEFINITION_KINDS)
            self._names = [n for (n,) in self.db.execute(f"SELECT DISTINCT name FROM symbols WHERE kind IN ({kinds})")]
        return self._names

    def _store_content(self, digest: str, data: bytes, facts: FileFacts) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO contents VALUES (?, ?, ?)",
            (digest, data.count(b"\n") + (not data.endswith(b"\n") and bool(data)), facts.doc),
        )
        self.db.executemany(
            "INSERT INTO symbols VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (digest, s.name, s.kind, s.line, s.end_line, s.container, s.depth, s.signature, s.doc)
                for s in facts.symbols
            ],
        )
        grouped: dict[tuple[str, str, str], list[str]] = {}
        for name, kind, line, qual in facts.refs:
            if name not in _NOISE:
                grouped.setdefault((name, kind, qual), []).append(str(line))
        self.db.executemany(
            "INSERT INTO refs VALUES (?, ?, ?, ?, ?, ?)",
            [(digest, name, kind, len(lines), " ".join(lines), qual) for (name, kind, qual), lines in grouped.items()],
        )
        self.db.executemany("INSERT INTO comments VALUES (?, ?, ?)", [(digest, *c) for c in facts.comments])

    def _load_facts(self, digest: str) -> FileFacts:
        """The stored facts of a content already indexed under another path."""
        facts = FileFacts()
        facts.symbols = [
            Symbol(*row)
            for row in self.db.execute(
                "SELECT name, kind, line, end_line, container, depth, signature, doc FROM symbols WHERE hash = ? "
                "ORDER BY rowid",
                (digest,),
            )
        ]
        for name, kind, lines, qual in self.db.execute(
            "SELECT name, kind, lines, qual FROM refs WHERE hash = ?", (digest,)
        ):
            facts.refs.extend((name, kind, int(n), qual) for n in lines.split())
        facts.refs.sort(key=lambda r: r[2])
        facts.comments = self.db.execute(
            "SELECT line, text FROM comments WHERE hash = ? ORDER BY line", (digest,)
        ).fetchall()
        row = self.db.execute("SELECT doc FROM contents WHERE hash = ?", (digest,)).fetchone()
        facts.doc = row[0] if row else ""
        return facts

    def _drop_chunks(self, rel: str) -> None:
        """Delete a file's chunks by their rowid range (a full-text table has no index on ``file``)."""
        row = self.db.execute("SELECT lo, hi FROM chunk_owner WHERE file = ?", (rel,)).fetchone()
        if row is not None:
            self.db.execute("DELETE FROM chunks WHERE rowid BETWEEN ? AND ?", row)
            self.db.execute("DELETE FROM chunk_owner WHERE file = ?", (rel,))

    def _store_chunks(self, rel: str, rows: list[ChunkRow]) -> None:
        self._drop_chunks(rel)
        lo = (self.db.execute("SELECT max(rowid) FROM chunks").fetchone()[0] or 0) + 1
        self.db.executemany(
            "INSERT INTO chunks (rowid, name, path, doc, body, file, line, symbol, kind, container, summary) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(lo + i, *row) for i, row in enumerate(rows)],
        )
        self.db.execute("INSERT INTO chunk_owner VALUES (?, ?, ?)", (rel, lo, lo + len(rows) - 1))

    def _collect(self, hashes: set[str]) -> None:
        for h in hashes:
            if self.db.execute("SELECT 1 FROM files WHERE hash = ? LIMIT 1", (h,)).fetchone() is None:
                for table in ("symbols", "refs", "comments", "contents"):
                    self.db.execute(f"DELETE FROM {table} WHERE hash = ?", (h,))

    def _bump_changes(self, n: int) -> None:
        self.db.execute(
            "INSERT INTO meta VALUES ('changes_since_rank', ?) ON CONFLICT(key) DO UPDATE SET "
            "value = CAST(value AS INTEGER) + ?",
            (str(n), n),
        )

    def _maybe_rank(self) -> None:
        """Recompute file PageRank when more than 5% of the files changed since it was last computed."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'changes_since_rank'").fetchone()
        changes = int(row[0]) if row else 0
        total = self.db.execute("SELECT count(*) FROM files").fetchone()[0]
        if changes == 0 or (changes <= _RANK_STALE_SHARE * total and self._ranked()):
            return
        ranks = pagerank(self._edges(), [p for (p,) in self.db.execute("SELECT path FROM files")])
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany("UPDATE files SET rank = ? WHERE path = ?", [(r, p) for p, r in ranks.items()])
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('changes_since_rank', '0'), ('ranked', '1')")
        self.db.execute("COMMIT")

    def _ranked(self) -> bool:
        return self.db.execute("SELECT 1 FROM meta WHERE key = 'ranked'").fetchone() is not None

    def _edges(self) -> list[tuple[str, str, float]]:
        """File A -> file B, weighted by how often A uses (calls, imports, attributes) names only B (or few) define."""
        kinds = ",".join(f"'{k}'" for k in DEFINITION_KINDS)
        self.db.execute("DROP TABLE IF EXISTS temp.defs")
        self.db.execute(
            f"CREATE TEMP TABLE defs AS SELECT s.name AS name, f.path AS path, 1.0 / n.c AS w FROM symbols s "
            f"JOIN files f ON f.hash = s.hash JOIN (SELECT name, count(DISTINCT hash) AS c FROM symbols "
            f"WHERE kind IN ({kinds}) AND depth <= 1 GROUP BY name HAVING c <= 8) n ON n.name = s.name "
            f"WHERE s.kind IN ({kinds}) AND s.depth <= 1"
        )
        self.db.execute("CREATE INDEX temp.defs_name ON defs(name)")
        rows = self.db.execute(
            "SELECT f.path, d.path, sum(d.w * r.count) FROM refs r JOIN defs d ON d.name = r.name "
            "JOIN files f ON f.hash = r.hash WHERE r.kind != 'mention' AND f.path != d.path GROUP BY f.path, d.path"
        ).fetchall()
        self.db.execute("DROP TABLE temp.defs")
        return [(a, b, float(w)) for a, b, w in rows]
