"""The child process of subprocess mode: ``python -m tserver._child FD``.

FD is the child's end of a ``socketpair`` shared with the parent.  The first
frame is a `StartChild`; the child binds, reports ``Ok(port)`` (or
``Failed(error)``), then runs a `~tserver._host.Host` (the same as thread
mode's) and the socketpair on one IOLoop.  Each later frame is a command
and gets exactly one reply with the same sequence number; each frame is
unpickled apart, so a command the child cannot unpickle (its callback does
not import here) fails alone.  A `WaitRequests` is answered when the
awaited request arrives or its time is up; a `Shutdown` once the host has
shut down, with the final state.  When the socketpair reaches EOF (the
parent stopped or died) the child exits by itself: no orphans.

Ctrl-C reaches the whole process group: the child ignores it and lets the
parent stop it.  A process that user code forks off the child (a callback
calling ``os.fork()``) drops its copy of the socketpair and dies with the
child (a parent-death signal), so it neither steals commands nor outlives
the server.
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
import pickle
import signal
import socket
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tornado.ioloop import IOLoop

from ._backend import ServeConfig, held_timeout, messages_timeout
from ._commands import (
    CheckReport,
    RecorderState,
    Restore,
    Shutdown,
    Snapshot,
    WaitHeld,
    WaitMessages,
    WaitRequests,
    WithdrawWait,
)
from ._errors import ServerStartError
from ._host import Host
from ._listen import bind_listening
from ._recorder import Recorder
from ._wire import (
    Failed,
    FrameDecoder,
    FrameError,
    Ok,
    StartChild,
    decode_frame,
    encode_frame,
    encode_frames,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ._waiting import Pending

__all__ = ["main", "portable"]

#: How long the child tries to write its last frames once it stops serving.
_FLUSH_SECONDS = 10.0


def _pickles(value: object) -> Exception | None:
    try:
        pickle.dumps(value)
    except Exception as exc:
        return exc
    return None


def portable(value: Any) -> Any:
    """*value* with what would not pickle replaced: exceptions, rules, callbacks.

    A `RecorderState` says in ``lost`` what it had to describe instead of
    keep (a matcher that holds a lock once it has run, say).
    """
    if isinstance(value, CheckReport):
        return CheckReport(
            tuple(e.portable() for e in value.errors), value.unmatched, value.unused_rules
        )
    if not isinstance(value, RecorderState):
        return value
    lost = list(value.lost)
    rules = []
    for rule in value.rules:
        problem = _pickles(rule)
        if problem is not None:
            lost.append(f"rule #{rule.id} ({type(problem).__name__}: {problem}); it is described")
        rules.append(rule if problem is None else rule.described())
    layers = []
    for table in (value.defaults, value.once):
        kept = []
        for method, overlay in table:
            fields = []
            for key, field_value in overlay:
                problem = _pickles(field_value)
                if problem is None:
                    fields.append((key, field_value))
                else:
                    lost.append(f"the default response's {key} ({problem}); it was dropped")
            kept.append((method, tuple(fields)))
        layers.append(tuple(kept))
    return replace(  # every other field (history, exchanges, connections) is kept as it is
        value,
        rules=tuple(rules),
        defaults=layers[0],
        once=layers[1],
        errors=tuple(e.portable() for e in value.errors),
        lost=tuple(lost),
    )


class Child:
    """Runs one host and answers commands on the socketpair."""

    def __init__(
        self, channel: socket.socket, config: StartChild, decoder: FrameDecoder | None = None
    ) -> None:
        self.channel = channel
        self.config = config
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.ioloop = IOLoop.current()
        ssl_context = None
        if config.tls_cert is not None and config.tls_key is not None:
            from ._tls import server_context_from_pem

            ssl_context = server_context_from_pem(
                config.tls_cert, config.tls_key, config.tls_client_ca, config.client_cert
            )
        tunnels = None
        if config.proxy and config.tls_client_ca is not None and config.tls_ca_key is not None:
            from ._tls import TunnelCerts

            tunnels = TunnelCerts(config.tls_client_ca, config.tls_ca_key, config.client_cert)
        serve = ServeConfig(
            config.address,
            config.port,
            strict=config.strict,
            history_limit=config.history_limit,
            max_body_size=config.max_body_size,
            ssl_context=ssl_context,
            proxy=config.proxy,
            proxy_auth=config.proxy_auth,
            tunnels=tunnels,
            http2=config.http2,
        )
        recorder = Recorder(strict=config.strict, history_limit=config.history_limit)
        self.host = Host(recorder, serve, ssl_context)
        self.decoder = decoder or FrameDecoder()
        self.buffer = bytearray(1 << 16)
        # unsent output: bytes, and the frames of a big reply still to pickle
        self.pending: collections.deque[memoryview | Iterator[bytes]] = collections.deque()
        self.writing = False  # the loop watches the socket for room to write
        self.closing: asyncio.Task[None] | None = None  # the shutdown, once asked
        # the claims of WaitHeld commands by token: pending ones, and the last answered
        self.claims: dict[int, tuple[Pending[Any], Callable[[], bool]]] = {}
        self.answered: collections.OrderedDict[int, Pending[Any]] = collections.OrderedDict()

    # -- writing ------------------------------------------------------------------

    def send(self, message: object, seq: int) -> None:
        """Send a reply: at once if the socket takes it, else queued.

        Never blocks the loop.  The parent reads only while a call waits, so
        a late reply it gave up on may fill the socket; the child must go on
        serving HTTP meanwhile (the next call drains the socket).
        """
        frames = encode_frames(message, seq)
        try:
            first = next(frames)
        except Exception as exc:  # a reply that does not pickle
            frames = iter(())
            first = encode_frame(Failed(RuntimeError(f"reply does not pickle: {exc!r}")), seq)
        if not self.pending:  # the common case: one small frame, out at once
            try:
                sent = self.channel.send(first)
            except BlockingIOError:
                sent = 0
            except OSError:  # the parent is gone: on_readable sees the EOF
                return
            first = b"" if sent == len(first) else first[sent:]
        if first:
            self.pending.append(memoryview(first))
        self.pending.append(frames)
        self.write_pending()

    def write_pending(self) -> None:
        """Write queued frames as the socket takes them (also the loop's writer callback)."""
        pending = self.pending
        while pending:
            head = pending[0]
            if not isinstance(head, memoryview):
                frame = next(head, None)
                if frame is None:
                    pending.popleft()
                else:
                    pending.appendleft(memoryview(frame))
                continue
            try:
                sent = self.channel.send(head)
            except BlockingIOError:
                sent = 0
            except OSError:  # the parent is gone: on_readable sees the EOF
                pending.clear()
                break
            if sent < len(head):
                pending[0] = head[sent:]
                if not self.writing:
                    self.writing = True
                    self.loop.add_writer(self.channel.fileno(), self.write_pending)
                return
            pending.popleft()
        if self.writing:
            self.writing = False
            self.loop.remove_writer(self.channel.fileno())

    def flush(self, timeout: float) -> None:
        """Write what is still queued, blocking for *timeout* s at most (the loop is done)."""
        with contextlib.suppress(KeyError, ValueError):
            self.loop.remove_writer(self.channel.fileno())
        if not self.pending:
            return
        self.channel.settimeout(timeout)
        with contextlib.suppress(OSError):  # the parent is gone, or did not read
            for item in self.pending:
                for data in [item] if isinstance(item, memoryview) else item:
                    self.channel.sendall(data)
        self.pending.clear()

    # -- serving ------------------------------------------------------------------

    def start(self, seq: int) -> bool:
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
                self.host.apply(Restore(state))
            sockets = bind_listening(cfg.address, cfg.port)
            self.host.serve(sockets)
        except Exception as exc:
            self.send(Failed(exc), seq)
            return False
        self.send(Ok(int(sockets[0].getsockname()[1])), seq)
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
        self.handle_frames(messages)

    def handle_frames(self, frames: list[tuple[int, bool, bytes]]) -> None:
        """Answer each command frame (one that does not unpickle fails alone)."""
        for seq, _, payload in frames:
            try:
                command = decode_frame(payload)
            except FrameError as exc:
                self.send(Failed(ValueError(_unpickle_text(exc))), seq)
                continue
            self.handle(seq, command)

    def handle(self, seq: int, command: Any) -> None:
        """Answer one command (a wait and a shutdown answer later)."""
        if isinstance(command, WaitRequests):
            recorder = self.host.recorder
            pending, cancel = recorder.pending_history(command.count)
            self.wait(
                seq,
                pending,
                cancel,
                command.timeout,
                lambda: recorder.timeout_error(command.count, command.timeout),
            )
            return
        if isinstance(command, WaitMessages):
            recorder = self.host.recorder
            pending_session, cancel_session = recorder.pending_messages(
                command.session, command.count
            )
            self.wait(
                seq,
                pending_session,
                cancel_session,
                command.timeout,
                lambda: messages_timeout(command.session, command.count, command.timeout),
            )
            return
        if isinstance(command, WaitHeld):
            held, cancel_held = self.host.held.claim()
            token = command.token
            self.claims[token] = (held, cancel_held)
            self.wait(
                seq,
                held,
                cancel_held,
                command.timeout,
                lambda: held_timeout(command.timeout),
                token,
            )
            return
        if isinstance(command, WithdrawWait):
            self.withdraw(command.token)
            self.send(Ok(None), seq)
            return
        if isinstance(command, Shutdown):
            self.loop.remove_reader(self.channel.fileno())  # the goodbye is the last command
            self.closing = self.loop.create_task(self.shutdown(seq))
            return
        try:
            reply: object = Ok(portable(self.host.apply(command)))
        except Exception as exc:
            reply = Failed(exc)
        self.send(reply, seq)

    def wait(
        self,
        seq: int,
        pending: Pending[Any],
        cancel: Callable[[], bool],
        timeout: float,
        timeout_error: Callable[[], BaseException],
        token: int | None = None,
    ) -> None:
        """Reply with what *pending* delivers, or with *timeout_error* when time is up.

        A wait with a *token* (a `WaitHeld`) stays known by it, so that a
        `WithdrawWait` can give back what it took.
        """

        def answer() -> None:  # on the loop: a wake-up is handed over by call_soon
            timer.cancel()
            try:
                reply: object = Ok(pending.result())
            except Exception as exc:  # the wait was abandoned (a shutdown)
                reply = Failed(exc)
            if token is not None and self.claims.pop(token, None) is not None:
                self.answered[token] = pending
                while len(self.answered) > _ANSWERED_KEPT:
                    self.answered.popitem(last=False)
            self.send(reply, seq)

        def expire() -> None:
            if cancel():  # withdrawn: nothing came in time
                if token is not None:
                    self.claims.pop(token, None)
                self.send(Failed(timeout_error()), seq)
            # else: it was taken by the recording, and `answer` is on its way

        def arrived() -> None:  # on the recording thread (this loop's own)
            self.loop.call_soon(answer)

        timer = self.loop.call_later(timeout, expire)
        pending.add_done_callback(arrived)

    def withdraw(self, token: int) -> None:
        """The parent gave up the wait *token*: withdraw it, or give back what it got."""
        claim = self.claims.pop(token, None)
        if claim is not None:
            pending, cancel = claim
            if cancel():
                return  # withdrawn before anything was held for it
        else:
            answered = self.answered.pop(token, None)  # answered, and the answer dropped
            if answered is None:
                return
            pending = answered
        if pending.done:
            with contextlib.suppress(Exception):
                self.host.held.unclaim(pending.result())

    async def shutdown(self, seq: int) -> None:
        """Shut the host down, send the final state, stop the loop."""
        try:
            await self.host.shutdown()
        finally:
            self.send(Ok(portable(self.host.apply(Snapshot()))), seq)
            self.finish()

    def finish(self) -> None:
        """Stop the loop (serving ends; main() closes everything)."""
        with contextlib.suppress(KeyError, ValueError):
            self.loop.remove_reader(self.channel.fileno())
        self.loop.stop()


#: How many answered `WaitHeld` claims a `WithdrawWait` may still give back.
_ANSWERED_KEPT = 64


def _unpickle_text(exc: FrameError) -> str:
    return (
        f"the child process of subprocess mode cannot unpickle the command ({exc}); "
        "callbacks and matchers must be defined at module level in a module the "
        "child can import from the parent's sys.path"
    )


def _read_start(channel: socket.socket) -> tuple[int, StartChild, FrameDecoder, list[Any]]:
    """The start frame; the decoder, and the frames that came with it (handled once started)."""
    decoder = FrameDecoder()
    while True:
        data = channel.recv(1 << 16)
        if not data:
            raise SystemExit(0)  # the parent went away before starting us
        frames = decoder.feed(data)
        if frames:
            seq, _, payload = frames[0]
            config = decode_frame(payload)
            if not isinstance(config, StartChild):
                raise SystemExit(f"tserver child: expected StartChild, got {config!r}")
            return seq, config, decoder, frames[1:]


def _die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (Linux; elsewhere nothing)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _forked_copy(channel_fd: int, parent: int) -> None:
    """In a process forked off the child: let go of the socketpair; die with the child.

    The copy shares the child's event loop and descriptors; without this it
    could read commands meant for the child, and it would outlive the server.
    """
    _die_with_parent()
    if os.getppid() != parent:  # the child is gone already
        os._exit(0)
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, channel_fd)  # its reads now see EOF, and it stops serving
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run the child; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    fd = int(args[0])
    os.set_inheritable(fd, False)  # a process the user's code spawns must not hold it
    me = os.getpid()
    os.register_at_fork(after_in_child=lambda: _forked_copy(fd, me))
    channel = socket.socket(fileno=fd)
    try:
        seq, config, decoder, early = _read_start(channel)
        sys.path[:] = list(config.sys_path)
        child = Child(channel, config, decoder)
        started = child.start(seq)
        if started:
            child.handle_frames(early)  # a command sent before we answered (a stop)
        gc.freeze()
        gc.enable()
        if started:
            child.loop.run_forever()
        child.flush(_FLUSH_SECONDS)  # the final state, or the start error
        if started:
            child.loop.run_until_complete(child.host.shutdown(0.5))
        child.ioloop.close(all_fds=True)
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    import atexit

    status = main()
    atexit._run_exitfuncs()  # what sys.exit would run (coverage.py saves here)
    sys.stdout.flush()  # pragma: no cover (coverage saved its data above)
    sys.stderr.flush()  # pragma: no cover
    os._exit(status)  # pragma: no cover (skip tearing the interpreter down: ~30 ms)
