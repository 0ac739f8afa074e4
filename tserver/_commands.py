"""The command vocabulary: what the facade asks of the loop side, and what comes back.

Every control call of `~tserver.TestServer` becomes one `Command`.  A
command's type parameter is the type of its result, so a backend's
``call(command: Command[R]) -> R`` is typed end to end.  In thread and
inline mode the command is handed to the `~tserver._host.Host` directly;
in subprocess mode it is pickled through the socketpair (`tserver._wire`)
and the child hands it to its own `Host`.  One vocabulary, one code path:
every mode answers the same.

Commands and the records they return are frozen values (`frozen_value`)
that import nothing but the values: they cross the process boundary.
"""

from __future__ import annotations

import pickle
from dataclasses import field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._frozen import Frozen, frozen_value
from ._held import Held
from ._records import Connection, Exchange
from ._request import Request
from ._websocket import WebSocketSession

if TYPE_CHECKING:
    from ._held import HeldKey
    from ._response import Response

__all__ = [
    "ActOnHeld",
    "AddRule",
    "CheckReport",
    "CloseConnections",
    "Command",
    "GetConnections",
    "GetExchanges",
    "GetWebSockets",
    "PushMessage",
    "WaitMessages",
    "GetCount",
    "GetHar",
    "GetHeld",
    "GetHistory",
    "GetRequest",
    "HandlerError",
    "RecorderState",
    "Reset",
    "Restore",
    "Served",
    "SetResponse",
    "Shutdown",
    "Snapshot",
    "TakeReport",
    "WaitHeld",
    "WaitRequests",
    "WithdrawWait",
]

R_co = TypeVar("R_co", covariant=True)

#: One layer of the default response: Response field name to checked value.
Overlay = tuple[tuple[str, Any], ...]
#: The layers of every method: ``(None or "POST", overlay)`` pairs.
Layers = tuple[tuple["str | None", Overlay], ...]


class Command(Frozen, Generic[R_co]):
    """Base of every command; *R_co* is the type of its result."""

    __slots__ = ()


# -- configuration --------------------------------------------------------------


@frozen_value()
class SetResponse(Command[None]):
    """`set_response` / `set_response_once` of one `Response` field, checked already."""

    key: str
    value: Any
    method: str | None = None
    once: bool = False


@frozen_value()
class AddRule(Command[int]):
    """`add_response`: a response and the selectors that pick it; returns the rule id."""

    response: Response
    count: int | None = 1
    methods: tuple[str, ...] | None = None
    path: Any = None
    match: Any = None
    priority: int = 0
    host: Any = None


@frozen_value()
class Reset(Command[None]):
    """Empty history, rules, default response, once-overrides and errors."""


@frozen_value()
class Restore(Command[None]):
    """Replace the whole recorder state (a child's first state, a stopped server's last)."""

    state: RecorderState


# -- reading ----------------------------------------------------------------------


@frozen_value()
class GetHistory(Command[list[Request]]):
    """The whole history, oldest first."""


@frozen_value()
class GetRequest(Command["Request | None"]):
    """One request by index (negative counts from the end); `None` if there is none."""

    index: int = -1


@frozen_value()
class GetCount(Command[int]):
    """How many requests arrived since the last reset."""


@frozen_value()
class GetConnections(Command[list[Connection]]):
    """Every connection since the last reset, oldest first."""


@frozen_value()
class GetExchanges(Command[list[Exchange]]):
    """Every exchange, aligned with the history."""


@frozen_value()
class GetWebSockets(Command[list[WebSocketSession]]):
    """Every WebSocket session since the last reset, oldest first."""


@frozen_value()
class Served(Command[list[Request]]):
    """The requests the rule `rule` answered (of those the history keeps)."""

    rule: int


@frozen_value()
class GetHar(Command[dict[str, Any]]):
    """The HAR 1.2 log of the exchanges since the last reset (`server_ip` for each entry)."""

    server_ip: str


