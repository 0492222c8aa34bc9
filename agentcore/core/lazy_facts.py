"""``LazyFacts``: a run state's ``known_facts`` whose stored part is decoded on first need.

A stored snapshot keeps the facts section (most of a big state's bytes) as its own blob; loading
the state decodes neither the facts nor, at first, their keys. What a fold does to facts (setting
a key) and what a reader asks most (``len``, ``in``) is answered from the stored keys' bytes plus
the keys set since; the keys are decoded when the order is needed (iteration, deleting) or many
keys were set, and the values the first time one is read, all at once, by the loader the snapshot
codec gave (``agentcore.storage.snapshots``), which validates them as any other input.

It is a ``MutableMapping[str, V]`` that compares equal to the ``dict`` it stands for (same keys in
the same order, same values); a ``RunState`` serialises it as that dict. Copies share the
(immutable) stored section, which is decoded at most once.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, Mapping, MutableMapping, ValuesView
from typing import Any, Generic, TypeVar

V = TypeVar("V")

_PENDING: Any = object()
"""Stands for a value still in the undecoded section (never handed out)."""

SEARCHED_KEYS = 8
"""``len`` looks up at most this many keys set since the load in the stored keys' bytes; with
more, decoding the keys once is cheaper."""


class StoredSection(Generic[V]):
    """The undecoded keys and values of one snapshot section, shared by every copy.

    Args:
        keys: The keys in order: one string with each key ended by a NUL, after one leading NUL
            (so ``"\\0" + key + "\\0"`` is found in it exactly when ``key`` is one of them), or,
            when a key holds a NUL, the list.
        load: Given the key list, returns the section's values by key (validated); raises if the
            section is damaged.

    Raises:
        ValueError: a ``keys`` string that does not start and end with a NUL.
    """

    __slots__ = ("_keys", "_load", "_values", "count", "searchable")

    def __init__(self, keys: str | list[str], load: Callable[[list[str]], Mapping[str, V]]) -> None:
        self._keys: list[str] | None = None
        if isinstance(keys, list):
            self.searchable, self._keys, self.count = "", keys, len(keys)
        else:
            if keys[:1] != "\0" or keys[-1:] != "\0":
                raise ValueError("the stored keys are not NUL-separated")
            self.searchable, self.count = keys, keys.count("\0") - 1
        self._load: Callable[[list[str]], Mapping[str, V]] | None = load
        self._values: Mapping[str, V] | None = None

    def holds(self, key: str) -> bool:
        """Whether ``key`` is one of the stored keys (a byte search: no key is decoded)."""
        if self._keys is not None:
            return key in self._keys
        return "\0" not in key and f"\0{key}\0" in self.searchable

    def key_list(self) -> list[str]:
        if self._keys is None:
            self._keys = self.searchable[1:-1].split("\0") if self.count else []
        return self._keys

    def values(self) -> Mapping[str, V]:
        if self._values is None:
            assert self._load is not None
            self._values = self._load(self.key_list())
            self._load = None  # drop the raw bytes
        return self._values


class LazyFacts(MutableMapping[str, V]):
    """Values by key, standing for a ``dict[str, V]``, whose stored part is decoded on first need
    (``RunState.known_facts`` holds a ``LazyFacts[Fact]`` after a snapshot load)."""

    __slots__ = ("_data", "_section", "_set")

    def __init__(self, section: StoredSection[V]) -> None:
        self._section: StoredSection[V] | None = section
        self._data: dict[str, V] | None = None
        """Every key in order (stored values as ``_PENDING``), once the keys are decoded."""
        self._set: dict[str, V] = {}
        """Keys set since the load, while the stored keys are not decoded."""
        if not section.searchable:
            self._keys()

    @classmethod
    def _of(cls, section: StoredSection[V] | None, data: dict[str, V] | None, added: dict[str, V]) -> LazyFacts[V]:
        new = cls.__new__(cls)
        new._section, new._data, new._set = section, data, added
        return new

    @property
    def decoded(self) -> bool:
        """Whether every value has been built (no stored section left to decode)."""
        return self._section is None

    def _keys(self) -> dict[str, V]:
        """The keys in order, stored values still pending (decodes the stored keys once)."""
        data = self._data
        if data is None:
            assert self._section is not None
            data = dict.fromkeys(self._section.key_list(), _PENDING)
            data.update(self._set)  # a stored key keeps its place, a new one goes last
            self._data, self._set = data, {}
        return data

    def _decode(self) -> dict[str, V]:
        data = self._keys()
        section = self._section
        if section is not None:
            stored = section.values()
            for key, value in data.items():
                if value is _PENDING:
                    data[key] = stored[key]
            self._section = None
        return data

    # -- reads that need no value ---------------------------------------------------------------

    def __len__(self) -> int:
        if self._data is not None:
            return len(self._data)
        assert self._section is not None
        if len(self._set) > SEARCHED_KEYS:
            return len(self._keys())
        holds = self._section.holds
        return self._section.count + sum(1 for key in self._set if not holds(key))

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __contains__(self, key: object) -> bool:
        if self._data is not None:
            return key in self._data
        assert self._section is not None
        return key in self._set or (isinstance(key, str) and self._section.holds(key))

    # -- reads of values ---------------------------------------------------------------------------

    def __getitem__(self, key: str) -> V:
        if self._data is None and key in self._set:
            return self._set[key]
        value = self._keys()[key]
        if value is _PENDING:
            value = self._decode()[key]
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def values(self) -> ValuesView[V]:
        return self._decode().values()

    def items(self) -> ItemsView[str, V]:
        return self._decode().items()

    # -- writes (never decode a value) ---------------------------------------------------------------

    def __setitem__(self, key: str, value: V) -> None:
        if self._data is not None:
            self._data[key] = value
        elif value is _PENDING:  # an undo putting a stored value back
            self._set.pop(key, None)
        else:
            self._set[key] = value

    def __delitem__(self, key: str) -> None:
        del self._keys()[key]

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` and return its value (decoding the section only for a stored value)."""
        value = self._keys().pop(key, *default)
        if value is _PENDING:
            assert self._section is not None
            value = self._section.values()[key]
        return value

    def clear(self) -> None:
        self._data, self._set, self._section = {}, {}, None

    def peek(self, key: str, default: Any) -> Any:
        """The value kept for ``key`` or ``default``, without decoding: what an undo log keeps and
        puts back with ``self[key] = value`` (it may be an opaque marker for a stored value)."""
        if self._data is not None:
            return self._data.get(key, default)
        if key in self._set:
            return self._set[key]
        assert self._section is not None
        return _PENDING if self._section.holds(key) else default

    # -- whole-mapping operations ------------------------------------------------------------------

    def copy(self) -> LazyFacts[V]:
        """A copy that shares the stored section (decoded at most once for both)."""
        data = None if self._data is None else dict(self._data)
        return LazyFacts._of(self._section, data, dict(self._set))

    def to_dict(self) -> dict[str, V]:
        """The facts as a plain ``dict`` (decodes the section)."""
        return dict(self._decode())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyFacts):
            return self._decode() == other._decode()
        if isinstance(other, Mapping):
            return self._decode() == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self._decode())
