"""The child process of subprocess mode: ``python -m tserver._child FD``.

FD is the child's end of a ``socketpair`` shared with the parent.  The first
frame is a `StartChild`; the child binds, reports ``Ok(port)`` (or
``Failed(error)``), then serves HTTP and the socketpair from one IOLoop.
Each later frame is a command and gets exactly one reply with the same
sequence number; each frame is unpickled apart, so a command the child
cannot unpickle (its callback does not import here) fails alone.
A `WaitRequests` reply is sent when the awaited request arrives or its time
is up.  When the socketpair reaches EOF (the parent stopped or died) the
child exits by itself: no orphans.  Ctrl-C reaches the whole process group:
the child ignores it and lets the parent stop it.
"""

from __future__ import annotations

import gc

if __name__ == "__main__":
    # No collections while importing and starting: that allocates much and
    # frees little, and the collections cost ~1 % of the start.  main()
    # turns the collector back on (and freezes what start-up made).
    gc.disable()

import asyncio
import collections
import contextlib
import os
import signal
import socket
import sys
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from ._errors import ServerStartError
from ._handler import drop_header_timeout, make_app
from ._listen import bind_listening
from ._protocol import (
    CheckReport,
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
)
from ._recorder import Recorder

__all__ = ["main"]

#: How long the child tries to write its last frames once it stops serving.
_FLUSH_SECONDS = 10.0


def _portable(value: Any) -> Any:
    """Replace exceptions that would not pickle in reports and snapshots."""
    if isinstance(value, CheckReport):
        return CheckReport(
            tuple(e.portable() for e in value.errors), value.unmatched, value.unused_rules
        )
    if isinstance(value, RecorderState):
        return RecorderState(
            value.rules,
            value.defaults,
            value.once,
            value.history,
            value.count,
            tuple(e.portable() for e in value.errors),
            value.unmatched,
        )
    return value


