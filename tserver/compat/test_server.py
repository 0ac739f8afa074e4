"""test_server 0.1.x, on tserver: change the import, keep the suite.

    from tserver.compat.test_server import Response, TestServer

    server = TestServer()
    server.start()
    server.add_response(Response(data=b"hi", headers=[("X-A", "1")]), count=2, method="get")
    ...  # the client under test fetches server.get_url("/path")
    req = server.get_request()
    assert req.path == "/path" and req.headers.get("user-agent")

What this module keeps of test_server 0.1.x:

- ``add_response(resp, count=1, method=None)`` with a positional ``count``,
  ``count=-1`` for "always"; method-specific responses are used before
  any-method ones, each kind in the order added;
- a request no response covers gets ``555 No response available``, and an
  error in a callback ``555`` with the error's text (test_server's
  ``INTERNAL_ERROR_RESPONSE_STATUS``);
- ``Response(callback=f)`` where ``f()`` takes no argument and returns a
  dict ``{"type": "response", "status": ..., "headers": ..., "data": ...}``;
  ``Response(raw_callback=f)`` where ``f()`` returns the raw bytes to write;
- every answer carries ``Listen-Port`` and, unless set,
  ``Server: TestServer/<version>`` and ``Content-Type: text/html;
  charset=utf-8``;
- ``Request`` as test_server made it: ``args`` a dict (the last value of each
  name), ``cookies`` a `http.cookies.SimpleCookie` (``cookies[name].value``),
  ``files`` a dict of lists of dicts (``files[name][0]["content"]``, with
  the non-file parts of the form too), ``headers`` an ``HttpHeaderStorage``;
- ``request_is_done()``, ``wait_request(timeout)`` returning `None`,
  ``start(daemon=True)``, ``get_url(path="", port=None)``.

Headers that HTTP forbids (non-Latin-1, control characters), which
`tserver.Response` refuses, are written raw, as test_server wrote them.
``mode="subprocess"`` (a keyword test_server 0.1.x did not have) serves from
a child process; callbacks must then be module-level functions.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urljoin

import tserver
from tserver import Raw

from ._common import answer, with_defaults

__all__ = [
    "INTERNAL_ERROR_RESPONSE_STATUS",
    "HttpHeaderStorage",
    "InternalError",
    "NoResponseError",
    "Request",
    "RequestNotProcessedError",
    "Response",
    "TestServer",
    "TestServerError",
    "WaitTimeoutError",
]

#: The status test_server answers with when it has no response or fails.
INTERNAL_ERROR_RESPONSE_STATUS: int = 555

#: The methods ``add_response(method=...)`` accepts (in any case).
VALID_METHODS: tuple[str, ...] = ("get", "post", "put", "delete", "options", "patch")

#: The version test_server's ``Server`` header names (tserver's).
__version__ = tserver.__version__

#: Headers as test_server took them: a mapping, or ``(name, value)`` pairs.
HttpHeaderStream = Mapping[str, str] | Iterable[tuple[str, str]]

_log = logging.getLogger("tserver.compat.test_server")


class TestServerError(Exception):
    """The base of test_server's errors."""


class WaitTimeoutError(TestServerError, tserver.WaitTimeoutError):
    """``wait_request`` saw no request in time (also a `tserver.WaitTimeoutError`)."""

    def __init__(self, message: str, expected: int = 1, received: int = 0) -> None:
        super().__init__(message, expected, received)


class RequestNotProcessedError(TestServerError):
    """``get_request`` before any request arrived."""


class NoResponseError(TestServerError):
    """No response was configured for a request (answered ``555``)."""


class InternalError(TestServerError):
    """A callback gave what test_server cannot answer with (answered ``555``)."""


