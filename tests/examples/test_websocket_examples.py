"""WebSocket answers (``docs/websocket.rst``)."""

from __future__ import annotations

import pytest
import websockets.exceptions
from hamcrest import starts_with
from websockets.sync.client import connect

from tserver import TestServer
from tserver.ws import Close, Fail, Receive, Send, WebSocket


def test_a_scripted_conversation() -> None:
    with TestServer() as srv:
        srv.add_response(
            WebSocket([Send("welcome"), Receive(starts_with("join ")), Close(1000, "bye")]),
            path="/chat",
        )

        url = srv.get_url("/chat").replace("http", "ws")
        with connect(url) as client:
            assert client.recv() == "welcome"
            client.send("join #general")
            with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                client.recv()

        [session] = srv.websockets
        assert session.received() == ["join #general"]
        assert (session.close_code, session.closed_by) == (1000, "server")


def test_a_client_that_gives_up_on_bad_utf8() -> None:
    with TestServer() as srv:
        srv.add_response(WebSocket([Fail("invalid-utf8")]), path="/feed")

        url = srv.get_url("/feed").replace("http", "ws")
        with (
            connect(url) as client,
            pytest.raises(websockets.exceptions.ConnectionClosedError) as closed,
        ):
            client.recv()

        assert closed.value.sent is not None
        assert closed.value.sent.code == 1007  # the client closed: invalid payload data


def test_the_test_drives_the_conversation() -> None:
    with TestServer() as srv:
        srv.add_response(WebSocket([]), path="/live")  # no script: the test talks

        with connect(srv.get_url("/live").replace("http", "ws")) as client:
            client.send("subscribe prices")
            session = srv.wait_messages(1)
            assert session.received() == ["subscribe prices"]

            srv.push_message('{"EUR": 1.08}')
            assert client.recv() == '{"EUR": 1.08}'


def test_a_failed_check_shows_the_conversation() -> None:
    with TestServer() as srv:
        srv.add_response(WebSocket(["welcome", Receive(), Close(1000, "bye")]), path="/chat")
        with connect(srv.get_url("/chat").replace("http", "ws")) as client:
            client.recv()
            client.send("join #general")
            with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                client.recv()

        srv.assert_websocket().received("join #general").closed_with(1000, by="server")
        with pytest.raises(AssertionError) as failure:
            srv.assert_websocket().received("join #random")

    welcome, join = srv.websockets[0].messages
    assert str(failure.value).splitlines()[3:] == [
        "WebSocket session #0 on /chat (permessage-deflate), closed 1000 'bye' by the server:",
        "    +0.000s  ->  text    'welcome'",
        f"    +{join.at - welcome.at:.3f}s  <-  text    'join #general'",
    ]
