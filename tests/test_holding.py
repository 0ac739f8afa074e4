"""Held responses (SPEC §10): the test decides when each byte goes out, in every mode."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
from helpers.wire import read_until

from tserver import (
    Event,
    Held,
    Raw,
    Response,
    ServerStateError,
    TestServer,
    WaitTimeoutError,
)
from tserver._inline import InlineTestServer


class Fetch:
    """A request made in a thread, so that the test can act while it waits."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,))
        self._thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.result = call()
        except BaseException as exc:
            self.error = exc

    def join(self) -> Any:
        self._thread.join(10)
        assert not self._thread.is_alive()
        return self.result


def _get(server: TestServer, path: str = "/", **kwargs: Any) -> Fetch:
    return Fetch(lambda: requests.get(server.get_url(path), timeout=10, **kwargs))


def _connect(server: TestServer) -> socket.socket:
    return socket.create_connection((server.address, server.port), timeout=10)


def test_a_held_response_waits_for_release(server: TestServer) -> None:
    server.add_response(Response(b"late", headers={"X-A": "1"}, hold=True))
    fetch = _get(server, "/slow")
    held = server.wait_held()
    # recorded before anything is written, and nothing has been
    assert held.request.path == "/slow"
    assert server.history == [held.request]
    assert server.held == [held]
    exchange = server.exchanges[0]
    assert (exchange.status, exchange.completed) == (None, False)
    assert fetch.result is None
    assert held.release() is True
    response = fetch.join()
    assert (response.status_code, response.content, response.headers["X-A"]) == (200, b"late", "1")
    assert server.held == []
    assert held.release() is False  # held no more
    assert server.exchanges[0].status == 200


def test_release_with_another_response(server: TestServer) -> None:
    server.add_response(Response(b"planned", hold=True))
    fetch = _get(server)
    server.wait_held().release(Response(b"instead", status=503))
    response = fetch.join()
    assert (response.status_code, response.content) == (503, b"instead")
    assert server.exchanges[0].status == 503


def test_a_release_that_holds_again(server: TestServer) -> None:
    server.add_response(Response(hold=True))
    fetch = _get(server)
    server.wait_held().release(Response(b"twice", hold=True))
    again = server.wait_held()
    assert again.request == server.history[0]
    again.release()
    assert fetch.join().content == b"twice"