class HttpHeaderStorage:
    """test_server's header storage: case-insensitive names, several values each.

    ``get`` gives the first value and raises `KeyError` for an absent name,
    as test_server's did (not `None`).
    """

    __test__ = False

    def __init__(self, data: HttpHeaderStream | None = None, charset: str = "utf-8") -> None:
        self._store: dict[str, list[str]] = {}
        self.charset = charset
        if data is not None:
            self.extend(data)

    def set(self, key: str, value: str) -> None:
        """Replace every value of *key* by *value*."""
        self._store[key.lower()] = [key, value]

    def get(self, key: str) -> str:
        """The first value of *key*; `KeyError` if there is none."""
        return self._store[key.lower()][1]

    def getlist(self, key: str) -> list[str]:
        """Every value of *key*; `KeyError` if there is none."""
        return self._store[key.lower()][1:]

    def remove(self, key: str) -> None:
        """Remove *key* and its values; `KeyError` if there is none."""
        del self._store[key.lower()]

    def add(self, key: str, value: str) -> None:
        """Add a value to *key* (its first spelling is kept)."""
        self._store.setdefault(key.lower(), [key]).append(value)

    def extend(self, data: HttpHeaderStream) -> None:
        """Add every ``(name, value)`` of a mapping or a list of pairs."""
        pairs = data.items() if isinstance(data, Mapping) else data
        for key, value in pairs:
            self.add(key, value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._store

    def count_keys(self) -> int:
        """How many distinct names."""
        return len(self._store)

    def count_items(self) -> int:
        """How many ``(name, value)`` pairs."""
        return sum(1 for _ in self.items())

    def items(self) -> Iterator[tuple[str, str]]:
        """Every ``(name, value)``, grouped by name in the order names came."""
        for name, *values in self._store.values():
            for value in values:
                yield name, value

    def __repr__(self) -> str:
        return str(list(self.items()))


class Response:
    """What to answer, as test_server 0.1.x took it.

    :param callback: ``f()`` returning ``{"type": "response", "status": int,
        "headers": [...], "data": bytes}`` (every key but ``type`` optional).
    :param raw_callback: ``f()`` returning the bytes to write as they are.
    :param data: the body (bytes; anything else answers ``555``).
    :param headers: a mapping or ``(name, value)`` pairs.
    :param sleep: seconds to wait before answering.
    :param status: the status (``200``).
    """

    def __init__(
        self,
        callback: Callable[[], Mapping[str, Any]] | None = None,
        raw_callback: Callable[[], bytes] | None = None,
        data: bytes | None = None,
        headers: HttpHeaderStream | None = None,
        sleep: float | None = None,
        status: int | None = None,
    ) -> None:
        self.callback = callback
        self.raw_callback = raw_callback
        self.data: Any = b"" if data is None else data
        self.headers: HttpHeaderStorage = HttpHeaderStorage(headers)
        self.sleep = sleep
        self.status: int = 200 if status is None else status


class Request:
    """One request, in test_server's shape (built from a `tserver.Request`)."""

    def __init__(
        self,
        args: Mapping[str, Any],
        client_ip: str,
        cookies: SimpleCookie,
        data: bytes,
        files: Mapping[str, Any],
        headers: HttpHeaderStream,
        method: str,
        path: str,
    ) -> None:
        self.args = args
        self.client_ip = client_ip
        self.cookies = cookies
        self.data = data
        self.files = files
        self.headers: HttpHeaderStorage = HttpHeaderStorage(headers)
        self.method = method
        self.path = path

    @classmethod
    def from_native(cls, request: tserver.Request) -> Request:
        """test_server's view of *request*."""
        files: dict[str, list[dict[str, Any]]] = {}
        for name, uploads in request.files.items():
            for upload in uploads:
                files.setdefault(name, []).append(
                    {
                        "name": name,
                        "content_type": upload.content_type,
                        "filename": upload.filename,
                        "content": upload.data,
                    }
                )
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            for name, value in request.form.multi_items():
                files.setdefault(name, []).append(
                    {
                        "name": name,
                        "content_type": "text/plain",
                        "filename": None,
                        "content": value.encode("utf-8"),
                    }
                )
        cookies: SimpleCookie = SimpleCookie()
        for header in request.headers.getlist("Cookie"):
            cookies.load(header)
        return cls(
            args=dict(parse_qsl(request.query_string)),
            client_ip=request.client_ip,
            cookies=cookies,
            data=request.data,
            files=files,
            headers=list(request.raw_headers),
            method=request.method.upper(),
            path=request.path,
        )


def _failure(exc: BaseException) -> tserver.Response:
    """test_server's answer to an error: ``555`` and the error's text."""
    _log.error("error in a test_server callback: %s: %s", type(exc).__name__, exc)
    return tserver.Response(str(exc), status=INTERNAL_ERROR_RESPONSE_STATUS)


class DictCallback:
    """Runs a test_server ``callback()`` (no argument, a dict back) for a tserver rule."""

    def __init__(self, callback: Callable[[], Mapping[str, Any]], port: int) -> None:
        self.callback = callback
        self.port = port

    def __call__(self, request: tserver.Request) -> tserver.Response:
        """The answer the callback describes, or ``555`` and why not."""
        try:
            result = self.callback()
            if not isinstance(result, dict):
                raise InternalError("Callback response is not a dict")
            if result.get("type") != "response":
                raise InternalError(
                    "Callback response has invalid type key: {}".format(result.get("type", "NA"))
                )
            for key in result:
                if key not in ("type", "status", "headers", "data"):
                    raise InternalError(f"Callback response contains invalid key: {key}")
            data = result.get("data", b"")
            if not isinstance(data, bytes):
                raise InternalError('Callback repsponse field "data" must be bytes')
            headers = HttpHeaderStorage(result.get("headers", ()))
            status = int(result.get("status", 200))
        except Exception as exc:  # test_server answered every error with 555
            return _failure(exc)
        return answer(status, with_defaults(headers.items(), self.port), data)


class RawCallback:
    """Runs a test_server ``raw_callback()`` (the bytes to write) for a tserver rule."""

    def __init__(self, callback: Callable[[], bytes]) -> None:
        self.callback = callback

    def __call__(self, request: tserver.Request) -> tserver.Response:
        """The bytes written as they are, then the connection closed."""
        try:
            data = self.callback()
            if not isinstance(data, bytes):
                raise InternalError("Raw callback must return bytes data")
        except Exception as exc:
            return _failure(exc)
        return tserver.Response(fault=Raw(data))


def native_response(resp: Response, port: int) -> tserver.Response:
    """The `tserver.Response` that answers as test_server answered *resp* on *port*."""
    sleep = float(resp.sleep or 0.0)
    if resp.raw_callback is not None:
        return tserver.Response(callback=RawCallback(resp.raw_callback), sleep=sleep)
    if resp.callback is not None:
        return tserver.Response(callback=DictCallback(resp.callback, port), sleep=sleep)
    if not isinstance(resp.data, bytes):
        return tserver.Response(
            'Response parameter "data" must be bytes', status=INTERNAL_ERROR_RESPONSE_STATUS
        )
    made = answer(resp.status, with_defaults(resp.headers.items(), port), resp.data)
    return dataclasses.replace(made, sleep=sleep) if sleep else made


class TestServer:
    """test_server 0.1.x's server, serving from a `tserver.TestServer` (``.native``).

    :param address: the address to bind.
    :param port: the port; ``0`` picks a free one.
    :param mode: ``"thread"`` or ``"subprocess"`` (tserver's modes).
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, address: str = "127.0.0.1", port: int = 0, *, mode: str = "thread") -> None:
        #: The tserver server behind this one: its history, matchers, waits.
        self.native: tserver.TestServer = tserver.TestServer(address, port, mode)
        self.address = address
        #: The bound port once started (`None` before, as in test_server).
        self.port: int | None = None
        self._pending: list[tuple[Response, int, str | None]] = []

    def _cover_the_rest(self) -> None:
        """What answers a request no response covers: ``555 No response available``."""
        self.native.set_response("status", INTERNAL_ERROR_RESPONSE_STATUS)
        self.native.set_response("data", b"No response available")

    def start(self, daemon: bool = True) -> None:
        """Start serving (*daemon* is accepted and ignored: tserver's threads never block exit)."""
        self.native.start()
        self.port = self.native.port
        self._cover_the_rest()
        pending, self._pending = self._pending, []
        for resp, count, method in pending:
            self._add(resp, count, method)

    def stop(self) -> None:
        """Stop serving."""
        self.native.stop()

    def reset(self) -> None:
        """Forget the requests and the responses."""
        self.native.reset()
        self._pending.clear()
        if self.native.running:
            self._cover_the_rest()

    def get_url(self, path: str = "", port: int | None = None) -> str:
        """``http://ADDRESS:PORT`` joined with *path*."""
        return urljoin(f"http://{self.address}:{self.port if port is None else port}", path)

    def wait_request(self, timeout: float) -> None:
        """Until a request has been answered; ``WaitTimeoutError`` after *timeout* seconds."""
        try:
            self.native.wait_request(timeout)
        except tserver.WaitTimeoutError:
            raise WaitTimeoutError(f"No request processed in {timeout} seconds") from None

    def request_is_done(self) -> bool:
        """Whether a request has arrived since the last reset."""
        return self.native.request_count > 0

    @property
    def num_req_processed(self) -> int:
        """How many requests arrived since the last reset."""
        return self.native.request_count

    def get_request(self) -> Request:
        """The last request; ``RequestNotProcessedError`` before any."""
        history = self.native.history
        if not history:
            raise RequestNotProcessedError("Request has not been processed")
        return Request.from_native(history[-1])

    @property
    def request(self) -> Request:
        """``get_request``."""
        return self.get_request()

    def add_response(self, resp: Response, count: int = 1, method: str | None = None) -> None:
        """Answer the next *count* requests (``-1``: all) of *method* (or any) with *resp*."""
        if method is not None and (
            not isinstance(method, str) or method.lower() not in VALID_METHODS
        ):
            raise TestServerError(f"Invalid method: {method}")
        if count == 0 or count < -1:
            raise ValueError(f"add_response: count {count!r} must be positive, or -1 for always")
        if self.port is None or not self.native.running:
            self._pending.append((resp, count, method))
        else:
            self._add(resp, count, method)

    def _add(self, resp: Response, count: int, method: str | None) -> None:
        assert self.port is not None
        self.native.add_response(
            native_response(resp, self.port),
            count=None if count == -1 else count,
            method=method,
            priority=1 if method is not None else 0,  # method-specific first
        )
