"""Hamcrest matchers over recorded requests.

Each factory returns a `~hamcrest.core.base_matcher.BaseMatcher` over
`~tserver.Request`.  Every expected value may be a plain value, compared with
`~hamcrest.core.core.isequal.equal_to`, or any hamcrest matcher.  The matchers
work wherever hamcrest does: `~hamcrest.core.assert_that.assert_that`,
`~hamcrest.library.collection.issequence_containing.has_item`,
`~hamcrest.library.collection.issequence_containinginorder.contains_exactly`,
`~hamcrest.core.core.allof.all_of`, `~hamcrest.core.core.isnot.is_not`, the
fluent assertions of `tserver.TestServer`, and as ``match=`` in
`tserver.TestServer.add_response` (they pickle, so they cross to the child of
subprocess mode).

Something that is not a `~tserver.Request` never matches: the mismatch says
``was <42>, not a Request``.

Example: a `~tserver.Request` is a plain value, so the examples of this
module build one by hand with only the fields they read (the server fills
them all; in a test you read ``srv.request`` or ``srv.history``).  The
imports of this example are in scope in the examples below::

    >>> from hamcrest import *
    >>> from tserver import Headers, MultiDict, Request, UploadedFile
    >>> from tserver.matchers import *
    >>> req = Request("POST", "/items", headers=Headers({"X-Token": "abc"}), data=b'{"id": 12}')
    >>> assert_that(req, all_of(has_header("X-Token", "abc"), has_json(has_entry("id", 12))))
    >>> assert_that([req], has_item(request_with(method="POST", path="/items")))
    >>> assert_that(req, has_header("X-Token", "abd"))
    Traceback (most recent call last):
      ...
    AssertionError:
    Expected: a request with header 'X-Token' matching 'abd'
         but: header 'X-Token' was 'abc'

.. versionadded:: 1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hamcrest.core.core.described_as import described_as
from hamcrest.core.core.isanything import anything
from hamcrest.core.helpers.wrap_matcher import wrap_matcher
from hamcrest.library.number.ordering_comparison import greater_than_or_equal_to

from ._request_matchers import (
    HasField,
    HasFile,
    HasJson,
    HasNamedValue,
    HasNoHeader,
    RequestMatcher,
    RequestWith,
    SameHost,
)

if TYPE_CHECKING:
    from hamcrest.core.matcher import Matcher

    from ._request import Request

__all__ = [
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

#: The default "any value" of the optional arguments: ``has_arg("q")`` means
#: ``has_arg("q", ANY)``, an arg ``q`` with any value.  A field of
#: `request_with` left at ``ANY`` is not checked.
ANY: Matcher[Any] = anything("ANY")


def _body_field(v: object) -> HasField:
    """A str compares with the decoded `~tserver.Request.text`, else the bytes."""
    if isinstance(v, str):
        return HasField("body text", "text", wrap_matcher(v), clip=True)
    return HasField("body", "data", wrap_matcher(v), clip=True)


def _method_field(m: object) -> HasField:
    """A str compares case-insensitively; a matcher sees the method as sent."""
    if isinstance(m, str):
        return HasField("method", "method", wrap_matcher(m.upper()), fold_case=True)
    return HasField("method", "method", wrap_matcher(m))


def has_method(m: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request whose method is *m*, ignoring case.

    :param m: a method name, compared case-insensitively, or a matcher,
        applied to the method as sent.

    Examples::

        >>> req = Request("POST", "/items")
        >>> has_method("POST").matches(req), has_method("post").matches(req)
        (True, True)
        >>> has_method(is_in(["PUT", "PATCH"])).matches(req)
        False
    """
    return _method_field(m)


