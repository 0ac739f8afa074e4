"""SPEC §3.2: `Response` values and `add_response` rules, seen by real clients.

Rules are tried in the order added; a count-limited rule counts down and
disappears at zero; then the pending once-override merged over the default
answers; then the default.  Selectors: ``method`` (a name or a list, any
case), ``path`` (exact raw str, a full-match `re.Pattern` or a hamcrest
matcher) and ``match`` (a hamcrest matcher over `Request`).
"""

from __future__ import annotations

import dataclasses
import pickle
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import requests
from callbacks_for_tests import HasBodyLongerThan, RaisingMatcher, echo_text
from hamcrest import all_of, has_property, starts_with
from helpers.clients import fetch

from tserver import UNSET, Cookie, Raw, Response, TestServer
from tserver.matchers import has_arg, has_header

# -- Response validation --------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"data": b"x", "json": {"a": 1}}, ValueError, "give data= or json=, not both"),
        ({"data": b"x", "chunks": [b"a"]}, ValueError, "chunks= excludes data= and json="),
        ({"json": None, "chunks": [b"a"]}, ValueError, "chunks= excludes data= and json="),
        ({"chunks": b"abc"}, TypeError, "chunks b'abc' must be an iterable of bytes"),
        ({"status": 99}, ValueError, "status 99 is out of range; expected 100-599"),
        ({"status": 600}, ValueError, "status 600 is out of range; expected 100-599"),
        ({"status": "200"}, TypeError, "status '200' must be an int from 100 to 599"),
        ({"sleep": -1}, ValueError, "sleep -1 must be >= 0 seconds"),
        ({"chunk_sleep": -0.5}, ValueError, "chunk_sleep -0.5 must be >= 0 seconds"),
        ({"sleep": "1"}, TypeError, "sleep '1' must be a number of seconds"),
        (
            {"fault": "explode"},
            ValueError,
            "fault 'explode'; expected one of 'close', 'reset', 'truncate', 'close_after'",
        ),
        ({"fault": b"HTTP/1.1 200"}, ValueError, "Raw(b'...'), GoAway(...) or ResetStream(...)"),
        ({"fault": "truncate"}, ValueError, "fault='truncate' needs a body"),
        ({"callback": "not callable"}, TypeError, "callback 'not callable' is not callable"),
    ],
)
def test_response_rejects_bad_values(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        Response(**kwargs)
    assert str(info.value).startswith("Response: ")
    assert message in str(info.value)


def test_response_is_immutable_and_pickles_to_an_equal_value() -> None:
    response = Response(
        status=202,
        json={"ok": [1, 2]},
        headers=[("X-A", "1"), ("X-A", "2")],
        cookies=[Cookie("s", "1", path="/", max_age=60)],
        sleep=0.25,
        callback=echo_text,
        reason="Fine",
    )
    for field in ("status", "data", "json", "headers", "callback"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(response, field, None)
    for value in (
        response,
        Response(chunks=[b"a", "b"], chunk_sleep=0.1),
        Response(fault=Raw(b"HTTP/1.1 200 OK\r\n\r\n")),
        Response(json=None),
    ):
        copy = pickle.loads(pickle.dumps(value))
        assert copy == value
        assert copy is not value
    assert Response(json=None) != Response()
    assert Response(json=None).json is None
    assert Response().json is UNSET


def test_add_response_validates_its_arguments(mode: str) -> None:
    srv = TestServer(mode=mode)  # validation needs no running server
    for count in (0, -1):
        with pytest.raises(ValueError) as info:
            srv.add_response(Response(), count=count)
        assert str(info.value) == f"add_response: count must be >= 1, got {count}"
    with pytest.raises(TypeError, match="count True must be a positive int or None"):
        srv.add_response(Response(), count=True)
    with pytest.raises(TypeError, match=r"must be a tserver\.Response"):
        srv.add_response(b"data")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method list is empty; give None for any method"):
        srv.add_response(Response(), method=[])
    with pytest.raises(ValueError, match="'GE T' is not an HTTP method token"):
        srv.add_response(Response(), method="GE T")
    with pytest.raises(TypeError, match=r"compiled re\.Pattern"):
        srv.add_response(Response(), path=3)
    with pytest.raises(ValueError) as info:
        srv.add_response(Response(), path="/items?page=2")
    assert str(info.value) == (
        "add_response: path '/items?page=2' holds a query, but paths are matched "
        "without their query; give the path alone and select the query with "
        "match=has_arg(name, value) or match=has_query_string(...)"
    )
    with pytest.raises(TypeError, match="match 'x' must be a hamcrest matcher over Request"):
        srv.add_response(Response(), match="x")
    assert srv.history == []


# -- Response on the wire ------------------------------------------------------


@pytest.mark.parametrize("client", ["urllib", "httpx"])
def test_json_none_sends_json_null(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(json=None))
        reply = fetch(client, srv.url)
        assert reply.status == 200
        assert reply.body == b"null"
        assert reply.header("Content-Type") == "application/json"


@pytest.mark.parametrize("client", ["requests", "http.client"])
def test_each_cookie_is_one_set_cookie_header(mode: str, client: str) -> None:
    plus_two = timezone(timedelta(hours=2))
    cookies: list[Cookie | tuple[str, str]] = [
        Cookie(
            "session",
            "abc",
            path="/app",
            domain="example.test",
            expires=datetime(2031, 1, 2, 5, 4, 5, tzinfo=plus_two),
            max_age=3600,
            secure=True,
            httponly=True,
            samesite="Lax",
        ),
        Cookie("naive", "1", expires=datetime(2031, 1, 2, 3, 4, 5)),
        Cookie("texty", "2", expires="Thu, 01 Jan 2032 00:00:00 GMT"),
        ("plain", "3"),
    ]
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(b"ok", cookies=cookies, headers={"X-Other": "kept"}))
        reply = fetch(client, srv.url)
    assert reply.header_list("Set-Cookie") == [
        (
            "session=abc; Path=/app; Domain=example.test; "
            "Expires=Thu, 02 Jan 2031 03:04:05 GMT; Max-Age=3600; Secure; HttpOnly; "
            "SameSite=Lax"
        ),
        "naive=1; Expires=Thu, 02 Jan 2031 03:04:05 GMT",
        "texty=2; Expires=Thu, 01 Jan 2032 00:00:00 GMT",
        "plain=3",
    ]
    assert reply.header("X-Other") == "kept"
    assert reply.body == b"ok"


@pytest.mark.parametrize("client", ["httpx", "http.client"])
def test_status_reason_and_repeated_headers(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(
            Response(
                "é",
                status=418,
                reason="Short And Stout",
                headers=[("X-Twice", "1"), ("X-Twice", "2"), ("Content-Type", "text/x")],
            )
        )
        reply = fetch(client, srv.url)
    assert reply.status == 418
    assert reply.header_list("X-Twice") == ["1", "2"]
    assert reply.header_list("Content-Type") == ["text/x"]
    assert reply.body == "é".encode()


# -- rule selection --------------------------------------------------------------


@pytest.mark.parametrize("client", ["requests", "urllib"])
def test_rules_are_tried_in_the_order_added_and_count_down(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"default")
        srv.add_response(Response(b"first", status=201), count=2)
        srv.add_response(Response(b"second", status=202))
        srv.add_response(Response(b"never", status=203), path="/other")
        got = [(r.status, r.body) for r in (fetch(client, srv.url) for _ in range(5))]
        assert got == [
            (201, b"first"),
            (201, b"first"),
            (202, b"second"),
            (200, b"default"),
            (200, b"default"),
        ]
        assert fetch(client, srv.get_url("/other")).body == b"never"
        assert fetch(client, srv.get_url("/other")).body == b"default"
        assert srv.request_count == 7


@pytest.mark.parametrize("client", ["httpx", "http.client"])
def test_count_none_serves_every_matching_request(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(b"always"), count=None, path="/a")
        srv.add_response(Response(b"shadowed"), path="/a")
        bodies = [fetch(client, srv.get_url("/a")).body for _ in range(6)]
        assert bodies == [b"always"] * 6
        assert fetch(client, srv.get_url("/b")).body == b""


@pytest.mark.parametrize("client", ["requests", "httpx"])
def test_path_str_is_the_exact_raw_path_without_query(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(b"hit"), count=None, path="/a%20b/c")
        assert fetch(client, srv.get_url("/a%20b/c?x=1&y=2")).body == b"hit"
        assert fetch(client, srv.get_url("/a%20b/c")).body == b"hit"
        for miss in ("/a%20b/c/", "/A%20b/c", "/a%20b", "/x/a%20b/c"):
            assert fetch(client, srv.get_url(miss)).body == b"", miss


@pytest.mark.parametrize("client", ["urllib", "http.client"])
def test_path_pattern_must_match_the_whole_path(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(b"item"), count=None, path=re.compile(r"/items/\d+"))
        assert fetch(client, srv.get_url("/items/12")).body == b"item"
        assert fetch(client, srv.get_url("/items/7?full=1")).body == b"item"
        for miss in ("/items/12/parts", "/v1/items/12", "/items/"):
            assert fetch(client, srv.get_url(miss)).body == b"", miss


@pytest.mark.parametrize("client", ["requests", "http.client"])
def test_path_hamcrest_matcher(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(b"api"), count=None, path=starts_with("/api/"))
        assert fetch(client, srv.get_url("/api/v1/users")).body == b"api"
        assert fetch(client, srv.get_url("/apiary")).body == b""


@pytest.mark.parametrize("client", ["httpx", "urllib"])
def test_method_name_or_list_any_case(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(b"posted"), count=None, method="post")
        srv.add_response(Response(b"read or put"), count=None, method=["get", "PuT"])
        assert fetch(client, srv.url, "POST", data=b"x").body == b"posted"
        assert fetch(client, srv.url, "GET").body == b"read or put"
        assert fetch(client, srv.url, "PUT", data=b"x").body == b"read or put"
        assert fetch(client, srv.url, "DELETE").body == b""


@pytest.mark.parametrize("client", ["requests", "httpx"])
def test_match_takes_any_matcher_over_request(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(b"token"), count=None, match=has_header("X-Token", "abc"))
        srv.add_response(Response(b"q"), count=None, match=has_property("query_string", "a=1"))
        srv.add_response(Response(b"big"), count=None, match=HasBodyLongerThan(3))
        srv.add_response(
            Response(b"both"),
            count=None,
            method="GET",
            path="/page",
            match=all_of(has_arg("n", "2"), has_header("Accept", starts_with("text/"))),
        )
        assert fetch(client, srv.url, headers={"X-Token": "abc"}).body == b"token"
        assert fetch(client, srv.url, headers={"X-Token": "abd"}).body == b""
        assert fetch(client, srv.get_url("/x?a=1")).body == b"q"
        assert fetch(client, srv.url, "POST", data=b"abcd").body == b"big"
        assert fetch(client, srv.url, "POST", data=b"abc").body == b""
        page = srv.get_url("/page?n=2")
        assert fetch(client, page, headers={"Accept": "text/html"}).body == b"both"
        assert fetch(client, page, headers={"Accept": "application/json"}).body == b""


@pytest.mark.parametrize("client", ["urllib", "requests"])
def test_resolution_order_rule_then_once_then_default(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"default")
        srv.set_response("headers", {"X-Default": "d"})
        srv.set_response_once("status", 202)
        srv.add_response(Response(b"rule", status=201), path="/rule")
        rule = fetch(client, srv.get_url("/rule"))
        assert (rule.status, rule.body, rule.header("X-Default")) == (201, b"rule", None)
        # the once-override waited for a request no rule served, and is
        # merged over the default (its data and headers stay)
        once = fetch(client, srv.get_url("/rule"))
        assert (once.status, once.body, once.header("X-Default")) == (202, b"default", "d")
        plain = fetch(client, srv.get_url("/rule"))
        assert (plain.status, plain.body, plain.header("X-Default")) == (200, b"default", "d")


def test_a_matcher_that_raises_skips_its_rule_and_fails_check(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    try:
        srv.add_response(Response(b"never"), match=RaisingMatcher())
        assert fetch("requests", srv.url).body == b""
        assert fetch("http.client", srv.url).body == b""
    finally:
        srv.stop()
    with pytest.raises(AssertionError) as info:
        srv.check()
    assert "RuntimeError: matcher exploded while answering GET /" in str(info.value)


@pytest.mark.parametrize(
    ("client", "timeout_error"),
    [
        ("urllib", TimeoutError),
        ("http.client", TimeoutError),
        ("requests", requests.Timeout),
        ("httpx", httpx.ReadTimeout),
    ],
)
def test_sleep_times_the_client_out_while_the_server_stays_fine(
    mode: str, client: str, timeout_error: type[Exception]
) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(b"late", sleep=60), path="/slow")
        with pytest.raises(timeout_error):
            fetch(client, srv.get_url("/slow"), timeout=0.2)
        assert srv.wait_request().path == "/slow"  # recorded before the sleep
        assert fetch(client, srv.get_url("/fast")).status == 200
        assert srv.request_count == 2
    # leaving the block dropped the parked connection at once: it did not
    # wait out the 60 s sleep
