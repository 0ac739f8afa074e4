"""Connections, exchanges and the request head (SPEC §9), in every mode, with real clients."""

from __future__ import annotations

import asyncio
import http.client
import pickle
import socket
import ssl
import subprocess
from collections.abc import Callable

import aiohttp
import httpx
import pytest
import requests
import urllib3
from hamcrest import greater_than

from tserver import Connection, Response, TestServer, TLSInfo
from tserver.matchers import on_connection, reused_connection

FIVE = 5


def _requests_session(url: str, headers: dict[str, str]) -> list[int]:
    with requests.Session() as session:
        session.trust_env = False
        return [session.get(url, headers=headers, timeout=10).status_code for _ in range(FIVE)]


def _httpx_client(url: str, headers: dict[str, str]) -> list[int]:
    with httpx.Client(timeout=10, trust_env=False) as client:
        return [client.get(url, headers=headers).status_code for _ in range(FIVE)]


def _urllib3_pool(url: str, headers: dict[str, str]) -> list[int]:
    with urllib3.PoolManager(maxsize=1) as pool:
        return [
            pool.request("GET", url, headers=headers, retries=False).status for _ in range(FIVE)
        ]


def _aiohttp_session(url: str, headers: dict[str, str]) -> list[int]:
    async def main() -> list[int]:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            statuses = []
            for _ in range(FIVE):
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    statuses.append(response.status)
            return statuses

    return asyncio.run(main())


POOLED: dict[str, Callable[[str, dict[str, str]], list[int]]] = {
    "requests": _requests_session,
    "httpx": _httpx_client,
    "urllib3": _urllib3_pool,
    "aiohttp": _aiohttp_session,
}


@pytest.mark.parametrize("client", sorted(POOLED))
def test_a_pooled_client_sends_five_requests_on_one_connection(
    server: TestServer, client: str
) -> None:
    assert POOLED[client](server.get_url("/pooled"), {}) == [200] * FIVE
    history = server.history
    assert [(r.connection, r.exchange) for r in history] == [(0, n) for n in range(FIVE)]
    server.assert_history().used_connections(1)
    server.assert_request(-1).on_connection(0).reused_connection()
    [conn] = server.connections
    assert isinstance(conn, Connection)
    assert (conn.index, conn.requests, conn.client_ip) == (0, FIVE, "127.0.0.1")
    assert conn.client_port == history[0].client_port
    assert conn.protocol == "HTTP/1.1"
    assert conn.tls is None


@pytest.mark.parametrize("client", sorted(POOLED))
def test_connection_close_makes_five_connections(server: TestServer, client: str) -> None:
    assert POOLED[client](server.get_url("/closing"), {"Connection": "close"}) == [200] * FIVE
    assert [(r.connection, r.exchange) for r in server.history] == [(n, 0) for n in range(FIVE)]
    server.assert_history().used_connections(FIVE)
    with pytest.raises(AssertionError, match=r"they came on 5 connections \(connection 0: "):
        server.assert_history().used_connections(1)
    assert [c.requests for c in server.connections] == [1] * FIVE
    server.assert_request(-1).on_connection(greater_than(3))
    with pytest.raises(AssertionError, match="exchange on its connection was <0>"):
        server.assert_request(-1).reused_connection()


def test_a_connection_that_sends_nothing_is_listed(server: TestServer) -> None:
    with socket.create_connection((server.address, server.port), timeout=10):
        # accepted before the next connection, whose request we wait for
        requests.get(server.get_url("/after"), timeout=10)
        server.wait_request()
        idle, used = server.connections
    assert (idle.index, idle.requests) == (0, 0)
    assert (used.index, used.requests) == (1, 1)
    assert server.request.connection == 1


def test_close_connections_closes_idle_pooled_connections(server: TestServer) -> None:
    with requests.Session() as session:
        session.trust_env = False
        assert session.get(server.get_url("/a"), timeout=10).status_code == 200
        assert server.close_connections() == 1
        # the pool finds its connection gone and opens another
        assert session.get(server.get_url("/b"), timeout=10).status_code == 200
    assert [(r.path, r.connection) for r in server.history] == [("/a", 0), ("/b", 1)]
    assert server.connections[0].closed_at is not None


