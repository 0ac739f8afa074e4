"""What the server answers: `Response`, `Cookie`, `Raw`, `UNSET`.

Also the table of `~tserver.TestServer.set_response` keys and the validation
of their values.  Stdlib only: these values cross the process boundary of
subprocess mode.
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
from ._frozen import Frozen, assign, frozen_value

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from ._request import Request

__all__ = [
    "FAULTS",
    "RESPONSE_KEYS",
    "UNSET",
    "Cookie",
    "Raw",
    "Response",
    "normalize_key",
    "validate_value",
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

_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
FAULTS = ("close", "reset", "truncate")


def _check_header(where: str, name: object, value: object) -> tuple[str, str]:
    if not isinstance(name, str) or not TOKEN_RE.match(name):
        raise ValueError(f"{where}: header name {name!r} is not an HTTP token")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    elif isinstance(value, numbers.Number):
        value = str(value)
    if not isinstance(value, str):
        raise TypeError(
            f"{where}: header {name!r} has value {value!r}; expected a str, bytes or number"
        )
    if _BAD_VALUE_RE.search(value):
        raise ValueError(f"{where}: header {name!r} value {value!r} holds a control character")
    return name, value


def normalize_headers(where: str, headers: object) -> tuple[tuple[str, str], ...]:
    """Headers as a tuple of pairs, from a mapping or an iterable of pairs."""
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        pairs: Iterable[object] = headers.items()
    elif isinstance(headers, (str, bytes)) or not isinstance(headers, Iterable):
        raise TypeError(
            f"{where}: headers must be a mapping or a list of (name, value) pairs, not {headers!r}"
        )
    elif hasattr(headers, "multi_items"):
        pairs = headers.multi_items()
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


def _check_status(where: str, status: object) -> int:
    if isinstance(status, bool) or not isinstance(status, int):
        raise TypeError(f"{where}: status {status!r} must be an int from 100 to 599")
    if not 100 <= status <= 599:
        raise ValueError(f"{where}: status {status!r} is out of range; expected 100-599")
    return status


def _check_sleep(where: str, sleep: object, name: str = "sleep") -> float:
    if isinstance(sleep, bool) or not isinstance(sleep, (int, float)):
        raise TypeError(f"{where}: {name} {sleep!r} must be a number of seconds")
    if sleep < 0 or math.isnan(sleep):
        raise ValueError(f"{where}: {name} {sleep!r} must be >= 0 seconds")
    return float(sleep)


def _check_data(where: str, data: object) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{where}: data must be bytes or str, not {type(data).__name__}")


def _check_json(where: str, value: object) -> bytes:
    try:
        return _json.dumps(value).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: json value is not JSON-serialisable: {exc}") from exc


def _check_callback(where: str, callback: object) -> object:
    if callback is not None and not callable(callback):
        raise TypeError(f"{where}: callback {callback!r} is not callable")
    return callback


@frozen_value()
class Response(Frozen):
    """One answer: an immutable, picklable description of a response.

    ``data`` (bytes or str, sent UTF-8) and ``json`` (any JSON value, with
    ``Content-Type: application/json``) exclude each other; ``chunks`` (an
    iterable of bytes sent with ``Transfer-Encoding: chunked``,
    ``chunk_sleep`` seconds apart) excludes both.  ``headers`` is a mapping
    or a list of ``(name, value)`` pairs (repeated names allowed),
    ``cookies`` a mapping, pairs or `Cookie` objects.  ``sleep`` waits
    before answering; ``callback(request)`` computes the answer; ``fault``
    is ``"close"``, ``"reset"``, ``"truncate"`` or a `Raw`; ``reason``
    replaces the status line's reason phrase.

    Invalid values raise `ValueError` / `TypeError` naming the field.

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
    chunks: tuple[bytes, ...] | None = None
    chunk_sleep: float = 0.0
    fault: str | Raw | None = None
    reason: str | None = None
    body: bytes = field(default=b"", init=False, repr=False, compare=False)

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
        fault: str | Raw | None = None,
        reason: str | None = None,
    ) -> None:
        where = "Response"
        body = _check_data(where, data)
        if json is not UNSET:
            if body:
                raise ValueError("Response: give data= or json=, not both")
            body = _check_json(where, json)
        chunk_tuple: tuple[bytes, ...] | None = None
        if chunks is not None:
            if body:
                raise ValueError("Response: chunks= excludes data= and json=")
            if isinstance(chunks, (bytes, str)) or not isinstance(chunks, Iterable):
                raise TypeError(
                    f"Response: chunks {chunks!r} must be an iterable of bytes, "
                    "such as [b'part1', b'part2']"
                )
            chunk_tuple = tuple(_check_data("Response: chunks", c) for c in chunks)
        if fault is not None and not isinstance(fault, Raw) and fault not in FAULTS:
            raise ValueError(
                f"Response: fault {fault!r}; expected one of 'close', 'reset', "
                "'truncate' or Raw(b'...')"
            )
        if fault == "truncate" and not body:
            raise ValueError(
                "Response: fault='truncate' needs a body (data= or json=) to cut in half"
            )
        if reason is not None and (not isinstance(reason, str) or _BAD_VALUE_RE.search(reason)):
            raise ValueError(f"Response: reason {reason!r} must be a one-line str")
        values = {
            "data": _check_data(where, data),
            "status": _check_status(where, status),
            "headers": normalize_headers(where, headers),
            "cookies": normalize_cookies(where, cookies),
            "json": json,
            "sleep": _check_sleep(where, sleep),
            "callback": _check_callback(where, callback),
            "chunks": chunk_tuple,
            "chunk_sleep": _check_sleep(where, chunk_sleep, "chunk_sleep"),
            "fault": fault,
            "reason": reason,
            "body": body,
        }
        assign(self, **values)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_response, (self._init_kwargs(),))

    def _init_kwargs(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "status": self.status,
            "headers": self.headers,
            "cookies": self.cookies,
            "json": self.json,
            "sleep": self.sleep,
            "callback": self.callback,
            "chunks": self.chunks,
            "chunk_sleep": self.chunk_sleep,
            "fault": self.fault,
            "reason": self.reason,
        }

    @property
    def content_type(self) -> str:
        """The Content-Type this response sends unless its headers set one."""
        if self.json is not UNSET:
            return "application/json"
        return "text/html; charset=utf-8"

    def __repr__(self) -> str:
        shown = [f"status={self.status}"]
        if self.json is not UNSET:
            shown.append(f"json={self.json!r}")
        elif self.data:
            preview = self.data[:40]
            shown.append(f"data={preview!r}{'...' if len(self.data) > 40 else ''}")
        for name in ("headers", "cookies", "chunks"):
            if getattr(self, name):
                shown.append(f"{name}={getattr(self, name)!r}")
        for name, default in (("sleep", 0.0), ("chunk_sleep", 0.0)):
            if getattr(self, name) != default:
                shown.append(f"{name}={getattr(self, name)!r}")
        if self.callback is not None:
            shown.append(f"callback={getattr(self.callback, '__qualname__', self.callback)}")
        if self.fault is not None:
            shown.append(f"fault={self.fault!r}")
        if self.reason is not None:
            shown.append(f"reason={self.reason!r}")
        return f"Response({', '.join(shown)})"


