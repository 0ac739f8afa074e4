"""How-to: test a client over HTTPS with verification on (``docs/howto.rst``)."""

from __future__ import annotations

from urllib.request import urlopen

import httpx
import pytest
import requests

from tserver import TestServer

pytest.importorskip("trustme", reason="HTTPS needs the extra: pip install 'tserver[https]'")


def test_https_with_requests() -> None:
    with TestServer(ssl=True) as srv:
        srv.set_response("data", b"secret")

        # trust the server's throwaway CA, and nothing else
        response = requests.get(srv.get_url("/vault"), verify=srv.ca_path, timeout=5)

        assert response.content == b"secret"
        srv.assert_request().has_path("/vault")
        assert srv.request.scheme == "https"


def test_https_with_httpx_and_urllib() -> None:
    with TestServer(ssl=True) as srv:
        context = srv.client_ssl_context()  # an ssl.SSLContext trusting the CA

        with httpx.Client(verify=context) as client:
            assert client.get(srv.url).status_code == 200
        with urlopen(srv.url, context=context, timeout=5) as response:
            assert response.status == 200

        srv.assert_history().has_length(2)
