"""`Channel`: the parent's end of subprocess mode's socketpair.

One command, one reply, paired by the sequence number of their frames
(`tserver._wire`).  Calls may come from several threads at once (a
`wait_requests` in one, a `set_response` in another), blocking or awaiting.

States (`ChannelState`), in the only order they can come:

``OPEN``
    Commands may be sent.  Replies are read *leader/follower* style: a
    blocking call reads the socket itself when no other thread is reading
    (no thread hop on the common path), else it waits to be handed its
    reply by the thread that is.  Whoever reads hands every reply to the
    call waiting for its sequence number; the late reply of a call that
    gave up is dropped.  A helper thread reads for awaiting calls
    (`Channel.submit`), whose caller is an event loop that must not block.
``CLOSING``
    The goodbye command (`Channel.goodbye`) was sent: no other command may
    be, and its reply is the last one.
``EOF``
    The child's end closed: after the goodbye, the child exited; before it,
    the child died.  Waiting calls fail with `ChannelEOF`.
``CLOSED``
    `Channel.close` ran: the helper thread is joined and the socket closed.

Who reads at a given moment is not a state: at most one thread does, named
by ``_reader``.

Timeouts follow progress: a call gives up when its reply has not come
*timeout* seconds after the later of its start and the last bytes read, so
a reply of gigabytes that keeps arriving is never cut off, and a child that
says nothing is noticed.  A command is always sent whole: a signal (Ctrl-C,
a test timeout's ``SIGALRM``) that arrives in the middle of a frame is held
back until the frame is out (`_SignalsDeferred`), so the stream is never
left desynchronised.

No Tornado, no knowledge of commands: only frames.
"""

from __future__ import annotations

import enum
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from ._waiting import Pending
from ._wire import FrameDecoder, FrameError, Part, decode_frame, frame_header, join_parts

__all__ = ["Channel", "ChannelEOF", "ChannelState", "ChannelTimeout"]

#: The longest a read blocks before its caller looks at its deadline again.
_READ_SLICE = 0.25
#: How long a half-sent frame may wait for the child to read on.
WRITE_TIMEOUT = 10.0
#: Frames smaller than this go out in one piece, header and payload together.
_SMALL = 1 << 16


class ChannelState(enum.Enum):
    """Where a `Channel` is in its life (see the module docstring)."""

    OPEN = "open"
    CLOSING = "closing"
    EOF = "eof"
    CLOSED = "closed"


class ChannelEOF(Exception):
    """The other end closed before replying (or the channel was closed)."""


class ChannelTimeout(Exception):
    """No reply, and no bytes at all, for the call's timeout."""


