"""Serving HTTP/2 (SPEC §14): h2's state machine on a connection's Tornado stream.

The protocol is python-hyper's h2 (sans-I/O, the ``tserver[http2]``
extra): it parses and frames, checks the rules of RFC 9113 and keeps the
flow-control windows, while this module does the I/O on Tornado's stream.
An `H2Session` owns one connection: a reader that feeds h2 what the
client sends, and a pump that hands h2 each stream's pending body as the
windows allow.

Each request stream is served by the same `~tserver._handler.RecordingHandler`
as an HTTP/1 request, through an `H2Stream`: a Tornado
`~tornado.httputil.HTTPConnection` (what a handler writes its answer to)
that is also the stream the host knows the request by.  So the recorder,
rules, callbacks, holds and streamed bodies work unchanged.

Flow control, both ways:

- in: a DATA frame is acknowledged (``acknowledge_received_data``) once
  the handler has taken it, so a handler that reads slowly slows its own
  client alone;
- out: a stream's body waits in its own queue until its window (and the
  connection's) has room; the pump goes round the streams one frame at a
  time, so a held, slow or blocked stream never stops the others.

Output header rules: names go out lowercase; the connection-specific
fields HTTP/2 forbids (`CONNECTION_SPECIFIC`) are dropped from an answer;
HTTP/2 has no reason phrase.  Input: the pseudo-header fields stay in the
record's raw field list (in arrival order); ``Host`` comes from
``:authority`` when the client sent no ``Host``; ``cookie`` fields split
across several header fields are joined with ``"; "`` (RFC 9113 §8.2.3).

Not served: the ``Upgrade: h2c`` dance (HTTP/1.1 goes on), server push
(never sent), ``CONNECT`` over HTTP/2 (the stream is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import ssl
from collections import deque
from typing import TYPE_CHECKING, Any

from tornado import httputil
from tornado.iostream import StreamClosedError

from ._head import normalize_name

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

    from tornado.iostream import IOStream

    from ._host import Conn

__all__ = [
    "CONNECTION_SPECIFIC",
    "H2_EXTRA_HINT",
    "INTERNAL_ERROR",
    "NO_ERROR",
    "PREFACE",
    "H2Session",
    "H2Stream",
    "request_fields",
]

#: What a client speaking HTTP/2 by prior knowledge sends first (RFC 9113 §3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: How to install what HTTP/2 needs.
H2_EXTRA_HINT = "pip install 'tserver[http2]'"
#: Fields about one HTTP/1 connection, which HTTP/2 forbids (RFC 9113 §8.2.2):
#: dropped from an answer.
CONNECTION_SPECIFIC = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)
_READ_CHUNK = 1 << 16
#: The connection's receive window (the streams' own stay at the initial 64
#: KiB): a stream whose handler reads slowly (``read_rate=``, a held body)
#: holds back its own window only, never the other streams' uploads.
_CONNECTION_WINDOW = 1 << 30
#: Seconds a connection that got our ``GOAWAY`` stays half-open for the client to close it.
_LINGER_SECONDS = 1.0
#: RFC 9113 §7 error codes used here.
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, REFUSED_STREAM, CANCEL = 0x0, 0x1, 0x2, 0x7, 0x8


def _mod() -> Any:
    """h2, or `ImportError` saying which extra to install."""
    try:
        import h2.config
        import h2.connection
        import h2.events
        import h2.exceptions
    except ImportError as exc:  # pragma: no cover - checked by the constructor
        raise ImportError(f"http2=True needs the 'h2' package: {H2_EXTRA_HINT}") from exc
    return h2


def request_fields(fields: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The header fields of an HTTP/2 request as `~tserver.Request.headers` holds them.

    *fields* is the decoded list as received (pseudo-headers included).
    The pseudo-headers are left out and names take the case HTTP/1
    requests get (``Content-Type``); the rest keeps arrival order (SPEC
    §9.2).  The ``cookie`` fields are joined into one ``Cookie`` where the
    first came (RFC 9113 §8.2.3), and without a ``host`` field ``Host``
    comes first, from ``:authority``.
    """
    authority = None
    cookies: list[str] = []
    regular: list[tuple[str, str]] = []
    cookie_at = -1
    has_host = False
    for name, value in fields:
        if name[:1] == ":":
            if name == ":authority":
                authority = value
        elif name == "cookie":
            if not cookies:
                cookie_at = len(regular)
                regular.append(("Cookie", ""))  # filled in below
            cookies.append(value)
        else:
            has_host = has_host or name == "host"
            regular.append((normalize_name(name), value))
    if cookies:
        regular[cookie_at] = ("Cookie", "; ".join(cookies))
    if not has_host and authority is not None:
        regular.insert(0, ("Host", authority))
    return tuple(regular)


