"""Slow drip both ways (SPEC §10): ``rate=`` for the answer, ``read_rate=`` for the upload."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
import requests

from tserver import Event, Response, TestServer


def test_a_drip_keeps_the_pace_and_each_read_is_prompt(server: TestServer) -> None:
    body = bytes(range(256)) * 8  # 2,048 bytes
    server.add_response(Response(body, rate=4096))
    started = time.monotonic()
    # a read timeout of 0.2 s never fires: a slice comes every 50 ms
    with httpx.Client(timeout=httpx.Timeout(10, read=0.2)) as client:
        response = client.get(server.url)
    elapsed = time.monotonic() - started
    assert response.content == body
    assert response.headers["Content-Length"] == "2048"  # framed as a whole body
    assert "Transfer-Encoding" not in response.headers
    # the first slice (1/20 s of the rate) may go at once; the rest no faster than the rate
    assert elapsed >= (len(body) - 4096 / 20) / 4096


def test_a_drip_slower_than_the_read_timeout(server: TestServer) -> None:
    server.add_response(Response(b"0123456789", rate=1))
    with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=httpx.Timeout(10, read=0.2)) as c:
        c.get(server.url)


def test_the_first_bytes_of_a_drip_arrive_at_once(server: TestServer) -> None:
    server.add_response(Response(b"abcdefghij", rate=2))
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        body = data.partition(b"\r\n\r\n")[2] or sock.recv(65536)
        assert body == b"a"  # one byte now, the next one half a second later


def test_a_dripping_stream(server: TestServer) -> None:
    events = [Event("x" * 100), Event("y" * 100)]
    server.add_response(Response(events=events, rate=2000))
    started = time.monotonic()
    with httpx.Client(timeout=10) as client:
        text = client.get(server.url).text
    elapsed = time.monotonic() - started
    assert text == "".join(e.encode().decode() for e in events)
    total = sum(len(e.encode()) for e in events)
    assert elapsed >= (total - 2000 / 20) / 2000


def test_a_slow_reader_paces_the_upload(server: TestServer) -> None:
    server.add_response(Response(b"read", read_rate=10000), method="POST")
    started = time.monotonic()
    response = requests.post(server.url, data=b"u" * 3000, timeout=10)
    elapsed = time.monotonic() - started
    assert response.content == b"read"
    assert server.wait_request().data == b"u" * 3000
    assert elapsed >= 3000 / 10000  # the last byte was taken no sooner than its time


def test_a_slow_reader_makes_a_client_write_timeout(server: TestServer) -> None:
    server.add_response(Response(read_rate=1000), method="POST")
    big = b"w" * (16 << 20)  # more than every buffer on the way can hold
    with pytest.raises(httpx.WriteTimeout):
        httpx.post(server.url, content=big, timeout=httpx.Timeout(10, write=0.3))
    assert server.request_count == 0  # the upload never ended
    assert server.connections[0].requests == 0


def test_rates_are_checked() -> None:
    for name in ("rate", "read_rate"):
        with pytest.raises(ValueError, match=f"{name} 0 must be > 0 bytes per second"):
            Response(**{name: 0})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=f"{name} '9' must be a number"):
            Response(**{name: "9"})  # type: ignore[arg-type]
    assert Response(rate=10).rate == 10.0
