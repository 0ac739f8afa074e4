"""`tserver.testing.AsyncTestServerTestCase`: tornado.testing with a recording server.

The classes named ``Test*`` below are collected by pytest as ordinary unittest
cases.  Cases that must fail (a swallowed callback error, a strict miss) are
defined inside a test function and run with a `unittest.TestResult`, so
their failure is an observed result, not a failure of this suite.
"""

from __future__ import annotations

import asyncio
import threading
import unittest

import pytest
from hamcrest import assert_that, contains_string, has_length
from tornado.httpclient import AsyncHTTPClient
from tornado.testing import gen_test

from tserver import (
    Request,
    Response,
    ServerStateError,
    TestServer,
    WaitTimeoutError,
)
from tserver.testing import AsyncTestServerTestCase


def run_case(case_class: type[unittest.TestCase], *names: str) -> unittest.TestResult:
    """Run test methods of *case_class*; the result holds failures and errors."""
    result = unittest.TestResult()
    unittest.TestSuite(case_class(name) for name in names).run(result)
    return result


class TestPlainMethods(AsyncTestServerTestCase):
    def test_fetch_reaches_the_server(self) -> None:
        self.server.set_response("data", b"pong")
        response = self.fetch("/ping?x=1")
        assert response.code == 200
        assert response.body == b"pong"
        self.server.assert_request().has_method("GET").has_path("/ping").has_arg("x", "1")

    def test_urls_agree(self) -> None:
        assert self.server.mode == "inline"
        assert self.server.port == self.get_http_port()
        assert self.server.get_url("/a?b=1") == self.get_url("/a?b=1")
        assert self.server.url == f"http://127.0.0.1:{self.get_http_port()}/"

    def test_post_body_is_recorded(self) -> None:
        self.fetch("/api", method="POST", body=b"request-data")
        assert self.server.get_request("data") == b"request-data"
        assert self.server.request_count == 1

    def test_rules_and_once_overrides(self) -> None:
        self.server.add_response(Response(json={"id": 7}, status=201), path="/item")
        self.server.set_response_once("status", 503)
        assert self.fetch("/item").code == 201
        assert self.fetch("/other").code == 503
        assert self.fetch("/other").code == 200
        self.server.assert_history().has_length(3)

    def test_blocking_wait_without_request_raises(self) -> None:
        with pytest.raises(ServerStateError) as info:
            self.server.wait_request(timeout=5.0)
        assert_that(str(info.value), contains_string("await srv.await_request()"))
        assert_that(str(info.value), contains_string("would deadlock"))
        with pytest.raises(ServerStateError):
            self.server.wait_requests(2, timeout=5.0)

    def test_blocking_wait_after_the_request_returns_at_once(self) -> None:
        self.fetch("/done")
        assert self.server.wait_request().path == "/done"
        # one arrived, two awaited: that wait would deadlock too
        with pytest.raises(ServerStateError, match=r"for 2 request\(s\) \(1 arrived"):
            self.server.wait_requests(2)

    def test_reset_empties_history_and_settings(self) -> None:
        self.server.set_response("status", 404)
        self.fetch("/")
        self.server.reset()
        assert self.server.request_count == 0
        assert self.fetch("/").code == 200


class TestCoroutines(AsyncTestServerTestCase):
    @gen_test
    async def test_await_fetch(self) -> None:
        self.server.set_response("json", {"ok": True})
        response = await self.http_client.fetch(self.get_url("/c"))
        assert response.body == b'{"ok": true}'
        assert self.server.request.path == "/c"

    @gen_test
    async def test_await_request_sent_by_a_background_coroutine(self) -> None:
        self.io_loop.spawn_callback(self.http_client.fetch, self.get_url("/bg"))
        request = await self.server.await_request()
        assert isinstance(request, Request)
        assert request.path == "/bg"

    @gen_test
    async def test_await_requests_counts(self) -> None:
        for n in range(3):
            self.io_loop.spawn_callback(self.http_client.fetch, self.get_url(f"/{n}"))
        history = await self.server.await_requests(3)
        assert_that(history, has_length(3))
        assert sorted(r.path for r in history) == ["/0", "/1", "/2"]

    @gen_test
    async def test_await_timeout(self) -> None:
        with pytest.raises(WaitTimeoutError, match=r"1 request.* but 0 arrived"):
            await self.server.await_request(timeout=0.05)

    @gen_test
    async def test_response_sleep_does_not_block_other_requests(self) -> None:
        self.server.add_response(Response(b"slow", sleep=0.3), path="/slow")
        slow = asyncio.ensure_future(self.http_client.fetch(self.get_url("/slow")))
        fast = await self.http_client.fetch(self.get_url("/fast"))
        assert fast.code == 200
        assert not slow.done()
        assert (await slow).body == b"slow"

    @gen_test
    async def test_blocking_wait_from_another_thread(self) -> None:
        got: list[Request] = []
        waiter = threading.Thread(target=lambda: got.append(self.server.wait_request(timeout=5.0)))
        waiter.start()
        await self.http_client.fetch(self.get_url("/threaded"))
        waiter.join(5.0)
        assert not waiter.is_alive()
        assert [r.path for r in got] == ["/threaded"]


