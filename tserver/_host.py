"""The loop side of a server: one `Host`, whatever the mode.

Every mode runs exactly this: the thread backend on a loop of its own
thread, the inline backend on the caller's loop, the child process of
subprocess mode on the child's loop.  The backends differ only in how a
command reaches the host (a direct call, or a frame on a socketpair).

A `Host` owns:

- the `Recorder` (configuration and records);
- the Tornado server, built here once for every mode (`HostServer`): it
  accepts connections itself (backing off quietly when the process runs out
  of file descriptors), does the TLS handshake itself (a failed one is
  recorded, never logged), and watches what each connection's stream reads,
  so that every request keeps its head as received;
- the handler tasks of its requests, which shutdown cancels;
- shutdown (`close_now`, `shutdown`).

Threads: `apply` may be called from any thread (they
touch only the recorder, under its lock); everything else runs on the loop
thread.  The loop-side state (open connections, tasks) has no lock because
only the loop thread touches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import socket
import ssl
import threading
from typing import TYPE_CHECKING, Any, TypeVar, cast

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, SSLIOStream, StreamClosedError

from ._commands import (
    ActOnHeld,
    CloseConnections,
    GetConnections,
    GetHeld,
    HandlerError,
    PushMessage,
    Reset,
)
from ._errors import ServerStateError
from ._h2serve import NO_ERROR, PREFACE, H2Session, H2Stream
from ._handler import make_app
from ._head import absolute_target
from ._holding import HeldBook
from ._records import TLSInfo
from ._request import split_authority
from ._tls import offer_h2, record_sni, sni_of
from ._waiting import Pending

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from tornado.web import Application

    from ._backend import ServeConfig
    from ._commands import Command
    from ._recorder import Recorder
    from ._traffic import ConnRecord
    from ._wsserve import Session

__all__ = ["Host", "HostServer", "raise_fd_limit"]

R = TypeVar("R")

#: How a connection about to speak HTTP is known: its record, and a tunnel's
#: ``host:port``, client stream and relay pipes (`Conn`'s last arguments).
Arrival = tuple["ConnRecord", "str | None", "IOStream | None", "tuple[Pipe, ...]"]

#: Errors of ``accept()`` that mean "out of descriptors or memory": back off.
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: The first and the longest pause of accepting after such an error (seconds).
_BACKOFF_FIRST, _BACKOFF_MAX = 0.01, 0.5
#: Connections accepted per readiness event, as Tornado does (starvation).
_ACCEPT_BATCH = 128
#: How long a call hopped onto the loop (closing connections) may take.
_LOOP_CALL_TIMEOUT = 10.0
#: ``http2=True`` on a plain port: the pause between two peeks at a
#: connection whose first bytes are the start of the HTTP/2 preface and no
#: more (its sender split it), and how many such pauses before HTTP/1 serves it.
_SNIFF_PAUSE, _SNIFF_TRIES = 0.005, 200


def raise_fd_limit() -> None:
    """Raise the soft limit of open files to the hard limit, where allowed.

    A test server may hold thousands of idle connections (a client's pool,
    a load test); the common soft limit of 1,024 is far below what the
    process may have.
    """
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = max(soft, 1 << 20)
        if soft != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):  # not allowed here: keep what we have
        pass


class Conn:
    """What the host knows of one open connection (loop thread only).

    ``head`` is the request head the stream read last: HTTP/1 reads one
    request at a time per connection, so it is the head of the request
    being handled; ``chunks`` the chunk sizes its body was framed in
    (`None` unless the body came chunked), and ``target`` its request
    target in origin form (``/v1?x=1``).  ``absolute`` is the authority and
    the target as sent when the target came in absolute form
    (``GET http://api.example.test/v1``, as to a proxy), else `None`.
    ``busy``: a request is read or answered now (`Host.close_idle` leaves
    it open).  ``record`` is what the recorder keeps of the connection.
    ``fields`` is the decoded header list of an HTTP/2 request (pseudo-header
    fields first), whose ``stream`` is its `~tserver._h2serve.H2Stream`;
    `None` over HTTP/1.  ``h2`` is the `~tserver._h2serve.H2Session` of a
    connection that speaks HTTP/2 (`None` for its streams and over HTTP/1).

    A connection that carries a ``CONNECT`` tunnel has two streams: the
    client's (``outer``) and the end of a socket pair that the host serves
    as if it were the client's (``stream``); ``tunnel`` is the tunnel's
    ``host:port``; ``pipes`` the two directions of the relay between them.
    The faults that act on the TCP connection itself (a reset, holding the
    tail until the close) act on ``outer``.
    """

    __slots__ = (
        "absolute",
        "address",
        "busy",
        "chunks",
        "fields",
        "h2",
        "head",
        "outer",
        "pipes",
        "record",
        "stream",
        "target",
        "tunnel",
    )

    def __init__(
        self,
        stream: IOStream,
        address: Any,
        record: ConnRecord,
        tunnel: str | None = None,
        outer: IOStream | None = None,
        pipes: tuple[Pipe, ...] = (),
    ) -> None:
        self.stream = stream
        self.address = address
        self.record = record
        self.head = b""
        self.target = ""
        self.absolute: tuple[str, str] | None = None
        self.chunks: list[int] | None = None
        self.fields: tuple[tuple[str, str], ...] | None = None
        self.h2: H2Session | None = None
        self.busy = False
        self.tunnel = tunnel
        self.outer = outer
        self.pipes = pipes

    @property
    def client_socket(self) -> socket.socket | None:
        """The socket of the TCP connection to the client (``outer`` for a tunnel)."""
        return (self.outer or self.stream).socket

    def hold_tail(self) -> None:
        """Keep what is written from now on in the kernel until the close (``TCP_CORK``).

        For ``fault="close_after"``: the FIN then leaves with the response's
        last bytes, so a client that has read the whole response finds the
        connection closed, always; it can never send its next request into
        the moment between the two.  Tornado's ``set_nodelay(True)`` at the
        end of a response would flush the held bytes: it is ignored on this
        stream from now on.  Without ``TCP_CORK`` (not Linux) the close
        follows the response as soon as the loop gets to it: a race.
        """
        cork = getattr(socket, "TCP_CORK", None)
        sock = self.client_socket
        if cork is None or sock is None:
            return
        try:
            sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
        except OSError:  # already gone: the close is all there is
            return
        # replaced on this stream alone: other connections pay nothing for it
        self.stream.set_nodelay = _keep_nagle  # type: ignore[method-assign]


class _KeepTarget(httputil.HTTPMessageDelegate):
    """Hands Tornado a request line without its query, keeping the target for us.

    Tornado parses the query of every request into ``arguments`` (and
    refuses more than 1,000 of them with an empty ``400``); tserver parses
    the query itself, from the target as sent, and needs neither.
    """

    __slots__ = ("conn", "delegate")

    def __init__(self, delegate: httputil.HTTPMessageDelegate, conn: Conn) -> None:
        self.delegate = delegate
        self.conn = conn

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        """Keep the target; give Tornado its path alone."""
        if isinstance(start_line, httputil.RequestStartLine):
            conn = self.conn
            target = start_line.path
            conn.busy = True
            absolute = None if target[:1] == "/" else absolute_target(target)
            if absolute is not None:  # GET http://host/path: as to a proxy
                conn.absolute = (absolute[0], target)
                target = absolute[1]
            else:
                conn.absolute = None
            conn.target = target
            if "?" in target or absolute is not None:
                path = target.partition("?")[0]
                start_line = httputil.RequestStartLine(start_line.method, path, start_line.version)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        """Forward a piece of the body."""
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        """Forward the end of the request."""
        self.delegate.finish()

    def on_connection_close(self) -> None:
        """Forward a connection closed before the request ended."""
        self.delegate.on_connection_close()


class HostServer(HTTPServer):
    """The Tornado server of a `Host`: Tornado's HTTP/1, tserver's accepting and TLS.

    Built by `Host` alone, so that every mode serves through the same code.
    Tornado's one-hour idle timer on each request's headers is off: a test
    server closes its connections at ``stop()`` and needs none (the timer
    and its chained future cost a seventh of a small request's CPU).
    """

    host: Host

    def initialize(self, host: Host, app: Application) -> None:  # type: ignore[override]
        """Tornado's `~tornado.util.Configurable` constructor: serve *app* for *host*."""
        super().initialize(app, max_body_size=host.config.max_body_size)
        self.conn_params.header_timeout = None
        self.host = host
        self._io_loop: IOLoop | None = None
        self._listening: dict[int, socket.socket] = {}
        self._backoff = 0.0

    # -- accepting ------------------------------------------------------------

    def add_sockets(self, sockets: Any) -> None:
        """Accept connections on *sockets* (listening, non-blocking) from now on."""
        self.host.bind_loop()
        io_loop = self._io_loop = IOLoop.current()
        for sock in sockets:
            self._listening[sock.fileno()] = sock
            io_loop.add_handler(sock, self._on_acceptable, IOLoop.READ)

    def stop(self) -> None:
        """Stop accepting and close the listening sockets (idempotent)."""
        listening, self._listening = self._listening, {}
        for sock in listening.values():
            if self._io_loop is not None:
                with contextlib.suppress(KeyError, ValueError, RuntimeError):  # a closed loop
                    self._io_loop.remove_handler(sock)
            sock.close()

    def _on_acceptable(self, sock: socket.socket, events: int) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _EXHAUSTED:
                    raise
                self._pause(sock)
                return
            self._backoff = 0.0
            self.host.accepted(connection, address)

    def _pause(self, sock: socket.socket) -> None:
        """Out of descriptors: stop watching *sock* for a while, quietly.

        The pending connection stays in the kernel's backlog and is accepted
        once descriptors are free again; meanwhile the loop serves everyone
        else instead of spinning on a socket that is always ready.
        """
        self._backoff = min(_BACKOFF_MAX, max(_BACKOFF_FIRST, self._backoff * 2))
        io_loop = self._io_loop
        assert io_loop is not None  # accepting: add_sockets ran
        io_loop.remove_handler(sock)

        def resume() -> None:
            if self._listening.get(sock.fileno()) is sock:
                io_loop.add_handler(sock, self._on_acceptable, IOLoop.READ)

        io_loop.call_later(self._backoff, resume)

    # -- streams ---------------------------------------------------------------

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        """Serve HTTP on *stream*, watching what it reads: each head, each chunk size.

        Tornado reads a request head with one ``read_until_regex`` and each
        chunk-size line of a chunked body with one ``read_until``: the host
        keeps what they return, and parses nothing Tornado has not accepted.
        """
        conn = self.host.opened(stream, address)
        read_until_regex = stream.read_until_regex
        read_until = stream.read_until

        async def read_head(regex: bytes, max_bytes: int | None = None) -> bytes:
            head = await read_until_regex(regex, max_bytes=max_bytes)
            conn.head = head
            conn.chunks = None
            return head

        async def read_chunk_line(delimiter: bytes, max_bytes: int | None = None) -> bytes:
            line = await read_until(delimiter, max_bytes=max_bytes)
            chunks = conn.chunks
            if chunks is None:  # the first chunk of this body
                chunks = conn.chunks = []
            size = _chunk_size(line)
            if size:  # not the last chunk
                chunks.append(size)
            return line

        stream.read_until_regex = read_head  # type: ignore[method-assign]
        stream.read_until = read_chunk_line  # type: ignore[method-assign]
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        """Tornado is done with a connection: it closed, or a handler took it over."""
        super().on_close(server_conn)
        stream = getattr(server_conn, "stream", None)
        conn = self.host.conn_of(stream)
        if conn is None:
            return
        if conn.stream.closed():
            self.host.closed(conn)
        else:  # detached (a fault writes on it): closed when the fault is done
            conn.stream.set_close_callback(lambda: self.host.closed(conn))

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        """Tornado's delegate for the next request, keeping its target for us."""
        delegate = super().start_request(server_conn, request_conn)
        conn = self.host.conn_of(getattr(server_conn, "stream", None))
        return delegate if conn is None else _KeepTarget(delegate, conn)


class Host:
    """One server's loop side: recorder, Tornado server, tasks, waits and shutdown."""

    def __init__(
        self,
        recorder: Recorder,
        config: ServeConfig,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.recorder = recorder
        self.config = config
        self.ssl_context = ssl_context
        if ssl_context is not None:
            record_sni(ssl_context)
            if config.http2:
                offer_h2(ssl_context)
        self.server: HostServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread: int | None = None
        #: What shutdown could not end in time (tasks that ignored cancelling).
        self.abandoned: list[str] = []
        #: Set by `close_now`: a task cancelled from now on is being shut down.
        self.closing = False
        #: The responses held now (``Response(hold=...)``).
        self.held = HeldBook()
        #: The WebSocket sessions open now, by index (loop thread).
        self.websockets: dict[int, Session] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._conns: dict[object, Conn] = {}
        self._handshakes: set[socket.socket] = set()
        # connections about to speak HTTP (TLS done, a tunnel opened): their
        # record, and a tunnel's host:port and client stream
        self._arriving: dict[object, Arrival] = {}
        self._outers: set[IOStream] = set()  # the client streams of open tunnels
        self._unused: dict[socket.socket, Conn] = {}  # tunnels the client has sent nothing in
        self._accepted = 0

    # -- any thread -----------------------------------------------------------

    def apply(self, command: Command[R]) -> R:
        """Carry out a command: the recorder's at once, from any thread; the host's on its loop.

        The host's own commands (closing connections, acting on a held
        exchange) hop onto the loop thread, and so does reading the
        connections; the recorder's need no hop.  A
        reset also ends every held exchange, closing its connection.
        """
        result: Any
        if isinstance(command, CloseConnections):
            result = self.on_loop(self.close_idle)
        elif isinstance(command, ActOnHeld):
            result = self.on_loop(lambda: self.act_on_held(command))
        elif isinstance(command, GetHeld):
            result = self.held.listing()
        elif isinstance(command, PushMessage):
            result = self.on_loop(lambda: self.push_message(command))
        elif isinstance(command, GetConnections):
            # after the loop's current step: a TLS handshake that has just
            # failed (its alert already with the client) is recorded by then
            result = self.on_loop(lambda: self.recorder.apply(command))
        else:
            result = self.recorder.apply(command)
            if isinstance(command, Reset):
                self.on_loop(self.drop_held)
        return cast("R", result)

    def on_loop(self, work: Callable[[], R]) -> R:
        """Run *work* on the loop thread and return its result (at once when already there)."""
        loop = self.loop
        if loop is None or self.on_loop_thread() or not loop.is_running():
            return work()
        pending: Pending[R] = Pending()

        def run() -> None:
            try:
                pending.set_result(work())
            except BaseException as exc:
                pending.set_error(exc)

        loop.call_soon_threadsafe(run)
        if not pending.wait(_LOOP_CALL_TIMEOUT):
            raise ServerStateError(
                f"the server's event loop did not run a call within {_LOOP_CALL_TIMEOUT:g}s "
                "(is a response callback blocking it?)"
            )
        return pending.result()

    def on_loop_thread(self) -> bool:
        """Whether the caller runs on this host's loop thread."""
        return self.loop_thread is not None and threading.get_ident() == self.loop_thread

    # -- the loop thread ------------------------------------------------------

    def build_server(self) -> HostServer:
        """The one Tornado server of this host (made once, on the loop thread)."""
        if self.server is None:
            self.server = HostServer(self, make_app(self))
        return self.server

    def bind_loop(self) -> None:
        """Note the loop and thread this host serves on (the caller's)."""
        if self.loop is None:
            self.loop = IOLoop.current().asyncio_loop  # type: ignore[attr-defined]
            self.loop_thread = threading.get_ident()

    def serve(self, sockets: list[socket.socket]) -> None:
        """Start accepting on *sockets* (bound, listening) on the current loop."""
        raise_fd_limit()
        self.build_server().add_sockets(sockets)

    def accepted(self, connection: socket.socket, address: Any) -> None:
        """A new connection: TLS first if this host serves HTTPS, then HTTP."""
        self._accepted += 1
        if self._accepted % 256 == 0:  # forget connections that closed meanwhile
            self._conns = {k: c for k, c in self._conns.items() if not c.stream.closed()}
        if self.ssl_context is None and not self.config.http2:
            self.build_server().handle_stream(IOStream(connection), address)
            return
        # listed and numbered now, when accepted: the handshake may take long, or fail
        ip, port = _peer(address)
        record = self.recorder.open_connection(ip, port)
        if self.ssl_context is None:  # http2=True: HTTP/2 by prior knowledge, or HTTP/1
            self._handshakes.add(connection)
            self.track(asyncio.ensure_future(self._sniff(connection, address, record)))
            return
        try:
            tls = self.ssl_context.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        except Exception as exc:  # a context that cannot serve: close this one, quietly
            connection.close()
            record.error = f"TLS could not start: {exc}"
            self.recorder.close_connection(record)
            return
        self._handshakes.add(tls)
        self.track(asyncio.ensure_future(self._handshake(tls, address, (record, None, None, ()))))

    def open_tunnel(self, outer: IOStream, conn: Conn) -> None:
        """Serve the ``CONNECT`` tunnel of *conn*, whose client stream *outer* now is.

        The tunnel is served by this host as a connection of its own: one
        end of a socket pair, which a relay joins to *outer* byte for byte
        (what the client sent after its ``CONNECT`` head, already read into
        *outer*'s buffer, goes first).  So a ``ClientHello`` that came in the
        same packet as the head is no special case, and the TLS inside the
        tunnel is done by the same code as ``ssl=True``'s.  Nothing is ever
        forwarded anywhere else.
        """
        self._conns.pop(conn.stream, None)  # the stream serves HTTP no more
        ours, theirs = socket.socketpair()
        relay = IOStream(ours)
        pipes = (Pipe(outer, relay), Pipe(relay, outer))
        conn.outer, conn.pipes = outer, pipes
        self._outers.add(outer)  # closed at shutdown; the pipe towards it closes it
        self._unused[theirs] = conn  # until the client's first byte comes through
        pipes[1].done = lambda: self._outers.discard(outer)
        for pipe in pipes:
            self.track(asyncio.ensure_future(pipe.run()))
        self.track(asyncio.ensure_future(self._serve_tunnel(theirs, conn, outer)))

    async def _serve_tunnel(self, sock: socket.socket, conn: Conn, outer: IOStream) -> None:
        """Serve HTTP on a tunnel's end *sock*: inside TLS when the client starts it."""
        loop = asyncio.get_running_loop()
        tunnel, record = conn.target, conn.record
        try:
            sock.setblocking(False)
            await _ready(loop, sock, write=False)
            first = sock.recv(1, socket.MSG_PEEK)
        except BaseException:  # cancelled by shutdown, or the relay closed it
            sock.close()
            self.recorder.close_connection(record)
            raise
        finally:
            self._unused.pop(sock, None)
        if not first:  # the client closed the tunnel unused
            sock.close()
            self.recorder.close_connection(record)
            return
        tunnels = self.config.tunnels
        if first != b"\x16" or tunnels is None:  # no TLS handshake record: plain HTTP
            self._arriving[sock] = (record, tunnel, outer, conn.pipes)  # an Arrival
            self.build_server().handle_stream(IOStream(sock), conn.address)
            return
        try:
            context = tunnels.context_for(split_authority(tunnel)[0])
            tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except Exception as exc:  # no certificate for that name: close, quietly
            sock.close()
            record.error = f"TLS in the tunnel to {tunnel} could not start: {exc}"
            self.recorder.close_connection(record)
            return
        self._handshakes.add(tls)
        await self._handshake(tls, conn.address, (record, tunnel, outer, conn.pipes))

    async def _handshake(self, sock: ssl.SSLSocket, address: Any, arrival: Arrival) -> None:
        """Complete the TLS handshake, quietly: a failure closes, it is never logged.

        *arrival* is what the connection will be known by once it speaks HTTP.
        """
        record = arrival[0]
        loop = asyncio.get_running_loop()
        try:
            sock.setblocking(False)
            while True:
                try:
                    sock.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    await _ready(loop, sock, write=False)
                except ssl.SSLWantWriteError:
                    await _ready(loop, sock, write=True)
        except (OSError, ValueError) as exc:  # SSLError, a reset, a closed socket
            self._drop(sock, record, f"TLS handshake failed: {exc}")
            return
        except BaseException:  # cancelled by shutdown
            self._drop(sock, record)
            raise
        finally:
            self._handshakes.discard(sock)
        record.tls = tls_info(sock)
        if self.config.http2 and sock.selected_alpn_protocol() == "h2":
            self.serve_h2(SSLIOStream(sock), address, arrival)
            return
        self._arriving[sock] = arrival
        self.build_server().handle_stream(SSLIOStream(sock), address)

    def _drop(self, sock: socket.socket, record: ConnRecord, error: str | None = None) -> None:
        """Close a connection that never got to HTTP; its record says *error*, if any."""
        sock.close()
        if error is not None:
            record.error = error  # the loop thread writes it alone
        self.recorder.close_connection(record)

    async def _sniff(self, sock: socket.socket, address: Any, record: ConnRecord) -> None:
        """Serve HTTP/2 if the connection opens with the preface, else HTTP/1 (``http2=True``).

        The first bytes are peeked at, not read: HTTP/1 reads them again.
        """
        loop = asyncio.get_running_loop()
        first = b""
        try:
            sock.setblocking(False)
            for _ in range(_SNIFF_TRIES):
                await _ready(loop, sock, write=False)
                first = sock.recv(len(PREFACE), socket.MSG_PEEK)
                if len(first) == len(PREFACE) or not PREFACE.startswith(first) or not first:
                    break
                await asyncio.sleep(_SNIFF_PAUSE)  # the preface's rest is on its way
        except (OSError, ValueError):  # a reset (HTTP/1 notes it), or closed by stop()
            pass
        except BaseException:  # cancelled by shutdown
            self._drop(sock, record)
            raise
        finally:
            self._handshakes.discard(sock)
        if self.closing or sock.fileno() == -1:  # stop() closed it while we peeked
            self._drop(sock, record)
            return
        arrival: Arrival = (record, None, None, ())
        if first == PREFACE:
            self.serve_h2(IOStream(sock), address, arrival)
            return
        self._arriving[sock] = arrival
        self.build_server().handle_stream(IOStream(sock), address)

    def serve_h2(self, stream: IOStream, address: Any, arrival: Arrival) -> None:
        """Serve HTTP/2 on *stream* (`._h2serve`): each stream a request of the same handler."""
        record = arrival[0]
        record.protocol = "HTTP/2"
        conn = Conn(stream, address, *arrival)
        self._conns[stream] = conn
        app = cast("httputil.HTTPServerConnectionDelegate", self.build_server().request_callback)

        def opened(item: H2Stream) -> Conn:
            return Conn(cast("IOStream", item), address, record)

        session = H2Session(
            stream,
            conn,
            start=lambda item: app.start_request(session, item),
            opened=opened,
            closed=lambda: self.closed(conn),
            report=lambda text: self.recorder.add_error(
                HandlerError("HTTP2Refused", text, text, None)
            ),
            track=self.track,
            max_body_size=self.config.max_body_size,
            protocol="https" if isinstance(stream, SSLIOStream) else "http",
        )
        conn.h2 = session
        self.track(asyncio.ensure_future(session.run()))

    def opened(self, stream: IOStream, address: Any) -> Conn:
        """Start tracking a connection that now speaks HTTP (after its TLS handshake)."""
        arrival = self._arriving.pop(stream.socket, None)  # listed when it was accepted
        if arrival is None:
            ip, port = _peer(address)
            conn = Conn(stream, address, self.recorder.open_connection(ip, port))
        else:
            conn = Conn(stream, address, *arrival)
        self._conns[stream] = conn
        return conn

    def closed(self, conn: Conn) -> None:
        """*conn* has closed."""
        self.recorder.close_connection(conn.record)

    def close_idle(self) -> int:
        """Close every connection idle between requests now (loop thread); how many.

        Idle: no request being answered, nothing left to write, and nothing
        read of a next request (a head that has begun to arrive, a pipelined
        request waiting its turn).  Tornado says what its buffer holds only
        through a private field, read here with a default.  An HTTP/2
        connection is idle when none of its streams is open; it gets a
        ``GOAWAY`` before the close, so that a request the client sent
        meanwhile is known to be unprocessed (and safe to retry).
        """
        closed = 0
        for conn in list(self._conns.values()):
            stream = conn.stream
            if conn.busy or stream.writing() or stream.closed():
                continue
            if conn.h2 is not None:  # no stream open: GOAWAY says none was cut short
                conn.h2.goaway(NO_ERROR)
                closed += 1
                continue
            if _buffered(stream) or (conn.outer is not None and _in_relay(conn)):
                continue
            stream.close()
            if conn.outer is not None:  # a tunnel: the client's connection closes now too
                conn.outer.close()
            closed += 1
        for sock, conn in list(self._unused.items()):  # a tunnel opened, nothing sent in it
            if conn.outer is not None and not _in_relay(conn) and not _unread(sock):
                conn.outer.close()
                closed += 1
        return closed

    def act_on_held(self, command: ActOnHeld) -> bool:
        """Hand the test's action to the handler of a held exchange (loop thread)."""
        slot = self.held.slot(command.key)
        return slot is not None and slot.push((command.action, command.value))

    def push_message(self, command: PushMessage) -> bool:
        """Send a message on an open WebSocket session (loop thread); `False` if none is open."""
        index = command.session
        if index is None:  # the newest session still open
            index = max((i for i, s in self.websockets.items() if s.record.open), default=-1)
        session = self.websockets.get(index)
        return session is not None and session.push(command.data)

    def drop_held(self) -> None:
        """End every held exchange by closing its connection (a reset; loop thread).

        The WebSocket sessions open now go on, but are no longer the test's
        to push to: their indexes count again from ``0`` after a reset.
        """
        for slot in self.held.forget():
            slot.push(("fail", "close"))
        self.websockets.clear()

    def conn_of(self, stream: object) -> Conn | None:
        """The connection of *stream*, if this host tracks it (an HTTP/2 stream's own)."""
        if isinstance(stream, H2Stream):
            return stream.conn
        return self._conns.get(stream)

    def track(self, task: asyncio.Task[Any]) -> None:
        """Cancel *task* at shutdown unless it has ended (a handler, a handshake)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close_now(self, *, cancel: bool = True) -> None:
        """Stop accepting and close every connection at once, synchronously.

        With *cancel*, also cancel the tasks of this host's requests (they
        end when the loop next runs); `shutdown` lets them first see their
        connection closed, so that they end on their own.
        """
        self.closing = True
        self.held.abandon_waiters(
            ServerStateError("the server stopped while wait_held() waited for a held response")
        )
        if self.server is not None:
            self.server.stop()
        for sock in list(self._handshakes):
            sock.close()
        self._handshakes.clear()
        for outer in list(self._outers):
            outer.close()
        for conn in list(self._conns.values()):
            if not conn.stream.closed():  # closing again signals its futures again
                conn.stream.close()
        if cancel:
            for task in list(self._tasks):
                task.cancel()

    async def shutdown(self, timeout: float = 1.0, *, every_task: bool = True) -> None:
        """Close everything, let the requests' tasks end, cancel what does not (on the loop).

        With *every_task* (the loop is the host's own: thread and child) the
        tasks of user code that outlive their requests are cancelled too.
        What is still running after *timeout* seconds is listed in
        `abandoned`.
        """
        self.close_now(cancel=False)
        if self.server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.server.close_all_connections(), timeout)
        for _ in range(3):  # handlers reading or writing see their stream closed
            await asyncio.sleep(0)
        me = asyncio.current_task()
        tasks = {t for t in self._tasks if t is not me and not t.done()}
        if every_task:
            tasks |= {t for t in asyncio.all_tasks() if t is not me and not t.done()}
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            self.abandoned += [repr(t) for t in pending]


#: How much a tunnel's relay reads at a time.
_RELAY_CHUNK = 1 << 16


class Pipe:
    """One direction of a tunnel's relay: copies *source* to *sink* until *source* ends.

    Each piece is written whole before the next is read (and before the
    close): what the server wrote before it closed reaches the client.  A
    client that half-closes its side of a tunnel (``shutdown(SHUT_WR)``)
    ends it whole: Tornado's streams close at the end of what they read.
    """

    __slots__ = ("done", "reading", "sink", "source")

    def __init__(self, source: IOStream, sink: IOStream) -> None:
        self.source = source
        self.sink = sink
        self.reading = False  # a read was asked for, and this pipe has not resumed since
        self.done: Callable[[], None] | None = None  # called once the sink is closed

    async def run(self) -> None:
        """Copy until the source ends, then close the sink."""
        try:
            while True:
                self.reading = True
                data = await self.source.read_bytes(_RELAY_CHUNK, partial=True)
                self.reading = False
                await self.sink.write(data)
        except StreamClosedError:
            pass
        finally:
            self.reading = False
            self.sink.close()
            if self.done is not None:
                self.done()

    def carrying(self) -> bool:
        """Whether bytes are on their way: in a buffer, or read and not yet written.

        Read and not yet written: the read is done (Tornado's private
        ``_read_future`` is cleared, read with a default) and the pipe has
        not resumed to write them.
        """
        source, sink = self.source, self.sink
        if _buffered(source) or sink.writing():
            return True
        return self.reading and getattr(source, "_read_future", False) is None


def _unread(sock: socket.socket | None) -> bool:
    """Whether bytes from the client wait in the kernel (or in TLS), unread yet.

    A TLS socket is peeked below its TLS layer (the plain `socket.socket`
    method on it), and asked for decrypted bytes it holds.
    """
    if sock is None:
        return False
    try:
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        return bool(socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (BlockingIOError, InterruptedError):
        return False
    except (OSError, ValueError):  # reset, closed
        return False


def _buffered(stream: IOStream | None) -> bool:
    """Whether *stream* holds bytes not yet handled: in Tornado's buffer or the kernel's.

    Tornado says what its buffer holds only through a private field, read
    with a default.
    """
    if stream is None or stream.closed():
        return False
    return bool(getattr(stream, "_read_buffer_size", 0)) or _unread(stream.socket)


def _in_relay(conn: Conn) -> bool:
    """Whether a tunnel's relay carries bytes on their way in, or out."""
    return any(pipe.carrying() for pipe in conn.pipes)


def _keep_nagle(value: bool) -> None:
    """`IOStream.set_nodelay` on a corked stream: a flush would send the tail before the FIN."""


def _peer(address: Any) -> tuple[str, int]:
    """The client's IP and port from an accepted socket's address."""
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return "", 0  # a Unix socket


def _chunk_size(line: bytes) -> int:
    """The size a chunk-size line declares (Tornado has accepted it), or 0."""
    try:
        return int(line.split(b";", 1)[0].strip(), 16)
    except ValueError:
        return 0


def tls_info(sock: object) -> TLSInfo | None:
    """What the TLS handshake of *sock* settled, or `None` for a plain socket."""
    if not isinstance(sock, ssl.SSLSocket):
        return None
    cipher = sock.cipher()
    return TLSInfo(
        sock.version(),
        cipher[0] if cipher else None,
        sock.selected_alpn_protocol(),
        sni_of(sock),
        sock.getpeercert() or None,
    )


async def _ready(loop: asyncio.AbstractEventLoop, sock: socket.socket, *, write: bool) -> None:
    """Until *sock* is readable (or writable, with *write*)."""
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)
