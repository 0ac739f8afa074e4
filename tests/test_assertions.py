"""The fluent assertions: exact failure text, chaining, the traffic dump.

No sockets: the history is a list of `Request` values built here, as the
server would hand it over.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from hamcrest import (
    anything,
    contains_exactly,
    contains_string,
    greater_than,
    has_entry,
    has_property,
)
from helpers.requests import JSON, make_request

import tserver._assertions
from tserver import matchers
from tserver._assertions import HistoryAssertion, RequestAssertion, assert_no_requests
from tserver._errors import NoRequestError
from tserver._headers import MultiDict
from tserver._request import Request, UploadedFile
from tserver.matchers import has_method, has_path, request_with

URL = "http://127.0.0.1:8080/"


HISTORY = [
    make_request("GET", "/health"),
    make_request("POST", "/items?id=7", JSON, b'{"id": 12, "n": "y"}'),
    make_request(
        "POST",
        "/items",
        [*JSON, ("X-Token", "abd"), ("Cookie", "sid=1")],
        b'{"id": 12, "n": "x"}',
        cookies={"sid": "1"},
        files={"f": [UploadedFile("f", "a.txt", "text/plain", b"hi")]},
        form=MultiDict([("user", "bob")]),
    ),
]
DUMP = (
    "Recorded requests (oldest first):\n"
    "    #0  GET  /health\n"
    "    #1  POST /items?id=7  json 20 B\n"
    "    #2  POST /items       json 20 B"
)


def failure(call: Any) -> str:
    with pytest.raises(AssertionError) as info:
        call()
    return str(info.value)


# -- RequestAssertion --------------------------------------------------------


def test_request_failure_message() -> None:
    assertion = RequestAssertion(HISTORY, -1, URL)
    assert failure(lambda: assertion.has_header("X-Token", "abc")) == (
        "request #2 of 3 did not match\n"
        "Expected: a request with header 'X-Token' matching 'abc'\n"
        "     but: header 'X-Token' was 'abd'\n"
        "Recorded requests (oldest first):\n"
        "    #0  GET  /health\n"
        "    #1  POST /items?id=7  json 20 B\n"
        "  > #2  POST /items       json 20 B\n"
        "        Content-Type: application/json\n"
        "        X-Token: abd\n"
        "        Cookie: sid=1\n"
        '        body: b\'{"id": 12, "n": "x"}\''
    )


def test_request_failure_marks_the_chosen_request() -> None:
    assert failure(lambda: RequestAssertion(HISTORY, 0, URL).has_method("HEAD")) == (
        "request #0 of 3 did not match\n"
        "Expected: a request with method matching 'HEAD'\n"
        "     but: method was 'GET'\n"
        "Recorded requests (oldest first):\n"
        "  > #0  GET  /health\n"
        "        body: b''\n"
        "    #1  POST /items?id=7  json 20 B\n"
        "    #2  POST /items       json 20 B"
    )


def test_request_failure_after_twenty_requests_cuts_the_dump() -> None:
    history = [make_request("GET", f"/r{i}") for i in range(25)]
    lines = failure(lambda: RequestAssertion(history, -1, URL).has_path("/")).split("\n")
    assert lines[:5] == [
        "request #24 of 25 did not match",
        "Expected: a request with path matching '/'",
        "     but: path was '/r24'",
        "Recorded requests (oldest first):",
        "    #0   GET /r0",
    ]
    assert lines[-5:] == [
        "    #18  GET /r18",
        "    #19  GET /r19",
        "    ... 4 more",
        "  > #24  GET /r24",
        "        body: b''",
    ]
    lines = failure(lambda: RequestAssertion(history, 3, URL).has_path("/")).split("\n")
    assert lines[-2:] == ["    #19  GET /r19", "    ... and 5 more"]


@pytest.mark.parametrize(
    ("call", "index", "args"),
    [
        ("has_method", 2, ("post",)),
        ("has_path", 2, ("/items",)),
        ("has_query_string", 2, ("",)),
        ("has_arg", 1, ("id", "7")),
        ("has_header", 2, ("x-token", "abd")),
        ("has_no_header", 2, ("Authorization",)),
        ("has_cookie", 2, ("sid", "1")),
        ("has_data", 2, (b'{"id": 12, "n": "x"}',)),
        ("has_text", 2, (contains_string('"n"'),)),
        ("has_json", 2, (has_entry("id", 12),)),
        ("has_form_field", 2, ("user", "bob")),
        ("has_file", 2, ("f", "a.txt", "text/plain", b"hi")),
        ("from_ip", 2, ("127.0.0.1",)),
        ("has_version", 2, ("HTTP/1.1",)),
        ("matches", 2, (has_property("path", "/items"),)),
    ],
)
def test_each_check_returns_the_assertion(call: str, index: int, args: tuple[Any, ...]) -> None:
    assertion = RequestAssertion(HISTORY, index, URL)
    assert getattr(assertion, call)(*args) is assertion


def test_checks_chain() -> None:
    assertion = RequestAssertion(HISTORY, 1, URL)
    result = (
        assertion.has_method("POST")
        .has_path("/items")
        .has_arg("id", "7")
        .has_json({"id": 12, "n": "y"})
    )
    assert result is assertion
    message = failure(lambda: assertion.has_method("POST").has_arg("id", "8"))
    assert message.split("\n")[:3] == [
        "request #1 of 3 did not match",
        "Expected: a request with arg 'id' matching '8'",
        "     but: arg 'id' was '7'",
    ]


def test_matches_takes_any_matcher_or_value() -> None:
    assertion = RequestAssertion(HISTORY, 0, URL)
    assert assertion.matches(request_with(method="GET")) is assertion
    assert assertion.matches(HISTORY[0]) is assertion
    message = failure(lambda: assertion.matches(has_property("path", "/x")))
    assert message.split("\n")[1:3] == [
        "Expected: an object with a property 'path' matching '/x'",
        "     but: property 'path' was '/health'",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "has_method",
        "has_path",
        "has_query_string",
        "has_arg",
        "has_header",
        "has_no_header",
        "has_cookie",
        "has_data",
        "has_text",
        "has_json",
        "has_form_field",
        "has_file",
        "from_ip",
        "has_version",
    ],
)
def test_fluent_methods_mirror_the_matchers(name: str) -> None:
    factory = inspect.signature(getattr(matchers, name))
    method = inspect.signature(getattr(RequestAssertion, name))
    params = list(method.parameters.values())[1:]  # without self
    assert [(p.name, p.default) for p in params] == [
        (p.name, p.default) for p in factory.parameters.values()
    ]


def test_request_property_and_negative_index() -> None:
    assert RequestAssertion(HISTORY, -1, URL).request is HISTORY[2]
    assert RequestAssertion(HISTORY, -3, URL).request is HISTORY[0]
    assert repr(RequestAssertion(HISTORY, -2, URL)) == (
        "<RequestAssertion request #1 of 3: POST /items?id=7>"
    )


@pytest.mark.parametrize(
    ("history", "index", "message"),
    [
        ([], -1, "no request at index -1: no requests were recorded (server at URL)"),
        (HISTORY, 3, "no request at index 3: 3 requests were recorded (server at URL)"),
        (HISTORY[:1], -2, "no request at index -2: 1 request was recorded (server at URL)"),
    ],
)
def test_no_request_at_index(history: list[Request], index: int, message: str) -> None:
    with pytest.raises(NoRequestError) as info:
        RequestAssertion(history, index, "URL")
    assert str(info.value) == message
    assert isinstance(info.value, LookupError)


def test_index_must_be_an_int() -> None:
    with pytest.raises(TypeError, match="index True must be an int"):
        RequestAssertion(HISTORY, True, URL)


# -- HistoryAssertion --------------------------------------------------------


def test_history_checks_chain_and_pass() -> None:
    assertion = HistoryAssertion(HISTORY, URL)
    result = (
        assertion.has_length(3)
        .has_length(greater_than(2))
        .has_item(request_with(method="GET", path="/health"))
        .has_item(HISTORY[1])
        .has_no_item(has_path("/admin"))
        .contains_in_order(has_path("/health"), has_path("/items"))
        .contains_in_order(has_method("GET"), has_method("POST"), has_method("POST"))
        .matches(contains_exactly(has_method("GET"), anything(), anything()))
    )
    assert result is assertion
    assert assertion.history == HISTORY
    assert repr(assertion) == "<HistoryAssertion of 3 requests>"


def test_has_length_failure() -> None:
    assert failure(lambda: HistoryAssertion(HISTORY, URL).has_length(2)) == (
        "history of 3 requests did not match\n"
        "Expected: an object with length of <2>\n"
        "     but: 3 requests were recorded\n" + DUMP
    )


def test_has_item_failure_explains_each_request() -> None:
    message = failure(lambda: HistoryAssertion(HISTORY, URL).has_item(has_method("DELETE")))
    assert message == (
        "history of 3 requests did not match\n"
        "Expected: a sequence containing a request with method matching 'DELETE'\n"
        "     but: none of 3 recorded requests matched\n"
        "          #0: method was 'GET'\n"
        "          #1: method was 'POST'\n"
        "          #2: method was 'POST'\n" + DUMP
    )


def test_has_item_failure_on_a_long_history_is_cut() -> None:
    history = [make_request("GET", f"/r{i}") for i in range(23)]
    lines = failure(lambda: HistoryAssertion(history, URL).has_item(has_path("/"))).split("\n")
    assert lines[2] == "     but: none of 23 recorded requests matched"
    assert lines[3] == "          #0: path was '/r0'"
    assert lines[22:25] == [
        "          #19: path was '/r19'",
        "          ... and 3 more",
        "Recorded requests (oldest first):",
    ]
    assert lines[-1] == "    ... and 3 more"


def test_has_item_on_an_empty_history_names_the_server() -> None:
    assert failure(lambda: HistoryAssertion([], URL).has_item(has_path("/"))) == (
        "history of 0 requests did not match\n"
        "Expected: a sequence containing a request with path matching '/'\n"
        "     but: the history was empty\n"
        "no requests were recorded (server at http://127.0.0.1:8080/)"
    )


def test_has_no_item_failure_shows_the_first_match_in_full() -> None:
    message = failure(lambda: HistoryAssertion(HISTORY, URL).has_no_item(has_path("/items")))
    assert message == (
        "history of 3 requests did not match\n"
        "Expected: not a sequence containing a request with path matching '/items'\n"
        "     but: 2 of 3 recorded requests matched: #1, #2\n"
        "Recorded requests (oldest first):\n"
        "    #0  GET  /health\n"
        "  > #1  POST /items?id=7  json 20 B\n"
        "        Content-Type: application/json\n"
        '        body: b\'{"id": 12, "n": "y"}\'\n'
        "    #2  POST /items       json 20 B"
    )


def test_contains_in_order_allows_requests_between() -> None:
    history = [make_request("GET", p) for p in ("/a", "/x", "/b", "/y", "/c")]
    assertion = HistoryAssertion(history, URL)
    assert assertion.contains_in_order(has_path("/a"), has_path("/c")) is assertion
    assert assertion.contains_in_order(has_path("/x")) is assertion
    assert assertion.contains_in_order(history[1], history[3]) is assertion


def test_contains_in_order_failure_after_a_partial_match() -> None:
    message = failure(
        lambda: HistoryAssertion(HISTORY, URL).contains_in_order(
            has_method("POST"), has_path("/health")
        )
    )
    assert message == (
        "history of 3 requests did not match\n"
        "Expected: requests in this order: a request with method matching 'POST', "
        "then a request with path matching '/health'\n"
        "     but: #1 matched in order, then no request after #1 matched "
        "a request with path matching '/health'\n" + DUMP
    )


def test_contains_in_order_failure_when_nothing_matched() -> None:
    message = failure(
        lambda: HistoryAssertion(HISTORY, URL).contains_in_order(
            has_path("/health"), has_path("/items"), has_path("/logout")
        )
    )
    assert message.split("\n")[2] == (
        "     but: #0, #1 matched in order, then no request after #1 matched "
        "a request with path matching '/logout'"
    )
    message = failure(lambda: HistoryAssertion(HISTORY, URL).contains_in_order(has_path("/login")))
    assert message.split("\n")[2] == (
        "     but: no request matched a request with path matching '/login'"
    )


def test_contains_in_order_needs_a_matcher() -> None:
    with pytest.raises(TypeError, match="contains_in_order: expected at least one"):
        HistoryAssertion(HISTORY, URL).contains_in_order()


def test_history_matches_gets_the_list() -> None:
    message = failure(
        lambda: HistoryAssertion(HISTORY, URL).matches(
            contains_exactly(has_path("/health"), has_path("/x"), anything())
        )
    )
    assert message == (
        "history of 3 requests did not match\n"
        "Expected: a sequence containing [a request with path matching '/health', "
        "a request with path matching '/x', ANYTHING]\n"
        "     but: item 1: path was '/items'\n" + DUMP
    )
    assert HistoryAssertion(HISTORY, URL).matches(HISTORY).history == HISTORY


def test_history_is_a_snapshot() -> None:
    history = list(HISTORY)
    assertion = HistoryAssertion(history, URL)
    history.clear()
    assert assertion.has_length(3) is assertion


# -- assert_no_requests ------------------------------------------------------


def test_assert_no_requests_passes_on_an_empty_history() -> None:
    assert_no_requests([], URL)  # does not raise
    assert_no_requests((), URL)


def test_assert_no_requests_lists_what_was_recorded() -> None:
    assert failure(lambda: assert_no_requests(HISTORY[:1], URL)) == (
        "history of 1 request did not match\n"
        "Expected: no requests\n"
        "     but: 1 request was recorded\n"
        "Recorded requests (oldest first):\n"
        "    #0  GET /health"
    )


# -- hidden frames -----------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: RequestAssertion(HISTORY, 0, URL).has_method("PUT"),
        lambda: RequestAssertion(HISTORY, 0, URL).matches(has_path("/x")),
        lambda: HistoryAssertion(HISTORY, URL).has_item(has_path("/x")),
        lambda: HistoryAssertion(HISTORY, URL).has_no_item(has_path("/items")),
        lambda: HistoryAssertion(HISTORY, URL).contains_in_order(has_path("/x")),
        lambda: HistoryAssertion(HISTORY, URL).has_length(0),
        lambda: HistoryAssertion(HISTORY, URL).matches([]),
        lambda: assert_no_requests(HISTORY, URL),
    ],
)
def test_helper_frames_are_hidden_from_pytest(call: Any) -> None:
    with pytest.raises(AssertionError) as info:
        call()
    shown = info.traceback.filter(info)
    files = {str(entry.path) for entry in shown}
    assert tserver._assertions.__file__ not in files
    assert __file__ in files


def test_frames_are_hidden_from_unittest() -> None:
    assert vars(tserver._assertions)["__unittest"] is True
