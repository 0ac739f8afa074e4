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

Example::

    from hamcrest import assert_that, has_entry
    from tserver.matchers import has_header, has_json, request_with

    assert_that(srv.request, has_header("X-Token", "abc"))
    assert_that(srv.history, has_item(request_with(method="POST", path="/items")))
    srv.add_response(Response(status=201), match=has_json(has_entry("id", 12)))

.. versionadded:: 1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hamcrest.core.core.isanything import anything
from hamcrest.core.helpers.wrap_matcher import wrap_matcher

from ._request_matchers import (
    HasField,
    HasFile,
    HasJson,
    HasNamedValue,
    HasNoHeader,
    RequestMatcher,
    RequestWith,
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
    "has_json",
    "has_method",
    "has_no_header",
    "has_path",
    "has_query_string",
    "has_text",
    "has_version",
    "request_with",
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

        has_method("POST")
        has_method("post")                      # the same
        has_method(is_in(["PUT", "PATCH"]))
    """
    return _method_field(m)


def has_path(p: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request whose raw path (without the query) is *p*.

    Examples::

        has_path("/api/items")
        has_path(starts_with("/api/"))
    """
    return HasField("path", "path", wrap_matcher(p))


def has_query_string(q: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request whose raw query string (without ``?``) is *q*.

    Examples::

        has_query_string("q=1&page=2")
        has_query_string(contains_string("page="))
        has_query_string("")                    # no query at all
    """
    return HasField("query string", "query_string", wrap_matcher(q))


def has_arg(name: str, value: str | Matcher[Any] = ANY) -> Matcher[Request]:
    """Matches a request with query argument *name*, any of whose values matches.

    With ``?q=1&q=2`` both ``has_arg("q", "1")`` and ``has_arg("q", "2")``
    match; a mismatch lists every value.

    Examples::

        has_arg("q")                            # present, any value
        has_arg("q", "1")
        has_arg("page", matches_regexp("^[0-9]+$"))
    """
    return HasNamedValue("arg", "args", name, wrap_matcher(value))


def has_header(name: str, value: str | Matcher[Any] = ANY) -> Matcher[Request]:
    """Matches a request with header *name* (any case), any of whose values matches.

    Examples::

        has_header("X-Token")                   # present, any value
        has_header("x-token", "abc")            # names ignore case
        has_header("Accept", contains_string("json"))
    """
    return HasNamedValue("header", "headers", name, wrap_matcher(value))


def has_no_header(name: str) -> Matcher[Request]:
    """Matches a request without header *name* (compared case-insensitively).

    Examples::

        has_no_header("Authorization")
    """
    return HasNoHeader(name)


def has_cookie(name: str, value: str | Matcher[Any] = ANY) -> Matcher[Request]:
    """Matches a request whose ``Cookie`` header holds cookie *name*.

    Examples::

        has_cookie("session")                   # present, any value
        has_cookie("session", "s3cr3t")
        has_cookie("theme", is_in(["dark", "light"]))
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

        has_data(b"request-data")
        has_data("café")                        # the decoded body
        has_data(has_length(greater_than(1000)))
    """
    return _body_field(v)


def has_text(v: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request whose decoded body (`~tserver.Request.text`) is *v*.

    The body is decoded with the charset of its Content-Type, else UTF-8.

    Examples::

        has_text("hello")
        has_text(contains_string("error"))
    """
    return HasField("body text", "text", wrap_matcher(v), clip=True)


def has_json(v: Any) -> Matcher[Request]:
    """Matches a request whose body parses as JSON into *v*.

    A body that is not JSON does not match (the mismatch shows its start);
    the matcher never raises.

    Examples::

        has_json({"id": 12, "tags": ["a"]})
        has_json(has_entry("id", 12))
        has_json(anything())                    # any valid JSON body
    """
    return HasJson(wrap_matcher(v))


def has_form_field(name: str, value: str | Matcher[Any] = ANY) -> Matcher[Request]:
    """Matches a request with form field *name*, any of whose values matches.

    Form fields come from an urlencoded body or from the non-file parts of a
    multipart body (files: `has_file`).

    Examples::

        has_form_field("user")                  # present, any value
        has_form_field("user", "alice")
        has_form_field("age", matches_regexp("^[0-9]+$"))
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

        has_file("upload")
        has_file("upload", filename="report.csv")
        has_file("upload", "a.txt", "text/plain", b"hello")
        has_file("avatar", content_type=starts_with("image/"))
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    return HasFile(name, wrap_matcher(filename), wrap_matcher(content_type), wrap_matcher(data))


def from_ip(ip: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request sent from client address *ip*.

    Examples::

        from_ip("127.0.0.1")
        from_ip(is_in(["127.0.0.1", "::1"]))
    """
    return HasField("client IP", "client_ip", wrap_matcher(ip))


def has_version(v: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request made with HTTP version *v*.

    Examples::

        has_version("HTTP/1.0")
        has_version(is_not("HTTP/1.0"))
    """
    return HasField("HTTP version", "version", wrap_matcher(v))


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

        request_with(method="POST", path="/items")
        request_with(args={"q": "1", "page": ANY}, headers={"X-Token": "abc"})
        request_with(json=has_entry("id", 12), cookies={"session": "s3cr3t"})
        request_with()                          # any request
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
