"""test_server's 2017 dict API (0.0.2x), on tserver: change the import, keep the suite.

    from tserver.compat.test_server_2017 import TestServer

    server = TestServer(engine="subprocess")
    server.start()
    server.response["data"] = b"hello"
    server.response_once["post.code"] = 201
    ...  # the client under test fetches server.get_url()
    assert server.request["method"] == "GET" and server.request["done"]

What this module keeps of the 2017 API:

- ``server.response[key]`` and ``server.response_once[key]`` as mappings,
  the keys ``code``, ``data``, ``headers``, ``cookies``, ``callback``,
  ``sleep`` and ``charset``, each also for one method (``"post.data"``);
  ``response_once`` keys are used once, by the next request;
- ``server.request[key]`` with its defaults before any request (``path``
  `None`, ``args`` ``{}``, ``done`` `False`...), then the last request's
  ``args`` (the last value of each name), ``headers``, ``cookies`` (a dict
  of dicts with ``name`` and ``value``), ``data``, ``files`` (Tornado's
  shape: ``files[name][0]["body"]``), ``path``, ``method``, ``client_ip``
  and ``done``;
- ``engine=`` for tserver's ``mode=``, and ``TestServer(port, address)`` in
  that order;
- a generator (or any iterator) as ``data``: one item per request, then
  ``405`` with an empty body (thread mode: an iterator cannot cross to a
  child process);
- handler-style callbacks, ``callback(handler)``, which call
  ``handler.set_status``, ``set_header``, ``add_header``, ``write`` and
  ``finish``; ``handler.request`` is the `tserver.Request`.  A callback may
  be a generator yielding ``{"type": "sleep", "time": seconds}``;
- every answer carries ``Listen-Port`` and ``Server: TestServer/<version>``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterator, Mapping, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urljoin

import tserver

from ._common import answer, with_defaults

__all__ = ["TestServer", "TestServerError", "WaitTimeoutError"]

#: The version test_server's ``Server`` header names (tserver's).
__version__ = tserver.__version__

#: The response keys of the 2017 API and their values before any is set.
RESPONSE_DEFAULTS: dict[str, Any] = {
    "code": 200,
    "data": "",
    "headers": [],
    "cookies": [],
    "callback": None,
    "sleep": None,
    "charset": "UTF-8",
}

#: ``server.request`` before any request.
REQUEST_DEFAULTS: dict[str, Any] = {
    "args": {},
    "headers": {},
    "cookies": None,
    "path": None,
    "method": None,
    "charset": "UTF-8",
    "data": None,
    "files": {},
    "client_ip": None,
    "done": False,
}


class TestServerError(Exception):
    """A key or a value the 2017 API does not know."""

    __test__ = False


class WaitTimeoutError(TestServerError, tserver.WaitTimeoutError):
    """``wait_request`` saw no request in time (also a `tserver.WaitTimeoutError`)."""

    def __init__(self, message: str, expected: int = 1, received: int = 0) -> None:
        super().__init__(message, expected, received)


class UploadedFile(dict[str, Any]):
    """Tornado's ``HTTPFile``: ``filename``, ``body``, ``content_type`` as keys and attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Handler:
    """What a 2017 callback gets: the calls of a Tornado ``RequestHandler`` it made."""

    def __init__(self, request: tserver.Request) -> None:
        #: The request being answered.
        self.request = request
        self.status: int = 200
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.finished: bool = False

    def set_status(self, status: int, reason: str | None = None) -> None:
        """Answer with *status*."""
        self.status = status

    def set_header(self, name: str, value: Any) -> None:
        """Replace every value of header *name* by *value*."""
        self.clear_header(name)
        self.headers.append((name, str(value)))

    def add_header(self, name: str, value: Any) -> None:
        """Add a value of header *name*."""
        self.headers.append((name, str(value)))

    def clear_header(self, name: str) -> None:
        """Remove header *name*."""
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]

    def write(self, chunk: bytes | str | dict[str, Any]) -> None:
        """Add to the body (a dict is written as JSON, as Tornado does)."""
        if isinstance(chunk, dict):
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            chunk = json.dumps(chunk)
        self.body.append(chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk))

    def finish(self, chunk: bytes | str | dict[str, Any] | None = None) -> None:
        """End the answer (with a last *chunk*)."""
        if chunk is not None:
            self.write(chunk)
        self.finished = True

    def response(self) -> tserver.Response:
        """The answer the calls made."""
        return answer(self.status, self.headers, b"".join(self.body))


