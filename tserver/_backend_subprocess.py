"""Subprocess mode, parent side: the host runs in a child process.

The parent spawns ``sys.executable -m tserver._child FD`` with one end of a
``socketpair`` (`tserver._childproc`) and talks to it through a
`~tserver._channel.Channel`: one command, one reply.  Everything a command
does happens in the child's `~tserver._host.Host`, exactly as in thread
mode; this module only carries commands and turns the channel's end into
the facade's terms:

- the child's end closing before it replied means the child died:
  `ServerDiedError`, with its exit status and the tail of its stderr;
- no reply and no bytes for `CALL_TIMEOUT` seconds means a child that is
  stuck (a callback blocking its loop, a ``SIGSTOP``): `ServerStateError`;
- a call made while `stop` is under way is answered from the final state
  that `stop` brings back, as it would be in thread mode.

This module imports no Tornado: a test process that uses only subprocess
mode never builds a Tornado application.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, TypeVar

from . import _spare
from ._backend import LocalBackend
from ._channel import Channel, ChannelEOF, ChannelTimeout
from ._childproc import ChildProcess
from ._commands import (
    Restore,
    Shutdown,
    Snapshot,
    WaitHeld,
    WaitMessages,
    WaitRequests,
    WithdrawWait,
)
from ._errors import ServerDiedError, ServerStartError, ServerStateError
from ._wire import Failed, Ok, StartChild, encode_payload

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._backend import ServeConfig
    from ._commands import Command, RecorderState
    from ._held import Held
    from ._recorder import Recorder
    from ._request import Request
    from ._websocket import WebSocketSession

__all__ = ["CALL_TIMEOUT", "SubprocessBackend"]

R = TypeVar("R")

#: Seconds a control call waits for the child when nothing at all arrives;
#: a wait gets this much beyond its own timeout.  A reply that keeps
#: arriving is waited for however long it takes.
CALL_TIMEOUT = 10.0
#: Names of the `WaitHeld` commands of this process, for a `WithdrawWait`.
_TOKENS = itertools.count(1)


class SubprocessBackend:
    """Runs the host in a child process and carries commands to it."""

    running = True
    abandoned: tuple[str, ...] = ()

    def __init__(self, recorder: Recorder, config: ServeConfig) -> None:
        self._recorder = recorder  # seeds the child; gets the final state at stop()
        self._config = config
        self._child: ChildProcess | None = None
        self._channel: Channel | None = None
        self._stopping = False
        self._final: LocalBackend | None = None
        self._stopped = threading.Event()

    @property
    def died(self) -> ServerDiedError | None:
        """The child's `ServerDiedError`, once it is known to have died."""
        return None if self._child is None else self._child.died

    @property
    def pid(self) -> int | None:
        """The child's process id (tests and the bench read it)."""
        return None if self._child is None else self._child.proc.pid

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> int:
        """Spawn the child, send it the configuration, return its port once bound.

        ``startup_timeout`` bounds the whole start: a claim on the warm spare
        that failed leaves the fresh child only what remains of it.
        """
        cfg = self._config
        deadline = time.monotonic() + cfg.startup_timeout
        self._child = ChildProcess(spare=cfg.spare, timeout=cfg.startup_timeout)
        self._channel = Channel(self._child.channel)
        tls = cfg.tls
        try:
            start = StartChild(
                address=cfg.address,
                port=cfg.port,
                tls_cert=None if tls is None or not cfg.ssl else tls.cert_pem,
                tls_key=None if tls is None or not cfg.ssl else tls.key_pem,
                strict=cfg.strict,
                history_limit=cfg.history_limit,
                max_body_size=cfg.max_body_size,
                sys_path=tuple(sys.path),
                # pickled apart: the child unpickles it once it has our sys.path
                state=encode_payload(self._recorder.apply(Snapshot())),
                tls_client_ca=None if tls is None else tls.ca_pem,
                client_cert=None if tls is None else tls.client_cert,
                proxy=cfg.proxy,
                proxy_auth=cfg.proxy_auth,
                tls_ca_key=None if tls is None or not cfg.proxy else tls.ca_key_pem,
                http2=cfg.http2,
            )
            remaining = max(0.001, deadline - time.monotonic())
            reply = self._channel.request(encode_payload(start), remaining)
        except ChannelEOF:
            died = self._child.reap()
            self.stop(1.0)
            raise ServerStartError(
                f"the server child process exited while starting "
                f"(exit status {died.returncode}):\n{died.stderr_tail}"
            ) from None
        except ChannelTimeout:
            self.stop(1.0)
            raise ServerStartError(
                f"the server child process did not start within {cfg.startup_timeout:g}s"
            ) from None
        except BaseException:
            self.stop(1.0)
            raise
        if isinstance(reply, Failed):
            self.stop(1.0)
            if isinstance(reply.error, ServerStartError):
                raise ServerStartError(str(reply.error)) from None
            raise ServerStartError(f"the server child process failed to start: {reply.error!r}")
        assert isinstance(reply, Ok)
        if cfg.spare:
            _spare.prepare()  # the spare imports while the test goes on
        return int(reply.value)

    def stop(self, timeout: float) -> LocalBackend:
        """Ask the child for its final state and to exit; reap it; close everything."""
        if self._final is not None:
            return self._final
        child, channel = self._child, self._channel
        self._stopping = True
        state: RecorderState | None = None
        unanswered = False
        if child is not None and channel is not None and child.died is None:
            try:
                reply = channel.goodbye(encode_payload(Shutdown()), timeout)
                if isinstance(reply, Ok):
                    state = reply.value
            except ChannelEOF:  # it died first
                pass
            except ChannelTimeout:
                unanswered = True
        if state is not None:
            self._recorder.apply(Restore(state))
            if state.lost:
                warnings.warn(
                    "tserver: stop() could not bring back all of the child's state: "
                    + "; ".join(state.lost),
                    RuntimeWarning,
                    stacklevel=3,
                )
        if child is not None:
            child.wait(0.0 if unanswered else timeout)  # killed if it does not exit
            if unanswered and child.died is None:
                child.reap(f"did not answer stop() within {timeout:g}s and was killed")
            elif state is None and child.died is None:
                child.reap()
        if channel is not None:
            channel.close()
        if child is not None:
            child.release_stderr()
        _spare.settle()  # one being started after this child: it detaches now
        self._final = LocalBackend(self._recorder, died=self.died)
        self._stopped.set()
        return self._final

    # -- calls ---------------------------------------------------------------

    def call(self, command: Command[R]) -> R:
        """Send *command* to the child and return its result (or raise its error)."""
        channel = self._open_channel()
        if channel is None:
            return self._after_channel().call(command)
        try:
            reply = channel.request(encode_payload(command), CALL_TIMEOUT)
        except ChannelEOF:
            return self._after_channel().call(command)
        except ChannelTimeout:
            raise ServerStateError(_late_text(CALL_TIMEOUT)) from None
        result: R = _unwrap(reply)
        return result

    def wait(self, count: int, timeout: float) -> list[Request]:
        """Block until the child reports *count* requests (it answers at the time)."""
        result: list[Request] = self._wait(
            WaitRequests(count, timeout), timeout, lambda final: final.wait(count, timeout)
        )
        return result

    async def wait_async(self, count: int, timeout: float) -> list[Request]:
        """`wait` that lets the caller's event loop run (the channel's helper reads)."""
        result: list[Request] = await self._wait_async(
            WaitRequests(count, timeout),
            timeout,
            lambda final: final.wait_async(count, timeout),
        )
        return result

    def wait_held(self, timeout: float) -> Held:
        """Block until the child holds a response that no earlier wait got."""
        result: Held = self._wait(
            WaitHeld(timeout), timeout, lambda final: final.wait_held(timeout)
        )
        return result

    async def wait_held_async(self, timeout: float) -> Held:
        """`wait_held` that lets the caller's event loop run.

        Cancelled, it tells the child, which gives back what the wait took:
        the next wait gets it.
        """
        token = next(_TOKENS)
        result: Held = await self._wait_async(
            WaitHeld(timeout, token),
            timeout,
            lambda final: final.wait_held_async(timeout),
            WithdrawWait(token),
        )
        return result

    def wait_messages(self, session: int | None, count: int, timeout: float) -> WebSocketSession:
        """Block until the child's session received *count* messages (or closed)."""
        result: WebSocketSession = self._wait(
            WaitMessages(session, count, timeout),
            timeout,
            lambda final: final.wait_messages(session, count, timeout),
        )
        return result

    async def wait_messages_async(
        self, session: int | None, count: int, timeout: float
    ) -> WebSocketSession:
        """`wait_messages` that lets the caller's event loop run."""
        result: WebSocketSession = await self._wait_async(
            WaitMessages(session, count, timeout),
            timeout,
            lambda final: final.wait_messages_async(session, count, timeout),
        )
        return result

    def _wait(self, command: Command[R], timeout: float, after: Callable[[LocalBackend], R]) -> R:
        """Send a waiting *command*: the child answers when it is done or its time is up."""
        channel = self._open_channel()
        if channel is None:
            return after(self._after_channel())
        try:
            reply = channel.request(encode_payload(command), timeout + CALL_TIMEOUT)
        except ChannelEOF:
            return after(self._after_channel())
        except ChannelTimeout:
            raise ServerStateError(_late_text(timeout + CALL_TIMEOUT)) from None
        result: R = _unwrap(reply)
        return result

    async def _wait_async(
        self,
        command: Command[R],
        timeout: float,
        after: Callable[[LocalBackend], Awaitable[R]],
        withdraw: Command[None] | None = None,
    ) -> R:
        """`_wait` that lets the caller's event loop run (the channel's helper reads).

        *withdraw* is sent, unanswered, if the caller is cancelled meanwhile.
        """
        channel = self._open_channel()
        if channel is None:
            return await after(self._after_channel())
        try:
            pending = channel.submit(encode_payload(command))
        except ChannelEOF:
            return await after(self._after_channel())
        try:
            arrived = await pending.wait_async(timeout + CALL_TIMEOUT)
        except BaseException:
            if withdraw is not None:
                with contextlib.suppress(ChannelEOF):
                    channel.submit(encode_payload(withdraw))
            raise
        if not arrived:
            raise ServerStateError(_late_text(timeout + CALL_TIMEOUT))
        try:
            reply = pending.result()
        except ChannelEOF:
            return await after(self._after_channel())
        result: R = _unwrap(reply)
        return result

    # -- the channel's end -------------------------------------------------------

    def _open_channel(self) -> Channel | None:
        """The channel while it can carry a command; `None` once it has ended."""
        if self.died is not None:
            raise self.died
        if self._final is not None:
            return None
        return self._channel

    def _after_channel(self) -> LocalBackend:
        """Who answers once the channel has ended: the final state, or how the child died."""
        if self._stopping:  # stop() is bringing the final state back: wait for it
            self._stopped.wait(CALL_TIMEOUT)
            if self._final is not None:
                return self._final
        assert self._child is not None
        reason = None if self._channel is None else self._channel.eof_reason
        if reason is not None:  # alive, but the channel is lost: end it
            self._child.kill()
        died = self._child.reap(reason and f"{reason} and was killed")
        return LocalBackend(self._recorder, died=died)


def _late_text(timeout: float) -> str:
    return (
        f"the server child process did not answer within {timeout:g}s "
        "(is a response callback blocking its event loop, or is the child stopped?)"
    )


def _unwrap(reply: object) -> Any:
    """The value of an `Ok`, or raise the error of a `Failed`."""
    if isinstance(reply, Failed):
        raise reply.error
    assert isinstance(reply, Ok), reply
    return reply.value
