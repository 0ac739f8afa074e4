"""The `Recorder`: the one owner of a server's state.

Rules of this module (read before touching it)
----------------------------------------------

Rule 1 -- one lock.  Every piece of state below (rules, default layers,
once-overrides, history, request count, handler errors, waiters) is read and
written only under ``self._lock``.  Any thread may call any public method:
the test thread configures and reads, the event loop thread records.  There
is no hop onto the event loop for a setting or a read.

Rule 2 -- the lock is never held across I/O or across a wait.  User code
that runs under it is limited to rule selectors (a compiled pattern or a
hamcrest matcher deciding whether a rule applies); callbacks that build a
response run in the handler, outside it, and so do the waiters' wake-ups.

Rule 3 -- no Tornado, no sockets, no hamcrest.  The recorder is plain
Python so that it can be unit-tested with plain objects and so that the
child process of subprocess mode runs exactly the same code.  Texts for
people (rule descriptions, mismatches) come from `tserver._formatting`.

Theory of operation
-------------------

Configuration arrives as `~tserver._commands` commands through `apply`.
A request arrives through `record`, which appends it to the history *and*
picks its response in one critical section, so a waiter woken by the new
count already sees the request.  The response is chosen in this order:

1. the first rule, by priority (higher first) then in the order added,
   whose selectors match and which has count left (a count-limited rule
   counts down and disappears at zero);
2. else, in strict mode, a 500 naming the request and every rule with why
   it did not match (also kept for `check()`);
3. else the default response: the overlay of any method, then that of the
   request's method, then the pending once-overrides (any method, then
   this method), which this request consumes, merged by
   `~tserver._response.merge_overlays`.
"""

from __future__ import annotations

import pickle
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._commands import (
    AddRule,
    CheckReport,
    Command,
    GetConnections,
    GetCount,
    GetExchanges,
    GetHar,
    GetHistory,
    GetRequest,
    GetWebSockets,
    HandlerError,
    RecorderState,
    Reset,
    Restore,
    Served,
    SetResponse,
    Snapshot,
    TakeReport,
)
from ._errors import WaitTimeoutError
from ._formatting import describe_rule, describe_selector, mismatch_text, no_rule_text
from ._har import har_log
from ._request import same_host
from ._response import Overlay, Response, merge_overlays, overlay_with
from ._traffic import ConnRecord, ExchangeRecord, WsRecord
from ._violations import HEAD_VIOLATIONS
from ._waiting import Pending

if TYPE_CHECKING:
    from ._records import Connection, Exchange, TLSInfo
    from ._request import Request
    from ._websocket import WebSocketSession

__all__ = ["Described", "Recorder", "Rule"]

R = TypeVar("R")

#: The kinds of WebSocket message that a wait for messages counts.
_DATA = ("text", "binary")
#: The `set_response` keys a framing header may contradict, and those headers.
_FRAMED = frozenset({"data", "json", "headers"})
_FRAMING = frozenset({"content-length", "transfer-encoding"})


class Rule:
    """One `add_response` rule: the `AddRule` that made it, its id and its uses."""

    __slots__ = ("id", "remaining", "served", "spec")

    def __init__(self, spec: AddRule, rule_id: int) -> None:
        self.spec = spec
        self.id = rule_id
        self.remaining = spec.count
        self.served = 0

    def __getstate__(self) -> tuple[AddRule, int, int | None, int]:
        return (self.spec, self.id, self.remaining, self.served)

    def __setstate__(self, state: tuple[AddRule, int, int | None, int]) -> None:
        self.spec, self.id, self.remaining, self.served = state

    def __repr__(self) -> str:
        return f"<Rule #{self.id}: {self.describe()}>"

    def why_not(self, request: Request, *, explain: bool = True) -> str | None:
        """`None` when this rule applies to *request*, else the reason it does not.

        Without *explain* the reason is only ``"no"``: describing a
        hamcrest mismatch costs more than the match.
        """
        spec = self.spec
        if spec.methods is not None and request.method.upper() not in spec.methods:
            return f"method was {request.method!r}" if explain else "no"
        if spec.path is not None:
            missed = _selector_miss("path", spec.path, request.path, _same_path, explain)
            if missed is not None:
                return missed
        if spec.host is not None:
            missed = _selector_miss("host", spec.host, request.host, same_host, explain)
            if missed is not None:
                return missed
        if spec.match is not None and not spec.match.matches(request):
            return mismatch_text(spec.match, request) if explain else "no"
        return None

    def describe(self) -> str:
        """One line: the selectors, the answer and the count left."""
        return describe_rule(self.spec, self.remaining)

    def described(self) -> Rule:
        """A copy whose matchers and callback are replaced by their descriptions.

        What a child sends back at ``stop()`` when the rule no longer pickles
        (a matcher that keeps a lock once it has run, say): enough to report
        it, and it answers no request.
        """
        spec = self.spec
        path = spec.path
        if path is not None and not isinstance(path, str):
            path = Described(describe_selector(path))
        host = spec.host
        if host is not None and not isinstance(host, str):
            host = Described(describe_selector(host))
        response = spec.response
        try:
            pickle.dumps(response)
        except Exception:
            response = Response(status=response.status)
        copy = Rule(
            AddRule(
                response,
                spec.count,
                spec.methods,
                path,
                None if spec.match is None else Described(describe_selector(spec.match)),
                spec.priority,
                host,
            ),
            self.id,
        )
        copy.remaining, copy.served = self.remaining, self.served
        return copy


