"""Commands, replies and framing: the sans-I/O protocol between facade and recorder.

Every control call of `~tserver.TestServer` becomes one command object.  The
thread and inline backends hand it straight to `Recorder.apply` under the
recorder's lock; the subprocess backend pickles it into one frame over a
private ``socketpair`` and the child calls the same ``apply``.  One code
path, so every mode answers the same.

A frame is a 16-byte header (big-endian: the payload's length, then the
sequence number that pairs a reply with its command) and that many bytes of
pickle.  `FrameDecoder` buffers partial input and yields ``(seq, payload)``
pairs; `decode_frame` unpickles one payload, so a frame that does not
unpickle fails alone.  This module does no I/O: no sockets, no threads.

The messages are frozen slotted classes rather than dataclasses: the child
process imports this module on every start, and some twenty dataclasses
cost about 10 ms to build there (the start-up budget of subprocess mode is
a bare Tornado child's time plus 10 %).  They compare, print and pickle by
their fields, and assigning to one raises `~dataclasses.FrozenInstanceError`.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import FrozenInstanceError
from typing import Any

from ._request import Request, request_from_wire, request_to_wire
from ._response import Response

__all__ = [
    "AddRule",
    "CheckReport",
    "Command",
    "Failed",
    "FrameDecoder",
    "FrameError",
    "GetCount",
    "GetHistory",
    "GetRequest",
    "HandlerError",
    "MAX_FRAME",
    "Message",
    "Ok",
    "RecorderState",
    "Reset",
    "Restore",
    "SetResponse",
    "Shutdown",
    "Snapshot",
    "StartChild",
    "TakeReport",
    "WaitRequests",
    "decode_frame",
    "encode_frame",
    "encode_payload",
    "frame",
]

#: The largest frame accepted (bodies of several hundred MiB still fit).
MAX_FRAME = 4 * 1024**3
_HEADER = struct.Struct(">QQ")
_set = object.__setattr__  # how a frozen message sets its fields in __init__


class FrameError(ValueError):
    """A frame is oversized or does not unpickle."""


class Message:
    """Base of every message: frozen, fields in ``__slots__``, compared and pickled by value.

    ``__slots__`` lists the fields in the order of ``__init__``'s parameters:
    a message unpickles as ``type(*fields)``.

    Example::

        >>> GetRequest(2) == GetRequest(2), GetRequest(2) == GetRequest(3)
        (True, False)
        >>> GetRequest(2)
        GetRequest(index=2)
    """

    __slots__: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def fields(self) -> tuple[Any, ...]:
        """The field values, in declaration order."""
        return tuple([getattr(self, name) for name in self.__slots__])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return type(self) is type(other) and self.fields() == other.fields()

    def __hash__(self) -> int:
        return hash((type(self), self.fields()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({shown})"

    def __reduce__(self) -> tuple[type[Message], tuple[Any, ...]]:
        return type(self), self.fields()


# -- commands ----------------------------------------------------------------


class Command(Message):
    """Base of every command sent to the recorder."""

    __slots__ = ()


class SetResponse(Command):
    """`set_response` / `set_response_once` of one validated key."""

    __slots__ = ("key", "value", "method", "once")  # noqa: RUF023 (the order of __init__)

    key: str
    value: Any
    method: str | None
    once: bool

    def __init__(self, key: str, value: Any, method: str | None = None, once: bool = False) -> None:
        _set(self, "key", key)
        _set(self, "value", value)
        _set(self, "method", method)
        _set(self, "once", once)


class AddRule(Command):
    """`add_response`: a rule with its selectors."""

    __slots__ = ("response", "count", "methods", "path", "match")  # noqa: RUF023 (the order of __init__)

    response: Response
    count: int | None
    methods: tuple[str, ...] | None
    path: Any
    match: Any

    def __init__(
        self,
        response: Response,
        count: int | None = 1,
        methods: tuple[str, ...] | None = None,
        path: Any = None,
        match: Any = None,
    ) -> None:
        _set(self, "response", response)
        _set(self, "count", count)
        _set(self, "methods", methods)
        _set(self, "path", path)
        _set(self, "match", match)


class Reset(Command):
    """Empty history, rules, default response, once-overrides and errors."""

    __slots__ = ()


class GetHistory(Command):
    """The whole history, oldest first."""

    __slots__ = ()


class GetRequest(Command):
    """One request by index (negative counts from the end)."""

    __slots__ = ("index",)

    index: int

    def __init__(self, index: int = -1) -> None:
        _set(self, "index", index)


class GetCount(Command):
    """How many requests arrived since the last reset."""

    __slots__ = ()


class TakeReport(Command):
    """What `check()` needs: handler errors, unmatched requests, unused rules."""

    __slots__ = ()


class WaitRequests(Command):
    """Reply once `count` requests have arrived, or after `timeout` seconds."""

    __slots__ = ("count", "timeout")

    count: int
    timeout: float

    def __init__(self, count: int, timeout: float) -> None:
        _set(self, "count", count)
        _set(self, "timeout", timeout)


class Snapshot(Command):
    """The whole recorder state (sent before a child stops)."""

    __slots__ = ()


class Restore(Command):
    """Replace the whole recorder state (sent to a child as it starts)."""

    __slots__ = ("state",)

    state: RecorderState

    def __init__(self, state: RecorderState) -> None:
        _set(self, "state", state)


class Shutdown(Command):
    """Stop serving and exit (the child replies, then exits)."""

    __slots__ = ()


class StartChild(Message):
    """The first frame to a child: what to serve and where.

    ``state`` is the pickled `RecorderState` set before ``start()``,
    unpickled by the child only once ``sys_path`` is in place (callbacks
    must import).
    """

    __slots__ = (  # noqa: RUF023 (the order of __init__)
        "address",
        "port",
        "tls_cert",
        "tls_key",
        "strict",
        "history_limit",
        "max_body_size",
        "sys_path",
        "state",
    )

    address: str
    port: int
    tls_cert: str | None
    tls_key: str | None
    strict: bool
    history_limit: int | None
    max_body_size: int
    sys_path: tuple[str, ...]
    state: bytes | None

    def __init__(
        self,
        address: str,
        port: int,
        tls_cert: str | None,
        tls_key: str | None,
        strict: bool,
        history_limit: int | None,
        max_body_size: int,
        sys_path: tuple[str, ...],
        state: bytes | None = None,
    ) -> None:
        _set(self, "address", address)
        _set(self, "port", port)
        _set(self, "tls_cert", tls_cert)
        _set(self, "tls_key", tls_key)
        _set(self, "strict", strict)
        _set(self, "history_limit", history_limit)
        _set(self, "max_body_size", max_body_size)
        _set(self, "sys_path", sys_path)
        _set(self, "state", state)


# -- replies and data ---------------------------------------------------------


class Ok(Message):
    """A command succeeded with this value."""

    __slots__ = ("value",)

    value: Any

    def __init__(self, value: Any = None) -> None:
        _set(self, "value", value)


class Failed(Message):
    """A command raised this exception."""

    __slots__ = ("error",)

    error: BaseException

    def __init__(self, error: BaseException) -> None:
        _set(self, "error", error)


class HandlerError(Message):
    """An exception raised while serving a request (say, in a callback).

    ``exception`` is the original when it could cross the process boundary,
    else `None`; ``type_name``, ``message`` and ``traceback`` always are set.
    """

    __slots__ = ("type_name", "message", "traceback", "request", "exception")  # noqa: RUF023 (the order of __init__)

    type_name: str
    message: str
    traceback: str
    request: Request | None
    exception: BaseException | None

    def __init__(
        self,
        type_name: str,
        message: str,
        traceback: str,
        request: Request | None = None,
        exception: BaseException | None = None,
    ) -> None:
        _set(self, "type_name", type_name)
        _set(self, "message", message)
        _set(self, "traceback", traceback)
        _set(self, "request", request)
        _set(self, "exception", exception)

    def portable(self) -> HandlerError:
        """A copy without the exception object when that does not pickle."""
        if self.exception is None:
            return self
        try:
            pickle.loads(pickle.dumps(self.exception))
        except Exception:
            return HandlerError(self.type_name, self.message, self.traceback, self.request)
        return self


class CheckReport(Message):
    """Everything `check()` may complain about, rendered lines included."""

    __slots__ = ("errors", "unmatched", "unused_rules")

    errors: tuple[HandlerError, ...]
    unmatched: tuple[str, ...]
    unused_rules: tuple[str, ...]

    def __init__(
        self,
        errors: tuple[HandlerError, ...] = (),
        unmatched: tuple[str, ...] = (),
        unused_rules: tuple[str, ...] = (),
    ) -> None:
        _set(self, "errors", errors)
        _set(self, "unmatched", unmatched)
        _set(self, "unused_rules", unused_rules)

    def __bool__(self) -> bool:
        return bool(self.errors or self.unmatched or self.unused_rules)


class RecorderState(Message):
    """A picklable copy of the recorder's configuration and records."""

    __slots__ = ("rules", "defaults", "once", "history", "count", "errors", "unmatched")  # noqa: RUF023 (the order of __init__)

    rules: tuple[Any, ...]
    defaults: tuple[tuple[str | None, tuple[tuple[str, Any], ...]], ...]
    once: tuple[tuple[str | None, tuple[tuple[str, Any], ...]], ...]
    history: tuple[Request, ...]
    count: int
    errors: tuple[HandlerError, ...]
    unmatched: tuple[str, ...]

    def __init__(
        self,
        rules: tuple[Any, ...] = (),
        defaults: tuple[tuple[str | None, tuple[tuple[str, Any], ...]], ...] = (),
        once: tuple[tuple[str | None, tuple[tuple[str, Any], ...]], ...] = (),
        history: tuple[Request, ...] = (),
        count: int = 0,
        errors: tuple[HandlerError, ...] = (),
        unmatched: tuple[str, ...] = (),
    ) -> None:
        _set(self, "rules", rules)
        _set(self, "defaults", defaults)
        _set(self, "once", once)
        _set(self, "history", history)
        _set(self, "count", count)
        _set(self, "errors", errors)
        _set(self, "unmatched", unmatched)


