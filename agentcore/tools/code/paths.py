"""The confinement boundary of the code tools: nothing outside ``CodeRoot`` is ever opened or listed.

How it holds:

- ``resolve`` refuses absolute paths and ``..`` components, then follows symbolic links at every
  component (``os.path.realpath``) and refuses a result outside the root. A link inside the root that
  points to another place inside the root is fine.
- ``open`` never trusts the earlier check: it walks from a descriptor of the root one component at a
  time with ``O_NOFOLLOW`` (so no symbolic link is followed, even one swapped in after the check) and
  then ``fstat``-s the descriptor: it must be the same device and inode that ``check_file`` saw.
- ``walk`` lists directories through descriptors opened the same way and never descends into a
  symbolic link; symbolic links are not listed at all (as ripgrep does without ``-L``).
- The root itself is pinned by identity: its device and inode are captured when ``CodeRoot`` is built, and
  every walk, open and search starts from a descriptor of the root whose identity is checked again (a
  root replaced by a link, ``mv repo repo.old; ln -s outside repo``, is a ``ToolError``).
- A file name that is not valid UTF-8 is shown with U+FFFD in place of its bad bytes (JSON cannot carry
  them); ``resolve`` maps such a shown name back to the one entry it stands for, so it can be read.
- Hard links cannot be told apart from the original, so a regular file with ``st_nlink > 1`` is read only
  when all of its links are found inside the root (a census of the root, taken once per tool call after
  ``clear_cache``); otherwise it is refused, since another link may live outside the root.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from agentcore.errors import ConfigError, ToolError
from agentcore.tools.code.ignore import IGNORE_FILES, IgnoreStack, parse_ignore_text

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0)
"""Flags for opening files: never through a symbolic link, never blocking on a FIFO swapped in."""
DIR_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_DIRECTORY", 0)
_IGNORE_FILE_LIMIT = 1 << 20


def display_path(rel: str) -> str:
    """A path fit for JSON: bytes that are not UTF-8 (kept by the OS as surrogates) become U+FFFD."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True)
class CheckedFile:
    """A regular file inside the root, as ``CodeRoot.check_file`` saw it; pass it to ``CodeRoot.open``."""

    rel: str
    """Its real path relative to the root, '/'-separated (symbolic links already resolved)."""
    dev: int
    ino: int
    size: int


@dataclass(frozen=True)
class WalkEntry:
    """A regular file met by ``CodeRoot.walk``; ``dir_fd`` is valid only until the walk moves on."""

    rel: str
    entry: os.DirEntry[str]
    dir_fd: int


