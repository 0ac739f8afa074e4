"""`Event`: one server-sent event (``text/event-stream``), checked when it is made.

The wire form follows the HTML standard's event stream format: an optional
``: comment`` line, ``event:``, ``id:`` and ``retry:`` fields, one
``data:`` line per line of the data, and a blank line that ends the event.
Stdlib only: events cross the process boundary of subprocess mode.
"""

from __future__ import annotations

import copy
import json as _json
from dataclasses import field
from typing import Any

from ._frozen import Frozen, assign, frozen_value

__all__ = ["EVENT_STREAM", "Event"]

#: The media type of a stream of events.
EVENT_STREAM = "text/event-stream"


def _one_line(where: str, name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{where}: {name} {value!r} must be a str")
    if "\n" in value or "\r" in value or "\x00" in value:
        raise ValueError(f"{where}: {name} {value!r} must be one line (no CR, LF or NUL)")
    return value


@frozen_value()
class Event(Frozen):
    r"""One server-sent event, for ``Response(events=[...])`` and `Held.send`.

    ``data`` is a str, sent as one ``data:`` line per line, or any other
    JSON value, sent as one line of JSON.  Everything after ``data`` is
    given by keyword: ``event`` (the event type), ``id`` (which a client
    sends back as ``Last-Event-ID`` when it reconnects), ``retry`` (the
    reconnection delay in milliseconds, an int) and ``comment`` (a ``:``
    line that clients ignore, often used as a keep-alive).  An empty str
    ``data`` is left out when another field is given, so that
    ``Event(comment="ping")`` is a comment alone.

    Example::

        >>> from tserver import Event
        >>> Event("hello", event="greeting", id="1").encode()
        b'event: greeting\nid: 1\ndata: hello\n\n'
        >>> Event({"n": 1}).encode()
        b'data: {"n": 1}\n\n'
    """

    data: Any = ""
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None
    _wire: bytes = field(default=b"", init=False, repr=False, compare=False)

    def __init__(
        self,
        data: Any = "",
        *,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
        comment: str | None = None,
    ) -> None:
        if not isinstance(data, str):  # its own copy: the caller's object may change later
            data = copy.deepcopy(data)
        assign(self, data=data, event=event, id=id, retry=retry, comment=comment)
        self.__post_init__()

    def __post_init__(self) -> None:
        if not isinstance(self.data, str):
            try:
                _json.dumps(self.data, allow_nan=False)
            except (TypeError, ValueError, RecursionError) as exc:
                raise ValueError(
                    f"Event: data {self.data!r} is neither a str nor a JSON value: {exc}"
                ) from None
        _one_line("Event", "event", self.event)
        _one_line("Event", "id", self.id)
        if self.comment is not None:
            _one_line("Event", "comment", self.comment)
        if self.retry is not None and (
            isinstance(self.retry, bool) or not isinstance(self.retry, int) or self.retry < 0
        ):
            raise ValueError(f"Event: retry {self.retry!r} must be an int of milliseconds >= 0")
        # the wire form, made now: a dict given as data and changed later changes nothing
        object.__setattr__(self, "_wire", _wire_of(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Event):
            return bool(self._wire == other._wire)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._wire)

    def __repr__(self) -> str:
        return self._fields_repr()

    def encode(self) -> bytes:
        """The event as it goes on the wire (UTF-8), its blank line included."""
        wire: bytes = self._wire
        return wire


def _wire_of(event: Event) -> bytes:
    lines = [] if event.comment is None else [f": {event.comment}"]
    for name in ("event", "id", "retry"):
        value = getattr(event, name)
        if value is not None:
            lines.append(f"{name}: {value}")
    data = event.data
    if not isinstance(data, str):
        lines.append(f"data: {_json.dumps(data, allow_nan=False)}")
    elif data or not lines:
        lines += [
            f"data: {line}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        ]
    return ("\n".join(lines) + "\n\n").encode("utf-8")
