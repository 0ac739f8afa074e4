"""HTTP/2 (``docs/http2.rst``)."""

from __future__ import annotations

import httpx

from tserver import GoAway, Response, TestServer


def test_httpx_over_http2() -> None:
    with TestServer(ssl=True, http2=True) as srv:
        srv.add_response(Response(json={"id": 7}), path="/items/7")

        with httpx.Client(http2=True, verify=srv.client_ssl_context()) as client:
            response = client.get(srv.get_url("/items/7"))
        assert response.http_version == "HTTP/2"
        assert response.json() == {"id": 7}

        srv.assert_request().has_path("/items/7")
        assert srv.request.version == "HTTP/2"
        assert srv.connections[0].protocol == "HTTP/2"
        assert srv.connections[0].tls is not None
        assert srv.connections[0].tls.alpn == "h2"


def test_h2c_prior_knowledge_beside_http1() -> None:
    with TestServer(http2=True) as srv:
        srv.set_response("data", b"hello")

        with httpx.Client(http1=False, http2=True) as h2c:
            assert h2c.get(srv.get_url("/new")).http_version == "HTTP/2"
        with httpx.Client() as http1:
            assert http1.get(srv.get_url("/old")).http_version == "HTTP/1.1"

        assert [r.version for r in srv.history] == ["HTTP/2", "HTTP/1.1"]
        # the pseudo-header fields are kept, in arrival order
        assert srv.history[0].raw_headers[0] == (":method", "GET")


def test_goaway_after_two_streams() -> None:
    with TestServer(http2=True) as srv:
        srv.add_response(Response(b"ok"), count=2)
        srv.add_response(Response(fault=GoAway()))  # the third stream: left unprocessed
        srv.set_response("data", b"again")

        with httpx.Client(http1=False, http2=True) as client:
            assert client.get(srv.get_url("/1")).text == "ok"
            assert client.get(srv.get_url("/2")).text == "ok"
            # httpx retries an unprocessed stream on a new connection
            assert client.get(srv.get_url("/3")).text == "again"

        assert [(r.path, r.connection) for r in srv.history] == [
            ("/1", 0),
            ("/2", 0),
            ("/3", 0),
            ("/3", 1),
        ]
