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
import select
import signal
import socket
import struct
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
    from collections.abc import Callable, Iterator, Sequence

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


def spare(token: str, parent: int) -> int:
    r"""Run as the warm spare of *parent* (`tserver._spare`); returns the exit status.

    Everything a server child imports is imported by now.  This first
    process binds ``\0tserver-spare-PARENT-TOKEN`` and forks the spare off,
    then exits: the spare is nobody's child but init's.  The spare does a
    child's first-time work once (`_rehearse`), listens, and writes its pid
    on its stdout (a pipe the parent reads): it is ready.  It exits at once
    when *parent* does.
    """
    import tornado.platform.asyncio  # noqa: F401 - what a server child imports as it starts

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(f"\0tserver-spare-{parent}-{token}".encode())
    watch = os.pidfd_open(parent)  # readable once the parent has exited
    if os.getppid() != parent:  # pragma: no cover - it died before we watched it
        return 1
    if os.fork() != 0:  # the parent's Popen reaps this first process
        os._exit(_exit_status(0))
    return _serve_as_spare(listener, watch, parent)  # a new frame: coverage.py follows it


def _serve_as_spare(listener: socket.socket, watch: int, parent: int) -> int:
    """The spare, detached: rehearse, listen, say so with our pid, serve claims."""
    _rehearse()
    gc.freeze()  # what importing made is shared with every forked child, unscanned
    listener.listen(64)  # SO_PEERCRED of a claim's connection names this process
    announce = os.dup(1)  # the parent's pipe: our pid on it says we are ready
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return _Spare(listener, watch, parent, announce).run()


