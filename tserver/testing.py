"""Tornado's `tornado.testing` with a recording server: `AsyncTestServerTestCase`.

The test case serves a `~tserver.TestServer` on the test's own IOLoop (the
*inline* mode: no thread, no child process), so a client that runs on that
loop, such as Tornado's `~tornado.httpclient.AsyncHTTPClient`, talks to it
from ``self.fetch()`` or from a `~tornado.testing.gen_test` coroutine.  The
page :doc:`tornado` shows both, with test cases that the test suite runs.

.. versionadded:: 1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tornado.testing import AsyncHTTPTestCase, get_async_test_timeout

from ._inline import InlineTestServer

if TYPE_CHECKING:
    from tornado.httpserver import HTTPServer
    from tornado.web import Application

    from . import TestServer

__all__ = ["AsyncTestServerTestCase"]

__unittest = True  # hide this module's frames from unittest tracebacks

#: The `TestServer` options `get_server_options` may return.
SERVER_OPTIONS = ("strict", "history_limit", "max_body_size", "http2")


class AsyncTestServerTestCase(AsyncHTTPTestCase):
    """An `~tornado.testing.AsyncHTTPTestCase` whose application is a `TestServer`.

    `get_app` serves a recorder on the test's IOLoop (Tornado binds the
    socket on ``127.0.0.1``, a new port per test); `server` is the
    `~tserver.TestServer` that controls it, with the whole API: setting
    responses, rules, reading the history and asserting.  ``self.fetch(path)``
    and ``self.get_url(path)`` reach it, as ``self.server.get_url(path)`` does.

    Waiting: the loop runs on the test's thread, only while the test awaits
    (in a `~tornado.testing.gen_test` coroutine) or calls ``self.fetch()``.
    So wait with ``await self.server.await_request()`` /
    ``await self.server.await_requests(count)`` when the request comes from
    a background coroutine; a blocking ``self.server.wait_request()`` on the
    test's thread with the request still to come raises
    `~tserver.ServerStateError` instead of hanging.  It returns at once when
    the request has already arrived (after ``self.fetch()``).

    Checking: after ``tearDown`` (as a cleanup registered in ``setUp``, so it
    runs when the IOLoop is closed and no handler is left running), the
    server is stopped and `TestServer.check` runs.  An exception swallowed by
    a response callback, or in strict mode a request no rule matched or a
    rule not used up, raises `AssertionError` there, and ``unittest`` (or
    pytest) reports the test as failed.

    Override `get_server_options` to pass `TestServer` options.  Do not
    override `get_app` or `get_http_server`: they are what serves the
    recorder.

    The server speaks plain HTTP only, on ``127.0.0.1``.

    Examples: :doc:`tornado`; its section *Options* overrides
    `get_server_options`.

    .. versionadded:: 1.0
    """

    #: The server of the current test (made in ``setUp``).
    server: TestServer

    def get_server_options(self) -> dict[str, Any]:
        """May be overridden to return `TestServer` keyword arguments.

        Accepted: ``strict``, ``history_limit``, ``max_body_size`` and
        ``http2`` (h2c by prior knowledge beside HTTP/1.1); the
        address, port and mode are fixed by the test case.  The default is
        ``{}``.
        """
        return {}

    def get_app(self) -> Application:
        """Attach `server` to the test's IOLoop; return the application serving it."""
        self._tserver_http = self._tserver_inline.attach(self.get_http_port())
        app: Application = self._tserver_http.request_callback  # type: ignore[assignment]
        return app

    def get_http_server(self) -> HTTPServer:
        """The server's own `~tornado.httpserver.HTTPServer`, to which Tornado adds the socket.

        It is built by tserver, as in every mode (it records each
        connection and request head); ``get_httpserver_options()`` is not used.
        """
        return self._tserver_http

    def setUp(self) -> None:
        """Start the IOLoop and the server; schedule the stop and the check."""
        # made before Tornado binds its socket, so a bad option leaks nothing
        options = dict(self.get_server_options())
        unknown = sorted(set(options) - set(SERVER_OPTIONS))
        if unknown:
            raise ValueError(
                f"get_server_options: unknown option(s) {', '.join(map(repr, unknown))}; "
                f"expected any of {', '.join(map(repr, SERVER_OPTIONS))} (the address, "
                "port and mode are set by AsyncTestServerTestCase)"
            )
        self._tserver_inline = InlineTestServer("127.0.0.1", **options)
        self.server = self._tserver_inline
        super().setUp()
        self.addCleanup(self._tserver_finish)

    def tearDown(self) -> None:
        """Also wait for the loop's default executor, as `asyncio.run` does.

        Tornado's client resolves host names there; without the wait its
        worker thread could outlive the test (and trip a thread-leak check).
        """
        loop = self.io_loop.asyncio_loop  # type: ignore[attr-defined]
        self.io_loop.run_sync(loop.shutdown_default_executor, timeout=get_async_test_timeout())
        super().tearDown()

    def _tserver_finish(self) -> None:
        __tracebackhide__ = True
        self.server.stop()
        self.server.check()
