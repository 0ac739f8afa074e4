"""`Request` and `UploadedFile`: the frozen, picklable record of one request.

This module imports neither Tornado nor hamcrest: a `Request` is plain data
that crosses the process boundary of subprocess mode and is what every
matcher and assertion reads.
"""

from __future__ import annotations

import codecs
import json as _json
import operator
import re
from dataclasses import field, fields
from typing import Any

from ._frozen import Frozen, assign, frozen_value
from ._headers import Headers, MultiDict

__all__ = ["Request", "UploadedFile"]

_set = object.__setattr__  # how a frozen value sets its fields in __init__
_EMPTY = MultiDict()  # read-only, so one empty instance serves every request
_NO_HEADERS = Headers()
_CHARSET_RE = re.compile(r"""charset\s*=\s*"?([^";\s]+)""", re.IGNORECASE)


def charset_of(content_type: str | None, default: str = "utf-8") -> str:
    """The codec named by a Content-Type's ``charset`` parameter, else *default*."""
    if content_type:
        found = _CHARSET_RE.search(content_type)
        if found:
            try:
                return codecs.lookup(found.group(1)).name
            except LookupError:
                pass
    return default


@frozen_value()
class UploadedFile(Frozen):
    """One file part of a ``multipart/form-data`` body.

    .. attribute:: name

       The form field name.

    .. attribute:: filename

       The file name the client gave.

    .. attribute:: content_type

       The part's Content-Type (``application/octet-stream`` when absent).

    .. attribute:: data

       The file's bytes.
    """

    name: str
    filename: str
    content_type: str
    data: bytes

    def __init__(self, name: str, filename: str, content_type: str, data: bytes) -> None:
        assign(self, name=name, filename=filename, content_type=content_type, data=data)

    def __repr__(self) -> str:
        return (
            f"UploadedFile(name={self.name!r}, filename={self.filename!r}, "
            f"content_type={self.content_type!r}, size={len(self.data)})"
        )


@frozen_value(slots=True)  # a server keeps thousands: no per-instance __dict__
class Request(Frozen):
    """One HTTP request as the server received it.

    Built by the server, read by tests: every field is read-only, and a
    `Request` pickles, compares by value and prints its key fields.

    .. attribute:: method

       The method as sent (``"GET"``; matching ignores case).

    .. attribute:: path

       The raw path as sent, without the query (``"/api/items"``).

    .. attribute:: query_string

       The raw query, without ``?`` (``"q=1&q=2"``).

    .. attribute:: args

       The query arguments, a `MultiDict` (blank values are kept).

    .. attribute:: headers

       The header fields, a `Headers` (case-insensitive keys).

    .. attribute:: cookies

       The cookies of the ``Cookie`` header, a ``dict[str, str]``.

    .. attribute:: data

       The body exactly as received (a chunked body arrives decoded).

    .. attribute:: form

       The non-file fields of an urlencoded or multipart body, a `MultiDict`.

    .. attribute:: files

       The file parts of a multipart body: field name to a list of
       `UploadedFile`.

    .. attribute:: client_ip

       The peer address (``"127.0.0.1"``, ``"::1"``).

    .. attribute:: client_port

       The peer port.

    .. attribute:: version

       ``"HTTP/1.1"`` or ``"HTTP/1.0"``.

    .. attribute:: scheme

       ``"http"`` or ``"https"``.

    .. attribute:: url

       The full URL as requested (``"http://127.0.0.1:8080/api?q=1"``).

    .. attribute:: received_at

       `time.time` when the request was recorded.
    """

    method: str
    path: str
    query_string: str = ""
    args: MultiDict = field(default_factory=MultiDict)
    headers: Headers = field(default_factory=Headers)
    cookies: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    form: MultiDict = field(default_factory=MultiDict)
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)
    client_ip: str = "127.0.0.1"
    client_port: int = 0
    version: str = "HTTP/1.1"
    scheme: str = "http"
    url: str = ""
    received_at: float = 0.0

    __hash__ = None  # type: ignore[assignment]  # cookies and files are dicts

    def __init__(
        self,
        method: str,
        path: str,
        query_string: str = "",
        args: MultiDict | None = None,
        headers: Headers | None = None,
        cookies: dict[str, str] | None = None,
        data: bytes = b"",
        form: MultiDict | None = None,
        files: dict[str, list[UploadedFile]] | None = None,
        client_ip: str = "127.0.0.1",
        client_port: int = 0,
        version: str = "HTTP/1.1",
        scheme: str = "http",
        url: str = "",
        received_at: float = 0.0,
    ) -> None:
        # one line a field, not assign(**fields): the server builds one
        # Request per request, and this is twice as fast
        _set(self, "method", method)
        _set(self, "path", path)
        _set(self, "query_string", query_string)
        _set(self, "args", _EMPTY if args is None else args)
        _set(self, "headers", _NO_HEADERS if headers is None else headers)
        _set(self, "cookies", {} if cookies is None else cookies)
        _set(self, "data", data)
        _set(self, "form", _EMPTY if form is None else form)
        _set(self, "files", {} if files is None else files)
        _set(self, "client_ip", client_ip)
        _set(self, "client_port", client_port)
        _set(self, "version", version)
        _set(self, "scheme", scheme)
        _set(self, "url", url)
        _set(self, "received_at", received_at)

    def __reduce__(self) -> tuple[Any, ...]:
        # positional fields: compact, and independent of how a Python
        # version pickles frozen dataclasses with slots
        return (type(self), _request_values(self))

    @property
    def text(self) -> str:
        """The body decoded by the Content-Type charset (else UTF-8), errors replaced."""
        return self.data.decode(charset_of(self.headers.get("Content-Type")), "replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        :raises ValueError: when the body is not JSON, with the start of the
            body in the message.
        """
        try:
            return _json.loads(self.text)
        except ValueError as exc:
            preview = self.data[:60]
            more = "..." if len(self.data) > 60 else ""
            raise ValueError(
                f"request body is not JSON ({exc}); "
                f"body ({len(self.data)} bytes): {preview!r}{more}"
            ) from None

    @property
    def target(self) -> str:
        """The request target: `path` and, if any, ``?`` and `query_string`."""
        return f"{self.path}?{self.query_string}" if self.query_string else self.path

    def __repr__(self) -> str:
        ctype = self.headers.get("Content-Type")
        body = f", data=<{len(self.data)} bytes"
        body += f" {ctype}>" if ctype and self.data else ">"
        return f"Request({self.method} {self.target!r}{body if self.data else ''})"


_REQUEST_FIELDS = tuple(f.name for f in fields(Request))
_request_values = operator.attrgetter(*_REQUEST_FIELDS)


def request_to_wire(request: Request) -> tuple[Any, ...]:
    """*request*'s fields as builtins (multidicts as their pairs), for `request_from_wire`."""
    r = request
    return (
        r.method,
        r.path,
        r.query_string,
        r.args._items,
        r.headers._items,
        r.cookies,
        r.data,
        r.form._items,
        r.files,
        r.client_ip,
        r.client_port,
        r.version,
        r.scheme,
        r.url,
        r.received_at,
    )


def request_from_wire(values: tuple[Any, ...]) -> Request:
    """The `Request` that `request_to_wire` gave *values* for."""
    (method, path, query, args, headers, cookies, data, form, *rest) = values
    return Request(
        method,
        path,
        query,
        MultiDict._of(args),
        Headers._of(headers),
        cookies,
        data,
        MultiDict._of(form),
        *rest,
    )
