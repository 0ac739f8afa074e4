"""IPv6: ``address="::1"`` binds, serves and shows up in URLs and requests."""

from __future__ import annotations

import socket
from urllib.request import urlopen

import pytest

from tserver import TestServer


def _has_ipv6_loopback() -> bool:
    """Whether a socket can be bound to ``::1`` on this machine."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _has_ipv6_loopback(),
    reason="this machine has no IPv6 loopback: binding a socket to ::1 failed",
)


def test_binds_and_serves(mode: str) -> None:
    with TestServer(address="::1", mode=mode) as srv:
        assert srv.address == "::1"
        assert srv.port > 0
        assert srv.get_url() == f"http://[::1]:{srv.port}/"
        assert srv.get_url("/a?b=1") == f"http://[::1]:{srv.port}/a?b=1"
        srv.set_response("data", b"six")
        with urlopen(srv.get_url("/v6?x=1"), timeout=10) as response:
            assert response.read() == b"six"
        request = srv.wait_request()
        assert request.client_ip == "::1"
        assert request.path == "/v6"
        assert request.args["x"] == "1"
        assert request.url == srv.get_url("/v6?x=1")
        srv.assert_request().from_ip("::1")


def test_really_listens_on_ipv6_only(mode: str) -> None:
    with TestServer(address="::1", mode=mode) as srv:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(("::1", srv.port))
            sock.sendall(b"GET /raw HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n")
            reply = b""
            for _ in range(100):  # bounded: Connection: close ends it
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200")
        assert srv.wait_request().client_ip == "::1"


def test_requests_client(mode: str) -> None:
    requests = pytest.importorskip("requests")
    with TestServer(address="::1", mode=mode) as srv, requests.Session() as session:
        srv.set_response("json", {"ok": True})
        assert session.get(srv.get_url("/j"), timeout=10).json() == {"ok": True}
        assert srv.wait_request().client_ip == "::1"


def test_https_on_ipv6(mode: str) -> None:
    with TestServer(address="::1", mode=mode, ssl=True) as srv:
        assert srv.get_url() == f"https://[::1]:{srv.port}/"
        srv.set_response("data", b"secure six")
        with urlopen(srv.get_url("/s"), context=srv.client_ssl_context(), timeout=10) as response:
            assert response.read() == b"secure six"
        request = srv.wait_request()
        assert request.scheme == "https"
        assert request.client_ip == "::1"
