"""Reading requests: every `Request` field as real clients send it, and the
history / get_request / wait API, in every mode."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import requests
from helpers.clients import fetch

from tserver import NoRequestError, Request, TestServer, UploadedFile, WaitTimeoutError

#: The clients each reading test runs with (all of them: `helpers.clients.CLIENTS`).
CLIENTS = ["urllib", "requests", "httpx", "urllib3", "pycurl"]


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    """Each real HTTP client in turn."""
    return str(request.param)


def send(
    client: str,
    method: str,
    url: str,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> int:
    """Send one request with *client*; return the status (the body is read)."""
    return fetch(client, url, method, data=data, headers=headers).status


def multipart(
    fields: list[tuple[str, str]], files: list[tuple[str, str, str, bytes]]
) -> tuple[bytes, str]:
    """A multipart/form-data body built by hand (urllib has no encoder)."""
    boundary = "tserver-test-boundary-1234"
    parts = []
    for name, value in fields:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    for name, filename, ctype, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def send_multipart(
    client: str,
    url: str,
    fields: list[tuple[str, str]],
    files: list[tuple[str, str, str, bytes]],
) -> int:
    """POST a multipart form with the client's own encoder where it has one."""
    if client == "requests":
        with requests.post(
            url,
            data=fields,
            files=[(n, (fn, d, ct)) for n, fn, ct, d in files],
            timeout=10,
        ) as r:
            return r.status_code
    if client == "httpx":
        with httpx.Client(timeout=10) as c:
            return c.post(
                url, data=dict(fields), files=[(n, (fn, d, ct)) for n, fn, ct, d in files]
            ).status_code
    body, ctype = multipart(fields, files)
    return send(client, "POST", url, body, {"Content-Type": ctype})


@pytest.fixture
def in_background() -> Iterator[Callable[[Callable[[], object]], None]]:
    """Run a function in a thread; joined (and its exception re-raised) at teardown."""
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    def start(target: Callable[[], object]) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        threads.append(thread)
        thread.start()

    yield start
    for thread in threads:
        thread.join(15)
        assert not thread.is_alive()
    if errors:
        raise errors[0]


# -- every field, with every client -------------------------------------------


def test_method_as_sent(server: TestServer, client: str) -> None:
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    for method in methods:
        assert (
            send(client, method, server.url, b"x" if method in ("POST", "PUT", "PATCH") else None)
            == 200
        )
    assert [r.method for r in server.history] == methods


def test_path_query_string_and_args(server: TestServer, client: str) -> None:
    send(client, "GET", server.get_url("/a/b%20c?q=1&q=2&blank=&flag&name=J%C3%BCrg+M"))
    request = server.wait_request()
    assert request.path == "/a/b%20c"
    assert request.query_string == "q=1&q=2&blank=&flag&name=J%C3%BCrg+M"
    assert request.args["q"] == "1"
    assert request.args.getlist("q") == ["1", "2"]
    assert request.args["blank"] == ""
    assert request.args["flag"] == ""
    assert request.args["name"] == "Jürg M"
    assert list(request.args) == ["q", "blank", "flag", "name"]


def test_no_query(server: TestServer, client: str) -> None:
    send(client, "GET", server.get_url("/plain"))
    request = server.wait_request()
    assert (request.path, request.query_string, len(request.args)) == ("/plain", "", 0)


def test_headers_are_case_insensitive(server: TestServer, client: str) -> None:
    send(client, "GET", server.url, headers={"x-token": "abc", "X-MIXED-case": "v"})
    headers = server.wait_request().headers
    assert headers["X-Token"] == "abc"
    assert headers["x-token"] == "abc"
    assert headers["X-TOKEN"] == "abc"
    assert headers.get("x-mixed-case") == "v"
    assert "X-Token" in list(headers)  # names as Tornado normalises them
    assert "Host" in headers


def test_cookies(server: TestServer, client: str) -> None:
    send(client, "GET", server.url, headers={"Cookie": "a=1; session=xyz"})
    request = server.wait_request()
    assert request.cookies == {"a": "1", "session": "xyz"}
    assert server.get_request("cookies") == {"a": "1", "session": "xyz"}


def test_data_and_text_with_charset(server: TestServer, client: str) -> None:
    body = "café ✓".encode("utf-16-le")
    send(client, "POST", server.url, body, {"Content-Type": "text/plain; charset=utf-16-le"})
    request = server.wait_request()
    assert request.data == body
    assert request.text == "café ✓"
    assert server.get_request("text") == "café ✓"


def test_binary_data_exactly_as_received(server: TestServer, client: str) -> None:
    body = bytes(range(256)) * 64
    send(client, "PUT", server.url, body, {"Content-Type": "application/octet-stream"})
    assert server.get_request("data") == body


