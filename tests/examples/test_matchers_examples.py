"""The examples of ``docs/matchers.rst``: the request matchers, alone and composed.

The page includes these functions with ``literalinclude``.  Its table of
matchers is checked here too: `test_the_table_of_matchers` reads each row
of the page and compares the description and the mismatch it shows with
what the matcher really says.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from hamcrest import all_of, assert_that, contains_exactly, has_entry, has_item, is_not
from hamcrest.core.matcher import Matcher
from hamcrest.core.string_description import StringDescription

from tserver import Headers, MultiDict, Request, Response, TestServer, UploadedFile, matchers
from tserver.matchers import ANY, has_header, has_json, has_method, has_path, request_with

# -- examples


def test_matchers_with_assert_that() -> None:
    with TestServer() as srv:
        requests.post(srv.get_url("/items"), json={"id": 12}, headers={"X-Token": "abc"}, timeout=5)

        assert_that(srv.request, has_header("X-Token", "abc"))
        assert_that(srv.history, has_item(request_with(method="POST", path="/items")))


def description_of(matcher: Matcher[Any]) -> str:
    """What *matcher* says after ``Expected:``."""
    return str(StringDescription().append_description_of(matcher))


def mismatch_of(matcher: Matcher[Any], item: object) -> str:
    """What *matcher* says after ``but:`` about *item*, which it must not match."""
    description = StringDescription()
    assert not matcher.matches(item, description)
    return str(description)


def test_request_with() -> None:
    matcher = request_with(
        method="POST",
        path="/items",
        args={"q": "1", "page": ANY},
        headers={"X-Token": "abc"},
        json=has_entry("id", 12),
    )

    assert description_of(matcher) == (
        "a request with method matching 'POST', path matching '/items', "
        "arg 'q' matching '1', arg 'page', header 'X-Token' matching 'abc', "
        "JSON body matching a dictionary containing ['id': <12>]"
    )
    with TestServer() as srv:
        requests.post(
            srv.get_url("/items?q=1"), json={"id": 12}, headers={"X-Token": "abd"}, timeout=5
        )
        # two of the five constraints fail: the mismatch names only those
        assert mismatch_of(matcher, srv.request) == (
            "arg 'page' was absent, header 'X-Token' was 'abd'"
        )
        assert_that(srv.request, request_with())  # no constraint: any request


def test_composing_with_hamcrest() -> None:
    with TestServer() as srv:
        # a rule that answers only a request carrying the right JSON
        srv.add_response(Response(status=201), match=has_json(has_entry("id", 12)))

        with requests.Session() as client:
            client.post(srv.get_url("/login"), data={"user": "ada"}, timeout=5)
            created = client.post(srv.get_url("/items"), json={"id": 12}, timeout=5)
            client.post(srv.get_url("/logout"), headers={"X-Token": "abc"}, timeout=5)
        assert created.status_code == 201

        assert_that(srv.request, all_of(has_method("POST"), has_header("X-Token")))
        assert_that(srv.request, is_not(has_header("Authorization")))
        assert_that(srv.history, has_item(has_path("/login")))
        assert_that(
            srv.history,
            contains_exactly(has_path("/login"), has_path("/items"), has_path("/logout")),
        )


def test_typed_inner_matcher() -> None:
    with TestServer() as srv:
        requests.post(srv.get_url("/items"), timeout=5)

        post: Matcher[Any] = has_method("POST")
        assert_that(srv.request, all_of(post, has_path("/items")))


# -- the table of docs/matchers.rst

MATCHERS_RST = Path(__file__).resolve().parents[2] / "docs" / "matchers.rst"

#: One row of the table: the matcher and its arguments, the description,
#: and the mismatch column (one or more ``literal`` texts joined by "or").
_ROW = re.compile(
    r"^   \* - :func:`~tserver\.matchers\.(?P<name>\w+)` ``(?P<args>\(.*\))``\n"
    r"     - ``(?P<description>.*)``\n"
    r"     - (?P<mismatches>.*)\n",
    re.MULTILINE,
)


def _request(**fields: Any) -> Request:
    return Request(fields.pop("method", "GET"), fields.pop("path", "/"), **fields)


#: For each matcher of the table, the requests that give its mismatches,
#: in the order of the mismatch column.
NOT_MATCHING: dict[str, list[Request]] = {
    "has_method": [_request(method="GET")],
    "has_path": [_request(path="/health")],
    "has_host": [_request(host="other.test")],
    "has_query_string": [_request()],
    "has_arg": [_request(query_string="q=1&q=2", args=MultiDict([("q", "1"), ("q", "2")]))],
    "has_header": [_request(headers=Headers([("X-Token", "abd")]))],
    "has_no_header": [_request(headers=Headers([("Authorization", "Basic eA==")]))],
    "has_cookie": [_request()],
    "has_data": [_request()],
    "has_text": [_request()],
    "has_json": [_request(data=b'{"id": 13}'), _request(data=b"user=alice")],
    "has_form_field": [_request()],
    "has_file": [_request(files={"doc": [UploadedFile("doc", "a.txt", "text/plain", b"")]})],
    "from_ip": [_request(client_ip="127.0.0.1")],
    "has_version": [_request(version="HTTP/1.0")],
    "on_connection": [_request(connection=1)],
    "reused_connection": [_request()],
}


def _table_rows() -> list[tuple[str, str, str, list[str]]]:
    rows = [
        (m["name"], m["args"], m["description"], re.findall(r"``(.*?)``", m["mismatches"]))
        for m in _ROW.finditer(MATCHERS_RST.read_text(encoding="utf-8"))
    ]
    assert {name for name, *_ in rows} == set(NOT_MATCHING), "the table lost or gained a row"
    return rows


@pytest.mark.parametrize(("name", "args", "description", "mismatches"), _table_rows())
def test_the_table_of_matchers(
    name: str, args: str, description: str, mismatches: list[str]
) -> None:
    arguments = ast.literal_eval(args)  # '("post")' is one argument, '("q", "3")' two
    if not isinstance(arguments, tuple):
        arguments = (arguments,)
    matcher = getattr(matchers, name)(*arguments)
    assert description_of(matcher) == description
    assert [mismatch_of(matcher, request) for request in NOT_MATCHING[name]] == mismatches


def test_anything_but_a_request_mismatches() -> None:
    assert mismatch_of(has_path("/"), 42) == "was <42>, not a Request"
