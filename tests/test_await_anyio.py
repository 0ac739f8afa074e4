"""Awaitable waits under anyio's two backends: asyncio and trio, in every mode.

The request comes from a task of the same event loop, sent with httpx's
async client (which runs on both backends).  If `await_request` blocked the
loop, or did not know how to suspend a trio task, the sending task could
never run and the wait would fail.  Inline mode serves on the loop itself,
so it runs under asyncio only (Tornado runs on asyncio).
"""

from __future__ import annotations

import anyio
import httpx
import pytest

from tserver import Request, TestServer, WaitTimeoutError
from tserver._inline import InlineTestServer

MODES = ["thread", "subprocess", "inline"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """anyio's backends, both."""
    return str(request.param)


#: Each mode under each backend, but inline mode only under asyncio: it
#: serves on the test's own asyncio loop, and trio runs none.
MODE_BACKENDS = [
    (mode, backend)
    for mode in MODES
    for backend in ("asyncio", "trio")
    if not (mode == "inline" and backend == "trio")
]


def _server(mode: str) -> TestServer:
    return InlineTestServer() if mode == "inline" else TestServer(mode=mode)


async def _post(url: str, body: bytes) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.post(url, content=body)).status_code


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "anyio_backend"), MODE_BACKENDS)
async def test_await_request_sent_by_a_task_of_the_same_loop(mode: str, anyio_backend: str) -> None:
    srv = _server(mode).start()
    try:
        srv.set_response("data", b"done")
        results: list[int] = []
        got: list[Request] = []

        async def send() -> None:
            results.append(await _post(srv.get_url("/hook?n=1"), b"payload"))

        async with anyio.create_task_group() as group:
            group.start_soon(send)
            got.append(await srv.await_request(timeout=5.0))
        assert results == [200]
        assert got[0].path == "/hook"
        assert got[0].data == b"payload"
        assert [r.path for r in await srv.await_requests(1, timeout=0.0)] == ["/hook"]
    finally:
        srv.stop()


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "anyio_backend"), MODE_BACKENDS)
async def test_await_requests_times_out_without_blocking_the_loop(
    mode: str, anyio_backend: str
) -> None:
    srv = _server(mode).start()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.01)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            with pytest.raises(WaitTimeoutError, match=r"for 2 request\(s\) but 0 arrived"):
                await srv.await_requests(2, timeout=0.3)
            group.cancel_scope.cancel()
        assert ticks >= 3  # the loop ran its other task while the wait waited
    finally:
        srv.stop()


@pytest.mark.anyio
async def test_await_on_a_stopped_server_reads_the_final_state(anyio_backend: str) -> None:
    srv = TestServer(mode="subprocess").start()
    assert (await _post(srv.get_url("/kept"), b"")) == 200
    srv.stop()
    assert [r.path for r in await srv.await_requests(1, timeout=1.0)] == ["/kept"]
    with pytest.raises(WaitTimeoutError):
        await srv.await_requests(2, timeout=0.05)
