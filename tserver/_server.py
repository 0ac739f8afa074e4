"""`TestServer`: the facade every test talks to.

It checks arguments in the caller's process, turns each call into a
`~tserver._protocol` command and hands it to the backend of its mode.  When
no backend runs (before `start`, after `stop`) the same commands go to a
local `Recorder`, so configuration made before `start` is served and the
history stays readable after `stop`.
"""

from __future__ import annotations

import ssl as _ssl
import threading
import warnings
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from . import _args
from ._errors import NoRequestError, ServerDiedError, ServerStateError
from ._formatting import render_check_report
from ._protocol import (
    AddRule,
    Command,
    GetCount,
    GetHistory,
    GetRequest,
    Reset,
    SetResponse,
    TakeReport,
)
from ._recorder import Recorder
from ._response import Response, normalize_key, validate_value

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from ._assertions import HistoryAssertion, RequestAssertion
    from ._backend import Backend
    from ._backend_inline import InlineBackend
    from ._protocol import CheckReport
    from ._request import Request

__all__ = ["TestServer"]

MODES = ("thread", "subprocess", "inline")


class _NoRequestAssertion(NoRequestError, AssertionError):
    """No request to assert on: a `NoRequestError` pytest shows as a failure."""


class TestServer:
    """A real HTTP server on loopback that records every request it answers.

    :param address: the address to bind (``"127.0.0.1"``; ``"::1"`` for IPv6).
    :param port: the port; ``0`` picks a free one, kept across restarts.
    :param mode: ``"thread"`` (an IOLoop in a background thread) or
        ``"subprocess"`` (a child process, immune to socket monkey-patching).
    :param ssl: ``True`` for HTTPS with a throwaway CA (extra ``tserver[https]``),
        or an `ssl.SSLContext` to use as is (thread mode only).
    :param strict: only `add_response` rules answer; anything else is an error.
    :param history_limit: keep only the last N requests (all are counted).
    :param max_body_size: larger declared bodies get ``413``.
    :param startup_timeout: seconds `start` may take.

    Example (the client is `urllib.request`; leaving the ``with`` block stops
    the server and runs `check`)::

        >>> from urllib.request import urlopen
        >>> from tserver import TestServer
        >>> with TestServer() as srv:
        ...     srv.set_response("data", b"hi")
        ...     urlopen(srv.get_url("/api?q=1")).read()
        ...     srv.assert_request().has_method("GET").has_path("/api").has_arg("q", "1")
        b'hi'
        <RequestAssertion request #0 of 1: GET /api?q=1>
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        address: str = "127.0.0.1",
        port: int = 0,
        mode: str = "thread",
        *,
        ssl: bool | _ssl.SSLContext = False,
        strict: bool = False,
        history_limit: int | None = None,
        max_body_size: int = 100 * 1024 * 1024,
        startup_timeout: float = 10.0,
    ) -> None:
        _args.check_server_args(address, port, mode, ssl, history_limit, max_body_size, modes=MODES)
        self._startup_timeout = _args.check_timeout("TestServer", startup_timeout)
        self._address = address
        self._port = port
        self._mode = mode
        self._ssl = ssl
        self._strict = bool(strict)
        self._history_limit = history_limit
        self._max_body_size = max_body_size
        self._recorder = Recorder(strict=self._strict, history_limit=history_limit)
        self._backend: Backend | None = None
        self._tls: Any = None
        self._died: ServerDiedError | None = None
        self._started_once = False
        self._abandoned: tuple[str, ...] = ()
        self._lifecycle = threading.Lock()

    # -- lifecycle ------------------------------------------------------------

    @property
    def address(self) -> str:
        """The address the server binds."""
        return self._address

    @property
    def port(self) -> int:
        """The bound port (``0`` until the first `start` with ``port=0``)."""
        return self._port

    @property
    def mode(self) -> str:
        """``"thread"``, ``"subprocess"`` or ``"inline"``."""
        return self._mode

    @property
    def running(self) -> bool:
        """Whether the server is started and not stopped."""
        return self._backend is not None

    def start(self) -> TestServer:
        """Bind and serve; return once accepting.  Returns the server itself.

        :raises ServerStartError: the port is in use (the message names the
            address and port) or the server could not start.
        :raises ServerStateError: the server is already running.
        """
        with self._lifecycle:
            if self._backend is not None:
                raise ServerStateError(f"server at {self.url} is already running; stop() it first")
            if self._started_once:
                self._recorder = Recorder(strict=self._strict, history_limit=self._history_limit)
            self._died = None
            try:
                backend = self._make_backend()
                self._port = backend.start()
            except BaseException:
                self._remove_tls()
                raise
            self._backend = backend
            self._started_once = True
        return self

    def _make_backend(self) -> Backend:
        from ._backend import ServeConfig

        ssl_context = None
        if self._ssl is True:
            from ._tls import TlsFiles

            self._tls = TlsFiles.create()
            ssl_context = self._tls.server_context()
        elif isinstance(self._ssl, _ssl.SSLContext):
            ssl_context = self._ssl
        config = ServeConfig(
            self._address,
            self._port,
            strict=self._strict,
            history_limit=self._history_limit,
            max_body_size=self._max_body_size,
            startup_timeout=self._startup_timeout,
            tls=self._tls,
        )
        if self._mode == "subprocess":
            from ._backend_subprocess import SubprocessBackend

            return SubprocessBackend(self._recorder, config)
        if self._mode == "inline":
            raise ServerStateError(
                "an inline server is started by tserver.testing.AsyncTestServerTestCase, "
                "not by start()"
            )
        from ._backend_thread import ThreadBackend

        return ThreadBackend(self._recorder, config, ssl_context)

    def _attach_inline(self, port: int) -> InlineBackend:
        """Serve from the caller's IOLoop on *port*, a socket the caller bound.

        The hook of `tserver.testing`: marks the server running and returns
        the backend, whose ``app`` the caller serves on its own IOLoop.
        """
        from ._backend import ServeConfig
        from ._backend_inline import InlineBackend

        if self._mode != "inline" or self._ssl is not False:
            raise ServerStateError(
                f"_attach_inline: needs mode='inline' and ssl=False, not mode={self._mode!r}, "
                f"ssl={self._ssl!r}"
            )
        with self._lifecycle:
            if self._backend is not None:
                raise ServerStateError(f"server at {self.url} is already running; stop() it first")
            if self._started_once:
                self._recorder = Recorder(strict=self._strict, history_limit=self._history_limit)
            config = ServeConfig(
                self._address,
                port,
                strict=self._strict,
                history_limit=self._history_limit,
                max_body_size=self._max_body_size,
                startup_timeout=self._startup_timeout,
            )
            backend = InlineBackend(self._recorder, config)
            self._port = backend.start()
            self._backend = backend
            self._started_once = True
        return backend

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close every socket, join the thread or reap the child.

        Idempotent, and a no-op before `start`.  The history, rules and
        errors stay readable (and `check` usable) until the next `start`.
        What could not be ended within *timeout* (a response callback that
        blocks the server thread) is left running, listed in `abandoned` and
        reported by a `RuntimeWarning`.
        The port can be bound again at once with ``SO_REUSEADDR`` (as Tornado,
        `http.server` and aiohttp bind); connections the server closed keep
        it in ``TIME_WAIT`` for a bare ``bind()`` without that option.
        """
        abandoned: tuple[str, ...] = ()
        with self._lifecycle:
            backend, self._backend = self._backend, None
            try:
                if backend is not None:
                    backend.stop(timeout)
                    backend.close()
                    abandoned = tuple(getattr(backend, "abandoned", ()))
                    self._abandoned = abandoned
                    # a child that died unnoticed (or was killed at stop) lost
                    # the final state: later calls say so instead of passing
                    died = getattr(backend, "died", None)
                    if died is not None and self._died is None:
                        self._died = died
            finally:
                self._remove_tls()
        if abandoned:
            warnings.warn(
                f"tserver: stop() left work running at {self.url}: " + "; ".join(abandoned),
                RuntimeWarning,
                stacklevel=2,
            )

    @property
    def abandoned(self) -> tuple[str, ...]:
        """What the last `stop` could not end within its timeout (empty if nothing).

        In thread mode a response callback that blocks the event loop (a
        synchronous wait that never returns) keeps the server thread, and the
        sockets it holds, alive after `stop` returns; each entry names what
        was left.  Subprocess mode kills such a child instead and reports it
        as `ServerDiedError` at the next call.
        """
        return self._abandoned

    def _remove_tls(self) -> None:
        """Delete the throwaway CA's directory (``ssl=True``), if any."""
        tls, self._tls = self._tls, None
        if tls is not None:
            tls.remove()

    def __enter__(self) -> TestServer:
        if self._backend is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None:
            self.check()

    def __repr__(self) -> str:
        state = "running" if self._backend is not None else "stopped"
        return f"<TestServer {self._mode} {self.url} {state}>"

    # -- addresses ------------------------------------------------------------

    @property
    def url(self) -> str:
        """`get_url` of ``"/"``: ``http://127.0.0.1:PORT/``."""
        return self.get_url()

    def get_url(self, path: str = "/") -> str:
        """The URL of *path* on this server, joined by `urllib.parse.urljoin`.

        ``get_url("/a?b=1")`` gives ``http://127.0.0.1:PORT/a?b=1``; with TLS
        the scheme is ``https``; an IPv6 address is put in brackets.
        """
        if not isinstance(path, str):
            raise TypeError(f"get_url: path {path!r} must be a str such as '/api?q=1'")
        scheme = "https" if self._ssl is not False else "http"
        host = f"[{self._address}]" if ":" in self._address else self._address
        return urljoin(f"{scheme}://{host}:{self._port}/", path)

    @property
    def ca_path(self) -> str | None:
        """The PEM file of the throwaway CA (``ssl=True``, while running), else `None`."""
        return None if self._tls is None else self._tls.ca_path

    def client_ssl_context(self) -> _ssl.SSLContext:
        """An `ssl.SSLContext` that trusts this server's throwaway CA."""
        if self._tls is None or self._tls.ca_path is None:
            raise ServerStateError(
                "client_ssl_context() needs a running server made with ssl=True "
                "(with ssl=<SSLContext> you hold the certificates yourself)"
            )
        return _ssl.create_default_context(cafile=self._tls.ca_path)

    # -- plumbing ---------------------------------------------------------------

    def _call(self, command: Command) -> Any:
        if self._died is not None:
            raise self._died
        backend = self._backend
        if backend is None:
            return self._recorder.apply(command)
        try:
            return backend.call(command)
        except ServerDiedError as exc:
            self._died = exc
            raise

    # -- setting the response ---------------------------------------------------

    def set_response(self, key: str, value: Any, *, method: str | None = None) -> None:
        """Set one key of the default response (see the key table in the docs).

        ``method="POST"`` (or the key ``"post.data"``) sets it for that method
        only; it wins over the any-method value.
        """
        self._set("set_response", key, value, method, once=False)

    def set_response_once(self, key: str, value: Any, *, method: str | None = None) -> None:
        """Override one key for the next request only (the next *method* one)."""
        self._set("set_response_once", key, value, method, once=True)

    def _set(self, where: str, key: str, value: Any, method: str | None, *, once: bool) -> None:
        if self._strict:
            raise ServerStateError(
                f"{where}() is not available on a strict server: only rules answer; "
                "use add_response(Response(...), ...)"
            )
        name, method = normalize_key(where, key, method)
        value = validate_value(where, name, value)
        if name == "callback" and self._mode == "subprocess":
            _args.check_portable(where, "callback", value)
        self._call(SetResponse(name, value, method, once))

    def add_response(
        self,
        response: Response,
        *,
        count: int | None = 1,
        method: str | Iterable[str] | None = None,
        path: Any = None,
        match: Any = None,
    ) -> None:
        """Add a rule: *response* answers the next *count* matching requests.

        ``count=None`` answers every matching request.  ``method`` is a name
        or a list, ``path`` an exact str, a compiled pattern (full match) or
        a hamcrest matcher, ``match`` any hamcrest matcher over `Request`.
        Rules are tried in the order added.
        """
        where = "add_response"
        if not isinstance(response, Response):
            raise TypeError(f"{where}: response {response!r} must be a tserver.Response")
        count = _args.check_count(where, count, allow_none=True)
        methods = _args.check_methods(where, method)
        path = _args.check_path_selector(where, path)
        if match is not None and not _args.is_matcher(match):
            raise TypeError(f"{where}: match {match!r} must be a hamcrest matcher over Request")
        if self._mode == "subprocess":
            for what, obj in (("callback", response.callback), ("path", path), ("match", match)):
                if obj is not None and not isinstance(obj, str):
                    _args.check_portable(where, what, obj)
        self._call(AddRule(response, count, methods, path, match))

    def reset(self) -> None:
        """Empty history, rules, default response, once-overrides and errors."""
        self._call(Reset())

    # -- reading requests -------------------------------------------------------

    @property
    def history(self) -> list[Request]:
        """A snapshot of the recorded requests, oldest first."""
        result: list[Request] = self._call(GetHistory())
        return result

    @property
    def request(self) -> Request:
        """The last request (`NoRequestError` when there is none)."""
        result: Request = self._call(GetRequest(-1))
        return result

    @property
    def request_count(self) -> int:
        """Requests received since the last reset, ``history_limit`` drops included."""
        result: int = self._call(GetCount())
        return result

    def get_request(self, key: str | None = None, index: int = -1) -> Any:
        """The request at *index*, or with *key* one of its fields.

        *key* is any `Request` field (``"data"``, ``"args"``, ``"headers"``,
        ``"cookies"``, ``"method"``, ``"path"``, ``"files"``, ``"client_ip"``,
        ...) or ``"text"`` / ``"json"``.
        """
        if key is not None and key not in _args.REQUEST_KEYS:
            raise ValueError(
                f"get_request: unknown key {key!r}; expected one of "
                + ", ".join(repr(k) for k in _args.REQUEST_KEYS)
            )
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"get_request: index {index!r} must be an int")
        request: Request = self._call(GetRequest(index))
        if key is None:
            return request
        if key == "json":
            return request.json()
        return getattr(request, key)

    def wait_request(self, timeout: float = 5.0) -> Request:
        """Block until a request has arrived since the last reset; the latest one."""
        return self.wait_requests(1, timeout)[-1]

    def wait_requests(self, count: int, timeout: float = 5.0) -> list[Request]:
        """Block until *count* requests arrived since the last reset; the history.

        :raises WaitTimeoutError: saying how many arrived and were awaited.
        """
        count, timeout = self._wait_args("wait_requests", count, timeout)
        if self._died is not None:
            raise self._died
        backend = self._backend
        if backend is None:
            return self._recorder.wait(count, timeout)
        try:
            return backend.wait(count, timeout)
        except ServerDiedError as exc:
            self._died = exc
            raise

    async def await_request(self, timeout: float = 5.0) -> Request:
        """`wait_request` that does not block the caller's event loop."""
        return (await self.await_requests(1, timeout))[-1]

    async def await_requests(self, count: int, timeout: float = 5.0) -> list[Request]:
        """`wait_requests` that does not block the caller's event loop."""
        count, timeout = self._wait_args("await_requests", count, timeout)
        if self._died is not None:
            raise self._died
        backend = self._backend
        if backend is None:
            from ._waiting import wait_async

            return await wait_async(self._recorder, count, timeout)
        try:
            return await backend.wait_async(count, timeout)
        except ServerDiedError as exc:
            self._died = exc
            raise

    @staticmethod
    def _wait_args(where: str, count: object, timeout: object) -> tuple[int, float]:
        checked = _args.check_count(where, count, allow_none=False)
        assert checked is not None
        return checked, _args.check_timeout(where, timeout)

    # -- asserting ------------------------------------------------------------

    def check(self) -> None:
        """Raise `AssertionError` for what went wrong while serving.

        That is: exceptions raised by response callbacks (the first one is
        the ``__cause__``), and in strict mode requests no rule matched and
        count-limited rules not used up.
        """
        __tracebackhide__ = True
        report: CheckReport = self._call(TakeReport())
        if report:
            cause: BaseException | None = None
            if report.errors:
                first = report.errors[0]
                cause = first.exception or _RemoteError(f"{first.type_name}: {first.message}")
            raise AssertionError(render_check_report(report, self.url)) from cause

    def assert_request(self, index: int = -1, timeout: float = 0.0) -> RequestAssertion:
        """Fluent assertions on the request at *index* (waiting *timeout* for it)."""
        __tracebackhide__ = True
        from ._assertions import RequestAssertion

        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"assert_request: index {index!r} must be an int")
        timeout = _args.check_timeout("assert_request", timeout)
        if timeout > 0:
            needed = index + 1 if index >= 0 else -index
            try:
                self.wait_requests(needed, timeout)
            except TimeoutError:
                pass
        history = self.history
        if not -len(history) <= index < len(history):
            raise _NoRequestAssertion(
                f"no request at index {index}: {len(history)} request(s) recorded "
                f"(server at {self.url})"
            )
        return RequestAssertion(history, index, self.url)

    def assert_history(self) -> HistoryAssertion:
        """Fluent assertions on the whole history."""
        from ._assertions import HistoryAssertion

        return HistoryAssertion(self.history, self.url)

    def assert_no_requests(self) -> None:
        """Raise `AssertionError` (listing them) if any request was recorded."""
        __tracebackhide__ = True
        from ._assertions import assert_no_requests

        assert_no_requests(self.history, self.url)


class _RemoteError(Exception):
    """Stands for an exception raised in a child that could not be pickled."""