def _done(future: asyncio.Future[None], error: BaseException | None = None) -> None:
    """Settle *future* unless it is settled; an error is marked as seen (nobody may await it)."""
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
        future.exception()


class _Context:
    """What Tornado's `~tornado.httputil.HTTPServerRequest` reads of a connection."""

    __slots__ = ("address", "protocol", "remote_ip")

    def __init__(self, address: Any, protocol: str) -> None:
        self.address = address
        self.protocol = protocol
        ip = address[0] if isinstance(address, tuple) and address else "0.0.0.0"
        self.remote_ip = str(ip)


class H2Stream(httputil.HTTPConnection):
    """One request stream: the connection a handler answers on, and the stream it is known by.

    As the handler's connection it takes the head (`write_headers`), the
    body (`write`) and the end (`finish`); as the host's stream it answers
    the few questions a handler asks of one (`closed`, `writing`,
    ``socket``, `close`).  `close` resets the stream while its answer is
    unfinished, and closes the whole connection after (a
    ``fault="close_after"``).
    """

    def __init__(self, session: H2Session, stream_id: int) -> None:
        self.session = session
        self.stream_id = stream_id
        self.context = session.context
        self.stream = self  # what the host finds the request's connection by
        self.socket: socket.socket | None = session.stream.socket
        self.error: BaseException | None = None
        self.conn: Conn | None = None  # the host's record of this stream, set by the host
        self.inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.pending: deque[tuple[memoryview, asyncio.Future[None] | None]] = deque()
        self.end_pending = False  # finish() was called: END_STREAM after the queue
        self.ended = False  # END_STREAM went out: the answer is whole
        self.received_all = False  # the client's END_STREAM came
        self.gone = False  # reset (either side), or the connection ended
        self.body_size = 0
        self._close_callback: Callable[[], None] | None = None

    # -- the handler's connection ----------------------------------------------

    def write_headers(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
        chunk: bytes | None = None,
    ) -> asyncio.Future[None]:
        """Send the answer's HEADERS frame (lowercase names, no connection-specific ones)."""
        assert isinstance(start_line, httputil.ResponseStartLine)
        fields = [(b":status", str(start_line.code).encode("ascii"))]
        for name, value in headers.get_all():
            lower = name.lower()
            if lower not in CONNECTION_SPECIFIC:
                fields.append((lower.encode("latin-1"), value.encode("latin-1")))
        if self.gone:
            return self._lost_future()
        try:
            self.session.h2.send_headers(self.stream_id, fields)
        except Exception as exc:  # a field h2 refuses (RFC 9113 §8.2)
            self.error = exc
            self.session.report(
                f"tserver: HTTP/2 refused the answer's header fields, and the stream "
                f"was reset: {exc}"
            )
            self.reset(INTERNAL_ERROR)
            return self._lost_future()
        if chunk:
            return self.write(chunk)
        future = self._future()
        self.session.flush_out([future])
        return future

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        """Queue *chunk* of the body; the future settles once it is handed to the socket."""
        if self.gone:
            return self._lost_future()
        future = self._future()
        if chunk:
            self.pending.append((memoryview(chunk), future))
            self.session.pump(self)
        else:
            _done(future)
        return future

    def finish(self) -> None:
        """The answer is complete: END_STREAM once the queued body is out."""
        self._close_callback = None
        self.end_pending = True
        if not self.gone:
            self.session.pump(self)

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        """Call *callback* if the stream is reset (or the connection ends) before the end."""
        self._close_callback = callback

    def detach(self) -> H2Stream:
        """What a handler takes over: this stream (its `close` resets it)."""
        return self

    # -- the host's stream -------------------------------------------------------

    def closed(self) -> bool:
        """Whether the stream is reset or its connection ended."""
        return self.gone or self.session.stream.closed()

    def writing(self) -> bool:
        """Whether part of the answer still waits: in this stream's queue, or the socket's."""
        if self.pending or (self.end_pending and not self.ended) or self.session.flushing:
            return True
        return self.session.stream.writing()

    def close(self) -> None:
        """Reset an unfinished answer (``CANCEL``); after a whole one, close the connection."""
        if self.ended:
            self.session.goaway(NO_ERROR)
        else:
            self.reset(CANCEL)

    def set_nodelay(self, value: bool) -> None:
        """The socket is the connection's: nothing to do per stream."""

    # -- faults --------------------------------------------------------------------

    def fail(self, fault: str) -> None:
        """A fault as frames: ``"reset"`` or ``"close"``.

        ``"reset"`` resets this stream (``INTERNAL_ERROR``), the others go
        on; ``"close"`` sends ``GOAWAY`` and closes the connection.
        """
        if fault == "reset":
            self.reset(INTERNAL_ERROR)
        else:
            self.lost()
            self.session.goaway(NO_ERROR)

    def go_away(self, code: int, last_stream_id: int | None) -> None:
        """``GOAWAY`` with *code* and *last_stream_id* (default: the stream before this one)."""
        if last_stream_id is None:
            last_stream_id = max(0, self.stream_id - 2)
        self.lost()
        self.session.goaway(code, last_stream_id)

    def reset(self, code: int = CANCEL) -> None:
        """Send ``RST_STREAM`` with *code*; the other streams go on."""
        if self.gone:
            return
        with contextlib.suppress(Exception):  # h2 knows the stream closed already
            self.session.h2.reset_stream(self.stream_id, error_code=code)
        self.lost()
        self.session.flush_out()

    def lost(self) -> None:
        """The stream ended unfinished (reset either way, or the connection closed)."""
        if self.gone:
            return
        self.gone = True
        error = StreamClosedError()
        if not self.ended and self.error is None:  # the answer did not go out whole
            self.error = error
        while self.pending:
            future = self.pending.popleft()[1]
            if future is not None:
                _done(future, error)
        self.inbox.put_nowait(("gone",))
        callback, self._close_callback = self._close_callback, None
        if callback is not None:
            callback()
        self.session.forget(self)

    def _future(self) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()

    def _lost_future(self) -> asyncio.Future[None]:
        future = self._future()
        _done(future, StreamClosedError())
        return future

    # -- feeding the handler ---------------------------------------------------

    async def feed(
        self,
        delegate: httputil.HTTPMessageDelegate,
        start_line: httputil.RequestStartLine,
        headers: httputil.HTTPHeaders,
        max_body_size: int,
    ) -> None:
        """Hand the request to *delegate* piece by piece, acknowledging what it takes."""
        try:
            await _settle(delegate.headers_received(start_line, headers))
            while True:
                item = await self.inbox.get()
                kind = "gone" if self.gone else item[0]  # an end queued before it went
                if kind == "data":
                    data, flow = item[1], item[2]
                    self.body_size += len(data)
                    if self.body_size > max_body_size:  # no declared length: found out now
                        self.reset(REFUSED_STREAM)
                        delegate.on_connection_close()
                        return
                    if data:
                        await _settle(delegate.data_received(data))
                    if self.gone:  # reset, or the connection ended, while it was taken
                        delegate.on_connection_close()
                        return
                    self.session.acknowledge(self.stream_id, flow)
                elif kind == "end":
                    self.received_all = True
                    delegate.finish()
                    self.session.forget(self)
                    return
                else:  # gone
                    delegate.on_connection_close()
                    return
        except httputil.HTTPInputError:  # a head Tornado refuses (a bad Host)
            self.reset(PROTOCOL_ERROR)
        except StreamClosedError:
            self.reset(CANCEL)


