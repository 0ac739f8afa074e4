"""The tutorial (``docs/tutorial.rst``): the same first test with unittest."""

# ruff: noqa: PT009  (unittest style is the point of this example)

from __future__ import annotations

import json
import unittest
from urllib.parse import urlencode
from urllib.request import Request as UrlRequest
from urllib.request import urlopen

from tserver import TestServer


def fetch_greeting(base_url: str, name: str) -> str:
    """The code under test: asks a greeting service to greet *name*."""
    url = f"{base_url}greet?{urlencode({'name': name})}"
    request = UrlRequest(url, headers={"Accept": "application/json"})
    with urlopen(request, timeout=5) as response:
        return str(json.load(response)["greeting"])


class GreetingTest(unittest.TestCase):
    server: TestServer

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = TestServer().start()  # one server for the whole class
        cls.addClassCleanup(cls.server.stop)

    def setUp(self) -> None:
        self.server.reset()  # each test starts with no rules and no history
        self.addCleanup(self.server.check)  # fail on errors swallowed by the server

    def test_greeting(self) -> None:
        self.server.set_response("json", {"greeting": "hello, ada"})

        self.assertEqual(fetch_greeting(self.server.url, "ada"), "hello, ada")

        self.server.assert_request().has_method("GET").has_arg("name", "ada")

    def test_greeting_of_someone_else(self) -> None:
        self.server.set_response("json", {"greeting": "hello, bob"})

        self.assertEqual(fetch_greeting(self.server.url, "bob"), "hello, bob")

        self.assertEqual(self.server.request_count, 1)  # the history was reset


if __name__ == "__main__":
    unittest.main()
