"""HTTPS: ``ssl=True`` (a throwaway trustme CA) and ``ssl=<SSLContext>``.

Every client verifies the server certificate: nothing here turns
verification off.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import urllib.error
from collections.abc import Iterator
from io import BytesIO
from urllib.request import urlopen

import pytest

from tserver import ServerStartError, ServerStateError, TestServer
from tserver._tls import TlsFiles, server_context_from_pem

CURL = shutil.which("curl")


@pytest.fixture
def https(mode: str) -> Iterator[TestServer]:
    """A started ``ssl=True`` server in the current mode."""
    srv = TestServer(mode=mode, ssl=True).start()
    try:
        srv.set_response("data", b"secure")
        yield srv
    finally:
        srv.stop()


def _assert_https_request(srv: TestServer, path: str) -> None:
    request = srv.wait_request()
    assert request.path == path
    assert request.scheme == "https"
    assert request.url == srv.get_url(path)


# -- clients, verification on ---------------------------------------------------


def test_requests(https: TestServer) -> None:
    requests = pytest.importorskip("requests")
    with requests.Session() as session:
        response = session.get(https.get_url("/requests"), verify=https.ca_path)
        assert response.status_code == 200
        assert response.content == b"secure"
    _assert_https_request(https, "/requests")


def test_httpx_with_context(https: TestServer) -> None:
    httpx = pytest.importorskip("httpx")
    with httpx.Client(verify=https.client_ssl_context()) as client:
        response = client.get(https.get_url("/httpx"))
        assert response.status_code == 200
        assert response.content == b"secure"
    _assert_https_request(https, "/httpx")


def test_httpx_with_ca_file(https: TestServer) -> None:
    httpx = pytest.importorskip("httpx")
    assert https.ca_path is not None
    context = ssl.create_default_context(cafile=https.ca_path)
    with httpx.Client(verify=context) as client:
        assert client.get(https.get_url("/ca")).content == b"secure"
    _assert_https_request(https, "/ca")


def test_urllib(https: TestServer) -> None:
    with urlopen(https.get_url("/urllib"), context=https.client_ssl_context()) as response:
        assert response.status == 200
        assert response.read() == b"secure"
    _assert_https_request(https, "/urllib")


def test_urllib3(https: TestServer) -> None:
    urllib3 = pytest.importorskip("urllib3")
    pool = urllib3.PoolManager(ca_certs=https.ca_path, cert_reqs="CERT_REQUIRED")
    try:
        response = pool.request("GET", https.get_url("/urllib3"))
        assert response.status == 200
        assert response.data == b"secure"
    finally:
        pool.clear()
    _assert_https_request(https, "/urllib3")


def test_aiohttp(https: TestServer) -> None:
    aiohttp = pytest.importorskip("aiohttp")

    async def fetch() -> tuple[int, bytes]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(https.get_url("/aiohttp"), ssl=https.client_ssl_context()) as response,
        ):
            return response.status, await response.read()

    assert asyncio.run(fetch()) == (200, b"secure")
    _assert_https_request(https, "/aiohttp")


@pytest.mark.skipif(CURL is None, reason="the curl command is not installed")
def test_curl(https: TestServer) -> None:
    assert CURL is not None
    assert https.ca_path is not None
    result = subprocess.run(
        [CURL, "--silent", "--show-error", "--cacert", https.ca_path, https.get_url("/curl")],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout == b"secure"
    _assert_https_request(https, "/curl")


def test_pycurl(https: TestServer) -> None:
    import pycurl

    body = BytesIO()
    curl = pycurl.Curl()
    try:
        curl.setopt(pycurl.URL, https.get_url("/pycurl"))
        curl.setopt(pycurl.CAINFO, https.ca_path)
        curl.setopt(pycurl.WRITEDATA, body)
        curl.perform()
        assert curl.getinfo(pycurl.RESPONSE_CODE) == 200
    finally:
        curl.close()
    assert body.getvalue() == b"secure"
    _assert_https_request(https, "/pycurl")


def test_localhost_name_verifies(https: TestServer) -> None:
    url = f"https://localhost:{https.port}/by-name"
    with urlopen(url, context=https.client_ssl_context()) as response:
        assert response.read() == b"secure"
    assert https.wait_request().path == "/by-name"


def test_certificate_names(https: TestServer) -> None:
    context = https.client_ssl_context()
    with (
        socket.create_connection(("127.0.0.1", https.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        names = tls.getpeercert()["subjectAltName"]  # type: ignore[index]
    assert ("DNS", "localhost") in names
    assert ("IP Address", "127.0.0.1") in names
    ipv6 = [value for kind, value in names if kind == "IP Address" and ":" in value]
    assert len(ipv6) == 1
    assert socket.inet_pton(socket.AF_INET6, ipv6[0].strip()) == socket.inet_pton(
        socket.AF_INET6, "::1"
    )


def test_url_scheme(https: TestServer) -> None:
    assert https.get_url() == f"https://127.0.0.1:{https.port}/"
    assert https.url == https.get_url()
    assert https.get_url("/a?b=1") == f"https://127.0.0.1:{https.port}/a?b=1"
    with urlopen(https.get_url("/a?b=1"), context=https.client_ssl_context()) as response:
        response.read()
    request = https.wait_request()
    assert request.scheme == "https"
    assert request.args["b"] == "1"
    assert request.url == https.get_url("/a?b=1")


# -- failures that must not hurt the server --------------------------------------


def test_untrusting_client_fails_and_server_keeps_serving(
    https: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    untrusting = ssl.create_default_context()  # the system CAs only
    with pytest.raises(urllib.error.URLError) as info:
        urlopen(https.get_url("/untrusted"), context=untrusting, timeout=10)
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)

    with urlopen(https.get_url("/trusted"), context=https.client_ssl_context()) as response:
        assert response.read() == b"secure"
    assert [r.path for r in https.wait_requests(1)] == ["/trusted"]
    https.check()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_untrusting_requests_client_gets_ssl_error(https: TestServer) -> None:
    requests = pytest.importorskip("requests")
    with requests.Session() as session:
        with pytest.raises(requests.exceptions.SSLError):
            session.get(https.get_url("/untrusted"), timeout=10)
        response = session.get(https.get_url("/trusted"), verify=https.ca_path, timeout=10)
        assert response.content == b"secure"
    assert https.wait_request().path == "/trusted"
    https.check()


def test_plain_http_on_the_tls_port(https: TestServer) -> None:
    with socket.create_connection(("127.0.0.1", https.port), timeout=10) as sock:
        sock.sendall(b"GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        for _ in range(100):  # bounded: the server closes the connection
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:  # closed with our request unread
                break
            if not chunk:
                break
            received += chunk
        else:
            pytest.fail("the server did not close a plain-HTTP connection to its TLS port")
    assert b"secure" not in received

    with urlopen(https.get_url("/after"), context=https.client_ssl_context()) as response:
        assert response.read() == b"secure"
    assert [r.path for r in https.history] == ["/after"]
    https.check()


# -- the CA files ------------------------------------------------------------------


def test_ca_files_are_private_and_removed_at_stop(mode: str) -> None:
    srv = TestServer(mode=mode, ssl=True).start()
    try:
        ca_path = srv.ca_path
        assert ca_path is not None
        directory = os.path.dirname(ca_path)
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        files = sorted(os.listdir(directory))
        assert "ca.pem" in files
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) == 0o600
        with open(ca_path, "rb") as f:
            assert f.read().startswith(b"-----BEGIN CERTIFICATE-----")
    finally:
        srv.stop()
    assert not os.path.exists(directory)
    assert srv.ca_path is None
    with pytest.raises(ServerStateError, match="ssl=True"):
        srv.client_ssl_context()
    srv.stop()  # idempotent, and the directory is already gone


def test_restart_makes_a_new_working_ca(mode: str) -> None:
    srv = TestServer(mode=mode, ssl=True).start()
    try:
        port = srv.port
        first_ca = srv.ca_path
        assert first_ca is not None
        old_context = srv.client_ssl_context()
        with open(first_ca, "rb") as f:
            first_pem = f.read()
        srv.stop()
        assert not os.path.exists(first_ca)

        srv.start()
        assert srv.port == port
        assert srv.ca_path is not None
        assert srv.ca_path != first_ca
        with open(srv.ca_path, "rb") as f:
            assert f.read() != first_pem
        with urlopen(srv.get_url("/again"), context=srv.client_ssl_context()) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.URLError) as info:
            urlopen(srv.get_url("/old-ca"), context=old_context, timeout=10)
        assert isinstance(info.value.reason, ssl.SSLCertVerificationError)
        assert [r.path for r in srv.wait_requests(1)] == ["/again"]
    finally:
        srv.stop()


def test_failed_start_leaves_no_ca_directory(
    mode: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp makes the CA

    def ca_dirs() -> list[str]:
        return [name for name in os.listdir(tmp_path) if name.startswith("tserver-tls-")]

    with TestServer(mode=mode, ssl=True) as srv:
        assert ca_dirs() == [os.path.basename(os.path.dirname(srv.ca_path or ""))]
    assert ca_dirs() == []

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        srv = TestServer(port=port, mode=mode, ssl=True)
        with pytest.raises(ServerStartError, match=str(port)):
            srv.start()
    assert not srv.running
    assert srv.ca_path is None
    assert ca_dirs() == []


def test_missing_trustme_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)  # makes `import trustme` fail
    srv = TestServer(ssl=True)
    with pytest.raises(ServerStartError) as info:
        srv.start()
    assert isinstance(info.value.__cause__, ImportError)
    assert "pip install 'tserver[https]'" in str(info.value)
    assert not srv.running
    assert srv.ca_path is None


# -- ssl=<SSLContext> ----------------------------------------------------------------


def test_callers_context_in_thread_mode() -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    with TestServer(ssl=server_context) as srv:
        assert srv.ca_path is None
        with pytest.raises(ServerStateError, match="ssl=True"):
            srv.client_ssl_context()
        assert srv.get_url().startswith("https://127.0.0.1:")
        srv.set_response("data", b"own context")
        with urlopen(srv.get_url("/own"), context=client_context) as response:
            assert response.read() == b"own context"
        assert srv.wait_request().scheme == "https"


def test_callers_context_refused_in_subprocess_mode() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with pytest.raises(ValueError, match=r"ssl=True"):
        TestServer(mode="subprocess", ssl=context)


def test_ssl_argument_type_is_checked() -> None:
    with pytest.raises(TypeError, match="ssl"):
        TestServer(ssl="yes")  # type: ignore[arg-type]


# -- the _tls building blocks (no server) ------------------------------------------------


def test_tls_files_roundtrip() -> None:
    files = TlsFiles.create()
    try:
        assert os.path.isdir(files.directory)
        assert files.exists
        assert os.listdir(files.directory) == ["ca.pem"]  # the key never rests on disk
        context = server_context_from_pem(files.cert_pem, files.key_pem)
        assert context.verify_mode == ssl.CERT_NONE  # no client certificates asked
        assert isinstance(files.server_context(), ssl.SSLContext)
        assert files.client_context().verify_mode == ssl.CERT_REQUIRED
    finally:
        files.remove()
    assert not files.exists
    files.remove()  # idempotent
