"""`set_response` / `set_response_once`: every key over real HTTP, in every mode.

Callbacks are module-level functions so that subprocess mode can run them in
the child (it imports this module there).
"""

from __future__ import annotations

import json
import select
import socket
import time
import urllib.error
import urllib.request
from email.message import Message
from email.utils import parsedate_to_datetime

import httpx
import pytest
import requests
from helpers import clients

import tserver
from tserver import Cookie, Request, Response, TestServer

# -- helpers ------------------------------------------------------------------


def fetch(
    srv: TestServer,
    method: str = "GET",
    path: str = "/",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Message, bytes]:
    """One request with http.client: status, headers (as an email `Message`), body."""
    reply = clients.fetch("http.client", srv.get_url(path), method, data=body, headers=headers)
    message = Message()
    for name, value in reply.headers:
        message[name] = value
    return reply.status, message, reply.body


# -- callbacks (module level: picklable, importable in the child) --------------


def echo_bytes(request: Request) -> bytes:
    return b"bytes:" + request.data


def echo_str(request: Request) -> str:
    return f"str:{request.method} {request.path}"


def make_response(request: Request) -> Response:
    return Response(status=201, json={"path": request.path}, headers={"X-Callback": "plain"})


async def async_response(request: Request) -> Response:
    return Response(b"async:" + request.data, status=202, headers=[("X-Callback", "async")])


async def async_bytes(request: Request) -> bytes:
    return b"async bytes"


async def async_str(request: Request) -> str:
    return "async str é"


def elapsed_since_recorded(request: Request) -> str:
    return f"{time.time() - request.received_at:.6f}"


# -- status, data, json -------------------------------------------------------


def test_status(server: TestServer) -> None:
    server.set_response("status", 404)
    with requests.get(server.url, timeout=10) as resp:
        assert resp.status_code == 404


def test_code_is_an_alias_of_status(server: TestServer) -> None:
    server.set_response("code", 418)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url, timeout=10)
    with info.value:
        assert info.value.code == 418
    assert httpx.get(server.url).status_code == 418


def test_data_bytes(server: TestServer) -> None:
    server.set_response("data", b"\x00binary\xff")
    status, msg, body = fetch(server)
    assert (status, body) == (200, b"\x00binary\xff")
    assert msg["Content-Length"] == "8"


def test_data_str_is_sent_utf8(server: TestServer) -> None:
    server.set_response("data", "héllo ✓")
    resp = httpx.get(server.url)
    assert resp.content == "héllo ✓".encode()
    assert resp.text == "héllo ✓"


def test_json_sets_body_and_content_type(server: TestServer) -> None:
    server.set_response("json", {"id": 12, "tags": ["a", "b"], "none": None})
    resp = httpx.get(server.url)
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {"id": 12, "tags": ["a", "b"], "none": None}


def test_json_none_sends_null(server: TestServer) -> None:
    server.set_response("json", None)
    _, msg, body = fetch(server)
    assert (body, msg["Content-Type"]) == (b"null", "application/json")


def test_last_of_data_and_json_wins(server: TestServer) -> None:
    server.set_response("json", [1])
    server.set_response("data", b"plain")
    _, msg, body = fetch(server)
    assert (body, msg["Content-Type"]) == (b"plain", "text/html; charset=utf-8")
    server.set_response("json", [2])
    assert fetch(server)[2] == b"[2]"


# -- headers and cookies -----------------------------------------------------


def test_headers_mapping(server: TestServer) -> None:
    server.set_response("headers", {"X-One": "1", "X-Two": "2"})
    _, msg, _ = fetch(server)
    assert (msg["X-One"], msg["X-Two"]) == ("1", "2")


def test_headers_list_with_repeated_names(server: TestServer) -> None:
    server.set_response("headers", [("X-Multi", "a"), ("X-Multi", "b"), ("Link", "<x>")])
    _, msg, _ = fetch(server)
    assert msg.get_all("X-Multi") == ["a", "b"]
    assert httpx.get(server.url).headers.get_list("x-multi") == ["a", "b"]


def test_headers_replace_the_defaults_they_name(server: TestServer) -> None:
    server.set_response("headers", {"Content-Type": "text/plain", "Server": "custom/1"})
    _, msg, _ = fetch(server)
    assert msg.get_all("Content-Type") == ["text/plain"]
    assert msg.get_all("Server") == ["custom/1"]


def test_content_type_header_wins_over_json(server: TestServer) -> None:
    server.set_response("json", {"a": 1})
    server.set_response("headers", {"Content-Type": "application/problem+json"})
    _, msg, body = fetch(server)
    assert (msg["Content-Type"], body) == ("application/problem+json", b'{"a": 1}')