def test_close_after_answers_whole_then_drops_the_connection(server: TestServer) -> None:
    server.add_response(Response(b"last", fault="close_after"))
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):  # the server closes: recv returns b""
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" not in head  # a normal keep-alive answer
    assert body == b"last"
    [exchange] = server.exchanges
    assert (exchange.status, exchange.completed, exchange.rule) == (200, True, 0)


@pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="the FIN rides the tail on Linux")
@pytest.mark.parametrize("size", [4, 1_000_000])
def test_close_after_sends_the_fin_with_the_last_bytes(server: TestServer, size: int) -> None:
    body = b"x" * size
    server.add_response(Response(body, fault="close_after"))
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while not data.endswith(body):  # exactly the response: the test reads no further
            data += sock.recv(65536)
        sock.setblocking(False)
        # the end of the stream is there already: never a moment when the
        # client holds the whole answer on a connection that looks open
        assert sock.recv(1) == b""


def test_exchanges_say_what_answered_each_request(server: TestServer) -> None:
    rule = server.add_response(Response(status=503), count=2, path="/retry")
    other = server.add_response(Response(fault="close"), path="/fault")
    for _ in range(3):
        requests.get(server.get_url("/retry"), timeout=10)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.get_url("/fault"), timeout=10)
    exchanges = server.exchanges
    assert [(e.request.path, e.rule, e.status) for e in exchanges] == [
        ("/retry", rule, 503),
        ("/retry", rule, 503),
        ("/retry", None, 200),
        ("/fault", other, None),
    ]
    assert [e.request for e in exchanges] == server.history
    assert exchanges[0].completed
    assert not exchanges[-1].completed  # a fault wrote no response
    assert [r.path for r in server.served(rule)] == ["/retry", "/retry"]
    assert server.served(other)[0].path == "/fault"
    assert server.served(99) == []
    with pytest.raises(AssertionError, match=r"#2  GET /retry  -> 200"):
        server.assert_history().has_length(2)


def test_every_failure_dump_shows_what_each_request_got(server: TestServer) -> None:
    server.add_response(Response(status=503), count=1, path="/retry")
    server.add_response(Response(fault="close"), path="/fault")
    requests.get(server.get_url("/retry"), timeout=10)
    requests.get(server.get_url("/retry"), timeout=10)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.get_url("/fault"), timeout=10)
    expected = [r"#0  GET /retry  -> 503", r"#1  GET /retry  -> 200", "-> no status line"]
    failures = [
        lambda: server.assert_request(0).has_path("/elsewhere"),  # a field mismatch
        lambda: server.assert_request(7),  # no request at that index
        lambda: server.get_request(index=7),
        server.assert_no_requests,
        lambda: server.assert_history().has_length(1),
    ]
    for fail in failures:
        with pytest.raises(AssertionError) as raised:
            fail()
        text = str(raised.value)
        for line in expected:
            assert line in text, text


def test_the_head_as_received(server: TestServer) -> None:
    head = b"GET /raw?q=1 HTTP/1.1\r\nhost: t\r\nX-CaSe: One\r\nx-case: two\r\n\r\n"
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    request = server.wait_request()
    assert request.raw_head == head
    assert request.raw_headers == (("host", "t"), ("X-CaSe", "One"), ("x-case", "two"))
    assert request.headers.getlist("X-Case") == ["One", "two"]
    assert request.chunk_sizes is None


def test_chunk_sizes_as_the_client_framed_them(server: TestServer) -> None:
    conn = http.client.HTTPConnection(server.address, server.port, timeout=10)
    try:
        conn.request("PUT", "/up", body=iter([b"abc", b"", b"defgh", b"ij"]), encode_chunked=True)
        assert conn.getresponse().read() == b""
    finally:
        conn.close()
    request = server.wait_request()
    assert request.chunk_sizes == (3, 5, 2)  # http.client skips the empty one
    assert request.data == b"abcdefghij"


