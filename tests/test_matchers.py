"""The hamcrest matchers over `Request` (no sockets: requests are built here).

Descriptions and mismatches are pinned as exact strings: they are what a
user reads when a test fails.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hamcrest import (
    all_of,
    any_of,
    anything,
    assert_that,
    contains_exactly,
    contains_string,
    has_entry,
    has_item,
    has_length,
    is_in,
    is_not,
    starts_with,
)
from hamcrest.core.base_matcher import BaseMatcher
from hamcrest.core.matcher import Matcher
from hamcrest.core.string_description import StringDescription
from helpers.requests import make_request

import tserver.matchers
from tserver._headers import MultiDict
from tserver._request import Request, UploadedFile
from tserver.matchers import (
    ANY,
    from_ip,
    has_arg,
    has_cookie,
    has_data,
    has_file,
    has_form_field,
    has_header,
    has_json,
    has_method,
    has_no_header,
    has_path,
    has_query_string,
    has_text,
    has_version,
    request_with,
)


def description(matcher: Matcher[Any]) -> str:
    return str(StringDescription().append_description_of(matcher))


def mismatch(matcher: Matcher[Any], item: object) -> str:
    """The mismatch text of *item*, which must not match."""
    out = StringDescription()
    assert not matcher.matches(item, out)
    return str(out)


def assert_matches(matcher: Matcher[Any], item: object) -> None:
    out = StringDescription()
    assert matcher.matches(item, out), str(out)


POST = make_request(
    "POST",
    "/items?q=1&q=2&empty=",
    [
        ("Content-Type", "application/json"),
        ("X-Token", "abd"),
        ("Accept", "text/html"),
        ("Accept", "application/json"),
        ("Cookie", "session=s3cr3t; theme=dark"),
    ],
    b'{"id": 12, "n": "x"}',
    cookies={"session": "s3cr3t", "theme": "dark"},
    client_ip="10.0.0.7",
    version="HTTP/1.0",
)
FORM = make_request(
    "POST",
    "/signup",
    [("Content-Type", "application/x-www-form-urlencoded")],
    b"user=alice&tag=a&tag=b",
    form=MultiDict([("user", "alice"), ("tag", "a"), ("tag", "b")]),
)
UPLOAD = make_request(
    "POST",
    "/upload",
    files={
        "doc": [UploadedFile("doc", "a.txt", "text/plain", b"hello")],
        "pics": [
            UploadedFile("pics", "1.png", "image/png", b"\x89PNG1"),
            UploadedFile("pics", "2.gif", "image/gif", b"GIF89a"),
        ],
    },
)
GET = make_request("GET", "/health")


# (matcher, its description, a request it matches, a request it does not
# match, the mismatch text for that request)
CASES = [
    (
        has_method("POST"),
        "a request with method matching 'POST'",
        POST,
        GET,
        "method was 'GET'",
    ),
    (
        has_method("post"),
        "a request with method matching 'POST'",
        POST,
        GET,
        "method was 'GET'",
    ),
    (
        has_method(starts_with("G")),
        "a request with method matching a string starting with 'G'",
        GET,
        POST,
        "method was 'POST'",
    ),
    (
        has_path("/items"),
        "a request with path matching '/items'",
        POST,
        GET,
        "path was '/health'",
    ),
    (
        has_query_string("q=1&q=2&empty="),
        "a request with query string matching 'q=1&q=2&empty='",
        POST,
        GET,
        "query string was ''",
    ),
    (has_arg("q"), "a request with arg 'q'", POST, GET, "arg 'q' was absent"),
    (
        has_arg("q", "2"),
        "a request with arg 'q' matching '2'",
        POST,
        make_request(target="/?q=3"),
        "arg 'q' was '3'",
    ),
    (
        has_arg("q", "3"),
        "a request with arg 'q' matching '3'",
        make_request(target="/?q=3"),
        POST,
        "arg 'q' had values ['1', '2']",
    ),
    (
        has_arg("empty", ""),
        "a request with arg 'empty' matching ''",
        POST,
        make_request(target="/?empty=x"),
        "arg 'empty' was 'x'",
    ),
    (
        has_header("X-Token", "abc"),
        "a request with header 'X-Token' matching 'abc'",
        make_request(headers=[("X-Token", "abc")]),
        POST,
        "header 'X-Token' was 'abd'",
    ),
    (
        has_header("x-token"),
        "a request with header 'x-token'",
        POST,
        GET,
        "header 'x-token' was absent",
    ),
    (
        has_header("Accept", "application/xml"),
        "a request with header 'Accept' matching 'application/xml'",
        make_request(headers=[("Accept", "application/xml")]),
        POST,
        "header 'Accept' had values ['text/html', 'application/json']",
    ),
    (
        has_no_header("Authorization"),
        "a request with no header 'Authorization'",
        POST,
        make_request(headers=[("Authorization", "Basic eA==")]),
        "header 'Authorization' was present with value 'Basic eA=='",
    ),
    (
        has_no_header("accept"),
        "a request with no header 'accept'",
        GET,
        POST,
        "header 'accept' was present with values ['text/html', 'application/json']",
    ),
    (
        has_cookie("session", "s3cr3t"),
        "a request with cookie 'session' matching 's3cr3t'",
        POST,
        make_request(cookies={"session": "other"}),
        "cookie 'session' was 'other'",
    ),
    (
        has_cookie("theme"),
        "a request with cookie 'theme'",
        POST,
        GET,
        "cookie 'theme' was absent",
    ),
    (
        has_data(b'{"id": 12, "n": "x"}'),
        'a request with body matching <b\'{"id": 12, "n": "x"}\'>',
        POST,
        GET,
        "body was <b''>",
    ),
    (
        has_data('{"id": 12, "n": "x"}'),
        'a request with body text matching \'{"id": 12, "n": "x"}\'',
        POST,
        FORM,
        "body text was 'user=alice&tag=a&tag=b'",
    ),
    (
        has_data(has_length(22)),
        "a request with body matching an object with length of <22>",
        FORM,
        POST,
        'body was <b\'{"id": 12, "n": "x"}\'> with length of <20>',
    ),
    (
        has_text(contains_string("alice")),
        "a request with body text matching a string containing 'alice'",
        FORM,
        GET,
        "body text was ''",
    ),
    (
        has_json({"id": 12, "n": "x"}),
        "a request with JSON body matching <{'id': 12, 'n': 'x'}>",
        POST,
        make_request(data=b'{"id": 13}'),
        "JSON body was <{'id': 13}>",
    ),
    (
        has_json(has_entry("id", 12)),
        "a request with JSON body matching a dictionary containing ['id': <12>]",
        POST,
        FORM,
        "body was not JSON: b'user=alice&tag=a&tag=b'",
    ),
    (
        has_json(anything()),
        "a request with JSON body",
        POST,
        GET,
        "body was not JSON: b''",
    ),
    (
        has_form_field("user", "alice"),
        "a request with form field 'user' matching 'alice'",
        FORM,
        POST,
        "form field 'user' was absent",
    ),
    (
        has_form_field("tag", "c"),
        "a request with form field 'tag' matching 'c'",
        make_request(form=MultiDict([("tag", "c")])),
        FORM,
        "form field 'tag' had values ['a', 'b']",
    ),
    (has_file("doc"), "a request with file 'doc'", UPLOAD, POST, "file 'doc' was absent"),
    (
        has_file("doc", "b.txt", "text/plain", "hello"),
        (
            "a request with file 'doc' having filename matching 'b.txt', "
            "content type matching 'text/plain', data matching <b'hello'>"
        ),
        make_request(files={"doc": [UploadedFile("doc", "b.txt", "text/plain", b"hello")]}),
        UPLOAD,
        "file 'doc': filename was 'a.txt'",
    ),
    (
        has_file("doc", content_type="text/csv", data=b"bye"),
        "a request with file 'doc' having content type matching 'text/csv', data matching <b'bye'>",
        make_request(files={"doc": [UploadedFile("doc", "x", "text/csv", b"bye")]}),
        UPLOAD,
        "file 'doc': content type was 'text/plain', data was <b'hello'>",
    ),
    (
        has_file("pics", filename="3.jpg"),
        "a request with file 'pics' having filename matching '3.jpg'",
        make_request(files={"pics": [UploadedFile("pics", "3.jpg", "", b"")]}),
        UPLOAD,
        (
            "file 'pics' had 2 parts, none matching: "
            "[0] filename was '1.png'; [1] filename was '2.gif'"
        ),
    ),
    (
        from_ip("10.0.0.7"),
        "a request with client IP matching '10.0.0.7'",
        POST,
        GET,
        "client IP was '127.0.0.1'",
    ),
    (
        has_version("HTTP/1.1"),
        "a request with HTTP version matching 'HTTP/1.1'",
        GET,
        POST,
        "HTTP version was 'HTTP/1.0'",
    ),
    (
        request_with(method="GET", path="/items"),
        "a request with method matching 'GET', path matching '/items'",
        make_request("GET", "/items"),
        POST,
        "method was 'POST'",
    ),
]
IDS = [f"{i}-{desc.split(' matching')[0][15:]}" for i, (_, desc, *_) in enumerate(CASES)]


@pytest.mark.parametrize(("matcher", "text", "good", "bad", "why"), CASES, ids=IDS)
def test_description(
    matcher: Matcher[Any], text: str, good: Request, bad: Request, why: str
) -> None:
    assert description(matcher) == text


@pytest.mark.parametrize(("matcher", "text", "good", "bad", "why"), CASES, ids=IDS)
def test_matches_and_mismatches(
    matcher: Matcher[Any], text: str, good: Request, bad: Request, why: str
) -> None:
    assert isinstance(matcher, BaseMatcher)
    for _ in range(2):  # stateless: the same instance gives the same answers
        assert_matches(matcher, good)
        assert mismatch(matcher, bad) == why


@pytest.mark.parametrize(("matcher", "text", "good", "bad", "why"), CASES, ids=IDS)
def test_pickles_and_still_matches(
    matcher: Matcher[Any], text: str, good: Request, bad: Request, why: str
) -> None:
    copy = pickle.loads(pickle.dumps(matcher))
    assert copy is not matcher
    assert description(copy) == text
    assert_matches(copy, good)
    assert mismatch(copy, bad) == why


@pytest.mark.parametrize(("matcher", "text", "good", "bad", "why"), CASES, ids=IDS)
def test_something_not_a_request_mismatches(
    matcher: Matcher[Any], text: str, good: Request, bad: Request, why: str
) -> None:
    assert mismatch(matcher, 42) == "was <42>, not a Request"
    assert mismatch(matcher, "GET /") == "was 'GET /', not a Request"
    assert mismatch(matcher, None) == "was <None>, not a Request"


def test_method_matcher_sees_the_method_as_sent() -> None:
    lower = make_request("post")
    assert_matches(has_method("POST"), lower)
    assert mismatch(has_method("GET"), lower) == "method was 'post'"
    assert mismatch(has_method(is_in(["POST"])), lower) == "method was 'post'"


def test_has_arg_with_any_value_is_the_default() -> None:
    assert description(has_arg("q", ANY)) == description(has_arg("q"))
    assert_matches(has_arg("empty"), POST)


def test_has_json_never_raises_on_odd_bodies() -> None:
    deep = make_request(data=b"[" * 100_000)
    assert mismatch(has_json([]), deep).startswith("body was not JSON: b'[[[")
    latin = make_request(data=b"\xff\xfe")
    assert mismatch(has_json({}), latin) == "body was not JSON: b'\\xff\\xfe'"
    long = make_request(data=b"x" * 100)
    assert mismatch(has_json({}), long) == (f"body was not JSON: {b'x' * 60!r}... (100 bytes)")


def test_has_json_matches_json_null() -> None:
    assert_matches(has_json(None), make_request(data=b"null"))
    assert mismatch(has_json(None), make_request(data=b"1")) == "JSON body was <1>"


def test_has_text_decodes_with_the_declared_charset() -> None:
    req = make_request(headers=[("Content-Type", "text/plain; charset=latin-1")], data=b"caf\xe9")
    assert_matches(has_text("café"), req)
    assert_matches(has_data("café"), req)
    assert_matches(has_data(b"caf\xe9"), req)


def test_long_bodies_are_clipped_in_description_and_mismatch() -> None:
    matcher = has_data(b"x" * 500)
    assert description(matcher) == (
        "a request with body matching " + f"<{b'x' * 500!r}>"[:220] + "..."
    )
    assert mismatch(matcher, make_request(data=b"y" * 500)) == (
        "body " + f"was <{b'y' * 500!r}>"[:220] + "... (500 bytes)"
    )


def test_request_with_describes_only_constrained_fields() -> None:
    matcher = request_with(
        method="post",
        path=starts_with("/it"),
        args={"q": "2", "page": ANY},
        headers={"X-Token": "abc"},
        cookies={"session": "s3cr3t"},
        data=b'{"id": 12, "n": "x"}',
        json=has_entry("id", 12),
        form={"user": "alice"},
    )
    assert description(matcher) == (
        "a request with method matching 'POST', path matching a string starting "
        "with '/it', arg 'q' matching '2', arg 'page', header 'X-Token' matching "
        "'abc', cookie 'session' matching 's3cr3t', body matching "
        '<b\'{"id": 12, "n": "x"}\'>, JSON body matching a dictionary '
        "containing ['id': <12>], form field 'user' matching 'alice'"
    )


def test_request_with_reports_only_failing_fields() -> None:
    matcher = request_with(
        method="POST",
        path="/items",
        args={"q": "1", "page": ANY},
        headers={"X-Token": "abc", "accept": "text/html"},
        cookies={"session": "s3cr3t"},
        json={"id": 12},
        form={"user": "alice"},
    )
    assert mismatch(matcher, POST) == (
        "arg 'page' was absent, header 'X-Token' was 'abd', "
        "JSON body was <{'id': 12, 'n': 'x'}>, form field 'user' was absent"
    )


def test_request_with_mapping_is_a_subset() -> None:
    assert_matches(request_with(headers={"x-token": "abd"}, args={"q": "1"}), POST)


def test_request_with_nothing_matches_any_request() -> None:
    assert description(request_with()) == "a request"
    assert_matches(request_with(), GET)
    assert mismatch(request_with(), 42) == "was <42>, not a Request"


def test_request_with_str_data_compares_text_and_json_none_expects_null() -> None:
    assert_matches(request_with(data="user=alice&tag=a&tag=b"), FORM)
    assert mismatch(request_with(json=None), GET) == "body was not JSON: b''"
    assert_matches(request_with(json=None), make_request(data=b"null"))


def test_request_with_rejects_a_non_mapping() -> None:
    with pytest.raises(TypeError, match=r"request_with: headers must be a mapping"):
        request_with(headers=[("X-Token", "abc")])  # type: ignore[arg-type]


# PyHamcrest's combinators do not infer their type parameter from a
# Matcher[Request] under mypy (PyHamcrest issues #207 and #264), so the
# matchers they combine are typed Matcher[Any] here.


def test_composes_with_assert_that() -> None:
    post: Matcher[Any] = has_method("POST")
    token: Matcher[Any] = has_header("X-Token", "abd")
    assert_that(POST, all_of(post, token))
    with pytest.raises(AssertionError) as failure:
        assert_that(POST, has_header("X-Token", "abc"), "token")
    assert str(failure.value) == (
        "token\n"
        "Expected: a request with header 'X-Token' matching 'abc'\n"
        "     but: header 'X-Token' was 'abd'\n"
    )


def test_composes_with_has_item_and_contains_exactly() -> None:
    history = [GET, POST, FORM]
    signup: Matcher[Any] = has_path("/signup")
    admin: Matcher[Any] = has_item(has_path("/admin"))
    assert_that(history, has_item(signup))
    assert_that(history, is_not(admin))
    get: Matcher[Any] = has_method("GET")
    json: Matcher[Any] = has_json(anything())
    tag: Matcher[Any] = has_form_field("tag")
    assert_that(history, contains_exactly(get, json, tag))
    x: Matcher[Any] = has_path("/x")
    with pytest.raises(AssertionError) as failure:
        assert_that(history, contains_exactly(GET, x, anything()))
    assert str(failure.value).splitlines()[-1] == "     but: item 1: path was '/items'"


def test_composes_with_all_of_any_of_and_is_not() -> None:
    post: Matcher[Any] = has_method("POST")
    items: Matcher[Any] = has_path("/items")
    both = all_of(post, items)
    assert_matches(both, POST)
    assert mismatch(both, FORM) == "a request with path matching '/items' path was '/signup'"
    nope: Matcher[Any] = has_path("/nope")
    assert_matches(any_of(nope, has_arg("q", "2")), POST)
    assert_matches(is_not(has_header("Authorization")), POST)
    assert description(is_not(has_method("GET"))) == "not a request with method matching 'GET'"


def test_public_surface() -> None:
    assert sorted(tserver.matchers.__all__) == sorted(
        [
            "ANY",
            "from_ip",
            "has_arg",
            "has_cookie",
            "has_data",
            "has_file",
            "has_form_field",
            "has_header",
            "has_host",
            "has_json",
            "has_method",
            "has_no_header",
            "has_path",
            "has_query_string",
            "has_text",
            "has_version",
            "on_connection",
            "request_with",
            "reused_connection",
        ]
    )
    for name in tserver.matchers.__all__:
        doc = getattr(tserver.matchers, name).__doc__ or ""
        if name != "ANY":
            assert "Examples::" in doc, name
