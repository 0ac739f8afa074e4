"""WebSocket answers and sessions (SPEC §13): immutable, picklable values.

``add_response(WebSocket(script), path="/ws")`` answers a WebSocket upgrade
and runs *script*, a tuple of steps, on the connection:

- `~tserver.ws.Send` a text (str) or binary (bytes) message;
- `~tserver.ws.Echo` the client's messages back as they come;
- `~tserver.ws.Receive` one message from the client, optionally checked by a hamcrest
  matcher (a mismatch is kept for ``check()``);
- `~tserver.ws.Sleep`; `~tserver.ws.Ping`;
- `~tserver.ws.Close` with a code and a reason (and wait for the client's close);
- `~tserver.ws.Fail`: the faults, ``"no-close"`` (the TCP connection closes without a
  close frame), ``"reset"`` (TCP RST), ``"invalid-frame"`` (a frame with a
  reserved opcode), ``"invalid-utf8"`` (a text message that is not UTF-8)
  and ``"oversized"`` (a message of *size* bytes, for a client's limit).

After the script the session stays open and records what the client sends
until it closes.  `TestServer.websockets` lists the sessions as
`~tserver.ws.WebSocketSession` values, each with its `~tserver.ws.Message` values in order.

Stdlib only: these values cross to a subprocess-mode child.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

from ._frozen import Frozen, assign, frozen_value

if TYPE_CHECKING:
    from ._request import Request

__all__ = [
    "FAILS",
    "Close",
    "Echo",
    "Fail",
    "Message",
    "Ping",
    "Receive",
    "Send",
    "Sleep",
    "Step",
    "WebSocket",
    "WebSocketSession",
]

#: The faults `~tserver.ws.Fail` knows.
FAILS = ("no-close", "reset", "invalid-frame", "invalid-utf8", "oversized")


def _seconds(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) >= 0:
        raise ValueError(f"{where} {value!r} must be a number of seconds, 0 or more")
    return float(value)


@frozen_value()
class Send(Frozen):
    """Send one message: text when *data* is a str, binary when it is bytes."""

    data: str | bytes

    def __init__(self, data: str | bytes) -> None:
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"Send: data {data!r} must be a str (text) or bytes (binary)")
        assign(self, data=data)


@frozen_value()
class Receive(Frozen):
    """Wait for the client's next message (text or binary) for up to *timeout* seconds.

    *match*, a hamcrest matcher, checks the message's data (a str for
    text, bytes for binary); a mismatch is kept, and ``check()`` reports it.
    A client that sends nothing in time ends the script (the session stays
    open and keeps recording).
    """

    match: Any = None
    timeout: float = 5.0

    def __init__(self, match: Any = None, timeout: float = 5.0) -> None:
        if match is not None and not hasattr(match, "matches"):
            raise TypeError(f"Receive: match {match!r} must be a hamcrest matcher or None")
        assign(self, match=match, timeout=_seconds("Receive: timeout", timeout))


@frozen_value()
class Echo(Frozen):
    """Send back each of the client's next *count* messages as it comes (`None`: all of them)."""

    count: int | None = None

    def __init__(self, count: int | None = None) -> None:
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise ValueError(f"Echo: count {count!r} must be a positive int, or None for all")
        assign(self, count=count)


@frozen_value()
class Sleep(Frozen):
    """Wait *seconds* before the next step (the client's messages are still recorded)."""

    seconds: float

    def __init__(self, seconds: float) -> None:
        assign(self, seconds=_seconds("Sleep: seconds", seconds))


@frozen_value()
class Ping(Frozen):
    """Send a ping with *payload* (at most 125 bytes); the client's pong is recorded."""

    payload: bytes = b""

    def __init__(self, payload: bytes = b"") -> None:
        if not isinstance(payload, bytes) or len(payload) > 125:
            raise ValueError(f"Ping: payload {payload!r} must be bytes, 125 of them at most")
        assign(self, payload=payload)


@frozen_value()
class Close(Frozen):
    """Send a close frame with *code* and *reason*, then wait for the client's."""

    code: int = 1000
    reason: str = ""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        if isinstance(code, bool) or not isinstance(code, int) or not 1000 <= code <= 4999:
            raise ValueError(f"Close: code {code!r} must be an int from 1000 to 4999")
        if not isinstance(reason, str) or len(reason.encode("utf-8")) > 123:
            raise ValueError(f"Close: reason {reason!r} must be a str of 123 UTF-8 bytes at most")
        assign(self, code=code, reason=reason)