def _rehearse() -> None:
    """Do once, in the spare, the first-time work of every child's start.

    The children it forks then find it done: the name-service modules that
    resolving a listening address loads, the application's routing regex
    compiled, the event loop's first-use setup.  About a third of a forked
    child's start.
    """
    for address in ("127.0.0.1", "::1", "localhost"):
        with contextlib.suppress(OSError):
            socket.getaddrinfo(address, 0, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    asyncio.new_event_loop().close()
    Host(Recorder(), ServeConfig("127.0.0.1", 0)).build_server()


class _Spare:
    """The spare's loop: claims from the parent, exits of the children it forked.

    A claim is one connection from the parent (``SO_PEERCRED``) carrying
    ``fork`` and, by ``SCM_RIGHTS``, the new child's socketpair end, the
    stderr it writes to, a memfd describing the parent's world (see
    `_take_on`) and, when the parent has one, its stdout.

    The spare keeps one child forked ahead (``waiting``), blocked on a
    socketpair of its own: a claim hands it the descriptors, and it takes
    them on and runs `main` as a fresh child would.  The spare answers with
    its pid and a pidfd of it, keeps the connection as the handle on the
    child (it writes the exit status there once it has reaped the child),
    and only then forks the next waiting child, off the claim's path.
    ``retire`` ends the forking; the spare then exits with its last child.
    """

    def __init__(self, listener: socket.socket, watch: int, parent: int, announce: int) -> None:
        import selectors

        self.listener: socket.socket | None = listener
        self.watch = watch
        self.parent = parent
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self.selector.register(watch, selectors.EVENT_READ, "parent")
        #: pid: (the claim's connection, or None: not claimed or let go; its pidfd)
        self.children: dict[int, tuple[socket.socket | None, int]] = {}
        #: The child forked ahead: its pid and our end of its socketpair.
        self.waiting: tuple[int, socket.socket] | None = None
        self.announce: int | None = announce
        self.fork_ahead()
        os.write(announce, b"%d\n" % os.getpid())  # ready, a child forked ahead included
        os.close(announce)
        self.announce = None

    def run(self) -> int:
        while self.listener is not None or self.children:
            for key, _events in self.selector.select():
                what = key.data
                if what == "parent" or self.parent_gone():
                    return 0  # our children live on until their own socketpairs close
                if what == "accept":
                    self.accept()
                elif what[1] in self.children:
                    (self.exited if what[0] == "exit" else self.asked)(what[1])
        return 0

    def parent_gone(self) -> bool:
        """Whether the parent has exited (so its pid may name another process now)."""
        return bool(select.select([self.watch], [], [], 0)[0])

    def accept(self) -> None:
        assert self.listener is not None
        claim, _ = self.listener.accept()
        peer = struct.unpack("3i", claim.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if peer[0] != self.parent:  # refused before reading a byte of it
            claim.close()
            return
        try:
            message, fds, _flags, _address = socket.recv_fds(claim, 64, 5, socket.MSG_CMSG_CLOEXEC)
        except OSError:  # pragma: no cover - the claim hung up at once
            message, fds = b"", []
        if message == b"retire":
            self.selector.unregister(self.listener)
            self.listener.close()
            self.listener = None
            if self.waiting is not None:
                self.waiting[1].close()  # it sees EOF and exits; reaped as any child
                self.waiting = None
        elif message == b"fork" and len(fds) >= 4:
            self.hand_over(claim, fds)
            return
        for fd in fds:  # not a request we know
            os.close(fd)
        claim.close()

    def fork_ahead(self, claim: socket.socket | None = None, fds: Sequence[int] = ()) -> None:
        """Fork the next child now: it waits on a socketpair for a claim's descriptors.

        *claim* and *fds*, a claim under way that is not this child's, are
        closed in it.
        """
        import selectors

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # pragma: no cover (measured in the child's own data file)
            ours.close()
            self.drop_everything()
            if claim is not None:
                claim.close()
            for fd in fds:
                os.close(fd)
            os._exit(_waiting_server(theirs))
        theirs.close()
        pidfd = os.pidfd_open(pid)
        self.children[pid] = (None, pidfd)
        self.selector.register(pidfd, selectors.EVENT_READ, ("exit", pid))
        self.waiting = (pid, ours)

    def hand_over(self, claim: socket.socket, fds: list[int]) -> None:
        """Give the claim's descriptors to the waiting child; answer; fork the next one."""
        import selectors

        for _attempt in range(2):  # a waiting child that died is replaced once
            if self.waiting is None:
                self.fork_ahead(claim, fds)
            assert self.waiting is not None
            pid, pair = self.waiting
            self.waiting = None
            try:
                socket.send_fds(pair, [b"go"], fds)
                break
            except OSError:  # pragma: no cover - it was killed while it waited
                continue
            finally:
                pair.close()
        else:  # pragma: no cover
            pid = 0
        for fd in fds:
            os.close(fd)
        if pid == 0:  # pragma: no cover
            claim.close()
            return
        _, pidfd = self.children[pid]
        self.children[pid] = (claim, pidfd)
        self.selector.register(claim, selectors.EVENT_READ, ("claim", pid))
        with contextlib.suppress(OSError):
            socket.send_fds(claim, [b"%d" % pid], [pidfd])
        self.fork_ahead()

    def exited(self, pid: int) -> None:
        _, status = os.waitpid(pid, 0)
        claim, pidfd = self.children.pop(pid)
        if self.waiting is not None and self.waiting[0] == pid:  # it was killed as it waited
            self.waiting[1].close()
            self.waiting = None
            if self.listener is not None:
                self.fork_ahead()
        self.selector.unregister(pidfd)
        os.close(pidfd)
        if claim is not None:
            self.selector.unregister(claim)
            with contextlib.suppress(OSError):
                claim.send(b"%d" % os.waitstatus_to_exitcode(status))
            claim.close()

    def asked(self, pid: int) -> None:
        """The parent closed its handle on *pid* (nothing else is asked): reap it quietly."""
        claim, pidfd = self.children[pid]
        assert claim is not None
        with contextlib.suppress(OSError):
            if claim.recv(64):
                return  # pragma: no cover - the parent sends nothing after the claim
        self.selector.unregister(claim)
        claim.close()
        self.children[pid] = (None, pidfd)

    def drop_everything(self) -> None:  # pragma: no cover (in the child)
        """In a forked child: close what is the spare's (by its objects, so none closes twice)."""
        for held, pidfd in self.children.values():
            if held is not None:
                held.close()
            os.close(pidfd)
        if self.waiting is not None:
            self.waiting[1].close()
        if self.announce is not None:
            os.close(self.announce)
        self.selector.close()
        if self.listener is not None:
            self.listener.close()
        os.close(self.watch)


def _waiting_server(pair: socket.socket) -> int:  # pragma: no cover (in the child)
    """In a child the spare forked ahead: wait for a claim's descriptors, then serve.

    EOF (the spare retired or died) ends it.
    """
    try:
        message, fds, _flags, _address = socket.recv_fds(pair, 64, 5, socket.MSG_CMSG_CLOEXEC)
    except OSError:
        message, fds = b"", []
    pair.close()
    if message != b"go" or len(fds) < 4:
        return 0
    return _forked_server(fds)


def _forked_server(fds: list[int]) -> int:  # pragma: no cover (in the child)
    """In a child the spare forked: take on the claim's stderr, world and stdout; run `main`."""
    channel_fd, stderr_fd, world_fd, here_fd, *stdout_fd = fds
    os.dup2(stderr_fd, 2)
    os.close(stderr_fd)
    if stdout_fd:
        os.dup2(stdout_fd[0], 1)
        os.close(stdout_fd[0])
    else:  # the parent has no stdout: neither has a fresh child
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # fd 1 stays taken, as no socket of ours may become it
        os.close(devnull)
        sys.stdout = None
    with open(world_fd, "rb") as world:
        _take_on(world.read(), here_fd)
    os.close(here_fd)
    return _exit_status(main([str(channel_fd)]))


def _take_on(world: bytes, here: int) -> None:  # pragma: no cover (in the child)
    """Take on the parent's world: its directory *here*, umask, signals, environment.

    *world* is NUL-separated: the umask in octal (empty if unknown), the
    blocked signal numbers and the ignored ones (each comma-separated), then
    ``NAME=value`` for each environment variable.
    """
    umask, blocked, ignored, *variables = world.split(b"\0")
    os.fchdir(here)
    if umask:
        os.umask(int(umask, 8))
    signal.pthread_sigmask(signal.SIG_SETMASK, [int(n) for n in blocked.split(b",") if n])
    for number in ignored.split(b","):
        if number:  # ignored stays ignored across exec: a fresh child would ignore it too
            with contextlib.suppress(OSError, ValueError):
                signal.signal(int(number), signal.SIG_IGN)
    os.environb.clear()
    for variable in variables:
        name, equals, value = variable.partition(b"=")
        if equals:
            os.environb[name] = value


def main(argv: list[str] | None = None) -> int:
    """Run the child (or, with ``--spare FD``, the spare); returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args[0] == "--spare":
        return spare(args[1], int(args[2]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    fd = int(args[0])
    os.set_inheritable(fd, False)  # a process the user's code spawns must not hold it
    me = os.getpid()
    os.register_at_fork(after_in_child=lambda: _forked_copy(fd, me))
    channel = socket.socket(fileno=fd)
    channel.setblocking(True)  # a parent under gevent hands over a non-blocking socket
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


def _exit_status(status: int) -> int:
    """Run what `sys.exit` would run (coverage.py saves its data there), flush; *status*."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):  # pragma: no cover (data saved above)
        if stream is not None:  # None: the parent had no stdout
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    return status  # pragma: no cover


if __name__ == "__main__":
    os._exit(_exit_status(main()))  # pragma: no cover (skips the interpreter's teardown: ~30 ms)
