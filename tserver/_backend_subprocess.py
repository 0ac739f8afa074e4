"""Subprocess mode, parent side: a child process hosts the recorder.

The parent spawns ``sys.executable -m tserver._child FD`` with one end of a
``socketpair`` and talks to it in frames of `tserver._protocol`: one
``(seq, command)``, one ``(seq, reply)``.  Sequence numbers let a call that
gave up (its child did not answer in time) be skipped when its late reply
arrives.  This module imports no Tornado: a test process that uses only
subprocess mode never builds a Tornado application.

A dead child is noticed at the next call: the socketpair reads EOF, the
child is reaped, and `ServerDiedError` carries its exit status and the tail
of its stderr (kept in a temporary file, and copied to our stderr at stop so
nothing it said is lost).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from ._errors import ServerDiedError, ServerStartError, ServerStateError
from ._protocol import (
    Failed,
    FrameDecoder,
    Ok,
    RecorderState,
    Restore,
    Shutdown,
    Snapshot,
    StartChild,
    WaitRequests,
    encode_frame,
)

if TYPE_CHECKING:
    from ._backend import ServeConfig
    from ._protocol import Command
    from ._recorder import Recorder
    from ._request import Request

__all__ = ["SubprocessBackend"]

#: Seconds a control call may wait for the child beyond its own timeout.
CALL_TIMEOUT = 10.0
_STDERR_TAIL = 4000


def _spawn_child(channel: socket.socket, stderr: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start the child with *channel* as an inherited fd (the one POSIX-only spot)."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    fd = channel.fileno()
    return subprocess.Popen(
        [sys.executable, "-m", "tserver._child", str(fd)],
        pass_fds=(fd,),
        stdin=subprocess.DEVNULL,
        stderr=stderr,
        env=env,
    )


class SubprocessBackend:
    """Runs the server in a child process and forwards commands to it."""

    def __init__(self, recorder: Recorder, config: ServeConfig) -> None:
        self._recorder = recorder  # the local copy: seeds the child, gets the final state
        self._config = config
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None
        self._stderr: IO[bytes] | None = None
        self._decoder = FrameDecoder()
        self._buffer = bytearray(1 << 16)
        self._seq = 0
        self._died: ServerDiedError | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> int:
        """Spawn the child, send it the configuration, return its bound port."""
        ours, theirs = socket.socketpair()
        self._stderr = tempfile.TemporaryFile(prefix="tserver-child-stderr-")
        try:
            self._proc = _spawn_child(theirs, self._stderr)
        except OSError as exc:
            ours.close()
            self._close_stderr()
            raise ServerStartError(f"cannot start the server child process: {exc}") from exc
        finally:
            theirs.close()
        self._channel = ours
        cfg = self._config
        tls = cfg.tls
        start = StartChild(
            address=cfg.address,
            port=cfg.port,
            tls_cert=None if tls is None else tls.cert_path,
            tls_key=None if tls is None else tls.key_path,
            strict=cfg.strict,
            history_limit=cfg.history_limit,
            max_body_size=cfg.max_body_size,
            sys_path=tuple(sys.path),
            state=self._recorder.apply(Snapshot()),
        )
        try:
            ours.sendall(encode_frame(start))
            reply = self._receive(None, cfg.startup_timeout)
        except ServerDiedError as exc:
            self.stop(1.0)
            raise ServerStartError(
                f"the server child process exited while starting "
                f"(exit status {exc.returncode}):\n{exc.stderr_tail}"
            ) from None
        except ServerStateError as exc:
            self.stop(1.0)
            raise ServerStartError(f"the server child process did not start: {exc}") from None
        if isinstance(reply, Failed):
            self.stop(1.0)
            if isinstance(reply.error, ServerStartError):
                raise ServerStartError(str(reply.error)) from None
            raise ServerStartError(f"the server child process failed to start: {reply.error!r}")
        assert isinstance(reply, Ok)
        return int(reply.value)

    def stop(self, timeout: float) -> None:
        """Ask the child for its final state and to exit; reap it; close all."""
        proc, channel = self._proc, self._channel
        if proc is None:
            return
        if channel is not None and self._died is None and proc.poll() is None:
            try:
                state = self._request(Shutdown(), timeout)
            except (ServerDiedError, ServerStateError, OSError):
                state = None
            if isinstance(state, RecorderState):
                self._recorder.apply(Restore(state))
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if channel is not None:
            channel.close()
        self._channel = None
        self._proc = None
        self._forward_stderr()
        self._close_stderr()

    def close(self) -> None:
        """Nothing beyond `stop` to release."""

    # -- calls ---------------------------------------------------------------

    def call(self, command: Command) -> Any:
        """Send *command* to the child and return its result (or raise its error)."""
        return self._request(command, CALL_TIMEOUT)

    def wait(self, count: int, timeout: float) -> list[Request]:
        """Block until the child reports *count* requests (it answers at the time)."""
        result: list[Request] = self._request(WaitRequests(count, timeout), timeout + CALL_TIMEOUT)
        return result

    async def wait_async(self, count: int, timeout: float) -> list[Request]:
        """`wait` on a helper thread, so the caller's event loop keeps running."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Request]] = loop.create_future()

        def work() -> None:
            try:
                result = self.wait(count, timeout)
            except BaseException as exc:
                loop.call_soon_threadsafe(_settle, done, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, done, result, None)

        thread = threading.Thread(target=work, name="tserver-await", daemon=True)
        thread.start()
        try:
            return await done
        finally:
            if done.done():
                thread.join()

    def _request(self, command: Command, timeout: float) -> Any:
        with self._lock:
            if self._died is not None:
                raise self._died
            channel = self._channel
            if channel is None:
                raise ServerStateError("the server child process is not running")
            self._seq += 1
            seq = self._seq
            try:
                channel.sendall(encode_frame((seq, command)))
            except OSError:
                raise self._dead() from None
            reply = self._receive(seq, timeout)
        if isinstance(reply, Failed):
            raise reply.error
        assert isinstance(reply, Ok)
        return reply.value

    def _receive(self, seq: int | None, timeout: float) -> object:
        """The reply to *seq* (any first frame when `None`); stale replies are skipped."""
        channel = self._channel
        assert channel is not None
        deadline = time.monotonic() + timeout
        pending: list[object] = []
        while True:
            while pending:
                message = pending.pop(0)
                if seq is None:
                    return message
                if isinstance(message, tuple) and message[0] == seq:
                    return message[1]
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerStateError(
                    f"the server child process did not answer within {timeout:g}s "
                    "(is a response callback blocking its event loop?)"
                )
            channel.settimeout(left)
            try:
                size = channel.recv_into(self._buffer)
                data = self._buffer[:size]
            except TimeoutError:
                continue
            except OSError:
                data = bytearray()
            if not data:
                raise self._dead()
            pending.extend(self._decoder.feed(data))

    # -- death ---------------------------------------------------------------

    def _dead(self) -> ServerDiedError:
        proc = self._proc
        returncode = None
        if proc is not None:
            try:
                returncode = proc.wait(1.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                returncode = proc.wait()
        tail = self._stderr_tail()
        pid = proc.pid if proc is not None else "?"
        self._died = ServerDiedError(
            f"the tserver child process (pid {pid}) died with exit status {returncode}"
            + (f"; its stderr ends with:\n{tail}" if tail else " and wrote nothing to stderr"),
            returncode,
            tail,
        )
        return self._died

    def _stderr_tail(self) -> str:
        stream = self._stderr
        if stream is None:
            return ""
        stream.flush()
        size = stream.seek(0, os.SEEK_END)
        stream.seek(max(0, size - _STDERR_TAIL))
        return stream.read().decode("utf-8", "replace")

    def _forward_stderr(self) -> None:
        stream = self._stderr
        if stream is None:
            return
        stream.seek(0)
        text = stream.read()
        if text:
            sys.stderr.write(text.decode("utf-8", "replace"))
            sys.stderr.flush()

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
