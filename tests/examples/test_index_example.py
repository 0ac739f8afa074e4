"""The example on the front page of the docs (``docs/index.rst``), shown whole."""

from __future__ import annotations

from urllib.request import urlopen

from tserver import TestServer


def test_front_page() -> None:
    with TestServer() as srv:
        srv.set_response("json", {"id": 7})
        body = urlopen(srv.get_url("/users?lang=en"), data=b'{"name": "ada"}').read()
        assert body == b'{"id": 7}'
        srv.assert_request().has_method("POST").has_path("/users").has_arg("lang", "en")
        srv.assert_request().has_json({"name": "ada"})