def has_path(p: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request whose raw path (without the query) is *p*.

    Examples::

        >>> req = Request("GET", "/api/items", query_string="page=2")
        >>> has_path("/api/items").matches(req), has_path(starts_with("/api/")).matches(req)
        (True, True)
    """
    return HasField("path", "path", wrap_matcher(p))


def has_host(h: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request whose host (`~tserver.Request.host`) is *h*.

    :param h: a str, compared without case and without the port unless it
        names one (``"api.example.test"`` matches ``api.example.test:8080``;
        ``"api.example.test:8080"`` only that port); or a matcher, applied
        to the host as the client wrote it.

    Examples::

        >>> req = Request("GET", "/v1", host="API.example.test:8080", proxied=True)
        >>> has_host("api.example.test").matches(req), has_host("api.example.test:443").matches(req)
        (True, False)
        >>> has_host(ends_with(".test:8080")).matches(req)
        True
    """
    return HasField("host", "host", SameHost(h) if isinstance(h, str) else wrap_matcher(h))


def has_query_string(q: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request whose raw query string (without ``?``) is *q*.

    Examples::

        >>> req = Request("GET", "/search", query_string="q=1&page=2")
        >>> has_query_string("q=1&page=2").matches(req)
        True
        >>> has_query_string(contains_string("page=")).matches(req)
        True
        >>> has_query_string("").matches(Request("GET", "/search"))  # no query at all
        True
    """
    return HasField("query string", "query_string", wrap_matcher(q))


def has_arg(name: str, value: str | Matcher[Any] = ANY) -> Matcher[Request]:
    """Matches a request with query argument *name*, any of whose values matches.

    With ``?q=1&q=2`` both ``has_arg("q", "1")`` and ``has_arg("q", "2")``
    match; a mismatch lists every value.

    Examples::

        >>> args = MultiDict([("q", "1"), ("q", "2"), ("page", "3")])
        >>> req = Request("GET", "/search", query_string="q=1&q=2&page=3", args=args)
        >>> has_arg("q").matches(req), has_arg("q", "2").matches(req)  # present; any value
        (True, True)
        >>> has_arg("page", matches_regexp("^[0-9]+$")).matches(req)
        True
        >>> assert_that(req, has_arg("q", "3"))
        Traceback (most recent call last):
          ...
        AssertionError:
        Expected: a request with arg 'q' matching '3'
             but: arg 'q' had values ['1', '2']
    """
    return HasNamedValue("arg", "args", name, wrap_matcher(value))


def has_header(name: str, value: str | Matcher[Any] = ANY) -> Matcher[Request]:
    """Matches a request with header *name* (any case), any of whose values matches.

    Examples::

        >>> req = Request("GET", "/", headers=Headers({"X-Token": "abc", "Accept": "text/json"}))
        >>> has_header("X-Token").matches(req)  # present, any value
        True
        >>> has_header("x-token", "abc").matches(req)  # names ignore case
        True
        >>> has_header("Accept", contains_string("json")).matches(req)
        True
    """
    return HasNamedValue("header", "headers", name, wrap_matcher(value))


def has_no_header(name: str) -> Matcher[Request]:
    """Matches a request without header *name* (compared case-insensitively).

    Examples::

        >>> req = Request("GET", "/", headers=Headers({"X-Token": "abc"}))
        >>> has_no_header("Authorization").matches(req), has_no_header("x-token").matches(req)
        (True, False)
    """
    return HasNoHeader(name)


def has_cookie(name: str, value: str | Matcher[Any] = ANY) -> Matcher[Request]:
    """Matches a request whose ``Cookie`` header holds cookie *name*.

    Examples::

        >>> req = Request("GET", "/", cookies={"session": "s3cr3t", "theme": "dark"})
        >>> has_cookie("session").matches(req), has_cookie("session", "s3cr3t").matches(req)
        (True, True)
        >>> has_cookie("theme", is_in(["dark", "light"])).matches(req)
        True
    """
    return HasNamedValue("cookie", "cookies", name, wrap_matcher(value))


def has_data(v: bytes | str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request whose body is *v*.

    :param v: bytes, compared with the body as received; a str, compared with
        the body decoded (`~tserver.Request.text`); or a matcher, applied to
        the body bytes.

    String matchers such as ``contains_string`` work on the decoded body: use
    them with `has_text`.

    Examples::

        >>> req = Request("POST", "/notes", data="café".encode())
        >>> has_data("café".encode()).matches(req), has_data("café").matches(req)
        (True, True)
        >>> has_data(has_length(5)).matches(req)  # a matcher sees the bytes: é is two
        True
    """
    return _body_field(v)


def has_text(v: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request whose decoded body (`~tserver.Request.text`) is *v*.

    The body is decoded with the charset of its Content-Type, else UTF-8.

    Examples::

        >>> req = Request("POST", "/log", data=b"disk error on /dev/sda")
        >>> has_text("disk error on /dev/sda").matches(req)
        True
        >>> has_text(contains_string("error")).matches(req)
        True
    """
    return HasField("body text", "text", wrap_matcher(v), clip=True)


def has_json(v: Any) -> Matcher[Request]:
    """Matches a request whose body parses as JSON into *v*.

    A body that is not JSON does not match (the mismatch shows its start);
    the matcher never raises.

    Examples::

        >>> req = Request("POST", "/items", data=b'{"id": 12, "tags": ["a"]}')
        >>> has_json({"id": 12, "tags": ["a"]}).matches(req)
        True
        >>> has_json(has_entry("id", 12)).matches(req)
        True
        >>> assert_that(Request("POST", "/items", data=b"id=12"), has_json(anything()))
        Traceback (most recent call last):
          ...
        AssertionError:
        Expected: a request with JSON body
             but: body was not JSON: b'id=12'
    """
    return HasJson(wrap_matcher(v))


def has_form_field(name: str, value: str | Matcher[Any] = ANY) -> Matcher[Request]:
    """Matches a request with form field *name*, any of whose values matches.

    Form fields come from an urlencoded body or from the non-file parts of a
    multipart body (files: `has_file`).

    Examples::

        >>> req = Request("POST", "/signup", form=MultiDict({"user": "alice", "age": "42"}))
        >>> has_form_field("user").matches(req), has_form_field("user", "alice").matches(req)
        (True, True)
        >>> has_form_field("age", matches_regexp("^[0-9]+$")).matches(req)
        True
    """
    return HasNamedValue("form field", "form", name, wrap_matcher(value))


def has_file(
    name: str,
    filename: str | Matcher[Any] = ANY,
    content_type: str | Matcher[Any] = ANY,
    data: bytes | str | Matcher[Any] = ANY,
) -> Matcher[Request]:
    """Matches a request with a multipart file part named *name*.

    When the field holds several files, one of them must match every given
    detail.  A str *data* is compared UTF-8 encoded.

    Examples::

        >>> report = UploadedFile("upload", "report.csv", "text/csv", b"id,name")
        >>> req = Request("POST", "/upload", files={"upload": [report]})
        >>> has_file("upload").matches(req)
        True
        >>> has_file("upload", "report.csv", "text/csv", b"id,name").matches(req)
        True
        >>> has_file("upload", content_type=starts_with("image/")).matches(req)
        False
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    return HasFile(name, wrap_matcher(filename), wrap_matcher(content_type), wrap_matcher(data))


def from_ip(ip: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request sent from client address *ip*.

    Examples::

        >>> req = Request("GET", "/", client_ip="::1")
        >>> from_ip("127.0.0.1").matches(req), from_ip(is_in(["127.0.0.1", "::1"])).matches(req)
        (False, True)
    """
    return HasField("client IP", "client_ip", wrap_matcher(ip))


def has_version(v: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request made with HTTP version *v*.

    Examples::

        >>> req = Request("GET", "/", version="HTTP/1.0")
        >>> has_version("HTTP/1.0").matches(req), has_version(is_not("HTTP/1.0")).matches(req)
        (True, False)
    """
    return HasField("HTTP version", "version", wrap_matcher(v))


def on_connection(index: int | Matcher[Any]) -> Matcher[Request]:
    """Matches a request that came on connection *index* (`tserver.TestServer.connections`).

    Examples::

        >>> req = Request("GET", "/", connection=2, exchange=1)
        >>> on_connection(2).matches(req), on_connection(greater_than(2)).matches(req)
        (True, False)
    """
    return HasField("connection", "connection", wrap_matcher(index))


def reused_connection() -> Matcher[Request]:
    """Matches a request that came on a connection that carried an earlier one.

    That is, its `~tserver.Request.exchange` is ``1`` or more: the client
    kept the connection alive and used it again.

    Examples::

        >>> reused_connection().matches(Request("GET", "/", connection=0, exchange=1))
        True
        >>> reused_connection().matches(Request("GET", "/", connection=0, exchange=0))
        False
    """
    return HasField(
        "exchange on its connection",
        "exchange",
        described_as("a reused connection (exchange >= 1)", greater_than_or_equal_to(1)),
    )


def _entries(
    argument: str,
    entries: Mapping[str, Any] | None,
    label: str,
    attribute: str,
) -> list[RequestMatcher]:
    if entries is None:
        return []
    if not isinstance(entries, Mapping):
        raise TypeError(
            f"request_with: {argument} must be a mapping of name to value or "
            f"matcher, got {entries!r}"
        )
    return [
        HasNamedValue(label, attribute, str(name), wrap_matcher(value))
        for name, value in entries.items()
    ]


def request_with(
    *,
    method: str | Matcher[Any] = ANY,
    path: str | Matcher[Any] = ANY,
    args: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    cookies: Mapping[str, Any] | None = None,
    data: bytes | str | Matcher[Any] = ANY,
    json: Any = ANY,
    form: Mapping[str, Any] | None = None,
) -> Matcher[Request]:
    """Matches a request on several fields at once.

    Each argument means what the matcher of the same name means
    (`has_method`, `has_path`, `has_data`, `has_json`); *args*, *headers*,
    *cookies* and *form* map names to values or matchers and are checked as
    a subset (each named entry present and matching, others allowed).  A
    field left out is not checked; ``json=None`` expects the JSON ``null``.

    The description names only the constrained fields, and a mismatch only
    the fields that failed: ``method was 'GET', header 'X-Token' was absent``.

    Examples::

        >>> req = Request("POST", "/items", headers=Headers({"X-Token": "abd"}), data=b'{"id": 12}')
        >>> request_with(method="POST", path="/items").matches(req)
        True
        >>> request_with(headers={"X-Token": ANY}, json=has_entry("id", 12)).matches(req)
        True
        >>> request_with().matches(req)  # any request
        True
        >>> assert_that(req, request_with(method="GET", headers={"X-Token": "abc"}))
        Traceback (most recent call last):
          ...
        AssertionError:
        Expected: a request with method matching 'GET', header 'X-Token' matching 'abc'
             but: method was 'POST', header 'X-Token' was 'abd'
    """
    fields: list[RequestMatcher] = []
    if method is not ANY:
        fields.append(_method_field(method))
    if path is not ANY:
        fields.append(HasField("path", "path", wrap_matcher(path)))
    fields += _entries("args", args, "arg", "args")
    fields += _entries("headers", headers, "header", "headers")
    fields += _entries("cookies", cookies, "cookie", "cookies")
    if data is not ANY:
        fields.append(_body_field(data))
    if json is not ANY:
        fields.append(HasJson(wrap_matcher(json)))
    fields += _entries("form", form, "form field", "form")
    return RequestWith(fields)
