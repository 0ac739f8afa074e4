"""Awaitable waits (`await_request` / `await_requests`) from asyncio code, in every mode.

Each test runs its coroutine on a new asyncio loop (`run`) and sends the
request from a background task of the same loop with a real async client
(httpx, aiohttp or Tornado's).  If the await blocked the loop, that task
could never send the request and the wait would time out: every test here
would fail.  Inline mode serves on that very loop (started and stopped
inside it), which is the hardest case: the loop must serve and wait at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import aiohttp
import httpx
import pytest
from tornado.httpclient import AsyncHTTPClient

from tserver import Request, TestServer, WaitTimeoutError
from tserver._inline import InlineTestServer

Sender = Callable[[str, bytes], Coroutine[Any, Any, int]]
T = TypeVar("T")


@pytest.fixture(params=["thread", "subprocess", "inline"])
def mode(request: pytest.FixtureRequest) -> str:
    """Every mode, inline included: these tests run on an event loop."""
    return str(request.param)


@pytest.fixture
def server(mode: str) -> Iterator[TestServer]:
    """A server in *mode*; an inline one starts on the test's loop, in `run`."""
    srv = InlineTestServer() if mode == "inline" else TestServer(mode=mode).start()
    try:
        yield srv
    finally:
        srv.stop()


def run(server: TestServer, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run *main* on a new loop; an inline *server* serves on that loop meanwhile."""

    async def served() -> T:
        inline = not server.running
        if inline:
            server.start()
        try:
            return await main()
        finally:
            if inline:
                server.stop()

    return asyncio.run(served())


async def send_httpx(url: str, body: bytes) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.post(url, content=body)).status_code


async def send_aiohttp(url: str, body: bytes) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, data=body) as resp:
        await resp.read()
        return resp.status


async def send_tornado(url: str, body: bytes) -> int:
    client = AsyncHTTPClient(force_instance=True)
    try:
        return (await client.fetch(url, method="POST", body=body)).code
    finally:
        client.close()


SENDERS: dict[str, Sender] = {
    "httpx": send_httpx,
    "aiohttp": send_aiohttp,
    "tornado": send_tornado,
}


@pytest.mark.parametrize("client", sorted(SENDERS))
def test_await_request_sent_by_a_background_task(server: TestServer, client: str) -> None:
    send = SENDERS[client]
    server.set_response("data", b"done")

    async def main() -> tuple[Request, int]:
        task = asyncio.create_task(send(server.get_url("/hook?n=1"), b"payload"))
        request = await server.await_request(timeout=5.0)
        return request, await task

    request, status = run(server, main)
    assert status == 200
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.data == b"payload"
    assert request == server.request


def test_await_requests_returns_the_history(server: TestServer) -> None:
    async def main() -> list[Request]:
        tasks = [asyncio.create_task(send_httpx(server.get_url(f"/{n}"), b"")) for n in range(3)]
        history = await server.await_requests(3, timeout=5.0)
        assert await asyncio.gather(*tasks) == [200, 200, 200]
        return history

    history = run(server, main)
    assert sorted(r.path for r in history) == ["/0", "/1", "/2"]
    assert history == server.history


def test_the_loop_keeps_running_while_waiting(server: TestServer) -> None:
    ticks = 0

    async def late_sender() -> int:
        nonlocal ticks
        for _ in range(50):  # the loop must turn 50 times before the request
            ticks += 1
            await asyncio.sleep(0)
        return await send_aiohttp(server.get_url("/late"), b"")

    async def main() -> Request:
        task = asyncio.create_task(late_sender())
        request = await server.await_request(timeout=5.0)
        assert await task == 200
        return request

    assert run(server, main).path == "/late"
    assert ticks == 50


def test_timeout_raises_wait_timeout_error(server: TestServer) -> None:
    async def main() -> None:
        await server.await_request(timeout=0.05)

    with pytest.raises(WaitTimeoutError) as info:
        run(server, main)
    assert isinstance(info.value, TimeoutError)
    assert info.value.expected == 1
    assert info.value.received == 0
    assert "waited 0.05s for 1 request(s) but 0 arrived" in str(info.value)


def test_timeout_says_how_many_arrived(server: TestServer) -> None:
    async def main() -> None:
        assert await send_httpx(server.get_url("/one"), b"") == 200
        await server.await_requests(2, timeout=0.05)

    with pytest.raises(WaitTimeoutError, match=r"for 2 request\(s\) but 1 arrived"):
        run(server, main)


def test_requests_already_arrived_return_at_once(server: TestServer) -> None:
    async def main() -> list[Request]:
        for n in range(2):
            assert await send_httpx(server.get_url(f"/{n}"), b"") == 200
        # a zero timeout would fail if the method waited at all
        return await server.await_requests(2, timeout=0.0)

    assert [r.path for r in run(server, main)] == ["/0", "/1"]


def test_counts_since_the_last_reset(server: TestServer) -> None:
    async def main() -> Request:
        assert await send_httpx(server.get_url("/before"), b"") == 200
        server.reset()
        task = asyncio.create_task(send_httpx(server.get_url("/after"), b""))
        request = await server.await_request(timeout=5.0)
        assert await task == 200
        return request

    assert run(server, main).path == "/after"
    assert server.request_count == 1


def test_a_cancelled_wait_leaves_the_server_clean(server: TestServer) -> None:
    async def main() -> int:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(server.await_request(timeout=0.5), 0.05)
        return await send_httpx(server.get_url("/after-cancel"), b"")

    assert run(server, main) == 200
    assert server.wait_request(timeout=5.0).path == "/after-cancel"
    server.check()


def test_argument_errors() -> None:
    srv = TestServer()

    async def main() -> None:
        with pytest.raises(ValueError, match="await_requests"):
            await srv.await_requests(0)
        with pytest.raises(ValueError, match="await_requests"):
            await srv.await_request(timeout=-1)

    asyncio.run(main())