def _rebuild_response(kwargs: dict[str, Any]) -> Response:
    return Response(**kwargs)


# -- the set_response key table ------------------------------------------

#: The keys of `~tserver.TestServer.set_response`, in the order error messages
#: list them.  ``"code"`` is an alias of ``"status"``.
RESPONSE_KEYS = ("status", "code", "data", "json", "headers", "cookies", "sleep", "callback")


def normalize_method(where: str, method: object) -> str:
    """An upper-case method token, or `ValueError` / `TypeError`."""
    if not isinstance(method, str):
        raise TypeError(f"{where}: method {method!r} must be a str such as 'POST'")
    if not TOKEN_RE.match(method):
        raise ValueError(f"{where}: method {method!r} is not an HTTP method token")
    return method.upper()


def normalize_key(where: str, key: object, method: str | None) -> tuple[str, str | None]:
    """Split ``"post.data"`` and resolve aliases: ``(key, METHOD or None)``."""
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


class ValueTypeError(ValueError, TypeError):
    """A set_response value of the wrong type.

    SPEC 3.1 promises `ValueError` for a bad value type, and 7 allows
    `TypeError` for wrong arguments: this error is both, so either
    ``except`` clause (or ``pytest.raises``) catches it.
    """


def validate_value(where: str, key: str, value: object) -> object:
    """Check and normalise one set_response value (``key`` already normalised).

    :raises ValueError: a bad value; a value of the wrong type raises
        `ValueTypeError`, which is also a `TypeError`.
    """
    try:
        return _validate_value(where, key, value)
    except TypeError as exc:
        if isinstance(exc, ValueError):
            raise
        raise ValueTypeError(str(exc)) from None


def _validate_value(where: str, key: str, value: object) -> object:
    label = f"{where}: key {key!r}"
    if key == "status":
        return _check_status(label, value)
    if key == "data":
        return _check_data(label, value)
    if key == "json":
        _check_json(label, value)
        return value
    if key == "headers":
        return normalize_headers(label, value)
    if key == "cookies":
        return normalize_cookies(label, value)
    if key == "sleep":
        return _check_sleep(label, value)
    if key == "callback":
        if value is None or not callable(value):
            raise TypeError(f"{label}: {value!r} is not callable")
        return value
    raise ValueError(f"{where}: unknown key {key!r}; expected one of {_keys()}")


def response_from_keys(keys: Mapping[str, object]) -> Response:
    """Build the `Response` that a merged set of set_response keys describes."""
    kwargs: dict[str, Any] = {}
    for key, value in keys.items():
        kwargs[key] = value
    if "json" in kwargs:
        kwargs.pop("data", None)
    return Response(**kwargs)
