"""Thread mode: the `Host` on a Tornado IOLoop in a daemon thread of the test process.

`DirectBackend` is the transport of the two in-process modes: a command is
a direct call on the host (under the recorder's lock: no hop onto the
loop, which would cost a round trip of some 50 us for every setting and
every read), and a wait is the recorder's `Pending`, refused on the loop's
own thread where it would deadlock.  `ThreadBackend` adds the thread: the
listening socket is bound in the caller's thread, so a port in use raises
`ServerStartError` right in ``start()``; the loop thread then serves it
and signals that it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING, TypeVar

from tornado.ioloop import IOLoop

from ._backend import (
    LocalBackend,
    await_local,
    await_messages_local,
    await_pending,
    held_timeout,
    refuse_blocking_held,
    refuse_blocking_wait,
    wait_local,
    wait_messages_local,
    wait_pending,
)
from ._errors import ServerStartError, ServerStateError
from ._host import Host
from ._listen import bind_listening

if TYPE_CHECKING:
    import socket

    from ._backend import ServeConfig
    from ._commands import Command
    from ._errors import ServerDiedError
    from ._held import Held
    from ._recorder import Recorder
    from ._request import Request
    from ._websocket import WebSocketSession

__all__ = ["DirectBackend", "ThreadBackend"]

R = TypeVar("R")


class DirectBackend:
    """Commands and waits as direct calls on a `Host` of this process."""

    running = True
    died: ServerDiedError | None = None

    def __init__(self, recorder: Recorder, config: ServeConfig) -> None:
        self.host = Host(recorder, config, config.ssl_context)
        self._left: list[str] = []

    @property
    def abandoned(self) -> tuple[str, ...]:
        """What `stop` could not end: the host's leftovers and the transport's."""
        return (*self.host.abandoned, *self._left)

    def call(self, command: Command[R]) -> R:
        """Apply *command* on the host directly (any thread, no hop onto the loop)."""
        return self.host.apply(command)

    def wait(self, count: int, timeout: float) -> list[Request]:
        """Block until *count* requests arrived; refused on the loop's own thread."""
        arrived = self.host.recorder.count
        if arrived < count and self.host.on_loop_thread():
            raise refuse_blocking_wait(count, arrived)
        return wait_local(self.host.recorder, count, timeout)

    async def wait_async(self, count: int, timeout: float) -> list[Request]:
        """Wait without blocking the caller's event loop."""
        return await await_local(self.host.recorder, count, timeout)

    def wait_held(self, timeout: float) -> Held:
        """Block until a response is held that no earlier wait got; refused on the loop's thread."""
        pending, cancel = self.host.held.claim()
        if not pending.done and self.host.on_loop_thread():
            cancel()
            raise refuse_blocking_held()
        return wait_pending(pending, cancel, timeout, lambda: held_timeout(timeout))

    async def wait_held_async(self, timeout: float) -> Held:
        """`wait_held` without blocking the caller's event loop."""
        book = self.host.held
        pending, cancel = book.claim()
        return await await_pending(
            pending, cancel, timeout, lambda: held_timeout(timeout), book.unclaim
        )

    def wait_messages(self, session: int | None, count: int, timeout: float) -> WebSocketSession:
        """Block until the session received *count* messages; refused on the loop's thread."""
        if self.host.on_loop_thread():
            raise ServerStateError(
                "a blocking wait_messages() on the thread that runs the server's event loop "
                "would deadlock; in a coroutine use 'await srv.await_messages(...)'"
            )
        return wait_messages_local(self.host.recorder, session, count, timeout)

    async def wait_messages_async(
        self, session: int | None, count: int, timeout: float
    ) -> WebSocketSession:
        """`wait_messages` without blocking the caller's event loop."""
        return await await_messages_local(self.host.recorder, session, count, timeout)

    def _stopped(self) -> LocalBackend:
        return LocalBackend(self.host.recorder, abandoned=self.abandoned)


class ThreadBackend(DirectBackend):
    """Serves a `Host` from an IOLoop running in a daemon thread."""

    def __init__(self, recorder: Recorder, config: ServeConfig) -> None:
        super().__init__(recorder, config)
        self._config = config
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None

    def start(self) -> int:
        """Bind, start the loop thread, return the port once it is serving."""
        sockets = bind_listening(self._config.address, self._config.port)
        port = int(sockets[0].getsockname()[1])
        self._thread = threading.Thread(
            target=self._run, args=(sockets,), name=f"tserver-{port}", daemon=True
        )
        self._thread.start()
        started = self._started.wait(self._config.startup_timeout)
        failure = self._failure
        if not started or failure is not None:
            self.stop(1.0)  # the thread closes the sockets it was given
            if failure is not None:
                raise ServerStartError(
                    f"the server thread failed to start: {failure!r}"
                ) from failure
            for sock in sockets:
                sock.close()
            raise ServerStartError(
                f"the server thread did not start within {self._config.startup_timeout}s"
            )
        return port

    def _run(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        ioloop = IOLoop.current()
        try:
            self.host.serve(sockets)
        except BaseException as exc:  # reported by start()
            for sock in sockets:
                sock.close()
            ioloop.close(all_fds=True)
            asyncio.set_event_loop(None)
            self._failure = exc
            self._started.set()
            return
        self._started.set()
        try:
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            ioloop.close(all_fds=True)
            asyncio.set_event_loop(None)

    async def _shutdown(self) -> None:
        try:
            await self.host.shutdown()
        finally:
            asyncio.get_running_loop().stop()

    def stop(self, timeout: float) -> LocalBackend:
        """Shut the host down on its loop, stop the loop, join the thread."""
        thread, loop = self._thread, self.host.loop
        self._thread = None
        if thread is None:
            return self._stopped()
        if loop is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed already
                loop.call_soon_threadsafe(lambda: loop.create_task(self._shutdown()))
        if threading.get_ident() == thread.ident:
            return self._stopped()  # called by a callback: the loop ends once it returns
        thread.join(timeout)
        if thread.is_alive():
            self._left.append(
                f"the server thread {thread.name} is still running after {timeout}s "
                "(a response callback that never returns?); it was left as a daemon"
            )
        return self._stopped()
