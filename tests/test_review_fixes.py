"""Regressions found by a review of the one-host refactor: each test failed before its fix."""

from __future__ import annotations

import asyncio
import socket
import threading
import unittest
from typing import Any

import pytest
import requests
from helpers import child_callbacks
from tornado.httpclient import AsyncHTTPClient
from tornado.testing import gen_test

from tserver import Headers, Request, Response, ServerStateError, TestServer
from tserver._backend import settle_wait
from tserver._channel import Channel
from tserver._commands import AddRule, RecorderState, TakeReport
from tserver._recorder import Recorder
from tserver._waiting import Pending
from tserver._wire import (
    FrameDecoder,
    Ok,
    Part,
    decode_frame,
    encode_frame,
    encode_frames,
    join_parts,
)
from tserver.testing import AsyncTestServerTestCase

# -- set_response: every layer a request may meet is checked ---------------------------


def test_default_layers_that_contradict_are_refused_even_behind_a_once_override(
    server: TestServer,
) -> None:
    server.set_response("data", b"abc")
    server.set_response("headers", {"Content-Length": "3"})
    server.set_response_once("data", b"xyz")  # agrees: fine
    with pytest.raises(ValueError, match="body has 6 bytes"):
        server.set_response_once("data", b"abcdef", method="POST")  # the next POST's
    with pytest.raises(ValueError, match="body has 6 bytes"):
        server.set_response("data", b"abcdef")  # hidden by the override until it is used
    replies = [requests.get(server.url, timeout=10) for _ in range(2)]
    assert [(r.status_code, r.content) for r in replies] == [(200, b"xyz"), (200, b"abc")]
    assert requests.post(server.url, timeout=10).content == b"abc"
    server.check()


def test_a_response_that_cannot_be_made_still_records_and_wakes() -> None:
    recorder = Recorder()
    pending, _ = recorder.pending_history(1)

    class Broken(Exception):
        pass

    def explode(request: Request) -> Response:
        raise Broken("no answer")

    recorder._choose = explode  # type: ignore[method-assign]  # what a bad layer would do
    response = recorder.record(Request("GET", "/x"))
    assert response.status == 500
    assert pending.done  # the waiter was woken all the same
    report = recorder.apply(TakeReport())
    assert [e.type_name for e in report.errors] == ["Broken"]


# -- waits ------------------------------------------------------------------------------


def test_a_cancelled_await_withdraws_its_wait() -> None:
    recorder_waiters: list[int] = []

    async def main(srv: TestServer) -> None:
        for _ in range(50):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(srv.await_request(timeout=5.0), 0.001)
        recorder_waiters.append(len(srv._backend.host.recorder._waiters))  # type: ignore[attr-defined]

    with TestServer() as srv:
        asyncio.run(main(srv))
    assert recorder_waiters == [0]


def test_a_wait_taken_by_the_recording_thread_is_no_timeout() -> None:
    """The wait timed out, but the recording thread had already taken it: the history wins."""
    recorder = Recorder()
    recorder.record(Request("GET", "/late"))
    pending: Pending[list[Request]] = Pending()
    deliver = threading.Timer(0.05, pending.set_result, args=([Request("GET", "/late")],))
    deliver.start()
    try:
        history = settle_wait(recorder, pending, lambda: False, False, 1, 0.01)
    finally:
        deliver.join()
    assert [r.path for r in history] == ["/late"]


@pytest.mark.parametrize("restart", [False, True], ids=["first-start", "restart"])
def test_a_wait_begun_while_stopped_ends_when_the_server_starts(mode: str, restart: bool) -> None:
    srv = TestServer(mode=mode)
    if restart:
        srv.start().stop()
    results: list[object] = []
    waiting = threading.Event()

    def wait() -> None:
        waiting.set()
        try:
            results.append(srv.wait_request(timeout=10.0).path)
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    try:
        assert waiting.wait(5)
        with srv:
            requests.get(srv.get_url("/hello"), timeout=10)
            thread.join(15)
    finally:
        thread.join(15)
    assert not thread.is_alive()
    if mode == "thread" and not restart:
        assert results == ["/hello"]  # the same state is served: the wait sees it
    else:  # a wait on a state nothing records into any more says so at once
        assert len(results) == 1
        assert isinstance(results[0], ServerStateError), results
        assert "wait for requests after start()" in str(results[0])


