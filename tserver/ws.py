"""WebSocket answers: the steps of a script, and what a session records (SPEC §13).

    >>> from tserver import TestServer
    >>> from tserver.ws import Close, Receive, Send, WebSocket
    >>> srv = TestServer()
    >>> srv.add_response(WebSocket([Send("hello"), Receive(), Close(1000, "bye")]), path="/ws")
    0

A script is a list of steps, run in order once the upgrade is accepted:
`Send`, `Receive`, `Echo`, `Sleep`, `Ping`, `Close` and `Fail`.  After the script
the session stays open and records what the client sends until it closes.
`TestServer.websockets` lists the sessions (`WebSocketSession`), each with
its `Message` values in both directions; the matchers `received`,
`received_item`, `sent`, `closed_with`, `has_subprotocol` and `is_open`
check them, and `TestServer.assert_websocket` chains the same checks.  WebSocket answers need the
``tserver[websocket]`` extra (python-hyper's wsproto).
"""

from ._websocket import (
    FAILS,
    Close,
    Echo,
    Fail,
    Message,
    Ping,
    Receive,
    Send,
    Sleep,
    Step,
    WebSocket,
    WebSocketSession,
)
from ._ws_matchers import closed_with, has_subprotocol, is_open, received, received_item, sent

__all__ = [
    "FAILS",
    "Close",
    "Echo",
    "Fail",
    "Message",
    "Ping",
    "Receive",
    "Send",
    "Sleep",
    "Step",
    "WebSocket",
    "WebSocketSession",
    "closed_with",
    "has_subprotocol",
    "is_open",
    "received",
    "received_item",
    "sent",
]