@frozen_value()
class CloseConnections(Command[int]):
    """Close every connection idle between requests; how many were closed."""


@frozen_value()
class TakeReport(Command["CheckReport"]):
    """What `check()` needs: handler errors, unmatched requests, unused rules."""


@frozen_value()
class Snapshot(Command["RecorderState"]):
    """The whole recorder state."""


# -- the host's own -----------------------------------------------------------------


@frozen_value()
class WaitRequests(Command[list[Request]]):
    """Reply once `count` requests have arrived, or fail after `timeout` seconds."""

    count: int
    timeout: float


@frozen_value()
class WaitHeld(Command[Held]):
    """Reply with the oldest held exchange no earlier `WaitHeld` got, or fail after `timeout`.

    ``token`` names this wait for a `WithdrawWait`.
    """

    timeout: float
    token: int = 0


@frozen_value()
class WithdrawWait(Command[None]):
    """The `WaitHeld` ``token`` was given up (cancelled): what it took goes back."""

    token: int


@frozen_value()
class GetHeld(Command[list[Held]]):
    """The exchanges held now, oldest first."""


@frozen_value()
class ActOnHeld(Command[bool]):
    """Release, send on or fail the held exchange `key`; `False` once it is held no more."""

    key: HeldKey
    action: str
    value: Any = None


@frozen_value()
class WaitMessages(Command[WebSocketSession]):
    """Reply once a WebSocket session received ``count`` messages (or closed).

    ``session`` is its index, `None` for the newest; the wait fails after
    ``timeout``.
    """

    session: int | None
    count: int
    timeout: float


@frozen_value()
class PushMessage(Command[bool]):
    """Send ``data`` on the open WebSocket session ``session`` (`None`: the newest)."""

    session: int | None
    data: str | bytes


@frozen_value()
class Shutdown(Command["RecorderState"]):
    """Stop serving, close every connection, reply with the final state."""


# -- records ------------------------------------------------------------------------


@frozen_value()
class HandlerError(Frozen):
    """An exception raised while serving a request (say, in a callback).

    ``exception`` is the original when it could cross the process boundary,
    else `None`; ``type_name``, ``message`` and ``traceback`` are always set.
    """

    type_name: str
    message: str
    traceback: str
    request: Request | None = None
    exception: BaseException | None = field(default=None, compare=False)

    def portable(self) -> HandlerError:
        """A copy without the exception object when that does not pickle."""
        if self.exception is None:
            return self
        try:
            pickle.loads(pickle.dumps(self.exception))
        except Exception:
            return HandlerError(self.type_name, self.message, self.traceback, self.request)
        return self


@frozen_value()
class CheckReport(Frozen):
    """Everything `check()` may complain about, rendered lines included."""

    errors: tuple[HandlerError, ...] = ()
    unmatched: tuple[str, ...] = ()
    unused_rules: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.errors or self.unmatched or self.unused_rules)


@frozen_value()
class RecorderState(Frozen):
    """A picklable copy of the recorder's configuration and records.

    ``rules`` holds the recorder's rules (`tserver._recorder.Rule`), which
    pickle with their uses left; ``next_rule`` is the id the next rule gets.
    ``lost`` says what a child could not send back (a matcher that no
    longer pickles once it has run, say), each part described instead.
    ``exchanges`` holds, for each request of ``history``, ``(rule, status,
    completed, answer)`` (the answer is `tserver._har.Answer`);
    ``connections`` the connections since the last reset.
    """

    rules: tuple[Any, ...] = ()
    next_rule: int = 0
    defaults: Layers = ()
    once: Layers = ()
    history: tuple[Request, ...] = ()
    count: int = 0
    errors: tuple[HandlerError, ...] = ()
    unmatched: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    exchanges: tuple[tuple[Any, ...], ...] = ()
    connections: tuple[Any, ...] = ()
    next_connection: int = 0
    websockets: tuple[Any, ...] = ()