class Channel:
    """The parent's end of the socketpair, shared by every thread of the test process.

    :param sock: a connected stream socket (blocking; this sets a receive
        timeout on it).
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, int(_READ_SLICE * 1e6))
        )
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a reply arrived, or the state changed
        self._send_lock = threading.Lock()  # one frame at a time on the socket
        self.state = ChannelState.OPEN
        #: Why the channel reached EOF when the child did not just exit.
        self.eof_reason: str | None = None
        self._seq = 0
        self._reader: int | None = None  # the thread reading now
        self._waiting: set[int] = set()  # blocking calls without their reply yet
        self._replies: dict[int, object] = {}  # replies read for a blocking call
        self._submitted: dict[int, Pending[object]] = {}  # awaiting calls
        self._parts: dict[int, list[Part]] = {}  # pieces of replies still coming
        self._last_read = time.monotonic()
        self._decoder = FrameDecoder()
        self._buffer = bytearray(1 << 16)
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)
        self._write_poller = select.poll()
        self._write_poller.register(sock, select.POLLOUT)
        self._helper_wake = threading.Condition(self._lock)
        self._helper = threading.Thread(
            target=self._read_for_submits, name="tserver-channel", daemon=True
        )
        self._helper.start()

    # -- calls ----------------------------------------------------------------

    def request(self, payload: bytes, timeout: float) -> object:
        """Send a command (its pickled *payload*) and block for its reply.

        :raises ChannelEOF: the child's end closed first.
        :raises ChannelTimeout: nothing came for *timeout* seconds.
        """
        return self._receive(self.send(payload, None), timeout)

    def submit(self, payload: bytes) -> Pending[object]:
        """Send a command; its reply (or `ChannelEOF`) arrives in the `Pending`."""
        pending: Pending[object] = Pending()
        self.send(payload, pending)
        return pending

    def goodbye(self, payload: bytes, timeout: float) -> object:
        """Send the last command, after which nothing may be sent; block for its reply."""
        return self._receive(self.send(payload, None, last=True), timeout)

    def send(self, payload: bytes, pending: Pending[object] | None, *, last: bool = False) -> int:
        """Register who waits for the reply, send the frame whole; its sequence number."""
        with self._send_lock:
            with self._lock:
                if self.state is not ChannelState.OPEN:
                    raise ChannelEOF(f"the channel is {self.state.value}")
                self._seq += 1
                seq = self._seq
                if pending is None:
                    self._waiting.add(seq)
                else:
                    self._submitted[seq] = pending
                    self._helper_wake.notify()
                if last:
                    self.state = ChannelState.CLOSING
            try:
                header = frame_header(len(payload), seq)
                with _SignalsDeferred():
                    if len(payload) < _SMALL:  # one syscall for the common small command
                        self._write(header + payload)
                    else:  # no copy of a big payload
                        self._write(header, payload)
            except BaseException as exc:
                # a closed end, or half a frame out and the child reads no more:
                # either way nothing more can go through this channel
                gone = isinstance(exc, OSError)
                with self._lock:
                    self._waiting.discard(seq)
                    self._submitted.pop(seq, None)
                    if gone:
                        self.eof_reason = (
                            f"did not read a command for {WRITE_TIMEOUT:g}s"
                            if isinstance(exc, TimeoutError)
                            else None
                        )
                    orphans = self._reached_eof() if gone else []
                _fail(orphans)
                if gone:
                    raise ChannelEOF(f"the child's end is closed ({exc})") from None
                raise
        return seq

    def _write(self, *parts: bytes) -> None:
        """Send *parts*, one frame, whole (signals are deferred meanwhile: `_SignalsDeferred`).

        :raises TimeoutError: the child read nothing for `WRITE_TIMEOUT`
            seconds, with part of the frame sent (the stream is lost).
        """
        for part in parts:
            view = memoryview(part)
            deadline = time.monotonic() + WRITE_TIMEOUT
            while view:
                try:
                    sent = self._sock.send(view, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(
                            f"the child read nothing for {WRITE_TIMEOUT:g}s"
                        ) from None
                    self._write_poller.poll(int(left * 1000) + 1)
                    continue
                view = view[sent:]
                deadline = time.monotonic() + WRITE_TIMEOUT

    def _receive(self, seq: int, timeout: float) -> object:
        """The reply to *seq*: read it ourselves, or be handed it by whoever reads."""
        started = time.monotonic()
        me = threading.get_ident()
        try:
            while True:
                with self._lock:
                    if seq in self._replies:
                        self._waiting.discard(seq)
                        reply = self._replies.pop(seq)
                        if isinstance(reply, _Broken):
                            raise reply.error
                        return reply
                    if self.state in (ChannelState.EOF, ChannelState.CLOSED):
                        raise ChannelEOF(f"the channel is {self.state.value}")
                    left = max(started, self._last_read) + timeout - time.monotonic()
                    if left <= 0:
                        raise ChannelTimeout(f"no reply within {timeout:g}s")
                    if self._reader is not None:
                        self._changed.wait(left)  # the reader hands us the reply
                        continue
                    self._reader = me
                self._read_once(min(left, _READ_SLICE))
        finally:
            with self._lock:
                self._waiting.discard(seq)
                self._replies.pop(seq, None)
                self._parts.pop(seq, None)
                if self._reader == me:  # left on the way (an interrupt): let another read
                    self._reader = None
                    self._changed.notify_all()
                    self._helper_wake.notify()

    # -- reading ----------------------------------------------------------------

    def _read_for_submits(self) -> None:
        """The helper thread: read while awaiting calls wait and no one else reads."""
        with self._lock:
            while True:
                self._helper_wake.wait_for(
                    lambda: (
                        self.state in (ChannelState.EOF, ChannelState.CLOSED)
                        or (bool(self._submitted) and self._reader is None)
                    )
                )
                if self.state in (ChannelState.EOF, ChannelState.CLOSED):
                    return
                self._reader = threading.get_ident()
                self._lock.release()
                try:
                    self._read_once(_READ_SLICE)
                finally:
                    self._lock.acquire()

    def _read_once(self, timeout: float) -> None:
        """Read what the child sent (within about *timeout* s) and hand it out.

        Called without the lock by the one thread that set ``_reader``.
        Signals are held back meanwhile (`_SignalsDeferred`), at most one read
        slice: an interrupt never drops replies already read, or unpickles
        into a `FrameError`.
        """
        with _SignalsDeferred():
            self._read_and_hand_out(timeout)

    def _read_and_hand_out(self, timeout: float) -> None:
        received: list[tuple[int, bool, object]] = []
        eof = False
        try:
            if timeout >= _READ_SLICE or self._poller.poll(max(1, int(timeout * 1000))):
                # one syscall: recv blocks for _READ_SLICE at most (SO_RCVTIMEO)
                size = self._sock.recv_into(self._buffer)
                if not size:
                    eof = True
                else:
                    self._last_read = time.monotonic()
                    for seq, more, payload in self._decoder.feed(memoryview(self._buffer)[:size]):
                        try:
                            received.append((seq, more, decode_frame(payload)))
                        except FrameError as exc:  # this reply alone is lost
                            received.append((seq, False, _Broken(exc)))
        except BlockingIOError:  # the slice passed: the caller checks its deadline
            pass
        except FrameError:  # a corrupt stream: nothing more can be trusted
            eof = True
        except OSError:
            eof = True
        except BaseException:  # say, Ctrl-C while reading or unpickling: let another read
            with self._lock:
                self._reader = None
                self._changed.notify_all()
                self._helper_wake.notify()
            raise
        settle: list[tuple[Pending[object], object]] = []
        with self._lock:
            self._reader = None
            for seq, more, message in received:
                if more:
                    if isinstance(message, Part):
                        self._parts.setdefault(seq, []).append(message)
                    continue
                reply = join_parts(self._parts.pop(seq, []), message)
                if seq in self._waiting:
                    self._replies[seq] = reply
                elif seq in self._submitted:
                    settle.append((self._submitted.pop(seq), reply))
                # else: the late reply of a call that gave up
            if eof:
                settle += [(p, _EOF) for p in self._reached_eof()]
            self._changed.notify_all()
            if self._submitted:  # awaiting calls still wait: the helper reads on
                self._helper_wake.notify()
        for pending, reply in settle:
            if reply is _EOF:
                _fail([pending])
            elif isinstance(reply, _Broken):
                pending.set_error(reply.error)
            else:
                pending.set_result(reply)

    # -- the end ------------------------------------------------------------------

    def _reached_eof(self) -> list[Pending[object]]:
        """The child's end closed (under the lock): the awaiting calls to fail."""
        if self.state is ChannelState.CLOSED:
            return []
        self.state = ChannelState.EOF
        orphans = list(self._submitted.values())
        self._submitted.clear()
        self._changed.notify_all()
        self._helper_wake.notify_all()
        return orphans

    def close(self) -> None:
        """End the channel: wake every call, join the helper, close the socket."""
        with self._lock:
            if self.state is ChannelState.CLOSED:
                return
            self.state = ChannelState.CLOSED
            submitted = list(self._submitted.values())
            self._submitted.clear()
            self._changed.notify_all()
            self._helper_wake.notify_all()
        try:  # ends a read in progress in another thread at once
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        with self._lock:  # let a reader leave before the fd is closed (and reused)
            self._changed.wait_for(lambda: self._reader is None, 1.0)
        self._helper.join()
        self._sock.close()
        _fail(submitted)

    @property
    def last_read(self) -> float:
        """`time.monotonic` of the last bytes read from the child."""
        return self._last_read


