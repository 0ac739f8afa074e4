"""Serving a WebSocket session (SPEC §13): the upgrade, the script, the recording.

The handler hands over the detached stream of an upgrade request whose
answer is a `~tserver.WebSocket`.  The protocol is python-hyper's wsproto
(sans-I/O, the ``tserver[websocket]`` extra): it checks the handshake,
negotiates the subprotocol and ``permessage-deflate``, and frames and
unframes messages, while this module does the I/O on Tornado's stream.
Working below whole messages is what lets a script break the protocol on
purpose: a frame with a reserved opcode or a text message that is not UTF-8
is written here byte by byte, which a message-level library cannot do
(docs/design.rst says why wsproto over ``tornado.websocket``).

A session runs two tasks: a reader that records every message the client
sends (answering pings and the close handshake), and the script.  Each
message is recorded before the next step runs, and the client's close
before the server answers it, so a client that has seen the end of the
conversation finds all of it recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import TYPE_CHECKING, Any

from tornado.iostream import StreamClosedError

from ._commands import HandlerError
from ._formatting import describe_selector, mismatch_text
from ._websocket import Close, Echo, Fail, Ping, Receive, Send, Sleep

if TYPE_CHECKING:
    from tornado.iostream import IOStream

    from ._recorder import Recorder
    from ._request import Request
    from ._traffic import WsRecord
    from ._websocket import WebSocket

__all__ = ["WEBSOCKET_EXTRA_HINT", "Session", "accept", "is_upgrade", "serve_session"]

#: How to install what WebSocket answers need.
WEBSOCKET_EXTRA_HINT = "pip install 'tserver[websocket]'"
#: How long a server's close waits for the client's close frame.
_CLOSE_WAIT = 5.0
_READ_CHUNK = 1 << 16
_CLOSED_EARLY = "Receive: the client closed before sending a message"


def is_upgrade(request: Request) -> bool:
    """Whether *request* asks for a WebSocket upgrade (``Upgrade: websocket``)."""
    upgrade = request.headers.get("Upgrade", "")
    return "websocket" in upgrade.lower()


def _mod() -> Any:
    """wsproto, or `ImportError` saying which extra to install."""
    try:
        import wsproto
        import wsproto.events
        import wsproto.extensions
    except ImportError as exc:
        raise ImportError(
            f"WebSocket answers need the 'wsproto' package: {WEBSOCKET_EXTRA_HINT}"
        ) from exc
    return wsproto


def accept(
    head: bytes,
    spec: WebSocket,
    headers: list[tuple[str, str]],
) -> tuple[Any, bytes, str | None, tuple[str, ...]]:
    """Check the upgrade *head* and accept it: the connection, the ``101`` bytes, what was agreed.

    :raises ValueError: the head is no valid WebSocket upgrade (wsproto's
        reason in the message).
    """
    wsproto = _mod()
    events = wsproto.events
    connection = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    try:
        connection.receive_data(head)
        offer = next(iter(connection.events()), None)
    except wsproto.utilities.RemoteProtocolError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(offer, events.Request):
        raise ValueError("not a complete WebSocket upgrade request")
    subprotocol = spec.subprotocol if spec.subprotocol in offer.subprotocols else None
    extensions = [wsproto.extensions.PerMessageDeflate()] if spec.compress else []
    data = connection.send(
        events.AcceptConnection(
            subprotocol=subprotocol,
            extensions=extensions,
            extra_headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        )
    )
    agreed = tuple(ext.name for ext in extensions if _enabled(ext))
    return connection, data, subprotocol, agreed


def _enabled(extension: Any) -> bool:
    enabled = getattr(extension, "enabled", None)
    return bool(enabled() if callable(enabled) else enabled)


class Session:
    """One WebSocket connection: its reader, its script, its record."""

    def __init__(
        self,
        stream: IOStream,
        connection: Any,
        record: WsRecord,
        recorder: Recorder,
        client_socket: socket.socket | None,
    ) -> None:
        self.stream = stream
        self.connection = connection
        self.record = record
        self.recorder = recorder
        self.client_socket = client_socket
        self.incoming: asyncio.Queue[str | bytes] = asyncio.Queue()
        self.closed = asyncio.Event()  # the client's close frame, or the end of the TCP stream
        self._parts: list[Any] = []  # the frames of a message not finished yet
        self._pushes: set[asyncio.Task[bool]] = set()  # messages the test pushes, being sent
        self._awaiting: Request | None = None  # a Receive step waits (for its mismatch)
        self._events = _mod().events

    # -- writing ----------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        if data and not self.stream.closed():
            with contextlib.suppress(StreamClosedError):  # the client left meanwhile
                await self.stream.write(data)

    def _open(self) -> bool:
        """Whether messages may still go out: the stream open, no close sent or received."""
        return not self.stream.closed() and self.connection.state is _mod().ConnectionState.OPEN

    async def send(self, event: Any) -> None:
        """Frame *event* with wsproto and write it."""
        await self._write(self.connection.send(event))

    async def send_recorded(self, event: Any, kind: str, data: str | bytes) -> bool:
        """Record, then send, a message of *kind*; `False` (nothing sent) once closing.

        Recorded first: a client that has the message finds it in the record.
        """
        if not self._open():
            return False
        self.record.add("out", kind, data)
        await self.send(event)
        return True

    # -- reading ----------------------------------------------------------------

    async def read(self) -> None:
        """Record what the client sends until the connection ends."""
        try:
            while not self.stream.closed():
                data = await self.stream.read_bytes(_READ_CHUNK, partial=True)
                self.connection.receive_data(data)
                for event in self.connection.events():
                    await self._on(event)
        except StreamClosedError:
            pass
        except Exception as exc:  # a protocol error of the client's: close, keep why
            self.record.mismatches.append(f"the client broke the protocol: {exc}")
            self.stream.close()
        finally:
            self.record.open = False
            self.recorder.websocket_event()
            self.closed.set()

    async def _on(self, event: Any) -> None:
        events = self._events
        if isinstance(event, events.Message):
            self._parts.append(event.data)
            if not event.message_finished:
                return
            text = isinstance(event, events.TextMessage)
            data: str | bytes = ("" if text else b"").join(self._parts)
            self._parts = []
            self.record.add("in", "text" if text else "binary", data)
            self.incoming.put_nowait(data)
            self.recorder.websocket_event()
        elif isinstance(event, events.Ping):
            self.record.add("in", "ping", bytes(event.payload))
            # answered while open: once a close went out, a ping is only recorded
            await self.send_recorded(event.response(), "pong", bytes(event.payload))
        elif isinstance(event, events.Pong):
            self.record.add("in", "pong", bytes(event.payload))
        elif isinstance(event, events.CloseConnection):
            broken = self.connection.state is _mod().ConnectionState.OPEN
            if broken:  # wsproto found a protocol error in the client's bytes: ours to close
                why = f"the client broke the protocol: {event.reason}"
                self._mismatch(self.record.request, why)
                self.record.closing(int(event.code), event.reason or "", "server")
                reply = events.CloseConnection(code=event.code, reason=event.reason)
            else:
                self.record.closing(int(event.code), event.reason or "", "client")
                reply = event.response()
                awaiting, self._awaiting = self._awaiting, None
                if awaiting is not None and self.incoming.empty():  # noted before the answer
                    self._mismatch(awaiting, _CLOSED_EARLY)
            self.record.open = False  # before the answer: a client that sees it finds it noted
            self.recorder.websocket_event()
            self.closed.set()
            with contextlib.suppress(Exception):  # already closing on our side
                await self.send(reply)
            self.stream.close()

    # -- pushed by the test -------------------------------------------------------

    def push(self, data: str | bytes) -> bool:
        """Send *data* now (the script goes on); `False` when the session has ended."""
        if not self._open() or not self.record.open:
            return False
        task = asyncio.ensure_future(self._push(data))
        self._pushes.add(task)  # kept until done: the loop holds only weak references
        task.add_done_callback(self._pushes.discard)
        return True

    async def _push(self, data: str | bytes) -> bool:
        """Send a pushed message; a session that closes meanwhile just ends it."""
        events = self._events
        if isinstance(data, str):
            return await self.send_recorded(events.TextMessage(data=data), "text", data)
        return await self.send_recorded(events.BytesMessage(data=data), "binary", data)

    async def _next(self, timeout: float | None) -> str | bytes | None:
        """The client's next message; `None` once it closed, or after *timeout* seconds."""
        if self.incoming.empty() and self.closed.is_set():
            return None
        message = asyncio.ensure_future(self.incoming.get())
        closed = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait(
                (message, closed), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            closed.cancel()
            if not message.done():
                message.cancel()
        return message.result() if message.done() and not message.cancelled() else None

    # -- the script ---------------------------------------------------------------

    async def run(self, script: tuple[Any, ...], request: Request) -> None:
        """Run the steps, then wait for the connection to end."""
        for step in script:
            if self.stream.closed():
                break
            if not await self._step(step, request):
                break

    async def _step(self, step: Any, request: Request) -> bool:
        """One step; `False` when the script ends here."""
        events = self._events
        if isinstance(step, Send):
            return await self._push(step.data)
        if isinstance(step, Receive):
            self._awaiting = request
            try:
                data = await self._next(step.timeout)
            finally:
                awaiting, self._awaiting = self._awaiting, None
            if data is None:
                if awaiting is not None:  # else the reader noted the close already
                    self._mismatch(
                        request,
                        _CLOSED_EARLY
                        if self.closed.is_set()
                        else f"Receive: no message within {step.timeout:g}s",
                    )
                return False
            if step.match is not None:
                try:
                    matched = step.match.matches(data)
                    mismatch = None if matched else mismatch_text(step.match, data)
                except Exception as exc:  # a matcher that cannot take this message
                    mismatch = f"its matcher raised {type(exc).__name__}: {exc}"
                if mismatch is not None:
                    self._mismatch(
                        request,
                        f"Receive: expected {describe_selector(step.match)}, but {mismatch}",
                    )
        elif isinstance(step, Echo):
            echoed = 0
            while step.count is None or echoed < step.count:
                message = await self._next(None)
                if message is None or not await self._push(message):
                    return False  # the client left, or closed
                echoed += 1
        elif isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Ping):
            return await self.send_recorded(events.Ping(payload=step.payload), "ping", step.payload)
        elif isinstance(step, Close):
            if not self._open():
                return False
            self.record.closing(step.code, step.reason, "server")
            self.record.open = False
            self.recorder.websocket_event()
            await self.send(events.CloseConnection(code=step.code, reason=step.reason))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.closed.wait(), _CLOSE_WAIT)
            self.stream.close()
            return False
        elif isinstance(step, Fail):
            return await self._fail(step)
        return True

    async def _fail(self, step: Fail) -> bool:
        if step.kind == "oversized":
            return await self._push(b"x" * step.size)
        self.record.open = False  # each of the others ends the session
        self.recorder.websocket_event()
        if step.kind == "no-close":
            self.stream.close()
        elif step.kind == "reset":
            sock = self.client_socket or self.stream.socket
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.stream.close()
        elif step.kind == "invalid-frame":
            await self._write(b"\x83\x00")  # FIN, reserved opcode 0x3, no payload
        else:  # invalid-utf8: a whole text frame whose payload is not UTF-8
            await self._write(b"\x81\x02\xff\xfe")
        return False

    def _mismatch(self, request: Request, text: str) -> None:
        self.record.mismatches.append(text)
        self.recorder.add_error(
            HandlerError(
                "WebSocketMismatch",
                text,
                f"tserver: WebSocket session #{self.record.index} on {request.path}: {text}",
                request,
                None,
            )
        )


async def serve_session(
    stream: IOStream,
    connection: Any,
    record: WsRecord,
    recorder: Recorder,
    spec: WebSocket,
    request: Request,
    client_socket: socket.socket | None,
    track: Any,
    sessions: dict[int, Session],
) -> None:
    """Run one session on *stream* (the ``101`` already written) until it ends.

    While it runs it is in *sessions* (the host's, by index): the test can
    push to it.
    """
    session = Session(stream, connection, record, recorder, client_socket)
    sessions[record.index] = session
    reader = asyncio.ensure_future(session.read())
    track(reader)
    try:
        await session.run(spec.script, request)
        await session.closed.wait()
        await reader
    finally:
        if not reader.done():
            reader.cancel()
        record.open = False
        if sessions.get(record.index) is session:
            del sessions[record.index]
        recorder.websocket_event()
        if not stream.closed():
            stream.close()
