"""The examples of ``docs/https.rst``: HTTPS with verification on, and IPv6.

The page includes these functions with ``literalinclude :pyobject:``.  The
tests of the "one line per client" table run each line of it as written
there, with ``srv`` a running ``TestServer(ssl=True)`` and ``url`` its
``srv.get_url("/path")``.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from urllib.request import urlopen

import httpx
import pytest
import requests

from tserver import ServerStateError, TestServer

trustme = pytest.importorskip(
    "trustme", reason="HTTPS needs the extra: pip install 'tserver[https]'"
)


def test_https_with_urllib() -> None:
    with TestServer(ssl=True) as srv:
        srv.set_response("data", b"secure")
        with urlopen(srv.get_url("/"), context=srv.client_ssl_context()) as r:
            assert r.read() == b"secure"
        assert srv.request.scheme == "https"


# -- the table: one line per client -------------------------------------------


@pytest.fixture
def srv() -> Iterator[TestServer]:
    with TestServer(ssl=True) as server:
        yield server
        assert server.request.scheme == "https"  # the line did reach the server


@pytest.fixture
def url(srv: TestServer) -> str:
    return srv.get_url("/path")


def test_requests(srv: TestServer, url: str) -> None:
    assert requests.get(url, verify=srv.ca_path, timeout=5).ok


def test_httpx(srv: TestServer, url: str) -> None:
    with httpx.Client(verify=srv.client_ssl_context()) as client:
        assert client.get(url).is_success


def test_urllib(srv: TestServer, url: str) -> None:
    with urllib.request.urlopen(url, context=srv.client_ssl_context()) as response:
        assert response.status == 200


def test_aiohttp(srv: TestServer, url: str) -> None:
    aiohttp = pytest.importorskip("aiohttp")

    async def fetch() -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, ssl=srv.client_ssl_context()) as response,
        ):
            return int(response.status)

    assert asyncio.run(fetch()) == 200


def test_urllib3(srv: TestServer, url: str) -> None:
    urllib3 = pytest.importorskip("urllib3")
    with urllib3.PoolManager(ca_certs=srv.ca_path) as pool:
        assert pool.request("GET", url).status == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this machine")
def test_curl(srv: TestServer, url: str) -> None:
    assert srv.ca_path is not None
    done = subprocess.run(["curl", "--cacert", srv.ca_path, url], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


def test_pycurl(srv: TestServer, url: str) -> None:
    import pycurl

    c = pycurl.Curl()
    try:
        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.CAINFO, srv.ca_path)
        c.setopt(pycurl.WRITEDATA, BytesIO())
        c.perform()
        assert c.getinfo(pycurl.RESPONSE_CODE) == 200
    finally:
        c.close()


def test_tornado(srv: TestServer, url: str) -> None:
    from tornado.httpclient import AsyncHTTPClient

    async def fetch() -> int:
        return (await AsyncHTTPClient().fetch(url, ca_certs=srv.ca_path)).code

    assert asyncio.run(fetch()) == 200


# -- a client that does not trust the CA ----------------------------------------


def test_a_client_that_does_not_trust_the_ca() -> None:
    with TestServer(ssl=True) as srv:
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(srv.url, timeout=5)  # the system CAs do not know this one

        assert srv.history == []  # nothing was recorded, and check() stays clean


# -- your own context -------------------------------------------------------------


def test_your_own_server_context(tmp_path: Path) -> None:
    # your own certificate; here a CA made with trustme signs it
    ca = trustme.CA()
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(tmp_path / "server.pem")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem")
    with TestServer(ssl=context) as srv:
        assert srv.ca_path is None  # you hold the certificates
        with pytest.raises(ServerStateError):
            srv.client_ssl_context()

        client = ssl.create_default_context()
        ca.configure_trust(client)
        with urlopen(srv.url, context=client) as response:
            assert response.status == 200

    with pytest.raises(ValueError, match="use ssl=True"):
        TestServer(mode="subprocess", ssl=context)


# -- IPv6 ---------------------------------------------------------------------------


def has_ipv6_loopback() -> bool:
    """Whether this machine can bind ``::1`` (some containers cannot)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6() -> None:
    with TestServer(address="::1") as srv:
        assert srv.get_url("/a?b=1") == f"http://[::1]:{srv.port}/a?b=1"
        with urlopen(srv.get_url("/a?b=1")) as response:
            assert response.status == 200
        assert srv.request.client_ip == "::1"