def _pairs(value: Any) -> list[tuple[str, str]]:
    """Headers or cookies given as a mapping or as pairs, as pairs."""
    return list(value.items()) if isinstance(value, Mapping) else list(value)


class Dispatcher:
    """The 2017 handler's logic, run by the server for every request.

    It looks up each response key as the 2017 server did: a once-key for
    this method (``"post.data"``), a once-key, a key for this method, a key;
    a once-key is used up when read.  It lives where the server runs (the
    child process in subprocess mode), so it keeps its once-keys itself;
    the test's side reinstalls it, with the once-keys not used up yet, at
    every change.
    """

    def __init__(self, always: dict[str, Any], once: dict[str, Any], port: int) -> None:
        self.always = always
        self.once = once
        self.port = port

    def param(self, key: str, method: str) -> Any:
        """The value of *key* for a *method* request (a once-key is used up)."""
        for name in (f"{method}.{key}", key):
            if name in self.once:
                return self.once.pop(name)
        for name in (f"{method}.{key}", key):
            if name in self.always:
                return self.always[name]
        return RESPONSE_DEFAULTS[key]

    async def __call__(self, request: tserver.Request) -> tserver.Response:
        """Answer *request* as the 2017 server did."""
        method = request.method.lower()
        sleep = self.param("sleep", method)
        if sleep:
            await asyncio.sleep(float(sleep))
        callback = self.param("callback", method)
        if callback is not None:
            handler = Handler(request)
            result = callback(handler)
            if inspect.isgenerator(result):
                for item in result:
                    if isinstance(item, dict) and item.get("type") == "sleep":
                        await asyncio.sleep(float(item["time"]))
                    elif inspect.isawaitable(item):
                        await item
            elif inspect.isawaitable(result):
                await result
            return handler.response()
        status = self.param("code", method)
        headers = [("Set-Cookie", f"{k}={v}") for k, v in _pairs(self.param("cookies", method))]
        headers += _pairs(self.param("headers", method))
        data = self.param("data", method)
        if not isinstance(data, (bytes, str)):
            try:
                data = next(data)
            except StopIteration:
                status, data = 405, b""
        charset = self.param("charset", method)
        return answer(status, with_defaults(headers, self.port, charset), data)


class ResponseMap(MutableMapping[str, Any]):
    """``server.response`` / ``server.response_once``: each change reaches the server."""

    def __init__(self, server: TestServer, *, once: bool) -> None:
        self.server = server
        self.once = once
        #: key -> (value, how many requests had arrived when it was set)
        self.entries: dict[str, tuple[Any, int]] = {}

    def live(self) -> dict[str, Any]:
        """The keys not used up yet (a once-key is used by the next request of its method)."""
        if not self.once:
            return {**RESPONSE_DEFAULTS, **{key: value for key, (value, _) in self.entries.items()}}
        history = self.server.native.history if self.entries else []
        alive = {}
        for key, (value, since) in self.entries.items():
            method, _, _ = key.rpartition(".")
            used = any(not method or r.method.lower() == method for r in history[since:])
            if not used:
                alive[key] = value
        return alive

    def __getitem__(self, key: str) -> Any:
        return self.live()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        name = key.rpartition(".")[2]
        if name not in RESPONSE_DEFAULTS:
            raise TestServerError(
                f"unknown response key {key!r}; expected one of {', '.join(RESPONSE_DEFAULTS)}, "
                "optionally after a method and a dot ('post.data')"
            )
        if name == "data" and not isinstance(value, (bytes, str)):
            value = iter(value)  # one item per request
        before = dict(self.entries)
        self.entries[key] = (value, self.server.native.request_count)
        self._install(before, key)

    def __delitem__(self, key: str) -> None:
        before = dict(self.entries)
        del self.entries[key]
        self._install(before, key)

    def _install(self, before: dict[str, tuple[Any, int]], key: str) -> None:
        """Reinstall the server's logic; a value the server refuses is not kept."""
        try:
            self.server.install()
        except ValueError as exc:
            self.entries = before
            if "pickle" in str(exc):
                raise ValueError(
                    f"response key {key!r}: a subprocess-mode server runs the 2017 logic "
                    "in its child process, and this value cannot cross to it (a generator "
                    "as data, a lambda or a closure as callback); use engine='thread' or "
                    f"a module-level function ({exc})"
                ) from None
            raise

    def __iter__(self) -> Iterator[str]:
        return iter(self.live())

    def __len__(self) -> int:
        return len(self.live())


