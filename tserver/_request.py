"""`Request` and `UploadedFile`: the frozen, picklable record of one request.

This module imports neither Tornado nor hamcrest: a `Request` is plain data
that crosses the process boundary of subprocess mode and is what every
matcher and assertion reads.
"""

from __future__ import annotations

import json as _json
from typing import TYPE_CHECKING, Any, ClassVar

from ._body import decode_text, parse_form
from ._encoding import decode_body
from ._frozen import Frozen, assign, frozen_value, values_of
from ._headers import Headers, MultiDict, headers_of, multidict_of, pairs_of
from ._records import TLSInfo

__all__ = ["Request", "UploadedFile", "same_host", "split_authority"]

_set = object.__setattr__  # how a frozen value sets its fields in __init__
_EMPTY = MultiDict()  # read-only, so one empty instance serves every request
_NO_HEADERS = Headers()


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


@frozen_value()
class Request(Frozen):
    r"""One HTTP request as the server received it.

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

       The non-file fields of an urlencoded or multipart body, a `MultiDict`
       (parsed from `data` when first read).

    .. attribute:: files

       The file parts of a multipart body: field name to a list of
       `UploadedFile` (parsed from `data` when first read).

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

    .. attribute:: connection

       The index of the connection it came on (`TestServer.connections`).

    .. attribute:: exchange

       Its position on that connection: ``0`` for the first request, ``1``
       for the second on a reused keep-alive connection, ...

    .. attribute:: raw_head

       The request line and header lines exactly as received, through the
       blank line (``b"GET /x HTTP/1.1\r\nHost: ...\r\n\r\n"``).

    .. attribute:: raw_headers

       Every header field line in arrival order, its name in the case the
       client wrote it: a tuple of ``(name, value)``.

    .. attribute:: chunk_sizes

       The sizes of the chunks of a chunked body as the client framed them
       (without the final ``0``), or `None` when the body was not chunked.

    .. attribute:: tls

       The `TLSInfo` of its connection (HTTPS), or `None`.

    .. attribute:: host

       The authority the client asked for, as it wrote it (port included
       when it wrote one): from an absolute-form target
       (``GET http://api.example.test/v1``), else the ``Host`` header (inside
       a ``CONNECT`` tunnel too), else the tunnel's host, else ``""``.

    .. attribute:: proxied

       Whether the request came as to a proxy: an absolute-form target, or
       inside a ``CONNECT`` tunnel.

    .. attribute:: tunnel

       The ``host:port`` of the ``CONNECT`` tunnel the request came through,
       or `None`.
    """

    # Written out, not made by dataclass: two of them are no fields.  A
    # server keeps thousands of requests, so no per-instance __dict__.
    __slots__ = (  # noqa: RUF023 (the order of the fields)
        "method",
        "path",
        "query_string",
        "args",
        "headers",
        "cookies",
        "data",
        "client_ip",
        "client_port",
        "version",
        "scheme",
        "url",
        "received_at",
        "connection",
        "exchange",
        "raw_head",
        "raw_headers",
        "chunk_sizes",
        "tls",
        "host",
        "proxied",
        "tunnel",
        "_form",
        "_files",
    )

    method: str
    path: str
    query_string: str
    args: MultiDict
    headers: Headers
    cookies: dict[str, str]
    data: bytes
    client_ip: str
    client_port: int
    version: str
    scheme: str
    url: str
    received_at: float
    connection: int
    exchange: int
    raw_head: bytes
    raw_headers: tuple[tuple[str, str], ...]
    chunk_sizes: tuple[int, ...] | None
    tls: TLSInfo | None
    host: str
    proxied: bool
    tunnel: str | None
    if TYPE_CHECKING:  # slots, not fields: dataclass must not see them
        _form: MultiDict | None
        _files: dict[str, list[UploadedFile]] | None

    __hash__: ClassVar[None] = None  # type: ignore[assignment]  # cookies and files are dicts

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
        connection: int = 0,
        exchange: int = 0,
        raw_head: bytes = b"",
        raw_headers: tuple[tuple[str, str], ...] = (),
        chunk_sizes: tuple[int, ...] | None = None,
        tls: TLSInfo | None = None,
        host: str = "",
        proxied: bool = False,
        tunnel: str | None = None,
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
        # None: parsed from the body when first read (recording never parses)
        _set(self, "_form", form if form is not None or data else _EMPTY)
        _set(self, "_files", files if files is not None or data else {})
        _set(self, "client_ip", client_ip)
        _set(self, "client_port", client_port)
        _set(self, "version", version)
        _set(self, "scheme", scheme)
        _set(self, "url", url)
        _set(self, "received_at", received_at)
        _set(self, "connection", connection)
        _set(self, "exchange", exchange)
        _set(self, "raw_head", raw_head)
        _set(self, "raw_headers", raw_headers)
        _set(self, "chunk_sizes", chunk_sizes)
        _set(self, "tls", tls)
        _set(self, "host", host)
        _set(self, "proxied", proxied)
        _set(self, "tunnel", tunnel)

    @property
    def form(self) -> MultiDict:
        """The non-file fields of an urlencoded or multipart body (see the class)."""
        form: MultiDict | None = self._form
        if form is None:
            form = self._parse()[0]
        return form

    @property
    def files(self) -> dict[str, list[UploadedFile]]:
        """The file parts of a multipart body (see the class)."""
        files: dict[str, list[UploadedFile]] | None = self._files
        if files is None:
            files = self._parse()[1]
        return files

    def _parse(self) -> tuple[MultiDict, dict[str, list[UploadedFile]]]:
        fields, parts = parse_form(self.headers.get("Content-Type"), self.content)
        form = MultiDict(fields) if fields else _EMPTY
        files: dict[str, list[UploadedFile]] = {}
        for name, filename, content_type, content in parts:
            files.setdefault(name, []).append(UploadedFile(name, filename, content_type, content))
        if self._form is None:  # two threads may parse at once: both equal
            _set(self, "_form", form)
        if self._files is None:
            _set(self, "_files", files)
        return form, files

    def __reduce__(self) -> tuple[Any, ...]:
        # positional: compact, and independent of how a Python version
        # pickles frozen dataclasses with slots; form and files only if known
        return (type(self), _constructor_values(self))

    @property
    def content(self) -> bytes:
        """The body with its ``Content-Encoding`` undone (``data`` keeps it as sent).

        ``gzip`` and ``deflate`` always, ``br`` and ``zstd`` when their
        libraries are installed; a body that does not decode is left as it
        came.  `text`, `json`, `form` and `files` read this.
        """
        coding = self.headers.get("Content-Encoding")
        return self.data if coding is None else decode_body(coding, self.data)

    @property
    def text(self) -> str:
        """The body decoded by the Content-Type charset (else UTF-8), errors replaced.

        Only a text encoding decodes a body: a ``charset`` such as
        ``base64`` or ``zlib`` falls back to UTF-8.
        """
        return decode_text(self.content, self.headers.get("Content-Type"))

    def json(self) -> Any:
        """The body parsed as JSON.

        :raises ValueError: when the body is not JSON (or nested too deeply
            to parse), with the start of the body in the message.
        """
        try:
            return _json.loads(self.text)
        except (ValueError, RecursionError) as exc:
            preview = self.data[:60]
            more = "..." if len(self.data) > 60 else ""
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ValueError(
                f"request body is not JSON ({reason}); "
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


def _constructor_values(r: Request) -> tuple[Any, ...]:
    """The arguments that make *r* again (form and files `None` when not parsed yet)."""
    return (
        r.method,
        r.path,
        r.query_string,
        r.args,
        r.headers,
        r.cookies,
        r.data,
        r._form,
        r._files,
        r.client_ip,
        r.client_port,
        r.version,
        r.scheme,
        r.url,
        r.received_at,
        r.connection,
        r.exchange,
        r.raw_head,
        r.raw_headers,
        r.chunk_sizes,
        r.tls,
        r.host,
        r.proxied,
        r.tunnel,
    )


def request_to_wire(request: Request) -> tuple[Any, ...]:
    """*request*'s fields as builtins (multidicts as their pairs), for `request_from_wire`.

    A form not parsed yet crosses as `None` and is parsed where it is read.
    """
    r = request
    return (
        r.method,
        r.path,
        r.query_string,
        pairs_of(r.args),
        pairs_of(r.headers),
        r.cookies,
        r.data,
        None if r._form is None else pairs_of(r._form),
        r._files,
        r.client_ip,
        r.client_port,
        r.version,
        r.scheme,
        r.url,
        r.received_at,
        r.connection,
        r.exchange,
        r.raw_head,
        r.raw_headers,
        r.chunk_sizes,
        None if r.tls is None else values_of(r.tls),
        r.host,
        r.proxied,
        r.tunnel,
    )


def request_from_wire(values: tuple[Any, ...]) -> Request:
    """The `Request` that `request_to_wire` gave *values* for."""
    (method, path, query, args, headers, cookies, data, form, files, *middle, tls) = values[:-3]
    make: Any = Request  # positional, all fields: faster than keywords (a history's worth)
    request: Request = make(
        method,
        path,
        query,
        multidict_of(args),
        headers_of(headers),
        cookies,
        data,
        None if form is None else multidict_of(form),
        files,
        *middle,
        None if tls is None else TLSInfo(*tls),
        *values[-3:],
    )
    return request


def split_authority(authority: str) -> tuple[str, str | None]:
    """The host (lower case, an IPv6 address without brackets) and port of *authority*.

    ``"API.example.test:8080"`` gives ``("api.example.test", "8080")``,
    ``"[::1]:80"`` gives ``("::1", "80")``; without a port (a bare IPv6
    address included) the port is `None`.
    """
    if authority.startswith("["):
        address, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        return address.lower(), port
    if authority.count(":") == 1:
        name, _, port = authority.partition(":")
        return name.lower(), port
    return authority.lower(), None


def same_host(wanted: str, host: str) -> bool:
    """Whether authority *host* is *wanted*: no case, and no port unless *wanted* has one.

    ``same_host("api.example.test", "API.example.test:8080")`` is true;
    ``same_host("api.example.test:443", "api.example.test")`` is not (the
    client wrote no port).
    """
    wanted_name, wanted_port = split_authority(wanted)
    name, port = split_authority(host)
    return name == wanted_name and (wanted_port is None or port == wanted_port)
