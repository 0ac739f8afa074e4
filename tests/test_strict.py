"""SPEC §3.2, ``strict=True``: only rules answer, and `check()` holds both ends.

No unexpected request (one no rule matched gets a 500 naming the request and
every rule with why it did not match, and is kept for `check()`), and no
expected request missing (`check()` lists count-limited rules not used up).
The wording is pinned here: it is what a user reads when a test fails.
"""

from __future__ import annotations

import re

import pytest
from hamcrest import has_property
from helpers.clients import fetch

from tserver import Response, ServerStateError, TestServer

#: The 500 body for ``GET /users?page=2`` against the rules of `_add_rules`.
UNMATCHED_BODY = """\
tserver: no rule matched GET /users
query: page=2
rules:
  rule #0: method POST, path '/items' -> Response(status=201, data=b'created') (1 of 1 left)
      but: method was 'GET'
  rule #1: path matching regex '/items/\\d+' (full match) -> Response(status=200, data=b'item') (unlimited)
      but: path was '/users'
  rule #2: match an object with a property 'query_string' matching 'a=1' -> Response(status=204) (2 of 2 left)
      but: property 'query_string' was 'page=2'
"""  # noqa: E501

#: What `check()` says afterwards (``{url}`` is the server's URL).
CHECK_MESSAGE = """\
tserver at {url} found problems while serving:
- strict mode: no rule matched GET /users
    query: page=2
    rules:
      rule #0: method POST, path '/items' -> Response(status=201, data=b'created') (1 of 1 left)
          but: method was 'GET'
      rule #1: path matching regex '/items/\\d+' (full match) -> Response(status=200, data=b'item') (unlimited)
          but: path was '/users'
      rule #2: match an object with a property 'query_string' matching 'a=1' -> Response(status=204) (2 of 2 left)
          but: property 'query_string' was 'page=2'
- strict mode: rules not used up (expected requests that never came):
    method POST, path '/items' -> Response(status=201, data=b'created') (1 of 1 left)
    match an object with a property 'query_string' matching 'a=1' -> Response(status=204) (2 of 2 left)"""  # noqa: E501


def _add_rules(srv: TestServer) -> None:
    srv.add_response(Response(b"created", status=201), method="POST", path="/items")
    srv.add_response(Response(b"item"), count=None, path=re.compile(r"/items/\d+"))
    srv.add_response(Response(status=204), count=2, match=has_property("query_string", "a=1"))


@pytest.mark.parametrize("method", [None, "POST"])
def test_set_response_is_refused(mode: str, method: str | None) -> None:
    with TestServer(mode=mode, strict=True) as srv:
        with pytest.raises(ServerStateError) as info:
            srv.set_response("data", b"x", method=method)
        assert str(info.value) == (
            "set_response() is not available on a strict server: only rules "
            "answer; use add_response(Response(...), ...)"
        )
        with pytest.raises(ServerStateError, match=r"^set_response_once\(\) is not"):
            srv.set_response_once("status", 201, method=method)
        srv.add_response(Response(b"rule"), count=2)
        for client in ("urllib", "httpx"):  # nothing was set: the rule answers
            reply = fetch(client, srv.url, "POST", data=b"")
            assert (reply.status, reply.body) == (200, b"rule")


@pytest.mark.parametrize("client", ["requests", "http.client"])
def test_unmatched_request_is_recorded_and_gets_500_listing_the_rules(
    mode: str, client: str
) -> None:
    srv = TestServer(mode=mode, strict=True).start()
    try:
        _add_rules(srv)
        reply = fetch(client, srv.get_url("/users?page=2"))
        assert reply.status == 500
        assert reply.header("Content-Type") == "text/plain; charset=utf-8"
        assert reply.body.decode() == UNMATCHED_BODY
        recorded = srv.wait_request()
        assert (recorded.method, recorded.path, recorded.query_string) == (
            "GET",
            "/users",
            "page=2",
        )
        # the rules still serve what they match
        assert fetch(client, srv.get_url("/items/3")).body == b"item"
        assert srv.request_count == 2
    finally:
        srv.stop()
    with pytest.raises(AssertionError) as info:
        srv.check()
    assert str(info.value) == CHECK_MESSAGE.format(url=srv.url)


