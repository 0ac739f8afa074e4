"""Examples of the page "Connections and TLS" and of its how-tos."""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Callable
from pathlib import Path

import aiohttp
import httpx
import pytest
import requests
import urllib3

from tserver import Response, TestServer


def test_which_connection_each_request_came_on() -> None:
    with TestServer() as srv, requests.Session() as session:
        for path in ("/a", "/b", "/c"):
            session.get(srv.get_url(path), timeout=10)

        assert [(r.connection, r.exchange) for r in srv.history] == [(0, 0), (0, 1), (0, 2)]
        srv.assert_history().used_connections(1)
        srv.assert_request(-1).on_connection(0).reused_connection()
        (conn,) = srv.connections
        assert conn.requests == 3


def test_did_my_client_reuse_its_connection() -> None:
    def fetch_all(base: str) -> list[int]:  # the code under test: one session, kept alive
        with requests.Session() as session:
            return [session.get(f"{base}items/{n}", timeout=10).status_code for n in range(5)]

    with TestServer() as srv:
        assert fetch_all(srv.url) == [200] * 5
        srv.assert_history().has_length(5).used_connections(1)


def test_does_my_client_survive_a_stale_pooled_connection() -> None:
    with TestServer() as srv, requests.Session() as session:
        session.get(srv.get_url("/first"), timeout=10)
        assert srv.close_connections() == 1  # the server "restarts" under the pool

        assert session.get(srv.get_url("/second"), timeout=10).status_code == 200
        srv.assert_request(-1).on_connection(1)  # a new connection, no error


def test_close_after_drops_the_connection_after_a_good_answer() -> None:
    with TestServer() as srv, requests.Session() as session:
        srv.add_response(Response(b"last one", fault="close_after"))
        assert session.get(srv.url, timeout=10).content == b"last one"  # a whole answer

        assert session.get(srv.url, timeout=10).status_code == 200
        srv.assert_request(-1).on_connection(1)  # the pool noticed: a new connection
        assert srv.exchanges[0].completed


def test_the_head_and_the_chunks_as_sent() -> None:
    with TestServer() as srv:
        connection = http.client.HTTPConnection(srv.address, srv.port, timeout=10)
        connection.putrequest("POST", "/upload", skip_accept_encoding=True)
        connection.putheader("X-API-Key", "k1")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders(iter([b"first,", b"second"]), encode_chunked=True)
        connection.getresponse().read()
        connection.close()

        request = srv.request
        assert request.raw_head.startswith(b"POST /upload HTTP/1.1\r\nHost: ")
        assert ("X-API-Key", "k1") in request.raw_headers  # the case as written
        assert request.chunk_sizes == (6, 6)  # the framing; the body is decoded
        assert request.data == b"first,second"


def test_what_answered_each_request() -> None:
    with TestServer() as srv:
        failing = srv.add_response(Response(status=503), count=2)
        for _ in range(3):
            requests.get(srv.get_url("/retry"), timeout=10)

        assert [e.status for e in srv.exchanges] == [503, 503, 200]
        assert len(srv.served(failing)) == 2


def test_tls_facts_and_a_client_certificate() -> None:
    with TestServer(ssl=True, client_cert="required") as srv:
        answer = requests.get(
            srv.get_url("/mtls"), verify=srv.ca_path, cert=srv.client_cert_path, timeout=10
        )
        assert answer.status_code == 200

        tls = srv.request.tls
        assert tls is not None
        assert tls.version in ("TLSv1.2", "TLSv1.3")
        assert tls.alpn == "http/1.1"
        assert tls.client_cert is not None


# -- what clients do with a connection the server closed between requests ------------------

#: What each client does when the server closed its pooled connection between
#: two requests, by method: "new connection" means it noticed and sent the
#: request on a new one; otherwise the error it raised.  The same whether the
#: server closed it with `TestServer.close_connections` or
#: ``Response(fault="close_after")``.  http.client is one `HTTPConnection`
#: used twice: it has no pool, and never checks.
STALE_OUTCOMES = {
    ("requests", "GET"): "new connection",
    ("requests", "POST"): "new connection",
    ("httpx", "GET"): "new connection",
    ("httpx", "POST"): "new connection",
    ("urllib3", "GET"): "new connection",
    ("urllib3", "POST"): "new connection",
    ("aiohttp", "GET"): "new connection",
    ("aiohttp", "POST"): "ServerDisconnectedError",
    ("http.client", "GET"): "RemoteDisconnected",
    ("http.client", "POST"): "BrokenPipeError",
}

