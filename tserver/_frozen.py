"""`frozen_value`: frozen dataclasses without generated code.

``@dataclass(frozen=True)`` writes its methods as source text and compiles
them, some 0.2 ms a method: for the value classes and the command
vocabulary that was several milliseconds of every start of subprocess
mode's child process.  A class decorated with `frozen_value` is still a
dataclass (`dataclasses.fields`, `~dataclasses.replace` and
`~dataclasses.asdict` work) and `Frozen` gives it what ``frozen=True,
eq=True`` would: assignment raises `~dataclasses.FrozenInstanceError`, and
instances compare and hash by their compared fields.

A class may write its own ``__init__`` (the public values do, to validate
and normalise their arguments); one that does not gets a shared,
precompiled one that binds its fields by position or keyword, applies the
defaults and calls ``__post_init__`` if the class has it.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:  # typing has it from Python 3.11; only type checkers read it
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**kwargs: Any) -> Callable[[Any], Any]:
        return lambda decorator: decorator


__all__ = ["Frozen", "assign", "frozen_value", "values_of"]

_F = TypeVar("_F", bound="Frozen")
_setter = object.__setattr__


class Frozen:
    """Base of a `frozen_value` class: read-only, compared by its fields."""

    __slots__ = ()

    #: The compared fields of an instance, as a tuple (set by `frozen_value`).
    _compare: ClassVar[Any] = None
    #: Every field of an instance, as a tuple in declaration order.
    _values: ClassVar[Any] = None

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return bool(self._compare(self) == self._compare(other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._compare(self))

    def _fields_repr(self) -> str:
        """``Name(field=value, ...)``, as a dataclass's generated repr."""
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)  # type: ignore[arg-type]
        return f"{type(self).__name__}({shown})"

    __repr__ = _fields_repr


def assign(obj: Frozen, **values: Any) -> None:
    """Set fields of *obj* from its ``__init__`` (the one place they are written)."""
    for name, value in values.items():
        _setter(obj, name, value)


def _tuple_getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """``obj -> (obj.a, obj.b, ...)``, a tuple even for one name (or none)."""
    if not names:
        return lambda obj: ()
    getter = operator.attrgetter(*names)
    if len(names) == 1:
        return lambda obj: (getter(obj),)
    return getter


def _shared_init(cls: type[Frozen]) -> Callable[..., None]:
    """An ``__init__`` for *cls* that binds its fields by position or keyword."""
    declared = [f for f in fields(cls) if f.init]  # type: ignore[arg-type]
    names = tuple(f.name for f in declared)
    known = frozenset(names)
    defaults: dict[str, Callable[[], Any]] = {}
    for f in declared:
        if f.default is not dataclasses.MISSING:
            value = f.default
            defaults[f.name] = lambda value=value: value  # type: ignore[misc]
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory
    post_init = getattr(cls, "__post_init__", None)
    label = cls.__name__
    count = len(names)
    # an instance with a __dict__ takes every field in one call when all
    # come by position (how commands and replies are rebuilt from the wire)
    fast = "__slots__" not in cls.__dict__ and post_init is None

    def __init__(self: Frozen, *args: Any, **kwargs: Any) -> None:
        if fast and not kwargs and len(args) == count:
            self.__dict__.update(zip(names, args, strict=True))
            return
        if len(args) > len(names):
            raise TypeError(f"{label}() takes {len(names)} arguments but {len(args)} were given")
        for name, value in zip(names, args, strict=False):
            _setter(self, name, value)
        for name in names[len(args) :]:
            if name in kwargs:
                _setter(self, name, kwargs.pop(name))
            elif name in defaults:
                _setter(self, name, defaults[name]())
            else:
                raise TypeError(f"{label}() missing the argument {name!r}")
        if kwargs:
            twice = sorted(set(kwargs) & known)
            what = "got several values for" if twice else "got unexpected arguments"
            raise TypeError(f"{label}() {what} {', '.join(map(repr, twice or sorted(kwargs)))}")
        if post_init is not None:
            post_init(self)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def values_of(obj: Frozen) -> tuple[Any, ...]:
    """Every field of *obj*, in declaration order."""
    values: tuple[Any, ...] = obj._values(obj)
    return values


@dataclass_transform(eq_default=True, frozen_default=True, field_specifiers=(field,))
def frozen_value(*, slots: bool = False) -> Callable[[type[_F]], type[_F]]:
    """Make a `Frozen` class a dataclass, generating no code.

    The class keeps the ``__init__`` it writes, or gets the shared one of
    this module (see the module docstring).
    """

    def decorate(cls: type[_F]) -> type[_F]:
        own_init = "__init__" in cls.__dict__
        cls = dataclass(init=False, repr=False, eq=False, slots=slots)(cls)
        # what Frozen provides, said to dataclasses too: a frozen dataclass
        # may then subclass it, as it could a @dataclass(frozen=True)
        params: Any = cls.__dataclass_params__  # type: ignore[attr-defined]
        params.frozen = params.eq = True
        every = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        compared = [f.name for f in fields(cls) if f.compare]  # type: ignore[arg-type]
        # staticmethod: the getters are plain functions, which would bind
        cls._compare = staticmethod(_tuple_getter(compared))
        cls._values = staticmethod(_tuple_getter(every))
        if not own_init:
            cls.__init__ = _shared_init(cls)  # type: ignore[method-assign]
        return cls

    return decorate
