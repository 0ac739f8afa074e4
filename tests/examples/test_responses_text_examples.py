"""The examples of ``docs/responses.rst`` whose point is a text.

A ``Set-Cookie`` header, the ``500`` body a strict server answers, and the
message of `TestServer.check` afterwards.  The page includes the tests with
``literalinclude :pyobject:`` and the texts from the strings below, which
the tests compare with the real ones (the server's port, which varies, is
written ``PORT``).  The other examples of the page are in
``test_responses_examples.py``.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.request import urlopen

import pytest
import requests
from hamcrest import has_property

from tserver import Cookie, Response, TestServer


def test_cookie_attributes() -> None:
    cookie = Cookie(
        "session",
        "abc",
        path="/",
        domain="example.test",
        expires=datetime(2031, 1, 2, 3, 4, 5),
        max_age=3600,
        secure=True,
        httponly=True,
        samesite="Lax",
    )
    with TestServer() as srv:
        srv.set_response("cookies", [cookie])

        with urlopen(srv.url) as response:
            assert response.headers["Set-Cookie"] == (
                "session=abc; Path=/; Domain=example.test; "
                "Expires=Thu, 02 Jan 2031 03:04:05 GMT; Max-Age=3600; Secure; HttpOnly; "
                "SameSite=Lax"
            )


def test_strict_mode() -> None:
    srv = TestServer(strict=True).start()
    try:
        srv.add_response(Response(b"created", status=201), method="POST", path="/items")
        srv.add_response(Response(b"item"), count=None, path=re.compile("/items/[0-9]+"))
        srv.add_response(Response(status=204), count=2, match=has_property("query_string", "a=1"))

        response = requests.get(srv.get_url("/users?page=2"), timeout=5)
        assert response.status_code == 500
        assert response.text == NO_RULE_MATCHED
    finally:
        srv.stop()

    with pytest.raises(AssertionError) as failure:
        srv.check()  # what the end of a with block, or the pytest fixture, calls
    message = f"AssertionError: {failure.value}\n".replace(f":{srv.port}/", ":PORT/")
    assert message == CHECK_FAILURE


NO_RULE_MATCHED = """\
tserver: no rule matched GET /users
query: page=2
rules:
  rule #0: method POST, path '/items' -> Response(status=201, data=b'created') (1 of 1 left)
      but: method was 'GET'
  rule #1: path matching regex '/items/[0-9]+' (full match) -> Response(status=200, data=b'item') (unlimited)
      but: path was '/users'
  rule #2: match an object with a property 'query_string' matching 'a=1' -> Response(status=204) (2 of 2 left)
      but: property 'query_string' was 'page=2'
"""  # noqa: E501

CHECK_FAILURE = """\
AssertionError: tserver at http://127.0.0.1:PORT/ found problems while serving:
- strict mode: no rule matched GET /users
    query: page=2
    rules:
      rule #0: method POST, path '/items' -> Response(status=201, data=b'created') (1 of 1 left)
          but: method was 'GET'
      rule #1: path matching regex '/items/[0-9]+' (full match) -> Response(status=200, data=b'item') (unlimited)
          but: path was '/users'
      rule #2: match an object with a property 'query_string' matching 'a=1' -> Response(status=204) (2 of 2 left)
          but: property 'query_string' was 'page=2'
- strict mode: rules not used up (expected requests that never came):
    method POST, path '/items' -> Response(status=201, data=b'created') (1 of 1 left)
    match an object with a property 'query_string' matching 'a=1' -> Response(status=204) (2 of 2 left)
"""  # noqa: E501
