"""Read-only multi-value mappings: `MultiDict` and its case-insensitive `Headers`.

Both are plain values built from a sequence of ``(key, value)`` pairs: they
import nothing but the standard library, pickle as their pairs, and cannot be
changed once built.  They cross the process boundary of subprocess mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar, overload

__all__ = ["Headers", "MultiDict", "headers_of", "multidict_of", "pairs_of"]

_T = TypeVar("_T")
_M = TypeVar("_M", bound="MultiDict")


class MultiDict(Mapping[str, str]):
    """A read-only mapping in which a key may carry several values.

    As a `~collections.abc.Mapping` it shows the distinct keys in first-seen
    order, and ``md[key]`` is the *first* value of that key.  `getlist` gives
    every value of one key and `multi_items` every pair in arrival order::

        >>> md = MultiDict([("q", "1"), ("page", "2"), ("q", "3")])
        >>> md["q"], md.getlist("q"), len(md)
        ('1', ['1', '3'], 2)
        >>> list(md.multi_items())
        [('q', '1'), ('page', '2'), ('q', '3')]

    Assigning to it raises `TypeError`.
    """

    __slots__ = ("_index", "_items")

    _items: tuple[tuple[str, str], ...]
    # built on the first lookup: a recorded request that is never read costs
    # only its pairs (the server keeps thousands of them)
    _index: dict[str, list[str]] | None

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] | None = None) -> None:
        if items is None:
            pairs: tuple[tuple[str, str], ...] = ()
        elif isinstance(items, MultiDict):
            pairs = items._items
        elif isinstance(items, Mapping):
            pairs = tuple((str(k), str(v)) for k, v in items.items())
        else:
            pairs = tuple((str(k), str(v)) for k, v in items)
        object.__setattr__(self, "_items", pairs)
        object.__setattr__(self, "_index", None)

    @classmethod
    def _of(cls: type[_M], pairs: tuple[tuple[str, str], ...]) -> _M:
        """Wrap *pairs*, already a tuple of ``(str, str)``, without checking or copying."""
        self = object.__new__(cls)
        object.__setattr__(self, "_items", pairs)
        object.__setattr__(self, "_index", None)
        return self

    @staticmethod
    def _fold(key: str) -> str:
        """The form under which a key is looked up (itself, here)."""
        return key

    def _lookup(self) -> dict[str, list[str]]:
        """Folded key to its values; built once, on first use."""
        index = self._index
        if index is None:
            index = {}
            fold = self._fold
            for key, value in self._items:
                index.setdefault(fold(key), []).append(value)
            # a race builds two equal indexes; either one may stay
            object.__setattr__(self, "_index", index)
        return index

    def __setattr__(self, name: str, value: object) -> None:
        raise TypeError(f"{type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"{type(self).__name__} is read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt from the pairs as they are: no copy, no checks (a history
        # crosses the socketpair on every read in subprocess mode)
        return (_rebuild, (type(self), self._items))

    def __getitem__(self, key: str) -> str:
        try:
            return self._lookup()[self._fold(key)][0]
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._fold(key) in self._lookup()

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for key, _ in self._items:
            folded = self._fold(key)
            if folded not in seen:
                seen.add(folded)
                yield key

    def __len__(self) -> int:
        return len(self._lookup())

    @overload
    def get(self, key: str) -> str | None: ...
    @overload
    def get(self, key: str, default: str) -> str: ...
    @overload
    def get(self, key: str, default: _T) -> str | _T: ...

    def get(self, key: str, default: object = None) -> object:
        """The first value of *key*, or *default* when it is absent."""
        values = self._lookup().get(self._fold(key))
        return values[0] if values else default

    def getlist(self, key: str) -> list[str]:
        """Every value of *key* in arrival order (``[]`` when it is absent)."""
        return list(self._lookup().get(self._fold(key), ()))

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(key, value)`` pair in arrival order, repeated keys included."""
        return list(self._items)

    def to_dict(self) -> dict[str, list[str]]:
        """A plain ``dict`` of every key to the list of its values."""
        return {key: self.getlist(key) for key in self}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MultiDict):
            return type(self) is type(other) and self._items == other._items
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._items)!r})"


class Headers(MultiDict):
    """HTTP header fields: a `MultiDict` whose keys compare case-insensitively.

    Keys keep the spelling they arrived with (Tornado normalises received
    names, so a request's headers read ``X-Token``, ``Content-Type``)::

        >>> h = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2")])
        >>> h["SET-COOKIE"], h.getlist("set-cookie")
        ('a=1', ['a=1', 'b=2'])
        >>> "content-type" in h
        False
    """

    __slots__ = ()

    @staticmethod
    def _fold(key: str) -> str:
        return key.lower()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return [(k.lower(), v) for k, v in self._items] == [
                (k.lower(), v) for k, v in other._items
            ]
        if isinstance(other, Mapping) and not isinstance(other, MultiDict):
            return {k.lower(): v for k, v in self.items()} == {
                str(k).lower(): v for k, v in other.items()
            }
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple((k.lower(), v) for k, v in self._items))


def _rebuild(cls: type[_M], pairs: tuple[tuple[str, str], ...]) -> _M:
    """Unpickle a `MultiDict` or `Headers` from its pairs."""
    return cls._of(pairs)


def multidict_of(pairs: tuple[tuple[str, str], ...]) -> MultiDict:
    """A `MultiDict` of *pairs*, already a tuple of ``(str, str)``: no checks, no copy."""
    return MultiDict._of(pairs)


def headers_of(pairs: tuple[tuple[str, str], ...]) -> Headers:
    """`Headers` of *pairs*, already a tuple of ``(str, str)``: no checks, no copy."""
    return Headers._of(pairs)


def pairs_of(values: MultiDict) -> tuple[tuple[str, str], ...]:
    """The pairs a `MultiDict` (or `Headers`) holds, as they are."""
    return values._items