def test_cookies_mapping(server: TestServer) -> None:
    server.set_response("cookies", {"a": "1", "b": "2"})
    _, msg, _ = fetch(server)
    assert msg.get_all("Set-Cookie") == ["a=1", "b=2"]
    with requests.Session() as session:
        session.get(server.url, timeout=10).close()
        assert session.cookies.get_dict() == {"a": "1", "b": "2"}


def test_cookies_list_of_pairs_and_cookie_objects(server: TestServer) -> None:
    server.set_response(
        "cookies",
        [("plain", "p"), Cookie("session", "abc", path="/", httponly=True, samesite="Lax")],
    )
    _, msg, _ = fetch(server)
    assert msg.get_all("Set-Cookie") == ["plain=p", "session=abc; Path=/; HttpOnly; SameSite=Lax"]


def test_single_cookie_object(server: TestServer) -> None:
    server.set_response("cookies", Cookie("only", "1", max_age=60, secure=True))
    _, msg, _ = fetch(server)
    assert msg.get_all("Set-Cookie") == ["only=1; Max-Age=60; Secure"]


# -- default headers ----------------------------------------------------------


def test_default_headers_are_exactly_server_content_type_date_length(server: TestServer) -> None:
    server.set_response("data", b"body")
    status, msg, _ = fetch(server)
    assert status == 200
    assert sorted(msg.keys()) == ["Content-Length", "Content-Type", "Date", "Server"]
    assert msg["Server"] == f"tserver/{tserver.__version__}"
    assert msg["Content-Type"] == "text/html; charset=utf-8"
    assert msg["Content-Length"] == "4"
    date = parsedate_to_datetime(msg["Date"])
    assert abs(date.timestamp() - time.time()) < 3600


def test_no_etag_and_no_automatic_304(server: TestServer) -> None:
    server.set_response("data", b"body")
    status, msg, body = fetch(server, headers={"If-None-Match": "*"})
    assert (status, body) == (200, b"body")
    assert "Etag" not in msg


# -- sleep --------------------------------------------------------------------


