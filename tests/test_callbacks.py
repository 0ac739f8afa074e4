"""SPEC §3.1/§3.2 callbacks: ``callback(request) -> Response | bytes | str``.

A callback may be ``async``; bytes or str answer 200 with the default
headers, a `Response` answers exactly.  One that raises gets a 500 with the
traceback, and `check()` (so also the end of a ``with TestServer()`` block)
raises an `AssertionError` holding type, message and traceback, whose
``__cause__`` is the original exception.  In subprocess mode the callback
runs in the child: a lambda or a closure is refused up front.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, cast

import callbacks_for_tests as cb
import pytest
from hamcrest import has_property, starts_with
from hamcrest.core.base_matcher import BaseMatcher
from hamcrest.core.description import Description
from helpers.clients import fetch

from tserver import Request, Response, TestServer, __version__


@pytest.mark.parametrize("client", ["requests", "http.client"])
def test_callback_returning_str_or_bytes_gets_200_and_default_headers(
    mode: str, client: str
) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(callback=cb.echo_text), path="/text")
        srv.add_response(Response(callback=cb.echo_bytes, status=500), path="/bytes")
        text = fetch(client, srv.get_url("/text"), "PUT", data="héllo".encode())
        raw = fetch(client, srv.get_url("/bytes"), "POST", data=b"\x00\x01")
    assert (text.status, text.body) == (200, "PUT /text héllo".encode())
    # the rule's own status does not apply: the callback's answer does
    assert (raw.status, raw.body) == (200, b"got:\x00\x01")
    for reply in (text, raw):
        assert reply.header("Content-Type") == "text/html; charset=utf-8"
        assert reply.header("Server") == f"tserver/{__version__}"


@pytest.mark.parametrize("client", ["httpx", "urllib"])
def test_callback_returning_a_response_answers_exactly_that(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("callback", cb.created_json)
        srv.set_response("headers", {"X-Default": "not used"})
        reply = fetch(client, srv.get_url("/new?q=7"), "POST", data=b"{}")
    assert reply.status == 201
    assert reply.header("Location") == "/items/7"
    assert reply.header("X-Callback") == "yes"
    assert reply.header("X-Default") is None
    assert reply.header("Content-Type") == "application/json"
    assert reply.body == b'{"path": "/new", "q": "7"}'


@pytest.mark.parametrize("client", ["http.client", "requests"])
def test_callback_may_return_a_stream_or_a_fault(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("callback", cb.stream_or_fault)
        reply = fetch(client, srv.get_url("/stream"))
        assert (reply.status, reply.body) == (206, b"part1,part2")
        assert reply.header("Transfer-Encoding") == "chunked"
        with pytest.raises(OSError):  # RemoteDisconnected, requests.ConnectionError
            fetch(client, srv.get_url("/fault"))
        assert [r.path for r in srv.history] == ["/stream", "/fault"]


@pytest.mark.parametrize("client", ["requests", "httpx"])
def test_async_callback(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(callback=cb.async_echo), count=None)
        replies = [fetch(client, srv.get_url(f"/a{n}")) for n in range(3)]
    assert [r.body for r in replies] == [b"async /a0", b"async /a1", b"async /a2"]
    assert {r.header("X-Async") for r in replies} == {"1"}


def test_sleep_is_waited_before_the_callback_runs(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(sleep=0.3, callback=cb.received_delay))
        srv.set_response("sleep", 0.2)
        srv.set_response("callback", cb.received_delay)
        by_rule = float(fetch("http.client", srv.url).body)
        by_default = float(fetch("requests", srv.url).body)
    assert by_rule >= 0.3
    assert by_default >= 0.2


@pytest.mark.parametrize("client", ["requests", "http.client"])
def test_raising_callback_gives_500_with_traceback_and_fails_check(mode: str, client: str) -> None:
    cb.RAISED.clear()
    srv = TestServer(mode=mode).start()
    try:
        srv.add_response(Response(callback=cb.raise_value_error), path="/boom")
        reply = fetch(client, srv.get_url("/boom"))
        assert reply.status == 500
        assert reply.header("Content-Type") == "text/plain; charset=utf-8"
        body = reply.body.decode()
        assert body.startswith("tserver: the response callback raised\n\nTraceback (most")
        assert "in raise_value_error" in body
        assert body.rstrip().endswith("ValueError: boom from callback on /boom")
        # the server keeps serving
        assert fetch(client, srv.get_url("/next")).status == 200
    finally:
        srv.stop()
    with pytest.raises(AssertionError) as info:
        srv.check()
    message = str(info.value)
    assert message.startswith(
        f"tserver at {srv.url} found problems while serving:\n"
        "- ValueError: boom from callback on /boom while answering GET /boom\n"
        "    Traceback (most recent call last):\n"
    )
    assert "callbacks_for_tests.py" in message
    assert "in raise_value_error" in message
    assert message.endswith("    ValueError: boom from callback on /boom")
    cause = info.value.__cause__
    assert isinstance(cause, ValueError)
    assert cause.args == ("boom from callback on /boom",)
    if mode == "thread":
        assert cause is cb.RAISED[-1]


def _two_failing_callbacks(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("callback", cb.raise_value_error)
        assert fetch("httpx", srv.get_url("/x")).status == 500
        assert fetch("urllib", srv.get_url("/y")).status == 500


def test_with_block_fails_when_a_callback_raised(mode: str) -> None:
    with pytest.raises(AssertionError) as info:
        _two_failing_callbacks(mode)
    message = str(info.value)
    assert "- ValueError: boom from callback on /x while answering GET /x" in message
    assert "- ValueError: boom from callback on /y while answering GET /y" in message
    assert isinstance(info.value.__cause__, ValueError)  # the first one
    assert info.value.__cause__.args == ("boom from callback on /x",)


@pytest.mark.parametrize("client", ["requests", "httpx"])
def test_unpicklable_exception_still_reports_type_message_and_traceback(
    mode: str, client: str
) -> None:
    srv = TestServer(mode=mode).start()
    try:
        srv.set_response("callback", cb.raise_unpicklable)
        assert fetch(client, srv.url).status == 500
    finally:
        srv.stop()
    with pytest.raises(AssertionError) as info:
        srv.check()
    message = str(info.value)
    assert "- UnpicklableError: code 42: cannot cross while answering GET /" in message
    assert "in raise_unpicklable" in message
    cause = info.value.__cause__
    assert cause is not None
    if mode == "thread":
        assert isinstance(cause, cb.UnpicklableError)
    else:  # it could not cross from the child: a stand-in with its text
        assert str(cause) == "UnpicklableError: code 42: cannot cross"


@pytest.mark.parametrize("client", ["urllib", "http.client"])
def test_callback_returning_the_wrong_type_is_an_error(mode: str, client: str) -> None:
    srv = TestServer(mode=mode).start()
    try:
        srv.add_response(Response(callback=cb.return_wrong_type))
        assert fetch(client, srv.url).status == 500
    finally:
        srv.stop()
    with pytest.raises(AssertionError, match=r"returned 12345; expected a Response, bytes or str"):
        srv.check()


# -- what may cross to the child -------------------------------------------------


class _LocalMatcher(BaseMatcher[Request]):
    """A matcher class that pickles (module level, importable)."""

    def _matches(self, item: Request) -> bool:
        return item.path == "/local"

    def describe_to(self, description: Description) -> None:
        description.append_text("path /local")


def test_module_level_callbacks_and_matchers_work_in_every_mode(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(
            Response(callback=functools.partial(cb.echo_text)),
            path=re.compile(r"/p/\d+"),
            match=cb.HasBodyLongerThan(1),
        )
        srv.add_response(Response(b"matched"), path=starts_with("/m"), match=_LocalMatcher())
        srv.add_response(Response(b"prop"), match=has_property("method", "PATCH"))
        assert fetch("requests", srv.get_url("/p/1"), "POST", data=b"ab").body == b"POST /p/1 ab"
        assert fetch("httpx", srv.get_url("/local")).body == b""  # not /m...
        assert fetch("httpx", srv.get_url("/prop"), "PATCH", data=b"").body == b"prop"
        srv.add_response(Response(b"local"), match=_LocalMatcher())
        assert fetch("urllib", srv.get_url("/local")).body == b"local"


def _closure_factory() -> Callable[[Request], str]:
    secret = "s"

    def closure(request: Request) -> str:
        return secret

    return closure


class _ClosureMatcher(BaseMatcher[Request]):
    def _matches(self, item: Request) -> bool:
        return True

    def describe_to(self, description: Description) -> None:
        description.append_text("anything")


def test_lambdas_and_closures_are_refused_in_subprocess_mode(mode: str) -> None:
    def make_local_matcher() -> BaseMatcher[Request]:
        class Local(_ClosureMatcher):
            pass

        return Local()

    closure = _closure_factory()
    attempts: dict[str, Callable[[TestServer], None]] = {
        "add_response callback lambda": lambda s: s.add_response(
            Response(callback=lambda request: "x")
        ),
        "add_response callback closure": lambda s: s.add_response(Response(callback=closure)),
        "set_response callback": lambda s: s.set_response("callback", closure),
        "set_response_once callback": lambda s: s.set_response_once(
            "callback", lambda request: "x"
        ),
        "add_response path": lambda s: s.add_response(Response(), path=make_local_matcher()),
        "add_response match": lambda s: s.add_response(Response(), match=make_local_matcher()),
        "match wrapping a local class": lambda s: s.add_response(
            Response(), match=has_property("path", cast(Any, make_local_matcher()))
        ),
    }
    srv = TestServer(mode=mode).start()
    try:
        for name, attempt in attempts.items():
            if mode == "subprocess":
                with pytest.raises(ValueError) as info:
                    attempt(srv)
                message = str(info.value)
                assert re.search(r"lambda or a closure|does not pickle", message), name
                assert "subprocess mode runs it in the child process" in message, name
                assert "module level" in message, name
            else:
                attempt(srv)  # thread mode runs them in this process
        if mode == "thread":
            srv.reset()
            srv.add_response(Response(callback=closure), count=2)
            assert fetch("requests", srv.url).body == b"s"
            assert fetch("http.client", srv.url).body == b"s"
        else:
            assert srv.history == []
            assert fetch("requests", srv.url).status == 200  # nothing was added
    finally:
        srv.stop()
    srv.check()


def test_refusal_message_names_the_call_and_the_object() -> None:
    srv = TestServer(mode="subprocess")  # checked before start: no child needed
    with pytest.raises(ValueError) as info:
        srv.add_response(Response(callback=lambda request: "x"))
    assert str(info.value) == (
        "add_response: callback test_refusal_message_names_the_call_and_the_object"
        ".<locals>.<lambda> is a lambda or a closure; subprocess mode runs it in "
        "the child process, so it must be picklable and importable there: use a "
        "function or class defined at module level in an importable module (not "
        "a lambda, a closure or a __main__ name)"
    )