Stale = Callable[[TestServer], object]  # makes the pooled connection stale


def _after_first(srv: TestServer) -> None:  # close_after: nothing to do once it has answered
    pass


def _closing_now(srv: TestServer) -> None:
    srv.close_connections()


def _outcome(srv: TestServer, send: Callable[[], int]) -> str:
    try:
        status = send()
    except Exception as exc:
        return type(exc).__name__
    first, last = srv.history[0], srv.history[-1]
    return (
        "new connection" if status == 200 and last.connection != first.connection else f"{status}"
    )


def _requests(srv: TestServer, method: str, stale: Stale) -> str:
    with requests.Session() as session:
        session.trust_env = False
        session.get(srv.url, timeout=10)
        stale(srv)
        return _outcome(srv, lambda: session.request(method, srv.url, timeout=10).status_code)


def _httpx(srv: TestServer, method: str, stale: Stale) -> str:
    with httpx.Client(trust_env=False, timeout=10) as client:
        client.get(srv.url)
        stale(srv)
        return _outcome(srv, lambda: client.request(method, srv.url).status_code)


def _urllib3(srv: TestServer, method: str, stale: Stale) -> str:
    with urllib3.PoolManager(maxsize=1) as pool:
        pool.request("GET", srv.url)
        stale(srv)
        return _outcome(srv, lambda: pool.request(method, srv.url, retries=False).status)


def _aiohttp(srv: TestServer, method: str, stale: Stale) -> str:
    async def main() -> str:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(srv.url) as first:
                await first.read()
            stale(srv)
            try:
                async with session.request(method, srv.url) as second:
                    await second.read()
                    status = second.status
            except Exception as exc:
                return type(exc).__name__
        return _outcome(srv, lambda: status)

    return asyncio.run(main())


def _http_client(srv: TestServer, method: str, stale: Stale) -> str:
    connection = http.client.HTTPConnection(srv.address, srv.port, timeout=10)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        stale(srv)

        def send() -> int:
            connection.request(method, "/", body=b"x" if method == "POST" else None)
            return connection.getresponse().status

        return _outcome(srv, send)
    finally:
        connection.close()


CLIENTS: dict[str, Callable[[TestServer, str, Stale], str]] = {
    "requests": _requests,
    "httpx": _httpx,
    "urllib3": _urllib3,
    "aiohttp": _aiohttp,
    "http.client": _http_client,
}


@pytest.mark.parametrize("mode", ["thread", "subprocess"])
@pytest.mark.parametrize("how", ["close_connections", "close_after"])
@pytest.mark.parametrize(("client", "method"), sorted(STALE_OUTCOMES))
def test_stale_outcomes_are_as_documented(client: str, method: str, how: str, mode: str) -> None:
    with TestServer(mode=mode) as srv:
        if how == "close_after":
            srv.add_response(Response(b"first", fault="close_after"), count=1)
        stale = _after_first if how == "close_after" else _closing_now
        assert CLIENTS[client](srv, method, stale) == STALE_OUTCOMES[(client, method)]


def test_the_howto_table_says_what_the_outcomes_are() -> None:
    howto = Path(__file__).parents[2] / "docs" / "howto.rst"
    section = howto.read_text().split(".. _howto-stale:")[1].split("\nStreaming\n")[0]
    table: dict[tuple[str, str], str] = {}
    for line in section.splitlines():
        name = line[:15].strip()
        if name in CLIENTS:  # a row's first line: the client, the GET cell, the POST cell
            get, post = line[15:43].strip(), line[43:].strip()
            for method, cell in (("GET", get), ("POST", post)):
                table[(name, method)] = cell.split("``")[1] if "``" in cell else cell
    assert table == {
        key: "a new connection" if outcome == "new connection" else outcome
        for key, outcome in STALE_OUTCOMES.items()
    }
