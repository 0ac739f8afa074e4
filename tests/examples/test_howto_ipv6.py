"""How-to: test a client over IPv6 (``docs/howto.rst``)."""

from __future__ import annotations

import socket

import pytest
import requests

from tserver import TestServer


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_the_client_speaks_ipv6() -> None:
    with TestServer(address="::1") as srv:
        assert srv.url == f"http://[::1]:{srv.port}/"  # brackets, as URLs need

        requests.get(srv.get_url("/six"), timeout=5)

        srv.assert_request().from_ip("::1").has_header("Host", f"[::1]:{srv.port}")
