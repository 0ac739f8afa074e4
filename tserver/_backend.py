"""The interface of the transports between the facade and a `~tserver._host.Host`.

A *backend* carries `~tserver._commands` commands to the one host of a
running server: by a direct call (thread and inline modes), or by frames on
a socketpair (subprocess mode).  When no server runs (before `start`,
after `stop`) the facade's backend is a `LocalBackend`: the same commands
applied to a recorder that nothing serves, so configuration made before
`start` is kept and the history stays readable after `stop`.  The facade
never branches on the mode or on the state: it calls its backend.

Waiting is written once: the loop side delivers the history in a
`~tserver._waiting.Pending` (`Recorder.pending_history`), and `wait_local`
/ `await_local` wait for it, blocking or awaiting.  This module imports no
Tornado.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar, cast

from ._commands import ActOnHeld, CloseConnections, GetHeld, PushMessage
from ._errors import ServerStateError, WaitTimeoutError

if TYPE_CHECKING:
    import ssl

    from ._commands import Command
    from ._errors import ServerDiedError
    from ._held import Held
    from ._recorder import Recorder
    from ._request import Request
    from ._waiting import Pending
    from ._websocket import WebSocketSession

__all__ = [
    "Backend",
    "await_pending",
    "held_timeout",
    "wait_pending",
    "LocalBackend",
    "ServeConfig",
    "Transport",
    "await_local",
    "refuse_blocking_held",
    "refuse_blocking_wait",
    "settle_wait",
    "wait_local",
]

R = TypeVar("R")
T = TypeVar("T")


class ServeConfig:
    """Where and how to serve: what a backend needs to start.

    ``tls`` is the `~tserver._tls.TlsFiles` of ``ssl=True`` and
    ``proxy=True`` (its paths cross to a child process), ``ssl_context``
    the context a thread or inline host serves with.  ``proxy`` serves
    ``CONNECT`` tunnels, with ``tunnels`` (a `~tserver._tls.TunnelCerts`)
    issuing their certificates; ``proxy_auth`` is the ``(user, password)``
    proxied requests must present.  ``ssl``: the server itself speaks
    HTTPS with ``tls`` (``ssl=True``).  ``http2`` serves HTTP/2 beside
    HTTP/1.1 (`~tserver._h2serve`).  ``spare``: a subprocess-mode child may
    be forked by the warm spare (`tserver._spare`).
    """

    __slots__ = (
        "address",
        "history_limit",
        "http2",
        "max_body_size",
        "port",
        "proxy",
        "proxy_auth",
        "spare",
        "ssl",
        "ssl_context",
        "startup_timeout",
        "strict",
        "tls",
        "tunnels",
    )

    def __init__(
        self,
        address: str,
        port: int,
        *,
        strict: bool = False,
        history_limit: int | None = None,
        max_body_size: int = 100 * 1024 * 1024,
        startup_timeout: float = 10.0,
        tls: Any = None,
        ssl_context: ssl.SSLContext | None = None,
        proxy: bool = False,
        proxy_auth: tuple[str, str] | None = None,
        tunnels: Any = None,
        ssl: bool = False,
        http2: bool = False,
        spare: bool = True,
    ) -> None:
        self.address = address
        self.port = port
        self.strict = strict
        self.history_limit = history_limit
        self.max_body_size = max_body_size
        self.startup_timeout = startup_timeout
        self.tls = tls
        self.ssl_context = ssl_context
        self.proxy = proxy
        self.proxy_auth = proxy_auth
        self.tunnels = tunnels
        self.ssl = ssl
        self.http2 = http2
        self.spare = spare


class Backend(Protocol):
    """What the facade needs of a transport (or of the stopped state)."""

    @property
    def running(self) -> bool:
        """Whether a server is being served (not the stopped state)."""

    @property
    def died(self) -> ServerDiedError | None:
        """The error of a child process that died, raised again by every call."""

    @property
    def abandoned(self) -> tuple[str, ...]:
        """What `stop` could not end within its timeout."""

    def start(self) -> int:
        """Bind and serve; the bound port once accepting."""

    def stop(self, timeout: float) -> LocalBackend:
        """Stop serving, close every socket, join or reap; the state that stays readable."""

    def call(self, command: Command[R]) -> R:
        """Carry out one command and return its result."""

    def wait(self, count: int, timeout: float) -> list[Request]:
        """Block until *count* requests arrived; the history snapshot."""

    async def wait_async(self, count: int, timeout: float) -> list[Request]:
        """`wait` without blocking the caller's event loop."""

    def wait_held(self, timeout: float) -> Held:
        """Block until a response is held that no earlier wait got; its `Held`."""

    async def wait_held_async(self, timeout: float) -> Held:
        """`wait_held` without blocking the caller's event loop."""

    def wait_messages(self, session: int | None, count: int, timeout: float) -> WebSocketSession:
        """Block until the session received *count* messages (or closed); its snapshot."""

    async def wait_messages_async(
        self, session: int | None, count: int, timeout: float
    ) -> WebSocketSession:
        """`wait_messages` without blocking the caller's event loop."""


