"""How-to: wait for requests sent by background code (``docs/howto.rst``)."""

from __future__ import annotations

import asyncio
import threading

import httpx
import requests

from tserver import TestServer


def report_in_background(url: str, status: str) -> threading.Thread:
    """The code under test: reports a status from a worker thread."""
    worker = threading.Thread(
        target=lambda: requests.post(url, json={"status": status}, timeout=5).close()
    )
    worker.start()
    return worker


def test_wait_for_a_request_from_a_thread() -> None:
    with TestServer() as srv:
        worker = report_in_background(srv.get_url("/report"), "done")

        request = srv.wait_request(timeout=5)  # blocks until it arrives, no polling

        assert request.json() == {"status": "done"}
        worker.join()


def test_wait_for_several_requests() -> None:
    with TestServer() as srv:
        workers = [report_in_background(srv.get_url(f"/report/{n}"), "done") for n in range(3)]

        history = srv.wait_requests(3, timeout=5)  # the whole history, once 3 arrived

        assert sorted(request.path for request in history) == [
            "/report/0",
            "/report/1",
            "/report/2",
        ]
        for worker in workers:
            worker.join()


async def sync_in_background(client: httpx.AsyncClient, url: str) -> None:
    """The code under test: an asyncio task that calls the server."""
    await client.put(url, content=b"synced")


def test_await_a_request_in_async_code() -> None:
    async def scenario(srv: TestServer) -> None:
        async with httpx.AsyncClient() as client:
            task = asyncio.create_task(sync_in_background(client, srv.get_url("/sync")))

            # the task runs only when the test yields to the loop: a blocking
            # wait here would hold the loop until it timed out
            request = await srv.await_request(timeout=5)

            assert request.data == b"synced"
            await task

    with TestServer() as srv:
        asyncio.run(scenario(srv))
