"""Migration recipes (``docs/migration.rst``).

Each statement of the pytest-httpserver test is shown as a comment above its
tserver translation.
"""

from __future__ import annotations

import re

import pytest
import requests

from tserver import Raw, Request, Response, TestServer
from tserver.matchers import has_arg, has_header, has_json, request_with
from tserver.pytest_plugin import ServerFactory

# -- from lorien/test_server -----------------------------------------------------


def test_test_server_calls_keep_working() -> None:
    with TestServer() as server:  # test_server: TestServer(port=0, address="127.0.0.1")
        server.set_response("data", b"hello")
        server.set_response("post.data", b"created")  # "<method>.<key>" still works
        server.set_response("headers", [("X-Id", "7")])

        assert requests.get(server.get_url(), timeout=5).content == b"hello"
        assert requests.post(server.get_url(), data=b"x", timeout=5).content == b"created"

        assert server.get_request("data") == b"x"  # test_server: server.request["data"]
        assert server.get_request("method") == "POST"


def test_test_server_add_response() -> None:
    with TestServer() as server:
        server.add_response(Response(data=b"once"))  # count=1 is the default, as before
        server.add_response(Response(data=b"posted"), count=2, method="post")
        server.add_response(Response(data=b"forever"), count=None)  # test_server: count=-1

        with requests.Session() as session:
            assert session.get(server.url, timeout=5).content == b"once"
            assert session.post(server.url, timeout=5).content == b"posted"
            assert session.get(server.url, timeout=5).content == b"forever"

        request = server.get_request()  # a Request object, as in test_server 0.0.40+
        assert request.method == "GET"
        assert server.request_count == 3


def test_test_server_raw_callback() -> None:
    with TestServer() as server:
        # test_server: Response(raw_callback=lambda: b"HTTP/1.1 200 OK\r\n...")
        server.add_response(Response(fault=Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")))

        assert requests.get(server.url, timeout=5).content == b"hi"


def greet(request: Request) -> Response:
    """A callback: it gets the request (test_server's took no argument)."""
    return Response(json={"hello": request.args.get("name", "world")})


def test_test_server_callback() -> None:
    with TestServer() as server:
        server.add_response(Response(callback=greet), count=None)

        assert requests.get(server.get_url("/?name=ada"), timeout=5).json() == {"hello": "ada"}


# -- from pytest-httpserver ------------------------------------------------------


def test_from_pytest_httpserver(tserver: TestServer) -> None:
    # httpserver.expect_request("/users", method="POST", json={"name": "ada"}) \
    #     .respond_with_json({"id": 7}, status=201)
    tserver.add_response(
        Response(json={"id": 7}, status=201),
        method="POST",
        path="/users",
        match=has_json({"name": "ada"}),
        count=None,  # expect_request answers every match; expect_oneshot_request: count=1
    )
    # httpserver.expect_request("/users", query_string={"page": "2"}) \
    #     .respond_with_data("[]", content_type="application/json")
    tserver.add_response(
        Response(data="[]", headers={"Content-Type": "application/json"}),
        path="/users",
        match=has_arg("page", "2"),
    )

    # httpserver.url_for("/users")
    url = tserver.get_url("/users")
    assert requests.post(url, json={"name": "ada"}, timeout=5).status_code == 201
    assert requests.get(url, params={"page": "2"}, timeout=5).json() == []

    # httpserver.assert_request_made(RequestMatcher("/users", method="POST"))
    tserver.assert_history().has_item(request_with(method="POST", path="/users"))
    # httpserver.log[0][0].get_json()
    assert tserver.history[0].json() == {"name": "ada"}
    # httpserver.check_assertions(): not needed, the fixture calls check() after the test


def test_from_pytest_httpserver_strict(tserver_factory: ServerFactory) -> None:
    # pytest-httpserver answers an unexpected request with 500 and fails
    # check_assertions(); strict=True does the same
    server = tserver_factory(strict=True)
    # httpserver.expect_oneshot_request("/token", headers={"Authorization": "Bearer t"})
    server.add_response(
        Response(json={"ok": True}),
        path="/token",
        match=has_header("Authorization", "Bearer t"),
    )

    response = requests.get(
        server.get_url("/token"), headers={"Authorization": "Bearer t"}, timeout=5
    )

    assert response.json() == {"ok": True}
    server.assert_request().has_path("/token")


def test_a_strict_server_reports_the_unexpected_request() -> None:
    server = TestServer(strict=True).start()
    try:
        server.add_response(Response(), path="/expected")
        assert requests.get(server.get_url("/surprise"), timeout=5).status_code == 500
    finally:
        server.stop()

    with pytest.raises(AssertionError) as report:
        server.check()
    text = str(report.value)
    assert "no rule matched GET /surprise" in text
    assert "rules not used up" in text  # and /expected was never requested


def echo_path(request: Request) -> Response:
    """A ``respond_with_handler`` handler becomes a callback: Request in, Response out."""
    return Response(json={"path": request.path})


def test_respond_with_handler(tserver: TestServer) -> None:
    # httpserver.expect_request(re.compile("/api/.*")).respond_with_handler(echo_path)
    tserver.add_response(Response(callback=echo_path), path=re.compile(r"/api/.*"), count=None)

    assert requests.get(tserver.get_url("/api/items"), timeout=5).json() == {"path": "/api/items"}
