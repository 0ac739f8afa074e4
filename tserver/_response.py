"""What the server answers: `Response`, `Raw`, `UNSET`, and the one description of a response.

A response is described one way: a `Response`.  The default response of
`~tserver.TestServer.set_response` and its one-time overrides are *partial*
responses, `Overlay` layers of checked `Response` fields, merged by
`merge_overlays` into a `Response`.  Each field is checked by one function
of `FIELD_CHECKS`, whichever way it arrives (constructor or
`set_response`), and the rules between fields (``data`` excludes ``json``;
``chunks`` excludes both; the framing headers agree with the body) are
written once, in `_EXCLUDES` and `_check_combination`.

Stdlib only: these values cross the process boundary of subprocess mode.
"""

from __future__ import annotations

import enum
import json as _json
import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any, Union

from ._cookie import TOKEN_RE, Cookie, normalize_cookies
from ._encoding import check_encoding, compress
from ._events import EVENT_STREAM, Event
from ._frozen import Frozen, assign, frozen_value
from ._violations import check_violation
from ._websocket import WebSocket

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from ._request import Request

__all__ = [
    "FAULTS",
    "FIELD_CHECKS",
    "GoAway",
    "RESPONSE_KEYS",
    "UNSET",
    "Overlay",
    "Raw",
    "ResetStream",
    "Response",
    "check_chunk",
    "check_event",
    "check_key_value",
    "merge_overlays",
    "normalize_key",
    "normalize_method",
    "overlay_with",
]


