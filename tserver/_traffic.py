"""The recorder's books of connections, exchanges and WebSocket sessions (under its lock).

`ConnRecord` and `ExchangeRecord` are the mutable records the loop side
keeps while a connection lives and a response is written; the recorder
keeps them in its lists (under its lock) and hands out frozen
`~tserver._records.Connection` and `~tserver._records.Exchange` values.

Once listed, a record is written by the loop thread alone, one attribute
at a time (`ConnRecord.next_exchange`, ``status``, ``completed``, a close):
a single writer needs no lock for that, and each assignment is atomic, so
a snapshot taken under the recorder's lock from another thread sees every
field as it was before or after a write, never torn.  This keeps the lock
off the per-request path.  Plain Python, like the recorder: no Tornado,
no sockets.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ._har import Answer, answer_of
from ._records import Connection, Exchange
from ._websocket import Message, WebSocketSession

if TYPE_CHECKING:
    from ._records import TLSInfo
    from ._request import Request
    from ._response import Response

__all__ = ["ConnRecord", "ExchangeRecord", "Meta", "WsRecord"]

#: What crosses for an exchange besides its request: ``(rule, status, completed, answer)``.
Meta = tuple["int | None", "int | None", bool, "Answer | None"]


class ConnRecord:
    """One connection as the recorder keeps it while it lives."""

    __slots__ = (
        "client_ip",
        "client_port",
        "closed_at",
        "error",
        "index",
        "opened_at",
        "protocol",
        "requests",
        "tls",
    )

    def __init__(
        self,
        index: int,
        client_ip: str,
        client_port: int,
        tls: TLSInfo | None = None,
        error: str | None = None,
    ) -> None:
        self.index = index
        self.client_ip = client_ip
        self.client_port = client_port
        self.opened_at = time.time()
        self.closed_at: float | None = self.opened_at if error else None
        self.requests = 0
        self.tls = tls
        self.protocol = "HTTP/1.1"
        self.error = error

    def next_exchange(self, protocol: str) -> int:
        """A request begins on this connection (loop thread): its position there."""
        position = self.requests
        self.requests = position + 1
        self.protocol = protocol
        return position

    @classmethod
    def of(cls, value: Connection) -> ConnRecord:
        """The record of a `Connection` value (a state restored)."""
        record = cls(value.index, value.client_ip, value.client_port, value.tls, value.error)
        record.opened_at, record.closed_at = value.opened_at, value.closed_at
        record.requests, record.protocol = value.requests, value.protocol
        return record

    def value(self) -> Connection:
        """The frozen `Connection` it is now."""
        return Connection(
            self.index,
            self.client_ip,
            self.client_port,
            self.opened_at,
            self.closed_at,
            self.requests,
            self.tls,
            self.protocol,
            self.error,
        )


class ExchangeRecord:
    """One request and what answers it, while the response is written.

    ``response`` is the `~tserver.Response` whose status line went out
    (the handler keeps a reference, nothing more); ``finished_at`` when the
    answer ended; ``streamed`` what a stream sent (up to
    `~tserver._har.STREAM_CAP` bytes, ``truncated`` past it).  The HAR log
    makes its `Answer` of them when asked (`answer`); a record restored
    from a child has its answer already.
    """

    __slots__ = (
        "_answer",
        "completed",
        "finished_at",
        "request",
        "response",
        "rule",
        "status",
        "streamed",
        "truncated",
    )

    def __init__(
        self,
        request: Request,
        rule: int | None = None,
        status: int | None = None,
        completed: bool = False,
        answer: Answer | None = None,
    ) -> None:
        self.request = request
        self.rule = rule
        self.status = status
        self.completed = completed
        self._answer = answer
        self.response: Response | None = None
        self.finished_at: float | None = None
        self.streamed: bytes | None = None
        self.truncated = False

    def answer(self) -> Answer:
        """What the HAR log says of its response."""
        if self._answer is not None:
            return self._answer
        return answer_of(
            self.request,
            self.response,
            self.status,
            self.finished_at,
            self.streamed,
            self.truncated,
        )

    def settle(self, answer: Answer | None = None) -> None:
        """Make the answer now (or take *answer*) and let go of the response.

        For a response made for this request alone (a callback's, one given
        to `Held.release`): the record keeps its capped answer, not its body.
        """
        self._answer = self.answer() if answer is None else answer
        self.response = self.streamed = None

    def meta(self) -> Meta:
        """What crosses for it besides its request (a child's final state)."""
        return (self.rule, self.status, self.completed, self.answer())

    def value(self) -> Exchange:
        """The frozen `Exchange` it is now."""
        return Exchange(self.request, self.rule, self.status, self.completed)


class WsRecord:
    """One WebSocket session as the recorder keeps it while it lives (written by the loop)."""

    __slots__ = (
        "close_code",
        "close_reason",
        "closed_by",
        "extensions",
        "index",
        "messages",
        "mismatches",
        "open",
        "request",
        "subprotocol",
    )

    def __init__(
        self,
        index: int,
        request: Request,
        subprotocol: str | None = None,
        extensions: tuple[str, ...] = (),
    ) -> None:
        self.index = index
        self.request = request
        self.subprotocol = subprotocol
        self.extensions = extensions
        self.messages: list[Message] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_by: str | None = None
        self.open = True
        self.mismatches: list[str] = []

    def add(self, direction: str, kind: str, data: str | bytes) -> None:
        """A message went out or came in (loop thread)."""
        self.messages.append(Message(direction, kind, data, time.time()))

    def closing(self, code: int | None, reason: str, by: str) -> None:
        """A close frame went out or came in; the first one counts (loop thread)."""
        if self.closed_by is None:
            self.close_code, self.close_reason, self.closed_by = code, reason, by

    @classmethod
    def of(cls, value: WebSocketSession) -> WsRecord:
        """The record of a `WebSocketSession` value (a state restored)."""
        record = cls(value.index, value.request, value.subprotocol, value.extensions)
        record.messages = list(value.messages)
        record.close_code, record.close_reason = value.close_code, value.close_reason
        record.closed_by, record.open = value.closed_by, value.open
        record.mismatches = list(value.mismatches)
        return record

    def value(self) -> WebSocketSession:
        """The frozen `WebSocketSession` it is now."""
        return WebSocketSession(
            self.index,
            self.request,
            self.subprotocol,
            self.extensions,
            tuple(self.messages),
            self.close_code,
            self.close_reason,
            self.closed_by,
            self.open,
            tuple(self.mismatches),
        )
