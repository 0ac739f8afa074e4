"""Inline mode: the `Host` on the caller's own event loop, no thread, no process.

`InlineTestServer` is a `~tserver.TestServer` whose host runs on the event
loop of the thread that starts it (Tornado's `IOLoop.current`, the running
asyncio loop).  `tserver.testing.AsyncTestServerTestCase` uses it: Tornado's
`~tornado.testing.AsyncHTTPTestCase` binds the listening socket and adds it
to the server that `InlineTestServer.attach` returns, which is the host's
own `~tserver._host.HostServer` (built by the same function as in every
other mode).  Async tests may use it directly: ``start()`` then binds a
socket itself.

The loop serves only while the caller awaits, so a blocking wait for a
request still to come could never end: it raises `ServerStateError`
pointing to the awaitable form instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import TestServer
from ._backend import Transport
from ._backend_thread import DirectBackend
from ._listen import bind_listening

if TYPE_CHECKING:
    from tornado.httpserver import HTTPServer

    from ._backend import Backend, LocalBackend, ServeConfig
    from ._recorder import Recorder

__all__ = ["InlineBackend", "InlineTestServer"]


class InlineBackend(DirectBackend):
    """Serves a `Host` from the caller's IOLoop.

    With ``config.port`` set and *attach* true, the caller adds the
    listening socket itself (to `server`); else `start` binds one.
    """

    def __init__(self, recorder: Recorder, config: ServeConfig, *, attach: bool = False) -> None:
        super().__init__(recorder, config)
        self._config = config
        self._attach = attach
        #: The host's Tornado server, to which an attaching caller adds its socket.
        self.server: HTTPServer = self.host.build_server()

    def start(self) -> int:
        """Serve on the current loop; the port (the caller's, or one bound now)."""
        self.host.bind_loop()
        if self._attach:
            return self._config.port
        sockets = bind_listening(self._config.address, self._config.port)
        self.host.serve(sockets)
        return int(sockets[0].getsockname()[1])

    def stop(self, timeout: float) -> LocalBackend:
        """Close the server and its connections now; the loop is the caller's."""
        self.host.close_now()
        return self._stopped()


class InlineTestServer(TestServer):
    """A `~tserver.TestServer` served on the caller's event loop (``mode="inline"``)."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self._attaching = False
        self._transports = {"inline": Transport(self._new_inline, crosses_process=False)}
        super().__init__(address, port, "inline", **options)

    def _new_inline(self, recorder: Recorder, config: ServeConfig) -> Backend:
        backend = InlineBackend(recorder, config, attach=self._attaching)
        self.server = backend.server
        return backend

    def attach(self, port: int) -> HTTPServer:
        """Start serving a socket the caller binds on *port*; the server to add it to.

        The caller (Tornado's test case) adds its listening socket with
        ``server.add_sockets([sock])``.
        """
        self._port = port
        self._attaching = True
        try:
            self.start()
        finally:
            self._attaching = False
        return self.server
