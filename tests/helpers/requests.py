"""Hand-built `Request` values for the tests that need no server."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from tserver._headers import Headers, MultiDict
from tserver._request import Request

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