class Transport(NamedTuple):
    """How one mode reaches its host: a backend factory, and whether it crosses processes.

    A transport that crosses processes pickles what it is given, so the
    facade refuses, when it is given, a callback or matcher that cannot
    cross (a lambda, a closure).
    """

    new: Callable[[Recorder, ServeConfig], Backend]
    crosses_process: bool


class LocalBackend:
    """The stopped state: commands applied to a recorder nothing serves.

    :param recorder: the state: what was configured before `start`, or
        what a server had when it stopped.
    :param died: the `ServerDiedError` of a child that died; every call
        raises it again.
    :param abandoned: what the `stop` that made this state left running.
    """

    running = False

    def __init__(
        self,
        recorder: Recorder,
        died: ServerDiedError | None = None,
        abandoned: tuple[str, ...] = (),
    ) -> None:
        self.recorder = recorder
        self.died = died
        self.abandoned = abandoned

    def start(self) -> int:
        """A stopped state does not serve: the facade makes a transport instead."""
        raise ServerStateError("the stopped state cannot start; make a backend")

    def stop(self, timeout: float) -> LocalBackend:
        """Already stopped: itself."""
        return self

    def call(self, command: Command[R]) -> R:
        """Apply *command* to the recorder (or raise how the child died).

        A command of a running host finds nothing to act on: no connection
        to close (``0``), nothing held (``[]``), no held exchange (`False`).
        """
        if self.died is not None:
            raise self.died
        empty = _HOST_ONLY.get(type(command))
        if empty is not None:
            return cast("R", empty())
        return self.recorder.apply(command)

    def wait(self, count: int, timeout: float) -> list[Request]:
        """What a wait sees of a stopped server: the final count, or a timeout."""
        if self.died is not None:
            raise self.died
        return wait_local(self.recorder, count, timeout)

    async def wait_async(self, count: int, timeout: float) -> list[Request]:
        """`wait` that lets the caller's event loop run meanwhile."""
        if self.died is not None:
            raise self.died
        return await await_local(self.recorder, count, timeout)

    def wait_held(self, timeout: float) -> Held:
        """Nothing is held while no server runs: refused at once."""
        if self.died is not None:
            raise self.died
        raise ServerStateError(
            "wait_held(): the server is not running, so no response can be held; "
            "start() it (or use it as a context manager) first"
        )

    async def wait_held_async(self, timeout: float) -> Held:
        """`wait_held`, awaitable: refused at once."""
        return self.wait_held(timeout)

    def wait_messages(self, session: int | None, count: int, timeout: float) -> WebSocketSession:
        """What a wait sees of a stopped server: the final session, or a timeout."""
        if self.died is not None:
            raise self.died
        return wait_messages_local(self.recorder, session, count, timeout)

    async def wait_messages_async(
        self, session: int | None, count: int, timeout: float
    ) -> WebSocketSession:
        """`wait_messages`, awaitable."""
        return self.wait_messages(session, count, timeout)


#: What the commands of a running host answer when none runs.
_HOST_ONLY: dict[type[Any], Callable[[], Any]] = {
    CloseConnections: int,
    GetHeld: list,
    ActOnHeld: bool,
    PushMessage: bool,
}

#: How long a wait that timed out waits on for a history already being delivered.
_DELIVERING = 5.0


def held_timeout(timeout: float) -> WaitTimeoutError:
    """The error of a `wait_held` that gave up."""
    return WaitTimeoutError(
        f"waited {timeout:g}s for a held response (Response(hold=...)) but none was held "
        "that an earlier wait_held() had not returned",
        expected=1,
        received=0,
    )


