"""Commands, replies and framing: the sans-I/O protocol between facade and recorder.

Every control call of `~tserver.TestServer` becomes one frozen command
object.  The thread and inline backends hand it straight to
`Recorder.apply` under the recorder's lock; the subprocess backend pickles
it into one frame over a private ``socketpair`` and the child calls the
same ``apply``.  One code path, so every mode answers the same.

A frame is an 8-byte big-endian length followed by that many bytes of
pickle.  `FrameDecoder` buffers partial input and yields whole messages.
This module does no I/O: no sockets, no threads.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass, field
from typing import Any

from ._request import Request
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
]

#: The largest frame accepted (bodies of several hundred MiB still fit).
MAX_FRAME = 4 * 1024**3
_HEADER = struct.Struct(">Q")


class FrameError(ValueError):
    """A frame is oversized or does not unpickle."""


# -- commands ----------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """Base of every command sent to the recorder."""


@dataclass(frozen=True)
class SetResponse(Command):
    """`set_response` / `set_response_once` of one validated key."""

    key: str
    value: Any
    method: str | None = None
    once: bool = False


@dataclass(frozen=True)
class AddRule(Command):
    """`add_response`: a rule with its selectors."""

    response: Response
    count: int | None = 1
    methods: tuple[str, ...] | None = None
    path: Any = None
    match: Any = None


@dataclass(frozen=True)
class Reset(Command):
    """Empty history, rules, default response, once-overrides and errors."""


@dataclass(frozen=True)
class GetHistory(Command):
    """The whole history, oldest first."""


@dataclass(frozen=True)
class GetRequest(Command):
    """One request by index (negative counts from the end)."""

    index: int = -1


@dataclass(frozen=True)
class GetCount(Command):
    """How many requests arrived since the last reset."""


@dataclass(frozen=True)
class TakeReport(Command):
    """What `check()` needs: handler errors, unmatched requests, unused rules."""


@dataclass(frozen=True)
class WaitRequests(Command):
    """Reply once `count` requests have arrived, or after `timeout` seconds."""

    count: int
    timeout: float


@dataclass(frozen=True)
class Snapshot(Command):
    """The whole recorder state (sent before a child stops)."""


@dataclass(frozen=True)
class Restore(Command):
    """Replace the whole recorder state (sent to a child as it starts)."""

    state: RecorderState


@dataclass(frozen=True)
class Shutdown(Command):
    """Stop serving and exit (the child replies, then exits)."""


@dataclass(frozen=True)
class StartChild:
    """The first frame to a child: what to serve and where."""

    address: str
    port: int
    tls_cert: str | None
    tls_key: str | None
    strict: bool
    history_limit: int | None
    max_body_size: int
    sys_path: tuple[str, ...]
    #: The pickled `RecorderState` set before ``start()``, unpickled by the
    #: child only once ``sys_path`` is in place (callbacks must import).
    state: bytes | None = None


# -- replies and data ---------------------------------------------------------


@dataclass(frozen=True)
class Ok:
    """A command succeeded with this value."""

    value: Any = None


@dataclass(frozen=True)
class Failed:
    """A command raised this exception."""

    error: BaseException


@dataclass(frozen=True)
class HandlerError:
    """An exception raised while serving a request (say, in a callback).

    ``exception`` is the original when it could cross the process boundary,
    else `None`; ``type_name``, ``message`` and ``traceback`` always are set.
    """

    type_name: str
    message: str
    traceback: str
    request: Request | None = None
    exception: BaseException | None = None

    def portable(self) -> HandlerError:
        """A copy without the exception object when that does not pickle."""
        if self.exception is None:
            return self
        try:
            pickle.loads(pickle.dumps(self.exception))
        except Exception:
            return HandlerError(self.type_name, self.message, self.traceback, self.request)
        return self


@dataclass(frozen=True)
class CheckReport:
    """Everything `check()` may complain about, rendered lines included."""

    errors: tuple[HandlerError, ...] = ()
    unmatched: tuple[str, ...] = ()
    unused_rules: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.errors or self.unmatched or self.unused_rules)


@dataclass(frozen=True)
class RecorderState:
    """A picklable copy of the recorder's configuration and records."""

    rules: tuple[Any, ...] = ()
    defaults: tuple[tuple[str | None, tuple[tuple[str, Any], ...]], ...] = ()
    once: tuple[tuple[str | None, tuple[tuple[str, Any], ...]], ...] = ()
    history: tuple[Request, ...] = ()
    count: int = 0
    errors: tuple[HandlerError, ...] = ()
    unmatched: tuple[str, ...] = field(default=())


# -- framing -----------------------------------------------------------------


def encode_frame(message: object) -> bytes:
    """One frame: the length header and the pickled *message*."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(payload) > MAX_FRAME:
        raise FrameError(f"frame of {len(payload)} bytes exceeds the {MAX_FRAME} limit")
    return _HEADER.pack(len(payload)) + payload


def decode_frame(payload: bytes) -> object:
    """Unpickle one frame's payload, or `FrameError` saying why it failed."""
    try:
        return pickle.loads(payload)
    except Exception as exc:
        raise FrameError(
            f"corrupt frame of {len(payload)} bytes: {type(exc).__name__}: {exc}"
        ) from exc


class FrameDecoder:
    """Turns a byte stream into messages; partial frames wait for more input.

    Example: a frame that arrives in two pieces, the second carrying another::

        >>> decoder = FrameDecoder()
        >>> frame = encode_frame(("ping", 1))
        >>> decoder.feed(frame[:5]), decoder.pending
        ([], 5)
        >>> decoder.feed(frame[5:] + encode_frame("pong")), decoder.pending
        ([('ping', 1), 'pong'], 0)
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._max_frame = max_frame
        self._need: int | None = None

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray) -> list[object]:
        """Add *data*; return every message now complete, oldest first."""
        self._buffer += data
        messages: list[object] = []
        while True:
            if self._need is None:
                if len(self._buffer) < _HEADER.size:
                    return messages
                (size,) = _HEADER.unpack_from(self._buffer)
                if size > self._max_frame:
                    raise FrameError(
                        f"frame header announces {size} bytes, over the "
                        f"{self._max_frame} limit (corrupt stream?)"
                    )
                del self._buffer[: _HEADER.size]
                self._need = size
            if len(self._buffer) < self._need:
                return messages
            payload = bytes(self._buffer[: self._need])
            del self._buffer[: self._need]
            self._need = None
            messages.append(decode_frame(payload))
