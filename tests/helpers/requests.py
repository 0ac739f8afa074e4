"""Hand-built `Request` values for the tests that need no server, and one real GET."""

from __future__ import annotations

import http.client
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from tserver._headers import Headers, MultiDict
from tserver._request import Request

if TYPE_CHECKING:
    from tserver import TestServer

#: The headers of a JSON body.
JSON = [("Content-Type", "application/json")]


def make_request(
    method: str = "GET",
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    data: bytes = b"",
    **fields: Any,
) -> Request:
    """A `Request` for *target* (path and query), its args parsed from the query."""
    path, _, query = target.partition("?")
    return Request(
        method,
        path,
        query,
        args=MultiDict(parse_qsl(query, keep_blank_values=True)),
        headers=Headers(headers or []),
        data=data,
        **fields,
    )


def fetch(srv: TestServer, path: str = "/", *, timeout: float = 10.0) -> tuple[int, bytes]:
    """``GET`` *path* from *srv* on a new connection (HTTPS if it serves HTTPS)."""
    conn: http.client.HTTPConnection
    if srv.url.startswith("https"):
        context = srv.client_ssl_context()
        conn = http.client.HTTPSConnection(srv.address, srv.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(srv.address, srv.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
