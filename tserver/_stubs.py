r"""Stubs from a file: ``srv.load_stubs(path)`` and ``tserver serve --stubs FILE``.

A stubs file is JSON or TOML (`tomllib`, no new dependency) and holds a
default response and a list of rules.  It maps onto what tserver already
has: each rule becomes one `~tserver.TestServer.add_response` call, with a
`~tserver.Response` and selectors built of `tserver.matchers`; the default
becomes `~tserver.TestServer.set_response` calls.  There is no second model
of a response.

The shape (TOML; the JSON form has the same keys)::

    [default]                      # optional: what no rule answers
    status = 404
    body = "not stubbed"

    [[rules]]
    method = "GET"                 # or a list: ["GET", "HEAD"]
    path = "/v1/users/1"           # exact; or path_pattern = "/v1/users/\\\\d+"
    query = {page = "2"}           # these arguments with these values
    headers = {X-Token = "abc"}    # these headers with these values
    json = {name = "ada"}          # the body is JSON holding at least this
    host = "api.example.test"      # as add_response(host=...)
    count = 1                      # how many requests (default: every one)
    priority = 10
    [rules.response]
    status = 201
    headers = {Location = "/v1/users/2"}
    json = {id = 2}                # or body = "text"

A bad file raises `StubsError` (a `ValueError`) before anything is added,
naming the file, the place (``rules[2].response.status``) and what was
expected.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hamcrest import all_of, contains_exactly, equal_to, has_entries

from ._args import check_host_selector, check_methods
from ._events import Event
from ._response import Raw, Response
from .matchers import has_arg, has_header, has_json

if TYPE_CHECKING:
    from hamcrest.core.matcher import Matcher

__all__ = ["RESPONSE_FIELDS", "RULE_FIELDS", "Stub", "StubsError", "read_stubs"]

#: The keys of a response table, and the `Response` field each one sets.
RESPONSE_FIELDS: dict[str, str] = {
    "status": "status",
    "reason": "reason",
    "headers": "headers",
    "body": "data",
    "json": "json",
    "chunks": "chunks",
    "chunk_sleep": "chunk_sleep",
    "events": "events",
    "sleep": "sleep",
    "fault": "fault",
    "violation": "violation",
    "hold": "hold",
    "encoding": "encoding",
    "rate": "rate",
}
#: The keys of a rule.
RULE_FIELDS = (
    "method",
    "path",
    "path_pattern",
    "host",
    "query",
    "headers",
    "json",
    "count",
    "priority",
    "response",
)
_EVENT_FIELDS = ("data", "event", "id", "retry", "comment")


class StubsError(ValueError):
    """A stubs file that cannot be loaded: its path, the place in it, what was expected."""


class Stub:
    """One rule of a stubs file: the arguments of one `add_response` call."""

    __slots__ = ("count", "host", "match", "method", "path", "priority", "response")

    def __init__(
        self,
        response: Response,
        *,
        count: int | None,
        method: list[str] | None,
        path: Any,
        match: Any,
        host: str | None,
        priority: int,
    ) -> None:
        self.response = response
        self.count = count
        self.method = method
        self.path = path
        self.match = match
        self.host = host
        self.priority = priority


def read_stubs(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[Stub]]:
    """The default response's keys and the rules of the stubs file *path*.

    :raises StubsError: the file cannot be read or parsed, or a value is
        wrong; nothing is half loaded.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as stream:
            raw = stream.read()
    except OSError as exc:
        raise StubsError(f"{name}: cannot read the stubs file: {exc.strerror or exc}") from None
    document = _parse(name, raw)
    unknown = sorted(set(document) - {"default", "rules"})
    if unknown:
        raise StubsError(
            f"{name}: unknown top-level key {unknown[0]!r}; expected 'default' and 'rules'"
        )
    default_table = document.get("default", {})
    if not isinstance(default_table, dict):
        raise StubsError(f"{name}: default: expected a table of response fields")
    default = _default_keys(name, default_table)
    rules = document.get("rules", [])
    if not isinstance(rules, list):
        raise StubsError(f"{name}: rules: expected a list of tables ([[rules]] in TOML)")
    return default, [_rule(name, f"rules[{i}]", rule) for i, rule in enumerate(rules)]


def _parse(name: str, raw: bytes) -> dict[str, Any]:
    """The document in *raw*: TOML for ``.toml``, else JSON."""
    if name.endswith(".toml"):
        if sys.version_info >= (3, 11):
            import tomllib

            try:
                loaded: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise StubsError(f"{name}: not valid TOML: {exc}") from None
            return loaded
        raise StubsError(f"{name}: TOML stubs need Python 3.11 or later (tomllib); use JSON")
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise StubsError(f"{name}: not valid JSON ({exc}); a TOML file must end in .toml") from None
    if not isinstance(document, dict):
        raise StubsError(f"{name}: expected a JSON object with 'default' and 'rules'")
    return document


def _expect(name: str, where: str, what: str, value: object) -> StubsError:
    return StubsError(f"{name}: {where}: expected {what}, got {value!r}")


def _default_keys(name: str, table: dict[str, Any]) -> dict[str, Any]:
    """The default response as `set_response` keys (checked by building a `Response`)."""
    response = _response(name, "default", table)
    keys: dict[str, Any] = {}
    for key, _value in table.items():
        field = RESPONSE_FIELDS[key]
        if field in ("status", "data", "headers", "json", "sleep"):
            keys[field] = getattr(response, field) if field != "headers" else list(response.headers)
        else:
            raise StubsError(
                f"{name}: default.{key}: the default response takes status, body, json, "
                "headers and sleep; give other fields to a rule that matches every request "
                "([[rules]] with only a response, and priority = -1)"
            )
    return keys


