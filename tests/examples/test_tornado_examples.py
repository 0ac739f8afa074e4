"""The examples of ``docs/tornado.rst``: `tserver.testing` and awaitable waits.

The page includes these classes and functions with ``literalinclude``;
pytest runs the ``unittest`` test cases as it runs any other.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.testing import AsyncHTTPTestCase, gen_test
from tornado.web import Application, RequestHandler

from tserver import Response, ServerStateError, TestServer
from tserver.testing import AsyncTestServerTestCase


class ProfileClientTest(AsyncTestServerTestCase):
    def test_plain_method(self) -> None:
        self.server.set_response("json", {"name": "ada"})

        response = self.fetch("/profiles/ada")

        assert response.code == 200
        self.server.assert_request().has_method("GET").has_path("/profiles/ada")

    @gen_test
    async def test_coroutine(self) -> None:
        self.server.add_response(Response(status=204), method="DELETE")

        response = await self.http_client.fetch(
            self.server.get_url("/profiles/ada"), method="DELETE"
        )

        assert response.code == 204


async def report_status(url: str) -> None:
    """The code under test: a coroutine that reports a status in the background."""
    await AsyncHTTPClient().fetch(url, method="POST", body=json.dumps({"status": "ok"}))


class BackgroundReportTest(AsyncTestServerTestCase):
    @gen_test
    async def test_background_report(self) -> None:
        task = asyncio.ensure_future(report_status(self.server.get_url("/status")))

        request = await self.server.await_request(timeout=5)

        assert request.json() == {"status": "ok"}
        await task  # the background coroutine ends before the test does

    @gen_test
    async def test_a_blocking_wait_would_hang(self) -> None:
        with pytest.raises(ServerStateError, match="await_request"):
            self.server.wait_request(timeout=5)  # nothing sent yet: it cannot end


class StrictClientTest(AsyncTestServerTestCase):
    def get_server_options(self) -> dict[str, Any]:
        return {"strict": True, "history_limit": 100, "max_body_size": 1024}

    def test_only_rules_answer(self) -> None:
        self.server.add_response(Response(b"pong"), path="/ping")

        assert self.fetch("/ping").body == b"pong"

        with pytest.raises(ServerStateError):
            self.server.set_response("data", b"not on a strict server")


# -- your application, which calls a payments service


class CheckoutHandler(RequestHandler):
    def initialize(self, payments_url: str) -> None:
        self.payments_url = payments_url

    async def post(self) -> None:
        charge = await AsyncHTTPClient().fetch(
            self.payments_url + "charge", method="POST", body=self.request.body
        )
        self.write(charge.body)


def make_app(payments_url: str) -> Application:
    return Application([("/checkout", CheckoutHandler, {"payments_url": payments_url})])


# -- its test


class CheckoutTest(AsyncHTTPTestCase):
    def setUp(self) -> None:
        self.payments = TestServer().start()
        self.addCleanup(self.payments.check)
        self.addCleanup(self.payments.stop)
        super().setUp()

    def get_app(self) -> Application:
        return make_app(payments_url=self.payments.url)

    def test_checkout_charges_the_card(self) -> None:
        self.payments.set_response("json", {"charged": True})
        assert self.fetch("/checkout", method="POST", body="cart=1").code == 200
        self.payments.assert_request().has_path("/charge")


# -- awaitable waits elsewhere


def test_async_client() -> None:
    async def scenario(srv: TestServer) -> None:
        async with httpx.AsyncClient() as client:
            task = asyncio.create_task(client.post(srv.get_url("/hook"), content=b"x"))
            request = await srv.await_request(timeout=5)
            assert request.data == b"x"
            await task

    with TestServer() as srv:
        asyncio.run(scenario(srv))
