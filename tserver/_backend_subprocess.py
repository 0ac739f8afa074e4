"""Subprocess mode, parent side: a child process hosts the recorder.

The parent spawns ``sys.executable -m tserver._child FD`` with one end of a
``socketpair`` and talks to it in frames of `tserver._protocol`: one
command, one reply, paired by the sequence number in the frame header.

Replies are read leader/follower style: a blocking call reads the channel
itself when no other thread is reading (no thread hop on the common path,
which halves the cost of a control call), else it waits to be handed its
reply by the thread that is.  Whoever reads hands every reply to the call
waiting for its sequence number, so calls from several threads (a
`wait_requests` in one, a `set_response` in another) do not queue behind
each other, and the late reply to a call that gave up is dropped.  A
helper thread reads for awaiting calls (`wait_async`), whose caller is an
event loop that must not block.  This module imports no Tornado: a test
process that uses only subprocess mode never builds a Tornado application.

A dead child is noticed at the next call: the socketpair reads EOF, the
child is reaped, and `ServerDiedError` carries its exit status and the tail
of its stderr (`tserver._childproc` spawns the child, keeps its stderr and
explains its death).
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._childproc import ChildProcess
from ._errors import ServerDiedError, ServerStartError, ServerStateError
from ._protocol import (
    Failed,
    FrameDecoder,
    FrameError,
    Ok,
    RecorderState,
    Restore,
    Shutdown,
    Snapshot,
    StartChild,
    WaitRequests,
    decode_frame,
    encode_frame,
    encode_payload,
    frame,
)

if TYPE_CHECKING:
    from ._backend import ServeConfig
    from ._protocol import Command
    from ._recorder import Recorder
    from ._request import Request

__all__ = ["SubprocessBackend"]

#: Seconds a control call may wait for the child beyond its own timeout.
CALL_TIMEOUT = 10.0
#: The longest a read blocks before its caller looks at its deadline again.
#: A read with less time left than this polls first, to keep its deadline.
_READ_SLICE = 0.25


class _Stopped(Exception):
    """`stop()` ended the child while a call was in flight: use the local state."""


#: What an awaiting call gets when the child's end closed without its reply.
_CLOSED = object()
#: `_read_once` did not read the reply its caller waits for.
_NOTHING = object()


class SubprocessBackend:
    """Runs the server in a child process and forwards commands to it.

    ``died`` is the `ServerDiedError` once the child is known to have died
    (the facade keeps raising it, even after `stop`).
    """

    def __init__(self, recorder: Recorder, config: ServeConfig) -> None:
        self._recorder = recorder  # the local copy: seeds the child, gets the final state
        self._config = config
        self._child: ChildProcess | None = None
        self._channel: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._decoder = FrameDecoder()  # used only by the thread holding _reading
        self._buffer = bytearray(1 << 18)
        self._poller = select.poll()  # used by the thread holding _reading
        self._write_poller = select.poll()  # used under _send_lock
        self._send_lock = threading.Lock()  # one frame on the wire at a time
        # Under _lock: the reply table and the state of the channel.  _cond
        # wakes blocking calls, _reader_wake the thread reading for awaits.
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._reader_wake = threading.Condition(self._lock)
        self._reading = False  # a thread is reading the channel
        self._reader_done = False  # stop(): the awaits' reader thread returns
        self._seq = 0
        self._waiting: set[int] = set()  # blocking calls in flight
        self._callbacks: dict[int, Callable[[object], None]] = {}  # awaiting calls
        self._replies: dict[int, object] = {}
        self._shutdown_seq = -1
        self._goodbye = False  # the child answered Shutdown: its EOF is expected
        self._closed = False  # the child's end closed
        self._finished = False  # stop() is done: the local recorder holds the final state

    @property
    def died(self) -> ServerDiedError | None:
        """The child's `ServerDiedError`, once it is known to have died."""
        return None if self._child is None else self._child.died

    @property
    def _proc(self) -> subprocess.Popen[bytes] | None:
        """The child's process (tests and the bench read its pid)."""
        return None if self._child is None else self._child.proc

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> int:
        """Spawn the child, send it the configuration, return its bound port."""
        ours, theirs = socket.socketpair()
        try:
            self._child = ChildProcess(theirs)
        except ServerStartError:
            ours.close()
            raise
        finally:
            theirs.close()
        self._channel = ours  # blocking, but read only when poll says so (see _write)
        self._poller.register(ours, select.POLLIN)
        seconds = int(_READ_SLICE)
        ours.setsockopt(
            socket.SOL_SOCKET,
            socket.SO_RCVTIMEO,
            struct.pack("ll", seconds, int((_READ_SLICE - seconds) * 1e6)),
        )
        self._write_poller.register(ours, select.POLLOUT)
        with self._lock:
            self._waiting.add(0)  # the first reply has seq 0
        self._reader = threading.Thread(
            target=self._read_for_awaits, name=f"tserver-child-{self._child.proc.pid}", daemon=True
        )
        self._reader.start()
        cfg = self._config
        tls = cfg.tls
        try:
            start = StartChild(
                address=cfg.address,
                port=cfg.port,
                tls_cert=None if tls is None else tls.cert_path,
                tls_key=None if tls is None else tls.key_path,
                strict=cfg.strict,
                history_limit=cfg.history_limit,
                max_body_size=cfg.max_body_size,
                sys_path=tuple(sys.path),
                # pickled apart: the child unpickles it once it has our sys.path
                state=encode_payload(self._recorder.apply(Snapshot())),
            )
            with self._send_lock:
                self._write(ours, encode_frame(start))
            reply = self._receive(0, cfg.startup_timeout)
        except (ServerDiedError, OSError):
            died = self._dead()
            self.stop(1.0)
            raise ServerStartError(
                f"the server child process exited while starting "
                f"(exit status {died.returncode}):\n{died.stderr_tail}"
            ) from None
        except ServerStateError as exc:
            self.stop(1.0)
            raise ServerStartError(f"the server child process did not start: {exc}") from None
        except BaseException:
            self.stop(1.0)
            raise
        if isinstance(reply, Failed):
            self.stop(1.0)
            if isinstance(reply.error, ServerStartError):
                raise ServerStartError(str(reply.error)) from None
            raise ServerStartError(f"the server child process failed to start: {reply.error!r}")
        assert isinstance(reply, Ok)
        return int(reply.value)

    def stop(self, timeout: float) -> None:
        """Ask the child for its final state and to exit; reap it; close all."""
        child, channel = self._child, self._channel
        if child is None or self._finished:
            return
        unanswered = False
        try:
            state = self._request(Shutdown(), timeout, shutdown=True)
        except ServerDiedError:
            state = None
        except (ServerStateError, _Stopped):
            state, unanswered = None, True
        if isinstance(state, RecorderState):
            self._recorder.apply(Restore(state))
        child.wait(0.0 if unanswered else timeout)  # no second timeout if it did not answer
        if unanswered and self.died is None:
            self._dead(f"did not answer stop() within {timeout:g}s and was killed")
        if channel is not None:
            try:  # the child is reaped; this makes sure a reader sees EOF now
                channel.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._lock:
            self._reader_done = True
            self._reader_wake.notify_all()
            # a caller of another thread may be reading: the shutdown above
            # ends its read; let it leave before the fd is closed (and reused)
            self._cond.wait_for(lambda: not self._reading, 1.0)
        if self._reader is not None:
            self._reader.join()
            self._reader = None
        if channel is not None:
            channel.close()
        self._channel = None
        child.release_stderr()
        with self._lock:
            self._finished = True
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
            self._cond.notify_all()
        for callback in callbacks:
            callback(_CLOSED)

    def close(self) -> None:
        """Nothing beyond `stop` to release."""

    # -- calls ---------------------------------------------------------------

    def call(self, command: Command) -> Any:
        """Send *command* to the child and return its result (or raise its error)."""
        try:
            return self._request(command, CALL_TIMEOUT)
        except _Stopped:
            return self._recorder.apply(command)

    def wait(self, count: int, timeout: float) -> list[Request]:
        """Block until the child reports *count* requests (it answers at the time)."""
        deadline = time.monotonic() + timeout
        try:
            result: list[Request] = self._request(
                WaitRequests(count, timeout), timeout + CALL_TIMEOUT
            )
        except _Stopped:  # as in thread mode: keep waiting on the (final) local state
            return self._recorder.wait(count, max(0.0, deadline - time.monotonic()))
        return result

    async def wait_async(self, count: int, timeout: float) -> list[Request]:
        """`wait` that lets the caller's event loop run (the reader thread answers)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[object] = loop.create_future()
        deadline = time.monotonic() + timeout

        def deliver(reply: object) -> None:  # on the reader thread, or in stop()
            if not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(_settle, done, reply)
                except RuntimeError:  # the loop closed in between
                    pass

        try:
            seq = self._send(WaitRequests(count, timeout), deliver)
        except _Stopped:
            seq = -1
            done.set_result(_CLOSED)
        try:
            reply = await asyncio.wait_for(done, timeout + CALL_TIMEOUT)
        except asyncio.TimeoutError:
            raise ServerStateError(self._late_text(timeout + CALL_TIMEOUT)) from None
        finally:
            with self._lock:
                self._callbacks.pop(seq, None)
        if reply is _CLOSED:
            if self.died is not None or not self._finished:
                raise self._dead()
            from ._waiting import wait_async

            return await wait_async(self._recorder, count, max(0.0, deadline - time.monotonic()))
        result: list[Request] = _unwrap(reply)
        return result

    def _request(self, command: Command, timeout: float, *, shutdown: bool = False) -> Any:
        seq = self._send(command, None, shutdown=shutdown)
        return _unwrap(self._receive(seq, timeout))

    def _send(
        self,
        command: Command,
        callback: Callable[[object], None] | None,
        *,
        shutdown: bool = False,
    ) -> int:
        """Send *command* in one frame; register who waits for its reply."""
        payload = encode_payload(command)  # a command that does not pickle registers nothing
        with self._send_lock:
            with self._lock:
                if self._goodbye:  # stop() got the final state: let it restore it first
                    self._cond.wait_for(
                        lambda: self._finished or self.died is not None, CALL_TIMEOUT
                    )
                if self.died is None and (self._finished or self._goodbye):
                    raise _Stopped
                channel = self._channel
                alive = channel is not None and not self._closed and self.died is None
                if alive:
                    self._seq += 1
                    seq = self._seq
                    if callback is None:
                        self._waiting.add(seq)
                    else:
                        self._callbacks[seq] = callback
                        self._reader_wake.notify()
                    if shutdown:
                        self._shutdown_seq = seq
            if not alive:
                raise self._dead()
            assert channel is not None
            try:
                self._write(channel, frame(payload, seq))
            except OSError as exc:
                with self._lock:
                    self._waiting.discard(seq)
                    self._callbacks.pop(seq, None)
                if isinstance(exc, TimeoutError):  # half a frame sent: the stream is lost
                    raise self._dead(f"did not read a command for {CALL_TIMEOUT:g}s") from None
                raise self._dead() from None
        return seq

    def _write(self, channel: socket.socket, frame: bytes) -> None:
        """Send *frame* whole; `TimeoutError` if the child reads none of it for a while.

        Under ``_send_lock``.  The socket stays blocking (no poll before each
        read), so sends are non-blocking by flag and wait in poll if the
        child's end is full: a child whose loop is stuck must not hang us.
        """
        try:
            sent = channel.send(frame, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        if sent == len(frame):  # the common case: all of it at once
            return
        view = memoryview(frame)[sent:]
        while view:
            if not self._write_poller.poll(int(CALL_TIMEOUT * 1000)):
                raise TimeoutError(f"the child read nothing for {CALL_TIMEOUT:g}s")
            try:
                view = view[channel.send(view, socket.MSG_DONTWAIT) :]
            except BlockingIOError:
                pass

    def _receive(self, seq: int, timeout: float) -> object:
        """The reply to *seq*: read it ourselves, or be handed it by whoever reads."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                with self._lock:
                    if seq in self._replies:
                        self._waiting.discard(seq)
                        return self._replies.pop(seq)
                    if self._finished:
                        raise _Stopped
                    if self.died is not None or (self._closed and not self._goodbye):
                        break  # the child died: reap it outside the lock
                    if left <= 0:
                        raise ServerStateError(self._late_text(timeout))
                    if self._reading or self._closed:
                        self._cond.wait(left)  # a reader hands us the reply (or stop() ends)
                        continue
                    self._reading = True
                reply = self._read_once(left, seq)
                if reply is not _NOTHING:
                    return reply
            raise self._dead()
        except BaseException:
            with self._lock:
                self._waiting.discard(seq)
                self._replies.pop(seq, None)
            raise

    def _read_for_awaits(self) -> None:
        """The helper thread: read while awaiting calls wait and no one else reads."""
        with self._lock:
            while True:
                self._reader_wake.wait_for(
                    lambda: (
                        self._reader_done
                        or self._closed
                        or (bool(self._callbacks) and not self._reading)
                    )
                )
                if self._reader_done or self._closed:
                    return
                self._reading = True
                self._lock.release()
                try:
                    self._read_once(None)
                finally:
                    self._lock.acquire()

    def _read_once(self, timeout: float | None, mine: int = -1) -> object:
        """Read what the child sent (within *timeout* seconds) and hand it out.

        Called without the lock by the one thread that set ``_reading``.
        Returns the reply to seq *mine* if it came (no longer awaited then),
        else ``_NOTHING``.
        """
        channel = self._channel
        frames: list[tuple[int, bytes]] = []
        replies: list[tuple[int, object]] = []
        size = 1
        try:
            if channel is None:
                size = 0
            elif (
                timeout is None
                or timeout >= _READ_SLICE
                or self._poller.poll(max(1, int(timeout * 1000)))
            ):
                # one syscall: recv blocks, for _READ_SLICE at most (SO_RCVTIMEO)
                size = channel.recv_into(self._buffer)
                if size:
                    frames = self._decoder.feed(memoryview(self._buffer)[:size])
            for seq, payload in frames:
                try:
                    replies.append((seq, decode_frame(payload)))
                except FrameError as exc:  # this reply alone is lost
                    replies.append((seq, Failed(exc)))
        except FrameError as exc:  # a corrupt stream: nothing more can be trusted
            if self._child is not None:
                self._child.kill()
            self._dead(f"sent a bad frame ({exc}) and was killed")
            size = 0
        except BlockingIOError:  # _READ_SLICE passed: the caller checks its deadline
            pass
        except OSError:
            size = 0
        except BaseException:  # say, Ctrl-C while reading or unpickling: let another read
            with self._lock:
                self._reading = False
                self._cond.notify_all()
                self._reader_wake.notify()
            raise
        callbacks: list[tuple[Callable[[object], None], object]] = []
        result: object = _NOTHING
        with self._lock:
            self._reading = False
            for seq, reply in replies:
                if seq == self._shutdown_seq:
                    self._goodbye = True
                if seq == mine:
                    self._waiting.discard(seq)
                    result = reply
                elif seq in self._waiting:
                    self._replies[seq] = reply
                elif seq in self._callbacks:
                    callbacks.append((self._callbacks.pop(seq), reply))
                # else: the late reply of a call that gave up
            if not size:
                self._closed = True
                if not self._goodbye:
                    callbacks += [(c, _CLOSED) for c in self._callbacks.values()]
                    self._callbacks.clear()
            self._cond.notify_all()
            if self._callbacks or self._closed:
                self._reader_wake.notify()
        for callback, reply in callbacks:
            callback(reply)
        return result

    @staticmethod
    def _late_text(timeout: float) -> str:
        return (
            f"the server child process did not answer within {timeout:g}s "
            "(is a response callback blocking its event loop?)"
        )

    # -- death ---------------------------------------------------------------

    def _dead(self, how: str | None = None) -> ServerDiedError:
        """Reap the child (killing it if need be) and keep its `ServerDiedError`."""
        assert self._child is not None
        died = self._child.reap(how)
        with self._lock:
            self._cond.notify_all()
        return died


def _unwrap(reply: object) -> Any:
    """The value of an `Ok`, or raise the error of a `Failed`."""
    if isinstance(reply, Failed):
        raise reply.error
    assert isinstance(reply, Ok), reply
    return reply.value


def _settle(future: asyncio.Future[object], reply: object) -> None:
    if not future.done():
        future.set_result(reply)