def test_json(server: TestServer, client: str) -> None:
    payload = {"id": 12, "name": "Jürg", "tags": [1, None]}
    send(
        client,
        "POST",
        server.url,
        json.dumps(payload).encode(),
        {"Content-Type": "application/json"},
    )
    assert server.wait_request().json() == payload
    assert server.get_request("json") == payload


def test_json_of_a_body_that_is_not_json(server: TestServer, client: str) -> None:
    send(client, "POST", server.url, b"<html>", {"Content-Type": "text/html"})
    request = server.wait_request()
    with pytest.raises(ValueError, match=r"request body is not JSON .*b'<html>'"):
        request.json()
    with pytest.raises(ValueError, match="request body is not JSON"):
        server.get_request("json")


def test_urlencoded_form(server: TestServer, client: str) -> None:
    body = b"a=1&b=2&b=3&empty=&name=J%C3%BCrg+M"
    send(client, "POST", server.url, body, {"Content-Type": "application/x-www-form-urlencoded"})
    request = server.wait_request()
    assert request.form["a"] == "1"
    assert request.form.getlist("b") == ["2", "3"]
    assert request.form["empty"] == ""
    assert request.form["name"] == "Jürg M"
    assert request.files == {}
    assert request.data == body


def test_multipart_form_and_files(server: TestServer, client: str) -> None:
    send_multipart(
        client,
        server.url,
        fields=[("field", "value"), ("other", "ö")],
        files=[
            ("upload", "a.txt", "text/plain", b"hello\r\nworld"),
            ("upload", "b.bin", "application/octet-stream", bytes(range(256))),
        ],
    )
    request = server.wait_request()
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert request.form["field"] == "value"
    assert request.form["other"] == "ö"
    assert "upload" not in request.form
    assert request.files == {
        "upload": [
            UploadedFile("upload", "a.txt", "text/plain", b"hello\r\nworld"),
            UploadedFile("upload", "b.bin", "application/octet-stream", bytes(range(256))),
        ]
    }
    assert server.get_request("files")["upload"][0].filename == "a.txt"


def test_peer_version_scheme_url_and_time(server: TestServer, client: str) -> None:
    before = time.time()
    send(client, "GET", server.get_url("/where?x=1"))
    after = time.time()
    request = server.wait_request()
    assert request.client_ip == "127.0.0.1"
    assert isinstance(request.client_port, int)
    assert 0 < request.client_port < 65536
    assert request.client_port != server.port
    assert request.version == "HTTP/1.1"
    assert request.scheme == "http"
    assert request.url == server.get_url("/where?x=1")
    assert before <= request.received_at <= after


# -- fields without a client library -------------------------------------------


def test_client_port_is_the_peer_port(server: TestServer) -> None:
    conn = http.client.HTTPConnection(server.address, server.port, timeout=10)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        assert conn.sock is not None
        local_port = conn.sock.getsockname()[1]
    finally:
        conn.close()
    assert server.get_request("client_port") == local_port
    assert server.get_request("client_ip") == "127.0.0.1"


def test_repeated_headers_are_all_kept(server: TestServer) -> None:
    conn = http.client.HTTPConnection(server.address, server.port, timeout=10)
    try:
        conn.putrequest("GET", "/")
        conn.putheader("X-Multi", "1")
        conn.putheader("x-multi", "2")
        conn.endheaders()
        conn.getresponse().read()
    finally:
        conn.close()
    assert server.get_request("headers").getlist("X-Multi") == ["1", "2"]


# -- history, request, get_request ---------------------------------------------


def test_history_is_a_snapshot_oldest_first(server: TestServer) -> None:
    assert server.history == []
    send("httpx", "GET", server.get_url("/1"))
    snapshot = server.history
    send("httpx", "GET", server.get_url("/2"))
    assert [r.path for r in snapshot] == ["/1"]
    snapshot.clear()
    assert [r.path for r in server.history] == ["/1", "/2"]
    assert all(isinstance(r, Request) for r in server.history)


def test_request_is_the_last_request(server: TestServer) -> None:
    for path in ("/1", "/2", "/3"):
        send("requests", "GET", server.get_url(path))
    assert server.request.path == "/3"
    assert server.get_request().path == "/3"


def test_get_request_by_key_and_index(server: TestServer) -> None:
    send("urllib", "POST", server.get_url("/first?a=1"), b"one")
    send("urllib", "PUT", server.get_url("/second"), b"two")
    assert server.get_request("data") == b"two"
    assert server.get_request("data", 0) == b"one"
    assert server.get_request("method", index=0) == "POST"
    assert server.get_request("path", -2) == "/first"
    assert server.get_request("args", 0) == {"a": "1"}
    assert server.get_request("query_string", 0) == "a=1"
    assert server.get_request(index=1).method == "PUT"
    assert server.get_request("headers")["Content-Length"] == "3"