def test_sleep_does_not_hold_up_other_requests(server: TestServer) -> None:
    # The POST sleeps far longer than the test runs: if sleeping blocked the
    # server, the GET below could not complete.  No timing is measured.
    server.set_response("sleep", 60, method="POST")
    slow = socket.create_connection((server.address, server.port), timeout=10)
    try:
        slow.sendall(b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        assert server.wait_request(timeout=10).path == "/slow"  # recorded, now asleep
        status, _, _ = fetch(server, "GET", "/fast")
        assert status == 200
        assert [r.path for r in server.history] == ["/slow", "/fast"]
        readable, _, _ = select.select([slow], [], [], 0)
        assert readable == [], "the sleeping POST answered before its sleep ended"
    finally:
        slow.close()


def test_sleep_is_waited_before_the_callback_runs(server: TestServer) -> None:
    server.set_response("sleep", 0.2)
    server.set_response("callback", elapsed_since_recorded)
    _, _, body = fetch(server)
    assert float(body) >= 0.2


# -- callback -----------------------------------------------------------------


def test_callback_returning_bytes_answers_200_with_default_headers(server: TestServer) -> None:
    server.set_response("status", 404)
    server.set_response("callback", echo_bytes)
    status, msg, body = fetch(server, "POST", "/", body=b"payload")
    assert (status, body) == (200, b"bytes:payload")
    assert msg["Content-Type"] == "text/html; charset=utf-8"
    assert msg["Server"] == f"tserver/{tserver.__version__}"


def test_callback_returning_str(server: TestServer) -> None:
    server.set_response("callback", echo_str)
    with requests.put(server.get_url("/p"), timeout=10) as resp:
        assert (resp.status_code, resp.text) == (200, "str:PUT /p")


def test_callback_returning_response_answers_with_exactly_it(server: TestServer) -> None:
    server.set_response("headers", {"X-Default": "ignored"})
    server.set_response("callback", make_response)
    resp = httpx.get(server.get_url("/made"))
    assert resp.status_code == 201
    assert resp.json() == {"path": "/made"}
    assert resp.headers["x-callback"] == "plain"
    assert "x-default" not in resp.headers


@pytest.mark.parametrize(
    ("callback", "status", "body"),
    [
        (async_response, 202, b"async:in"),
        (async_bytes, 200, b"async bytes"),
        (async_str, 200, "async str é".encode()),
    ],
    ids=["response", "bytes", "str"],
)
def test_async_callback(server: TestServer, callback: object, status: int, body: bytes) -> None:
    server.set_response("callback", callback)
    got_status, _, got_body = fetch(server, "POST", "/", body=b"in")
    assert (got_status, got_body) == (status, body)


# -- once, methods ------------------------------------------------------------


def test_set_response_once_applies_to_the_next_request_only(server: TestServer) -> None:
    server.set_response("data", b"default")
    server.set_response_once("status", 503)
    server.set_response_once("data", b"busy")
    assert fetch(server)[::2] == (503, b"busy")
    assert fetch(server)[::2] == (200, b"default")


def test_set_response_once_with_method_waits_for_that_method(server: TestServer) -> None:
    server.set_response_once("data", b"for the post", method="POST")
    assert fetch(server, "GET")[2] == b""
    assert fetch(server, "POST", body=b"x")[2] == b"for the post"
    assert fetch(server, "POST", body=b"x")[2] == b""


def test_method_value_wins_over_any_method_value(server: TestServer) -> None:
    server.set_response("data", b"post", method="POST")
    server.set_response("data", b"any")
    assert fetch(server, "POST", body=b"")[2] == b"post"
    assert fetch(server, "GET")[2] == b"any"
    assert fetch(server, "DELETE")[2] == b"any"


@pytest.mark.parametrize("key", ["post.data", "POST.data", "Post.data"])
def test_method_dot_key_spelling(server: TestServer, key: str) -> None:
    server.set_response(key, b"post only")
    assert fetch(server, "POST", body=b"")[2] == b"post only"
    assert fetch(server, "GET")[2] == b""


@pytest.mark.parametrize("method", ["post", "Post", "POST"])
def test_method_names_are_case_insensitive(server: TestServer, method: str) -> None:
    server.set_response("status", 201, method=method)
    server.set_response_once("data", b"once", method=method)
    assert fetch(server, "POST", body=b"")[::2] == (201, b"once")
    assert fetch(server, "GET")[0] == 200


def test_dotted_key_of_another_key(server: TestServer) -> None:
    server.set_response("put.status", 204)
    server.set_response("get.json", {"ok": True})
    assert fetch(server, "PUT", body=b"")[0] == 204
    assert json.loads(fetch(server, "GET")[2]) == {"ok": True}


# -- bad keys and values ------------------------------------------------------

_KEYS = "'status', 'code', 'data', 'json', 'headers', 'cookies', 'sleep', 'callback'"


@pytest.mark.parametrize("setter", ["set_response", "set_response_once"])
def test_unknown_key(server: TestServer, setter: str) -> None:
    with pytest.raises(
        ValueError, match=rf"^{setter}: unknown key 'stauts'; expected one of {_KEYS}"
    ):
        getattr(server, setter)("stauts", 200)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("status", 600, r"key 'status': status 600 is out of range; expected 100-599"),
        ("status", 99, r"key 'status': status 99 is out of range; expected 100-599"),
        ("sleep", -1, r"key 'sleep': sleep -1 must be >= 0 seconds"),
        ("json", {"x": object()}, r"key 'json': json value is not JSON-serialisable"),
        (
            "headers",
            {"Bad Name": "v"},
            r"key 'headers': header name 'Bad Name' is not an HTTP token",
        ),
    ],
)
def test_bad_values_raise_value_error(
    server: TestServer, key: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=rf"^set_response: {message}"):
        server.set_response(key, value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("status", "200", r"key 'status': status '200' must be an int from 100 to 599"),
        ("code", True, r"key 'status': status True must be an int from 100 to 599"),
        ("data", 5, r"key 'data': data must be bytes or str, not int"),
        ("sleep", "1", r"key 'sleep': sleep '1' must be a number of seconds"),
        (
            "headers",
            "X-A: 1",
            r"key 'headers': headers must be a mapping or a list of \(name, value\)",
        ),
        (
            "cookies",
            5,
            r"key 'cookies': cookies must be a mapping, a list of \(name, value\) pairs",
        ),
        ("callback", "not callable", r"key 'callback': callback 'not callable' is not callable"),
    ],
)
def test_bad_value_types_raise_value_error(
    server: TestServer, key: str, value: object, message: str
) -> None:
    # SPEC 3.1: a bad value type raises ValueError naming the key
    with pytest.raises(ValueError, match=rf"^set_response_once: {message}") as info:
        server.set_response_once(key, value)
    assert type(info.value) is ValueError  # a public class, not a private hybrid


def test_bad_method(server: TestServer) -> None:
    with pytest.raises(
        ValueError, match=r"^set_response: method 'PO ST' is not an HTTP method token"
    ):
        server.set_response("data", b"", method="PO ST")


def test_dotted_key_and_other_method(server: TestServer) -> None:
    with pytest.raises(ValueError, match=r"key 'post.data' names method 'POST' but method='GET'"):
        server.set_response("post.data", b"", method="GET")


def test_rejected_settings_change_nothing(server: TestServer) -> None:
    server.set_response("data", b"kept")
    with pytest.raises(ValueError, match="out of range"):
        server.set_response("status", 1000)
    assert fetch(server)[::2] == (200, b"kept")