# -- the wire form -------------------------------------------------------------
#
# Pickle names the class of every object it writes, and the reader looks each
# name up through the import system: some 7 us a class when the caches are
# cold, as they are after a hop between processes.  That was half the cost of
# a control call.  So a message travels as a tuple of builtins, ``(code,
# *fields)``, and a recorded request as the tuple of its fields; whatever else
# it holds (a `Response` in a rule, an exception) pickles as usual.

_TYPES: tuple[type[Message], ...] = (
    SetResponse,
    AddRule,
    Reset,
    GetHistory,
    GetRequest,
    GetCount,
    TakeReport,
    WaitRequests,
    Snapshot,
    Restore,
    Shutdown,
    StartChild,
    Ok,
    Failed,
    HandlerError,
    CheckReport,
    RecorderState,
)
_CODES: dict[type, int] = {cls: code for code, cls in enumerate(_TYPES)}
_PLAIN = -1  # not a message: pickled as it is
_OK = _CODES[Ok]
_OK_REQUEST = len(_TYPES)  # Ok(Request)
_OK_HISTORY = _OK_REQUEST + 1  # Ok(list[Request])


def _to_wire(message: object) -> tuple[Any, ...]:
    kind = type(message)
    if kind is Ok:  # the most frequent message: no generic path
        value = message.value  # type: ignore[attr-defined]
        if type(value) is Request:
            return (_OK_REQUEST, request_to_wire(value))
        if type(value) is list and all(type(r) is Request for r in value):
            return (_OK_HISTORY, [request_to_wire(r) for r in value])
        return (_OK, value)
    code = _CODES.get(kind)
    if code is None:
        return (_PLAIN, message)
    assert isinstance(message, Message)
    return (code, *message.fields())