@frozen_value()
class Fail(Frozen):
    """A fault: one of `~tserver.ws.FAILS` (``"no-close"``, ``"reset"``, ``"invalid-frame"``...).

    ``"oversized"`` sends one binary message of *size* bytes (default 16
    MiB + 1, over the usual client limits: websockets' 1 MiB, aiohttp's 4
    MiB); the others end the session.
    """

    kind: str
    size: int = (16 << 20) + 1

    def __init__(self, kind: str, size: int = (16 << 20) + 1) -> None:
        if kind not in FAILS:
            raise ValueError(f"Fail: kind {kind!r}; expected one of {', '.join(map(repr, FAILS))}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"Fail: size {size!r} must be a positive int (bytes)")
        assign(self, kind=kind, size=size)


#: One step of a WebSocket script.
Step = Send | Receive | Echo | Sleep | Ping | Close | Fail
_STEPS = (Send, Receive, Echo, Sleep, Ping, Close, Fail)


@frozen_value()
class WebSocket(Frozen):
    """Answer a WebSocket upgrade (RFC 6455) and run *script* on the connection.

    :param script: the steps, in order (the classes of `tserver.ws`: ``Send``,
        ``Receive``, ``Sleep``, ``Ping``, ``Close``, ``Fail``); a plain str or
        bytes is a ``Send``.
    :param subprotocol: the subprotocol to accept when the client offers it
        (``Sec-WebSocket-Protocol``); none is chosen otherwise.
    :param compress: accept ``permessage-deflate`` when the client offers it.

    A request to a WebSocket rule that is no upgrade gets ``426 Upgrade
    Required``.
    """

    script: tuple[Step, ...] = ()
    subprotocol: str | None = None
    compress: bool = True

    def __init__(
        self,
        script: Any = (),
        *,
        subprotocol: str | None = None,
        compress: bool = True,
    ) -> None:
        if isinstance(script, (str, bytes)) or not hasattr(script, "__iter__"):
            raise TypeError(f"WebSocket: script {script!r} must be a list of steps")
        steps: list[Step] = []
        for given in script:
            step = Send(given) if isinstance(given, (str, bytes)) else given
            if not isinstance(step, _STEPS):
                raise TypeError(
                    f"WebSocket: step {step!r} is not one of Send, Receive, Sleep, Ping, "
                    "Close, Fail (from tserver.ws)"
                )
            steps.append(step)
        if subprotocol is not None and (not isinstance(subprotocol, str) or not subprotocol):
            raise TypeError(f"WebSocket: subprotocol {subprotocol!r} must be a non-empty str")
        assign(self, script=tuple(steps), subprotocol=subprotocol, compress=bool(compress))


@frozen_value()
class Message(Frozen):
    """One message of a session.

    .. attribute:: direction

       ``"in"`` (from the client) or ``"out"`` (to the client).

    .. attribute:: kind

       ``"text"``, ``"binary"``, ``"ping"`` or ``"pong"``.

    .. attribute:: data

       A str for text, bytes otherwise.

    .. attribute:: at

       `time.time` when it was sent or received whole.
    """

    direction: str
    kind: str
    data: str | bytes
    at: float


@frozen_value()
class WebSocketSession(Frozen):
    """One WebSocket connection as the server saw it.

    .. attribute:: index

       ``0`` for the first session since the last reset, counting up.

    .. attribute:: request

       The upgrade `Request` (also in the history).

    .. attribute:: subprotocol

       The subprotocol accepted, or `None`.

    .. attribute:: extensions

       The extensions accepted (``("permessage-deflate",)`` or ``()``).

    .. attribute:: messages

       Every `~tserver.ws.Message`, both directions, in order.

    .. attribute:: close_code, close_reason

       The close frame's code and reason (the first one sent, by either
       side), or `None` and ``""``.

    .. attribute:: closed_by

       ``"client"``, ``"server"`` or `None` (no close frame).

    .. attribute:: open

       Whether the connection is still open.

    .. attribute:: mismatches

       What `~tserver.ws.Receive` matchers found wrong, as text.
    """

    index: int
    request: Request
    subprotocol: str | None
    extensions: tuple[str, ...]
    messages: tuple[Message, ...]
    close_code: int | None
    close_reason: str
    closed_by: str | None
    open: bool
    mismatches: tuple[str, ...]

    def received(self) -> list[str | bytes]:
        """The data of the text and binary messages the client sent, in order."""
        return [
            m.data for m in self.messages if m.direction == "in" and m.kind in ("text", "binary")
        ]

    def sent(self) -> list[str | bytes]:
        """The data of the text and binary messages the server sent, in order."""
        return [
            m.data for m in self.messages if m.direction == "out" and m.kind in ("text", "binary")
        ]

    def __repr__(self) -> str:
        state = "open" if self.open else f"closed {self.close_code}"
        return (
            f"<WebSocketSession #{self.index} {self.request.path} {len(self.messages)} "
            f"message(s), {state}>"
        )
