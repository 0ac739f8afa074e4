"""Thread mode: a Tornado IOLoop in a daemon thread of the test process.

The listening socket is bound in the caller's thread, so a port in use
raises `ServerStartError` right there and `start()` knows the port at once;
the loop thread then adds it to an `HTTPServer` and signals that it is
serving.  Settings and reads never hop onto the loop: the facade applies
commands to the shared `Recorder` under its lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import TYPE_CHECKING, Any

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from ._errors import ServerStartError, ServerStateError
from ._handler import drop_header_timeout, make_app
from ._listen import bind_listening
from ._waiting import wait_async

if TYPE_CHECKING:
    import ssl

    from ._backend import ServeConfig
    from ._protocol import Command
    from ._recorder import Recorder
    from ._request import Request

__all__ = ["ThreadBackend"]


class ThreadBackend:
    """Serves a `Recorder` from an IOLoop running in a daemon thread."""

    def __init__(
        self, recorder: Recorder, config: ServeConfig, ssl_context: ssl.SSLContext | None
    ) -> None:
        self._recorder = recorder
        self._config = config
        self._ssl = ssl_context
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: HTTPServer | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self.abandoned: list[str] = []

    @property
    def loop_thread_id(self) -> int | None:
        """`threading.get_ident` of the loop thread while it runs."""
        thread = self._thread
        return thread.ident if thread is not None else None

    def start(self) -> int:
        """Bind, start the loop thread, return the port once it is serving."""
        sockets = bind_listening(self._config.address, self._config.port)
        port = int(sockets[0].getsockname()[1])
        self._thread = threading.Thread(
            target=self._run, args=(sockets,), name=f"tserver-{port}", daemon=True
        )
        self._thread.start()
        if not self._started.wait(self._config.startup_timeout) or self._failure:
            for sock in sockets:
                sock.close()
            self.stop(1.0)
            raise ServerStartError(
                f"the server thread did not start within "
                f"{self._config.startup_timeout}s: {self._failure!r}"
            )
        return port

    def _run(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        ioloop = IOLoop.current()
        try:
            server = HTTPServer(
                make_app(self._recorder, self._config.max_body_size),
                ssl_options=self._ssl,
                max_body_size=self._config.max_body_size,
            )
            drop_header_timeout(server)
            server.add_sockets(sockets)
        except BaseException as exc:  # reported by start()
            self._failure = exc
            self._started.set()
            ioloop.close(all_fds=True)
            return
        self._server = server
        self._loop = loop
        self._started.set()
        try:
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            ioloop.close(all_fds=True)
            asyncio.set_event_loop(None)

    async def _shutdown(self, server: HTTPServer | None) -> None:
        # *server* is passed in: a stop() that gave up on a blocked loop has
        # cleared self._server by the time this runs
        if server is None:
            asyncio.get_running_loop().stop()
            return
        server.stop()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.close_all_connections(), 2.0)
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            self.abandoned += [repr(t) for t in pending]
        asyncio.get_running_loop().stop()

    def stop(self, timeout: float) -> None:
        """Close the server and its connections, stop the loop, join the thread."""
        thread, loop, server = self._thread, self._loop, self._server
        if thread is None:
            return
        if loop is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(lambda: loop.create_task(self._shutdown(server)))
        if threading.get_ident() != thread.ident:
            thread.join(timeout)
        if thread.is_alive():
            self.abandoned.append(
                f"the server thread {thread.name} is still running after {timeout}s "
                "(a response callback that never returns?); it was left as a daemon"
            )
        self._thread = None
        self._loop = None
        self._server = None

    def close(self) -> None:
        """Nothing beyond `stop` to release."""

    def call(self, command: Command) -> Any:
        """Apply *command* to the recorder directly (no hop onto the loop)."""
        return self._recorder.apply(command)

    def wait(self, count: int, timeout: float) -> list[Request]:
        """Block on the recorder's condition; refused on the loop thread itself."""
        if threading.get_ident() == self.loop_thread_id and self._recorder.count < count:
            raise ServerStateError(
                "a blocking wait for requests on the server's own event loop thread "
                "would deadlock; use 'await srv.await_requests(...)' instead"
            )
        return self._recorder.wait(count, timeout)

    async def wait_async(self, count: int, timeout: float) -> list[Request]:
        """Wait without blocking the caller's event loop."""
        return await wait_async(self._recorder, count, timeout)