class TestServerOptions(AsyncTestServerTestCase):
    def get_server_options(self) -> dict[str, object]:
        return {"history_limit": 2, "max_body_size": 10}

    def test_history_limit(self) -> None:
        for n in range(3):
            self.fetch(f"/{n}")
        assert [r.path for r in self.server.history] == ["/1", "/2"]
        assert self.server.request_count == 3

    def test_max_body_size(self) -> None:
        assert self.fetch("/", method="POST", body=b"x" * 11).code == 413
        assert self.fetch("/", method="POST", body=b"x" * 10).code == 200


def test_callback_error_fails_the_test_at_check() -> None:
    def explode(request: Request) -> bytes:
        raise ZeroDivisionError("boom in callback")

    class Case(AsyncTestServerTestCase):
        def test_swallowed(self) -> None:
            self.server.set_response("callback", explode)
            assert self.fetch("/x").code == 500

    result = run_case(Case, "test_swallowed")
    assert result.errors == []
    assert len(result.failures) == 1
    text = result.failures[0][1]
    assert_that(text, contains_string("found problems while serving"))
    assert_that(text, contains_string("ZeroDivisionError: boom in callback while answering GET /x"))


def test_strict_miss_and_unused_rule_fail_the_test() -> None:
    class Case(AsyncTestServerTestCase):
        def get_server_options(self) -> dict[str, object]:
            return {"strict": True}

        def test_unmatched(self) -> None:
            self.server.add_response(Response(b"ok"), path="/expected")
            assert self.fetch("/unexpected").code == 500

        def test_matched(self) -> None:
            self.server.add_response(Response(b"ok"), path="/expected")
            assert self.fetch("/expected").body == b"ok"

    result = run_case(Case, "test_unmatched", "test_matched")
    assert result.testsRun == 2
    assert [case.id().rsplit(".", 1)[-1] for case, _ in result.failures] == ["test_unmatched"]
    text = result.failures[0][1]
    assert_that(text, contains_string("no rule matched GET /unexpected"))
    assert_that(text, contains_string("rules not used up"))


def test_each_test_gets_a_fresh_stopped_server() -> None:
    servers: list[TestServer] = []

    class Case(AsyncTestServerTestCase):
        def test_one(self) -> None:
            servers.append(self.server)
            assert self.server.request_count == 0
            self.server.set_response("status", 418)
            assert self.fetch("/").code == 418

        test_two = test_one

    result = run_case(Case, "test_one", "test_two")
    assert result.wasSuccessful(), result.failures + result.errors
    first, second = servers
    assert first is not second
    assert first.port != second.port
    assert not first.running
    assert not second.running
    # the history stays readable after the test
    assert second.request.path == "/"


def test_unknown_server_option_is_an_error() -> None:
    class Case(AsyncTestServerTestCase):
        def get_server_options(self) -> dict[str, object]:
            return {"port": 8080}

        def test_nothing(self) -> None:
            raise AssertionError("not reached")

    result = run_case(Case, "test_nothing")
    assert len(result.errors) == 1
    assert_that(
        result.errors[0][1],
        contains_string("get_server_options: unknown option(s) 'port'; expected any of"),
    )


def test_inline_is_not_a_mode_of_test_server() -> None:
    with pytest.raises(
        ValueError, match=r"^TestServer: mode 'inline'; expected 'thread' or 'subprocess'$"
    ):
        TestServer(mode="inline")


def test_the_test_loop_runs_an_async_client_of_its_own() -> None:
    class Case(AsyncTestServerTestCase):
        def get_http_client(self) -> AsyncHTTPClient:
            return AsyncHTTPClient(force_instance=True, defaults={"user_agent": "mine"})

        def test_agent(self) -> None:
            self.fetch("/")
            self.server.assert_request().has_header("User-Agent", "mine")

    result = run_case(Case, "test_agent")
    assert result.wasSuccessful(), result.failures + result.errors
