"""The examples of ``docs/assertions.rst``: the fluent checks and their messages.

The page includes these functions with ``literalinclude :pyobject:``, and the
failure messages it shows are the ``*_FAILURE`` strings below, included with
``:start-after:``/``:end-before:``: each test compares the real message with
its string, so the page shows what a failing test really prints.  The
server's port varies from run to run, so it is written ``PORT``.
"""

from __future__ import annotations

import re
from http.client import HTTPConnection

import pytest
import requests
from hamcrest import contains_exactly, contains_string, has_entries

from tserver import TestServer
from tserver.matchers import has_method, has_path, request_with


def with_port(error: BaseException) -> str:
    """The message of *error*, with the server's port written ``PORT``."""
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", str(error)) + "\n"


def test_the_three_checks() -> None:
    with TestServer() as srv:
        srv.assert_no_requests()  # nothing has arrived yet

        with requests.Session() as client:
            client.get(srv.get_url("/health"), timeout=5)
            client.post(srv.get_url("/login"), data={"user": "ada"}, timeout=5)
            client.post(
                srv.get_url("/items"), json={"id": 12}, headers={"X-Token": "abc"}, timeout=5
            )

        srv.assert_request().has_method("POST").has_path("/items").has_header("X-Token", "abc")

        srv.assert_history().has_length(3).has_item(
            request_with(method="GET", path="/health")
        ).contains_in_order(has_path("/login"), has_path("/items"))


def send_three_requests(srv: TestServer) -> None:
    """The client under test: three calls, sent with `http.client`.

    `http.client` adds only ``Host``, ``Accept-Encoding`` and
    ``Content-Length`` to the headers it is given.
    """
    body = b'{"id": 12, "n": "x"}'
    json = {"Content-Type": "application/json"}
    api = HTTPConnection(srv.address, srv.port, timeout=5)
    try:
        for method, target, payload, headers in [
            ("GET", "/health", None, {}),
            ("POST", "/items?id=7", body, json),
            ("POST", "/items", body, {**json, "X-Token": "abd", "Cookie": "sid=1"}),
        ]:
            api.request(method, target, payload, headers)
            api.getresponse().read()
    finally:
        api.close()


def test_a_failure_message() -> None:
    with TestServer() as srv:
        send_three_requests(srv)

        with pytest.raises(AssertionError) as failure:
            srv.assert_request().has_header("X-Token", "abc")

    assert with_port(failure.value) == HEADER_FAILURE


HEADER_FAILURE = """\
request #2 of 3 did not match
Expected: a request with header 'X-Token' matching 'abc'
     but: header 'X-Token' was 'abd'
Recorded requests (oldest first):
    #0  GET  /health  -> 200
    #1  POST /items?id=7  json 20 B  -> 200
  > #2  POST /items       json 20 B  -> 200
        Host: 127.0.0.1:PORT
        Accept-Encoding: identity
        Content-Length: 20
        Content-Type: application/json
        X-Token: abd
        Cookie: sid=1
        body: b'{"id": 12, "n": "x"}'
"""


def test_no_traffic_at_all() -> None:
    with TestServer() as srv, pytest.raises(AssertionError) as failure:
        srv.assert_history().has_item(has_path("/items"))

    assert with_port(failure.value) == NO_TRAFFIC_FAILURE


NO_TRAFFIC_FAILURE = """\
history of 0 requests did not match
Expected: a sequence containing a request with path matching '/items'
     but: the history was empty
no requests were recorded (server at http://127.0.0.1:PORT/)
"""


def test_values_or_matchers() -> None:
    with TestServer() as srv:
        requests.post(srv.get_url("/items"), json={"id": 12, "tags": ["a"], "n": "x"}, timeout=5)

        (
            srv.assert_request()
            .has_method("post")
            .has_header("Content-Type", contains_string("json"))
            .has_json(has_entries(id=12, tags=["a"]))
        )

        # .request is the Request itself, for checks in plain Python
        assert srv.assert_request().request.json()["n"] == "x"


def test_history_failure_messages() -> None:
    with TestServer() as srv:
        send_three_requests(srv)

        with pytest.raises(AssertionError) as no_item:
            srv.assert_history().has_item(has_method("DELETE"))
        with pytest.raises(AssertionError) as out_of_order:
            srv.assert_history().contains_in_order(has_path("/items"), has_path("/health"))

    assert with_port(no_item.value) == HAS_ITEM_FAILURE
    assert with_port(out_of_order.value) == IN_ORDER_FAILURE


HAS_ITEM_FAILURE = """\
history of 3 requests did not match
Expected: a sequence containing a request with method matching 'DELETE'
     but: none of 3 recorded requests matched
          #0: method was 'GET'
          #1: method was 'POST'
          #2: method was 'POST'
Recorded requests (oldest first):
    #0  GET  /health  -> 200
    #1  POST /items?id=7  json 20 B  -> 200
    #2  POST /items       json 20 B  -> 200
"""

IN_ORDER_FAILURE = """\
history of 3 requests did not match
Expected: requests in this order: a request with path matching '/items', then a request with path matching '/health'
     but: #1 matched in order, then no request after #1 matched a request with path matching '/health'
Recorded requests (oldest first):
    #0  GET  /health  -> 200
    #1  POST /items?id=7  json 20 B  -> 200
    #2  POST /items       json 20 B  -> 200
"""  # noqa: E501


def test_the_exact_sequence() -> None:
    with TestServer() as srv, requests.Session() as client:
        for path in ("/login", "/items", "/logout"):
            client.get(srv.get_url(path), timeout=5)

        srv.assert_history().matches(
            contains_exactly(has_path("/login"), has_path("/items"), has_path("/logout"))
        )


def test_nothing_expected() -> None:
    with TestServer() as srv:
        requests.get(srv.get_url("/health"), timeout=5)

        with pytest.raises(AssertionError) as failure:
            srv.assert_no_requests()

    assert with_port(failure.value) == NO_REQUESTS_FAILURE


NO_REQUESTS_FAILURE = """\
history of 1 request did not match
Expected: no requests
     but: 1 request was recorded
Recorded requests (oldest first):
    #0  GET /health  -> 200
"""