# -- the channel: an interrupt never leaves the reader's role taken ---------------------------


def test_an_interrupt_before_reading_hands_the_reading_on() -> None:
    ours, theirs = socket.socketpair()
    channel = Channel(ours)
    try:
        real = channel._read_once
        calls = iter([True])

        def interrupted(timeout: float) -> None:
            if next(calls, False):
                raise KeyboardInterrupt  # after taking the reader's role, before reading
            real(timeout)

        channel._read_once = interrupted  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            channel.request(b"first", 5.0)
        assert channel._reader is None
        decoder = FrameDecoder()
        answer = threading.Thread(target=lambda: _answer_second(theirs, decoder))
        answer.start()
        assert channel.request(b"second", 5.0) == Ok("second")
        answer.join(5)
    finally:
        channel.close()
        theirs.close()


def _answer_second(sock: socket.socket, decoder: FrameDecoder) -> None:
    frames: list[tuple[int, bool, bytes]] = []
    while len(frames) < 2:
        frames += decoder.feed(sock.recv(1 << 16))
    sock.sendall(encode_frame(Ok("second"), frames[1][0]))


# -- shutdown ---------------------------------------------------------------------------------


def test_an_error_raised_by_a_cancelled_callback_is_reported_in_every_mode(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    srv.add_response(Response(callback=child_callbacks.wait_then_fail_on_cancel))
    with socket.create_connection((srv.address, srv.port), timeout=10) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        srv.wait_request()
        srv.stop()
    with pytest.raises(AssertionError, match="cleanup after cancel failed"):
        srv.check()


def test_the_final_state_crosses_in_pieces() -> None:
    history = tuple(Request("POST", f"/{n}", data=b"x" * 1000) for n in range(20))
    state = RecorderState(history=history, count=20)
    frames = list(encode_frames(Ok(state), seq=3, piece=4000))
    assert len(frames) > 3
    decoder = FrameDecoder()
    parts: list[Part] = []
    last: object = None
    for data in frames:
        for _, more, payload in decoder.feed(data):
            message = decode_frame(payload)
            if more:
                assert isinstance(message, Part)
                parts.append(message)
            else:
                last = message
    joined = join_parts(parts, last)
    assert isinstance(joined, Ok)
    assert joined.value.history == history
    assert joined.value.count == 20


# -- inline: a callback still running when the test ends ----------------------------------


class _CallbackInFlight(AsyncTestServerTestCase):
    @gen_test
    async def test_callback_in_flight_at_the_end(self) -> None:
        self.server.add_response(Response(callback=child_callbacks.sleep_long))
        client = AsyncHTTPClient()
        client.fetch(self.get_url("/slow"), raise_error=False, request_timeout=60)
        await self.server.await_request()


def test_a_callback_cancelled_at_the_end_of_a_tornado_test_is_no_error() -> None:
    result = unittest.TestResult()
    _CallbackInFlight("test_callback_in_flight_at_the_end").run(result)
    assert result.errors == []
    assert result.failures == []


# -- the per-request path -------------------------------------------------------------------


class _CountsMismatches:
    """A matcher that never matches and counts the descriptions of its mismatch."""

    def __init__(self) -> None:
        self.described = 0

    def matches(self, item: Any) -> bool:
        return False

    def describe_to(self, description: Any) -> None:
        description.append_text("nothing")

    def describe_mismatch(self, item: Any, description: Any) -> None:
        self.described += 1
        description.append_text("was something")


@pytest.mark.parametrize("strict", [False, True])
def test_only_a_strict_recorder_describes_why_rules_did_not_match(strict: bool) -> None:
    matcher = _CountsMismatches()
    recorder = Recorder(strict=strict)
    recorder.apply(AddRule(Response(b"never"), None, None, None, matcher))
    for _ in range(10):
        recorder.record(Request("GET", "/", headers=Headers()))
    assert matcher.described == (10 if strict else 0)


def test_the_default_response_cache_does_not_grow_with_method_tokens() -> None:
    recorder = Recorder()
    for n in range(100):
        recorder.record(Request(f"M{n}", "/"))
    assert len(recorder._cache) == 1
