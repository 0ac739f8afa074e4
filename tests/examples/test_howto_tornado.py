"""How-to: test a Tornado client with ``tserver.testing`` (``docs/howto.rst``)."""

from __future__ import annotations

import json
from typing import Any

from tornado.httpclient import AsyncHTTPClient
from tornado.testing import gen_test

from tserver import Response
from tserver.testing import AsyncTestServerTestCase


async def fetch_profile(base_url: str, user: str) -> dict[str, Any]:
    """The code under test: a Tornado coroutine calling a profile service."""
    response = await AsyncHTTPClient().fetch(f"{base_url}profiles/{user}")
    profile: dict[str, Any] = json.loads(response.body)
    return profile


class ProfileTest(AsyncTestServerTestCase):
    @gen_test
    async def test_fetch_profile(self) -> None:
        self.server.add_response(Response(json={"name": "ada"}), path="/profiles/ada")

        assert await fetch_profile(self.server.url, "ada") == {"name": "ada"}

        self.server.assert_request().has_method("GET").has_path("/profiles/ada")

    def test_with_self_fetch(self) -> None:
        self.server.set_response("status", 204)

        assert self.fetch("/ping").code == 204
