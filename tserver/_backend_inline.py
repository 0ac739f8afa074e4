"""Inline mode: the recorder served on the caller's own IOLoop, no extra thread.

Used by `tserver.testing.AsyncTestServerTestCase`.  The test case owns the
listening socket and the `tornado.httpserver.HTTPServer` (Tornado's
`~tornado.testing.AsyncHTTPTestCase` binds them in ``setUp``); this backend
only supplies the application that records into the `Recorder`, applies
commands to it directly and refuses a blocking wait that would deadlock.

Thread-safety: the recorder has its own lock, so a command may come from any
thread.  The IOLoop runs on the thread that attached the backend (the test's
thread), and on that thread it runs only while the test awaits or calls
``run_sync`` (``self.fetch()`` does).  A blocking `wait` there, with requests
still to come, could never be satisfied: it raises `ServerStateError`
pointing to ``await srv.await_requests(...)`` instead.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ._errors import ServerStateError
from ._handler import make_app
from ._waiting import wait_async

if TYPE_CHECKING:
    from tornado.web import Application

    from ._backend import ServeConfig
    from ._protocol import Command
    from ._recorder import Recorder
    from ._request import Request

__all__ = ["InlineBackend"]


class InlineBackend:
    """Serves a `Recorder` from the caller's IOLoop through `app`.

    :param recorder: the state to serve.
    :param config: ``config.port`` is the port the caller has already bound;
        ``config.max_body_size`` is passed to the handler.
    """

    def __init__(self, recorder: Recorder, config: ServeConfig) -> None:
        if not config.port:
            raise ServerStateError(
                "an inline backend serves a socket its caller has bound: "
                f"port {config.port!r} must be that socket's port, not 0"
            )
        self._recorder = recorder
        self._config = config
        self._loop_thread: int | None = None
        #: The Tornado application to hand to the caller's `HTTPServer`.
        self.app: Application = make_app(recorder, config.max_body_size)

    @property
    def loop_thread_id(self) -> int | None:
        """`threading.get_ident` of the thread that runs the IOLoop, once started."""
        return self._loop_thread

    def start(self) -> int:
        """Note the calling thread as the loop's thread; return the port."""
        self._loop_thread = threading.get_ident()
        return self._config.port

    def stop(self, timeout: float) -> None:
        """Forget the loop thread; the caller closes its own server and socket."""
        self._loop_thread = None

    def close(self) -> None:
        """Nothing to release: the caller owns the sockets."""

    def call(self, command: Command) -> Any:
        """Apply *command* to the recorder directly."""
        return self._recorder.apply(command)

    def wait(self, count: int, timeout: float) -> list[Request]:
        """Block on the recorder's condition; refused on the loop's own thread.

        :raises ServerStateError: called on the thread that runs the IOLoop
            while fewer than *count* requests have arrived: the loop could not
            serve them while this call blocks.
        """
        got = self._recorder.count
        if threading.get_ident() == self._loop_thread and got < count:
            raise ServerStateError(
                f"a blocking wait_request()/wait_requests() for {count} request(s) "
                f"({got} arrived so far) on the thread that runs the server's "
                "event loop would deadlock, since the loop cannot serve while "
                "the call blocks; in a coroutine (a @gen_test method) use "
                "'await srv.await_request()' or 'await srv.await_requests(count)'"
            )
        return self._recorder.wait(count, timeout)

    async def wait_async(self, count: int, timeout: float) -> list[Request]:
        """Wait on the running loop until *count* requests arrived."""
        return await wait_async(self._recorder, count, timeout)