def test_a_second_request_on_a_connection_resets_its_chunks(server: TestServer) -> None:
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\ncd")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        # chunked, with the last chunk alone: no sizes, but not None
        sock.sendall(b"POST /3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    first, second, third = server.wait_requests(3)
    assert (first.chunk_sizes, second.chunk_sizes, third.chunk_sizes) == ((2,), None, ())
    assert (second.connection, second.exchange, third.exchange) == (0, 1, 2)


def test_reset_numbers_open_connections_anew(server: TestServer) -> None:
    with requests.Session() as session:
        session.trust_env = False
        requests.get(server.get_url("/gone"), timeout=10)  # its own connection, closed
        session.get(server.get_url("/kept"), timeout=10)
        server.reset()
        session.get(server.get_url("/again"), timeout=10)
    (again,) = server.history
    assert (again.connection, again.exchange) == (0, 1)
    assert len(server.connections) == 1


# -- TLS ----------------------------------------------------------------------------------------


def test_tls_facts_of_each_connection(mode: str) -> None:
    with TestServer(mode=mode, ssl=True) as srv:
        context = srv.client_ssl_context()
        context.set_alpn_protocols(["http/1.1"])
        with (
            socket.create_connection((srv.address, srv.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            sock.sendall(b"GET /tls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            while sock.recv(65536):
                pass
        request = srv.wait_request()
        tls = request.tls
        assert isinstance(tls, TLSInfo)
        assert tls.version in ("TLSv1.2", "TLSv1.3")
        assert tls.cipher
        assert (tls.alpn, tls.sni, tls.client_cert) == ("http/1.1", "localhost", None)
        assert srv.connections[0].tls == tls


def test_a_failed_handshake_is_a_connection_with_an_error(mode: str) -> None:
    with TestServer(mode=mode, ssl=True) as srv:
        with socket.create_connection((srv.address, srv.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # plain HTTP on the TLS port
            try:
                while sock.recv(65536):  # until the server closes it (or resets it)
                    pass
            except ConnectionResetError:
                pass
        requests.get(srv.url, verify=srv.ca_path, timeout=10)  # served after it
        failed, good = srv.connections
    assert failed.error is not None
    assert failed.error.startswith("TLS handshake failed:")
    assert (failed.requests, failed.tls) == (0, None)
    assert failed.closed_at is not None
    assert good.error is None
    assert good.requests == 1


@pytest.mark.parametrize("required", [False, True], ids=["optional", "required"])
def test_client_certificates(mode: str, required: bool) -> None:
    with TestServer(mode=mode, ssl=True, client_cert="required" if required else "optional") as srv:
        cert = srv.client_cert_path
        assert cert is not None
        with open(cert, "rb") as pem:
            both = pem.read()
        assert b"BEGIN CERTIFICATE" in both
        assert b"PRIVATE KEY" in both
        answer = requests.get(srv.get_url("/mtls"), verify=srv.ca_path, cert=cert, timeout=10)
        assert answer.status_code == 200
        with httpx.Client(verify=srv.client_ssl_context(), trust_env=False) as client:
            assert client.get(srv.get_url("/httpx")).status_code == 200
        presented = [r.tls.client_cert for r in srv.history if r.tls is not None]
        assert len(presented) == 2
        assert all(c is not None and "subject" in c for c in presented)
        if required:
            with pytest.raises(requests.exceptions.SSLError):
                requests.get(srv.url, verify=srv.ca_path, timeout=10)
            assert srv.connections[-1].error is not None
        else:
            requests.get(srv.get_url("/anonymous"), verify=srv.ca_path, timeout=10)
            assert srv.request.tls is not None
            assert srv.request.tls.client_cert is None
    assert srv.client_cert_path is None  # gone with the server


def test_curl_presents_the_client_certificate() -> None:
    curl = pytest.importorskip("shutil").which("curl")
    if curl is None:
        pytest.skip("curl is not installed (Debian: apt-get install curl; .ci/run installs it)")
    with TestServer(ssl=True, client_cert="required") as srv:
        assert srv.ca_path is not None
        assert srv.client_cert_path is not None
        done = subprocess.run(
            [
                curl,
                "-sS",
                "--noproxy",
                "*",
                "--cacert",
                srv.ca_path,
                "--cert",
                srv.client_cert_path,
                srv.get_url("/curl"),
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert srv.request.tls is not None
        assert srv.request.tls.client_cert is not None


def _aiohttp_with_cert(srv: TestServer) -> int:
    async def main() -> int:
        connector = aiohttp.TCPConnector(ssl=srv.client_ssl_context())
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(srv.get_url("/aiohttp")) as answer,
        ):
            return answer.status

    return asyncio.run(main())


def _urllib3_with_cert(srv: TestServer) -> int:
    with urllib3.PoolManager(ca_certs=srv.ca_path, cert_file=srv.client_cert_path) as pool:
        return pool.request("GET", srv.get_url("/urllib3"), retries=False).status


def _pycurl_with_cert(srv: TestServer) -> int:
    pycurl = pytest.importorskip("pycurl")
    curl = pycurl.Curl()
    try:
        curl.setopt(pycurl.URL, srv.get_url("/pycurl"))
        curl.setopt(pycurl.CAINFO, srv.ca_path)
        curl.setopt(pycurl.SSLCERT, srv.client_cert_path)
        curl.setopt(pycurl.NOPROXY, "*")
        curl.setopt(pycurl.WRITEFUNCTION, lambda data: None)
        curl.perform()
        return int(curl.getinfo(pycurl.RESPONSE_CODE))
    finally:
        curl.close()


@pytest.mark.parametrize(
    "send",
    [_aiohttp_with_cert, _urllib3_with_cert, _pycurl_with_cert],
    ids=["aiohttp", "urllib3", "pycurl"],
)
def test_more_clients_present_the_client_certificate(
    mode: str, send: Callable[[TestServer], int]
) -> None:
    with TestServer(mode=mode, ssl=True, client_cert="required") as srv:
        assert send(srv) == 200
        tls = srv.request.tls
        assert tls is not None
        assert tls.client_cert is not None
        assert dict(pair for rdn in tls.client_cert["subject"] for pair in rdn)


def test_client_cert_needs_ssl_true() -> None:
    with pytest.raises(ValueError, match=r"client_cert='required' needs ssl=True"):
        TestServer(client_cert="required")
    with pytest.raises(ValueError, match="expected None, 'optional' or 'required'"):
        TestServer(ssl=True, client_cert="yes")
    with pytest.raises(ValueError, match="needs ssl=True"):
        TestServer(ssl=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), client_cert="optional")


def test_a_tls_request_in_the_history_matches(mode: str) -> None:
    with TestServer(mode=mode, ssl=True) as srv:
        requests.get(srv.url, verify=srv.ca_path, timeout=10)
        srv.assert_history().used_connections(1).has_item(on_connection(0))
        assert not reused_connection().matches(srv.request)


def test_inline_mode_tracks_connections_too() -> None:
    from tserver._inline import InlineTestServer

    async def main() -> list[tuple[int, int]]:
        srv = InlineTestServer().start()
        try:
            async with httpx.AsyncClient(trust_env=False) as client:
                for _ in range(2):
                    assert (await client.get(srv.get_url("/inline"))).status_code == 200
                srv.assert_history().used_connections(1)
                assert srv.close_connections() == 1  # on the loop's own thread: at once
                assert (await client.get(srv.get_url("/inline"))).status_code == 200
            return [(r.connection, r.exchange) for r in srv.history]
        finally:
            srv.stop()

    assert asyncio.run(main()) == [(0, 0), (0, 1), (1, 0)]


# -- the values and their contract lines ------------------------------------------------------


def test_records_are_frozen_picklable_values(mode: str) -> None:
    with TestServer(mode=mode, ssl=True, client_cert="optional") as srv:
        requests.get(srv.url, verify=srv.ca_path, cert=srv.client_cert_path, timeout=10)
        request = srv.wait_request()
        exchange = srv.exchanges[0]
    connection = srv.connections[0]  # the final state: stop() closed every connection
    assert connection.client_ip == request.client_ip
    assert connection.client_port > 0
    assert connection.opened_at <= request.received_at
    assert connection.closed_at is not None
    assert connection.closed_at >= connection.opened_at
    assert (connection.index, connection.requests, connection.protocol) == (0, 1, "HTTP/1.1")
    tls = connection.tls
    assert tls is not None
    assert tls.client_cert is not None
    for value in (connection, exchange, tls):
        assert pickle.loads(pickle.dumps(value)) == value
    with pytest.raises(AttributeError):
        connection.requests = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        exchange.status = 500  # type: ignore[misc]
    with pytest.raises(AttributeError):
        tls.sni = "x"  # type: ignore[misc]


def test_an_http_1_0_connection_says_so(server: TestServer) -> None:
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        sock.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        while sock.recv(65536):  # HTTP/1.0 without keep-alive: the server closes
            pass
    request = server.wait_request()
    assert request.version == "HTTP/1.0"
    assert server.connections[0].protocol == "HTTP/1.0"


def test_exchanges_follow_the_history_limit_and_the_once_override(mode: str) -> None:
    with TestServer(mode=mode, history_limit=2) as srv:
        rule = srv.add_response(Response(status=201), count=1)
        srv.set_response_once("status", 202)  # taken after the rule: the rule wins first
        with requests.Session() as session:
            session.trust_env = False
            statuses = [session.get(srv.get_url(f"/{n}"), timeout=10).status_code for n in range(3)]
        exchanges = srv.exchanges
        history = srv.history
    assert statuses == [201, 202, 200]
    assert [e.request for e in exchanges] == history
    assert [(e.request.path, e.rule, e.status) for e in exchanges] == [
        ("/1", None, 202),
        ("/2", None, 200),
    ]
    assert rule == 0


def test_used_connections_takes_a_number_or_a_matcher(server: TestServer) -> None:
    for _ in range(3):
        requests.get(server.url, headers={"Connection": "close"}, timeout=10)
    server.assert_history().used_connections(3).used_connections(greater_than(2))
    with pytest.raises(AssertionError, match="connections"):
        server.assert_history().used_connections(1)
    with pytest.raises(AssertionError, match="connections"):
        server.assert_history().used_connections(greater_than(3))


def test_rule_ids_count_from_zero_again_after_reset(server: TestServer) -> None:
    assert [server.add_response(Response(b"x")) for _ in range(2)] == [0, 1]
    server.reset()
    assert server.add_response(Response(b"y")) == 0


def test_connections_and_exchanges_outlive_stop(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    rule = srv.add_response(Response(status=204), count=1)
    with requests.Session() as session:
        session.trust_env = False
        for _ in range(2):
            session.get(srv.url, timeout=10)
    srv.stop()
    (connection,) = srv.connections
    assert (connection.requests, connection.closed_at is not None) == (2, True)
    assert [(e.rule, e.status, e.completed) for e in srv.exchanges] == [
        (rule, 204, True),
        (None, 200, True),
    ]
    assert srv.served(rule) == srv.history[:1]


def test_a_tls_connection_is_listed_when_accepted(mode: str) -> None:
    with TestServer(mode=mode, ssl=True) as srv:
        context = ssl.create_default_context(cafile=srv.ca_path)
        first = socket.create_connection((srv.address, srv.port), timeout=10)  # no handshake yet
        try:
            with (
                socket.create_connection((srv.address, srv.port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as second,
            ):
                second.sendall(b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n")
                assert second.recv(65536).startswith(b"HTTP/1.1 200")
            # accepted first, it is listed first, though its handshake has not begun
            waiting = srv.connections[0]
            assert (waiting.index, waiting.closed_at, waiting.tls) == (0, None, None)
            with context.wrap_socket(first, server_hostname="127.0.0.1") as tls_first:
                tls_first.sendall(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
                assert tls_first.recv(65536).startswith(b"HTTP/1.1 200")
        finally:
            first.close()
        by_path = {r.path: r.connection for r in srv.history}
        assert by_path == {"/first": 0, "/second": 1}  # numbered in the order accepted
        assert srv.connections[0].tls is not None


def test_close_connections_leaves_a_head_that_has_begun(server: TestServer) -> None:
    with (
        socket.create_connection((server.address, server.port), timeout=10) as sock,
        socket.create_connection((server.address, server.port), timeout=10) as idle,
    ):
        sock.sendall(b"GET /p HTTP/1.1\r\nHost: x\r\n")  # the blank line is still to come
        idle.sendall(b"GET /sync HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")  # the partial head is read by now
        assert server.close_connections() == 1  # the idle one, not the one mid-head
        assert idle.recv(65536) == b""
        sock.sendall(b"\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    assert [r.path for r in server.history] == ["/sync", "/p"]


def test_an_answer_to_a_client_that_left_is_not_sent(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    try:
        srv.add_response(Response(b"late", hold=True))
        with socket.create_connection((srv.address, srv.port), timeout=10) as sock:
            sock.sendall(b"GET /gone HTTP/1.1\r\nHost: t\r\n\r\n")
            held = srv.wait_held()
        srv.connections  # noqa: B018 -- after the loop's step: the close is seen
        held.release(Response(b"too late"))  # the client has gone: nothing goes out
        requests.get(srv.get_url("/sync"), timeout=10)
        exchange = srv.exchanges[0]
        assert (exchange.status, exchange.completed) == (None, False)
    finally:
        srv.stop()