def test_get_request_unknown_key(server: TestServer) -> None:
    send("urllib", "GET", server.url)
    with pytest.raises(
        ValueError, match=r"^get_request: unknown key 'body'; expected one of 'method', 'path'"
    ):
        server.get_request("body")


def test_no_request_yet(server: TestServer) -> None:
    with pytest.raises(NoRequestError) as info:
        server.get_request()
    assert isinstance(info.value, LookupError)
    with pytest.raises(NoRequestError):
        server.get_request("data")
    with pytest.raises(NoRequestError):
        _ = server.request


def test_index_past_the_history(server: TestServer) -> None:
    send("urllib", "GET", server.url)
    with pytest.raises(NoRequestError, match="index 3"):
        server.get_request("data", 3)
    with pytest.raises(NoRequestError, match="index -2"):
        server.get_request(index=-2)


# -- waiting ------------------------------------------------------------------


def test_wait_request_for_a_request_sent_in_the_background(
    server: TestServer, in_background: Callable[[Callable[[], object]], None]
) -> None:
    in_background(lambda: send("requests", "POST", server.get_url("/bg"), b"later"))
    request = server.wait_request(timeout=10)
    assert (request.method, request.path, request.data) == ("POST", "/bg", b"later")


def test_wait_requests_returns_the_whole_history(
    server: TestServer, in_background: Callable[[Callable[[], object]], None]
) -> None:
    def three() -> None:
        for i in range(3):
            send("httpx", "GET", server.get_url(f"/{i}"))

    in_background(three)
    history = server.wait_requests(3, timeout=10)
    assert [r.path for r in history] == ["/0", "/1", "/2"]


def test_wait_returns_at_once_when_already_there(server: TestServer) -> None:
    send("urllib", "GET", server.get_url("/x"))
    assert server.wait_request(timeout=0).path == "/x"
    assert len(server.wait_requests(1, timeout=0)) == 1


def test_wait_timeout_says_how_many_arrived(server: TestServer) -> None:
    send("urllib", "GET", server.url)
    with pytest.raises(WaitTimeoutError) as info:
        server.wait_requests(3, timeout=0.05)
    error = info.value
    assert (error.expected, error.received) == (3, 1)
    assert "3 request(s)" in str(error)
    assert "1 arrived" in str(error)
    assert isinstance(error, TimeoutError)


def test_wait_request_timeout_with_nothing_sent(server: TestServer) -> None:
    with pytest.raises(WaitTimeoutError, match="0 arrived") as info:
        server.wait_request(timeout=0.05)
    assert (info.value.expected, info.value.received) == (1, 0)


def test_wait_counts_since_the_last_reset(server: TestServer) -> None:
    send("urllib", "GET", server.url)
    server.reset()
    with pytest.raises(WaitTimeoutError):
        server.wait_request(timeout=0.05)
    send("urllib", "GET", server.get_url("/after"))
    assert server.wait_request(timeout=5).path == "/after"


@pytest.mark.parametrize(("count", "timeout"), [(0, 1.0), (-1, 1.0), (1, -1.0)])
def test_wait_rejects_bad_arguments(server: TestServer, count: int, timeout: float) -> None:
    with pytest.raises(ValueError, match="wait_requests"):
        server.wait_requests(count, timeout)


# -- history_limit and reset ----------------------------------------------------


def test_history_limit_keeps_the_last_n_and_counts_all(mode: str) -> None:
    with TestServer(mode=mode, history_limit=3) as srv:
        for i in range(5):
            send("httpx", "GET", srv.get_url(f"/{i}"))
        assert [r.path for r in srv.history] == ["/2", "/3", "/4"]
        assert srv.request_count == 5
        assert [r.path for r in srv.wait_requests(5, timeout=0)] == ["/2", "/3", "/4"]
        assert srv.get_request("path", 0) == "/2"


def test_request_count(server: TestServer) -> None:
    assert server.request_count == 0
    for _ in range(4):
        send("urllib", "GET", server.url)
    assert server.request_count == 4


def test_reset_empties_history_count_and_responses(server: TestServer) -> None:
    server.set_response("status", 404)
    server.set_response_once("data", b"once")
    send("requests", "GET", server.url)
    server.set_response_once("data", b"once again")
    server.reset()
    assert server.history == []
    assert server.request_count == 0
    with pytest.raises(NoRequestError):
        server.get_request()
    with httpx.Client() as c:
        resp = c.get(server.url)
    assert (resp.status_code, resp.content) == (200, b"")
    assert server.request_count == 1
