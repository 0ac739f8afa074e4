"""`Held`: the test's handle on a response it holds (``Response(hold=...)``, SPEC §10).

A `Held` names one held exchange and carries its request.  It is a value
(picklable, compared by the exchange it names) that the facade binds to its
server, so that its methods become commands in every mode: in thread and
inline mode a hop onto the server's loop, in subprocess mode a frame to the
child.  Unbound (unpickled elsewhere, say) it refuses to act.

The checks that need no server happen here, in the caller's thread, so a
wrong call fails at once with the usual `ValueError` / `TypeError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._errors import ServerStateError
from ._events import Event
from ._response import GoAway, Raw, ResetStream, Response

if TYPE_CHECKING:
    from ._request import Request

__all__ = ["HELD_FAULTS", "Act", "Held", "HeldKey"]

#: Identifies a held exchange: the serving process and a number it gave.
HeldKey = tuple[int, int]
#: How a bound `Held` acts: ``act(key, action, value) -> bool``.
Act = Callable[[HeldKey, str, Any], bool]
#: What `Held.fail` accepts besides a `Raw`.
HELD_FAULTS = ("close", "reset")


class Held:
    """A response held by ``Response(hold=True)`` or ``hold="body"``: the test acts on it.

    ``request`` is the recorded request; ``hold`` is ``True`` (nothing was
    written yet) or ``"body"`` (the status line and headers went out, the
    body waits).  Every action returns ``True``, or ``False`` when the
    exchange is no longer held: its client has gone, or it was released or
    failed already.  `~tserver.TestServer.wait_held` returns it.

    Example: a client's read timeout, with no sleep on either side::

        >>> import urllib.request, socket
        >>> from tserver import Response, TestServer
        >>> with TestServer() as srv:
        ...     srv.add_response(Response(b"late", hold=True))
        ...     try:
        ...         urllib.request.urlopen(srv.url, timeout=0.2)
        ...     except (TimeoutError, socket.timeout, OSError) as exc:
        ...         print("timed out")
        ...     held = srv.wait_held()
        ...     held.request.path
        0
        timed out
        '/'
    """

    __slots__ = ("_act", "_event_stream", "_key", "hold", "request")

    request: Request
    hold: bool | str
    _key: HeldKey
    _event_stream: bool
    _act: Act | None

    def __init__(
        self,
        key: HeldKey,
        request: Request,
        hold: bool | str,
        event_stream: bool = False,
        act: Act | None = None,
    ) -> None:
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "request", request)
        object.__setattr__(self, "hold", hold)
        object.__setattr__(self, "_event_stream", event_stream)
        object.__setattr__(self, "_act", act)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Held is read-only: cannot set {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Held, (self._key, self.request, self.hold, self._event_stream))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Held):
            return self._key == other.key
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        request = self.request
        return f"<Held {request.method} {request.path} hold={self.hold!r}>"

    @property
    def key(self) -> HeldKey:
        """What names this exchange where it is served."""
        return self._key

    @property
    def event_stream(self) -> bool:
        """Whether the held response is an event stream (``events=``)."""
        return self._event_stream

    def bound(self, act: Act) -> Held:
        """A copy that acts through *act* (the facade binds what the server returns)."""
        return Held(self._key, self.request, self.hold, self._event_stream, act)

    def _do(self, action: str, value: object) -> bool:
        act = self._act
        if act is None:
            raise ServerStateError(
                "this Held is not bound to a server (it was unpickled or copied); "
                "act on the one that wait_held() or srv.held returned"
            )
        return act(self._key, action, value)

    def release(self, response: Response | None = None) -> bool:
        """Write the held response, or *response* instead.

        For ``hold="body"``: write what is left of the body and the last
        chunk (the head is gone already, so *response* must be `None`).
        """
        if response is not None:
            if not isinstance(response, Response):
                raise TypeError(f"Held.release: response {response!r} must be a Response or None")
            if self.hold == "body":
                raise ValueError(
                    "Held.release: the status line and headers of a hold='body' response "
                    "are sent already; send() the rest of the body, then release()"
                )
        return self._do("release", response)

    def send(self, data: bytes | str | Event) -> bool:
        """Send one chunk of the body now (``hold="body"`` only): bytes, str (UTF-8) or `Event`."""
        if self.hold != "body":
            raise ValueError(
                "Held.send: only a hold='body' response sends its body piece by piece; "
                "this one holds the whole answer (release() it)"
            )
        if isinstance(data, Event):
            if not self._event_stream:
                raise ValueError(
                    "Held.send: an Event needs an event stream; answer with "
                    "Response(events=[...], hold='body') (events=[] for none up front)"
                )
            return self._do("send", data)
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise TypeError(f"Held.send: data {data!r} must be bytes, str or Event")
        return self._do("send", data)

    def fail(self, fault: str | Raw | GoAway | ResetStream) -> bool:
        """End the exchange with a fault: ``"close"``, ``"reset"`` or ``Raw(b"...")``.

        Over HTTP/2 also `GoAway` (the connection ends) or `ResetStream`
        (this stream alone, with that error code; its ``after`` counts
        bytes of an answer the test never gave, so nothing more is sent).
        """
        if not isinstance(fault, (Raw, GoAway, ResetStream)) and fault not in HELD_FAULTS:
            raise ValueError(
                f"Held.fail: fault {fault!r}; expected 'close', 'reset', Raw(b'...'), "
                "GoAway(...) or ResetStream(...)"
            )
        return self._do("fail", fault)