@pytest.mark.parametrize("client", ["httpx", "urllib"])
def test_no_rules_left(mode: str, client: str) -> None:
    srv = TestServer(mode=mode, strict=True).start()
    try:
        srv.add_response(Response(b"once"))
        assert fetch(client, srv.get_url("/a")).body == b"once"
        reply = fetch(client, srv.get_url("/a"), "DELETE")
        assert reply.status == 500
        assert reply.body == b"tserver: no rule matched DELETE /a\nrules:\n  (no rules left)\n"
    finally:
        srv.stop()
    with pytest.raises(AssertionError) as info:
        srv.check()
    assert str(info.value).splitlines()[1:] == [
        "- strict mode: no rule matched DELETE /a",
        "    rules:",
        "      (no rules left)",
    ]


@pytest.mark.parametrize("client", ["requests", "httpx"])
def test_check_lists_count_limited_rules_not_used_up(mode: str, client: str) -> None:
    srv = TestServer(mode=mode, strict=True).start()
    try:
        srv.add_response(Response(b"a"), path="/a", count=3)
        srv.add_response(Response(b"b"), path="/b")
        srv.add_response(Response(b"c"), path="/c", count=None)  # optional
        assert fetch(client, srv.get_url("/a")).body == b"a"
        assert fetch(client, srv.get_url("/b")).body == b"b"
    finally:
        srv.stop()
    with pytest.raises(AssertionError) as info:
        srv.check()
    assert str(info.value).splitlines()[1:] == [
        "- strict mode: rules not used up (expected requests that never came):",
        "    path '/a' -> Response(status=200, data=b'a') (2 of 3 left)",
    ]


@pytest.mark.parametrize("client", ["urllib", "http.client"])
def test_all_rules_used_up_and_every_request_matched_is_clean(mode: str, client: str) -> None:
    with TestServer(mode=mode, strict=True) as srv:
        srv.add_response(Response(b"created", status=201), method="POST", path="/items")
        srv.add_response(Response(b"list"), method="GET", path="/items", count=2)
        srv.add_response(Response(b"health"), path="/health", count=None)
        assert fetch(client, srv.get_url("/items"), "POST", data=b"{}").status == 201
        assert fetch(client, srv.get_url("/items")).body == b"list"
        assert fetch(client, srv.get_url("/items?page=2")).body == b"list"
        srv.check()
    srv.check()  # the with block's own check passed too


def _expected_request_missing(mode: str) -> None:
    with TestServer(mode=mode, strict=True) as srv:
        srv.add_response(Response(b"x"), path="/expected")
        srv.add_response(Response(b"y"), path="/other", count=None)
        assert fetch("requests", srv.get_url("/other")).body == b"y"
        assert fetch("httpx", srv.get_url("/other")).body == b"y"


def test_with_block_fails_on_a_missing_expected_request(mode: str) -> None:
    with pytest.raises(AssertionError) as info:
        _expected_request_missing(mode)
    assert str(info.value).splitlines()[1:] == [
        "- strict mode: rules not used up (expected requests that never came):",
        "    path '/expected' -> Response(status=200, data=b'x') (1 of 1 left)",
    ]


def _unexpected_request(mode: str) -> None:
    with TestServer(mode=mode, strict=True) as srv:
        srv.add_response(Response(b"x"), path="/expected")
        assert fetch("requests", srv.get_url("/expected")).body == b"x"
        assert fetch("httpx", srv.get_url("/unexpected")).status == 500


def test_with_block_fails_on_an_unexpected_request(mode: str) -> None:
    with pytest.raises(AssertionError) as info:
        _unexpected_request(mode)
    assert "- strict mode: no rule matched GET /unexpected" in str(info.value)
