"""Frames on the socketpair of subprocess mode: sans-I/O encoding and decoding.

A frame is a 16-byte header (big-endian: the payload's length, then a
word whose low 63 bits are the sequence number that pairs a reply with its
command and whose top bit says that more frames of the same reply follow)
and that many bytes of pickle.  `FrameDecoder` buffers partial input and
yields ``(seq, more, payload)``; `decode_frame` unpickles one payload, so a
frame that does not unpickle fails alone.  This module does no I/O: no
sockets, no threads.

Big replies travel in pieces.  A history of many requests is cut into
frames of at most `PIECE_BYTES` of request bodies each: no frame is
pickled whole in one buffer of gigabytes, and the reader sees progress
frame by frame (`tserver._channel` times out on silence, not on size).
The pieces are `Part` frames flagged *more*, and the last frame is the
reply itself; the reader joins them (`join_parts`).

The wire form.  Pickle names the class of every object it writes, and the
reader looks each name up through the import system: some 7 us a class
when the caches are cold, as they are after a hop between processes.  So a
message travels as a tuple of builtins, ``(code, *fields)``, and a recorded
request as the tuple of its fields; whatever else it holds (a `Response` in
a rule, an exception) pickles as usual.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import _commands as c
from ._frozen import Frozen, frozen_value, values_of
from ._records import Exchange
from ._request import Request, request_from_wire, request_to_wire

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "MAX_FRAME",
    "PIECE_BYTES",
    "Failed",
    "FrameDecoder",
    "FrameError",
    "Ok",
    "Part",
    "StartChild",
    "decode_frame",
    "encode_frame",
    "encode_frames",
    "encode_payload",
    "frame",
    "frame_header",
    "join_parts",
]

#: The largest frame accepted.
MAX_FRAME = 4 * 1024**3
#: About how many bytes of request bodies one frame of a history carries.
PIECE_BYTES = 16 * 1024 * 1024
_HEADER = struct.Struct(">QQ")
_MORE = 1 << 63


class FrameError(ValueError):
    """A frame is oversized or does not unpickle."""


@frozen_value()
class Ok(Frozen):
    """A command succeeded with this value."""

    value: Any = None


@frozen_value()
class Failed(Frozen):
    """A command raised this exception."""

    error: BaseException


@frozen_value()
class Part(Frozen):
    """A piece of a reply's history: requests that come before the reply's own."""

    requests: list[Request]


@frozen_value()
class StartChild(Frozen):
    """The first frame to a child: what to serve and where.

    ``state`` is the pickled `~tserver._commands.RecorderState` set before
    ``start()``, unpickled by the child only once ``sys_path`` is in place
    (callbacks must import).  ``tls_cert`` and ``tls_key`` are the server's
    certificate chain and key, PEM: they never rest on disk; nor does
    ``tls_ca_key``, the CA's key that issues the certificates of
    ``CONNECT`` tunnels (``proxy=True``).
    """

    address: str
    port: int
    tls_cert: bytes | None
    tls_key: bytes | None
    strict: bool
    history_limit: int | None
    max_body_size: int
    sys_path: tuple[str, ...]
    state: bytes | None = None
    tls_client_ca: bytes | None = None
    client_cert: str | None = None
    proxy: bool = False
    proxy_auth: tuple[str, str] | None = None
    tls_ca_key: bytes | None = None
    http2: bool = False


_TYPES: tuple[type[Frozen], ...] = (
    c.SetResponse,
    c.AddRule,
    c.GetConnections,
    c.GetExchanges,
    c.GetWebSockets,
    c.WaitMessages,
    c.PushMessage,
    c.Served,
    c.CloseConnections,
    c.Reset,
    c.GetHistory,
    c.GetRequest,
    c.GetCount,
    c.TakeReport,
    c.WaitRequests,
    c.Snapshot,
    c.Restore,
    c.Shutdown,
    c.HandlerError,
    c.CheckReport,
    c.RecorderState,
    StartChild,
    Ok,
    Failed,
    Part,
)
_CODES: dict[type, int] = {cls: code for code, cls in enumerate(_TYPES)}
_PLAIN = -1  # not a message: pickled as it is
_OK = _CODES[Ok]
_OK_REQUEST = len(_TYPES)  # Ok(Request)
_OK_HISTORY = _OK_REQUEST + 1  # Ok(list[Request])
_OK_EXCHANGES = _OK_HISTORY + 1  # Ok(list[Exchange]): requests as tuples, no class names
_PART = _CODES[Part]


def _requests_to_wire(requests: list[Request]) -> list[tuple[Any, ...]]:
    return [request_to_wire(r) for r in requests]


def _to_wire(message: object) -> tuple[Any, ...]:
    kind = type(message)
    if kind is Ok:  # the most frequent message: no generic path
        value = message.value  # type: ignore[attr-defined]
        if type(value) is Request:
            return (_OK_REQUEST, request_to_wire(value))
        if type(value) is list and value:
            if all(type(r) is Request for r in value):
                return (_OK_HISTORY, _requests_to_wire(value))
            if all(type(e) is Exchange for e in value):
                return (
                    _OK_EXCHANGES,
                    [(request_to_wire(e.request), e.rule, e.status, e.completed) for e in value],
                )
        return (_OK, value)
    if kind is Part:
        return (_PART, _requests_to_wire(message.requests))  # type: ignore[attr-defined]
    code = _CODES.get(kind)
    if code is None or not isinstance(message, Frozen):
        return (_PLAIN, message)
    return (code, *values_of(message))


def _from_wire(wire: Any) -> object:
    code = wire[0]
    if code == _PLAIN:
        return wire[1]
    if code == _OK_REQUEST:
        return Ok(request_from_wire(wire[1]))
    if code == _OK_HISTORY:
        return Ok([request_from_wire(r) for r in wire[1]])
    if code == _OK_EXCHANGES:
        return Ok([Exchange(request_from_wire(r), *meta) for r, *meta in wire[1]])
    if code == _PART:
        return Part([request_from_wire(r) for r in wire[1]])
    return _TYPES[code](*wire[1:])


def encode_payload(message: object) -> bytes:
    """*message* pickled in its wire form: what `decode_frame` reads back."""
    return pickle.dumps(_to_wire(message), protocol=pickle.HIGHEST_PROTOCOL)


def frame_header(size: int, seq: int, *, more: bool = False) -> bytes:
    """The 16 bytes before a payload of *size* bytes: its length, *seq* and *more*."""
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes exceeds the {MAX_FRAME} limit")
    return _HEADER.pack(size, seq | _MORE if more else seq)


def frame(payload: bytes, seq: int = 0, *, more: bool = False) -> bytes:
    """One frame: the header (length, *seq*, *more*) and *payload*, from `encode_payload`."""
    return frame_header(len(payload), seq, more=more) + payload


def encode_frame(message: object, seq: int = 0) -> bytes:
    """One frame: the header (length, *seq*) and the pickled *message*."""
    return frame(encode_payload(message), seq)


def _pieces(requests: list[Request], size: int) -> Iterator[list[Request]]:
    """*requests* cut into runs whose bodies add up to about *size* bytes."""
    start, total = 0, 0
    for end, request in enumerate(requests, 1):
        total += len(request.data) + 256
        if total >= size:
            yield requests[start:end]
            start, total = end, 0
    yield requests[start:]


def _body_bytes(requests: list[Any] | tuple[Any, ...]) -> int:
    """The bytes of bodies in *requests* (0 when they are not requests)."""
    return sum(len(r.data) for r in requests if type(r) is Request)


def encode_frames(message: object, seq: int = 0, piece: int = PIECE_BYTES) -> Iterator[bytes]:
    """The frames of *message*: a big history in pieces (a final state's too), else one frame.

    Lazy: each frame is pickled only when the writer asks for it.
    """
    value = message.value if isinstance(message, Ok) else None
    history: Any = value.history if isinstance(value, c.RecorderState) else value
    if isinstance(history, (list, tuple)) and _body_bytes(history) >= piece:
        *first, last = _pieces(list(history), piece)
        for requests in first:
            yield frame(encode_payload(Part(requests)), seq, more=True)
        if isinstance(value, c.RecorderState):  # the final state: its history in pieces too
            yield frame(encode_payload(Ok(replace(value, history=tuple(last)))), seq)
        else:
            yield frame(encode_payload(Ok(last)), seq)
        return
    yield encode_frame(message, seq)


def join_parts(parts: list[Part], reply: object) -> object:
    """The reply whose history came in *parts* before it (`encode_frames`)."""
    if not parts:
        return reply
    requests = [r for part in parts for r in part.requests]
    if isinstance(reply, Ok) and isinstance(reply.value, list):
        return Ok(requests + reply.value)
    if isinstance(reply, Ok) and isinstance(reply.value, c.RecorderState):
        state = reply.value
        return Ok(replace(state, history=(*requests, *state.history)))
    return reply  # a failure after the parts: the parts mean nothing


def decode_frame(payload: bytes) -> object:
    """Unpickle one frame's payload, or `FrameError` saying why it failed."""
    try:
        return _from_wire(pickle.loads(payload))
    except Exception as exc:
        raise FrameError(
            f"corrupt frame of {len(payload)} bytes: {type(exc).__name__}: {exc}"
        ) from exc


class FrameDecoder:
    """Turns a byte stream into ``(seq, more, payload)``; partial frames wait.

    Example: a frame that arrives in two pieces, the second carrying another::

        >>> decoder = FrameDecoder()
        >>> data = encode_frame(("ping", 1), seq=7)
        >>> decoder.feed(data[:5]), decoder.pending
        ([], 5)
        >>> [(seq, more, decode_frame(p)) for seq, more, p in
        ...  decoder.feed(data[5:] + encode_frame("pong"))]
        [(7, False, ('ping', 1)), (0, False, 'pong')]
        >>> decoder.pending
        0
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._max_frame = max_frame
        self._need: int | None = None
        self._word = 0

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[int, bool, bytes]]:
        """Add *data*; return every frame now complete, oldest first."""
        buffer = self._buffer
        frames: list[tuple[int, bool, bytes]] = []
        if not buffer and self._need is None:  # whole frames: cut them out of *data*
            view = memoryview(data)
            end, pos = len(view), 0
            while end - pos >= _HEADER.size:
                size, word = _HEADER.unpack_from(view, pos)
                start = pos + _HEADER.size
                if size > self._max_frame or end - start < size:
                    break  # the general case below reports or waits
                frames.append(
                    (word & ~_MORE, bool(word & _MORE), bytes(view[start : start + size]))
                )
                pos = start + size
            data = view[pos:]
        buffer += data
        while True:
            if self._need is None:
                if len(buffer) < _HEADER.size:
                    return frames
                size, self._word = _HEADER.unpack_from(buffer)
                if size > self._max_frame:
                    raise FrameError(
                        f"frame header announces {size} bytes, over the "
                        f"{self._max_frame} limit (corrupt stream?)"
                    )
                del buffer[: _HEADER.size]
                self._need = size
            if len(buffer) < self._need:
                return frames
            word = self._word
            frames.append((word & ~_MORE, bool(word & _MORE), bytes(buffer[: self._need])))
            del buffer[: self._need]
            self._need = None
