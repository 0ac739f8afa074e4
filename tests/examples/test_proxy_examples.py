"""Testing proxy support (``docs/proxy.rst``): every client here names a host that
does not resolve, and reaches it only through tserver as its proxy."""

from __future__ import annotations

import httpx
import pytest
import requests

from tserver import Response, TestServer

pytest.importorskip("trustme", reason="proxy=True needs the extra: pip install 'tserver[https]'")


def test_a_client_goes_through_its_proxy() -> None:
    with TestServer(proxy=True) as srv:
        srv.add_response(Response(json={"id": 1}), host="api.example.test", path="/v1/items")

        proxies = {"http": srv.proxy_url, "https": srv.proxy_url}
        reply = requests.get("http://api.example.test/v1/items", proxies=proxies, timeout=5)

        assert reply.json() == {"id": 1}
        srv.assert_request().has_host("api.example.test").has_path("/v1/items")
        assert srv.request.proxied
        assert srv.request.url == "http://api.example.test/v1/items"


def test_https_through_a_connect_tunnel() -> None:
    with TestServer(proxy=True) as srv:
        srv.add_response(Response(b"inside"), host="api.example.test")

        # the tunnel's TLS is completed with a certificate for api.example.test,
        # issued by the server's throwaway CA: verification stays on
        with httpx.Client(proxy=srv.proxy_url, verify=srv.client_ssl_context()) as client:
            assert client.get("https://api.example.test/secure").content == b"inside"

        request = srv.request
        assert (request.scheme, request.tunnel) == ("https", "api.example.test:443")
        assert request.tls is not None
        assert request.tls.sni == "api.example.test"


def test_proxy_credentials() -> None:
    with TestServer(proxy=True, proxy_auth=("alice", "s3cret")) as srv:
        url = "http://api.example.test/report"

        anonymous = requests.get(url, proxies={"http": srv.proxy_url}, timeout=5)
        assert anonymous.status_code == 407
        assert anonymous.headers["Proxy-Authenticate"] == 'Basic realm="tserver"'

        proxy = srv.proxy_url.replace("http://", "http://alice:s3cret@")
        assert requests.get(url, proxies={"http": proxy}, timeout=5).status_code == 200

        assert [exchange.status for exchange in srv.exchanges] == [407, 200]
        srv.assert_request(1).has_header("Proxy-Authorization", "Basic YWxpY2U6czNjcmV0")


def test_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    with TestServer(proxy=True) as srv:
        monkeypatch.setenv("http_proxy", srv.proxy_url)
        monkeypatch.setenv("no_proxy", "127.0.0.1")

        requests.get("http://api.example.test/via-proxy", timeout=5)
        requests.get(srv.get_url("/direct"), timeout=5)  # NO_PROXY: straight to the server

        first, second = srv.history
        assert first.proxied
        assert not second.proxied
