"""Examples of the page "Connections and TLS" and of its how-tos."""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Callable

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


def test_a_client_that_retries_survives_close_after() -> None:
    def make_session() -> requests.Session:  # the code under test: one retry on errors
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(max_retries=1))
        return session

    with TestServer() as srv, make_session() as session:
        srv.add_response(Response(b"last one", fault="close_after"))
        assert session.get(srv.url, timeout=10).content == b"last one"
        # the pooled connection is closed now, or closing: the next request
        # finds it gone (a new connection), or fails on it and is retried
        assert session.get(srv.url, timeout=10).status_code == 200
        assert srv.exchanges[0].status == 200
        srv.assert_request(-1).on_connection(1)


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
#: two requests (`TestServer.close_connections`), by method: "new connection"
#: means it noticed and sent the request on a new one; otherwise the error.
STALE_OUTCOMES = {
    ("requests", "GET"): "new connection",
    ("requests", "POST"): "new connection",
    ("httpx", "GET"): "new connection",
    ("httpx", "POST"): "new connection",
    ("urllib3", "GET"): "new connection",
    ("urllib3", "POST"): "new connection",
    ("aiohttp", "GET"): "new connection",
    ("aiohttp", "POST"): "ServerDisconnectedError",
}


def _outcome(srv: TestServer, send: Callable[[], int]) -> str:
    try:
        status = send()
    except Exception as exc:
        return type(exc).__name__
    return "new connection" if status == 200 and srv.request.connection == 1 else f"{status}"


def _requests(srv: TestServer, method: str) -> str:
    with requests.Session() as session:
        session.trust_env = False
        session.get(srv.url, timeout=10)
        srv.close_connections()
        return _outcome(srv, lambda: session.request(method, srv.url, timeout=10).status_code)


def _httpx(srv: TestServer, method: str) -> str:
    with httpx.Client(trust_env=False, timeout=10) as client:
        client.get(srv.url)
        srv.close_connections()
        return _outcome(srv, lambda: client.request(method, srv.url).status_code)


def _urllib3(srv: TestServer, method: str) -> str:
    with urllib3.PoolManager(maxsize=1) as pool:
        pool.request("GET", srv.url)
        srv.close_connections()
        return _outcome(srv, lambda: pool.request(method, srv.url, retries=False).status)


def _aiohttp(srv: TestServer, method: str) -> str:
    async def main() -> str:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(srv.url) as first:
                await first.read()
            srv.close_connections()
            try:
                async with session.request(method, srv.url) as second:
                    await second.read()
                    status = second.status
            except Exception as exc:
                return type(exc).__name__
        return _outcome(srv, lambda: status)

    return asyncio.run(main())


CLIENTS: dict[str, Callable[[TestServer, str], str]] = {
    "requests": _requests,
    "httpx": _httpx,
    "urllib3": _urllib3,
    "aiohttp": _aiohttp,
}


@pytest.mark.parametrize(("client", "method"), sorted(STALE_OUTCOMES))
def test_stale_outcomes_are_as_documented(client: str, method: str) -> None:
    with TestServer() as srv:
        assert CLIENTS[client](srv, method) == STALE_OUTCOMES[(client, method)]