class _Unset(enum.Enum):
    """The type of `UNSET`."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


#: Marks a field that was not given (`Response.json`: no JSON at all, whereas
#: ``json=None`` sends the JSON ``null``).
UNSET = _Unset.UNSET

#: What a callback may return.
CallbackResult = Union["Response", bytes, str]
#: A response callback: plain or ``async``.
Callback = Callable[["Request"], "CallbackResult | Awaitable[CallbackResult]"]
#: A partial response: ``(field, checked value)`` pairs, later ones winning.
Overlay = tuple[tuple[str, Any], ...]

_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS_RE = re.compile(r"[0-9]{1,18}")
FAULTS = ("close", "reset", "truncate", "close_after")
_RAW_HINT = "to send it anyway, write the bytes yourself with fault=Raw(b'...')"


# -- one check per field ----------------------------------------------------------


def _check_header(where: str, name: object, value: object) -> tuple[str, str]:
    if not isinstance(name, str) or not TOKEN_RE.match(name):
        raise ValueError(f"{where}: header name {name!r} is not an HTTP token; {_RAW_HINT}")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    elif isinstance(value, numbers.Number) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise TypeError(
            f"{where}: header {name!r} has value {value!r}; expected a str, bytes or number"
        )
    if _BAD_VALUE_RE.search(value):
        raise ValueError(
            f"{where}: header {name!r} value {value!r} holds a control character, "
            f"which HTTP forbids; {_RAW_HINT}"
        )
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            f"{where}: header {name!r} value {value!r} is not Latin-1, which HTTP/1.1 "
            f"cannot carry (encode it, say as UTF-8 bytes); {_RAW_HINT}"
        ) from None
    return name, value


def _check_headers(where: str, headers: object) -> tuple[tuple[str, str], ...]:
    """Headers as a tuple of pairs, from a mapping or an iterable of pairs."""
    if headers is None:
        return ()
    if hasattr(headers, "multi_items"):  # a MultiDict, Headers: repeated names kept
        pairs: Iterable[object] = headers.multi_items()
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    elif isinstance(headers, (str, bytes)) or not isinstance(headers, Iterable):
        raise TypeError(
            f"{where}: headers must be a mapping or a list of (name, value) pairs, not {headers!r}"
        )
    else:
        pairs = headers
    out = []
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(
                f"{where}: headers must be a mapping or a list of (name, value) "
                f"pairs; got item {pair!r}"
            )
        out.append(_check_header(where, pair[0], pair[1]))
    return tuple(out)


def _check_status(where: str, status: object) -> int:
    if isinstance(status, bool) or not isinstance(status, int):
        raise TypeError(f"{where}: status {status!r} must be an int from 100 to 599")
    if not 100 <= status <= 599:
        raise ValueError(f"{where}: status {status!r} is out of range; expected 100-599")
    return status


def _check_seconds(where: str, seconds: object, name: str) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{where}: {name} {seconds!r} must be a number of seconds")
    if seconds < 0 or math.isnan(seconds):
        raise ValueError(f"{where}: {name} {seconds!r} must be >= 0 seconds")
    return float(seconds)


def _check_sleep(where: str, sleep: object) -> float:
    return _check_seconds(where, sleep, "sleep")


def _check_chunk_sleep(where: str, sleep: object) -> float:
    return _check_seconds(where, sleep, "chunk_sleep")


def _check_rate_of(where: str, rate: object, name: str) -> float | None:
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise TypeError(f"{where}: {name} {rate!r} must be a number of bytes per second, or None")
    if not 0 < rate < math.inf:
        raise ValueError(f"{where}: {name} {rate!r} must be > 0 bytes per second")
    return float(rate)


def _check_rate(where: str, rate: object) -> float | None:
    return _check_rate_of(where, rate, "rate")


def _check_read_rate(where: str, rate: object) -> float | None:
    return _check_rate_of(where, rate, "read_rate")


#: What ``expect=`` accepts: what to do with a request's ``Expect: 100-continue``.
EXPECTS = (None, "continue", "refuse", "withhold")


def _check_expect(where: str, expect: object) -> str | None:
    if expect not in EXPECTS:
        raise ValueError(
            f"{where}: expect {expect!r}; expected None or 'continue' (answer 100 Continue), "
            "'refuse' (answer now, never read the body) or 'withhold' (no 100)"
        )
    return expect


def _check_data(where: str, data: object) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{where}: data must be bytes or str, not {type(data).__name__}")


def check_chunk(where: str, chunk: object) -> bytes:
    """One chunk of a streamed body: bytes, or str sent as UTF-8."""
    return _check_data(f"{where}: chunks", chunk)


def _encode_json(where: str, value: object) -> bytes:
    try:
        return _json.dumps(value).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{where}: json value is not JSON-serialisable: {exc}") from exc


def _check_json(where: str, value: object) -> object:
    if value is not UNSET:
        _encode_json(where, value)
    return value


def _check_callback(where: str, callback: object) -> object:
    if callback is not None and not callable(callback):
        raise TypeError(f"{where}: callback {callback!r} is not callable")
    return callback


def _check_chunks(where: str, chunks: object) -> object:
    """`None`, a tuple (from a list or tuple, each item checked), or any other iterable as is.

    An iterator is not consumed here: ``itertools.repeat(b"x")`` is an
    endless body, and its items are checked as they are sent.
    """
    if chunks is None:
        return None
    if isinstance(chunks, (bytes, str)) or not isinstance(chunks, Iterable):
        raise TypeError(
            f"{where}: chunks {chunks!r} must be an iterable of bytes, such as [b'part1', b'part2']"
        )
    if isinstance(chunks, (list, tuple)):
        return tuple(check_chunk(where, c) for c in chunks)
    return chunks


def check_event(where: str, event: object) -> Event:
    """One event of an event stream: an `Event`."""
    if not isinstance(event, Event):
        raise TypeError(f"{where}: events must hold Event(...) values, not {event!r}")
    return event


def _check_events(where: str, events: object) -> object:
    """`None`, a tuple of `Event` (from a list or tuple), or any other iterable as is.

    As with ``chunks``, an iterator is consumed as it is sent.
    """
    if events is None:
        return None
    if isinstance(events, (bytes, str, Event)) or not isinstance(events, Iterable):
        raise TypeError(
            f"{where}: events {events!r} must be an iterable of Event(...), "
            "such as [Event('hello'), Event('bye')]"
        )
    if isinstance(events, (list, tuple)):
        return tuple(check_event(where, e) for e in events)
    return events


def _check_hold(where: str, hold: object) -> bool | str:
    if hold is False or hold is True or hold == "body":
        return hold
    raise ValueError(f"{where}: hold {hold!r}; expected False, True or 'body'")


def _check_fault(where: str, fault: object) -> object:
    if (
        fault is not None
        and not isinstance(fault, (Raw, GoAway, ResetStream))
        and fault not in FAULTS
    ):
        raise ValueError(
            f"{where}: fault {fault!r}; expected one of 'close', 'reset', 'truncate', "
            "'close_after', Raw(b'...'), GoAway(...) or ResetStream(...)"
        )
    return fault


def _check_reason(where: str, reason: object) -> object:
    if reason is not None and (not isinstance(reason, str) or _BAD_VALUE_RE.search(reason)):
        raise ValueError(f"{where}: reason {reason!r} must be a one-line str")
    return reason


#: The check of each `Response` field: ``check(where, value) -> checked value``.
def _check_websocket(where: str, value: object) -> WebSocket | None:
    if value is None or isinstance(value, WebSocket):
        return value
    raise TypeError(f"{where}: websocket {value!r} must be a tserver.WebSocket or None")


FIELD_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "data": _check_data,
    "status": _check_status,
    "headers": _check_headers,
    "cookies": normalize_cookies,
    "json": _check_json,
    "sleep": _check_sleep,
    "callback": _check_callback,
    "chunks": _check_chunks,
    "chunk_sleep": _check_chunk_sleep,
    "fault": _check_fault,
    "reason": _check_reason,
    "hold": _check_hold,
    "events": _check_events,
    "encoding": check_encoding,
    "rate": _check_rate,
    "read_rate": _check_read_rate,
    "expect": _check_expect,
    "violation": check_violation,
    "websocket": _check_websocket,
}

#: What a WebSocket answer can have beside it: it is the whole answer.
_WEBSOCKET_ALONE = ("data", "json", "chunks", "events", "fault", "hold", "violation", "encoding")


def _check_websocket_alone(values: Mapping[str, Any]) -> None:
    given = [
        name
        for name in _WEBSOCKET_ALONE
        if values[name] is not None
        and values[name] is not UNSET
        and values[name] != b""
        and values[name] is not False
    ]
    if values["callback"] is not None:
        given.append("callback")
    if given:
        raise ValueError(
            f"Response: websocket= answers the upgrade and runs its script; it cannot have "
            f"{', '.join(given)} (headers, cookies and sleep may come with it)"
        )


#: Fields that replace each other in an overlay, and exclude each other in
#: a `Response`: the body is given one way.
_EXCLUDES: dict[str, tuple[str, ...]] = {
    "data": ("json", "chunks", "events"),
    "json": ("data", "chunks", "events"),
    "chunks": ("data", "json", "events"),
    "events": ("data", "json", "chunks"),
}


def _header_values(headers: tuple[tuple[str, str], ...], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


def _check_framing(values: Mapping[str, Any], body: bytes) -> None:
    """The framing headers a response sets must agree with the body it sends."""
    headers = values["headers"]
    if not headers:
        return
    encodings = _header_values(headers, "transfer-encoding")
    lengths = _header_values(headers, "content-length")
    hint = "for a response that breaks HTTP framing on purpose, " + _RAW_HINT
    if encodings:
        if lengths:
            raise ValueError(
                "Response: headers set both Transfer-Encoding and Content-Length, "
                f"which contradict each other; keep one ({hint})"
            )
        codings = [c.strip().lower() for v in encodings for c in v.split(",") if c.strip()]
        if codings != ["chunked"]:
            raise ValueError(
                f"Response: Transfer-Encoding {', '.join(encodings)!r}: tserver frames a "
                f"body with 'chunked' only ({hint})"
            )
    if lengths:
        if len(set(lengths)) > 1 or not _DIGITS_RE.fullmatch(lengths[0].strip()):
            raise ValueError(
                f"Response: Content-Length {', '.join(lengths)!r} is not one length ({hint})"
            )
        for name, streams in (
            ("chunks", values["chunks"] is not None),
            ("events", values["events"] is not None),
            ("hold='body'", values["hold"] == "body"),
        ):
            if streams:
                raise ValueError(
                    f"Response: {name} is sent chunked; drop the Content-Length header ({hint})"
                )
        if values["encoding"] is not None:
            body = compress(values["encoding"], body)  # what goes out (wire_body)
        # a 304 may give the length of the representation it stands for
        if values["status"] != 304 and int(lengths[0]) != len(body):
            raise ValueError(
                f"Response: Content-Length {lengths[0].strip()} but the body has "
                f"{len(body)} bytes ({hint}; a HEAD answer is sent without the body "
                "that data= gives, with its length)"
            )


@frozen_value()
class Raw(Frozen):
    r"""A fault that writes exactly these bytes on the connection, then closes it.

    Example: a status line and half a header, read with a plain socket::

        >>> import socket
        >>> from tserver import Raw, Response, TestServer
        >>> with TestServer() as srv:
        ...     srv.add_response(Response(fault=Raw(b"HTTP/1.1 200 OK\r\nbroken")))
        ...     with socket.create_connection((srv.address, srv.port)) as sock:
        ...         sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        ...         sock.makefile("rb").read()  # all of it, until the server closes
        0
        b'HTTP/1.1 200 OK\r\nbroken'
    """

    data: bytes

    def __init__(self, data: bytes) -> None:
        assign(self, data=data)
        self.__post_init__()

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            raise TypeError(f"Raw: data must be bytes, not {type(self.data).__name__}")

    def __repr__(self) -> str:
        return self._fields_repr()


def _check_code(where: str, name: str, value: object, limit: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
        raise ValueError(f"{where}: {name} {value!r} must be an int from 0 to {limit - 1}")


@frozen_value()
class GoAway(Frozen):
    """An HTTP/2 fault: a ``GOAWAY`` frame, then the connection is closed.

    ``error_code`` is the frame's error code (``0``, ``NO_ERROR``, by
    default; RFC 9113 §7).  ``last_stream_id`` is the last stream the frame
    says the server processed: by default the stream before the one this
    fault answers, so that stream and every later one are left unprocessed
    (a client may retry them).  Put after a rule with ``count=N``, it is a
    ``GOAWAY`` after *N* streams.  Over HTTP/1.1 it is refused: the
    connection is closed and `TestServer.check` says why.
    """

    error_code: int = 0
    last_stream_id: int | None = None

    def __init__(self, error_code: int = 0, last_stream_id: int | None = None) -> None:
        assign(self, error_code=error_code, last_stream_id=last_stream_id)
        self.__post_init__()

    def __post_init__(self) -> None:
        _check_code("GoAway", "error_code", self.error_code, 1 << 32)
        if self.last_stream_id is not None:
            _check_code("GoAway", "last_stream_id", self.last_stream_id, 1 << 31)

    def __repr__(self) -> str:
        return self._fields_repr()


@frozen_value()
class ResetStream(Frozen):
    """An HTTP/2 fault: the head and the first *after* bytes of the body, then ``RST_STREAM``.

    ``error_code`` is the frame's error code (``2``, ``INTERNAL_ERROR``, by
    default; RFC 9113 §7).  The head declares the whole body's
    ``content-length``, so a client sees a body cut short.  The other
    streams of the connection go on.  Over HTTP/1.1 it is refused: the
    connection is closed and `TestServer.check` says why.
    """

    error_code: int = 2
    after: int = 0

    def __init__(self, error_code: int = 2, after: int = 0) -> None:
        assign(self, error_code=error_code, after=after)
        self.__post_init__()

    def __post_init__(self) -> None:
        _check_code("ResetStream", "error_code", self.error_code, 1 << 32)
        _check_code("ResetStream", "after", self.after, 1 << 62)

    def __repr__(self) -> str:
        return self._fields_repr()


@frozen_value()
class Response(Frozen):
    """One answer: an immutable, picklable description of a response.

    ``data`` (bytes or str, sent UTF-8) and ``json`` (any JSON value, with
    ``Content-Type: application/json``) exclude each other; ``chunks`` (an
    iterable of bytes sent with ``Transfer-Encoding: chunked``,
    ``chunk_sleep`` seconds apart, consumed as it is sent) excludes both,
    and so does ``events`` (an iterable of `Event`: a ``text/event-stream``
    of one flushed chunk per event; ``events=[]`` is a stream whose events
    are all pushed later with `Held.send`).
    ``headers`` is a mapping or a list of ``(name, value)`` pairs (repeated
    names allowed; a ``Transfer-Encoding: chunked`` header sends ``data``
    chunked), ``cookies`` a mapping, pairs or `Cookie` objects.  ``sleep``
    waits before answering; ``callback(request)`` computes the answer;
    ``fault`` is ``"close"``, ``"reset"``, ``"truncate"``, ``"close_after"``
    (the whole response, as a keep-alive answer, then the connection is
    closed, its FIN sent with the last bytes: a client that sends its next
    request on that connection fails, every time), a `Raw`, or one of the
    HTTP/2 faults `GoAway` and `ResetStream`;
    ``reason`` replaces the status line's reason phrase.  ``encoding``
    (``"gzip"``, ``"deflate"``, ``"br"``, ``"zstd"``) compresses the body,
    each chunk flushed when it streams, and sets ``Content-Encoding``
    unless the headers set it.  ``rate`` sends the body at about that many
    bytes per second (a slow drip); ``read_rate`` reads the request body at
    about that many bytes per second (a client's write timeout).
    ``expect`` says what a request's ``Expect: 100-continue`` gets:
    ``None`` or ``"continue"`` a ``100 Continue``; ``"refuse"`` this
    response at once, the body never read; ``"withhold"`` no ``100``, so
    the client must send its body without one.  ``violation`` names a way
    to break the response on the wire (`tserver.VIOLATIONS`).  ``hold=True``
    records the request and writes nothing until the test acts on the
    `Held` that `~tserver.TestServer.wait_held` returns; ``hold="body"``
    sends the status line and headers at once (chunked) and holds the body.

    Invalid values raise `ValueError` / `TypeError` naming the field, and
    so do framing headers that contradict the body.

    Example::

        >>> from tserver import Response
        >>> created = Response(status=201, json={"id": 7}, headers={"Location": "/items/7"})
        >>> created
        Response(status=201, json={'id': 7}, headers=(('Location', '/items/7'),))
        >>> created.content_type
        'application/json'
        >>> Response(data=b"x", json={"id": 7})
        Traceback (most recent call last):
          ...
        ValueError: Response: give data= or json=, not both
    """

    data: bytes = b""
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[Cookie, ...] = ()
    json: Any = UNSET
    sleep: float = 0.0
    callback: Callback | None = None
    chunks: Iterable[bytes] | None = None
    chunk_sleep: float = 0.0
    fault: str | Raw | GoAway | ResetStream | None = None
    reason: str | None = None
    hold: bool | str = False
    events: Iterable[Event] | None = None
    encoding: str | None = None
    rate: float | None = None
    read_rate: float | None = None
    expect: str | None = None
    violation: str | None = None
    websocket: WebSocket | None = None
    body: bytes = field(default=b"", init=False, repr=False, compare=False)
    #: Nothing but a status, headers and a whole body: the handler's short way.
    plain: bool = field(default=True, init=False, repr=False, compare=False)
    #: Whether the body goes out chunked: it streams, or a header says so.
    sends_chunked: bool = field(default=False, init=False, repr=False, compare=False)

    def __init__(
        self,
        data: bytes | str = b"",
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        cookies: Mapping[str, str] | Iterable[tuple[str, str] | Cookie] | None = None,
        json: Any = UNSET,
        sleep: float = 0.0,
        callback: Callback | None = None,
        chunks: Iterable[bytes | str] | None = None,
        chunk_sleep: float = 0.0,
        fault: str | Raw | GoAway | ResetStream | None = None,
        reason: str | None = None,
        hold: bool | str = False,
        events: Iterable[Event] | None = None,
        encoding: str | None = None,
        rate: float | None = None,
        read_rate: float | None = None,
        expect: str | None = None,
        violation: str | None = None,
        websocket: WebSocket | None = None,
    ) -> None:
        given = {
            "data": data,
            "status": status,
            "headers": headers,
            "cookies": cookies,
            "json": json,
            "sleep": sleep,
            "callback": callback,
            "chunks": chunks,
            "chunk_sleep": chunk_sleep,
            "fault": fault,
            "reason": reason,
            "hold": hold,
            "events": events,
            "encoding": encoding,
            "rate": rate,
            "read_rate": read_rate,
            "expect": expect,
            "violation": violation,
            "websocket": websocket,
        }
        values = {name: FIELD_CHECKS[name]("Response", value) for name, value in given.items()}
        present = {
            "data": bool(values["data"]),
            "json": json is not UNSET,
            "chunks": chunks is not None,
            "events": events is not None,
        }
        for name, others in _EXCLUDES.items():
            clash = [o for o in others if present[name] and present[o]]
            if clash:
                raise ValueError(_clash_text(name, clash[0]))
        self._settle(values)

    def _settle(self, values: dict[str, Any]) -> None:
        """Check the rules between the (checked) fields, compute `body`, assign."""
        if values["websocket"] is not None:
            _check_websocket_alone(values)
            values["status"] = 101
        body = values["data"]
        if values["json"] is not UNSET:
            body = _encode_json("Response", values["json"])
        if values["fault"] == "truncate" and not body:
            raise ValueError(
                "Response: fault='truncate' needs a body (data= or json=) to cut in half"
            )
        if isinstance(values["fault"], ResetStream):
            given = [name for name in ("chunks", "events") if values[name] is not None]
            if given:
                raise ValueError(
                    f"Response: fault=ResetStream(...) cuts a body given whole (data= or "
                    f"json=) after its first bytes; it cannot have {given[0]}="
                )
        if values["expect"] == "refuse":
            given = [
                name
                for name in ("callback", "chunks", "events", "fault", "rate")
                if values[name] is not None
            ]
            if values["hold"]:
                given.append("hold")
            if given:
                raise ValueError(
                    "Response: expect='refuse' answers before the body is read, with the "
                    f"status, headers and body as given; it cannot have {', '.join(given)}"
                )
        if values["violation"] is not None:
            given = [
                name
                for name in ("chunks", "events", "fault", "rate", "expect")
                if values[name] is not None
            ]
            if values["hold"] == "body":
                given.append("hold='body'")
            if values["violation"] == "response-before-request-body":
                # decided on the head, before anything is awaited or computed
                given += [name for name in ("callback", "hold") if values[name]]
                if values["sleep"]:
                    given.append("sleep")
            if given:
                raise ValueError(
                    f"Response: violation={values['violation']!r} breaks the status, headers "
                    f"and body on the wire; it cannot have {', '.join(given)}"
                )
        streams = [name for name in ("chunks", "events") if values[name] is not None]
        if streams and (values["status"] in (204, 304) or values["status"] < 200):
            raise ValueError(
                f"Response: {streams[0]}= streams a body, which status {values['status']} never has"
            )
        if values["hold"] == "body":
            if values["fault"] is not None:
                raise ValueError(
                    "Response: hold='body' sends the head at once, so it cannot also be a "
                    "fault; hold=True holds the whole answer (fail it with Held.fail)"
                )
            if values["status"] in (204, 304) or values["status"] < 200:
                raise ValueError(
                    f"Response: hold='body' holds a body, which status {values['status']} "
                    "never has; use hold=True"
                )
        _check_framing(values, body)
        chunked = (
            values["chunks"] is not None
            or values["events"] is not None
            or values["hold"] == "body"
            or bool(values["headers"] and _header_values(values["headers"], "transfer-encoding"))
        )
        plain = not chunked and not any(values[name] for name in _NOT_PLAIN)
        assign(self, **values, body=body, plain=plain, sends_chunked=chunked)

    @classmethod
    def _from_checked(cls, values: Mapping[str, Any]) -> Response:
        """A `Response` of fields checked by `FIELD_CHECKS` (unlisted ones default)."""
        response = object.__new__(cls)
        full = dict(_DEFAULTS)
        full.update(values)
        response._settle(full)
        return response

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_response, (tuple([getattr(self, name) for name in _FIELDS]),))

    def wire_body(self) -> bytes:
        """The body as it goes out: compressed when ``encoding`` says so."""
        return self.body if self.encoding is None else compress(self.encoding, self.body)

    @property
    def content_type(self) -> str:
        """The Content-Type this response sends unless its headers set one."""
        if self.json is not UNSET:
            return "application/json"
        if self.events is not None:
            return EVENT_STREAM
        return "text/html; charset=utf-8"

    def __repr__(self) -> str:
        shown = [f"status={self.status}"]
        if self.json is not UNSET:
            shown.append(f"json={self.json!r}")
        elif self.data:
            preview = self.data[:40]
            shown.append(f"data={preview!r}{'...' if len(self.data) > 40 else ''}")
        for name in ("headers", "cookies", "chunks", "events"):
            if getattr(self, name):
                shown.append(f"{name}={getattr(self, name)!r}")
        for name, default in (("sleep", 0.0), ("chunk_sleep", 0.0)):
            if getattr(self, name) != default:
                shown.append(f"{name}={getattr(self, name)!r}")
        if self.callback is not None:
            shown.append(f"callback={getattr(self.callback, '__qualname__', self.callback)}")
        if self.hold:
            shown.append(f"hold={self.hold!r}")
        for name in ("fault", "reason", "encoding", "rate", "read_rate", "expect", "violation"):
            if getattr(self, name) is not None:
                shown.append(f"{name}={getattr(self, name)!r}")
        return f"Response({', '.join(shown)})"


#: The fields that take a response off the handler's short way when set.
_NOT_PLAIN = ("sleep", "callback", "fault", "hold", "encoding", "rate", "violation", "websocket")

#: The constructor's fields, in order (`Response.body` is computed).
_FIELDS = tuple(FIELD_CHECKS)
_DEFAULTS: dict[str, Any] = {name: getattr(Response, name) for name in _FIELDS}


def _clash_text(name: str, other: str) -> str:
    if {name, other} == {"data", "json"}:
        return "Response: give data= or json=, not both"
    if "events" in (name, other):
        return "Response: events= excludes data=, json= and chunks="
    return "Response: chunks= excludes data= and json="


def _rebuild_response(values: tuple[Any, ...]) -> Response:
    return Response._from_checked(dict(zip(_FIELDS, values, strict=True)))


# -- overlays: the default response and its one-time overrides ----------------------


def overlay_with(layer: Overlay, key: str, value: object) -> Overlay:
    """*layer* with the checked *key* set to *value*, replacing what it excludes."""
    dropped = (key, *_EXCLUDES.get(key, ()))
    return (*((k, v) for k, v in layer if k not in dropped), (key, value))


def merge_overlays(layers: Iterable[Overlay]) -> Response:
    """The `Response` that *layers* describe, later layers winning field by field.

    :raises ValueError: the merged fields contradict each other (say, a
        ``Content-Length`` header set in one layer and ``data`` of another
        length in another).
    """
    values: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer:
            for other in _EXCLUDES.get(key, ()):
                values.pop(other, None)
            values[key] = value
    return Response._from_checked(values)


# -- the set_response key table ------------------------------------------------------

#: The keys of `~tserver.TestServer.set_response`, in the order error messages
#: list them.  ``"code"`` is an alias of ``"status"``; every key is a
#: `Response` field, checked by the same function.
RESPONSE_KEYS = ("status", "code", "data", "json", "headers", "cookies", "sleep", "callback")


def normalize_method(where: str, method: object) -> str:
    """An upper-case method token, or `ValueError` / `TypeError`."""
    if not isinstance(method, str):
        raise TypeError(f"{where}: method {method!r} must be a str such as 'POST'")
    if not TOKEN_RE.match(method):
        raise ValueError(f"{where}: method {method!r} is not an HTTP method token")
    return method.upper()


def normalize_key(where: str, key: object, method: str | None) -> tuple[str, str | None]:
    """Split ``"post.data"`` and resolve aliases: ``(field, METHOD or None)``."""
    if not isinstance(key, str):
        raise TypeError(f"{where}: key {key!r} must be a str; expected one of {_keys()}")
    name = key
    if "." in key:
        prefix, name = key.split(".", 1)
        prefixed = normalize_method(where, prefix)
        if method is not None and normalize_method(where, method) != prefixed:
            raise ValueError(
                f"{where}: key {key!r} names method {prefixed!r} but method="
                f"{method!r} was given; use one of them"
            )
        method = prefixed
    elif method is not None:
        method = normalize_method(where, method)
    name = name.lower()
    if name == "code":
        name = "status"
    if name not in RESPONSE_KEYS:
        raise ValueError(f"{where}: unknown key {key!r}; expected one of {_keys()}")
    return name, method


def _keys() -> str:
    return ", ".join(repr(k) for k in RESPONSE_KEYS) + " (optionally prefixed 'post.')"


def check_key_value(where: str, key: str, value: object) -> object:
    """Check one `set_response` value (*key* already normalised) with its field's check.

    :raises ValueError: for a bad value, of the wrong type too (SPEC 3.1).
    """
    label = f"{where}: key {key!r}"
    if key == "callback" and value is None:
        raise ValueError(f"{label}: None is not callable; give a function of the request")
    try:
        return FIELD_CHECKS[key](label, value)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