def _response(name: str, where: str, table: object) -> Response:
    """The `Response` a response table describes."""
    if not isinstance(table, dict):
        raise _expect(name, where, "a table of response fields", table)
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        field = RESPONSE_FIELDS.get(key)
        if field is None:
            raise StubsError(
                f"{name}: {where}.{key}: unknown response field; expected one of "
                + ", ".join(RESPONSE_FIELDS)
            )
        kwargs[field] = _value(name, f"{where}.{key}", key, value)
    try:
        return Response(**kwargs)
    except (ValueError, TypeError) as exc:
        raise StubsError(f"{name}: {where}: {exc}") from None


def _value(name: str, where: str, key: str, value: Any) -> Any:
    """A response field's value from its JSON/TOML form."""
    if key == "headers":
        if isinstance(value, dict):
            return list(value.items())
        if isinstance(value, list) and all(
            isinstance(pair, list) and len(pair) == 2 for pair in value
        ):
            return [tuple(pair) for pair in value]
        raise _expect(name, where, "a table of name = value, or a list of [name, value]", value)
    if key == "events":
        if not isinstance(value, list):
            raise _expect(name, where, "a list of events (strings or tables)", value)
        return [_event(name, f"{where}[{i}]", item) for i, item in enumerate(value)]
    if key == "chunks":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise _expect(name, where, "a list of strings", value)
        return [chunk.encode("utf-8") for chunk in value]
    if key == "fault" and isinstance(value, dict):
        if set(value) != {"raw"} or not isinstance(value["raw"], str):
            raise _expect(name, where, 'a fault name, or {raw = "the bytes to write"}', value)
        return Raw(value["raw"].encode("utf-8"))
    if key == "status" and not isinstance(value, int):
        raise _expect(name, where, "an int from 100 to 599", value)
    if key == "body" and not isinstance(value, str):
        raise _expect(name, where, "a string (sent UTF-8)", value)
    return value


def _event(name: str, where: str, item: object) -> Event:
    if isinstance(item, str):
        return Event(item)
    if not isinstance(item, dict) or not set(item) <= set(_EVENT_FIELDS):
        raise _expect(name, where, "a string, or a table of " + ", ".join(_EVENT_FIELDS), item)
    try:
        return Event(**item)
    except (ValueError, TypeError) as exc:
        raise StubsError(f"{name}: {where}: {exc}") from None


def _rule(name: str, where: str, rule: object) -> Stub:
    """One rule as the arguments of `add_response`."""
    if not isinstance(rule, dict):
        raise _expect(name, where, "a table", rule)
    unknown = sorted(set(rule) - set(RULE_FIELDS))
    if unknown:
        raise StubsError(
            f"{name}: {where}.{unknown[0]}: unknown rule field; expected one of "
            + ", ".join(RULE_FIELDS)
        )
    if "response" not in rule:
        raise StubsError(f"{name}: {where}: no response (add a [{where[:5]}.response] table)")
    response = _response(name, f"{where}.response", rule["response"])
    method = rule.get("method")
    if isinstance(method, str):
        method = [method]
    if method is not None and (
        not isinstance(method, list) or not all(isinstance(m, str) and m for m in method)
    ):
        raise _expect(name, f"{where}.method", "a method name or a list of them", method)
    if "path" in rule and "path_pattern" in rule:
        raise StubsError(f"{name}: {where}: give path (exact) or path_pattern (a regex), not both")
    path: Any = rule.get("path")
    if path is not None and (not isinstance(path, str) or not path.startswith("/") or "?" in path):
        raise _expect(
            name, f"{where}.path", "an exact path such as '/v1/users' (no query: use query)", path
        )
    if "path_pattern" in rule:
        pattern = rule["path_pattern"]
        try:
            path = re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise _expect(
                name, f"{where}.path_pattern", f"a regular expression ({exc})", pattern
            ) from None
    host = rule.get("host")
    if host is not None and not isinstance(host, str):
        raise _expect(name, f"{where}.host", "a host name, optionally with :port", host)
    try:  # the checks add_response makes, here: a file loads whole or not at all
        if method is not None:
            method = list(check_methods(f"{where}.method", method) or ())
        if host is not None:
            check_host_selector(f"{where}.host", host)
    except (ValueError, TypeError) as exc:
        raise StubsError(f"{name}: {exc}") from None
    count = rule.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise _expect(
            name, f"{where}.count", "an int of 1 or more (leave it out: every request)", count
        )
    priority = rule.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise _expect(name, f"{where}.priority", "an int (higher goes first)", priority)
    return Stub(
        response,
        count=count,
        method=method,
        path=path,
        match=_match(name, where, rule),
        host=host,
        priority=priority,
    )


def _match(name: str, where: str, rule: Mapping[str, Any]) -> Any:
    """The matcher of a rule's ``query``, ``headers`` and ``json``, or `None`."""
    parts: list[Matcher[Any]] = []
    for key, factory in (("query", has_arg), ("headers", has_header)):
        table = rule.get(key)
        if table is None:
            continue
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise _expect(name, f"{where}.{key}", 'a table of name = "value" (strings)', table)
        parts += [factory(k, v) for k, v in table.items()]
    if "json" in rule:
        parts.append(has_json(_subset(rule["json"])))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else all_of(*parts)


def _subset(value: Any) -> Matcher[Any]:
    """A matcher of a JSON value holding at least *value* (tables by key, lists by item)."""
    if isinstance(value, dict):
        return has_entries({key: _subset(item) for key, item in value.items()})
    if isinstance(value, list):
        return contains_exactly(*[_subset(item) for item in value])
    return equal_to(value)