async def _settle(result: Any) -> None:
    """Await what a delegate's method returned, if anything."""
    if result is not None and inspect.isawaitable(result):
        await result


class H2Session:
    """One HTTP/2 connection: the reader, the pump, and the streams in progress.

    :param stream: the connection's stream (TLS done, or the preface
        peeked at, not read).
    :param conn: the host's record of the connection.
    :param start: the delegate for a new request stream (the host's
        application's ``start_request``).
    :param opened: the host's record of a new request stream.
    :param closed: called once the connection has ended.
    :param report: keeps an error of the test's for ``check()`` (its text).
    """

    def __init__(
        self,
        stream: IOStream,
        conn: Conn,
        *,
        start: Callable[[H2Stream], httputil.HTTPMessageDelegate],
        opened: Callable[[H2Stream], Conn],
        closed: Callable[[], None],
        report: Callable[[str], None],
        track: Callable[[asyncio.Task[Any]], None],
        max_body_size: int,
        protocol: str,
    ) -> None:
        h2 = self._h2 = _mod()
        self.stream = stream
        self.conn = conn
        self.context = _Context(conn.address, protocol)
        self.h2: Any = h2.connection.H2Connection(
            config=h2.config.H2Configuration(
                client_side=False, header_encoding=None, normalize_inbound_headers=False
            )
        )
        self.streams: dict[int, H2Stream] = {}
        #: Our ``GOAWAY`` is sent or on its way: what the client sends now is dropped.
        self.going_away = False
        self.lingering = False  # half-closed after it (`linger`)
        self._sending: dict[H2Stream, None] = {}  # streams with body or an end to send, in turn
        self._settling: list[asyncio.Future[None]] = []  # settled by the next write
        self.flushing = False  # a write is planned for the loop's next turn
        self._start = start
        self._opened = opened
        self._closed = closed
        self.report = report
        self._track = track
        self._max_body_size = max_body_size

    # -- reading -------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it ends."""
        h2 = self._h2
        try:
            # small frames (WINDOW_UPDATE, a stream's HEADERS) must not wait for Nagle
            self.stream.set_nodelay(True)
            self.h2.initiate_connection()
            self.h2.increment_flow_control_window(
                _CONNECTION_WINDOW - self.h2.inbound_flow_control_window
            )
            self.flush_out()
            while not self.stream.closed():
                data = await self.stream.read_bytes(_READ_CHUNK, partial=True)
                if self.going_away:  # after our GOAWAY: read to the client's end, unheard
                    continue
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError as exc:  # h2 queued its GOAWAY: send, close
                    # the client's bug, kept where a failed TLS handshake is (SPEC §9.1)
                    self.conn.record.error = f"HTTP/2 protocol error: {exc or type(exc).__name__}"
                    self.goaway(None)
                    continue
                for event in events:
                    self._on(event)
                self.pump()
        except StreamClosedError:
            pass
        finally:
            for item in list(self.streams.values()):
                item.lost()
            self.conn.busy = False
            if self.stream.closed():
                self._closed()
            else:  # a GOAWAY on its way: noted once it has gone
                self.stream.set_close_callback(self._closed)

    def _on(self, event: Any) -> None:
        events = self._h2.events
        if isinstance(event, events.RequestReceived):
            self._request(event.stream_id, event.headers)
        elif isinstance(event, events.DataReceived):
            item = self.streams.get(event.stream_id)
            if item is None or item.gone:
                self.acknowledge(event.stream_id, event.flow_controlled_length)
                return
            conn = item.conn
            if conn is not None and event.data:
                if conn.chunks is None:
                    conn.chunks = []
                conn.chunks.append(len(event.data))
            item.inbox.put_nowait(("data", event.data, event.flow_controlled_length))
        elif isinstance(event, events.StreamEnded):
            item = self.streams.get(event.stream_id)
            if item is not None:
                item.inbox.put_nowait(("end",))
        elif isinstance(event, events.StreamReset):
            item = self.streams.get(event.stream_id)
            if item is not None:
                item.lost()
        elif isinstance(event, events.ConnectionTerminated):
            # h2 takes no frame to send after the client's GOAWAY: the streams
            # in progress end here, unanswered
            self.stream.close()

    def _request(self, stream_id: int, raw: list[tuple[bytes, bytes]]) -> None:
        """A new request stream: its head, then a task that feeds the handler."""
        fields = tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)
        pseudo = {name: value for name, value in fields if name[:1] == ":"}
        method, target = pseudo.get(":method", ""), pseudo.get(":path")
        item = H2Stream(self, stream_id)
        self.streams[stream_id] = item
        self.conn.busy = True
        if not target or method == "CONNECT":  # CONNECT (no :path) is not served over HTTP/2
            item.reset(REFUSED_STREAM)
            return
        headers = httputil.HTTPHeaders()
        for name, value in request_fields(fields):
            headers.add(name, value)
        conn = item.conn = self._opened(item)
        conn.busy = True
        conn.target = target
        conn.fields = fields
        path = target.partition("?")[0]  # tserver parses the query itself (see _KeepTarget)
        start_line = httputil.RequestStartLine(method, path, "HTTP/2")
        delegate = self._start(item)
        task = asyncio.ensure_future(item.feed(delegate, start_line, headers, self._max_body_size))
        self._track(task)

    def acknowledge(self, stream_id: int, size: int) -> None:
        """The handler took *size* bytes of flow-controlled data: the client may send more."""
        if size and not self.stream.closed():
            with contextlib.suppress(Exception):  # the connection is closing
                self.h2.acknowledge_received_data(size, stream_id)
            self.flush_out()

    def forget(self, item: H2Stream) -> None:
        """Drop *item* once both sides are done with it (or it was reset)."""
        if not (item.gone or (item.ended and item.received_all)):
            return
        if self.streams.get(item.stream_id) is item:
            del self.streams[item.stream_id]
        self._sending.pop(item, None)
        if item.conn is not None:
            item.conn.busy = False
        self.conn.busy = bool(self.streams)

    # -- writing ---------------------------------------------------------------------

    def pump(self, item: H2Stream | None = None) -> None:
        """Frame what the windows allow, one frame per stream in turn, and write it."""
        if item is not None:
            self._sending[item] = None
        h2 = self.h2
        written: list[asyncio.Future[None]] = []
        moved = True
        while moved and self._sending:
            moved = False
            for each in list(self._sending):
                if each.gone:
                    self._sending.pop(each, None)
                    continue
                if each.pending:
                    room = min(
                        h2.local_flow_control_window(each.stream_id), h2.max_outbound_frame_size
                    )
                    if room <= 0:
                        continue  # waits for a WINDOW_UPDATE; the others go on
                    view, future = each.pending[0]
                    piece = view[:room]
                    h2.send_data(each.stream_id, piece.tobytes())
                    if len(piece) == len(view):
                        each.pending.popleft()
                        if future is not None:
                            written.append(future)
                    else:
                        each.pending[0] = (view[len(piece) :], future)
                    moved = True
                elif each.end_pending and not each.ended:
                    h2.end_stream(each.stream_id)
                    each.ended = True
                    self._sending.pop(each, None)
                    if not each.received_all:  # answered before the body: it is not needed
                        with contextlib.suppress(Exception):
                            h2.reset_stream(each.stream_id, error_code=NO_ERROR)
                        each.gone = True
                        each.inbox.put_nowait(("gone",))
                    self.forget(each)
                    moved = True
                else:
                    self._sending.pop(each, None)
        self.flush_out(written)

    def flush_out(self, futures: list[asyncio.Future[None]] | None = None) -> None:
        """Write what h2 has framed, soon; settle *futures* once the socket has it.

        The write waits for the loop's next turn, so that the frames of the
        streams answered in one turn leave in one write.
        """
        if futures:
            self._settling.extend(futures)
        if not self.flushing:
            self.flushing = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.flushing = False
        futures, self._settling = self._settling, []
        data = self.h2.data_to_send()
        if not data or self.stream.closed():
            error = StreamClosedError() if self.stream.closed() else None
            for future in futures:
                _done(future, error)
            return
        try:
            sent = self.stream.write(data)
        except StreamClosedError as exc:
            for future in futures:
                _done(future, exc)
            return
        if futures:

            def settle(done: asyncio.Future[None]) -> None:
                error = done.exception()
                for future in futures:
                    _done(future, error)

            sent.add_done_callback(settle)
        else:
            sent.add_done_callback(_seen)

    def goaway(self, code: int | None, last_stream_id: int | None = None) -> None:
        """Send ``GOAWAY`` with *code*, then close the connection.

        *code* `None` sends none of ours: h2 has queued one (the client broke
        the protocol); what is queued goes first.
        """
        if self.stream.closed() or self.going_away:
            return
        self.going_away = True
        if code is not None:
            with contextlib.suppress(Exception):
                self.h2.close_connection(error_code=code, last_stream_id=last_stream_id)
        for item in list(self.streams.values()):  # h2 sends nothing more on any of them
            item.lost()
        data = self.h2.data_to_send()
        if not data:
            self.linger()
            return
        try:
            sent = self.stream.write(data)
        except StreamClosedError:
            return

        def close(done: asyncio.Future[None]) -> None:
            _seen(done)
            self.linger()

        sent.add_done_callback(close)

    def linger(self) -> None:
        """Half-close after our ``GOAWAY``; close once the client has, or after a while.

        Closing at once, with bytes of the client's unread, would reset the
        connection, and a reset can destroy the ``GOAWAY`` still waiting in
        the client's receive queue.  So: no more bytes from us (FIN), the
        client's read and dropped until its own end (`run`), closed then or
        after `_LINGER_SECONDS`.
        """
        if self.stream.closed() or self.lingering:
            return
        self.lingering = True
        sock = self.stream.socket
        with contextlib.suppress(OSError):
            if isinstance(sock, ssl.SSLSocket):  # the raw socket under TLS: no more records
                socket.socket.shutdown(sock, socket.SHUT_WR)
            else:
                sock.shutdown(socket.SHUT_WR)
        asyncio.get_running_loop().call_later(_LINGER_SECONDS, self.stream.close)


def _seen(future: asyncio.Future[None]) -> None:
    """Mark a write's outcome as seen (a closed stream is no error here)."""
    if not future.cancelled():
        future.exception()
