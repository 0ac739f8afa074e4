"""Hamcrest matchers over WebSocket sessions (`tserver.ws`), behind the fluent ones.

Each is a `SessionField`: one part of a `~tserver.ws.WebSocketSession`
(the data the client sent, the data the server sent, the close, the
subprotocol, whether it is open) checked by a matcher, with a mismatch that
names the part.  Anything that is no session is a mismatch, not an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hamcrest import anything, contains_exactly, empty, equal_to, has_item
from hamcrest.core.base_matcher import BaseMatcher
from hamcrest.core.helpers.wrap_matcher import wrap_matcher

from ._websocket import WebSocketSession

if TYPE_CHECKING:
    from collections.abc import Callable

    from hamcrest.core.description import Description
    from hamcrest.core.matcher import Matcher

__all__ = [
    "SessionField",
    "closed_with",
    "has_subprotocol",
    "is_open",
    "received",
    "received_item",
    "sent",
]


def _received(session: WebSocketSession) -> Any:
    return session.received()


def _sent(session: WebSocketSession) -> Any:
    return session.sent()


def _close(session: WebSocketSession) -> Any:
    return (session.close_code, session.close_reason, session.closed_by)


def _subprotocol(session: WebSocketSession) -> Any:
    return session.subprotocol


def _open(session: WebSocketSession) -> Any:
    return session.open


#: The parts a `SessionField` reads, by name (names pickle; functions would too).
PARTS: dict[str, Callable[[WebSocketSession], Any]] = {
    "messages received": _received,
    "messages sent": _sent,
    "close": _close,
    "subprotocol": _subprotocol,
    "open": _open,
}


class SessionField(BaseMatcher[WebSocketSession]):
    """A session whose *part* (a key of `PARTS`) matches *matcher*."""

    def __init__(self, part: str, matcher: Matcher[Any]) -> None:
        self.part = part
        self.matcher = wrap_matcher(matcher)

    def _matches(self, item: object) -> bool:
        return isinstance(item, WebSocketSession) and self.matcher.matches(PARTS[self.part](item))

    def describe_to(self, description: Description) -> None:
        description.append_text(f"a WebSocket session with {self.part} ")
        description.append_description_of(self.matcher)

    def describe_mismatch(self, item: object, mismatch_description: Description) -> None:
        if not isinstance(item, WebSocketSession):
            mismatch_description.append_text(f"was {item!r}, not a WebSocket session")
            return
        mismatch_description.append_text(f"{self.part} ")
        self.matcher.describe_mismatch(PARTS[self.part](item), mismatch_description)


def _messages(items: tuple[Any, ...]) -> Matcher[Any]:
    return contains_exactly(*items) if items else empty()


def received(*items: Any) -> Matcher[WebSocketSession]:
    """A session whose client sent exactly these messages, in order.

    Each item is a str (a text message), bytes (a binary one) or a matcher;
    no item: the client sent none.  Pings and pongs do not count.
    """
    return SessionField("messages received", _messages(items))


def received_item(item: Any) -> Matcher[WebSocketSession]:
    """A session whose client sent a message that is (or matches) *item*, among others."""
    return SessionField("messages received", has_item(item))


def sent(*items: Any) -> Matcher[WebSocketSession]:
    """A session in which the server sent exactly these messages, in order (see `received`)."""
    return SessionField("messages sent", _messages(items))


def closed_with(code: Any, reason: Any = None, by: Any = None) -> Matcher[WebSocketSession]:
    """A session closed by a close frame with *code* (a matcher, or an int).

    *reason* and *by* (``"client"`` or ``"server"``) are checked when given.
    """
    return SessionField(
        "close",
        contains_exactly(
            wrap_matcher(code),
            anything() if reason is None else wrap_matcher(reason),
            anything() if by is None else wrap_matcher(by),
        ),
    )


def has_subprotocol(name: Any) -> Matcher[WebSocketSession]:
    """A session that agreed on subprotocol *name* (`None`: on none)."""
    return SessionField("subprotocol", equal_to(name) if name is None else wrap_matcher(name))


def is_open() -> Matcher[WebSocketSession]:
    """A session still open when it was read."""
    return SessionField("open", equal_to(True))
