"""The snapshot codec: a ``RunState`` to stored bytes and back, with its facts decoded lazily.

Used by every store that writes snapshots (SQLite, PostgreSQL). A snapshot row holds an
``encoding`` name and the bytes:

- ``"json"``: the state's JSON text (small states, under ``INLINE_BYTES``);
- ``"json+zlib"``: the same, zlib-compressed (what agentcore 0.1 wrote; still read);
- ``"sections+zlib"`` (``SECTIONS``): the facts section apart from the rest, so that loading a
  state decodes everything but the facts' values, and those are decoded on first read
  (``agentcore.core.lazy_facts.LazyFacts``). Layout, little-endian::

      u32 head_len | u32 keys_len | u32 crc32(facts) | head | keys | facts

  ``head`` is the zlib-compressed JSON of the state without ``known_facts``, ``keys`` the
  zlib-compressed fact keys in order (``N``, a NUL, then each key in UTF-8 ended by a NUL; or,
  when a key holds a NUL, ``J`` then a JSON list), ``facts`` the zlib-compressed JSON list of the facts in
  the same order.
- ``"sections+xz"`` (``SECTIONS_XZ``, what the PostgreSQL store writes since its m008): the same
  layout with each section compressed by LZMA2 (raw, preset 0) instead of zlib: about a third of
  the bytes for the same state (W1's 1,000 facts: 5.8 KB instead of 18 KB, so that a snapshot
  fits in a table row without TOAST) for a few ms more per write and per first read of the facts.

Nothing is trusted for having been written by agentcore: the head and the keys are validated
when the state is loaded (the keys as UTF-8 text; ``len`` and ``in`` search that text, and it is
split into keys only when their order is needed), the facts (against their keys too) when they
are first read. The
CRC-32 of the facts section is checked at load, so bytes damaged on disk are reported by
``state_at`` (``DamagedDatabase``), not later by whoever first reads a fact; a section that is
intact but invalid raises ``DamagedDatabase`` on that first read.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from collections.abc import Callable, Collection
from typing import Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError

from agentcore.core.lazy_facts import LazyFacts, StoredSection
from agentcore.core.state import Fact, RunState
from agentcore.errors import DamagedDatabase

SECTIONS = "sections+zlib"
"""The encoding name of a snapshot with a separately stored, lazily decoded facts section."""

SECTIONS_XZ = "sections+xz"
"""``SECTIONS`` with LZMA2 instead of zlib."""

_XZ_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 0}]


def _xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=_XZ_FILTERS)


def _unxz(data: bytes | memoryview) -> bytes:
    return lzma.decompress(data, format=lzma.FORMAT_RAW, filters=_XZ_FILTERS)


_CODECS: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes | memoryview], bytes]]] = {
    SECTIONS: (lambda data: zlib.compress(data, LEVEL), zlib.decompress),
    SECTIONS_XZ: (_xz, _unxz),
}

INLINE_BYTES = 2048
"""States whose JSON is shorter than this are stored as plain JSON (one decode, no sections)."""

LEVEL = 1
"""zlib level: the write path pays for compression at every snapshot."""

_HEADER = struct.Struct("<III")
_FACT_LIST: TypeAdapter[list[Fact]] = TypeAdapter(list[Fact], config=ConfigDict(defer_build=True))
_KEY_LIST: TypeAdapter[list[str]] = TypeAdapter(list[str], config=ConfigDict(defer_build=True))
_NO_FACTS = {"known_facts"}


def encode_state(state: RunState, codec: Literal["zlib", "xz"] = "zlib") -> tuple[str, bytes | str]:
    """``(encoding, data)`` to store for ``state``; ``decode_state`` gives back an equal state.

    ``codec`` compresses the sections of a state with facts (``SECTIONS`` or ``SECTIONS_XZ``).
    """
    facts = state.known_facts
    head = state.model_dump_json(exclude=_NO_FACTS).encode("utf-8")
    if not facts:
        return _whole(head)
    values = _FACT_LIST.dump_json(list(facts.values()))
    if len(head) + len(values) < INLINE_BYTES:
        return _whole(state.model_dump_json().encode("utf-8"))
    keys = _encode_keys(list(facts))
    encoding = SECTIONS_XZ if codec == "xz" else SECTIONS
    compress = _CODECS[encoding][0]
    head_z, keys_z, facts_z = (compress(part) for part in (head, keys, values))
    header = _HEADER.pack(len(head_z), len(keys_z), zlib.crc32(facts_z))
    return encoding, b"".join((header, head_z, keys_z, facts_z))


def _whole(text: bytes) -> tuple[str, bytes | str]:
    if len(text) < INLINE_BYTES:
        return "json", text.decode("utf-8")
    return "json+zlib", zlib.compress(text, LEVEL)


def decode_state(encoding: str, data: bytes | str) -> RunState:
    """The state stored as ``(encoding, data)``; its facts decode on first read for ``SECTIONS``.

    Raises:
        DamagedDatabase: the bytes are not a valid snapshot of this encoding (an unknown encoding,
            a CRC mismatch, invalid JSON or an invalid state).
    """
    try:
        if encoding == "json":
            return RunState.model_validate_json(data)
        if encoding == "json+zlib":
            return RunState.model_validate_json(zlib.decompress(_as_bytes(data)))
        if encoding in _CODECS:
            return _decode_sections(memoryview(_as_bytes(data)), _CODECS[encoding][1])
    except (ValidationError, zlib.error, lzma.LZMAError, struct.error, ValueError) as e:
        raise _damaged(f"{type(e).__name__}: {str(e).splitlines()[0]}") from None
    raise _damaged(f"unknown snapshot encoding {encoding!r}")


def decode_snapshot(encoding: str, data: bytes | str, *, seq: int, run_ids: Collection[str] | None) -> RunState:
    """``decode_state`` of the snapshot row stored at ``seq``, checked to be that row's state: a valid
    state of another seq or another run (a row rewritten by hand, by another tool) would otherwise
    be served as this run's.

    ``run_ids``: the ids the state's ``run_id`` (its ``RunStarted``'s run: a fork's root) may be, the
    run and its fork ancestors; ``None`` when they are not known (it is not checked then). A state
    with no ``RunStarted`` (``run_id`` empty) passes.

    Raises:
        DamagedDatabase: as ``decode_state``, or the state is at another seq or of another run.
    """
    state = decode_state(encoding, data)
    if state.last_seq != seq:
        raise _damaged(f"the row at seq {seq} holds the state at seq {state.last_seq}")
    if run_ids is not None:
        check_snapshot_run(state, seq, run_ids)
    return state


def check_snapshot_run(state: RunState, seq: int, run_ids: Collection[str]) -> None:
    """``DamagedDatabase`` unless the state of the snapshot row at ``seq`` is of one of ``run_ids``
    (the run and its fork ancestors; a state with no ``RunStarted`` passes): ``decode_snapshot``'s
    run check, for a caller that learns the ancestry only when it is needed."""
    if state.run_id and state.run_id not in run_ids:
        raise _damaged(f"the row at seq {seq} holds a state of run {state.run_id!r}, not of {sorted(run_ids)!r}")


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _decode_sections(data: memoryview, decompress: Callable[[bytes | memoryview], bytes]) -> RunState:
    head_len, keys_len, crc = _HEADER.unpack_from(data)
    head_end = _HEADER.size + head_len
    keys_end = head_end + keys_len
    facts = data[keys_end:]
    if keys_end > len(data) or zlib.crc32(facts) != crc:
        raise ValueError("the facts section does not match its CRC-32")
    state = RunState.model_validate_json(decompress(data[_HEADER.size : head_end]))
    keys = _decode_keys(decompress(data[head_end:keys_end]))
    state.__dict__["known_facts"] = LazyFacts(StoredSection(keys, _facts_loader(bytes(facts), decompress)))
    return state


def _encode_keys(keys: list[str]) -> bytes:
    if not any("\0" in k for k in keys):
        try:
            return ("N\0" + "".join(k + "\0" for k in keys)).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the JSON form escapes it
            pass
    return b"J" + _KEY_LIST.dump_json(keys)


def _decode_keys(data: bytes) -> str | list[str]:
    """The ``N`` form as one NUL-separated string (searched, split only when needed), or the list."""
    kind, body = data[:1], data[1:]
    if kind == b"J":
        return _KEY_LIST.validate_json(body)
    if kind != b"N":
        raise ValueError("the fact keys have no known form")
    return body.decode("utf-8")


def _facts_loader(
    stored: bytes, decompress: Callable[[bytes | memoryview], bytes]
) -> Callable[[list[str]], dict[str, Fact]]:
    def load(keys: list[str]) -> dict[str, Fact]:
        try:
            facts = _FACT_LIST.validate_json(decompress(stored))
        except (ValidationError, zlib.error, lzma.LZMAError) as e:
            raise _damaged(f"its facts section: {type(e).__name__}: {str(e).splitlines()[0]}") from None
        if len(facts) != len(keys) or any(f.key != k for f, k in zip(facts, keys, strict=True)):
            raise _damaged("its facts section does not match its keys")
        return dict(zip(keys, facts, strict=True))

    return load


def _damaged(reason: str) -> DamagedDatabase:
    return DamagedDatabase(
        f"a stored snapshot is damaged ({reason}); snapshots are only a cache: "
        "delete_snapshots() (or the run's snapshot rows) and the state is folded from the log"
    )