def _from_wire(wire: Any) -> object:
    code = wire[0]
    if code == _PLAIN:
        return wire[1]
    if code == _OK_REQUEST:
        return Ok(request_from_wire(wire[1]))
    if code == _OK_HISTORY:
        return Ok([request_from_wire(r) for r in wire[1]])
    return _TYPES[code](*wire[1:])


# -- framing -----------------------------------------------------------------


def encode_payload(message: object) -> bytes:
    """*message* pickled in its wire form: what `decode_frame` reads back."""
    return pickle.dumps(_to_wire(message), protocol=pickle.HIGHEST_PROTOCOL)


def frame(payload: bytes, seq: int = 0) -> bytes:
    """One frame: the header (length, *seq*) and *payload*, from `encode_payload`."""
    if len(payload) > MAX_FRAME:
        raise FrameError(f"frame of {len(payload)} bytes exceeds the {MAX_FRAME} limit")
    return _HEADER.pack(len(payload), seq) + payload


def encode_frame(message: object, seq: int = 0) -> bytes:
    """One frame: the header (length, *seq*) and the pickled *message*."""
    return frame(encode_payload(message), seq)


def decode_frame(payload: bytes) -> object:
    """Unpickle one frame's payload, or `FrameError` saying why it failed."""
    try:
        return _from_wire(pickle.loads(payload))
    except Exception as exc:
        raise FrameError(
            f"corrupt frame of {len(payload)} bytes: {type(exc).__name__}: {exc}"
        ) from exc


class FrameDecoder:
    """Turns a byte stream into ``(seq, payload)`` pairs; partial frames wait.

    Example: a frame that arrives in two pieces, the second carrying another::

        >>> decoder = FrameDecoder()
        >>> frame = encode_frame(("ping", 1), seq=7)
        >>> decoder.feed(frame[:5]), decoder.pending
        ([], 5)
        >>> [(seq, decode_frame(p)) for seq, p in decoder.feed(frame[5:] + encode_frame("pong"))]
        [(7, ('ping', 1)), (0, 'pong')]
        >>> decoder.pending
        0
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._max_frame = max_frame
        self._need: int | None = None
        self._seq = 0

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, bytes]]:
        """Add *data*; return every frame now complete, oldest first."""
        buffer = self._buffer
        frames: list[tuple[int, bytes]] = []
        if not buffer and self._need is None:  # whole frames: cut them out of *data*
            view = memoryview(data)
            end, pos = len(view), 0
            while end - pos >= _HEADER.size:
                size, seq = _HEADER.unpack_from(view, pos)
                start = pos + _HEADER.size
                if size > self._max_frame or end - start < size:
                    break  # the general case below reports or waits
                frames.append((seq, bytes(view[start : start + size])))
                pos = start + size
            data = view[pos:]
        buffer += data
        while True:
            if self._need is None:
                if len(buffer) < _HEADER.size:
                    return frames
                size, self._seq = _HEADER.unpack_from(buffer)
                if size > self._max_frame:
                    raise FrameError(
                        f"frame header announces {size} bytes, over the "
                        f"{self._max_frame} limit (corrupt stream?)"
                    )
                del buffer[: _HEADER.size]
                self._need = size
            if len(buffer) < self._need:
                return frames
            frames.append((self._seq, bytes(buffer[: self._need])))
            del buffer[: self._need]
            self._need = None
