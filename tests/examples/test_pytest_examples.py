"""The examples of ``docs/pytest.rst``: the plugin's fixtures in use.

The plugin is registered by its ``pytest11`` entry point, so these tests use
the fixtures exactly as a user's tests do: no import, no ``conftest.py``.
The last example runs pytest on a test file of its own (with ``pytester``),
because what it shows is a test that fails.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tserver import Response, TestServer
from tserver.pytest_plugin import ServerFactory


def test_client_sends_the_token(tserver: TestServer) -> None:
    tserver.set_response("json", {"id": 12})

    assert requests.get(tserver.get_url("/items/12"), headers={"X-Token": "abc"}, timeout=5).ok

    tserver.assert_request().has_path("/items/12").has_header("X-Token", "abc")


def fetch_with_fallback(base_urls: list[str], path: str) -> Any:
    """The code under test: asks each server in turn until one does not fail."""
    for base_url in base_urls:
        response = requests.get(base_url.rstrip("/") + path, timeout=5)
        if response.status_code < 500:
            return response.json()
    raise RuntimeError(f"no server could answer {path}")


def test_primary_and_fallback(tserver_factory: ServerFactory) -> None:
    primary = tserver_factory(strict=True)
    fallback = tserver_factory()
    primary.add_response(Response(status=503), path="/api")
    fallback.set_response("json", {"ok": True})

    assert fetch_with_fallback([primary.url, fallback.url], "/api") == {"ok": True}

    fallback.assert_request().has_path("/api")


def test_in_a_child_process(tserver_subprocess: TestServer) -> None:
    tserver_subprocess.set_response("data", b"pong")

    assert requests.get(tserver_subprocess.url, timeout=5).content == b"pong"

    assert tserver_subprocess.mode == "subprocess"


# -- how problems fail a test


SWALLOWED_ERROR = """
import requests


def lookup_user(request):
    raise KeyError("user")


def test_the_client_ignores_a_500(tserver):
    tserver.set_response("callback", lookup_user)

    requests.get(tserver.url, timeout=5)  # a 500 the client does not check
"""


def test_a_swallowed_error_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_swallowed=SWALLOWED_ERROR)

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(failed=1)  # FAILED, not PASSED with an ERROR
    result.stdout.fnmatch_lines(
        [
            "*tserver at http://127.0.0.1:*/ found problems while serving:",
            "*- KeyError: 'user' while answering GET /",
            "*checked by the 'tserver' fixture after the test returned*",
            "FAILED test_swallowed.py::test_the_client_ignores_a_500 - *",
        ]
    )
