"""`frozen_value`: frozen dataclasses without generated code.

``@dataclass(frozen=True)`` writes its methods as source text and compiles
them, some 0.2 ms a method: for the five public value classes that was
about 4 ms of every start of subprocess mode's child process, 4 % of its
start-up budget.  A class decorated with `frozen_value` is still a
dataclass (`dataclasses.fields`, `~dataclasses.replace` and
`~dataclasses.asdict` work) but brings its own ``__init__``; `Frozen`
gives it what ``frozen=True, eq=True`` would: assignment raises
`~dataclasses.FrozenInstanceError`, and instances compare and hash by
their compared fields.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:  # typing has it from Python 3.11; only type checkers read it
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**kwargs: Any) -> Callable[[Any], Any]:
        return lambda decorator: decorator


__all__ = ["Frozen", "assign", "frozen_value"]

_F = TypeVar("_F", bound="Frozen")


class Frozen:
    """Base of a `frozen_value` class: read-only, compared by its fields."""

    __slots__ = ()

    #: The compared fields of an instance, as a tuple (set by `frozen_value`).
    _compare: ClassVar[Any] = None

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


def assign(obj: Frozen, **values: Any) -> None:
    """Set fields of *obj* from its ``__init__`` (the one place they are written)."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)


@dataclass_transform(eq_default=True, frozen_default=True, field_specifiers=(field,))
def frozen_value(*, slots: bool = False) -> Callable[[type[_F]], type[_F]]:
    """Make a `Frozen` class with its own ``__init__`` a dataclass, generating nothing."""

    def decorate(cls: type[_F]) -> type[_F]:
        cls = dataclass(init=False, repr=False, eq=False, slots=slots)(cls)
        # what Frozen provides, said to dataclasses too: a frozen dataclass
        # may then subclass it, as it could a @dataclass(frozen=True)
        params: Any = cls.__dataclass_params__  # type: ignore[attr-defined]
        params.frozen = params.eq = True
        compared = [f.name for f in fields(cls) if f.compare]  # type: ignore[arg-type]
        # a tuple even for one field (attrgetter of one name gives the value);
        # attrgetter is no descriptor, so the class attribute stays unbound
        getter = operator.attrgetter(*compared)
        if len(compared) == 1:
            cls._compare = staticmethod(lambda obj: (getter(obj),))
        else:
            cls._compare = getter
        return cls

    return decorate
