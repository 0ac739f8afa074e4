"""The fluent assertions: `RequestAssertion` and `HistoryAssertion`.

Thin sugar over `tserver.matchers`: each method builds the matcher of the same
name, evaluates it at once against a snapshot of the history, and either
returns the assertion (so calls chain) or raises `AssertionError`.  The
message follows PyHamcrest's ``Expected:`` / ``but:`` lines and adds the
recorded traffic (rendered by `tserver._formatting`)::

    request #2 of 3 did not match
    Expected: a request with header 'X-Token' matching 'abc'
         but: header 'X-Token' was 'abd'
    Recorded requests (oldest first):
        #0  GET  /health
        ...

Frames of this module are hidden from pytest (``__tracebackhide__``) and
unittest (``__unittest``) tracebacks, so a failure points at the test line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hamcrest.core.core.isnot import is_not
from hamcrest.core.helpers.wrap_matcher import wrap_matcher
from hamcrest.core.string_description import StringDescription
from hamcrest.library.collection.issequence_containing import has_item
from hamcrest.library.object.haslength import has_length

from . import _ws_matchers as ws_matchers
from . import matchers
from ._errors import NoRequestError
from ._formatting import (
    HISTORY_LIMIT,
    format_conversation,
    format_history,
    mismatch_text,
    no_request_text,
    pluralize,
)
from ._request_matchers import ContainsInOrder

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hamcrest.core.matcher import Matcher

    from ._request import Request
    from ._websocket import WebSocketSession

__all__ = ["HistoryAssertion", "RequestAssertion", "WebSocketAssertion", "assert_no_requests"]

__unittest = True

_BUT_INDENT = " " * 10  # continuation lines of "     but: "


def _failure(
    headline: str,
    expected: Matcher[Any] | str,
    but: str,
    traffic: str,
) -> AssertionError:
    """The error of a failed assertion: headline, Expected, but, traffic."""
    description = StringDescription()
    description.append_text(f"{headline}\nExpected: ")
    if isinstance(expected, str):
        description.append_text(expected)
    else:
        description.append_description_of(expected)
    description.append_text(f"\n     but: {but}\n{traffic}")
    return AssertionError(str(description))


def _history_headline(count: int) -> str:
    return f"history of {pluralize(count, 'request')} did not match"


def _recorded(count: int) -> str:
    """``"no requests were recorded"``, ``"1 request was recorded"``..."""
    if count == 0:
        return "no requests were recorded"
    return f"{pluralize(count, 'request')} {'was' if count == 1 else 'were'} recorded"


class RequestAssertion:
    """Fluent assertions on one recorded request.

    Made by `tserver.TestServer.assert_request`.  Each method checks one
    thing with the `tserver.matchers` matcher of the same name and returns
    the assertion, so checks chain; the first failing check raises
    `AssertionError` with the expectation, the mismatch and the recorded
    traffic, this request marked and shown in full.

    :param history: the recorded requests, oldest first.
    :param index: the position of the request in *history* (negative counts
        from the end).
    :param url: the server's URL, for the messages.
    :raises tserver.NoRequestError: when *history* has no request at *index*.

    Example (the client is `urllib.request`)::

        >>> from urllib.request import urlopen
        >>> from tserver import TestServer
        >>> srv = TestServer().start()
        >>> urlopen(srv.get_url("/items?id=7"), data=b"name=pen").read()
        b''
        >>> srv.assert_request().has_method("POST").has_path("/items").has_form_field("name")
        <RequestAssertion request #0 of 1: POST /items?id=7>
        >>> srv.assert_request().has_arg("id", "8")
        Traceback (most recent call last):
          ...
        AssertionError: request #0 of 1 did not match
        Expected: a request with arg 'id' matching '8'
             but: arg 'id' was '7'
        Recorded requests (oldest first):
          > #0  POST /items?id=7  form 8 B
        ...
        >>> srv.stop()

    .. versionadded:: 1.0
    """

    __slots__ = ("_history", "_index", "_statuses", "_url")

    def __init__(
        self,
        history: Sequence[Request],
        index: int,
        url: str,
        statuses: Sequence[int | None] | None = None,
    ) -> None:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"RequestAssertion: index {index!r} must be an int")
        count = len(history)
        if not -count <= index < count:
            raise NoRequestError(no_request_text(index, count, count, url))
        self._history = tuple(history)
        self._index = index % count
        self._url = url
        self._statuses = statuses

    @property
    def request(self) -> Request:
        """The `~tserver.Request` under test."""
        return self._history[self._index]

    def __repr__(self) -> str:
        return (
            f"<RequestAssertion request #{self._index} of {len(self._history)}: "
            f"{self.request.method} {self.request.target}>"
        )

    def _check(self, matcher: Matcher[Any]) -> RequestAssertion:
        __tracebackhide__ = True
        if matcher.matches(self.request):
            return self
        raise _failure(
            f"request #{self._index} of {len(self._history)} did not match",
            matcher,
            mismatch_text(matcher, self.request),
            format_history(
                self._history, subject=self._index, url=self._url, statuses=self._statuses
            ),
        )

    def matches(self, matcher: Any) -> RequestAssertion:
        """Assert that the request satisfies *matcher* (any hamcrest matcher)."""
        __tracebackhide__ = True
        return self._check(wrap_matcher(matcher))

    def has_method(self, m: str | Matcher[Any]) -> RequestAssertion:
        """Assert the method: see `tserver.matchers.has_method`."""
        __tracebackhide__ = True
        return self._check(matchers.has_method(m))

    def has_path(self, p: str | Matcher[Any]) -> RequestAssertion:
        """Assert the path: see `tserver.matchers.has_path`."""
        __tracebackhide__ = True
        return self._check(matchers.has_path(p))

    def has_host(self, h: str | Matcher[Any]) -> RequestAssertion:
        """Assert the host the client asked for: see `tserver.matchers.has_host`."""
        __tracebackhide__ = True
        return self._check(matchers.has_host(h))

    def has_query_string(self, q: str | Matcher[Any]) -> RequestAssertion:
        """Assert the query string: see `tserver.matchers.has_query_string`."""
        __tracebackhide__ = True
        return self._check(matchers.has_query_string(q))

    def has_arg(self, name: str, value: str | Matcher[Any] = matchers.ANY) -> RequestAssertion:
        """Assert a query argument: see `tserver.matchers.has_arg`."""
        __tracebackhide__ = True
        return self._check(matchers.has_arg(name, value))

    def has_header(self, name: str, value: str | Matcher[Any] = matchers.ANY) -> RequestAssertion:
        """Assert a header: see `tserver.matchers.has_header`."""
        __tracebackhide__ = True
        return self._check(matchers.has_header(name, value))

    def has_no_header(self, name: str) -> RequestAssertion:
        """Assert a header is absent: see `tserver.matchers.has_no_header`."""
        __tracebackhide__ = True
        return self._check(matchers.has_no_header(name))

    def has_cookie(self, name: str, value: str | Matcher[Any] = matchers.ANY) -> RequestAssertion:
        """Assert a cookie: see `tserver.matchers.has_cookie`."""
        __tracebackhide__ = True
        return self._check(matchers.has_cookie(name, value))

    def has_data(self, v: bytes | str | Matcher[Any]) -> RequestAssertion:
        """Assert the body: see `tserver.matchers.has_data`."""
        __tracebackhide__ = True
        return self._check(matchers.has_data(v))

    def has_text(self, v: str | Matcher[Any]) -> RequestAssertion:
        """Assert the decoded body: see `tserver.matchers.has_text`."""
        __tracebackhide__ = True
        return self._check(matchers.has_text(v))

    def has_json(self, v: Any) -> RequestAssertion:
        """Assert the JSON body: see `tserver.matchers.has_json`."""
        __tracebackhide__ = True
        return self._check(matchers.has_json(v))

    def has_form_field(
        self, name: str, value: str | Matcher[Any] = matchers.ANY
    ) -> RequestAssertion:
        """Assert a form field: see `tserver.matchers.has_form_field`."""
        __tracebackhide__ = True
        return self._check(matchers.has_form_field(name, value))

    def has_file(
        self,
        name: str,
        filename: str | Matcher[Any] = matchers.ANY,
        content_type: str | Matcher[Any] = matchers.ANY,
        data: bytes | str | Matcher[Any] = matchers.ANY,
    ) -> RequestAssertion:
        """Assert an uploaded file: see `tserver.matchers.has_file`."""
        __tracebackhide__ = True
        return self._check(matchers.has_file(name, filename, content_type, data))

    def from_ip(self, ip: str | Matcher[Any]) -> RequestAssertion:
        """Assert the client address: see `tserver.matchers.from_ip`."""
        __tracebackhide__ = True
        return self._check(matchers.from_ip(ip))

    def has_version(self, v: str | Matcher[Any]) -> RequestAssertion:
        """Assert the HTTP version: see `tserver.matchers.has_version`."""
        __tracebackhide__ = True
        return self._check(matchers.has_version(v))

    def on_connection(self, index: int | Matcher[Any]) -> RequestAssertion:
        """Assert the connection it came on: see `tserver.matchers.on_connection`."""
        __tracebackhide__ = True
        return self._check(matchers.on_connection(index))

    def reused_connection(self) -> RequestAssertion:
        """Assert it came on a reused connection: see `tserver.matchers.reused_connection`."""
        __tracebackhide__ = True
        return self._check(matchers.reused_connection())


class HistoryAssertion:
    """Fluent assertions on the whole recorded history, oldest first.

    Made by `tserver.TestServer.assert_history`.  Each method evaluates at
    once and returns the assertion, so checks chain; a failure raises
    `AssertionError` with the expectation, the mismatch and the recorded
    traffic.

    :param history: the recorded requests, oldest first.
    :param url: the server's URL, for the messages.

    Example (the client is `urllib.request`)::

        >>> from urllib.request import urlopen
        >>> from tserver import TestServer
        >>> from tserver.matchers import has_path, request_with
        >>> srv = TestServer().start()
        >>> for path in ("/login", "/health", "/logout"):
        ...     urlopen(srv.get_url(path)).close()
        >>> srv.assert_history().has_length(3).contains_in_order(
        ...     has_path("/login"), has_path("/logout")
        ... )
        <HistoryAssertion of 3 requests>
        >>> srv.assert_history().has_item(request_with(method="DELETE"))
        Traceback (most recent call last):
          ...
        AssertionError: history of 3 requests did not match
        Expected: a sequence containing a request with method matching 'DELETE'
             but: none of 3 recorded requests matched
        ...
        >>> srv.stop()

    .. versionadded:: 1.0
    """

    __slots__ = ("_history", "_statuses", "_url")

    def __init__(
        self,
        history: Sequence[Request],
        url: str,
        statuses: Sequence[int | None] | None = None,
    ) -> None:
        self._history = tuple(history)
        self._url = url
        self._statuses = statuses

    @property
    def history(self) -> list[Request]:
        """The recorded requests under test, oldest first."""
        return list(self._history)

    def __repr__(self) -> str:
        return f"<HistoryAssertion of {pluralize(len(self._history), 'request')}>"

    def _fail(
        self, expected: Matcher[Any] | str, but: str, subject: int | None = None
    ) -> AssertionError:
        return _failure(
            _history_headline(len(self._history)),
            expected,
            but,
            format_history(self._history, subject=subject, url=self._url, statuses=self._statuses),
        )

    def matches(self, matcher: Any) -> HistoryAssertion:
        """Assert that the list of requests satisfies *matcher*.

        The matcher gets a ``list`` of `~tserver.Request`, so sequence
        matchers such as ``contains_exactly`` and ``only_contains`` apply.
        """
        __tracebackhide__ = True
        wrapped = wrap_matcher(matcher)
        if wrapped.matches(self.history):
            return self
        raise self._fail(wrapped, mismatch_text(wrapped, self.history))

    def has_length(self, n: int | Matcher[Any]) -> HistoryAssertion:
        """Assert how many requests were recorded (an int or a matcher)."""
        __tracebackhide__ = True
        matcher = has_length(n)
        if matcher.matches(self._history):
            return self
        raise self._fail(matcher, _recorded(len(self._history)))

    def used_connections(self, n: int | Matcher[Any]) -> HistoryAssertion:
        """Assert that the requests came on exactly *n* distinct connections (or a matcher).

        The mismatch names each connection with the requests it carried, so
        a client that did not reuse its keep-alive connection shows at once.
        """
        __tracebackhide__ = True
        by_connection: dict[int, list[int]] = {}
        for number, request in enumerate(self._history):
            by_connection.setdefault(request.connection, []).append(number)
        matcher: Matcher[Any] = wrap_matcher(n)
        if matcher.matches(len(by_connection)):
            return self
        described = "; ".join(
            f"connection {index}: requests {', '.join(f'#{i}' for i in numbers)}"
            for index, numbers in by_connection.items()
        )
        raise self._fail(
            f"requests on {StringDescription().append_description_of(matcher)} connection(s)",
            f"they came on {pluralize(len(by_connection), 'connection')}"
            + (f" ({described})" if described else ""),
        )

    def has_item(self, m: Any) -> HistoryAssertion:
        """Assert that at least one request matches *m* (a matcher or a value).

        The mismatch gives, for each request, why it did not match.
        """
        __tracebackhide__ = True
        element = wrap_matcher(m)
        matcher = has_item(element)
        if matcher.matches(self._history):
            return self
        count = len(self._history)
        if count == 0:
            raise self._fail(matcher, "the history was empty")
        lines = [f"none of {pluralize(count, 'recorded request')} matched"]
        for i, request in enumerate(self._history[:HISTORY_LIMIT]):
            lines.append(f"{_BUT_INDENT}#{i}: {mismatch_text(element, request)}")
        if count > HISTORY_LIMIT:
            lines.append(f"{_BUT_INDENT}... and {count - HISTORY_LIMIT} more")
        raise self._fail(matcher, "\n".join(lines))

    def has_no_item(self, m: Any) -> HistoryAssertion:
        """Assert that no request matches *m* (a matcher or a value).

        The mismatch names every request that matched; the first is shown in
        full.
        """
        __tracebackhide__ = True
        element: Matcher[Any] = wrap_matcher(m)
        matcher: Matcher[Sequence[Any]] = is_not(has_item(element))
        if matcher.matches(self._history):
            return self
        hits = [i for i, r in enumerate(self._history) if element.matches(r)]
        where = ", ".join(f"#{i}" for i in hits)
        count = pluralize(len(self._history), "recorded request")
        raise self._fail(matcher, f"{len(hits)} of {count} matched: {where}", hits[0])

    def contains_in_order(self, *matchers: Any) -> HistoryAssertion:
        """Assert that requests matching *matchers* appear in this order.

        Other requests may come before, between and after them; each matcher
        may be a matcher or a value.
        """
        __tracebackhide__ = True
        if not matchers:
            raise TypeError("contains_in_order: expected at least one matcher")
        matcher = ContainsInOrder([wrap_matcher(m) for m in matchers])
        if matcher.matches(self.history):
            return self
        raise self._fail(matcher, mismatch_text(matcher, self.history))


def assert_no_requests(
    history: Sequence[Request], url: str, statuses: Sequence[int | None] | None = None
) -> None:
    """Raise `AssertionError`, listing the traffic, unless *history* is empty.

    The implementation of `tserver.TestServer.assert_no_requests`.
    """
    __tracebackhide__ = True
    if history:
        raise _failure(
            _history_headline(len(history)),
            "no requests",
            _recorded(len(history)),
            format_history(history, url=url, statuses=statuses),
        )


class WebSocketAssertion:
    """Fluent assertions on one WebSocket session.

    Made by `tserver.TestServer.assert_websocket`.  Each method checks one
    thing with the matcher of `tserver.ws` of the same name and returns the
    assertion, so checks chain; the first failing check raises
    `AssertionError` with the expectation, the mismatch and the whole
    conversation, one line a message.

    :param session: the session.
    """

    __slots__ = ("session",)

    def __init__(self, session: WebSocketSession) -> None:
        self.session: WebSocketSession = session

    def __repr__(self) -> str:
        return f"<WebSocketAssertion {self.session!r}>"

    def matches(self, matcher: Matcher[Any]) -> WebSocketAssertion:
        """Assert that the session matches any hamcrest *matcher* over it."""
        __tracebackhide__ = True
        if not matcher.matches(self.session):
            raise _failure(
                f"WebSocket session #{self.session.index} did not match",
                matcher,
                mismatch_text(matcher, self.session),
                format_conversation(self.session),
            )
        return self

    def received(self, *items: Any) -> WebSocketAssertion:
        """Assert the client's messages, exactly and in order: see `tserver.ws.received`."""
        __tracebackhide__ = True
        return self.matches(ws_matchers.received(*items))

    def received_item(self, item: Any) -> WebSocketAssertion:
        """Assert one message among the client's: see `tserver.ws.received_item`."""
        __tracebackhide__ = True
        return self.matches(ws_matchers.received_item(item))

    def sent(self, *items: Any) -> WebSocketAssertion:
        """Assert the server's messages, exactly and in order: see `tserver.ws.sent`."""
        __tracebackhide__ = True
        return self.matches(ws_matchers.sent(*items))

    def closed_with(self, code: Any, reason: Any = None, by: Any = None) -> WebSocketAssertion:
        """Assert the close: see `tserver.ws.closed_with`."""
        __tracebackhide__ = True
        return self.matches(ws_matchers.closed_with(code, reason, by))

    def has_subprotocol(self, name: Any) -> WebSocketAssertion:
        """Assert the subprotocol agreed: see `tserver.ws.has_subprotocol`."""
        __tracebackhide__ = True
        return self.matches(ws_matchers.has_subprotocol(name))

    def is_open(self) -> WebSocketAssertion:
        """Assert that the session was open when read: see `tserver.ws.is_open`."""
        __tracebackhide__ = True
        return self.matches(ws_matchers.is_open())

    def is_closed(self) -> WebSocketAssertion:
        """Assert that the session had ended when read."""
        __tracebackhide__ = True
        return self.matches(is_not(ws_matchers.is_open()))
