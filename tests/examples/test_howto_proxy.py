"""How-to: call any hostname without DNS, with tserver as the proxy (``docs/howto.rst``)."""

from __future__ import annotations

import pytest
import requests

from tserver import Response, TestServer

pytest.importorskip("trustme", reason="proxy=True needs the extra: pip install 'tserver[https]'")


def fetch_user(login: str) -> dict[str, str]:
    """The code under test: its base URL is written in, as in many SDKs."""
    reply = requests.get(f"https://api.example.test/users/{login}", timeout=5)
    reply.raise_for_status()
    result: dict[str, str] = reply.json()
    return result


def test_the_sdk_calls_its_own_hostname(monkeypatch: pytest.MonkeyPatch) -> None:
    with TestServer(proxy=True) as srv:
        srv.add_response(
            Response(json={"login": "ada"}), host="api.example.test", path="/users/ada"
        )
        # the client's own proxy settings: no URL injected, no DNS, no patching
        monkeypatch.setenv("https_proxy", srv.proxy_url)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(srv.ca_path))

        assert fetch_user("ada") == {"login": "ada"}

        srv.assert_request().has_host("api.example.test").has_path("/users/ada")