class Child:
    """Serves one recorder over HTTP and answers commands on the socketpair."""

    def __init__(self, channel: socket.socket, config: StartChild) -> None:
        self.channel = channel
        self.config = config
        self.recorder = Recorder(strict=config.strict, history_limit=config.history_limit)
        self.decoder = FrameDecoder()
        self.buffer = bytearray(1 << 16)
        self.pending: collections.deque[memoryview] = collections.deque()  # unsent output
        self.server: HTTPServer | None = None
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.ioloop = IOLoop.current()

    def send(self, message: object, seq: int = 0) -> None:
        """Send one frame to the parent: at once if the socket takes it, else queued.

        Never blocks the loop.  The parent reads only while a call waits, so
        a late reply it gave up on may fill the socket; the child must go on
        serving HTTP meanwhile (the next call drains the socket).
        """
        try:
            frame = encode_frame(message, seq)
        except Exception as exc:  # a reply that does not pickle
            frame = encode_frame(Failed(RuntimeError(f"reply does not pickle: {exc!r}")), seq)
        if self.pending:  # keep the order of frames
            self.pending.append(memoryview(frame))
            return
        try:
            sent = self.channel.send(frame)  # a small frame goes out whole, at once
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # the parent is gone: on_readable sees the EOF
        if sent < len(frame):
            self.pending.append(memoryview(frame)[sent:])
            self.loop.add_writer(self.channel.fileno(), self.write_pending)

    def write_pending(self) -> None:
        """Write queued frames as the socket takes them (the loop's writer callback)."""
        pending = self.pending
        while pending:
            try:
                sent = self.channel.send(pending[0])
            except BlockingIOError:
                return
            except OSError:  # the parent is gone
                pending.clear()
                break
            if sent < len(pending[0]):
                pending[0] = pending[0][sent:]
                return
            pending.popleft()
        self.loop.remove_writer(self.channel.fileno())

    def flush(self, timeout: float) -> None:
        """Write what is still queued, blocking for *timeout* s at most (the loop is done)."""
        with contextlib.suppress(KeyError, ValueError):
            self.loop.remove_writer(self.channel.fileno())
        if not self.pending:
            return
        self.channel.settimeout(timeout)
        with contextlib.suppress(OSError):  # the parent is gone, or did not read
            for view in self.pending:
                self.channel.sendall(view)
        self.pending.clear()

    def start(self) -> bool:
        """Bind and serve; report the port or the error.  False: exit now."""
        cfg = self.config
        try:
            if cfg.state is not None:
                try:
                    state = decode_frame(cfg.state)
                except FrameError as exc:
                    raise ServerStartError(
                        "the state set before start() does not unpickle in the child "
                        f"process ({exc}); callbacks and matchers must be importable there"
                    ) from None
                assert isinstance(state, RecorderState)
                self.recorder.apply(Restore(state))
            sockets = bind_listening(cfg.address, cfg.port)
            ssl_context = None
            if cfg.tls_cert is not None and cfg.tls_key is not None:
                from ._tls import server_context_from_files

                ssl_context = server_context_from_files(cfg.tls_cert, cfg.tls_key)
            self.server = HTTPServer(
                make_app(self.recorder, cfg.max_body_size),
                ssl_options=ssl_context,
                max_body_size=cfg.max_body_size,
            )
            drop_header_timeout(self.server)
            self.server.add_sockets(sockets)
        except Exception as exc:
            self.send(Failed(exc))
            return False
        self.send(Ok(int(sockets[0].getsockname()[1])))
        self.channel.setblocking(False)
        # straight on the asyncio loop Tornado runs on: one wrapper less per command
        self.loop.add_reader(self.channel.fileno(), self.on_readable)
        return True

    def on_readable(self) -> None:
        """Read what the parent sent; EOF means the parent is gone."""
        try:
            size = self.channel.recv_into(self.buffer)
            data = self.buffer[:size]
        except BlockingIOError:
            return
        except OSError:
            data = bytearray()
        if not data:
            self.finish()
            return
        try:
            messages = self.decoder.feed(data)
        except FrameError as exc:
            print(f"tserver child: {exc}; exiting", file=sys.stderr)
            self.finish()
            return
        for seq, payload in messages:
            try:
                command = decode_frame(payload)
            except FrameError as exc:
                self.send(Failed(ValueError(_unpickle_text(exc))), seq)
                continue
            self.handle(seq, command)

    def handle(self, seq: int, command: Any) -> None:
        """Answer one command (a wait may answer later)."""
        if isinstance(command, WaitRequests):
            self.wait(seq, command)
            return
        if isinstance(command, Shutdown):
            self.send(Ok(_portable(self.recorder.apply(Snapshot()))), seq)
            self.finish()
            return
        try:
            reply: object = Ok(_portable(self.recorder.apply(command)))
        except Exception as exc:
            reply = Failed(exc)
        self.send(reply, seq)

    def wait(self, seq: int, command: WaitRequests) -> None:
        """Reply once `command.count` requests arrived, or when time is up."""
        recorder = self.recorder
        answered = False

        def answer(reply: object) -> None:
            nonlocal answered
            if not answered:
                answered = True
                self.send(reply, seq)

        def wake() -> None:
            # Called by Recorder.record on this loop's thread, outside its lock.
            timer.cancel()
            answer(Ok(recorder.wait(command.count, 0.0)))

        def expire() -> None:
            if cancel is not None:
                cancel()
            answer(Failed(recorder.timeout_error(command.count, command.timeout)))

        timer = self.loop.call_later(command.timeout, expire)
        cancel = recorder.add_waiter(command.count, wake)
        if cancel is None:
            timer.cancel()
            answer(Ok(recorder.wait(command.count, 0.0)))

    def finish(self) -> None:
        """Stop the loop (serving ends; main() closes everything)."""
        with contextlib.suppress(KeyError, ValueError):
            self.loop.remove_reader(self.channel.fileno())
        if self.server is not None:
            self.server.stop()
        self.loop.stop()

    async def close_connections(self) -> None:
        """Close open client connections and cancel handlers still running."""
        if self.server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.server.close_all_connections(), 2.0)
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)


def _unpickle_text(exc: FrameError) -> str:
    return (
        f"the child process of subprocess mode cannot unpickle the command ({exc}); "
        "callbacks and matchers must be defined at module level in a module the "
        "child can import from the parent's sys.path"
    )


def _read_start(channel: socket.socket) -> StartChild:
    decoder = FrameDecoder()
    while True:
        data = channel.recv(1 << 16)
        if not data:
            raise SystemExit(0)  # the parent went away before starting us
        frames = decoder.feed(data)
        if frames:
            config = decode_frame(frames[0][1])
            if not isinstance(config, StartChild):
                raise SystemExit(f"tserver child: expected StartChild, got {config!r}")
            return config


def main(argv: list[str] | None = None) -> int:
    """Run the child; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    fd = int(args[0])
    os.set_inheritable(fd, False)  # a process the user's code spawns must not hold it
    channel = socket.socket(fileno=fd)
    try:
        config = _read_start(channel)
        sys.path[:] = list(config.sys_path)
        child = Child(channel, config)
        started = child.start()
        gc.freeze()
        gc.enable()
        if started:
            child.loop.run_forever()
        child.flush(_FLUSH_SECONDS)  # the final state, or the start error
        if started:
            child.loop.run_until_complete(child.close_connections())
        child.ioloop.close(all_fds=True)
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    import atexit

    status = main()
    atexit._run_exitfuncs()  # what sys.exit would run (coverage.py saves here)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # skip tearing the interpreter down: ~30 ms
