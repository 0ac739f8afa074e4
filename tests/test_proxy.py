"""Proxy mode (SPEC §12): absolute-form requests, CONNECT tunnels, proxy_auth, host rules.

Every client here names hosts that do not resolve (``api.example.test``):
a request that reached a rule went through tserver as its proxy, and
nothing else.  TLS inside tunnels is verified against the server's CA.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import aiohttp
import httpx
import pytest
import requests
import trustme
from hamcrest import ends_with, starts_with
from helpers.proxy_clients import CURL, PROXY_CLIENTS, curl, proxy_environment, via_proxy
from helpers.wire import read_all, read_past, read_until

from tserver import Request, Response, ServerStateError, TestServer
from tserver._inline import InlineTestServer
from tserver._tls import TunnelCerts
from tserver.matchers import has_host

HOST = "api.example.test"
AUTH = ("alice", "s3cret")


def _raw(port: int, head: bytes) -> bytes:
    """Send the request *head* with ``Connection: close`` on a fresh connection; the whole reply."""
    assert head.endswith(b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head[:-2] + b"Connection: close\r\n\r\n")
        return read_all(sock)


def _answer_rule(srv: TestServer) -> int:
    return srv.add_response(Response(b"via-rule"), host=HOST, count=None)


# -- absolute-form requests, in every mode, proxy=True or not ------------------------------


@pytest.mark.parametrize("proxy", [False, True])
def test_an_absolute_form_request_is_recorded_with_its_parts(mode: str, proxy: bool) -> None:
    with TestServer(mode=mode, proxy=proxy) as srv:
        srv.add_response(Response(b"v1"), path="/v1", host=HOST)
        head = _raw(
            srv.port,
            b"GET http://api.example.test/v1?x=1 HTTP/1.1\r\nHost: api.example.test\r\n"
            b"Content-Length: 0\r\n\r\n",
        )
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        request = srv.wait_request()
    assert (request.path, request.query_string, request.host) == ("/v1", "x=1", HOST)
    assert request.url == "http://api.example.test/v1?x=1"
    assert request.args.getlist("x") == ["1"]
    assert (request.proxied, request.tunnel, request.scheme) == (True, None, "http")
    assert request.raw_head.startswith(b"GET http://api.example.test/v1?x=1 HTTP/1.1\r\n")


def test_an_absolute_form_target_without_a_path_is_the_root(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        _raw(srv.port, b"GET http://API.example.test:8080?q HTTP/1.1\r\nHost: x\r\n\r\n")
        request = srv.wait_request()
    assert (request.path, request.query_string) == ("/", "q")
    assert request.host == "API.example.test:8080"  # as the client wrote it
    assert request.url == "http://API.example.test:8080?q"
    srv.assert_request().has_host("api.example.test").has_host("api.example.test:8080")


def test_an_origin_form_request_is_not_proxied_and_its_host_is_the_host_header(
    server: TestServer,
) -> None:
    requests.get(server.get_url("/plain"), timeout=10)
    request = server.wait_request()
    assert (request.proxied, request.tunnel) == (False, None)
    assert request.host == f"127.0.0.1:{server.port}"
    server.assert_request().has_host("127.0.0.1").has_host(f"127.0.0.1:{server.port}")


def test_a_request_without_a_host_header_has_an_empty_host(server: TestServer) -> None:
    _raw(server.port, b"GET /old HTTP/1.0\r\n\r\n")
    request = server.wait_request()
    assert request.host == ""
    assert request.url == "http://127.0.0.1/old"  # the URL falls back as before


# -- every client, plain and through a CONNECT tunnel, in thread and subprocess mode --------


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("client", PROXY_CLIENTS)
def test_every_client_reaches_host_rules_through_the_proxy(
    mode: str, client: str, scheme: str
) -> None:
    if client == "curl" and CURL is None:
        pytest.fail("curl is not installed (apt-get install curl)")
    with TestServer(mode=mode, proxy=True) as srv:
        rule = _answer_rule(srv)
        status, body = via_proxy(client, f"{scheme}://{HOST}/v1?x=1", srv.proxy_url, ca=srv.ca_path)
        assert (status, body) == (200, b"via-rule")
        request = srv.wait_request()
        assert [r.rule for r in srv.exchanges] == [rule]
    assert (request.method, request.path, request.query_string) == ("GET", "/v1", "x=1")
    assert request.host in (HOST, f"{HOST}:{443 if scheme == 'https' else 80}")
    assert (request.scheme, request.proxied) == (scheme, True)
    if scheme == "https":
        assert request.tunnel == f"{HOST}:443"
        assert request.url == f"https://{request.host}/v1?x=1"
        assert request.tls is not None
        assert request.tls.sni == HOST
        assert srv.connections[request.connection].tls == request.tls
    else:
        assert request.tunnel is None
        assert request.url == f"http://{HOST}/v1?x=1"


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_inline_mode_serves_the_proxy_on_the_callers_loop(scheme: str) -> None:
    async def main() -> list[Request]:
        srv = InlineTestServer(proxy=True).start()
        try:
            _answer_rule(srv)
            context = srv.client_ssl_context()
            async with aiohttp.ClientSession(trust_env=False) as session:
                url = f"{scheme}://{HOST}/aio"
                async with session.get(url, proxy=srv.proxy_url, ssl=context) as reply:
                    assert (reply.status, await reply.read()) == (200, b"via-rule")
            async with httpx.AsyncClient(proxy=srv.proxy_url, verify=context) as client:
                reply = await client.get(f"{scheme}://{HOST}/httpx")
                assert reply.content == b"via-rule"
            return srv.history
        finally:
            srv.stop()

    history = asyncio.run(main())
    assert [(r.path, r.host.split(":")[0], r.scheme, r.proxied) for r in history] == [
        ("/aio", HOST, scheme, True),
        ("/httpx", HOST, scheme, True),
    ]


def test_plain_http_inside_a_tunnel_is_served(mode: str) -> None:
    if CURL is None:
        pytest.fail("curl is not installed (apt-get install curl)")
    with TestServer(mode=mode, proxy=True) as srv:
        _answer_rule(srv)
        # -p: curl opens a CONNECT tunnel even for http://
        assert curl(f"http://{HOST}:8080/plain", srv.proxy_url, "-p") == (200, b"via-rule")
        request = srv.wait_request()
    assert (request.scheme, request.tunnel) == ("http", f"{HOST}:8080")
    assert request.host == f"{HOST}:8080"
    assert (request.proxied, request.tls) == (True, None)
    assert request.url == f"http://{HOST}:8080/plain"


def test_requests_on_one_tunnel_share_its_connection(mode: str) -> None:
    with TestServer(mode=mode, proxy=True) as srv:
        _answer_rule(srv)
        with httpx.Client(proxy=srv.proxy_url, verify=srv.client_ssl_context()) as client:
            for path in ("/one", "/two", "/three"):
                assert client.get(f"https://{HOST}{path}").content == b"via-rule"
        history = srv.history
        connections = srv.connections
    assert [(r.connection, r.exchange) for r in history] == [(0, 0), (0, 1), (0, 2)]
    assert len(connections) == 1
    assert connections[0].requests == 3
    assert connections[0].tls is not None
    assert connections[0].tls.version.startswith("TLS")


def test_no_proxy_sends_listed_hosts_direct(mode: str) -> None:
    with TestServer(mode=mode, proxy=True) as srv:
        _answer_rule(srv)
        with (
            proxy_environment(http_proxy=srv.proxy_url, no_proxy="127.0.0.1"),
            requests.Session() as session,  # trust_env: the variables decide
        ):
            assert session.get(f"http://{HOST}/proxied", timeout=10).content == b"via-rule"
            assert session.get(srv.get_url("/direct"), timeout=10).status_code == 200
        first, second = srv.history
    assert (first.path, first.proxied, first.host) == ("/proxied", True, HOST)
    assert (second.path, second.proxied) == ("/direct", False)
    assert second.raw_head.startswith(b"GET /direct HTTP/1.1\r\n")  # origin form: not proxied


# -- the tunnel: TLS, early bytes, faults, closing -------------------------------------------


def test_a_client_hello_in_the_packet_of_the_connect_head_is_served(mode: str) -> None:
    """One ``sendall`` carries the CONNECT head and the ClientHello (Tornado's start_tls
    would refuse the buffered bytes; the relay forwards them first)."""
    with TestServer(mode=mode, proxy=True) as srv:
        _answer_rule(srv)
        context = srv.client_ssl_context()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname=HOST)
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        assert hello[:1] == b"\x16"  # a TLS handshake record
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"CONNECT api.example.test:443 HTTP/1.1\r\nHost: x\r\n\r\n" + hello)
            reply = read_past(sock, b"\r\n\r\n")  # the ServerHello may come in the same read
            head, _, rest = reply.partition(b"\r\n\r\n")
            assert head == b"HTTP/1.1 200 Connection established"
            incoming.write(rest)
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    sock.sendall(outgoing.read())
                    incoming.write(sock.recv(65536))
            tls.write(b"GET /early HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n")
            sock.sendall(outgoing.read())
            answer = b""
            while b"via-rule" not in answer:
                data = sock.recv(65536)
                assert data, f"closed early: {answer!r}"
                incoming.write(data)
                try:
                    answer += tls.read(65536)
                except ssl.SSLWantReadError:
                    continue
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        request = srv.wait_request()
    assert (request.path, request.scheme, request.tunnel) == ("/early", "https", f"{HOST}:443")


def test_each_tunnel_host_gets_its_own_certificate_from_the_ca(mode: str) -> None:
    with TestServer(mode=mode, proxy=True) as srv:
        _answer_rule(srv)
        srv.add_response(Response(b"other"), host="other.example.test", count=None)
        with httpx.Client(proxy=srv.proxy_url, verify=srv.client_ssl_context()) as client:
            assert client.get(f"https://{HOST}/").content == b"via-rule"
            assert client.get("https://other.example.test:8443/").content == b"other"
            assert client.get("https://10.1.2.3/").status_code == 200  # an IP address
        hosts = [(r.host, r.tunnel, r.tls.sni if r.tls else None) for r in srv.history]
    assert hosts == [
        (HOST, f"{HOST}:443", HOST),
        ("other.example.test:8443", "other.example.test:8443", "other.example.test"),
        ("10.1.2.3", "10.1.2.3:443", None),  # no SNI for an IP address
    ]


def test_tunnel_certificates_are_made_once_per_host() -> None:
    with TestServer(proxy=True) as srv:
        assert srv.ca_path is not None
        ca_pem = Path(srv.ca_path).read_bytes()
    ca = trustme.CA()
    certs = TunnelCerts(ca.cert_pem.bytes(), ca.private_key_pem.bytes())
    first = certs.context_for("API.example.test")
    assert certs.context_for("api.example.test") is first
    assert certs.context_for("other.test") is not first
    assert ca_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(ValueError, match="no certificate can be issued"):
        certs.context_for("bad name with spaces\x00")


def test_a_reset_fault_inside_a_tunnel_resets_the_clients_connection(mode: str) -> None:
    with TestServer(mode=mode, proxy=True) as srv:
        srv.add_response(Response(fault="reset"), host=HOST)
        with (
            httpx.Client(proxy=srv.proxy_url, verify=srv.client_ssl_context()) as client,
            pytest.raises(httpx.TransportError),
        ):
            client.get(f"https://{HOST}/reset")
        assert srv.wait_request().tunnel == f"{HOST}:443"


def test_close_connections_closes_an_idle_tunnel(mode: str) -> None:
    with TestServer(mode=mode, proxy=True) as srv:
        _answer_rule(srv)
        with httpx.Client(proxy=srv.proxy_url, verify=srv.client_ssl_context()) as client:
            assert client.get(f"https://{HOST}/a").content == b"via-rule"
            assert srv.close_connections() == 1
            assert client.get(f"https://{HOST}/b").content == b"via-rule"  # a new tunnel
        assert [r.connection for r in srv.history] == [0, 1]
        first = srv.connections[0]
    assert first.closed_at is not None


def test_close_after_inside_a_tunnel_closes_the_tunnel_after_the_answer(mode: str) -> None:
    with TestServer(mode=mode, proxy=True) as srv:
        srv.add_response(Response(b"last", fault="close_after"), host=HOST)
        _answer_rule(srv)
        with httpx.Client(proxy=srv.proxy_url, verify=srv.client_ssl_context()) as client:
            assert client.get(f"https://{HOST}/1").content == b"last"
            assert client.get(f"https://{HOST}/2").content == b"via-rule"
        assert [r.connection for r in srv.history] == [0, 1]


def test_client_certificates_are_asked_for_inside_tunnels(mode: str) -> None:
    with TestServer(mode=mode, proxy=True, client_cert="required") as srv:
        _answer_rule(srv)
        assert srv.client_cert_path is not None
        proxies = {"https": srv.proxy_url}
        reply = requests.get(
            f"https://{HOST}/me", proxies=proxies, verify=srv.ca_path, cert=srv.client_cert_path
        )
        assert reply.content == b"via-rule"
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(f"https://{HOST}/anon", proxies=proxies, verify=srv.ca_path, timeout=10)
        request = srv.wait_request()
        failed = srv.connections[-1]
    assert request.tls is not None
    assert request.tls.client_cert is not None
    assert len(srv.history) == 1  # the client without a certificate never got to ask
    assert failed.error is not None
    assert "handshake" in failed.error


def test_a_connect_is_not_a_request_of_the_history(mode: str) -> None:
    with TestServer(mode=mode, proxy=True) as srv:
        _answer_rule(srv)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"CONNECT api.example.test:80 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_until(sock, b"\r\n\r\n") == b"HTTP/1.1 200 Connection established\r\n\r\n"
            sock.sendall(b"GET /in HTTP/1.0\r\n\r\n")  # no Host header: the tunnel's host
            assert read_until(sock, b"via-rule").startswith(b"HTTP/1.1 200 OK\r\n")
        request = srv.wait_request()
        assert srv.request_count == 1
    assert (request.method, request.host, request.exchange) == ("GET", f"{HOST}:80", 0)
    assert request.url == f"http://{HOST}:80/in"


@pytest.mark.parametrize("target", [b"api.example.test", b"api.example.test:0", b"/path", b":443"])
def test_a_connect_to_no_host_and_port_gets_400(mode: str, target: bytes) -> None:
    with TestServer(mode=mode, proxy=True) as srv:
        reply = _raw(srv.port, b"CONNECT " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert srv.wait_request().method == "CONNECT"
        assert srv.exchanges[0].status == 400


def test_without_proxy_a_connect_is_an_ordinary_request(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(b"no tunnels here", status=405), method="CONNECT")
        reply = _raw(srv.port, b"CONNECT api.example.test:443 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
        request = srv.wait_request()
    assert (request.method, request.path) == ("CONNECT", "api.example.test:443")
    assert request.proxied is False


def test_stop_closes_open_tunnels_and_leaks_nothing(mode: str) -> None:
    srv = TestServer(mode=mode, proxy=True).start()
    try:
        srv.add_response(Response(hold=True), host=HOST)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(
                b"CONNECT api.example.test:80 HTTP/1.1\r\nHost: h\r\n\r\n"
                b"GET /held HTTP/1.1\r\nHost: api.example.test\r\n\r\n"
            )
            assert read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 200 Connection")
            srv.wait_held()
            srv.stop()
            sock.settimeout(10)
            assert sock.recv(100) == b""  # the client's connection closed
    finally:
        srv.stop()


# -- proxy_auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_auth_answers_407_then_lets_the_credentials_through(mode: str, scheme: str) -> None:
    if CURL is None:
        pytest.fail("curl is not installed (apt-get install curl)")
    with TestServer(mode=mode, proxy=True, proxy_auth=AUTH) as srv:
        _answer_rule(srv)
        url = f"{scheme}://{HOST}/secret"
        # --proxy-anyauth: curl asks without credentials, reads the 407, retries with them
        assert curl(url, srv.proxy_url, "--proxy-anyauth", ca=srv.ca_path, auth=AUTH) == (
            200,
            b"via-rule",
        )
        refused, *served = srv.history
        statuses = [e.status for e in srv.exchanges]
    method = "CONNECT" if scheme == "https" else "GET"
    assert (refused.method, "Proxy-Authorization" in refused.headers) == (method, False)
    assert statuses == [407, 200]
    assert [r.path for r in served] == ["/secret"]
    token = base64.b64encode(b"alice:s3cret").decode()
    if scheme == "http":  # the retry is a recorded request; a CONNECT's is not
        assert served[0].headers["Proxy-Authorization"] == f"Basic {token}"


@pytest.mark.parametrize("client", ["requests", "httpx", "aiohttp", "urllib3", "pycurl", "urllib"])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_clients_present_proxy_credentials(client: str, scheme: str) -> None:
    with TestServer(proxy=True, proxy_auth=AUTH) as srv:
        _answer_rule(srv)
        url = f"{scheme}://{HOST}/x"
        assert via_proxy(client, url, srv.proxy_url, ca=srv.ca_path, auth=AUTH) == (
            200,
            b"via-rule",
        )
        assert [e.status for e in srv.exchanges] == [200]


@pytest.mark.parametrize("credentials", [None, ("alice", "wrong"), ("bob", "s3cret")])
def test_missing_or_wrong_proxy_credentials_get_407(
    mode: str, credentials: tuple[str, str] | None
) -> None:
    with TestServer(mode=mode, proxy=True, proxy_auth=AUTH) as srv:
        _answer_rule(srv)
        status, body = via_proxy("requests", f"http://{HOST}/x", srv.proxy_url, auth=credentials)
        assert (status, body) == (407, b"tserver: proxy authentication required\n")
        reply = _raw(srv.port, b"GET http://api.example.test/raw HTTP/1.1\r\nHost: h\r\n\r\n")
        assert b'\r\nProxy-Authenticate: Basic realm="tserver"\r\n' in reply
        with pytest.raises(requests.exceptions.ProxyError):
            via_proxy(
                "requests", f"https://{HOST}/x", srv.proxy_url, ca=srv.ca_path, auth=credentials
            )
        assert [
            (r.method, e.status, e.rule) for r, e in zip(srv.history, srv.exchanges, strict=True)
        ] == [
            ("GET", 407, None),
            ("GET", 407, None),
            ("CONNECT", 407, None),
        ]


def test_proxy_auth_leaves_origin_form_requests_alone(server: TestServer) -> None:
    with TestServer(proxy=True, proxy_auth=AUTH) as srv:
        assert requests.get(srv.get_url("/direct"), timeout=10).status_code == 200


def test_a_407_is_no_error_of_a_strict_server() -> None:
    with TestServer(proxy=True, proxy_auth=AUTH, strict=True) as srv:
        _answer_rule(srv)
        assert via_proxy("requests", f"http://{HOST}/x", srv.proxy_url)[0] == 407
    srv.check()  # nothing unexpected: the proxy answered, not a missing rule


def test_a_proxied_upload_is_recorded_whole_even_when_refused() -> None:
    with TestServer(proxy=True, proxy_auth=AUTH) as srv:
        body = b"x" * 100_000
        reply = requests.post(
            f"http://{HOST}/up", data=body, proxies={"http": srv.proxy_url}, timeout=10
        )
        assert reply.status_code == 407
        assert srv.wait_request().data == body


# -- host rules and the matcher ------------------------------------------------------------------


def test_host_rules_select_by_name_port_pattern_and_matcher(mode: str) -> None:
    with TestServer(mode=mode, proxy=True) as srv:
        srv.add_response(Response(b"port"), host="api.example.test:8443", count=None)
        srv.add_response(Response(b"name"), host="API.EXAMPLE.TEST", count=None)
        internal = re.compile(r"[a-z]+\.internal(:\d+)?")
        srv.add_response(Response(b"regex"), host=internal, count=None)
        srv.add_response(Response(b"matcher"), host=ends_with(".example.org"), count=None)
        srv.set_response("data", b"default")
        proxies = {"http": srv.proxy_url}

        def get(url: str) -> bytes:
            return requests.get(url, proxies=proxies, timeout=10).content

        assert get("http://api.example.test:8443/") == b"port"
        assert get("http://api.example.test:9000/") == b"name"  # any port
        assert get("http://api.example.test/") == b"name"
        assert get("http://db.internal:5432/") == b"regex"
        assert get("http://www.example.org/") == b"matcher"
        assert get("http://elsewhere.test/") == b"default"
        assert srv.served(0)[0].host == "api.example.test:8443"


def test_has_host_compares_without_case_and_port() -> None:
    request = Request("GET", "/", host="API.example.test:8080")
    assert has_host("api.example.test").matches(request)
    assert has_host("api.example.test:8080").matches(request)
    assert not has_host("api.example.test:80").matches(request)
    assert not has_host("example.test").matches(request)
    assert has_host(starts_with("API.")).matches(request)  # a matcher sees it as written
    v6 = Request("GET", "/", host="[::1]:8080")
    assert has_host("::1").matches(v6)
    assert has_host("[::1]:8080").matches(v6)
    assert not has_host("[::1]:80").matches(v6)


def test_the_host_selector_appears_in_strict_mismatches() -> None:
    with TestServer(strict=True, proxy=True) as srv:
        srv.add_response(Response(b"x"), host=HOST)
        reply = requests.get("http://other.test/", proxies={"http": srv.proxy_url}, timeout=10)
        assert reply.status_code == 500
        assert "host 'api.example.test'" in reply.text
        assert "host was 'other.test'" in reply.text
        with pytest.raises(AssertionError, match=r"host was 'other\.test'"):
            srv.check()
        srv.reset()


@pytest.mark.parametrize(
    ("host", "error", "words"),
    [
        (42, TypeError, "must be a str"),
        ("", ValueError, "host name or address"),
        ("http://api.example.test/", ValueError, "not a URL"),
    ],
)
def test_bad_host_selectors_are_refused(host: object, error: type[Exception], words: str) -> None:
    srv = TestServer()
    with pytest.raises(error, match=words):
        srv.add_response(Response(), host=host)


# -- arguments, URLs and the CA -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"proxy": 1}, TypeError, "proxy 1 must be True or False"),
        ({"proxy": True, "proxy_auth": "alice:pw"}, TypeError, r"\(user, password\) tuple"),
        ({"proxy": True, "proxy_auth": ("a:b", "pw")}, ValueError, "hold no ':'"),
        ({"proxy_auth": ("alice", "pw")}, ValueError, "proxy_auth needs proxy=True"),
        ({"client_cert": "optional"}, ValueError, "needs ssl=True or proxy=True"),
    ],
)
def test_bad_proxy_arguments_are_refused(
    kwargs: dict[str, object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        TestServer(**kwargs)  # type: ignore[arg-type]


def test_proxy_url_is_the_servers_own_address() -> None:
    with TestServer(proxy=True) as srv:
        assert srv.proxy_url == f"http://127.0.0.1:{srv.port}"
    with TestServer(address="::1", proxy=True, ssl=True) as srv:
        assert srv.proxy_url == f"https://[::1]:{srv.port}"


def test_proxy_true_makes_a_ca_whose_files_go_at_stop(mode: str) -> None:
    srv = TestServer(mode=mode, proxy=True).start()
    try:
        assert srv.url.startswith("http://")  # the server itself speaks plain HTTP
        assert srv.ca_path is not None
        assert Path(srv.ca_path).is_file()
        ca_path = srv.ca_path
        assert isinstance(srv.client_ssl_context(), ssl.SSLContext)
    finally:
        srv.stop()
    assert not Path(ca_path).exists()
    with pytest.raises(ServerStateError, match="ssl=True or proxy=True"):
        srv.client_ssl_context()


def test_an_https_proxy_serves_tunnels_inside_its_own_tls(mode: str) -> None:
    if CURL is None:
        pytest.fail("curl is not installed (apt-get install curl)")
    with TestServer(mode=mode, proxy=True, ssl=True) as srv:
        _answer_rule(srv)
        assert srv.ca_path is not None
        status, body = curl(
            f"https://{HOST}/in-tls", srv.proxy_url, "--proxy-cacert", srv.ca_path, ca=srv.ca_path
        )
        assert (status, body) == (200, b"via-rule")
        request = srv.wait_request()
    assert (request.scheme, request.tunnel) == ("https", f"{HOST}:443")


# -- nothing ever leaves loopback -----------------------------------------------------------------

GUARD = textwrap.dedent(
    '''
    """Installed by sitecustomize: any connect or name lookup off loopback fails loudly."""
    import sys

    LOOPBACK = {"127.0.0.1", "::1", "localhost", None}

    def guard(event, args):
        if event == "socket.connect":
            address = args[1]
            if isinstance(address, tuple) and address[0] not in LOOPBACK:
                raise OSError(f"outbound connect forbidden: {address!r}")
        elif event == "socket.getaddrinfo":
            if args[0] not in LOOPBACK and args[0] not in (b"127.0.0.1",):
                raise OSError(f"name lookup forbidden: {args[0]!r}")
        elif event in ("socket.gethostbyname", "socket.gethostbyaddr"):
            if args[0] not in LOOPBACK:
                raise OSError(f"name lookup forbidden: {args[0]!r}")

    sys.addaudithook(guard)
    '''
)

SCRIPT = textwrap.dedent(
    """
    import sys
    import httpx, requests, urllib.request
    from tserver import Response, TestServer

    for mode in ("thread", "subprocess"):
        with TestServer(mode=mode, proxy=True) as srv:
            srv.add_response(Response(b"ok"), host="api.example.test", count=None)
            proxies = {"http": srv.proxy_url, "https": srv.proxy_url}
            for url in ("http://api.example.test/a", "https://api.example.test/b"):
                assert requests.get(url, proxies=proxies, verify=srv.ca_path).content == b"ok"
                with httpx.Client(proxy=srv.proxy_url, verify=srv.client_ssl_context()) as c:
                    assert c.get(url).content == b"ok"
            assert len(srv.history) == 4
        try:
            urllib.request.urlopen("http://192.0.2.1/", timeout=1)
        except OSError as exc:
            assert "forbidden" in str(exc), exc
        else:
            raise AssertionError("the guard let a connect through")
    print("loopback only")
    """
)


def test_nothing_ever_connects_or_resolves_off_loopback(tmp_path: Path) -> None:
    """Run clients and servers (thread and subprocess mode) where any Python-level
    connect or name lookup off loopback raises: the guard is a ``sitecustomize``
    audit hook, so the subprocess-mode child is guarded as well."""
    (tmp_path / "sitecustomize.py").write_text(GUARD, encoding="utf-8")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "NO_PROXY": "", "no_proxy": ""}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loopback only"


def test_the_har_log_shows_proxied_requests_by_the_url_the_client_asked_for(mode: str) -> None:
    with TestServer(mode=mode, proxy=True) as srv:
        _answer_rule(srv)
        proxies = {"http": srv.proxy_url, "https": srv.proxy_url}
        for url in (f"http://{HOST}/plain?x=1", f"https://{HOST}/tunnel"):
            assert requests.get(url, proxies=proxies, verify=srv.ca_path, timeout=10).ok
        entries = srv.to_har()["log"]["entries"]
    assert [e["request"]["url"] for e in entries] == [
        f"http://{HOST}/plain?x=1",
        f"https://{HOST}/tunnel",
    ]
    assert [e["response"]["status"] for e in entries] == [200, 200]


def test_an_ipv6_client_opens_a_tunnel_to_an_ipv6_host() -> None:
    with TestServer(address="::1", proxy=True) as srv:
        srv.add_response(Response(b"v6"), host="::1")
        # requests writes the CONNECT target with brackets ([::1]:8443), as RFC 9112
        # wants; httpx 0.28 writes ::1:8443, which gets a 400
        reply = requests.get(
            "https://[::1]:8443/six", proxies={"https": srv.proxy_url}, verify=srv.ca_path
        )
        assert reply.content == b"v6"
        request = srv.wait_request()
    assert (request.tunnel, request.host, request.client_ip) == ("[::1]:8443", "[::1]:8443", "::1")


# -- found in review: each a regression test -------------------------------------------------


def test_proxy_auth_comes_before_rules_that_decide_on_the_head() -> None:
    with TestServer(proxy=True, proxy_auth=AUTH) as srv:
        srv.add_response(Response(b"SECRET", violation="response-before-request-body"))
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(
                b"POST http://api.example.test/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                b"Connection: close\r\n\r\nhello"
            )
            answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 407 ")
        assert b"SECRET" not in answer


@pytest.mark.parametrize(
    ("auth", "sent", "status"),
    [(("u", "p"), "ü:x", 407), (("jürgen", "pässword"), "jürgen:pässword", 200)],
)
def test_proxy_credentials_outside_ascii(auth: tuple[str, str], sent: str, status: int) -> None:
    with TestServer(proxy=True, proxy_auth=auth) as srv:
        token = base64.b64encode(sent.encode()).decode()
        reply = _raw(
            srv.port,
            b"GET http://api.example.test/ HTTP/1.1\r\nHost: h\r\n"
            + f"Proxy-Authorization: Basic {token}\r\n\r\n".encode(),
        )
        assert reply.startswith(f"HTTP/1.1 {status} ".encode())
    srv.check()  # no server error


def test_any_scheme_is_an_absolute_form_target_and_needs_the_credentials() -> None:
    with TestServer(proxy=True, proxy_auth=AUTH) as srv:
        reply = _raw(srv.port, b"GET ftp://files.example.test/a.txt HTTP/1.1\r\nHost: h\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 407 ")
        request = srv.wait_request()
    assert (request.path, request.host, request.proxied) == ("/a.txt", "files.example.test", True)
    assert request.url == "ftp://files.example.test/a.txt"


def test_close_connections_leaves_a_tunnel_whose_request_is_on_its_way() -> None:
    with TestServer(proxy=True) as srv:
        _answer_rule(srv)
        lost = 0
        for _ in range(30):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
                sock.sendall(b"CONNECT api.example.test:80 HTTP/1.1\r\nHost: h\r\n\r\n")
                read_until(sock, b"\r\n\r\n")
                sock.sendall(b"GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
                srv.close_connections()
                answer = b""
                while b"via-rule" not in answer and (chunk := sock.recv(65536)):
                    answer += chunk
                lost += b"via-rule" not in answer
    assert lost == 0


def test_a_tunnel_never_used_is_closed_and_close_connections_closes_an_idle_one() -> None:
    with TestServer(proxy=True) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as idle:
            idle.sendall(b"CONNECT api.example.test:443 HTTP/1.1\r\nHost: h\r\n\r\n")
            read_until(idle, b"\r\n\r\n")
            assert srv.close_connections() == 1
            assert idle.recv(100) == b""
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"CONNECT api.example.test:443 HTTP/1.1\r\nHost: h\r\n\r\n")
            read_until(sock, b"\r\n\r\n")
        srv.stop()
        assert len(srv.connections) == 2
        assert all(c.closed_at is not None for c in srv.connections)