def test_hold_body_sends_the_head_then_each_chunk_on_demand(server: TestServer) -> None:
    server.add_response(Response(b"rest", status=201, headers={"X-B": "2"}, hold="body"))
    with _connect(server) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        head = read_until(sock, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 201 Created\r\n")
        assert b"\r\nTransfer-Encoding: chunked\r\n" in head
        assert b"\r\nX-B: 2\r\n" in head
        held = server.wait_held()
        assert held.hold == "body"
        assert server.exchanges[0].status == 201  # the status line went out
        assert held.send(b"one") is True
        assert read_until(sock, b"one\r\n") == b"3\r\none\r\n"
        assert held.send("twö") is True
        assert read_until(sock, "twö\r\n".encode()) == "4\r\ntwö\r\n".encode()
        assert held.release() is True
        assert read_until(sock, b"0\r\n\r\n") == b"4\r\nrest\r\n0\r\n\r\n"
        assert server.held == []
        # the next request on the connection is read once the last one is done
        sock.sendall(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert server.exchanges[0].completed


def test_the_checks_that_need_no_server(server: TestServer) -> None:
    server.add_response(Response(hold=True), path="/whole")
    server.add_response(Response(hold="body"), path="/body")
    first, second = _get(server, "/whole"), _get(server, "/body", stream=True)
    body, whole = sorted((server.wait_held(), server.wait_held()), key=lambda h: h.request.path)
    with pytest.raises(ValueError, match="only a hold='body' response sends"):
        whole.send(b"x")
    with pytest.raises(ValueError, match="an Event needs an event stream"):
        body.send(Event("x"))
    with pytest.raises(ValueError, match="are sent already"):
        body.release(Response(b"x"))
    with pytest.raises(TypeError, match="must be bytes, str or Event"):
        body.send(7)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a Response or None"):
        whole.release(b"x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected 'close', 'reset', Raw"):
        whole.fail("truncate")
    assert whole.release()
    assert body.release()
    assert first.join().status_code == second.join().status_code == 200


@pytest.mark.parametrize("hold", [True, "body"])
def test_fail_closes_resets_or_writes_raw_bytes(server: TestServer, hold: bool | str) -> None:
    server.add_response(Response(hold=hold), count=3)
    outcomes = []
    for fault in ("close", "reset", Raw(b"HTTP/1.1 418 Raw\r\n\r\n")):
        with _connect(server) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            if hold == "body":
                read_until(sock, b"\r\n\r\n")
            assert server.wait_held().fail(fault) is True
            data = b""
            try:
                while chunk := sock.recv(65536):
                    data += chunk
                outcomes.append(data)
            except ConnectionResetError:
                outcomes.append("reset")
    assert outcomes[0] == b""
    assert outcomes[1] == "reset"
    assert outcomes[2] == b"HTTP/1.1 418 Raw\r\n\r\n"
    assert server.held == []
    server.check()  # nothing went wrong on the server's side


def test_a_client_that_leaves_ends_the_holding(server: TestServer) -> None:
    server.add_response(Response(hold=True))
    with _connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        held = server.wait_held()
        assert server.held == [held]
    # closed: the kernel knows at once, before the loop reads the end of stream
    assert server.held == []
    assert held.release() is False
    assert held.fail("close") is False
    assert not server.exchanges[0].completed


def test_a_read_timeout_without_a_sleep(server: TestServer) -> None:
    server.add_response(Response(b"never read", hold=True))
    with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=0.2) as client:
        client.get(server.url)
    held = server.wait_held()
    assert held.release() is False  # the client gave up and closed
    assert server.request_count == 1


def test_cancelling_an_in_flight_request(server: TestServer) -> None:
    server.add_response(Response(hold=True))

    async def main() -> bool:
        async with httpx.AsyncClient(timeout=10) as client:
            task = asyncio.ensure_future(client.get(server.url))
            held = await server.await_held()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        return held.release()

    assert asyncio.run(main()) is False  # the cancelled request's connection closed


def test_wait_held_returns_each_exchange_once_oldest_first(server: TestServer) -> None:
    server.add_response(Response(hold=True), count=None)
    with _connect(server) as one, _connect(server) as two:
        one.sendall(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert server.wait_held().request.path == "/1"
        two.sendall(b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
        second = server.wait_held()
        assert second.request.path == "/2"
        assert [h.request.path for h in server.held] == ["/1", "/2"]
        with pytest.raises(WaitTimeoutError, match="none was held"):
            server.wait_held(timeout=0.05)
        for held in server.held:
            held.release()
        assert read_until(one, b"\r\n\r\n").startswith(b"HTTP/1.1 200")


def test_a_held_exchange_counts_against_its_rule(mode: str) -> None:
    srv = TestServer(mode=mode, strict=True).start()
    try:
        srv.add_response(Response(b"held", hold=True), count=1, path="/once")
        fetch = _get(srv, "/once")
        held = srv.wait_held()
        second = requests.get(srv.get_url("/once"), timeout=10)  # no rule left
        assert second.status_code == 500
        held.release()
        assert fetch.join().content == b"held"
    finally:
        srv.stop()
    with pytest.raises(AssertionError, match="no rule matched GET /once"):
        srv.check()


def test_reset_and_stop_close_what_is_held(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    try:
        srv.add_response(Response(hold=True), count=None)
        with _connect(srv) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            held = srv.wait_held()
            srv.reset()
            assert sock.recv(65536) == b""  # closed, unanswered
            assert held.release() is False
        srv.add_response(Response(hold=True))
        with _connect(srv) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            srv.wait_held()
            srv.stop()
            assert sock.recv(65536) == b""
        assert srv.held == []
        with pytest.raises(ServerStateError, match="not running"):
            srv.wait_held()
    finally:
        srv.stop()


def test_a_held_handle_pickles_and_acts_only_where_it_was_returned(server: TestServer) -> None:
    server.add_response(Response(hold=True))
    fetch = _get(server)
    held = server.wait_held()
    copy = pickle.loads(pickle.dumps(held))
    assert copy == held
    assert copy.request == held.request
    assert copy.hold is True
    with pytest.raises(ServerStateError, match="not bound to a server"):
        copy.release()
    assert repr(held) == "<Held GET / hold=True>"
    held.release()
    fetch.join()


def test_await_held(server: TestServer) -> None:
    server.add_response(Response(b"awaited", hold=True))

    async def main() -> bytes:
        async with httpx.AsyncClient(timeout=10) as client:
            task = asyncio.ensure_future(client.get(server.url))
            held = await server.await_held()
            assert held.release()
            return (await task).content

    assert asyncio.run(main()) == b"awaited"
    with pytest.raises(WaitTimeoutError):
        asyncio.run(server.await_held(timeout=0.05))


def test_inline_mode_holds_on_the_callers_loop() -> None:
    async def main() -> tuple[bytes, str]:
        srv = InlineTestServer()
        srv.start()
        try:
            srv.add_response(Response(b"inline", hold=True))
            async with httpx.AsyncClient(timeout=10) as client:
                task = asyncio.ensure_future(client.get(srv.url))
                held = await srv.await_held()
                with pytest.raises(ServerStateError, match="would deadlock") as refused:
                    srv.wait_held()
                held.release()
                return (await task).content, str(refused.value)
        finally:
            srv.stop()

    content, _ = asyncio.run(main())
    assert content == b"inline"


def test_hold_body_to_an_http_1_0_client_ends_with_the_close(server: TestServer) -> None:
    server.add_response(Response(hold="body"))
    with _connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        head = read_until(sock, b"\r\n\r\n")
        assert b"Transfer-Encoding" not in head
        held = server.wait_held()
        held.send(b"abc")
        assert read_until(sock, b"abc") == b"abc"
        held.release()
        assert sock.recv(65536) == b""  # the end of the body is the close


def test_a_held_callback_response(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(callback=_held_answer))
        fetch = _get(srv, "/cb")
        held = srv.wait_held()
        held.release()
        assert fetch.join().content == b"from /cb"


def _held_answer(request: Any) -> Response:
    return Response(f"from {request.path}", hold=True)


def test_held_is_exported() -> None:
    import tserver

    assert tserver.Held is Held
    assert tserver.Event is Event


def test_what_a_stopped_server_answers_for_its_host() -> None:
    srv = TestServer()
    assert srv.close_connections() == 0  # nothing is open
    assert srv.held == []
    with pytest.raises(ServerStateError, match="not running"):
        srv.wait_held()
    with pytest.raises(ServerStateError, match="not running"):
        asyncio.run(srv.await_held())


def test_a_release_must_cross_to_a_child_too() -> None:
    with TestServer(mode="subprocess") as srv:
        srv.add_response(Response(hold=True))
        fetch = _get(srv)
        held = srv.wait_held()
        with pytest.raises(ValueError, match=r"Held.release: callback .* lambda or a closure"):
            held.release(Response(callback=lambda request: b"x"))
        assert srv.held == [held]  # refused before it was sent: still held
        held.release(Response(b"plain"))
        assert fetch.join().content == b"plain"


def test_inline_mode_streams_events_compressed_and_dripped() -> None:
    async def main() -> tuple[str, str, str]:
        srv = InlineTestServer()
        srv.start()
        try:
            srv.add_response(Response(events=[Event("a"), Event("b")], encoding="gzip", rate=4000))
            srv.add_response(Response(b"no", status=413, expect="refuse"), path="/up")
            async with httpx.AsyncClient(timeout=10) as client:
                events = await client.get(srv.url)
                refused = await client.post(
                    srv.get_url("/up"), content=b"x", headers={"Expect": "100-continue"}
                )
            return events.text, events.headers["Content-Encoding"], refused.text
        finally:
            srv.stop()

    assert asyncio.run(main()) == ("data: a\n\ndata: b\n\n", "gzip", "no")


def test_a_cancelled_await_held_takes_nothing_away(server: TestServer) -> None:
    server.add_response(Response(b"kept", hold=True))

    async def main() -> bytes:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(server.await_held(3), 0.1)  # given up: nothing held yet
        async with httpx.AsyncClient(timeout=10) as client:
            request = asyncio.ensure_future(client.get(server.url))
            held = await server.await_held(5)  # gets the exchange the cancelled wait did not
            held.release()
            return (await request).content

    assert asyncio.run(main()) == b"kept"


def test_fail_and_reset_act_while_a_drip_goes_out(server: TestServer) -> None:
    server.add_response(Response(hold="body", rate=10), count=2)
    for end in ("fail", "reset"):
        with _connect(server) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            read_until(sock, b"\r\n\r\n")
            held = server.wait_held()
            held.send(b"x" * 1000)  # a hundred seconds of drip
            read_until(sock, b"x\r\n")  # the drip has begun: a chunk of one byte
            if end == "fail":
                assert held.fail("close") is True
            else:
                server.reset()
                server.add_response(Response(hold="body", rate=10))
            sock.settimeout(5)  # the close comes at once, not after the drip
            with contextlib.suppress(ConnectionResetError):
                while sock.recv(65536):
                    pass
    server.check()


def test_hold_body_to_an_http_1_0_keep_alive_client_promises_no_keep_alive(
    server: TestServer,
) -> None:
    server.add_response(Response(b"streamed", hold="body"))
    with _connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        head = read_until(sock, b"\r\n\r\n")
        assert b"Keep-Alive" not in head
        server.wait_held().release()
        assert read_until(sock, b"streamed") == b"streamed"
        assert sock.recv(65536) == b""
    assert server.history[0].headers["Connection"] == "keep-alive"  # recorded as sent
