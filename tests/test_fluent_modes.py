"""The fluent assertions and the matchers against a real server, in every mode.

The exact texts are pinned by test_assertions.py and test_matchers.py on plain
values; here the same layer runs over what a real server recorded from real
clients, so a mode that loses a field or mangles a value fails.
"""

from __future__ import annotations

import http.client
import threading
from typing import Any
from urllib.request import Request as UrlRequest
from urllib.request import urlopen

import httpx
import pytest
import requests
from hamcrest import (
    all_of,
    assert_that,
    contains_exactly,
    contains_string,
    has_entry,
    has_item,
    is_not,
    starts_with,
)

from tserver import NoRequestError, Response, TestServer
from tserver.matchers import (
    from_ip,
    has_arg,
    has_cookie,
    has_file,
    has_form_field,
    has_header,
    has_method,
    has_path,
    request_with,
)


def test_chain_over_urllib_request(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        req = UrlRequest(
            srv.get_url("/api/items?q=1&q=2&blank="),
            data=b'{"id": 12, "tags": ["a"]}',
            headers={"Content-Type": "application/json", "X-Token": "abc", "Cookie": "sid=s1"},
            method="PUT",
        )
        urlopen(req).read()
        result = (
            srv.assert_request()
            .has_method("put")
            .has_path("/api/items")
            .has_query_string("q=1&q=2&blank=")
            .has_arg("q", "2")
            .has_arg("blank", "")
            .has_header("x-token", "abc")
            .has_no_header("X-Missing")
            .has_cookie("sid", "s1")
            .has_json(has_entry("id", 12))
            .has_text(contains_string('"tags"'))
            .from_ip("127.0.0.1")
            .has_version("HTTP/1.1")
            .matches(request_with(method="PUT", args={"q": "1"}, headers={"X-Token": "abc"}))
        )
        assert result.request == srv.request


def test_form_and_files_over_requests(mode: str) -> None:
    with TestServer(mode=mode) as srv, requests.Session() as session:
        session.post(
            srv.get_url("/upload"),
            data={"title": "report", "tag": ["x", "y"]},
            files={"doc": ("r.txt", b"hello", "text/plain")},
        )
        srv.assert_request().has_form_field("tag", "y").has_form_field("title").has_file(
            "doc", filename="r.txt", content_type="text/plain", data=b"hello"
        )
        assert_that(
            srv.request,
            all_of(has_form_field("title", "report"), has_file("doc"), is_not(has_file("nope"))),
        )


def test_failure_message_names_the_mismatch_and_dumps_the_request(mode: str) -> None:
    with TestServer(mode=mode) as srv, httpx.Client() as client:
        client.get(srv.get_url("/health"))
        client.post(srv.get_url("/items"), headers={"X-Token": "abd"}, content=b"body")
        with pytest.raises(AssertionError) as caught:
            srv.assert_request().has_header("X-Token", "abc")
        message = str(caught.value)
        assert message.startswith("request #1 of 2 did not match\n")
        assert "Expected: a request with header 'X-Token' matching 'abc'" in message
        assert "but: header 'X-Token' was 'abd'" in message
        assert "#0  GET  /health" in message
        assert "> #1  POST /items" in message
        assert "body: b'body'" in message


def test_history_assertions(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        for path in ("/a", "/b?x=1", "/c"):
            urlopen(srv.get_url(path)).read()
        (
            srv.assert_history()
            .has_length(3)
            .has_item(request_with(path="/b", args={"x": "1"}))
            .has_no_item(has_path("/admin"))
            .contains_in_order(has_path("/a"), has_path("/c"))
            .matches(contains_exactly(has_path("/a"), has_path("/b"), has_path("/c")))
        )
        assert_that(srv.history, has_item(all_of(has_method("GET"), has_arg("x", "1"))))
        with pytest.raises(AssertionError) as caught:
            srv.assert_history().has_item(has_path("/missing"))
        assert "none of 3 recorded requests matched" in str(caught.value)


def test_no_requests(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.assert_no_requests()
        with pytest.raises(NoRequestError) as no_request:
            srv.assert_request()
        assert isinstance(no_request.value, AssertionError)
        assert srv.url in str(no_request.value)
        with pytest.raises(AssertionError) as caught:
            srv.assert_history().has_length(1)
        assert f"no requests were recorded (server at {srv.url})" in str(caught.value)
        urlopen(srv.url).read()
        with pytest.raises(AssertionError):
            srv.assert_no_requests()


def _signal_when_waiting(srv: TestServer, waiting: threading.Event) -> None:
    """Set *waiting* once *srv* is really waiting for a request (instrumentation).

    Thread mode: right after the recorder has registered the wait.  Subprocess
    mode: right after the wait command has gone to the child, which handles
    its commands and its connections in the order they arrive.
    """
    backend: Any = srv._backend
    if srv.mode == "thread":
        recorder = backend.host.recorder
        register = recorder.pending_history

        def registered(count: int) -> Any:
            result = register(count)
            waiting.set()
            return result

        recorder.pending_history = registered
    else:
        channel = backend._channel
        send = channel.send

        def sent(*args: Any, **kwargs: Any) -> int:
            seq = send(*args, **kwargs)
            waiting.set()
            return int(seq)

        channel.send = sent


def test_assert_request_waits_with_timeout(mode: str) -> None:
    """The request is sent only once the wait has begun: the wait is what finds it."""
    with TestServer(mode=mode) as srv:
        waiting = threading.Event()
        _signal_when_waiting(srv, waiting)

        def send_once_waiting() -> None:
            assert waiting.wait(10)
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
            try:
                conn.request("DELETE", "/later")
                conn.getresponse().read()
            finally:
                conn.close()

        worker = threading.Thread(target=send_once_waiting)
        worker.start()
        try:
            assert srv.request_count == 0
            srv.assert_request(index=0, timeout=5.0).has_method("DELETE").has_path("/later")
        finally:
            worker.join()
        assert waiting.is_set()


def test_matchers_as_rule_selectors(mode: str) -> None:
    with TestServer(mode=mode) as srv, requests.Session() as session:
        srv.add_response(
            Response(b"admin", status=403), count=None, match=has_header("X-Role", "admin")
        )
        srv.add_response(Response(b"v2"), count=None, path=starts_with("/v2/"))
        assert session.get(srv.get_url("/x"), headers={"X-Role": "admin"}).status_code == 403
        assert session.get(srv.get_url("/v2/items")).text == "v2"
        assert session.get(srv.get_url("/v1/items")).status_code == 200
        srv.assert_history().has_length(3).has_item(from_ip("127.0.0.1"))
        srv.assert_history().has_no_item(has_cookie("sid"))
        assert_that(srv.history[1], has_path("/v2/items"))
