"""SPEC §3.2 faults, each seen by real clients the way a broken server looks.

``"close"``: the connection closes with no byte sent.  ``"reset"``: a TCP
RST.  ``"truncate"``: the headers with the full ``Content-Length``, half the
body, then close.  ``Raw(b"...")``: exactly these bytes, then close.  The
faulty request is recorded first, the server keeps serving every other
connection, and `check()` stays clean (a fault is an answer, not an error).
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
from helpers.clients import fetch

from tserver import Raw, Response, TestServer

GET = b"GET /fault HTTP/1.1\r\nHost: t\r\n\r\n"


def raw_exchange(srv: TestServer, request: bytes = GET) -> bytes:
    """Send *request* on a raw socket and read everything until EOF."""
    with socket.create_connection((srv.address, srv.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        for _ in range(1000):
            data = sock.recv(65536)
            if not data:
                return received
            received += data
    raise AssertionError("no EOF after 1000 reads")


def call(client: str, url: str) -> Any:
    """Fetch *url* with *client*, letting the client's own exception out."""
    return fetch(client, url)


def assert_still_serving(srv: TestServer, fault_path: str = "/fault") -> None:
    """The faulty request was recorded, and the server answers the next ones."""
    assert srv.wait_request().path == fault_path
    for client in ("requests", "http.client"):
        reply = fetch(client, srv.get_url("/after"))
        assert (reply.status, reply.body) == (200, b"fine")
    assert srv.request_count == 3


def _chain(exc: BaseException) -> list[BaseException]:
    """*exc* and everything it wraps (args, cause, context)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        item = todo.pop()
        if item in seen:
            continue
        seen.append(item)
        todo += [a for a in item.args if isinstance(a, BaseException)]
        todo += [e for e in (item.__cause__, item.__context__) if e is not None]
    return seen


def raises_wrapping(
    outer: type[BaseException], inner: type[BaseException]
) -> Callable[[BaseException], bool]:
    """A check: *exc* is an *outer* that wraps an *inner* somewhere."""

    def check(exc: BaseException) -> bool:
        return isinstance(exc, outer) and any(isinstance(e, inner) for e in _chain(exc))

    return check


# -- close -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("http.client", raises_wrapping(http.client.RemoteDisconnected, Exception)),
        ("urllib", raises_wrapping(http.client.RemoteDisconnected, Exception)),
        (
            "requests",
            raises_wrapping(requests.ConnectionError, http.client.RemoteDisconnected),
        ),
        ("httpx", raises_wrapping(httpx.RemoteProtocolError, Exception)),
    ],
)
def test_close_sends_nothing(
    mode: str, client: str, expected: Callable[[BaseException], bool]
) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"fine")
        srv.add_response(Response(b"unsent", fault="close"), path="/fault")
        with pytest.raises(Exception) as info:
            call(client, srv.get_url("/fault"))
        assert expected(info.value), repr(info.value)
        assert_still_serving(srv)


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
def test_close_on_a_raw_socket_is_eof_with_no_bytes(mode: str, version: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"fine")
        srv.add_response(Response(b"unsent", fault="close"))
        assert raw_exchange(srv, f"GET /fault {version}\r\nHost: t\r\n\r\n".encode()) == b""
        assert_still_serving(srv)


# -- reset -----------------------------------------------------------------------


def test_reset_is_a_tcp_rst_on_a_raw_socket(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"fine")
        srv.add_response(Response(b"unsent", fault="reset"))
        with pytest.raises(ConnectionResetError):
            raw_exchange(srv)
        assert_still_serving(srv)


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("http.client", raises_wrapping(ConnectionResetError, Exception)),
        ("requests", raises_wrapping(requests.ConnectionError, ConnectionResetError)),
        ("httpx", raises_wrapping(httpx.ReadError, ConnectionResetError)),
    ],
)
def test_reset_seen_by_clients(
    mode: str, client: str, expected: Callable[[BaseException], bool]
) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"fine")
        srv.add_response(Response(fault="reset", sleep=0.05), path="/fault")
        with pytest.raises(Exception) as info:
            call(client, srv.get_url("/fault"))
        assert expected(info.value), repr(info.value)
        assert_still_serving(srv)


# -- truncate --------------------------------------------------------------------


def test_truncate_on_a_raw_socket(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"fine")
        srv.add_response(
            Response(
                json={"items": [1, 2, 3]}, status=201, headers={"X-Cut": "1"}, fault="truncate"
            )
        )
        received = raw_exchange(srv)
        assert_still_serving(srv)
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 201 Created"
    full = b'{"items": [1, 2, 3]}'
    assert f"Content-Length: {len(full)}" in lines
    assert "Content-Type: application/json" in lines
    assert "X-Cut: 1" in lines
    assert body == full[: len(full) // 2]


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("http.client", raises_wrapping(http.client.IncompleteRead, Exception)),
        ("urllib", raises_wrapping(http.client.IncompleteRead, Exception)),
        ("requests", raises_wrapping(requests.exceptions.ChunkedEncodingError, Exception)),
        ("httpx", raises_wrapping(httpx.RemoteProtocolError, Exception)),
    ],
)
def test_truncate_seen_by_clients(
    mode: str, client: str, expected: Callable[[BaseException], bool]
) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"fine")
        srv.add_response(Response(b"0123456789", fault="truncate"), path="/fault")
        with pytest.raises(Exception) as info:
            call(client, srv.get_url("/fault"))
        assert expected(info.value), repr(info.value)
        if isinstance(info.value, http.client.IncompleteRead):
            assert (info.value.partial, info.value.expected) == (b"01234", 5)
        assert_still_serving(srv)


# -- Raw -------------------------------------------------------------------------


def test_raw_bytes_are_sent_exactly_then_eof(mode: str) -> None:
    payload = b"HTTP/1.1 299 Odd\r\nX-Weird:  spaced \r\n\r\n\x00\xffbinary"
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"fine")
        srv.add_response(Response(b"ignored", fault=Raw(payload)))
        assert raw_exchange(srv) == payload
        assert_still_serving(srv)


@pytest.mark.parametrize("client", ["http.client", "requests"])
def test_raw_response_parsed_by_clients(mode: str, client: str) -> None:
    raw = Raw(b"HTTP/1.1 299 Odd\r\nX-Raw: yes\r\nConnection: close\r\n\r\nuntil eof")
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"fine")
        srv.add_response(Response(fault=raw), path="/fault")
        reply = fetch(client, srv.get_url("/fault"))
        assert (reply.status, reply.header("X-Raw"), reply.body) == (299, "yes", b"until eof")
        assert_still_serving(srv)


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("http.client", raises_wrapping(http.client.BadStatusLine, Exception)),
        ("requests", raises_wrapping(requests.ConnectionError, http.client.BadStatusLine)),
    ],
)
def test_raw_garbage_is_a_protocol_error(
    mode: str, client: str, expected: Callable[[BaseException], bool]
) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"fine")
        srv.add_response(Response(fault=Raw(b"NOT HTTP AT ALL\r\n")), path="/fault")
        with pytest.raises(Exception) as info:
            call(client, srv.get_url("/fault"))
        assert expected(info.value), repr(info.value)
        assert_still_serving(srv)