class RequestView(MutableMapping[str, Any]):
    """``server.request``: the last request's fields, or the defaults before any.

    Keys the test sets (``server.request["charset"] = "cp1251"``, which
    decodes the query arguments) stay until ``TestServer.reset``; a request's
    own fields replace them.
    """

    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.overrides: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.overrides[key] = value

    def __delitem__(self, key: str) -> None:
        del self.overrides[key]

    def fields(self) -> dict[str, Any]:
        """Every field, as the 2017 API gave them."""
        native = self.server.native
        history = native.history
        if not history:
            return {**REQUEST_DEFAULTS, **self.overrides}
        request = history[-1]
        charset = self.overrides.get("charset", "UTF-8")
        cookies: dict[str, dict[str, str]] = {}
        jar: SimpleCookie = SimpleCookie()
        for header in request.headers.getlist("Cookie"):
            jar.load(header)
        for name, morsel in jar.items():
            cookies[name] = {**dict(morsel), "name": morsel.key, "value": morsel.value}
        files = {
            name: [
                UploadedFile(filename=f.filename, body=f.data, content_type=f.content_type)
                for f in uploads
            ]
            for name, uploads in request.files.items()
        }
        exchanges = native.exchanges
        return {
            **REQUEST_DEFAULTS,
            **self.overrides,
            "args": dict(parse_qsl(request.query_string, keep_blank_values=True, encoding=charset)),
            "headers": request.headers,
            "cookies": cookies,
            "path": request.path,
            "method": request.method,
            "data": request.data,
            "files": files,
            "client_ip": request.client_ip,
            "done": bool(exchanges) and exchanges[-1].status is not None,
        }

    def __getitem__(self, key: str) -> Any:
        return self.fields()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields())

    def __len__(self) -> int:
        return len(self.fields())


class TestServer:
    """The 2017 server, serving from a `tserver.TestServer` (``.native``).

    :param port: the port; ``0`` picks a free one.
    :param address: the address to bind.
    :param engine: ``"thread"`` or ``"subprocess"`` (tserver's ``mode``).
    """

    __test__ = False

    def __init__(
        self, port: int = 0, address: str = "127.0.0.1", engine: str = "thread", **kwargs: Any
    ) -> None:
        #: The tserver server behind this one.
        self.native: tserver.TestServer = tserver.TestServer(address, port, engine)
        self.address = address
        self.port: int = port
        self.request: RequestView = RequestView(self)
        self.response: ResponseMap = ResponseMap(self, once=False)
        self.response_once: ResponseMap = ResponseMap(self, once=True)

    def start(self) -> None:
        """Start serving; ``port`` then holds the bound port."""
        self.native.start()
        self.port = self.native.port
        self.install()

    def stop(self) -> None:
        """Stop serving."""
        self.native.stop()

    def reset(self) -> None:
        """The defaults again: no request, the default response, no once-keys."""
        self.native.reset()
        self.request.overrides = {}
        self.response.entries = {}
        self.response_once.entries = {}
        self.install()

    def install(self) -> None:
        """Give the server the response keys as they are now (once running)."""
        if self.native.running:
            dispatcher = Dispatcher(self.response.live(), self.response_once.live(), self.port)
            self.native.set_response("callback", dispatcher)

    def wait_request(self, timeout: float) -> None:
        """Until a request has arrived; ``WaitTimeoutError`` after *timeout* seconds."""
        try:
            self.native.wait_request(timeout)
        except tserver.WaitTimeoutError:
            raise WaitTimeoutError(f"No request processed in {timeout} seconds") from None

    def get_url(self, path: str = "", port: int | None = None) -> str:
        """``http://ADDRESS:PORT/`` joined with *path*."""
        return urljoin(f"http://{self.address}:{self.port if port is None else port}/", path)
