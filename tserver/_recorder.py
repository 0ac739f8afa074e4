"""The `Recorder`: the one owner of a server's state.

Rules of this module (read before touching it)
----------------------------------------------

Rule 1 -- one lock.  Every piece of state below (rules, default keys,
once-overrides, history, request count, handler errors, waiters) is read and
written only under ``self._lock``.  Any thread may call any public method:
the test thread configures and reads, the event loop thread records.  There
is no hop onto the event loop for a setting or a read.

Rule 2 -- the lock is never held across I/O or across a wait on anything
but its own condition.  User code that runs under it is limited to rule
selectors (a compiled pattern or a hamcrest matcher deciding whether a rule
applies); callbacks that build a response run in the handler, outside it.

Rule 3 -- no Tornado, no sockets.  The recorder is plain Python so that it
can be unit-tested with plain objects and so that the child process of
subprocess mode runs exactly the same code.

Theory of operation
-------------------

Configuration arrives as `~tserver._protocol` commands through `apply`.
A request arrives through `record`, which appends it to the history *and*
picks its response in one critical section, so a waiter woken by the new
count already sees the request.  The response is chosen in this order:

1. the first rule, in the order added, whose selectors match and which has
   count left (a count-limited rule counts down and disappears at zero);
2. else, in strict mode, a 500 naming the request and every rule with why
   it did not match (also kept for `check()`);
3. else the default keys of any method, overlaid by those of the request's
   method, then the pending once-overrides (any method, then this method),
   which this request consumes.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ._errors import NoRequestError, WaitTimeoutError
from ._protocol import (
    AddRule,
    CheckReport,
    Command,
    GetCount,
    GetHistory,
    GetRequest,
    HandlerError,
    RecorderState,
    Reset,
    Restore,
    SetResponse,
    Snapshot,
    TakeReport,
)
from ._request import Request
from ._response import Response, response_from_keys

__all__ = ["Recorder", "Rule", "describe_selector"]

Layer = dict[str, Any]


def describe_selector(selector: object) -> str:
    """A short text for a path selector or a hamcrest matcher."""
    if isinstance(selector, re.Pattern):
        return f"matching regex '{selector.pattern}' (full match)"
    if hasattr(selector, "describe_to"):
        from hamcrest.core.string_description import StringDescription

        description = StringDescription()
        selector.describe_to(description)
        return str(description)
    return repr(selector)


def _mismatch_text(matcher: Any, item: object) -> str:
    from hamcrest.core.string_description import StringDescription

    description = StringDescription()
    matcher.describe_mismatch(item, description)
    return str(description)


class Rule:
    """One `add_response` rule: a `Response` and the selectors that pick it."""

    __slots__ = ("count", "match", "methods", "path", "remaining", "response", "served")

    def __init__(
        self,
        response: Response,
        count: int | None = 1,
        methods: tuple[str, ...] | None = None,
        path: Any = None,
        match: Any = None,
    ) -> None:
        self.response = response
        self.count = count
        self.remaining = count
        self.methods = methods
        self.path = path
        self.match = match
        self.served = 0

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def why_not(self, request: Request) -> str | None:
        """`None` when this rule applies to *request*, else the reason it does not."""
        if self.methods is not None and request.method.upper() not in self.methods:
            return f"method was {request.method!r}"
        path = self.path
        if path is not None:
            if isinstance(path, str):
                if request.path != path:
                    return f"path was {request.path!r}"
            elif isinstance(path, re.Pattern):
                if path.fullmatch(request.path) is None:
                    return f"path was {request.path!r}"
            elif not path.matches(request.path):
                return f"path {_mismatch_text(path, request.path)}"
        if self.match is not None and not self.match.matches(request):
            return _mismatch_text(self.match, request)
        return None

    def describe(self) -> str:
        """One line: the selectors, the answer and the count left."""
        parts = []
        if self.methods is not None:
            parts.append("method " + "|".join(self.methods))
        if self.path is not None:
            parts.append(f"path {describe_selector(self.path)}")
        if self.match is not None:
            parts.append(f"match {describe_selector(self.match)}")
        selectors = ", ".join(parts) if parts else "any request"
        left = "unlimited" if self.count is None else f"{self.remaining} of {self.count} left"
        return f"{selectors} -> {self.response!r} ({left})"


class Recorder:
    """Holds rules, the default response, history, errors and waiters.

    Thread-safe under one lock (see the module docstring for its rules).
    """

    def __init__(self, *, strict: bool = False, history_limit: int | None = None) -> None:
        self.strict = strict
        self.history_limit = history_limit
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiters: list[tuple[int, Callable[[], None]]] = []
        self._blocked = 0  # threads in wait(): record() notifies only if any
        self._clear()
        self._handlers: dict[type[Command], Callable[[Any], Any]] = {
            SetResponse: self._set_response,
            AddRule: self._add_rule,
            Reset: self._reset,
            GetHistory: self._get_history,
            GetRequest: self._get_request,
            GetCount: self._get_count,
            TakeReport: self._take_report,
            Snapshot: self._snapshot,
            Restore: self._restore,
        }

    def _clear(self) -> None:
        self._rules: list[Rule] = []
        self._defaults: dict[str | None, Layer] = {}
        self._once: dict[str | None, Layer] = {}
        self._history: deque[Request] = deque(maxlen=self.history_limit)
        self._count = 0
        self._errors: list[HandlerError] = []
        self._unmatched: list[str] = []
        self._cache: dict[str, Response] = {}

    # -- commands -----------------------------------------------------------

    def apply(self, command: Command) -> Any:
        """Carry out one command under the lock and return its result."""
        handler = self._handlers[type(command)]
        with self._lock:
            return handler(command)

    def _set_response(self, cmd: SetResponse) -> None:
        table = self._once if cmd.once else self._defaults
        layer = table.setdefault(cmd.method, {})
        if cmd.key == "data":
            layer.pop("json", None)
        elif cmd.key == "json":
            layer.pop("data", None)
        layer[cmd.key] = cmd.value
        self._cache.clear()

    def _add_rule(self, cmd: AddRule) -> None:
        self._rules.append(Rule(cmd.response, cmd.count, cmd.methods, cmd.path, cmd.match))

    def _reset(self, cmd: Reset) -> None:
        self._clear()

    def _get_history(self, cmd: GetHistory) -> list[Request]:
        return list(self._history)

    def _get_request(self, cmd: GetRequest) -> Request:
        try:
            return self._history[cmd.index]
        except IndexError:
            raise NoRequestError(self._no_request_text(cmd.index)) from None

    def _no_request_text(self, index: int) -> str:
        if not self._count:
            return "no request was recorded yet"
        kept = len(self._history)
        return (
            f"no request at index {index}: {kept} request(s) in the history "
            f"({self._count} received since the last reset)"
        )

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
            defaults=_freeze(self._defaults),
            once=_freeze(self._once),
            history=tuple(self._history),
            count=self._count,
            errors=tuple(self._errors),
            unmatched=tuple(self._unmatched),
        )

    def _restore(self, cmd: Restore) -> None:
        state = cmd.state
        self._clear()
        self._rules = list(state.rules)
        self._defaults = {m: dict(layer) for m, layer in state.defaults}
        self._once = {m: dict(layer) for m, layer in state.once}
        self._history.extend(state.history)
        self._count = state.count
        self._errors = list(state.errors)
        self._unmatched = list(state.unmatched)

    # -- the request side ---------------------------------------------------

    def record(self, request: Request) -> Response:
        """Append *request* to the history and return the response it gets."""
        with self._lock:
            self._history.append(request)
            self._count += 1
            response = self._choose(request)
            ready = None
            if self._waiters:
                ready = [w for w in self._waiters if w[0] <= self._count]
                self._waiters = [w for w in self._waiters if w[0] > self._count]
            if self._blocked:
                self._changed.notify_all()
        if ready:
            for _, wake in ready:
                wake()
        return response

    def _choose(self, request: Request) -> Response:
        reasons = []
        for number, rule in enumerate(self._rules):
            try:
                why = rule.why_not(request)
            except Exception as exc:  # a user matcher failed: keep it, skip the rule
                why = f"its selector raised {type(exc).__name__}: {exc}"
                self._errors.append(HandlerError(type(exc).__name__, str(exc), why, request, exc))
            if why is None:
                rule.served += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        del self._rules[number]
                return rule.response
            reasons.append(f"  rule #{number}: {rule.describe()}\n      but: {why}")
        if self.strict:
            return self._no_rule(request, reasons)
        method = request.method.upper()
        once_any = self._once.pop(None, None)
        once_method = self._once.pop(method, None)
        if once_any is None and once_method is None:
            cached = self._cache.get(method)
            if cached is None:
                cached = self._merge(method, None, None)
                self._cache[method] = cached
            return cached
        return self._merge(method, once_any, once_method)

    def _merge(self, method: str, once_any: Layer | None, once_method: Layer | None) -> Response:
        merged: Layer = {}
        for layer in (self._defaults.get(None), self._defaults.get(method), once_any, once_method):
            if not layer:
                continue
            for key, value in layer.items():
                if key == "data":
                    merged.pop("json", None)
                elif key == "json":
                    merged.pop("data", None)
                merged[key] = value
        return response_from_keys(merged)

    def _no_rule(self, request: Request, reasons: list[str]) -> Response:
        head = f"tserver: no rule matched {request.method} {request.path}"
        if request.query_string:
            head += f"\nquery: {request.query_string}"
        rules = "\n".join(reasons) if reasons else "  (no rules left)"
        text = f"{head}\nrules:\n{rules}\n"
        self._unmatched.append(text.rstrip("\n"))
        return Response(text, status=500, headers={"Content-Type": "text/plain; charset=utf-8"})

    def add_error(self, error: HandlerError) -> None:
        """Keep an exception raised while serving, for `check()`."""
        with self._lock:
            self._errors.append(error)

    # -- waiting ------------------------------------------------------------

    @property
    def count(self) -> int:
        """Requests recorded since the last reset (read without the lock)."""
        return self._count

    def wait(self, count: int, timeout: float) -> list[Request]:
        """Block until *count* requests arrived; return the history snapshot."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self.timeout_error(count, timeout)
                self._blocked += 1
                try:
                    self._changed.wait(left)
                finally:
                    self._blocked -= 1
            return list(self._history)

    def timeout_error(self, count: int, timeout: float) -> WaitTimeoutError:
        """The error for a wait that gave up (call under the lock or not)."""
        got = self._count
        return WaitTimeoutError(
            f"waited {timeout:g}s for {count} request(s) but {got} arrived since the last reset",
            expected=count,
            received=got,
        )

    def add_waiter(self, count: int, wake: Callable[[], None]) -> Callable[[], None] | None:
        """Call *wake* (from the recording thread) once *count* requests arrived.

        Returns a function that cancels the waiter, or `None` when the count
        is reached already (then *wake* is not called at all).
        """
        entry = (count, wake)
        with self._lock:
            if self._count >= count:
                return None
            self._waiters.append(entry)

        def cancel() -> None:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)

        return cancel


def _freeze(
    table: dict[str | None, Layer],
) -> tuple[tuple[str | None, tuple[tuple[str, Any], ...]], ...]:
    return tuple((method, tuple(layer.items())) for method, layer in table.items())
