"""The worked examples of ``docs/responses.rst``, run as tests in every mode.

The page includes these functions with ``literalinclude :pyobject:``, so an
example that stops working fails the suite before it misleads a reader.
``mode`` is the fixture that runs each one in thread and subprocess mode;
in your own tests ``TestServer()`` is enough.
"""

from __future__ import annotations

import re

import httpx
import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tserver import Request, Response, TestServer
from tserver.matchers import has_arg, has_header


def test_retry_until_success(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(status=503), count=2)  # two failures...
        srv.add_response(Response(json={"ok": True}))  # ...then a success

        retry = Retry(total=3, status_forcelist=[503], backoff_factor=0)
        with requests.Session() as session:
            session.mount("http://", HTTPAdapter(max_retries=retry))
            response = session.get(srv.get_url("/status"), timeout=5)

        assert response.json() == {"ok": True}
        srv.assert_history().has_length(3)


def fetch_all_items(base_url: str) -> list[int]:
    """The client under test: follows ``next`` links until there are none."""
    items: list[int] = []
    url: str | None = base_url + "/items"
    with httpx.Client(timeout=5) as client:
        while url is not None:
            page = client.get(url).json()
            items += page["items"]
            url = base_url + page["next"] if page["next"] else None
    return items


def test_pagination_by_route(mode: str) -> None:
    with TestServer(mode=mode, strict=True) as srv:
        srv.add_response(
            Response(json={"items": [5], "next": None}),
            path="/items",
            match=has_arg("page", "3"),
        )
        srv.add_response(
            Response(json={"items": [3, 4], "next": "/items?page=3"}),
            path="/items",
            match=has_arg("page", "2"),
        )
        srv.add_response(
            Response(json={"items": [1, 2], "next": "/items?page=2"}),
            path="/items",
        )

        assert fetch_all_items(srv.url.rstrip("/")) == [1, 2, 3, 4, 5]

        assert [r.query_string for r in srv.history] == ["", "page=2", "page=3"]
    # strict=True: leaving the block also checked that every page was asked
    # for exactly once and that nothing else was requested


def test_timeout_via_sleep(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(b"too late", sleep=30), path="/slow")

        with pytest.raises(httpx.ReadTimeout):
            httpx.get(srv.get_url("/slow"), timeout=0.2)

        # the slow request was recorded, and the server answers others meanwhile
        srv.assert_request().has_path("/slow")
        assert httpx.get(srv.get_url("/health"), timeout=5).status_code == 200


def get_retrying_resets(url: str, attempts: int = 3) -> bytes:
    """The client under test: tries again when the connection is reset."""
    for attempt in range(1, attempts + 1):
        try:
            return requests.get(url, timeout=5).content
        except requests.ConnectionError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def test_reset_fault(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(fault="reset"), count=2)  # two TCP RSTs...
        srv.set_response("data", b"recovered")  # ...then the default answers

        assert get_retrying_resets(srv.url) == b"recovered"
        assert srv.request_count == 3

        srv.add_response(Response(fault="reset"), count=None)  # now it never recovers
        with pytest.raises(requests.ConnectionError):
            get_retrying_resets(srv.url)


def test_rule_selectors(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(status=201), method="POST", path="/items")
        srv.add_response(Response(b"item"), path=re.compile(r"/items/\d+"), count=None)
        srv.add_response(Response(status=401), match=has_header("X-Token", "expired"))

        assert httpx.post(srv.get_url("/items"), json={}).status_code == 201
        assert httpx.get(srv.get_url("/items/12")).content == b"item"
        assert httpx.get(srv.url, headers={"X-Token": "expired"}).status_code == 401
        assert httpx.get(srv.url).status_code == 200  # no rule: the default


def test_streaming(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(chunks=[b"data: 1\n\n", b"data: 2\n\n"], chunk_sleep=0.05))

        with httpx.stream("GET", srv.url, timeout=5) as response:
            assert response.headers["Transfer-Encoding"] == "chunked"
            events = [line for line in response.iter_lines() if line]

        assert events == ["data: 1", "data: 2"]


def price_callback(request: Request) -> Response:
    """A module-level callback (so it also runs in subprocess mode)."""
    quantity = int(request.args.get("quantity", "1"))
    if quantity <= 0:
        return Response(status=422, json={"error": "quantity must be positive"})
    return Response(json={"total": quantity * 3})


def test_callback(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(callback=price_callback), path="/price", count=None)

        assert httpx.get(srv.get_url("/price?quantity=4")).json() == {"total": 12}
        assert httpx.get(srv.get_url("/price?quantity=0")).status_code == 422