class CodeRoot:
    """A directory the code tools are confined to.

    Args:
        root: the directory; symbolic links in it are resolved once, here.

    Raises:
        ConfigError: ``root`` is not an existing directory.
    """

    def __init__(self, root: str | Path) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise ConfigError(f"code root {str(root)!r} is not an existing directory")
        self.path = Path(real)
        st = os.stat(real)
        self._identity = (st.st_dev, st.st_ino)
        self._census: dict[tuple[int, int], int] | None = None

    def __repr__(self) -> str:
        return f"CodeRoot({str(self.path)!r})"

    def clear_cache(self) -> None:
        """Forget the hard-link census, so the next check sees the tree as it is now."""
        self._census = None

    def resolve(self, rel: str) -> Path:
        """Return the real path of ``rel`` after checking that it stays inside the root.

        Args:
            rel: a path relative to the root, '/'-separated ("" or "." is the root itself).

        Raises:
            ToolError: the path is absolute, has a ``..`` component, leads outside the root through a
                symbolic link, or does not exist.
        """
        if "\0" in rel:
            raise ToolError(f"path {rel!r} contains a NUL character; pass a plain relative path.")
        os.close(self.open_root())
        if os.path.isabs(rel):
            raise ToolError(
                f"path {rel!r} is absolute; pass a path relative to the code root, such as 'src/main.py' "
                "(list_files shows the available paths)."
            )
        if ".." in PurePosixPath(rel).parts:
            raise ToolError(
                f"path {rel!r} contains '..'; only files under the code root can be read. "
                "Pass a path relative to the root without '..'."
            )
        real = os.path.realpath(os.path.join(self.path, self._undisplay(rel)))
        if not _is_within(real, str(self.path)):
            raise ToolError(
                f"path {rel!r} leads outside the code root through a symbolic link; only files under "
                "the root can be read. Use list_files to see what is available."
            )
        if not os.path.exists(real):
            raise ToolError(
                f"path {rel!r} does not exist under the code root; use list_files or search_code to find "
                "the right path."
            )
        return Path(real)

    def _undisplay(self, rel: str) -> str:
        """Map components shown with U+FFFD (bytes that are not UTF-8) back to the entry they stand for."""
        if "\ufffd" not in rel:
            return rel
        real_parts: list[str] = []
        for part in PurePosixPath(rel).parts:
            here = os.path.join(self.path, *real_parts)
            if "\ufffd" in part and not os.path.lexists(os.path.join(here, part)):
                try:
                    names = [n for n in os.listdir(here) if display_path(n) == part]
                except OSError:
                    names = []
                if len(names) > 1:
                    raise ToolError(
                        f"path {rel!r} names {len(names)} entries whose names differ only in bytes that are not "
                        "UTF-8; they cannot be told apart by name, so none is read."
                    )
                part = names[0] if names else part
            real_parts.append(part)
        return "/".join(real_parts)

    def check_file(self, rel: str) -> CheckedFile:
        """Resolve ``rel`` and check that it names a regular file that may be read.

        Raises:
            ToolError: as for ``resolve``, or the path is a directory, not a regular file, or a hard link
                whose other links may be outside the root.
        """
        real = self.resolve(rel)
        st = os.stat(real, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            pattern = f"{rel.strip('/')}/**" if rel.strip("/.") else "**/*"
            raise ToolError(f"{rel!r} is a directory; call list_files(glob={pattern!r}) to see its files.")
        if not stat.S_ISREG(st.st_mode):
            raise ToolError(f"{rel!r} is not a regular file (a device, socket or pipe); it cannot be read.")
        self._require_links_inside(st, rel)
        return CheckedFile(
            rel=os.path.relpath(real, self.path).replace(os.sep, "/"),
            dev=st.st_dev,
            ino=st.st_ino,
            size=st.st_size,
        )

    def open(self, checked: CheckedFile) -> BinaryIO:
        """Open a checked file for binary reading, re-checking that it is still the file that was checked.

        Raises:
            ToolError: the file was replaced (by a symbolic link or another file) since it was checked.
        """
        changed = ToolError(
            f"{checked.rel!r} changed while it was being opened (it was replaced or became a link); "
            "call the tool again."
        )
        try:
            fd = self._open_beneath(checked.rel.split("/"))
        except OSError as e:
            raise changed from e
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (checked.dev, checked.ino) or not stat.S_ISREG(st.st_mode):
                raise changed
            self._require_links_inside(st, checked.rel)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def open_entry(self, item: WalkEntry) -> tuple[BinaryIO, os.stat_result] | None:
        """Open a file met by ``walk``; ``None`` when it is no longer a regular file or is a foreign hard link."""
        try:
            fd = os.open(item.entry.name, FILE_FLAGS, dir_fd=item.dir_fd)
        except OSError:
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not self.links_inside(st):
            os.close(fd)
            return None
        return os.fdopen(fd, "rb"), st

    def links_inside(self, st: os.stat_result) -> bool:
        """Whether every hard link of the file ``st`` describes was found inside the root."""
        if st.st_nlink <= 1:
            return True
        if self._census is None:
            census: dict[tuple[int, int], int] = {}
            for item in self.walk(respect_ignore=False, include_hidden=True):
                est = item.entry.stat(follow_symlinks=False)
                if est.st_nlink > 1:
                    key = (est.st_dev, est.st_ino)
                    census[key] = census.get(key, 0) + 1
            self._census = census
        return self._census.get((st.st_dev, st.st_ino), 0) >= st.st_nlink

    def walk(self, *, respect_ignore: bool = True, include_hidden: bool = False) -> Iterator[WalkEntry]:
        """Yield the regular files under the root in a stable order, never following symbolic links.

        Args:
            respect_ignore: skip what ``.gitignore``/``.ignore``/``.rgignore`` files and
                ``.git/info/exclude`` ignore.
            include_hidden: also yield files and enter directories whose name starts with '.'.
        """
        root_fd = self.open_root()
        try:
            stack = IgnoreStack()
            if respect_ignore:
                exclude = _read_text_beneath(root_fd, [".git", "info", "exclude"])
                stack = stack.push("", parse_ignore_text(exclude or ""))
            yield from self._walk_dir(root_fd, "", stack, respect_ignore, include_hidden)
        finally:
            os.close(root_fd)

    def _walk_dir(
        self, fd: int, prefix: str, stack: IgnoreStack, respect_ignore: bool, include_hidden: bool
    ) -> Iterator[WalkEntry]:
        with os.scandir(fd) as it:
            entries = sorted(it, key=lambda e: e.name)
        if respect_ignore:
            text = "\n".join(_read_text_beneath(fd, [name]) or "" for name in IGNORE_FILES)
            stack = stack.push(prefix, parse_ignore_text(text))
        for entry in entries:
            if not include_hidden and entry.name.startswith("."):
                continue
            rel = prefix + entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file(follow_symlinks=False)
            except OSError:
                continue
            if is_dir and not stack.ignored(rel, True):
                try:
                    sub = os.open(entry.name, DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                try:
                    yield from self._walk_dir(sub, rel + "/", stack, respect_ignore, include_hidden)
                finally:
                    os.close(sub)
            elif is_file and not stack.ignored(rel, False):
                yield WalkEntry(rel=rel, entry=entry, dir_fd=fd)

    def open_root(self) -> int:
        """Open the root directory and check it is the one this ``CodeRoot`` was built with.

        Returns:
            A directory descriptor the caller must close.

        Raises:
            ToolError: the root was removed, or replaced (by a link or another directory).
        """
        replaced = ToolError(
            f"the code root {str(self.path)!r} was replaced or removed after the tools were set up (it is no "
            "longer the same directory); nothing outside it is read. Set up the tools again on the new root."
        )
        try:
            fd = os.open(self.path, DIR_FLAGS)
        except OSError as e:
            raise replaced from e
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != self._identity:
            os.close(fd)
            raise replaced
        return fd

    def open_expected(self, rel: str, dev: int, ino: int) -> BinaryIO | None:
        """Open ``rel`` beneath the root without following any link; ``None`` unless it is the file (dev, ino).

        Raises:
            ToolError: the root was replaced (see ``open_root``).
        """
        try:
            fd = self._open_beneath(rel.split("/"))
        except OSError:
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (dev, ino) or not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        return os.fdopen(fd, "rb")

    def _open_beneath(self, parts: list[str]) -> int:
        dir_fd = self.open_root()
        try:
            return _openat_chain(dir_fd, parts)
        finally:
            os.close(dir_fd)

    def _require_links_inside(self, st: os.stat_result, rel: str) -> None:
        if not self.links_inside(st):
            raise ToolError(
                f"{rel!r} is a hard link (link count {st.st_nlink}) and not all of its links are inside "
                "the code root, so it is not read: its content may belong to a file outside the root."
            )


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _openat_chain(dir_fd: int, parts: list[str]) -> int:
    """Open ``parts`` below ``dir_fd`` one component at a time, never following a symbolic link."""
    fd = dir_fd
    try:
        for name in parts[:-1]:
            nxt = os.open(name, DIR_FLAGS, dir_fd=fd)
            if fd != dir_fd:
                os.close(fd)
            fd = nxt
        return os.open(parts[-1], FILE_FLAGS, dir_fd=fd)
    finally:
        if fd != dir_fd:
            os.close(fd)


def _read_text_beneath(dir_fd: int, parts: list[str]) -> str | None:
    """Read a small text file below ``dir_fd`` (an ignore file), or ``None`` when there is none."""
    try:
        fd = _openat_chain(dir_fd, parts)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read(_IGNORE_FILE_LIMIT).decode("utf-8", "replace")