def _same_path(wanted: str, path: str) -> bool:
    return wanted == path


def _selector_miss(
    label: str, selector: Any, value: str, same: Callable[[str, str], bool], explain: bool
) -> str | None:
    """`None` when *selector* (a str, a pattern, a matcher) accepts *value*, else why not."""
    if isinstance(selector, str):
        if same(selector, value):
            return None
    elif isinstance(selector, re.Pattern):
        if selector.fullmatch(value) is not None:
            return None
    elif selector.matches(value):
        return None
    else:
        return f"{label} {mismatch_text(selector, value)}" if explain else "no"
    return f"{label} was {value!r}" if explain else "no"


class Described:
    """Stands for a selector that stayed in a child: it describes, and matches nothing."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def matches(self, item: object) -> bool:
        """Nothing: the real selector is gone."""
        return False

    def describe_to(self, description: Any) -> None:
        """The description of the selector it stands for."""
        description.append_text(self.text)

    def describe_mismatch(self, item: object, description: Any) -> None:
        """Why it matched nothing."""
        description.append_text("(a selector that stayed in the child process)")

    def __repr__(self) -> str:
        return self.text


class Recorder:
    """Holds rules, the default response, history, errors and waiters.

    Thread-safe under one lock (see the module docstring for its rules).
    """

    def __init__(self, *, strict: bool = False, history_limit: int | None = None) -> None:
        self.strict = strict
        self.history_limit = history_limit
        self._lock = threading.Lock()
        #: waits for WebSocket messages: (session, count, deliver, fail)
        self._ws_waiters: list[tuple[Any, ...]] = []
        self._waiters: list[
            tuple[int, Callable[[], None], Callable[[BaseException], object] | None]
        ] = []
        self._clear()
        self._handlers: dict[type[Command[Any]], Callable[[Any], Any]] = {
            SetResponse: self._set_response,
            AddRule: self._add_rule,
            Reset: self._reset,
            GetHistory: self._get_history,
            GetRequest: self._get_request,
            GetCount: self._get_count,
            TakeReport: self._take_report,
            Snapshot: self._snapshot,
            Restore: self._restore,
            GetConnections: self._get_connections,
            GetExchanges: self._get_exchanges,
            GetHar: self._get_har,
            Served: self._served,
            GetWebSockets: self._get_websockets,
        }

    def _clear(self) -> None:
        #: Whether a rule may act on a request's head, before its body
        #: (``expect=``, ``read_rate=``): the handler then asks `peek`.
        self.head_rules = False
        self._rules: list[Rule] = []
        self._next_rule = 0
        self._defaults: dict[str | None, Overlay] = {}
        self._once: dict[str | None, Overlay] = {}
        self._history: deque[Request] = deque(maxlen=self.history_limit)
        self._exchanges: deque[ExchangeRecord] = deque(maxlen=self.history_limit)
        self._connections: list[ConnRecord] = []
        self._next_connection = 0
        self._count = 0
        self._errors: list[HandlerError] = []
        self._unmatched: list[str] = []
        self._cache: dict[str, Response] = {}
        self._websockets: list[WsRecord] = []

    # -- commands -----------------------------------------------------------

    def apply(self, command: Command[R]) -> R:
        """Carry out one command under the lock and return its result."""
        handler = self._handlers[type(command)]
        with self._lock:
            result: R = handler(command)
            return result

    def _set_response(self, cmd: SetResponse) -> None:
        table = self._once if cmd.once else self._defaults
        before = table.get(cmd.method, ())
        table[cmd.method] = overlay_with(before, cmd.key, cmd.value)
        if cmd.key in _FRAMED and self._framing_headers():
            try:  # the layers must still describe a valid response: fail now, not per request
                self._check_layers()
            except ValueError:
                table[cmd.method] = before
                raise
        self._cache.clear()

    def _check_layers(self) -> None:
        """Merge every combination of layers a request may meet (`ValueError` if one is wrong).

        For each method: the defaults alone, and with the pending
        once-overrides of any method, of that method, or both (each is used
        up by the next request that takes it).
        """
        once_any = self._once.get(None)
        methods = {m for m in (*self._defaults, *self._once) if m is not None}
        for method in ("", *methods):  # "": a method with no layer of its own
            once_method = self._once.get(method) if method else None
            for overrides in ((None, None), (once_any, None), (None, once_method)):
                self._default_for(method, *overrides)
            self._default_for(method, once_any, once_method)

    def _framing_headers(self) -> bool:
        """Whether a layer sets a header the body must agree with (Content-Length...)."""
        for table in (self._defaults, self._once):
            for layer in table.values():
                for key, value in layer:
                    if key == "headers" and any(n.lower() in _FRAMING for n, _ in value):
                        return True
        return False

    def _add_rule(self, cmd: AddRule) -> int:
        rule = Rule(cmd, self._next_rule)
        self._next_rule += 1
        # after every rule of the same or a higher priority: stable order
        position = len(self._rules)
        while position and self._rules[position - 1].spec.priority < cmd.priority:
            position -= 1
        self._rules.insert(position, rule)
        self.head_rules = self.head_rules or _acts_on_head(cmd.response)
        return rule.id

    def _reset(self, cmd: Reset) -> None:
        still_open = [c for c in self._connections if c.closed_at is None]
        self._clear()
        for index, conn in enumerate(still_open):  # numbered anew, oldest first
            conn.index = index
        self._connections = still_open
        self._next_connection = len(still_open)

    def _get_history(self, cmd: GetHistory) -> list[Request]:
        return list(self._history)

    def _get_request(self, cmd: GetRequest) -> Request | None:
        try:
            return self._history[cmd.index]
        except IndexError:
            return None

    def _get_count(self, cmd: GetCount) -> int:
        return self._count

    def _take_report(self, cmd: TakeReport) -> CheckReport:
        unused: tuple[str, ...] = ()
        if self.strict:
            unused = tuple(
                rule.describe()
                for rule in self._rules
                if rule.remaining is not None and rule.remaining > 0
            )
        return CheckReport(tuple(self._errors), tuple(self._unmatched), unused)

    def _snapshot(self, cmd: Snapshot) -> RecorderState:
        return RecorderState(
            rules=tuple(self._rules),
            next_rule=self._next_rule,
            defaults=tuple(self._defaults.items()),
            once=tuple(self._once.items()),
            history=tuple(self._history),
            count=self._count,
            errors=tuple(self._errors),
            unmatched=tuple(self._unmatched),
            exchanges=tuple(e.meta() for e in self._exchanges),
            connections=tuple(c.value() for c in self._connections),
            next_connection=self._next_connection,
            websockets=tuple(w.value() for w in self._websockets),
        )

    def _restore(self, cmd: Restore) -> None:
        state = cmd.state
        self._clear()
        self._rules = list(state.rules)
        self.head_rules = any(_acts_on_head(rule.spec.response) for rule in self._rules)
        self._next_rule = state.next_rule
        self._defaults = dict(state.defaults)
        self._once = dict(state.once)
        self._history.extend(state.history)
        self._count = state.count
        self._errors = list(state.errors)
        self._unmatched = list(state.unmatched)
        metas = state.exchanges or [(None, None, False, None)] * len(state.history)
        self._exchanges.extend(
            ExchangeRecord(request, *meta)
            for request, meta in zip(state.history, metas, strict=True)
        )
        self._connections = [ConnRecord.of(c) for c in state.connections]
        self._next_connection = state.next_connection
        self._websockets = [WsRecord.of(w) for w in state.websockets]

    def _get_connections(self, cmd: GetConnections) -> list[Connection]:
        return [c.value() for c in self._connections]

    def _get_exchanges(self, cmd: GetExchanges) -> list[Exchange]:
        return [e.value() for e in self._exchanges]

    def _get_websockets(self, cmd: GetWebSockets) -> list[WebSocketSession]:
        return [w.value() for w in self._websockets]

    def _get_har(self, cmd: GetHar) -> dict[str, Any]:
        return har_log(
            [(e.request, e.rule, e.completed, e.answer()) for e in self._exchanges],
            cmd.server_ip,
        )

    def _served(self, cmd: Served) -> list[Request]:
        return [e.request for e in self._exchanges if e.rule == cmd.rule]

    # -- connections and exchanges (the loop side) ----------------------------

    def open_connection(
        self,
        client_ip: str,
        client_port: int,
        tls: TLSInfo | None = None,
        error: str | None = None,
    ) -> ConnRecord:
        """A new connection gets the next index (closed at once when *error* says it failed)."""
        with self._lock:
            conn = ConnRecord(self._next_connection, client_ip, client_port, tls, error)
            self._next_connection += 1
            self._connections.append(conn)
            return conn

    def close_connection(self, conn: ConnRecord) -> None:
        """*conn* has closed (the first close counts)."""
        with self._lock:
            if conn.closed_at is None:
                conn.closed_at = time.time()

    # -- the request side ---------------------------------------------------

    def record(self, request: Request) -> Response:
        """Append *request* to the history and return the response it gets."""
        return self.record_exchange(request)[0]

    def record_exchange(
        self, request: Request, answer: Response | None = None
    ) -> tuple[Response, ExchangeRecord]:
        """Append *request* to the history; the response it gets, and its exchange record.

        *answer*: the server answers itself (a proxy's ``407``), not the rules.
        """
        with self._lock:
            self._history.append(request)
            exchange = ExchangeRecord(request)
            self._exchanges.append(exchange)
            self._count += 1
            try:
                if answer is not None:
                    response = answer
                else:
                    response, exchange.rule = self._choose(request)
            except Exception as exc:  # never lose the request, nor its waiters
                text = f"tserver: no response could be made: {type(exc).__name__}: {exc}"
                self._errors.append(HandlerError(type(exc).__name__, str(exc), text, request, exc))
                response = Response(text, status=500)
            ready = None
            if self._waiters:
                ready = [w for w in self._waiters if w[0] <= self._count]
                self._waiters = [w for w in self._waiters if w[0] > self._count]
        if ready:
            for _, wake, _ in ready:
                wake()
        return response, exchange

    def _choose(self, request: Request) -> tuple[Response, int | None]:
        # the reasons a rule did not match are texts for people: only a
        # strict server, which reports them, pays for them
        explain = self.strict
        reasons = []
        for number, rule in enumerate(self._rules):
            try:
                why = rule.why_not(request, explain=explain)
            except Exception as exc:  # a user matcher failed: keep it, skip the rule
                why = f"its selector raised {type(exc).__name__}: {exc}"
                self._errors.append(HandlerError(type(exc).__name__, str(exc), why, request, exc))
            if why is None:
                rule.served += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        del self._rules[number]
                return rule.spec.response, rule.id
            if explain:
                reasons.append(f"  rule #{rule.id}: {rule.describe()}\n      but: {why}")
        if self.strict:
            text = no_rule_text(request, reasons)
            self._unmatched.append(text.rstrip("\n"))
            plain = {"Content-Type": "text/plain; charset=utf-8"}
            return Response(text, status=500, headers=plain), None
        method = request.method.upper()
        once_any = self._once.pop(None, None)
        once_method = self._once.pop(method, None)
        if once_any is None and once_method is None:
            # methods with no layer of their own share one entry: a client
            # may send any number of method tokens
            key = method if method in self._defaults else ""
            cached = self._cache.get(key)
            if cached is None:
                cached = self._cache[key] = self._default_for(method, None, None)
            return cached, None
        return self._default_for(method, once_any, once_method), None

    def peek(self, request: Request) -> Response | None:
        """The response of the rule that would answer *request* now, counting nothing down.

        For what must be decided on a request's head, before its body is
        read: the rule is picked for real when the request is recorded.
        `None` when no rule matches (the default response acts on no head).
        """
        with self._lock:
            for rule in self._rules:
                try:
                    if rule.why_not(request, explain=False) is None:
                        return rule.spec.response
                except Exception:
                    continue
        return None

    def _default_for(
        self, method: str, once_any: Overlay | None, once_method: Overlay | None
    ) -> Response:
        layers = (self._defaults.get(None), self._defaults.get(method), once_any, once_method)
        return merge_overlays(layer for layer in layers if layer)

    def open_websocket(
        self, request: Request, subprotocol: str | None, extensions: tuple[str, ...]
    ) -> WsRecord:
        """A WebSocket session begins (its upgrade accepted); the record the loop writes."""
        with self._lock:
            record = WsRecord(len(self._websockets), request, subprotocol, extensions)
            self._websockets.append(record)
        self.websocket_event()
        return record

    def websocket_event(self) -> None:
        """A session changed (a message, a close): wake the waits it satisfies."""
        ready: list[tuple[Callable[[WebSocketSession], object], WebSocketSession]] = []
        with self._lock:
            waiting = []
            for waiter in self._ws_waiters:
                found = self._ws_satisfies(waiter[0], waiter[1])
                if found is None:
                    waiting.append(waiter)
                else:
                    ready.append((waiter[2], found))
            self._ws_waiters = waiting
        for deliver, found in ready:  # outside the lock, as the request waits are woken
            deliver(found)

    def _ws_satisfies(self, session: int | None, count: int) -> WebSocketSession | None:
        """Session *session* (`None`: the newest) if it has *count* messages in, or closed."""
        if not self._websockets:
            return None
        if session is None:
            record = self._websockets[-1]
        elif 0 <= session < len(self._websockets):
            record = self._websockets[session]
        else:
            return None
        received = sum(1 for m in record.messages if m.direction == "in" and m.kind in _DATA)
        return record.value() if received >= count or not record.open else None

    def pending_messages(
        self, session: int | None, count: int
    ) -> tuple[Pending[WebSocketSession], Callable[[], bool]]:
        """A `Pending` session, delivered once it received *count* messages (or closed)."""
        pending: Pending[WebSocketSession] = Pending()
        entry = (session, count, pending.set_result, pending.set_error)
        with self._lock:
            found = self._ws_satisfies(session, count)
            if found is None:
                self._ws_waiters.append(entry)
        if found is not None:
            pending.set_result(found)
            return pending, _nothing

        def cancel() -> bool:
            with self._lock:
                if entry in self._ws_waiters:
                    self._ws_waiters.remove(entry)
                    return True
            return False

        return pending, cancel

    def add_error(self, error: HandlerError) -> None:
        """Keep an exception raised while serving, for `check()`."""
        with self._lock:
            self._errors.append(error)

    # -- waiting ------------------------------------------------------------

    @property
    def count(self) -> int:
        """Requests recorded since the last reset (read without the lock)."""
        return self._count

    def timeout_error(self, count: int, timeout: float) -> WaitTimeoutError:
        """The error for a wait that gave up (call under the lock or not)."""
        got = self._count
        return WaitTimeoutError(
            f"waited {timeout:g}s for {count} request(s) but {got} arrived since the last reset",
            expected=count,
            received=got,
        )

    def pending_history(self, count: int) -> tuple[Pending[list[Request]], Callable[[], bool]]:
        """A `Pending` history, delivered once *count* requests arrived; and its cancel.

        Delivered at once when they have arrived already; otherwise by the
        thread that records the request, outside the lock.  The cancel
        function withdraws the wait (one that gave up).
        """
        pending: Pending[list[Request]] = Pending()

        def wake() -> None:
            with self._lock:
                history = list(self._history)
            pending.set_result(history)

        cancel = self.add_waiter(count, wake, pending.set_error)
        if cancel is None:
            wake()
            return pending, _nothing
        return pending, cancel

    def add_waiter(
        self,
        count: int,
        wake: Callable[[], None],
        fail: Callable[[BaseException], object] | None = None,
    ) -> Callable[[], bool] | None:
        """Call *wake* (from the recording thread) once *count* requests arrived.

        Returns a function that cancels the waiter, or `None` when the count
        is reached already (then *wake* is not called at all).  The cancel
        function says whether it withdrew the waiter: `False` means that
        *wake* has been, or is about to be, called.  *fail* is called
        instead of *wake* if the waiter is abandoned (`abandon_waiters`).
        """
        entry = (count, wake, fail)
        with self._lock:
            if self._count >= count:
                return None
            self._waiters.append(entry)

        def cancel() -> bool:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                    return True
            return False

        return cancel

    def abandon_waiters(self, error: BaseException) -> None:
        """End every wait with *error*: this recorder will record nothing more."""
        with self._lock:
            waiters, self._waiters = self._waiters, []
            ws_waiters, self._ws_waiters = self._ws_waiters, []
        for _, _, fail in waiters:
            if fail is not None:
                fail(error)
        for *_, ws_fail in ws_waiters:
            ws_fail(error)


def _acts_on_head(response: Response) -> bool:
    """Whether *response* decides something before the request's body is read."""
    return (
        response.read_rate is not None
        or response.expect in ("refuse", "withhold")
        or response.violation in HEAD_VIOLATIONS
    )


def _nothing() -> bool:
    """A cancel function with nothing to cancel (the result is there)."""
    return False
