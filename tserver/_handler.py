"""The wildcard Tornado handler: records each request, then writes its answer.

The only module that imports `tornado.web`.  One `RecordingHandler` serves
every path and every method token a client sends.  It reads the body itself
(``stream_request_body``), so Tornado never parses or rejects a form body;
it builds a `Request` (its headers in arrival order, from the head the
`~tserver._host.Host` kept), hands it to `Recorder.record` (which appends it
to the history and picks the response in one step), and only then writes the
response: a delayed or faulty answer is already visible to a waiting test.

Headers: every answer carries ``Server: tserver/<version>``, ``Content-Type:
text/html; charset=utf-8`` (``application/json`` for JSON) and ``Date``
(RFC 9110 asks origin servers with a clock to send it), plus
``Content-Length`` or ``Transfer-Encoding: chunked``.  No ``Etag``: Tornado
would add one and then answer ``304`` to a client's ``If-None-Match``,
behaviour a test did not ask for.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import dataclasses
import hmac
import inspect
import re
import socket
import time
import traceback
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

from tornado import httputil, iostream, web

from . import _faults
from ._commands import HandlerError
from ._encoding import Compressor
from ._events import EVENT_STREAM, Event
from ._h2serve import INTERNAL_ERROR, H2Stream, request_fields
from ._har import STREAM_CAP, answer_from_wire
from ._head import header_lines, normalize_name
from ._headers import MultiDict, headers_of, multidict_of
from ._holding import peer_gone
from ._request import Request, split_authority
from ._response import UNSET, GoAway, Raw, ResetStream, Response, check_chunk, check_event
from ._version import __version__
from ._violations import HEAD_VIOLATIONS
from ._violations import render as render_violation
from ._wsserve import accept, is_upgrade, serve_session

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from types import TracebackType

    from ._headers import Headers
    from ._holding import HeldSlot
    from ._host import Conn, Host
    from ._traffic import ExchangeRecord

__all__ = ["SERVER_HEADER", "RecordingHandler", "make_app"]

SERVER_HEADER = f"tserver/{__version__}"
DEFAULT_CONTENT_TYPE = "text/html; charset=utf-8"
_DISPATCH = "TSERVER_DISPATCH"
_EMPTY = MultiDict()
_END = object()  # the end of a stream of chunks
_LENGTH_RE = re.compile(r"[0-9]+")
#: ``rate=``: slices per second at most, the largest slice, and the send
#: buffer of a dripping connection (the kernel doubles what it is given).
_DRIPS_PER_SECOND = 20
_DRIP_MAX = 4096
_DRIP_BUFFER = 4096

# Values that recur from request to request (header lines, methods, paths)
# are kept once: a server holding thousands of requests stores each distinct
# one a single time.  Bounded: cleared when full; long values are not kept.
_SHARED: dict[Any, Any] = {}
_SHARED_MAX = 4096
_SHARE_MAX_LEN = 256
_T = TypeVar("_T", str, tuple[str, str])


def _share(value: _T, size: int) -> _T:
    """The equal value seen before, else *value* (kept if *size* is small)."""
    found: _T | None = _SHARED.get(value)
    if found is None:
        if size > _SHARE_MAX_LEN:
            return value
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        _SHARED[value] = found = value
    return found


# A client sends the same header block request after request: the same
# (read-only) `Headers` and raw lines then serve them all, and the same head
# bytes serve the requests that repeat it whole.  Same bounds as above.
_RawLines = tuple[tuple[str, str], ...]
_HEADERS: dict[bytes, tuple[Headers, _RawLines]] = {}
_HEADS: dict[bytes, bytes] = {}
_HEADERS_MAX = 1024
_HEADERS_KEY_MAX = 4096


def _headers_of(head: bytes) -> tuple[Headers, _RawLines]:
    """The `Headers` of *head* (arrival order) and its lines as sent: seen before, or new."""
    block = head[head.find(b"\n") :]  # the header lines, without the request line
    found = _HEADERS.get(block)
    if found is None:
        raw = header_lines(head)
        pairs = tuple(
            [_share((normalize_name(name), value), len(name) + len(value)) for name, value in raw]
        )
        found = (headers_of(pairs), raw)
        if len(block) <= _HEADERS_KEY_MAX:
            if len(_HEADERS) >= _HEADERS_MAX:
                _HEADERS.clear()
            _HEADERS[block] = found
    return found


def _share_head(head: bytes) -> bytes:
    """The equal head seen before (a client repeating a request), else *head*."""
    found = _HEADS.get(head)
    if found is None:
        if len(head) > _HEADERS_KEY_MAX:
            return head
        if len(_HEADS) >= _HEADERS_MAX:
            _HEADS.clear()
        _HEADS[head] = found = head
    return found


def _declared_length(value: str) -> int | None:
    """A Content-Length value as a number, or `None` if it is not one (Tornado answers 400).

    Leading zeros are fine, however many; only ASCII digits count (``²``
    is a digit to `str.isdigit`, not to HTTP).
    """
    value = value.strip()
    if not _LENGTH_RE.fullmatch(value):
        return None
    digits = value.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else 10**18


_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The ``Date`` header value of the current second (formatted once a second)."""
    global _date
    now = int(time.time())
    second, text = _date
    if second != now:
        text = httputil.format_timestamp(now)
        _date = (now, text)
    return text


