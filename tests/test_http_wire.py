"""HTTP on the wire: raw sockets, keep-alive, odd methods, HEAD, load, in every mode."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

from tserver import TestServer


class RawClient:
    """A raw socket that reads HTTP/1.x responses framed by Content-Length."""

    def __init__(self, srv: TestServer) -> None:
        self.sock = socket.create_connection((srv.address, srv.port), timeout=10)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def read_head(self) -> tuple[str, dict[str, str]]:
        """The status line and the headers (lower-case names) of the next response."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed before a full head: {self.buffer!r}")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def read_body(self, length: int) -> bytes:
        while len(self.buffer) < length:
            if not self._fill():
                raise ConnectionError(f"closed after {len(self.buffer)} of {length} bytes")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return body

    def read_response(self) -> tuple[str, dict[str, str], bytes]:
        status, headers = self.read_head()
        return status, headers, self.read_body(int(headers["content-length"]))

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data


def test_http_10_request(server: TestServer) -> None:
    server.set_response("data", b"old-style")
    with RawClient(server) as client:
        client.send(b"GET /old?x=1 HTTP/1.0\r\nHost: t\r\n\r\n")
        raw = client.read_to_eof()  # HTTP/1.0 without keep-alive: server closes
    assert raw.split(b"\r\n", 1)[0].endswith(b" 200 OK")
    assert raw.endswith(b"\r\n\r\nold-style")
    request = server.wait_request()
    assert (request.version, request.method, request.path, request.query_string) == (
        "HTTP/1.0",
        "GET",
        "/old",
        "x=1",
    )


def test_http_10_without_host_header(server: TestServer) -> None:
    with RawClient(server) as client:
        client.send(b"GET / HTTP/1.0\r\n\r\n")
        assert b" 200 " in client.read_to_eof().split(b"\r\n", 1)[0]
    assert server.wait_request().version == "HTTP/1.0"


def test_keep_alive_serves_several_requests_on_one_connection(server: TestServer) -> None:
    server.set_response("data", b"same")
    with RawClient(server) as client:
        for i in range(5):
            body = f"body {i}".encode()
            client.send(
                f"POST /k/{i} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            status, headers, data = client.read_response()
            assert status == "HTTP/1.1 200 OK"
            assert "connection" not in headers or headers["connection"].lower() != "close"
            assert data == b"same"
    history = server.wait_requests(5)
    assert [r.path for r in history] == [f"/k/{i}" for i in range(5)]
    assert [r.data for r in history] == [f"body {i}".encode() for i in range(5)]
    assert len({r.client_port for r in history}) == 1  # one connection


def test_pipelined_requests_in_one_write(server: TestServer) -> None:
    with RawClient(server) as client:
        client.send(b"".join(f"GET /p/{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for i in range(3)))
        for _ in range(3):
            assert client.read_response()[0] == "HTTP/1.1 200 OK"
    assert [r.path for r in server.wait_requests(3)] == ["/p/0", "/p/1", "/p/2"]


def test_chunked_request_body_is_recorded_decoded(server: TestServer) -> None:
    with RawClient(server) as client:
        client.send(
            b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        assert client.read_response()[0] == "HTTP/1.1 200 OK"
    assert server.wait_request().data == b"hello world"


@pytest.mark.parametrize("method", ["PROPFIND", "PURGE", "MKCOL", "M-SEARCH", "LINK", "TRACE"])
def test_arbitrary_method_tokens_are_recorded_as_sent(server: TestServer, method: str) -> None:
    server.set_response("data", b"any method")
    conn = http.client.HTTPConnection(server.address, server.port, timeout=10)
    try:
        conn.request(method, "/dav/item", headers={"Depth": "1"})
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"any method")
    finally:
        conn.close()
    request = server.wait_request()
    assert (request.method, request.path, request.headers["Depth"]) == (method, "/dav/item", "1")


def test_method_specific_setting_for_an_odd_method(server: TestServer) -> None:
    server.set_response("status", 207, method="PROPFIND")
    with RawClient(server) as client:
        client.send(b"PROPFIND / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.read_response()[0] == "HTTP/1.1 207 Multi-Status"
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.read_response()[0] == "HTTP/1.1 200 OK"


def test_head_answers_without_body_but_with_content_length(server: TestServer) -> None:
    server.set_response("data", b"twelve bytes")
    with RawClient(server) as client:
        client.send(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers = client.read_head()
        assert status == "HTTP/1.1 200 OK"
        assert headers["content-length"] == "12"
        # The next response on the same connection starts right away:
        # no body bytes were sent after the HEAD response's head.
        client.send(b"GET /g HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = client.read_response()
        assert (status, body) == ("HTTP/1.1 200 OK", b"twelve bytes")
    assert [r.method for r in server.wait_requests(2)] == ["HEAD", "GET"]


def test_thousand_requests_from_sixteen_concurrent_clients(server: TestServer) -> None:
    threads_n, total = 16, 1000
    per_thread = [
        total // threads_n + (1 if i < total % threads_n else 0) for i in range(threads_n)
    ]
    failures: list[str] = []

    def worker(number: int, count: int) -> None:
        conn = http.client.HTTPConnection(server.address, server.port, timeout=30)
        try:
            for i in range(count):
                conn.request("GET", f"/t{number}/{i}")
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    failures.append(f"/t{number}/{i}: {resp.status}")
        except Exception as exc:
            failures.append(f"thread {number}: {exc!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(n, c)) for n, c in enumerate(per_thread)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    history = server.wait_requests(total, timeout=10)
    assert len(history) == total
    assert server.request_count == total
    expected = {f"/t{n}/{i}" for n, c in enumerate(per_thread) for i in range(c)}
    assert {r.path for r in history} == expected
    for n in range(threads_n):  # each connection's requests recorded in its order
        own = [r.path for r in history if r.path.startswith(f"/t{n}/")]
        assert own == [f"/t{n}/{i}" for i in range(per_thread[n])]


def test_set_response_while_requests_are_in_flight(server: TestServer) -> None:
    workers_n, warmup, after_switch, cap = 4, 10, 20, 5000
    server.set_response("data", b"old")
    switched = threading.Event()
    results: list[list[tuple[bool, int, bytes]]] = [[] for _ in range(workers_n)]
    failures: list[str] = []

    def worker(number: int) -> None:
        conn = http.client.HTTPConnection(server.address, server.port, timeout=30)
        seen_after = 0
        try:
            for _ in range(cap):
                sent_after_switch = switched.is_set()
                conn.request("GET", f"/w{number}")
                resp = conn.getresponse()
                results[number].append((sent_after_switch, resp.status, resp.read()))
                seen_after += sent_after_switch
                if seen_after >= after_switch:
                    return
            failures.append(f"worker {number} never saw the switch")
        except Exception as exc:
            failures.append(f"worker {number}: {exc!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers_n)]
    for thread in threads:
        thread.start()
    try:
        server.wait_requests(workers_n * warmup, timeout=30)  # traffic is flowing
        server.set_response("data", b"new")
    finally:
        switched.set()
        for thread in threads:
            thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    flat = [item for own in results for item in own]
    assert {status for _, status, _ in flat} == {200}
    assert {body for _, _, body in flat} <= {b"old", b"new"}
    # every request sent after set_response returned got the new answer
    assert {body for after, _, body in flat if after} == {b"new"}
    assert sum(after for after, _, _ in flat) == workers_n * after_switch
    assert server.request_count == len(flat)
    server.check()
