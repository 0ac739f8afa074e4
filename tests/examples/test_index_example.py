"""The example on the front page of the docs (``docs/index.rst``)."""

from __future__ import annotations

import json
from urllib.request import urlopen

from hamcrest import has_entry

from tserver import TestServer


def test_front_page() -> None:
    with TestServer() as srv:
        srv.set_response("json", {"id": 7})
        body = urlopen(srv.get_url("/users?lang=en"), data=b'{"name": "ada"}').read()
        assert json.loads(body) == {"id": 7}
        srv.assert_request().has_method("POST").has_path("/users").has_arg("lang", "en")
        srv.assert_request().has_json(has_entry("name", "ada"))