class _AnyMethod(tuple[str, ...]):
    """`SUPPORTED_METHODS` that contains every method token a client sends."""

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str)


@web.stream_request_body
class RecordingHandler(web.RequestHandler):
    """Records every request into its host's `Recorder` and writes the chosen `Response`."""

    SUPPORTED_METHODS = _AnyMethod(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

    host: Host
    # What a request may set; the class holds the defaults, so that the
    # common request sets none of them (each costs a little per request).
    _request: Request | None = None  # once recorded
    _exchange: ExchangeRecord | None = None
    _conn: Conn | None = None
    _close_after = False
    _slot: HeldSlot | None = None  # while the test holds the response
    _compressor: Compressor | None = None  # a streamed body's encoding=
    _pace: list[float] | None = None  # rate=: [start, bytes sent]
    _sndbuf: int | None = None  # the send buffer a drip shrank
    _read_pace: list[float] | None = None  # read_rate=: [start, bytes, rate]
    _fresh = False  # the response was made for this request (a callback's, a release's)
    _answer: Response | None = None  # the server's own answer, not the rules' (a proxy's 407)

    def initialize(self, host: Host) -> None:
        """Receive the host from the application."""
        self.host = host
        self._body: list[bytes] = []
        self._method = ""

    def clear(self) -> None:
        """Reset the answer: ``200``, no body, ``Server``, ``Content-Type`` and ``Date``.

        Tornado's own `clear` sets its defaults, formats the date anew and
        then lets `set_default_headers` replace two of them, for every
        request; this sets tserver's at once, with the date of this second.
        """
        self._headers = httputil.HTTPHeaders(
            {"Server": SERVER_HEADER, "Content-Type": DEFAULT_CONTENT_TYPE, "Date": _http_date()}
        )
        self._write_buffer = []
        self._status_code = 200
        self._reason = "OK"

    def compute_etag(self) -> str | None:
        """No automatic ``Etag`` (and so no automatic ``304``)."""
        return None

    def check_etag_header(self) -> bool:
        """Never a match: with no computed ``Etag`` there is nothing to compare.

        Tornado calls it only when the answer has no ``Etag``, and would
        return `False` after parsing ``If-None-Match``; this skips the parsing.
        """
        return False

    def prepare(self) -> Awaitable[None] | None:
        """Refuse an oversized declared body with 413, then route every method.

        Not a coroutine: Tornado awaits what it returns, and most requests
        need nothing awaited here.
        """
        task = asyncio.current_task()
        if task is not None:
            self.host.track(task)  # cancelled if the server stops meanwhile
        self._method = self.request.method or "GET"
        # this request's connection, once (None: it closed under a stop())
        self._conn = self.host.conn_of(getattr(self.request.connection, "stream", None))
        declared = _declared_length(self.request.headers.get("Content-Length", ""))
        limit = self.host.config.max_body_size
        if declared is not None and declared > limit:
            answer = f"tserver: body of {declared} bytes is over max_body_size={limit}\n"
            if self._h2 is not None:  # a frame per stream: the answer, then the stream's end
                self.set_status(413)
                self.set_header("Content-Type", "text/plain; charset=utf-8")
                return self.finish(answer)
            return _faults.refuse_body(
                self.detach(),
                _faults.plain_response(413, answer.encode(), SERVER_HEADER),
                declared,
            )
        config = self.host.config
        if config.proxy:
            refused = self._proxy_step(config.proxy_auth)
            if refused is not None:
                return refused
            if self._answer is not None:  # the proxy's own answer: no rule decides on the head
                self.request.method = _DISPATCH
                return None
        waits = self._expects_continue()
        recorder = self.host.recorder
        if recorder.head_rules:  # a rule may decide on the head, before the body
            planned = recorder.peek(self._build_request(peek=True))
            if planned is not None:
                if waits and planned.expect == "refuse":
                    return self._refuse(declared)
                if planned.violation in HEAD_VIOLATIONS and self._h2 is None:
                    return self._answer_early()
                if waits and planned.expect == "withhold":
                    # Tornado answers 100 when its headers ask; the record
                    # keeps the head as sent
                    del self.request.headers["Expect"]
                if planned.read_rate is not None:
                    self._read_slowly(planned.read_rate)
        # Tornado dispatches on getattr(self, method.lower()); route every
        # token (PROPFIND, PURGE, ...) to one coroutine, restored there.
        self.request.method = _DISPATCH
        return None

    @property
    def _h2(self) -> H2Stream | None:
        """The HTTP/2 stream this request came on, or `None` over HTTP/1."""
        connection = self.request.connection
        return connection if isinstance(connection, H2Stream) else None

    def _h2_refuse(self, what: str, request: Request | None) -> None:
        """A byte-level answer HTTP/2 cannot carry: kept as an error, the stream reset."""
        stream = self._h2
        assert stream is not None
        text = f"tserver: {what} cannot be sent over HTTP/2 (the stream was reset)"
        self.host.recorder.add_error(HandlerError("HTTP2Unsupported", text, text, request, None))
        self._finished = True
        stream.reset(INTERNAL_ERROR)

    def _proxy_step(self, auth: tuple[str, str] | None) -> Awaitable[None] | None:
        """``proxy=True``: check a proxied request's credentials; take a ``CONNECT``'s stream.

        A request without the credentials of *auth* is answered ``407`` when
        dispatched (its body read and recorded, as any request's); an
        accepted ``CONNECT`` is no request of the history: its connection
        becomes the tunnel (`Host.open_tunnel`).
        """
        conn = self._conn
        connect = self._method.upper() == "CONNECT"
        if not connect and (conn is None or conn.absolute is None):
            return None  # an origin-form request: no proxy business
        if auth is not None and not _proxy_authorized(
            self.request.headers.get("Proxy-Authorization", ""), auth
        ):
            self._answer = _PROXY_AUTH_REQUIRED
            return None
        if not connect:
            return None
        if conn is None or not _tunnel_target(conn.target):
            self._answer = _BAD_CONNECT
            return None
        return self._open_tunnel(conn)

    async def _open_tunnel(self, conn: Conn) -> None:
        """Answer ``200 Connection established`` and hand the connection to the host."""
        stream = self.detach()
        try:
            head = f"{self.request.version} 200 Connection established\r\n\r\n"
            await stream.write(head.encode())
        except iostream.StreamClosedError:
            return  # the client left
        self.host.open_tunnel(stream, conn)

    async def _websocket(self, response: Response, request: Request) -> None:
        """Answer a WebSocket upgrade and run the session (`._wsserve`) until it ends.

        A request that is no upgrade gets ``426 Upgrade Required``, one whose
        upgrade is broken (no key, a wrong version) ``400`` with wsproto's
        reason: both are written by Tornado as any answer.
        """
        spec = response.websocket
        assert spec is not None
        conn = self._conn
        refusal = None
        if not is_upgrade(request):
            refusal = Response(
                b"tserver: this path answers WebSocket upgrades only\n",
                status=426,
                headers={"Upgrade": "websocket", "Connection": "Upgrade"},
            )
        elif conn is None:
            return  # its connection closed under a stop()
        else:
            self._apply_headers(response)
            extra = [
                (name, value)
                for name, value in self._headers.get_all()
                if name.lower() not in ("content-type", "content-length", "date")
            ]
            try:
                connection, head, subprotocol, agreed = accept(conn.head, spec, extra)
            except ValueError as exc:
                refusal = Response(f"tserver: a broken WebSocket upgrade: {exc}\n", status=400)
        if refusal is not None:
            self.clear()
            await self._serve(refusal, request)
            return
        assert conn is not None  # no refusal: the upgrade was read from it
        self._status(response)
        record = self.host.recorder.open_websocket(request, subprotocol, agreed)
        conn.record.protocol = "WebSocket"
        stream = self.detach()
        try:
            await stream.write(head)
        except iostream.StreamClosedError:
            record.open = False
            return
        exchange = self._exchange
        if exchange is not None:
            exchange.completed = True
            exchange.finished_at = time.time()
        await serve_session(
            stream,
            connection,
            record,
            self.host.recorder,
            spec,
            request,
            conn.client_socket,
            self.host.track,
            self.host.websockets,
        )

    def _client_socket(self) -> socket.socket | None:
        """The socket of the TCP connection to the client (a tunnel's is not the stream's)."""
        conn = self._conn
        return None if conn is None else conn.client_socket

    def _expects_continue(self) -> bool:
        """Whether the request asks for ``100 Continue`` (and Tornado will send it).

        The expectation is case-insensitive, and an HTTP/1.0 request's is
        ignored (RFC 9110 §10.1.1); Tornado compares the value exactly and
        answers any version, so its copy of the header is put right.  The
        record keeps the head as sent.  Cheap for the usual request: its
        head holds no ``100-`` at all.
        """
        conn = self._conn
        if conn is None or b"100-" not in conn.head:
            return False
        headers = self.request.headers
        value = headers.get("Expect", "")
        if value.lower() != "100-continue":
            return False
        if self.request.version != "HTTP/1.1":
            del headers["Expect"]
            return False
        headers["Expect"] = "100-continue"
        return True

    async def _refuse(self, declared: int | None) -> None:
        """``expect="refuse"``: record the request, answer it now, never read its body."""
        request = self._request = self._build_request()
        response, self._exchange = self.host.recorder.record_exchange(request)
        headers = self._head_of(response)
        data = _faults.whole(response.status, response.reason, headers, response.wire_body())
        await _faults.refuse_body(self.detach(), data, declared or 0)
        self._written()

    async def _answer_early(self) -> None:
        """``violation="response-before-request-body"``: answer and close, the body unread."""
        request = self._request = self._build_request()
        response, self._exchange = self.host.recorder.record_exchange(request)
        if response.violation is None:  # another rule took it meanwhile: answer it whole
            response = dataclasses.replace(response, violation="response-before-request-body")
        await self._violate(response)

    def _head_of(self, response: Response) -> list[tuple[str, str]]:
        """The status noted and the headers of *response*, for a head written by hand.

        Without the framing fields: who writes the head frames the body.
        """
        self._status(response)
        self.set_status(response.status, response.reason)
        self._apply_headers(response)
        return [
            (name, value)
            for name, value in self._headers.get_all()
            if name.lower() not in ("content-length", "transfer-encoding")
        ]

    async def _violate(self, response: Response) -> None:
        """Write *response* broken as its ``violation`` says, then close the connection."""
        assert response.violation is not None
        if self._h2 is not None:
            self._h2_refuse(f"violation={response.violation!r}", self._request)
            return
        headers = self._head_of(response)
        body = response.wire_body()
        no_content = self.request.method == "HEAD" or self._should_not_send_content(response.status)
        data = render_violation(
            response.violation, response.status, response.reason, headers, body, no_content
        )
        exchange = self._exchange
        if exchange is not None:  # the log shows these bytes, as the client read them
            exchange.settle(answer_from_wire(data, response.violation, time.time()))
        await _faults.write_and_close(self.detach(), data)
        self._written()

    def _read_slowly(self, rate: float) -> None:
        """``read_rate=``: read the body at about *rate* bytes per second.

        Small reads (this request's own copy of Tornado's connection
        parameters), each followed by the wait its bytes are due, and a
        small receive buffer: what the client sends beyond the buffers
        waits in its own, and its writes block.
        """
        connection: Any = self.request.connection
        if self._h2 is None:  # over HTTP/2 the DATA frames come as the client framed them
            params = copy.copy(connection.params)
            params.chunk_size = max(1, min(_DRIP_MAX, int(rate / _DRIPS_PER_SECOND)))
            connection.params = params
        # over HTTP/2 the socket is every stream's: the stream's own window holds it back
        sock = None if self._conn is None or self._h2 is not None else self._conn.stream.socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _DRIP_BUFFER)
        self._read_pace = [asyncio.get_running_loop().time(), 0.0, rate]

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        """Collect the body as it arrives (with ``read_rate``, no faster than it says)."""
        self._body.append(chunk)
        pace = self._read_pace
        if pace is None:
            return None
        conn = self._conn
        if self.host.closing or conn is None or conn.stream.closed():
            return None  # nobody to pace: let Tornado drain its buffer and end
        pace[1] += len(chunk)
        wait = pace[0] + pace[1] / pace[2] - asyncio.get_running_loop().time()
        return self._pause(wait) if wait > 0 else None

    async def _pause(self, seconds: float) -> None:
        """A read's wait; a shutdown ends it quietly (Tornado then meets the closed stream)."""
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            if not self.host.closing:
                raise

    async def tserver_dispatch(self) -> None:
        """Record the request, then serve the response the recorder picked."""
        self.request.method = self._method
        request = self._request = self._build_request()
        response, self._exchange = self.host.recorder.record_exchange(request, self._answer)
        try:
            await self._serve(response, request)
        except iostream.StreamClosedError:
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            # stop() cancels a handler still sleeping or streaming: drop the
            # connection, so Tornado neither logs nor ends a half-sent
            # chunked body as if it were complete.
            if not self._finished:
                self.detach().close()
            raise

    def _build_request(self, *, peek: bool = False) -> Request:
        # The hot path of every request, and what the history keeps: no
        # lookup index is built (Headers makes it on first use), and values
        # seen before are shared (see _share).  *peek*: the head alone, for
        # Recorder.peek, counted nowhere.
        req = self.request
        conn = self._conn  # found by prepare()
        tls = chunk_sizes = absolute = tunnel = None
        if conn is not None:
            if conn.fields is not None:  # HTTP/2: the decoded field list
                head, raw_headers = b"", conn.fields
                headers = headers_of(request_fields(conn.fields))
            else:
                head = conn.head.lstrip(b"\r\n")
                headers, raw_headers = _headers_of(head)
            target = conn.target
            absolute, tunnel = conn.absolute, conn.tunnel
            record = conn.record
            position = record.requests if peek else record.next_exchange(req.version)
            index, tls = record.index, record.tls
            if conn.chunks is not None:  # the body came chunked
                chunk_sizes = tuple(conn.chunks)
        else:  # its connection closed under it (a stop() racing this request)
            head, raw_headers = b"", tuple(req.headers.get_all())
            headers = headers_of(raw_headers)
            target = req.uri or ""
            index = position = -1
        body = b"".join(self._body)
        cookies: dict[str, str] = {}
        if "Cookie" in req.headers:
            for value in headers.getlist("Cookie"):
                cookies.update(httputil.parse_cookie(value))
        if conn is not None:  # a tunnel's stream is a socket pair: the client's own address
            ip, port = conn.record.client_ip, conn.record.client_port
        else:
            ip = req.remote_ip or ""
            peer = getattr(getattr(req.connection, "context", None), "address", None)
            port = peer[1] if isinstance(peer, tuple) and len(peer) > 1 else 0
        path, _, query = target.partition("?")
        method = self._method
        if absolute is not None:  # GET http://host/path, as to a proxy
            host, url = absolute
        else:
            host = req.host if "Host" in req.headers else (tunnel or "")
            url = f"{req.protocol}://{host or req.host}{target}"
        return Request(
            method=_share(method, len(method)),
            path=_share(path, len(path)),
            query_string=query,
            args=multidict_of(tuple(parse_qsl(query, keep_blank_values=True, errors="replace")))
            if query
            else _EMPTY,
            headers=headers,
            cookies=cookies,
            data=body,
            client_ip=ip,
            client_port=int(port),
            version=_share(req.version, 0),
            scheme=req.protocol,
            url=url,
            received_at=time.time(),
            connection=index,
            exchange=position,
            raw_head=_share_head(head),
            raw_headers=raw_headers,
            chunk_sizes=chunk_sizes,
            tls=tls,
            host=host,
            proxied=absolute is not None or tunnel is not None,
            tunnel=tunnel,
        )

    async def _serve(self, response: Response, request: Request) -> None:
        if response.plain:  # the common answer: status, headers, a whole body
            self._status(response)
            self.set_status(response.status, response.reason)
            self._apply_headers(response)
            if not self._should_not_send_content(response.status):
                self.write(response.body)
            finished = self._finish_response()
            if finished is not None:
                finished.add_done_callback(self._written)
            return
        if response.sleep:
            await asyncio.sleep(response.sleep)
        if response.callback is not None:
            produced = await self._run_callback(response, request)
            if produced is None:
                return
            response = produced
            self._fresh = True  # made for this request: the record keeps its answer only
            if response.sleep:
                await asyncio.sleep(response.sleep)
        if response.websocket is not None:
            await self._websocket(response, request)
            return
        if response.hold:
            await self._hold(response, request)
            return
        if response.fault is not None and response.fault != "close_after":
            await self._fault(response)
            return
        if response.violation is not None:
            await self._violate(response)
            return
        close_after = self._close_after = response.fault == "close_after"
        self._status(response)
        self.set_status(response.status, response.reason)
        self._apply_headers(response)
        if response.sends_chunked:
            await self._stream(response, request)
            return
        if close_after:
            self._hold_tail()
        if not self._should_not_send_content(response.status):
            body = response.wire_body()
            if response.rate is not None and body and self.request.method != "HEAD":
                self._headers["Content-Length"] = str(len(body))
                await self._send(body, response.rate)
            else:
                self.write(body)
        # not awaited (as Tornado's own handlers do): the write completes on
        # the loop, and the future never fails (a closed stream resolves it)
        finished = self._finish_response()
        if finished is not None:
            finished.add_done_callback(self._written)

    def _finish_response(self) -> asyncio.Future[None] | None:
        """Finish the response; `None` when the socket took every byte at once (noted done).

        Else the finish's future, after which the caller notes it.
        """
        finished = self.finish()
        conn = self._conn
        if self._close_after or conn is None or conn.stream.writing() or conn.stream.closed():
            return finished
        self._written()  # the usual case: no callback
        return None

    async def _hold(self, response: Response, request: Request) -> None:
        """Hold *response* until the test acts on its `Held`, then do what it says.

        ``hold=True``: nothing is written until a release (the held
        response, or the one given, served as a rule's would be) or a
        fault.  ``hold="body"``: the head goes out now; each ``send`` is
        one flushed chunk; a release writes the rest of the body and the
        last chunk.  A client that leaves ends the holding
        (`on_connection_close`).
        """
        conn = self._conn

        def gone() -> bool:
            return conn is None or peer_gone(conn.stream.socket)

        slot = self._slot = self.host.held.open(
            request, response.hold, response.events is not None, gone
        )
        slot.abort = self._abort
        try:
            if response.hold == "body":
                self._status(response)
                self.set_status(response.status, response.reason)
                self._apply_headers(response)
                self._close_delimited()
                await self.flush()  # the head alone, chunked framing from here on
                if response.encoding is not None:
                    self._compressor = Compressor(response.encoding)
            while (action := await slot.next()) is not None:
                if self._finished:  # closed at once by the test (_abort): nothing more to do
                    return
                kind, value = action
                if kind == "send":
                    piece = value.encode() if isinstance(value, Event) else value
                    self._keep_streamed(piece)
                    await self._send(self._compressed(piece), response.rate)
                elif kind == "fail":
                    stream = self._h2
                    if isinstance(value, ResetStream) and stream is not None:
                        self._note_fault(Response(fault=value))
                        self._finished = True  # whatever went out of the head and body
                        stream.reset(value.error_code)
                    else:
                        await self._fault(Response(fault=value))
                    return
                elif response.hold == "body":  # released: the rest of the body
                    await self._stream(response, request)
                    return
                else:  # released: served as if a rule had picked it
                    # (its sleep and callback have run: the held one is their result)
                    self._fresh = True
                    answer = (
                        dataclasses.replace(response, hold=False, sleep=0.0, callback=None)
                        if value is None
                        else value
                    )
                    await self._serve(answer, request)
                    return
            # the client has gone: nothing to write
        finally:
            self._slot = None
            slot.end()

    def _abort(self, fault: str) -> None:
        """Close the held connection now (``Held.fail``, a reset), whatever is being written."""
        if self._finished:
            return
        stream = self._h2
        if stream is not None:
            self._finished = True
            stream.fail(fault)
            return
        _faults.close(self.detach(), reset=fault == "reset", client=self._client_socket())

    def on_connection_close(self) -> None:
        """The client closed the connection: a held response is held no more."""
        super().on_connection_close()
        if self._slot is not None:
            self._slot.end()

    def _status(self, response: Response) -> None:
        """The exchange's status and response, noted before any byte of it is written.

        The loop thread is the only writer of an exchange's fields (see `._traffic`).
        """
        exchange = self._exchange
        if exchange is not None:
            exchange.response = response
            conn = self._conn
            if conn is None or not conn.stream.closed():  # else no status line can go out
                exchange.status = response.status

    def _hold_tail(self) -> None:
        """``close_after``: what is written from now on leaves with the close."""
        if self._close_after and self._conn is not None:
            self._conn.hold_tail()

    def _written(self, _: object = None) -> None:
        """The response was handed to the socket whole: the exchange is complete.

        Unless it was not: the client had gone before the status line (no
        status), or the writing failed (the stream closed with an error).
        """
        exchange = self._exchange
        conn = self._conn
        if exchange is not None:
            stream = None if conn is None else conn.stream
            lost = stream is not None and (
                exchange.status is None or (stream.closed() and stream.error is not None)
            )
            exchange.completed = not lost
            exchange.finished_at = time.time()
            if self._fresh:
                exchange.settle()
        if conn is not None and self._close_after:  # a stale keep-alive connection, on purpose
            conn.stream.close()

    def on_finish(self) -> None:
        """The response is all handed to the connection: between requests now.

        The bytes may still sit in its write buffer: `Host.close_idle` waits
        for that too.
        """
        conn = self._conn
        if conn is not None:
            conn.busy = False
            if self._sndbuf is not None and conn.stream.socket is not None:
                with contextlib.suppress(OSError):  # the kernel doubled it: give half
                    conn.stream.socket.setsockopt(
                        socket.SOL_SOCKET, socket.SO_SNDBUF, self._sndbuf // 2
                    )

    async def _stream(self, response: Response, request: Request) -> None:
        """Send the body chunked, one flushed chunk per item, consumed as it is sent.

        The items are the ``events`` (each encoded), the ``chunks``, or the
        body.  An item that is not an `Event` (bytes or str for chunks), or
        an iterator that raises, is an error of the test's: it is kept for
        `check()`, and the connection is dropped so that the client does not
        take half a body as whole.  An HTTP/1.0 client gets the body
        unframed, ended by closing the connection.
        """
        events = response.events is not None
        if events:
            items: Any = iter(response.events)  # type: ignore[arg-type]
        else:
            items = iter(response.chunks if response.chunks is not None else (response.body,))
        self._close_delimited()
        if response.encoding is not None and self._compressor is None:
            self._compressor = Compressor(response.encoding)
        number = 0
        while True:
            try:
                item = next(items, _END)
                if item is _END:
                    break
                if events:
                    data = check_event("Response", item).encode()
                else:
                    data = check_chunk("Response", item)
            except Exception as exc:
                self._keep_error(exc, request)
                self.detach().close()
                return
            if number and response.chunk_sleep:
                await asyncio.sleep(response.chunk_sleep)
            self._keep_streamed(data)
            await self._send(self._compressed(data), response.rate)
            number += 1
        if self._compressor is not None:
            self.write(self._compressor.end())
        self._hold_tail()  # the last chunk ("0") leaves with the FIN
        finished = self._finish_response()
        if finished is not None:
            await finished
            self._written()

    def _close_delimited(self) -> None:
        """An HTTP/1.0 client gets a streamed body unframed: it ends with the close.

        Tornado would answer a 1.0 ``Connection: keep-alive`` with
        ``Keep-Alive``, a promise the close breaks; its copy of the request
        headers is put right (the record keeps them as sent).
        """
        if self.request.version == "HTTP/1.0":
            self._close_after = True
            self.request.headers["Connection"] = "close"

    def _keep_streamed(self, data: bytes) -> None:
        """Keep what a stream sends, for the HAR log, up to its cap."""
        exchange = self._exchange
        if exchange is None:
            return
        kept = exchange.streamed or b""
        room = STREAM_CAP - len(kept)
        if len(data) > room:
            exchange.truncated = True
        exchange.streamed = kept + data[: max(room, 0)]

    def _compressed(self, data: bytes) -> bytes:
        """One piece of a streamed body, compressed if the response has an encoding."""
        compressor = self._compressor
        return data if compressor is None else compressor.chunk(data)

    async def _send(self, data: bytes, rate: float | None) -> None:
        """Write *data* and flush it; with *rate*, as a drip of small slices.

        A drip keeps its pace across the whole response: each slice waits
        until the bytes sent before it, at *rate* bytes per second, have had
        their time, so the first slice goes at once and the average is never
        faster than *rate*.  The socket's send buffer is kept small meanwhile,
        so the kernel holds little of what the loop has let go.
        """
        if self._finished:  # taken over meanwhile (Held.fail, a reset): nothing more goes
            raise iostream.StreamClosedError()
        if rate is None or self.request.method == "HEAD":  # no body to pace on a HEAD
            self.write(data)
            await self.flush()
            return
        loop = asyncio.get_running_loop()
        if self._pace is None:
            self._pace = [loop.time(), 0]
            self._small_send_buffer()
        size = max(1, min(_DRIP_MAX, int(rate / _DRIPS_PER_SECOND)))
        for start in range(0, len(data), size):
            due = self._pace[0] + self._pace[1] / rate
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._finished:
                raise iostream.StreamClosedError()
            piece = data[start : start + size]
            self.write(piece)
            await self.flush()
            self._pace[1] += len(piece)

    def _small_send_buffer(self) -> None:
        """Shrink the send buffer for a drip (`on_finish` puts it back).

        Not over HTTP/2: the socket carries every stream of the connection.
        """
        conn = self._conn
        sock = None if conn is None or self._h2 is not None else conn.stream.socket
        if sock is not None:
            with contextlib.suppress(OSError):
                self._sndbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _DRIP_BUFFER)

    def _keep_error(self, exc: BaseException, request: Request | None) -> str:
        """Keep *exc* (being handled) for `check()`; its traceback text."""
        text = traceback.format_exc()
        self.host.recorder.add_error(HandlerError(type(exc).__name__, str(exc), text, request, exc))
        return text

    async def _run_callback(self, response: Response, request: Request) -> Response | None:
        callback = response.callback
        assert callback is not None
        try:
            result: Any = callback(request)
            if inspect.isawaitable(result):
                result = await result
            if isinstance(result, Response):
                return result
            if isinstance(result, (bytes, str)):
                return Response(result)
            raise TypeError(
                f"response callback {getattr(callback, '__qualname__', callback)!r} "
                f"returned {result!r}; expected a Response, bytes or str"
            )
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) and _being_cancelled(self.host):
                raise  # stop(), or the loop's owner, ends a callback still awaiting
            # BaseException too: pytest.fail(), sys.exit() or a CancelledError
            # of its own in a callback must fail the test at check(), not end
            # the server's event loop or drop the connection unanswered.
            text = self._keep_error(exc, request)
            self._fresh = True
            plain = {"Content-Type": "text/plain; charset=utf-8"}
            failed = Response(f"tserver: the response callback raised\n\n{text}", 500, plain)
            self._status(failed)
            self.set_status(500)
            self._apply_headers(failed)
            await self.finish(failed.body)
            self._written()
            return None

    def _apply_headers(self, response: Response) -> None:
        if response.json is not UNSET:
            self._headers["Content-Type"] = "application/json"
        elif response.events is not None:
            self._headers["Content-Type"] = EVENT_STREAM
            self._headers["Cache-Control"] = "no-cache"
        if response.headers:
            for name in {name.lower() for name, _ in response.headers}:
                self.clear_header(name)
            for name, value in response.headers:
                if name.lower() != "transfer-encoding":  # Tornado frames chunked itself
                    self.add_header(name, value)
        if response.encoding is not None and "Content-Encoding" not in self._headers:
            self._headers["Content-Encoding"] = response.encoding
        for cookie in response.cookies:
            self.add_header("Set-Cookie", cookie.render())

    def _note_fault(self, response: Response) -> None:
        """Record *response* (a fault) as the answer, whether a status line goes out or not."""
        exchange = self._exchange
        if exchange is not None:
            exchange.response, exchange.finished_at = response, time.time()
            if self._fresh:
                exchange.settle()

    async def _fault(self, response: Response) -> None:
        fault = response.fault
        self._note_fault(response)
        stream = self._h2
        if stream is not None:  # faults as frames
            if isinstance(fault, Raw) or fault == "truncate":
                what = "Raw(...)" if isinstance(fault, Raw) else "fault='truncate'"
                self._h2_refuse(what, self._request)
            elif isinstance(fault, ResetStream):
                await self._reset_stream(stream, response, fault)
            elif isinstance(fault, GoAway):
                self._finished = True
                stream.go_away(fault.error_code, fault.last_stream_id)
            else:
                self._finished = True
                stream.fail(str(fault))
        elif isinstance(fault, (GoAway, ResetStream)):
            text = f"tserver: {fault!r} is an HTTP/2 fault; this request came over HTTP/1"
            self.host.recorder.add_error(HandlerError("HTTP2Only", text, text, self._request, None))
            _faults.close(self.detach(), reset=False, client=self._client_socket())
        elif isinstance(fault, Raw):
            await _faults.write_and_close(self.detach(), fault.data)
        elif fault == "truncate":
            self._status(response)  # a status line does go out
            self._apply_headers(response)
            data = _faults.truncated(
                response.status, response.reason, self._headers.get_all(), response.body
            )
            await _faults.write_and_close(self.detach(), data)
        else:
            _faults.close(self.detach(), reset=fault == "reset", client=self._client_socket())

    async def _reset_stream(self, stream: H2Stream, response: Response, fault: ResetStream) -> None:
        """``ResetStream``: the head (the whole body's length), *after* bytes, then the reset."""
        self._status(response)
        self.set_status(response.status, response.reason)
        self._apply_headers(response)
        body = response.wire_body()
        self._headers["Content-Length"] = str(len(body))
        if self.request.method != "HEAD":
            self.write(body[: fault.after])
        try:
            await self.flush()
        finally:
            self._finished = True
            stream.reset(fault.error_code)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Keep unexpected handler exceptions for `check()` instead of logging them."""
        if value is None or isinstance(value, web.HTTPError):
            return
        text = "".join(traceback.format_exception(type(value), value, tb))
        self.host.recorder.add_error(
            HandlerError(type(value).__name__, str(value), text, self._request, value)
        )


def _being_cancelled(host: Host) -> bool:
    """Whether the running task is being cancelled (not a callback raising CancelledError).

    Python 3.11 tells (`asyncio.Task.cancelling`); before, only a stopping
    host is known to cancel.
    """
    if host.closing:
        return True
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


def _no_log(handler: web.RequestHandler) -> None:
    """Access logging is off: the CLI prints its own lines."""


class _Application(web.Application):
    """Hands every request to `RecordingHandler` without walking a routing table.

    The table still holds the one wildcard rule (``.*``), which is what this
    does: the result is the same, minus two routers and a regex per request.
    """

    def __init__(self, handler_kwargs: dict[str, Any], **settings: Any) -> None:
        super().__init__([(r".*", RecordingHandler, handler_kwargs)], **settings)
        self._handler_kwargs = handler_kwargs

    def find_handler(
        self, request: httputil.HTTPServerRequest, **kwargs: Any
    ) -> web._HandlerDelegate:
        """The delegate that runs `RecordingHandler` for *request*."""
        return self.get_handler_delegate(request, RecordingHandler, self._handler_kwargs)


#: ``proxy_auth=``: the answer to a proxied request without the credentials.
_PROXY_AUTH_REQUIRED = Response(
    b"tserver: proxy authentication required\n",
    status=407,
    headers={"Proxy-Authenticate": 'Basic realm="tserver"', "Content-Type": "text/plain"},
)
#: A ``CONNECT`` whose target is no ``host:port``.
_BAD_CONNECT = Response(
    b"tserver: CONNECT needs a target host:port (such as api.example.test:443)\n",
    status=400,
    headers={"Content-Type": "text/plain"},
)


def _proxy_authorized(header: str, auth: tuple[str, str]) -> bool:
    """Whether *header* (``Proxy-Authorization``) holds the Basic credentials *auth*."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(token.strip(), validate=True)
    except ValueError:
        return False
    expected = f"{auth[0]}:{auth[1]}".encode()
    return b":" in given and hmac.compare_digest(given, expected)


def _tunnel_target(target: str) -> bool:
    """Whether a ``CONNECT`` target is ``host:port`` (a name or an address, a port in range)."""
    name, port = split_authority(target)
    return bool(name) and port is not None and port.isdigit() and 0 < int(port) < 65536


def make_app(host: Host) -> web.Application:
    """A Tornado application that routes every request of *host* to `RecordingHandler`."""
    return _Application({"host": host}, log_function=_no_log, compress_response=False)
