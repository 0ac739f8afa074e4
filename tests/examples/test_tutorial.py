"""The tutorial (``docs/tutorial.rst``): a first test with pytest."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode
from urllib.request import Request as UrlRequest
from urllib.request import urlopen

import pytest

from tserver import TestServer


def fetch_greeting(base_url: str, name: str) -> str:
    """The code under test: asks a greeting service to greet *name*."""
    url = f"{base_url}greet?{urlencode({'name': name})}"
    request = UrlRequest(url, headers={"Accept": "application/json"})
    with urlopen(request, timeout=5) as response:
        return str(json.load(response)["greeting"])


def test_greeting(tserver: TestServer) -> None:
    tserver.set_response("json", {"greeting": "hello, ada"})

    assert fetch_greeting(tserver.url, "ada") == "hello, ada"

    tserver.assert_request().has_method("GET").has_path("/greet").has_arg("name", "ada")


def test_greeting_without_the_fixture() -> None:
    with TestServer() as srv:
        srv.set_response("json", {"greeting": "hello, ada"})
        assert fetch_greeting(srv.url, "ada") == "hello, ada"
        srv.assert_request().has_header("Accept", "application/json")


# The failure shown in the tutorial, checked line by line (the port and the
# Python version vary, so they are replaced before comparing).
EXPECTED_FAILURE = """\
request #0 of 1 did not match
Expected: a request with arg 'name' matching 'bob'
     but: arg 'name' was 'ada'
Recorded requests (oldest first):
  > #0  GET /greet?name=ada  -> 200
        Accept-Encoding: identity
        Host: 127.0.0.1:PORT
        User-Agent: Python-urllib/3.X
        Accept: application/json
        Connection: close
        body: b''
"""


def test_the_failure_message_reads_as_documented(tserver: TestServer) -> None:
    tserver.set_response("json", {"greeting": "hello, ada"})
    fetch_greeting(tserver.url, "ada")

    with pytest.raises(AssertionError) as failure:
        tserver.assert_request().has_arg("name", "bob")

    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", str(failure.value))
    text = re.sub(r"Python-urllib/3\.\d+", "Python-urllib/3.X", text)
    assert text + "\n" == EXPECTED_FAILURE
