"""SPEC §3.2 streaming: ``Response(chunks=..., chunk_sleep=...)``.

Each chunk goes out as its own ``Transfer-Encoding: chunked`` chunk, flushed
at once, ``chunk_sleep`` seconds after the previous one.  That a client sees
the first chunk before the last one is sent is proved without timing
assumptions: with ``chunk_sleep=3600`` the server cannot send the second
chunk within the test's lifetime, so receiving the first one at all (the
client's 10 s timeout only bounds a failure) shows it was flushed alone.
"""

from __future__ import annotations

import http.client
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import httpx
import pytest
from helpers.clients import fetch

from tserver import Response, TestServer

PARKED = 3600.0  # a chunk_sleep no test outlives


@contextmanager
def raw_get(srv: TestServer, target: str = "/", version: str = "HTTP/1.1") -> Iterator[BinaryIO]:
    """Send a GET on a raw socket; yield a binary reader of the raw response."""
    with socket.create_connection((srv.address, srv.port), timeout=10) as sock:
        sock.sendall(f"GET {target} {version}\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        with sock.makefile("rb") as reader:
            yield reader


def read_head(reader: BinaryIO) -> tuple[str, dict[str, str]]:
    """The status line and headers (lower-case names) of a raw response."""
    status = reader.readline().decode("latin-1").rstrip("\r\n")
    headers: dict[str, str] = {}
    for _ in range(100):
        line = reader.readline().decode("latin-1").rstrip("\r\n")
        if not line:
            return status, headers
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    raise AssertionError("more than 100 header lines")


def read_chunk(reader: BinaryIO) -> bytes:
    """One chunk of a chunked body, exactly as framed (b"" for the last one)."""
    size = int(reader.readline().split(b";")[0], 16)
    data = reader.read(size)
    assert reader.read(2) == b"\r\n"
    return data


def test_each_chunk_is_framed_and_flushed_on_its_own(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(
            Response(
                chunks=[b"alpha", b"", b"beta", "gamma-\u00e9"],
                status=206,
                headers={"Content-Type": "text/plain", "X-Stream": "1"},
            )
        )
        with raw_get(srv) as reader:
            status, headers = read_head(reader)
            chunks = [read_chunk(reader) for _ in range(4)]
            assert reader.read() == b""  # no trailers, then the server closes
    assert status == "HTTP/1.1 206 Partial Content"
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    assert headers["content-type"] == "text/plain"
    assert headers["x-stream"] == "1"
    # the empty chunk is skipped (it would end the body); str goes out UTF-8
    assert chunks == [b"alpha", b"beta", "gamma-\u00e9".encode(), b""]


@pytest.mark.parametrize("client", ["requests", "httpx", "urllib"])
def test_clients_read_the_whole_chunked_body(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(chunks=[b"one,", b"two,", b"three"], chunk_sleep=0.01))
        reply = fetch(client, srv.url)
    assert reply.status == 200
    assert reply.header("Transfer-Encoding") == "chunked"
    assert reply.header("Content-Length") is None
    assert reply.body == b"one,two,three"


def test_chunk_sleep_spaces_the_chunks(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(chunks=[b"a", b"b", b"c"], chunk_sleep=0.2))
        started = time.monotonic()
        reply = fetch("http.client", srv.url)
        elapsed = time.monotonic() - started
    assert reply.body == b"abc"
    # two gaps of 0.2 s lie between the request and the last chunk (a lower
    # bound: never flaky, however slow the machine)
    assert elapsed >= 0.4


def test_first_chunk_arrives_before_the_last_is_sent_http_client(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    srv = TestServer(mode=mode).start()
    conn = http.client.HTTPConnection(srv.address, srv.port, timeout=10)
    try:
        srv.add_response(Response(chunks=[b"first", b"never"], chunk_sleep=PARKED), path="/stream")
        conn.request("GET", "/stream")
        resp = conn.getresponse()
        assert resp.getheader("Transfer-Encoding") == "chunked"
        assert resp.read(5) == b"first"
        # the streaming request is recorded, and others are served meanwhile
        assert srv.wait_request().path == "/stream"
        assert fetch("requests", srv.get_url("/other")).status == 200
        assert fetch("httpx", srv.get_url("/more")).status == 200
        assert [r.path for r in srv.history] == ["/stream", "/other", "/more"]
        srv.stop()
        # stopping drops the connection: the body does not end as if complete
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
    finally:
        conn.close()
        srv.stop()
    srv.check()
    # and Tornado logged nothing about the half-sent answer
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_first_chunk_arrives_before_the_last_is_sent_httpx(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    try:
        srv.add_response(Response(chunks=[b"first", b"never"], chunk_sleep=PARKED))
        with httpx.Client(timeout=10) as client, client.stream("GET", srv.url) as resp:
            pieces = resp.iter_raw()
            assert next(pieces) == b"first"
            assert fetch("urllib", srv.get_url("/other")).status == 200
            srv.stop()
            with pytest.raises(httpx.RemoteProtocolError):
                next(pieces)
    finally:
        srv.stop()
    srv.check()


def test_http_1_0_client_gets_the_chunks_unframed(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(chunks=[b"old ", b"client"]))
        with raw_get(srv, version="HTTP/1.0") as reader:
            status, headers = read_head(reader)
            body = reader.read()
    assert status == "HTTP/1.1 200 OK"  # the server's version, as RFC 9110 says
    assert "transfer-encoding" not in headers
    assert body == b"old client"
