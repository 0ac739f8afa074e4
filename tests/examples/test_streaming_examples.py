"""Examples of the page "Timeouts, cancellation and streaming" (``docs/streaming.rst``)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import requests
from httpx_sse import connect_sse

from tserver import Event, Response, TestServer


def test_a_read_timeout_without_a_sleep() -> None:
    with TestServer() as srv:
        srv.add_response(Response(b"too late", hold=True))

        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(srv.url, timeout=0.2)  # nothing is written: the client gives up

        held = srv.wait_held()  # the request was recorded on arrival
        assert held.request.path == "/"
        assert held.release() is False  # the client has gone: nothing to answer


def test_the_answer_arrives_when_the_test_says_so() -> None:
    with TestServer() as srv:
        srv.add_response(Response(b"now", hold=True))
        answers: list[bytes] = []
        client = threading.Thread(
            target=lambda: answers.append(requests.get(srv.url, timeout=10).content)
        )
        client.start()

        held = srv.wait_held()
        assert answers == []  # the client is waiting, and so is the answer
        held.release()  # or held.release(Response(status=503)), or held.fail("reset")
        client.join()
        assert answers == [b"now"]


def test_cancelling_an_in_flight_request() -> None:
    async def main(srv: TestServer) -> bool:
        async with httpx.AsyncClient(timeout=10) as client:
            request = asyncio.ensure_future(client.get(srv.url))
            held = await srv.await_held()  # the request is in flight, unanswered
            request.cancel()  # the code under test cancels it
            with pytest.raises(asyncio.CancelledError):
                await request
            return held.release()

    with TestServer() as srv:
        srv.add_response(Response(hold=True))
        assert asyncio.run(main(srv)) is False  # the cancel closed the connection


def test_server_sent_events() -> None:
    with TestServer() as srv:
        events = [Event("hello", id="1"), Event({"n": 2}, event="count", id="2")]
        srv.add_response(Response(events=events))

        with httpx.Client() as client, connect_sse(client, "GET", srv.url) as source:
            received = [(e.event, e.data, e.id) for e in source.iter_sse()]

        assert received == [("message", "hello", "1"), ("count", '{"n": 2}', "2")]


def test_events_pushed_one_at_a_time() -> None:
    with TestServer() as srv:
        srv.add_response(Response(events=[], hold="body"))  # the head now, events later

        with httpx.Client() as client, connect_sse(client, "GET", srv.url) as source:
            held = srv.wait_held()
            events = source.iter_sse()
            held.send(Event("first"))
            assert next(events).data == "first"  # arrived before the second exists
            held.send(Event("second"))
            assert next(events).data == "second"
            held.release()  # the end of the stream
            assert list(events) == []


def consume(url: str, seen: list[str]) -> None:
    """The code under test: reads an event stream, and resumes it where it broke off."""
    last_id = None
    with httpx.Client(timeout=10) as client:
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                with connect_sse(client, "GET", url, headers=headers) as source:
                    for event in source.iter_sse():
                        seen.append(event.data)
                        last_id = event.id
                    return  # the server ended the stream
            except httpx.RemoteProtocolError:
                continue  # dropped mid-stream: reconnect


def test_an_sse_consumer_resumes_with_last_event_id() -> None:
    with TestServer() as srv:
        # the first stream breaks after event 1; the second serves the rest
        srv.add_response(Response(events=[], hold="body"))
        srv.add_response(Response(events=[Event("b", id="2")]))

        seen: list[str] = []
        consumer = threading.Thread(target=consume, args=(srv.url, seen))
        consumer.start()
        held = srv.wait_held()
        held.send(Event("a", id="1"))
        held.fail("close")  # the connection drops mid-stream
        consumer.join(10)

        assert seen == ["a", "b"]
        srv.assert_request(1).has_header("Last-Event-ID", "1")


def test_a_slow_download() -> None:
    with TestServer() as srv:
        srv.add_response(Response(b"x" * 4000, rate=8000))  # half a second in all

        started = time.monotonic()
        with httpx.Client(timeout=httpx.Timeout(10, read=0.2)) as client:
            body = client.get(srv.url).content  # each read is prompt: no read timeout
        assert body == b"x" * 4000
        assert time.monotonic() - started >= 0.45  # but the whole takes its time


def test_a_slow_server_reading_an_upload() -> None:
    with TestServer() as srv:
        srv.add_response(Response(read_rate=1000), method="POST")  # 1 kB/s

        with pytest.raises(httpx.WriteTimeout):  # the client's writes block
            httpx.post(srv.url, content=b"u" * (16 << 20), timeout=httpx.Timeout(10, write=0.3))


def test_expect_100_continue_refused() -> None:
    with TestServer() as srv:
        srv.add_response(Response(status=417, expect="refuse"), method="POST")

        response = httpx.post(srv.url, content=b"big", headers={"Expect": "100-continue"})
        assert response.status_code == 417
        srv.assert_request().has_header("Expect", "100-continue").has_data(b"")  # never read
