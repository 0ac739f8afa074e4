"""WebSocket answers (SPEC §13): scripts, recording, faults, with real clients.

The clients: websockets (its sync and asyncio clients), websocket-client,
aiohttp's ``ws_connect`` and httpx-ws.  Each fault's close code is checked
as each client reports it.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import Callable

import aiohttp
import httpx
import httpx_ws
import pytest
import requests
import websocket
import websockets.asyncio.client
import websockets.exceptions
import websockets.sync.client
from hamcrest import starts_with
from helpers.callbacks_ws import websocket_by_query
from helpers.wire import read_all, read_past

from tserver import Response, TestServer, WaitTimeoutError
from tserver._inline import InlineTestServer
from tserver.ws import Close, Echo, Fail, Ping, Receive, Send, Sleep, WebSocket

# websocket-client has no size limit, and reads a 1009 test's message whole
TIMEOUT = 5.0


def ws_url(srv: TestServer, path: str) -> str:
    return srv.get_url(path).replace("http", "ws", 1)


# -- the script and the record ---------------------------------------------------------------


def test_a_script_talks_and_everything_is_recorded(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        script = [Send("hello"), Receive(starts_with("hi")), Send(b"\x00bin"), Close(4000, "bye")]
        srv.add_response(WebSocket(script, subprotocol="chat"), path="/ws")
        with websockets.sync.client.connect(ws_url(srv, "/ws"), subprotocols=["chat"]) as client:
            assert client.subprotocol == "chat"
            assert client.recv(timeout=TIMEOUT) == "hello"
            client.send("hi there")
            assert client.recv(timeout=TIMEOUT) == b"\x00bin"
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                client.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "bye")
        [session] = srv.websockets
        upgrade = srv.request
        exchange = srv.exchanges[0]
        connection = srv.connections[0]
    assert session.request == upgrade
    assert upgrade.headers["Upgrade"] == "websocket"
    assert (exchange.status, exchange.completed, connection.protocol) == (101, True, "WebSocket")
    assert (session.subprotocol, session.extensions) == ("chat", ("permessage-deflate",))
    assert [(m.direction, m.kind, m.data) for m in session.messages] == [
        ("out", "text", "hello"),
        ("in", "text", "hi there"),
        ("out", "binary", b"\x00bin"),
    ]
    assert session.messages[0].at <= session.messages[-1].at
    assert (session.close_code, session.close_reason, session.closed_by) == (4000, "bye", "server")
    assert (session.open, session.mismatches) == (False, ())
    assert session.received() == ["hi there"]
    assert session.sent() == ["hello", b"\x00bin"]


def test_after_the_script_the_client_is_recorded_until_it_closes(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(WebSocket(["ready"], compress=False), path="/chat")
        with websockets.sync.client.connect(ws_url(srv, "/chat"), compression=None) as client:
            assert client.recv(timeout=TIMEOUT) == "ready"
            for text in ("one", "two"):
                client.send(text)
            client.send(b"three")
            client.close(1001, "going away")
        [session] = srv.websockets
    assert session.received() == ["one", "two", b"three"]
    assert (session.close_code, session.close_reason, session.closed_by) == (
        1001,
        "going away",
        "client",
    )
    assert session.extensions == ()


def test_a_receive_mismatch_is_reported_by_check(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    try:
        srv.add_response(WebSocket([Receive(starts_with("hi")), Close()]), path="/ws")
        with websockets.sync.client.connect(ws_url(srv, "/ws")) as client:
            client.send("bye")
            with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                client.recv(timeout=TIMEOUT)
        [session] = srv.websockets
        assert session.mismatches == (
            "Receive: expected a string starting with 'hi', but was 'bye'",
        )
        with pytest.raises(AssertionError, match="WebSocket session #0 on /ws: Receive"):
            srv.check()
    finally:
        srv.stop()
        srv.reset()


def test_pings_both_ways_are_recorded(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(WebSocket([Ping(b"are you there"), Receive(), Close()]), path="/p")
        with websockets.sync.client.connect(ws_url(srv, "/p")) as client:
            client.ping(b"client ping").wait(TIMEOUT)  # the server's pong arrived
            client.send("done")
            with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                client.recv(timeout=TIMEOUT)
        [session] = srv.websockets
    kinds = [(m.direction, m.kind, m.data) for m in session.messages if m.kind in ("ping", "pong")]
    assert ("out", "ping", b"are you there") in kinds
    assert ("in", "pong", b"are you there") in kinds  # websockets answered it
    assert ("in", "ping", b"client ping") in kinds
    assert ("out", "pong", b"client ping") in kinds


def test_sleep_paces_the_script() -> None:
    with TestServer() as srv:
        srv.add_response(WebSocket(["a", Sleep(0.05), "b"]), path="/s")
        with websockets.sync.client.connect(ws_url(srv, "/s")) as client:
            assert [client.recv(timeout=TIMEOUT) for _ in range(2)] == ["a", "b"]
        first, second = srv.websockets[0].messages[:2]
    assert second.at - first.at >= 0.04


def test_a_receive_that_times_out_ends_the_script_and_is_reported() -> None:
    srv = TestServer().start()
    try:
        srv.add_response(WebSocket([Receive(timeout=0.05), Send("never")]), path="/q")
        with websockets.sync.client.connect(ws_url(srv, "/q")) as client:
            with pytest.raises(TimeoutError):
                client.recv(timeout=0.3)  # nothing comes: the script ended
            client.send("late")
        assert srv.websockets[0].mismatches == ("Receive: no message within 0.05s",)
    finally:
        srv.stop()
        srv.reset()


# -- faults and close codes, as each client reports them -------------------------------------


def _websockets_code(url: str) -> object:
    try:
        with websockets.sync.client.connect(url, max_size=1 << 20) as client:
            while True:
                client.recv(timeout=TIMEOUT)
    except websockets.exceptions.ConnectionClosed as closed:
        frame = closed.rcvd if closed.rcvd is not None else closed.sent
        return 1006 if frame is None else frame.code


def _websocket_client_code(url: str) -> object:
    client = websocket.create_connection(url, timeout=TIMEOUT)
    try:
        while True:
            opcode, data = client.recv_data(control_frame=False)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], "big")
    except websocket.WebSocketConnectionClosedException:
        return 1006
    except websocket.WebSocketPayloadException:
        return 1007
    except websocket.WebSocketProtocolException:
        return 1002
    except websocket.WebSocketTimeoutException:
        return "no limit"
    except ConnectionResetError:
        return "reset"
    finally:
        client.shutdown()  # the socket, whatever state the close handshake is in


def _aiohttp_code(url: str) -> object:
    async def run() -> object:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, max_msg_size=1 << 20) as client,
        ):
            while True:
                message = await client.receive(timeout=TIMEOUT)
                if message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    return client.close_code

    return asyncio.run(run())


def _httpx_ws_code(url: str) -> object:
    before = set(threading.enumerate())
    try:
        with httpx.Client() as http, httpx_ws.connect_ws(url.replace("ws", "http", 1), http) as c:
            while True:
                c.receive(timeout=TIMEOUT)
    except httpx_ws.WebSocketDisconnect as closed:
        return int(closed.code)
    except httpx_ws.WebSocketNetworkError:
        return 1006
    finally:
        # httpx-ws shuts its executor down without waiting: its thread is ending
        for thread in set(threading.enumerate()) - before:
            thread.join(TIMEOUT)
    return None


CLIENTS: dict[str, Callable[[str], object]] = {
    "websockets": _websockets_code,
    "websocket-client": _websocket_client_code,
    "aiohttp": _aiohttp_code,
    "httpx-ws": _httpx_ws_code,
}

#: What each client reports for each script end (close code, or what it says).
EXPECTED: dict[str, dict[str, object]] = {
    "close-1000": {"websockets": 1000, "websocket-client": 1000, "aiohttp": 1000, "httpx-ws": 1000},
    "no-close": {"websockets": 1006, "websocket-client": 1006, "aiohttp": 1006, "httpx-ws": 1006},
    "invalid-utf8": {
        "websockets": 1007,
        "websocket-client": 1007,
        "aiohttp": 1007,
        "httpx-ws": 1007,
    },
    # websocket-client has no size limit; httpx-ws drops an oversized message and
    # reports nothing (its receive times out): neither is worth a 1 MiB run
    "oversized": {
        "websockets": 1009,
        "websocket-client": "no limit",
        "aiohttp": 1009,
        "httpx-ws": "no limit",
    },
    "invalid-frame": {
        "websockets": 1002,
        "websocket-client": 1002,
        "aiohttp": 1002,
        "httpx-ws": 1002,
    },
    "reset": {"websockets": 1006, "websocket-client": "reset", "aiohttp": 1006, "httpx-ws": 1006},
}

ENDINGS = {
    "close-1000": [Close(1000, "done")],
    "no-close": [Fail("no-close")],
    "invalid-utf8": [Fail("invalid-utf8")],
    "oversized": [Fail("oversized", size=(1 << 20) + 1)],
    "invalid-frame": [Fail("invalid-frame")],
    "reset": [Fail("reset")],
}


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("ending", list(ENDINGS))
def test_each_client_sees_each_ending(client: str, ending: str) -> None:
    expected = EXPECTED[ending].get(client)
    if expected is None:
        pytest.fail(f"no expectation for {client} / {ending}")
    if expected == "no limit":  # websocket-client would read 1 MiB and wait: not worth a run
        return
    with TestServer() as srv:
        srv.add_response(WebSocket(ENDINGS[ending]), path="/end")
        assert CLIENTS[client](ws_url(srv, "/end")) == expected
        [session] = srv.websockets
    if ending == "close-1000":
        assert (session.closed_by, session.close_code) == ("server", 1000)
    elif ending in ("no-close", "reset"):
        assert (session.closed_by, session.open) == (None, False)


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_handshake_refused_with_401_raises_in_each_client(client: str) -> None:
    errors: dict[str, type[BaseException]] = {
        "websockets": websockets.exceptions.InvalidStatus,
        "websocket-client": websocket.WebSocketBadStatusException,
        "aiohttp": aiohttp.WSServerHandshakeError,
        "httpx-ws": httpx_ws.WebSocketUpgradeError,
    }
    with TestServer() as srv:
        srv.add_response(Response(b"no token", status=401), path="/ws")
        with pytest.raises(errors[client]):
            CLIENTS[client](ws_url(srv, "/ws"))
        assert srv.exchanges[0].status == 401
        assert srv.websockets == []


def test_a_request_that_is_no_upgrade_gets_426(server: TestServer) -> None:
    server.add_response(WebSocket(["x"]), path="/ws")
    reply = requests.get(server.get_url("/ws"), timeout=10)
    assert (reply.status_code, reply.headers["Upgrade"]) == (426, "websocket")
    assert server.websockets == []


# -- modes, TLS, callbacks, lifecycle --------------------------------------------------------


def test_wss_with_a_verified_certificate(mode: str) -> None:
    with TestServer(mode=mode, ssl=True) as srv:
        srv.add_response(WebSocket(["secure", Close()]), path="/wss")
        url = ws_url(srv, "/wss")
        assert url.startswith("wss://")
        context = srv.client_ssl_context()
        with websockets.sync.client.connect(url, ssl=context) as client:
            assert client.recv(timeout=TIMEOUT) == "secure"
        [session] = srv.websockets
    assert session.request.scheme == "https"


def test_inline_mode_with_the_asyncio_client() -> None:
    async def main() -> list[str | bytes]:
        srv = InlineTestServer().start()
        try:
            srv.add_response(WebSocket(["inline", Receive(), Close()]), path="/in")
            async with websockets.asyncio.client.connect(ws_url(srv, "/in")) as client:
                assert await client.recv() == "inline"
                await client.send("from asyncio")
                with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                    await client.recv()
            return srv.websockets[0].received()
        finally:
            srv.stop()

    assert asyncio.run(main()) == ["from asyncio"]


def test_the_sessions_outlive_stop_and_go_at_reset() -> None:
    srv = TestServer().start()
    srv.add_response(WebSocket([Close()]), path="/ws")
    with (
        websockets.sync.client.connect(ws_url(srv, "/ws")) as client,
        pytest.raises(websockets.exceptions.ConnectionClosedOK),
    ):
        client.recv(timeout=TIMEOUT)
    srv.stop()
    assert len(srv.websockets) == 1
    srv.reset()
    assert srv.websockets == []


def test_stop_ends_an_open_session_and_the_client_sees_it() -> None:
    srv = TestServer().start()
    try:
        srv.add_response(WebSocket(["open"]), path="/ws")
        with websockets.sync.client.connect(ws_url(srv, "/ws")) as client:
            assert client.recv(timeout=TIMEOUT) == "open"
            assert srv.websockets[0].open
            srv.stop()
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                client.recv(timeout=TIMEOUT)
        assert not srv.websockets[0].open
    finally:
        srv.stop()


def test_the_har_log_shows_the_upgrade(server: TestServer) -> None:
    server.add_response(WebSocket([Close()]), path="/ws")
    with (
        websockets.sync.client.connect(ws_url(server, "/ws")) as client,
        pytest.raises(websockets.exceptions.ConnectionClosedOK),
    ):
        client.recv(timeout=TIMEOUT)
    [entry] = server.to_har()["log"]["entries"]
    assert entry["response"]["status"] == 101


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: WebSocket("text"), TypeError, "must be a list of steps"),
        (lambda: WebSocket([42]), TypeError, "is not one of Send"),
        (lambda: Send(3), TypeError, "must be a str"),
        (lambda: Close(999), ValueError, "from 1000 to 4999"),
        (lambda: Close(1000, "x" * 124), ValueError, "123 UTF-8 bytes"),
        (lambda: Ping(b"x" * 126), ValueError, "125 of them"),
        (lambda: Sleep(-1), ValueError, "0 or more"),
        (lambda: Receive(match="hi"), TypeError, "hamcrest matcher"),
        (lambda: Fail("explode"), ValueError, "expected one of 'no-close'"),
        (lambda: Response(b"x", websocket=WebSocket()), ValueError, "cannot have data"),
    ],
)
def test_bad_steps_are_refused(
    make: Callable[[], object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        make()


def test_steps_are_immutable_picklable_values() -> None:
    spec = WebSocket([Send("a"), Receive(timeout=1), Sleep(0), Ping(), Close(), Fail("reset")])
    assert pickle.loads(pickle.dumps(spec)) == spec
    checked = pickle.loads(pickle.dumps(Receive(starts_with("b"))))
    assert checked.match.matches("boo")
    with pytest.raises(AttributeError):
        spec.script = ()  # type: ignore[misc]


def test_a_callback_may_answer_with_a_websocket(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(callback=websocket_by_query), path="/cb")
        with websockets.sync.client.connect(ws_url(srv, "/cb?greeting=howdy")) as client:
            assert client.recv(timeout=TIMEOUT) == "howdy"


# -- waits and pushes from the test ---------------------------------------------------------


def test_wait_for_messages_and_push_one(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(WebSocket(["ready"]), path="/live")
        with websockets.sync.client.connect(ws_url(srv, "/live")) as client:
            assert client.recv(timeout=TIMEOUT) == "ready"
            client.send("one")
            client.send(b"two")
            session = srv.wait_messages(2)
            assert session.received() == ["one", b"two"]
            assert srv.push_message("news") is True
            assert client.recv(timeout=TIMEOUT) == "news"
            assert srv.push_message(b"\x01", session=0) is True
            assert client.recv(timeout=TIMEOUT) == b"\x01"
        closed = srv.wait_messages(10)  # the close ends the wait: no more can come
        assert (closed.open, closed.closed_by) == (False, "client")
        assert closed.sent() == ["ready", "news", b"\x01"]
        assert srv.push_message("too late") is False


def test_a_wait_before_any_session_waits_for_the_first(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(WebSocket([]), path="/w")
        done: list[object] = []
        waiter = threading.Thread(target=lambda: done.append(srv.wait_messages(1, timeout=10)))
        waiter.start()
        with websockets.sync.client.connect(ws_url(srv, "/w")) as client:
            client.send("first")
            waiter.join(10)
        [session] = done
        assert session.received() == ["first"]  # type: ignore[attr-defined]


def test_wait_messages_times_out_naming_the_session(mode: str) -> None:
    with (
        TestServer(mode=mode) as srv,
        pytest.raises(WaitTimeoutError, match="WebSocket session #2 to receive 1"),
    ):
        srv.wait_messages(1, session=2, timeout=0.05)


def test_await_messages_in_inline_mode() -> None:
    async def main() -> list[str | bytes]:
        srv = InlineTestServer().start()
        try:
            srv.add_response(WebSocket(["hi"]), path="/a")
            async with websockets.asyncio.client.connect(ws_url(srv, "/a")) as client:
                assert await client.recv() == "hi"
                await client.send("there")
                session = await srv.await_messages(1)
                assert srv.push_message("pushed")
                assert await client.recv() == "pushed"
            return session.received()
        finally:
            srv.stop()

    assert asyncio.run(main()) == ["there"]


def test_await_messages_from_another_loop(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(WebSocket([]), path="/b")

        async def main() -> list[str | bytes]:
            async with websockets.asyncio.client.connect(ws_url(srv, "/b")) as client:
                await client.send("async")
                return (await srv.await_messages(1)).received()

        assert asyncio.run(main()) == ["async"]


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda s: s.wait_messages(-1), ValueError, "count -1"),
        (lambda s: s.wait_messages(1, session="x"), TypeError, "session 'x'"),
        (lambda s: s.wait_messages(1, timeout=-1), ValueError, "timeout"),
        (lambda s: s.push_message(42), TypeError, "must be a str"),
        (lambda s: s.push_message("x", session=True), TypeError, "session True"),
    ],
)
def test_bad_wait_and_push_arguments(
    call: Callable[[TestServer], object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        call(TestServer())


# -- matchers and fluent assertions ------------------------------------------------------------


def _talked(srv: TestServer) -> None:
    srv.add_response(
        WebSocket(["welcome", Receive(), Close(1000, "bye")], subprotocol="chat"), path="/t"
    )
    with websockets.sync.client.connect(ws_url(srv, "/t"), subprotocols=["chat"]) as client:
        assert client.recv(timeout=TIMEOUT) == "welcome"
        client.send(b"join")
        with pytest.raises(websockets.exceptions.ConnectionClosedOK):
            client.recv(timeout=TIMEOUT)


def test_fluent_assertions_over_a_session(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        _talked(srv)
        assertion = srv.assert_websocket()
    assert (
        assertion.received(b"join")
        .received_item(b"join")
        .sent("welcome")
        .closed_with(1000, "bye", by="server")
        .has_subprotocol("chat")
        .is_closed()
    ) is assertion
    assert repr(assertion).startswith("<WebSocketAssertion <WebSocketSession #0 /t")


def test_a_failed_assertion_dumps_the_conversation() -> None:
    with TestServer() as srv:
        _talked(srv)
        with pytest.raises(AssertionError) as failure:
            srv.assert_websocket(0).received("leave")
    lines = str(failure.value).splitlines()
    assert lines[0] == "WebSocket session #0 did not match"
    assert (
        lines[1]
        == "Expected: a WebSocket session with messages received a sequence containing ['leave']"
    )
    assert lines[2].startswith("     but: messages received item 0: was <b'join'>")
    assert lines[3] == (
        "WebSocket session #0 on /t (subprotocol 'chat', permessage-deflate), "
        "closed 1000 'bye' by the server:"
    )
    assert lines[4].endswith("->  text    'welcome'")
    assert lines[5].endswith("<-  binary  b'join'")


def test_session_matchers_compose_with_hamcrest() -> None:
    from hamcrest import all_of, assert_that, has_item, is_not

    from tserver.ws import closed_with, has_subprotocol, is_open, received, sent

    with TestServer() as srv:
        _talked(srv)
        sessions = srv.websockets
    assert_that(sessions, has_item(all_of(received(b"join"), sent("welcome"), is_not(is_open()))))
    assert_that(sessions[0], all_of(closed_with(1000), has_subprotocol("chat")))
    assert not received().matches(42)
    with pytest.raises(AssertionError, match="was 42, not a WebSocket session"):
        assert_that(42, received())


def test_assert_websocket_without_a_session(server: TestServer) -> None:
    with pytest.raises(
        AssertionError, match="no WebSocket session at index -1: no session was opened"
    ):
        server.assert_websocket()
    with pytest.raises(TypeError, match="index 'x' must be an int"):
        server.assert_websocket("x")  # type: ignore[arg-type]


# -- the four clients in every mode ----------------------------------------------------------


def _converse_websockets(url: str) -> list[str | bytes]:
    with websockets.sync.client.connect(url) as client:
        client.send("one")
        client.send(b"two")
        return [client.recv(timeout=TIMEOUT) for _ in range(3)]


def _converse_websocket_client(url: str) -> list[str | bytes]:
    client = websocket.create_connection(url, timeout=TIMEOUT)
    try:
        client.send("one")
        client.send_binary(b"two")
        return [client.recv() for _ in range(3)]
    finally:
        client.close()


def _converse_aiohttp(url: str) -> list[str | bytes]:
    async def run() -> list[str | bytes]:
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as client:
            await client.send_str("one")
            await client.send_bytes(b"two")
            return [(await client.receive(timeout=TIMEOUT)).data for _ in range(3)]

    return asyncio.run(run())


def _converse_httpx_ws(url: str) -> list[str | bytes]:
    before = set(threading.enumerate())
    try:
        with httpx.Client() as http, httpx_ws.connect_ws(url.replace("ws", "http", 1), http) as c:
            c.send_text("one")
            c.send_bytes(b"two")
            return [c.receive(timeout=TIMEOUT).data for _ in range(3)]
    finally:
        for thread in set(threading.enumerate()) - before:
            thread.join(TIMEOUT)


CONVERSATIONS: dict[str, Callable[[str], list[str | bytes]]] = {
    "websockets": _converse_websockets,
    "websocket-client": _converse_websocket_client,
    "aiohttp": _converse_aiohttp,
    "httpx-ws": _converse_httpx_ws,
}


@pytest.mark.parametrize("client", list(CONVERSATIONS))
def test_each_client_converses_in_every_mode(mode: str, client: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(WebSocket([Echo(2), Send("bye")]), path="/echo")
        assert CONVERSATIONS[client](ws_url(srv, "/echo")) == ["one", b"two", "bye"]
        session = srv.wait_messages(2)
    assert session.received() == ["one", b"two"]
    assert session.sent() == ["one", b"two", "bye"]


def test_aiohttp_in_inline_mode() -> None:
    async def main() -> list[str | bytes]:
        srv = InlineTestServer().start()
        try:
            srv.add_response(WebSocket([Echo()]), path="/echo")
            async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(srv, "/echo")) as c:
                await c.send_str("inline")
                return [(await c.receive(timeout=TIMEOUT)).data]
        finally:
            srv.stop()

    assert asyncio.run(main()) == ["inline"]


def test_echo_ends_when_the_client_leaves() -> None:
    with TestServer() as srv:
        srv.add_response(WebSocket([Echo(), Send("never")]), path="/e")
        with websockets.sync.client.connect(ws_url(srv, "/e")) as client:
            client.send("x")
            assert client.recv(timeout=TIMEOUT) == "x"
        session = srv.wait_messages(5)
    assert session.sent() == ["x"]
    with pytest.raises(ValueError, match="Echo: count 0"):
        Echo(0)


def test_a_reset_numbers_sessions_afresh_and_forgets_the_open_ones() -> None:
    with TestServer() as srv:
        srv.add_response(WebSocket([]), path="/r", count=None)
        with websockets.sync.client.connect(ws_url(srv, "/r")) as old:
            old.send("before")
            srv.wait_messages(1)
            srv.reset()
            srv.add_response(WebSocket([]), path="/r", count=None)
            assert srv.websockets == []
            assert srv.push_message("to nobody") is False  # the old session is not the test's
            with websockets.sync.client.connect(ws_url(srv, "/r")) as new:
                new.send("after")
                assert srv.wait_messages(1, session=0).received() == ["after"]
                assert srv.push_message("to the new one") is True
                assert new.recv(timeout=TIMEOUT) == "to the new one"


def test_a_broken_upgrade_gets_400_with_the_reason(server: TestServer) -> None:
    server.add_response(WebSocket(["x"]), path="/ws")
    reply = requests.get(
        server.get_url("/ws"),
        headers={"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert reply.text.startswith("tserver: a broken WebSocket upgrade: ")
    assert "Sec-WebSocket-Key" in reply.text
    assert server.websockets == []


def test_a_client_that_breaks_the_protocol_is_closed_and_noted(server: TestServer) -> None:
    import socket as socket_module

    server.add_response(WebSocket([]), path="/ws")
    with socket_module.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert read_past(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 101 ")
        sock.sendall(b"\x81\x05hello")  # a client frame without a mask: forbidden
        assert read_all(sock).startswith(b"\x88")  # the server's close frame, then the end
    session = server.wait_messages(1)
    assert (session.open, session.closed_by, session.close_code) == (False, "server", 1002)
    assert session.mismatches == (
        "the client broke the protocol: server received unexpected unmasked frame",
    )
    with pytest.raises(AssertionError, match="the client broke the protocol"):
        server.check()


# -- found in review: each a regression test -------------------------------------------------


def test_an_echo_to_a_client_that_closes_at_once_is_no_error() -> None:
    with TestServer() as srv:
        srv.add_response(WebSocket([Echo()]), path="/e", count=None)
        for _ in range(10):
            client = websocket.create_connection(ws_url(srv, "/e"), timeout=TIMEOUT)
            client.send("x")
            client.close()
            srv.wait_messages(5)  # the session ended
    srv.check()


def test_a_receive_notices_a_client_that_closed_at_once(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    try:
        srv.add_response(WebSocket(["hi", Receive(timeout=30)]), path="/r")
        with websockets.sync.client.connect(ws_url(srv, "/r")) as client:
            assert client.recv(timeout=TIMEOUT) == "hi"
        session = srv.wait_messages(1)
        assert not session.open
        assert session.mismatches == ("Receive: the client closed before sending a message",)
    finally:
        srv.stop()
        srv.reset()


def test_a_receive_matcher_that_raises_is_a_mismatch() -> None:
    from hamcrest import matches_regexp

    srv = TestServer().start()
    try:
        srv.add_response(WebSocket([Receive(matches_regexp(r"^\d+$")), "after"]), path="/m")
        with websockets.sync.client.connect(ws_url(srv, "/m")) as client:
            client.send(b"\x00bytes")
            assert client.recv(timeout=TIMEOUT) == "after"  # the session went on
        [mismatch] = srv.websockets[0].mismatches
        assert mismatch.startswith("Receive: expected a string matching ")
        assert "but its matcher raised TypeError" in mismatch
    finally:
        srv.stop()
        srv.reset()


def test_push_goes_to_the_newest_open_session() -> None:
    with TestServer() as srv:
        srv.add_response(WebSocket([]), path="/a")
        srv.add_response(WebSocket([Close(1000, "done")]), path="/b")
        with (
            websockets.sync.client.connect(ws_url(srv, "/a")) as first,
            websockets.sync.client.connect(ws_url(srv, "/b")) as second,
        ):
            srv.wait_messages(0, session=1)
            assert srv.push_message("to the open one") is True
            assert first.recv(timeout=TIMEOUT) == "to the open one"
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                second.recv(timeout=TIMEOUT)
