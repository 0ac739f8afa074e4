"""`TestServer`: the facade every test talks to.

It checks arguments in the caller's process, turns each call into a
`~tserver._protocol` command and hands it to the backend of its mode.  When
no backend runs (before `start`, after `stop`) the same commands go to a
local `Recorder`, so configuration made before `start` is served and the
history stays readable after `stop`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket as _socket
import ssl as _ssl
import threading
import warnings
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from . import _args
from ._backend import LocalBackend, ServeConfig, Transport
from ._commands import (
    ActOnHeld,
    AddRule,
    CloseConnections,
    GetConnections,
    GetCount,
    GetExchanges,
    GetHar,
    GetHeld,
    GetHistory,
    GetRequest,
    GetWebSockets,
    PushMessage,
    Reset,
    Served,
    SetResponse,
    TakeReport,
)
from ._errors import NoRequestError, ServerStateError, TestServerError
from ._formatting import format_history, no_request_text, render_check_report
from ._recorder import Recorder
from ._response import Response, check_key_value, normalize_key
from ._websocket import WebSocket, WebSocketSession

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from ._assertions import HistoryAssertion, RequestAssertion, WebSocketAssertion
    from ._backend import Backend
    from ._commands import Command
    from ._held import Held, HeldKey
    from ._records import Connection, Exchange
    from ._request import Request

__all__ = ["TRANSPORTS", "TestServer"]


def _thread_backend(recorder: Recorder, config: ServeConfig) -> Backend:
    from ._backend_thread import ThreadBackend

    return ThreadBackend(recorder, config)


def _subprocess_backend(recorder: Recorder, config: ServeConfig) -> Backend:
    from ._backend_subprocess import SubprocessBackend

    return SubprocessBackend(recorder, config)


#: The modes `TestServer` accepts, in the order error messages list them.
TRANSPORTS: dict[str, Transport] = {
    "thread": Transport(_thread_backend, crosses_process=False),
    "subprocess": Transport(_subprocess_backend, crosses_process=True),
}


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
    :param client_cert: ``"optional"`` or ``"required"`` (with ``ssl=True``
        or ``proxy=True``) asks each client for a certificate, which the
        throwaway CA issues: `client_cert_path` and `client_ssl_context`
        present it.
    :param proxy: also serve as a proxy: answer ``CONNECT host:port`` with
        ``200`` and serve the tunnel itself, completing TLS in it with a
        certificate for that host from a throwaway CA (`ca_path`).  Requests
        are answered by the rules; nothing is ever forwarded anywhere.
    :param proxy_auth: ``(user, password)``: proxied requests and
        ``CONNECT`` requests without matching ``Proxy-Authorization: Basic``
        credentials get ``407`` (needs ``proxy=True``).
    :param http2: also serve HTTP/2 on the same port: by ALPN (``h2``)
        with ``ssl=True``, by prior knowledge on a plain port (needs the
        ``tserver[http2]`` extra).
    :param spare: in subprocess mode, let the warm spare fork the child in a
        few milliseconds instead of starting a fresh interpreter (~100 ms);
        ``False`` always starts a fresh one, as does the environment
        variable ``TSERVER_SPARE=0`` for every server.  See :ref:`spare`.

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

    #: The modes this class accepts (a subclass may serve others).
    _transports: dict[str, Transport] = TRANSPORTS

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
        client_cert: str | None = None,
        proxy: bool = False,
        proxy_auth: tuple[str, str] | None = None,
        http2: bool = False,
        spare: bool = True,
    ) -> None:
        transport = self._transports.get(mode) if isinstance(mode, str) else None
        self._proxy_auth = _args.check_proxy(proxy, proxy_auth)
        self._proxy = proxy
        self._http2 = _args.check_http2(http2)
        _args.check_client_cert(client_cert, ssl, proxy)
        self._client_cert = client_cert
        self._spare = _args.check_bool("spare", spare)
        _args.check_server_args(
            address,
            port,
            mode,
            ssl,
            history_limit,
            max_body_size,
            modes=tuple(self._transports),
            crosses_process=transport is not None and transport.crosses_process,
        )
        assert transport is not None
        self._transport = transport
        self._startup_timeout = _args.check_timeout("TestServer", startup_timeout)
        self._address = address
        self._port = port
        self._mode = mode
        self._ssl = ssl
        self._strict = bool(strict)
        self._history_limit = history_limit
        self._max_body_size = max_body_size
        self._local = LocalBackend(self._new_recorder())
        self._backend: Backend = self._local
        self._tls: Any = None
        self._started_once = False
        self._lifecycle = threading.Lock()

    def _new_recorder(self) -> Recorder:
        return Recorder(strict=self._strict, history_limit=self._history_limit)

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
        return self._backend.running

    def start(self) -> TestServer:
        """Bind and serve; return once accepting.  Returns the server itself.

        :raises ServerStartError: the port is in use (the message names the
            address and port) or the server could not start.
        :raises ServerStateError: the server is already running.
        """
        with self._lifecycle:
            if self._backend.running:
                raise ServerStateError(f"server at {self.url} is already running; stop() it first")
            # the first start serves what was set before it; a restart starts afresh
            recorder = self._new_recorder() if self._started_once else self._local.recorder
            try:
                backend = self._transport.new(recorder, self._serve_config())
                self._port = backend.start()
            except BaseException:
                self._remove_tls()
                raise
            if recorder is not self._local.recorder or self._transport.crosses_process:
                # a wait begun while stopped watches a state nothing will record into
                self._local.recorder.abandon_waiters(
                    ServerStateError(
                        f"the server at {self.url} started while this wait waited on the "
                        "stopped server's state; wait for requests after start()"
                    )
                )
            self._backend = backend
            self._started_once = True
        return self

    def _serve_config(self) -> ServeConfig:
        """What a backend needs to serve, making the throwaway CA of ``ssl=True``."""
        ssl_context = self._ssl if isinstance(self._ssl, _ssl.SSLContext) else None
        tunnels = None
        if self._ssl is True or self._proxy:
            from ._tls import TlsFiles, TunnelCerts

            tls = self._tls = TlsFiles.create(self._client_cert, proxy=self._proxy)
            in_process = not self._transport.crosses_process
            if self._ssl is True and in_process:
                ssl_context = tls.server_context()
            if self._proxy and in_process:
                tunnels = TunnelCerts(tls.ca_pem, tls.ca_key_pem, self._client_cert)
        return ServeConfig(
            self._address,
            self._port,
            strict=self._strict,
            history_limit=self._history_limit,
            max_body_size=self._max_body_size,
            startup_timeout=self._startup_timeout,
            tls=self._tls,
            ssl_context=ssl_context,
            proxy=self._proxy,
            proxy_auth=self._proxy_auth,
            tunnels=tunnels,
            ssl=self._ssl is True,
            http2=self._http2,
            spare=self._spare,
        )

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
        with self._lifecycle:
            backend = self._backend
            try:
                self._local = backend.stop(timeout)
            finally:
                self._backend = self._local
                self._remove_tls()
        if backend.running and self._local.abandoned:
            warnings.warn(
                f"tserver: stop() left work running at {self.url}: "
                + "; ".join(self._local.abandoned),
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
        return self._local.abandoned

    def _remove_tls(self) -> None:
        """Delete the throwaway CA's directory (``ssl=True``), if any."""
        tls, self._tls = self._tls, None
        if tls is not None:
            tls.remove()

    def __enter__(self) -> TestServer:
        if not self._backend.running:
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
        state = "running" if self._backend.running else "stopped"
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
    def proxy_url(self) -> str:
        """The server as a proxy: ``http://127.0.0.1:PORT`` (``https://`` with TLS), no path.

        What a client takes as its proxy setting (``proxies=``, ``proxy=``,
        ``HTTP_PROXY``).
        """
        return self.get_url("/")[:-1]

    @property
    def ca_path(self) -> str | None:
        """The PEM file of the throwaway CA (``ssl=True``, ``proxy=True``), else `None`."""
        return None if self._tls is None else self._tls.ca_path

    @property
    def client_cert_path(self) -> str | None:
        """The client certificate and its key, one PEM file (``client_cert=``, while running).

        `None` without ``client_cert=``, or while the server is stopped.
        """
        return None if self._tls is None else self._tls.client_cert_path

    def client_ssl_context(self) -> _ssl.SSLContext:
        """An `ssl.SSLContext` that trusts this server's throwaway CA.

        With ``client_cert=``, it also presents the client certificate.
        """
        if self._tls is None or self._tls.ca_path is None:
            raise ServerStateError(
                "client_ssl_context() needs a running server made with ssl=True or proxy=True "
                "(with ssl=<SSLContext> you hold the certificates yourself)"
            )
        context: _ssl.SSLContext = self._tls.client_context()
        return context

    # -- plumbing ---------------------------------------------------------------

    def _call(self, command: Command[Any]) -> Any:
        return self._backend.call(command)

    # -- setting the response ---------------------------------------------------

    def load_stubs(self, path: str | os.PathLike[str]) -> list[int]:
        """Add the default response and the rules of the stubs file *path*; the rules' ids.

        The file is JSON, or TOML when its name ends in ``.toml``: a
        ``default`` table (``status``, ``body``, ``json``, ``headers``,
        ``sleep``) and a list of ``rules``, each with its selectors
        (``method``, ``path`` or ``path_pattern``, ``host``, ``query``,
        ``headers``, ``json``), ``count`` (default: every request),
        ``priority`` and a ``response`` table (the fields of `Response`;
        ``body`` is ``data``).  See the "Command line" page.

        :raises ValueError: the file cannot be read or a value is wrong; the
            message names the file, the place (``rules[2].response.status``)
            and what was expected, and nothing of the file was added.
        """
        from ._stubs import read_stubs

        default, stubs = read_stubs(path)
        for key, value in default.items():
            self.set_response(key, value)
        return [
            self.add_response(
                stub.response,
                count=stub.count,
                method=stub.method,
                path=stub.path,
                match=stub.match,
                host=stub.host,
                priority=stub.priority,
            )
            for stub in stubs
        ]

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
        value = check_key_value(where, name, value)
        self._check_portable(where, (("callback", value if name == "callback" else None),))
        self._call(SetResponse(name, value, method, once))

    def _check_portable(self, where: str, objects: Iterable[tuple[str, object]]) -> None:
        """Refuse, now, what a transport across processes could not pickle."""
        if self._transport.crosses_process:
            for what, obj in objects:
                if obj is not None and not isinstance(obj, str):
                    _args.check_portable(where, what, obj)

    def add_response(
        self,
        response: Response | WebSocket,
        *,
        count: int | None = 1,
        method: str | Iterable[str] | None = None,
        path: Any = None,
        match: Any = None,
        host: Any = None,
        priority: int = 0,
    ) -> int:
        """Add a rule: *response* answers the next *count* matching requests; its id.

        ``count=None`` answers every matching request.  ``method`` is a name
        or a list, ``path`` an exact str, a compiled pattern (full match) or
        a hamcrest matcher, ``match`` any hamcrest matcher over `Request`.
        ``host`` selects on `Request.host` (the host the client asked for,
        as to a proxy too): a str compared without case, and without the
        port unless the str names one; a compiled pattern (full match); or
        a hamcrest matcher.
        Rules with a higher *priority* are tried first, rules of equal
        priority in the order added.  The id is ``0`` for the first rule
        added since the last reset, counting up.
        """
        where = "add_response"
        if isinstance(response, WebSocket):  # the whole answer: the upgrade and the script
            response = Response(websocket=response)
        if not isinstance(response, Response):
            raise TypeError(
                f"{where}: response {response!r} must be a tserver.Response or a tserver.WebSocket"
            )
        count = _args.check_count(where, count, allow_none=True)
        methods = _args.check_methods(where, method)
        path = _args.check_path_selector(where, path)
        host = _args.check_host_selector(where, host)
        if match is not None and not _args.is_matcher(match):
            raise TypeError(f"{where}: match {match!r} must be a hamcrest matcher over Request")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"{where}: priority {priority!r} must be an int (higher goes first)")
        self._check_portable(
            where,
            (
                ("callback", response.callback),
                ("chunks", response.chunks),
                ("events", response.events),
                ("websocket", response.websocket),
                ("path", path),
                ("match", match),
                ("host", host),
            ),
        )
        result: int = self._call(AddRule(response, count, methods, path, match, priority, host))
        return result

    def reset(self) -> None:
        """Empty history, rules, default response, once-overrides, errors and connections.

        Connections still open are kept, numbered anew from ``0``.
        """
        self._call(Reset())

    # -- connections and exchanges ------------------------------------------------

    @property
    def connections(self) -> list[Connection]:
        """Every connection since the last reset, oldest first (`Connection` values).

        Those that never carried a request are there too, and so are TLS
        handshakes that failed (their `Connection.error` says why).
        """
        result: list[Connection] = self._call(GetConnections())
        return result

    @property
    def exchanges(self) -> list[Exchange]:
        """What answered each request: `Exchange` values aligned with `history`."""
        result: list[Exchange] = self._call(GetExchanges())
        return result

    @property
    def websockets(self) -> list[WebSocketSession]:
        """Every WebSocket session since the last reset, oldest first.

        `~tserver.ws.WebSocketSession` values.

        Each holds its upgrade request, every message in both directions in
        order, and how it closed; an open session is a snapshot of now.
        """
        result: list[WebSocketSession] = self._call(GetWebSockets())
        return result

    def wait_messages(
        self, count: int = 1, *, session: int | None = None, timeout: float = 5.0
    ) -> WebSocketSession:
        """Block until a WebSocket session received *count* messages from its client.

        :param session: the session's index (`WebSocketSession.index
            <tserver.ws.WebSocketSession>`); `None` for the newest one, or the
            first to open when none has yet.
        :returns: the session as it is then; also when it closed with fewer
            messages (no more can come), which its ``open`` tells.
        :raises WaitTimeoutError: neither happened within *timeout* seconds.
        """
        count, timeout = _check_message_wait("wait_messages", count, session, timeout)
        return self._backend.wait_messages(session, count, timeout)

    async def await_messages(
        self, count: int = 1, *, session: int | None = None, timeout: float = 5.0
    ) -> WebSocketSession:
        """`wait_messages` that does not block the caller's event loop (asyncio, Tornado, trio)."""
        count, timeout = _check_message_wait("await_messages", count, session, timeout)
        return await self._backend.wait_messages_async(session, count, timeout)

    def push_message(self, data: str | bytes, *, session: int | None = None) -> bool:
        """Send *data* (text as str, binary as bytes) on an open WebSocket session now.

        The session's script goes on; the message is recorded as any the
        server sends.  *session*: its index, or `None` for the newest open
        one.  Returns `False` when that session is not open (nothing sent).
        """
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"push_message: data {data!r} must be a str (text) or bytes (binary)")
        if session is not None and (isinstance(session, bool) or not isinstance(session, int)):
            raise TypeError(f"push_message: session {session!r} must be an int index or None")
        result: bool = self._call(PushMessage(session, data))
        return result

    def served(self, rule_id: int) -> list[Request]:
        """The requests the rule *rule_id* answered (the id `add_response` returned)."""
        if isinstance(rule_id, bool) or not isinstance(rule_id, int):
            raise TypeError(f"served: rule_id {rule_id!r} must be an int returned by add_response")
        result: list[Request] = self._call(Served(rule_id))
        return result

    def close_connections(self) -> int:
        """Close every open connection that is idle between requests; how many were closed.

        A connection is idle once its last response was written whole and
        no request is in progress on it: a pooled client then finds its
        connection gone, as when a real server restarts.
        """
        result: int = self._call(CloseConnections())
        return result

    # -- the traffic as HAR --------------------------------------------------------

    def to_har(self) -> dict[str, Any]:
        """The exchanges since the last reset as a HAR 1.2 log (a dict of JSON values).

        Browsers' network panels and HAR viewers open it; see the how-to
        "Look at the traffic of a failed test" for what each field holds.
        """
        address = self._address
        try:
            ipaddress.ip_address(address)
        except ValueError:  # a name, such as "localhost": the address it stands for
            address = str(_socket.getaddrinfo(address, None)[0][4][0])
        result: dict[str, Any] = self._call(GetHar(address))
        return result

    def save_har(self, path: str | os.PathLike[str]) -> None:
        """Write `to_har` to the file *path* (UTF-8 JSON)."""
        text = json.dumps(self.to_har(), indent=1, ensure_ascii=False)
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)

    # -- reading requests -------------------------------------------------------

    @property
    def history(self) -> list[Request]:
        """A snapshot of the recorded requests, oldest first."""
        result: list[Request] = self._call(GetHistory())
        return result

    @property
    def request(self) -> Request:
        """The last request (`NoRequestError` when there is none)."""
        request: Request = self.get_request()
        return request

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

        :raises NoRequestError: no request at *index*; the message lists
            the recorded requests.
        """
        if key is not None and key not in _args.REQUEST_KEYS:
            raise ValueError(
                f"get_request: unknown key {key!r}; expected one of "
                + ", ".join(repr(k) for k in _args.REQUEST_KEYS)
            )
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"get_request: index {index!r} must be an int")
        request: Request | None = self._call(GetRequest(index))
        if request is None:
            raise self._no_request(index)
        if key is None:
            return request
        if key == "json":
            return request.json()
        return getattr(request, key)

    def _no_request(
        self,
        index: int,
        history: list[Request] | None = None,
        statuses: list[int | None] | None = None,
    ) -> NoRequestError:
        """The error for no request at *index*, with the recorded requests."""
        if history is None:
            history, statuses = self._answered()
        text = no_request_text(index, len(history), self.request_count, self.url)
        if history:
            text += "\n" + format_history(history, url=self.url, statuses=statuses)
        return NoRequestError(text)

    def wait_request(self, timeout: float = 5.0) -> Request:
        """Block until a request has arrived since the last reset; the latest one."""
        return self.wait_requests(1, timeout)[-1]

    def wait_requests(self, count: int, timeout: float = 5.0) -> list[Request]:
        """Block until *count* requests arrived since the last reset; the history.

        :raises WaitTimeoutError: saying how many arrived and were awaited.
        """
        count, timeout = self._wait_args("wait_requests", count, timeout)
        return self._backend.wait(count, timeout)

    async def await_request(self, timeout: float = 5.0) -> Request:
        """`wait_request` that does not block the caller's event loop."""
        return (await self.await_requests(1, timeout))[-1]

    async def await_requests(self, count: int, timeout: float = 5.0) -> list[Request]:
        """`wait_requests` that does not block the caller's event loop.

        Works under asyncio (and Tornado) and under trio.
        """
        count, timeout = self._wait_args("await_requests", count, timeout)
        return await self._backend.wait_async(count, timeout)

    # -- held responses ---------------------------------------------------------

    def wait_held(self, timeout: float = 5.0) -> Held:
        """Block until a response is held (``Response(hold=...)``); its `Held`.

        Each call returns the oldest held exchange that no earlier
        `wait_held` or `await_held` returned.

        :raises WaitTimeoutError: none came within *timeout* seconds.
        """
        timeout = _args.check_timeout("wait_held", timeout)
        return self._bind(self._backend.wait_held(timeout))

    async def await_held(self, timeout: float = 5.0) -> Held:
        """`wait_held` that does not block the caller's event loop (asyncio, Tornado, trio)."""
        timeout = _args.check_timeout("await_held", timeout)
        return self._bind(await self._backend.wait_held_async(timeout))

    @property
    def held(self) -> list[Held]:
        """The exchanges held now, oldest first (released, failed or abandoned ones drop out)."""
        result: list[Held] = self._call(GetHeld())
        return [self._bind(held) for held in result]

    def _bind(self, held: Held) -> Held:
        return held.bound(self._act_on_held)

    def _act_on_held(self, key: HeldKey, action: str, value: object) -> bool:
        if isinstance(value, Response):
            self._check_portable(
                "Held.release",
                (
                    ("callback", value.callback),
                    ("chunks", value.chunks),
                    ("events", value.events),
                ),
            )
        result: bool = self._call(ActOnHeld(key, action, value))
        return result

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
        report = self._call(TakeReport())
        if report:
            cause: BaseException | None = None
            if report.errors:
                first = report.errors[0]
                # an exception that did not pickle back from the child: its text
                cause = first.exception or TestServerError(f"{first.type_name}: {first.message}")
            raise AssertionError(render_check_report(report, self.url)) from cause

    def assert_request(self, index: int = -1, timeout: float = 0.0) -> RequestAssertion:
        """Fluent assertions on the request at *index* (waiting *timeout* for it).

        :raises NoRequestError: (an `AssertionError` too) no request at
            *index*; the message lists the recorded requests.
        """
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
        history, statuses = self._answered()
        if not -len(history) <= index < len(history):
            raise self._no_request(index, history, statuses)
        return RequestAssertion(history, index, self.url, statuses)

    def _answered(self) -> tuple[list[Request], list[int | None]]:
        """The history and the status each request was answered with (one call)."""
        exchanges = self.exchanges
        return [e.request for e in exchanges], [e.status for e in exchanges]

    def assert_history(self) -> HistoryAssertion:
        """Fluent assertions on the whole history."""
        from ._assertions import HistoryAssertion

        history, statuses = self._answered()
        return HistoryAssertion(history, self.url, statuses)

    def assert_websocket(self, index: int = -1) -> WebSocketAssertion:
        """Fluent assertions on the WebSocket session at *index* (the newest by default).

        :raises AssertionError: there is no session at *index*; the message
            says how many there are.
        """
        __tracebackhide__ = True
        from ._assertions import WebSocketAssertion

        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"assert_websocket: index {index!r} must be an int")
        sessions = self.websockets
        if not -len(sessions) <= index < len(sessions):
            raise AssertionError(
                f"no WebSocket session at index {index}: "
                f"{_count_sessions(len(sessions))} (server at {self.url})"
            )
        return WebSocketAssertion(sessions[index])

    def assert_no_requests(self) -> None:
        """Raise `AssertionError` (listing them) if any request was recorded."""
        __tracebackhide__ = True
        from ._assertions import assert_no_requests

        history, statuses = self._answered()
        assert_no_requests(history, self.url, statuses)


def _check_message_wait(
    where: str, count: object, session: object, timeout: object
) -> tuple[int, float]:
    """The checked arguments of `TestServer.wait_messages` and `TestServer.await_messages`."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"{where}: count {count!r} must be an int of 0 or more")
    if session is not None and (
        isinstance(session, bool) or not isinstance(session, int) or session < 0
    ):
        raise TypeError(f"{where}: session {session!r} must be an index (0 or more) or None")
    return count, _args.check_timeout(where, timeout)


def _count_sessions(count: int) -> str:
    if count == 0:
        return "no session was opened"
    return f"{count} session{'s were' if count > 1 else ' was'} opened"