class _SignalsDeferred:
    """While a frame goes out, the main thread's signal handlers are held back.

    A signal's Python handler (Ctrl-C's `KeyboardInterrupt`, a test
    timeout's ``SIGALRM``) runs in the main thread as soon as a call returns:
    after a ``send`` put bytes out but before its caller learnt how many.
    The frame could then be neither finished nor taken back.  So while a
    frame is written, the handlers are swapped for one that notes the
    signal; once the frame is out, the real handlers are put back and
    called for what came meanwhile (a `KeyboardInterrupt` is raised then).
    Other threads never run signal handlers: nothing to hold back there.
    """

    __slots__ = ("caught", "saved")

    #: The signals whose Python handlers are held back.
    SIGNALS = tuple(
        getattr(signal, name)
        for name in (
            "SIGINT",
            "SIGTERM",
            "SIGALRM",
            "SIGHUP",
            "SIGUSR1",
            "SIGUSR2",
            "SIGVTALRM",
            "SIGPROF",
        )
        if hasattr(signal, name)
    )

    def __init__(self) -> None:
        self.saved: list[tuple[int, Callable[[int, FrameType | None], object]]] = []
        self.caught: list[tuple[int, FrameType | None]] = []

    def __enter__(self) -> None:
        if threading.current_thread() is not _MAIN:
            return
        for signum in self.SIGNALS:
            handler = _getsignal(signum)
            if callable(handler):
                _setsignal(signum, self._note)
                self.saved.append((signum, handler))

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.caught.append((signum, frame))

    def __exit__(self, *exc_info: object) -> None:
        handlers = dict(self.saved)
        for signum, handler in self.saved:
            _setsignal(signum, handler)
        for signum, frame in self.caught:
            handlers[signum](signum, frame)  # may raise: the frame is out now


# The C functions under the signal module: no conversion of numbers to enums,
# which costs more than the rest of a small command's send.
_signal_c: Any = sys.modules.get("_signal", signal)  # signal imports it
_getsignal: Callable[[int], Any] = getattr(_signal_c, "getsignal", signal.getsignal)
_setsignal: Callable[[int, Any], Any] = getattr(_signal_c, "signal", signal.signal)
_MAIN = threading.main_thread()


class _Broken:
    """A reply that did not unpickle: its call fails with this error."""

    __slots__ = ("error",)

    def __init__(self, error: FrameError) -> None:
        self.error = error


_EOF = object()


def _fail(pendings: list[Pending[object]]) -> None:
    """Tell awaiting calls that no reply will come."""
    for pending in pendings:
        pending.set_error(ChannelEOF("the child's end closed before replying"))