def _settle(
    pending: Pending[T], cancel: Callable[[], bool], done: bool, error: Callable[[], Exception]
) -> T:
    """The end of a local wait: its result, or *error* once the wait is withdrawn.

    A wait that timed out withdraws itself; if it cannot, the loop side
    has taken it and is about to deliver, which is then the result (what
    came just in time is no timeout).
    """
    if not done and cancel():
        raise error()
    pending.wait(_DELIVERING)
    return pending.result()


def wait_pending(
    pending: Pending[T], cancel: Callable[[], bool], timeout: float, error: Callable[[], Exception]
) -> T:
    """Block until *pending* is delivered, or raise *error* after *timeout* seconds."""
    return _settle(pending, cancel, pending.wait(timeout), error)


async def await_pending(
    pending: Pending[T],
    cancel: Callable[[], bool],
    timeout: float,
    error: Callable[[], Exception],
    lost: Callable[[T], None] | None = None,
) -> T:
    """`wait_pending` that suspends the calling task instead (asyncio, Tornado or trio).

    A cancelled wait is withdrawn; if it got its result meanwhile, *lost*
    gives that back (a held exchange nobody will receive).
    """
    try:
        done = await pending.wait_async(timeout)
    except BaseException:  # cancelled: the wait is withdrawn, not left behind
        if not cancel() and lost is not None and pending.done:
            with contextlib.suppress(Exception):
                lost(pending.result())
        raise
    return _settle(pending, cancel, done, error)


def settle_wait(
    recorder: Recorder,
    pending: Pending[list[Request]],
    cancel: Callable[[], bool],
    done: bool,
    count: int,
    timeout: float,
) -> list[Request]:
    """The end of a wait for requests: the history, or `WaitTimeoutError` once withdrawn."""
    return _settle(pending, cancel, done, lambda: recorder.timeout_error(count, timeout))


def messages_timeout(session: int | None, count: int, timeout: float) -> WaitTimeoutError:
    """The error of a `wait_messages` that gave up."""
    which = "the newest WebSocket session" if session is None else f"WebSocket session #{session}"
    return WaitTimeoutError(
        f"waited {timeout:g}s for {which} to receive {count} message(s) from its client "
        "(or to close), in vain",
        expected=count,
        received=0,
    )


def wait_messages_local(
    recorder: Recorder, session: int | None, count: int, timeout: float
) -> WebSocketSession:
    """Block until *recorder* has the session's *count* messages (or its close)."""
    pending, cancel = recorder.pending_messages(session, count)
    return wait_pending(pending, cancel, timeout, lambda: messages_timeout(session, count, timeout))


async def await_messages_local(
    recorder: Recorder, session: int | None, count: int, timeout: float
) -> WebSocketSession:
    """`wait_messages_local` that suspends the calling task instead."""
    pending, cancel = recorder.pending_messages(session, count)
    return await await_pending(
        pending, cancel, timeout, lambda: messages_timeout(session, count, timeout)
    )


def wait_local(recorder: Recorder, count: int, timeout: float) -> list[Request]:
    """Block until *recorder* has *count* requests; its history."""
    pending, cancel = recorder.pending_history(count)
    return wait_pending(pending, cancel, timeout, lambda: recorder.timeout_error(count, timeout))


async def await_local(recorder: Recorder, count: int, timeout: float) -> list[Request]:
    """`wait_local` that suspends the calling task instead (asyncio, Tornado or trio)."""
    pending, cancel = recorder.pending_history(count)
    return await await_pending(
        pending, cancel, timeout, lambda: recorder.timeout_error(count, timeout)
    )


def refuse_blocking_wait(count: int, arrived: int) -> ServerStateError:
    """The error of a blocking wait on the thread that runs the server's own loop."""
    return ServerStateError(
        f"a blocking wait_request()/wait_requests() for {count} request(s) "
        f"({arrived} arrived so far) on the thread that runs the server's event "
        "loop would deadlock, since the loop cannot serve while the call blocks; "
        "in a coroutine use 'await srv.await_request()' or "
        "'await srv.await_requests(count)'"
    )


def refuse_blocking_held() -> ServerStateError:
    """The error of a blocking `wait_held` on the thread that runs the server's own loop."""
    return ServerStateError(
        "a blocking wait_held() on the thread that runs the server's event loop would "
        "deadlock, since the loop cannot serve while the call blocks; in a coroutine "
        "use 'await srv.await_held()'"
    )
