"""``LazyFacts``: a run state's ``known_facts`` whose values are decoded on first access.

A stored snapshot keeps the facts section (most of a big state's bytes) as its own blob; loading
the state decodes only the keys. The values are built the first time one is read, all at once,
by the loader the snapshot codec gave (``agentcore.storage.snapshots``), which validates them as
any other input. Until then ``len``, ``in``, iteration over keys, setting and deleting a key cost
what they cost on a ``dict``, so folding the events after the snapshot does not decode the
section either (appending a fact is setting a key).

It is a ``MutableMapping[str, Fact]`` that compares equal to the ``dict`` it stands for; a
``RunState`` serialises it as that dict. Copies share the (immutable) decoded section.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, MutableMapping, ValuesView
from typing import Any, Generic, TypeVar

V = TypeVar("V")

_PENDING: Any = object()
"""Stands for a value still in the undecoded section (never handed out)."""


class StoredSection(Generic[V]):
    """The undecoded values of one snapshot section: ``load()`` decodes them once, shared by every copy.

    Args:
        load: Returns the section's values by key (validated); raises if the section is damaged.
    """

    __slots__ = ("_facts", "_load")

    def __init__(self, load: Callable[[], Mapping[str, V]]) -> None:
        self._load: Callable[[], Mapping[str, V]] | None = load
        self._facts: Mapping[str, V] | None = None

    def facts(self) -> Mapping[str, V]:
        if self._facts is None:
            assert self._load is not None
            self._facts = self._load()
            self._load = None  # drop the raw bytes
        return self._facts


class LazyFacts(MutableMapping[str, V]):
    """Values by key, standing for a ``dict[str, V]``, whose stored values are decoded on first read
    (``RunState.known_facts`` holds a ``LazyFacts[Fact]`` after a snapshot load)."""

    __slots__ = ("_data", "_section")

    def __init__(self, keys: Iterable[str], section: StoredSection[V]) -> None:
        self._data: dict[str, V] = dict.fromkeys(keys, _PENDING)
        self._section: StoredSection[V] | None = section if self._data else None

    @classmethod
    def _of(cls, data: dict[str, V], section: StoredSection[V] | None) -> LazyFacts[V]:
        new = cls.__new__(cls)
        new._data, new._section = data, section
        return new

    @property
    def decoded(self) -> bool:
        """Whether every value has been built (no stored section left to decode)."""
        return self._section is None

    def _decode(self) -> dict[str, V]:
        section = self._section
        if section is not None:
            stored = section.facts()
            data = self._data
            for key, value in data.items():
                if value is _PENDING:
                    data[key] = stored[key]
            self._section = None
        return self._data

    # -- reads that need no value ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    # -- reads of values ---------------------------------------------------------------------------

    def __getitem__(self, key: str) -> V:
        value = self._data[key]
        if value is _PENDING:
            value = self._decode()[key]
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._data.get(key, default)
        if value is _PENDING:
            value = self._decode()[key]
        return value

    def values(self) -> ValuesView[V]:
        return self._decode().values()

    def items(self) -> ItemsView[str, V]:
        return self._decode().items()

    # -- writes (never decode) -------------------------------------------------------------------

    def __setitem__(self, key: str, value: V) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` and return its value (decoding only that the section must be read)."""
        value = self._data.pop(key, *default)
        if value is _PENDING:
            assert self._section is not None
            value = self._section.facts()[key]
        return value

    def clear(self) -> None:
        self._data.clear()
        self._section = None

    def peek(self, key: str, default: Any) -> Any:
        """The stored value or ``default``, without decoding: what an undo log keeps and puts back
        with ``self[key] = value`` (the result may be an opaque marker for an undecoded value)."""
        return self._data.get(key, default)

    # -- whole-mapping operations ------------------------------------------------------------------

    def copy(self) -> LazyFacts[V]:
        """A copy that shares the undecoded section (decoded at most once for both)."""
        return LazyFacts._of(dict(self._data), self._section)

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
