"""Human-readable rendering of requests and histories.

Every text tserver shows a person is built here: the traffic dump under a
failed assertion, the clipped bodies in matcher mismatches, the one-line
summaries, the report of `~tserver.TestServer.check`, the description of a
rule and why it did not match, the body of a strict server's ``500`` and
the one wording of "no request at that index".  The module imports only the
standard library at load time (hamcrest's `StringDescription` when a
matcher is described), so any layer may use it.

A history renders as one line per request, oldest first, the *subject* (the
request an assertion was about) marked with ``>`` and shown in full::

    Recorded requests (oldest first):
        #0  GET  /health
        #1  POST /items?id=7  json 18 B
      > #2  POST /items       json 20 B
            Content-Type: application/json
            X-Token: abd
            body: b'{"id": 12, "n": "x"}'
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._commands import AddRule, CheckReport
    from ._request import Request
    from ._websocket import WebSocketSession

__all__ = [
    "BODY_PREVIEW",
    "HISTORY_LIMIT",
    "content_kind",
    "describe_rule",
    "describe_selector",
    "mismatch_text",
    "no_request_text",
    "no_rule_text",
    "format_body",
    "format_conversation",
    "format_history",
    "format_request_full",
    "format_request_line",
    "format_size",
    "pluralize",
    "render_check_report",
]

#: How many bytes of a body a full request view shows.
BODY_PREVIEW = 200
#: How many requests a history dump lists before it says "... and N more".
HISTORY_LIMIT = 20

_INDENT = "    "
_MARKER = "  > "
_DETAIL_INDENT = " " * 8
_MAX_METHOD_WIDTH = 7  # "OPTIONS"
_MAX_TARGET_WIDTH = 40  # past this, columns are not worth the padding
_MAX_TARGET = 200  # a longer target is clipped in a line

_KINDS = {
    "application/json": "json",
    "application/x-www-form-urlencoded": "form",
    "multipart/form-data": "multipart",
    "application/octet-stream": "binary",
    "application/xml": "xml",
    "text/xml": "xml",
    "text/html": "html",
    "text/plain": "text",
}


def pluralize(count: int, noun: str) -> str:
    """``"1 request"``, ``"3 requests"``: *count* and *noun*, plural unless one."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_size(size: int) -> str:
    """A byte count for people: ``"18 B"``, ``"1.5 KiB"``, ``"2.0 MiB"``."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def content_kind(content_type: str | None) -> str:
    """A short name for a Content-Type: ``"json"``, ``"form"``, ``"text"``...

    Structured suffixes count (``application/problem+json`` is ``"json"``);
    an unknown type gives its subtype, and no type at all gives ``"data"``.
    """
    if not content_type:
        return "data"
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in _KINDS:
        return _KINDS[mime]
    if mime.endswith("+json"):
        return "json"
    if mime.endswith("+xml"):
        return "xml"
    if mime.startswith("text/"):
        return "text"
    return mime.rpartition("/")[2][:16] or "data"


def format_body(data: bytes, limit: int = BODY_PREVIEW) -> str:
    """*data* as a bytes literal, clipped after *limit* bytes.

    A clipped body ends with ``...`` and its full length::

        b'{"id": 12}'
        b'aaaaaaaaaa'... (5000 bytes)
    """
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data)} bytes)"


def _printable(text: str) -> str:
    """*text* itself, or its ``repr`` when it holds control characters."""
    return text if text.isprintable() else repr(text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_request_line(
    req: Request,
    index: int,
    marker: bool = False,
    *,
    index_width: int = 0,
    method_width: int = 0,
    target_width: int = 0,
) -> str:
    """One line naming a request: its index, method, target and body.

    The body part is the short content kind and the size, and is left out
    when the body is empty.  *marker* puts ``>`` in front of the subject
    request; the widths pad the columns so that several lines align::

            #1  POST /items?id=7  json 18 B
          > #2  GET  /health
    """
    number = f"#{index}".ljust(index_width)
    method = _printable(req.method).ljust(method_width)
    target = _clip(_printable(req.target), _MAX_TARGET)
    line = f"{_MARKER if marker else _INDENT}{number}  {method} {target}"
    if req.data:
        kind = content_kind(req.headers.get("Content-Type"))
        padding = " " * max(target_width - len(target), 0)
        line += f"{padding}  {kind} {format_size(len(req.data))}"
    return line


def format_request_full(
    req: Request,
    index: int,
    marker: bool = True,
    *,
    index_width: int = 0,
    method_width: int = 0,
    target_width: int = 0,
) -> str:
    """`format_request_line`, then every header and the body, indented.

    Headers show in arrival order, repeated names repeated; the body is
    clipped after `BODY_PREVIEW` bytes (see `format_body`)::

          > #2  POST /items  json 20 B
                Content-Type: application/json
                X-Token: abd
                body: b'{"id": 12, "n": "x"}'
    """
    lines = [
        format_request_line(
            req,
            index,
            marker,
            index_width=index_width,
            method_width=method_width,
            target_width=target_width,
        )
    ]
    for name, value in req.headers.multi_items():
        lines.append(f"{_DETAIL_INDENT}{_printable(name)}: {_printable(value)}")
    lines.append(f"{_DETAIL_INDENT}body: {format_body(req.data)}")
    return "\n".join(lines)


def format_history(
    requests: Sequence[Request],
    subject: int | None = None,
    url: str | None = None,
    limit: int = HISTORY_LIMIT,
    statuses: Sequence[int | None] | None = None,
) -> str:
    """The recorded traffic, oldest first, one line per request.

    :param requests: the history.
    :param subject: the index (negative counts from the end) of the request
        to mark with ``>`` and show in full with `format_request_full`; it is
        shown even when it lies past *limit*.  An index out of range marks
        nothing.
    :param url: the server's URL, named when *requests* is empty, so that a
        client aimed at the wrong address is easy to spot.
    :param limit: how many requests to list before ``... and N more``.
    :param statuses: the status each request was answered with, aligned
        with *requests* (`None`: no status line was sent); each line then
        ends with ``-> 503``, so a retry loop that got one answer too many
        shows at a glance.

    With no requests at all the text is the single line
    ``no requests were recorded (server at <url>)``.
    """
    if limit < 0:
        raise ValueError(f"format_history: limit must be >= 0, got {limit!r}")
    count = len(requests)
    if count == 0:
        where = f" (server at {url})" if url else ""
        return f"no requests were recorded{where}"
    if subject is not None and subject < 0:
        subject += count
    if subject is not None and not 0 <= subject < count:
        subject = None

    shown = list(range(min(count, limit)))
    if subject is not None and subject >= limit:
        shown.append(subject)
    widths = {
        "index_width": max((len(f"#{i}") for i in shown), default=0),
        "method_width": min(
            max((len(requests[i].method) for i in shown), default=0),
            _MAX_METHOD_WIDTH,
        ),
        "target_width": min(
            max((len(requests[i].target) for i in shown), default=0),
            _MAX_TARGET_WIDTH,
        ),
    }

    lines = ["Recorded requests (oldest first):"]
    previous = -1
    for i in shown:
        if i - previous > 1:
            lines.append(f"{_INDENT}... {i - previous - 1} more")
        if i == subject:
            entry = format_request_full(requests[i], i, True, **widths)
        else:
            entry = format_request_line(requests[i], i, False, **widths)
        if statuses is not None and i < len(statuses):
            first, newline, rest = entry.partition("\n")
            status = statuses[i]
            answer = f"-> {status}" if status is not None else "-> no status line"
            entry = f"{first}  {answer}{newline}{rest}"
        lines.append(entry)
        previous = i
    if previous < count - 1:
        lines.append(f"{_INDENT}... and {count - 1 - previous} more")
    return "\n".join(lines)


def render_check_report(report: CheckReport, url: str) -> str:
    """The message of `~tserver.TestServer.check`: every problem, one block each."""
    lines = [f"tserver at {url} found problems while serving:"]
    for error in report.errors:
        where = ""
        if error.request is not None:
            where = f" while answering {error.request.method} {error.request.target}"
        lines.append(f"- {error.type_name}: {error.message}{where}")
        lines += ["    " + line for line in error.traceback.rstrip().splitlines()]
    for text in report.unmatched:
        unmatched = text.removeprefix("tserver: ")
        lines.append("- strict mode: " + unmatched.replace("\n", "\n    "))
    if report.unused_rules:
        lines.append("- strict mode: rules not used up (expected requests that never came):")
        lines += [f"    {rule}" for rule in report.unused_rules]
    return "\n".join(lines)


# -- rules, mismatches and the texts of the loop side ---------------------------------


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


def mismatch_text(matcher: Any, item: object) -> str:
    """What hamcrest says of *item* failing *matcher* (its ``describe_mismatch``)."""
    from hamcrest.core.string_description import StringDescription

    description = StringDescription()
    matcher.describe_mismatch(item, description)
    return str(description)


def describe_rule(spec: AddRule, remaining: int | None) -> str:
    """One line: a rule's selectors, its answer and the uses it has left."""
    parts = []
    if spec.methods is not None:
        parts.append("method " + "|".join(spec.methods))
    if spec.path is not None:
        parts.append(f"path {describe_selector(spec.path)}")
    if spec.host is not None:
        parts.append(f"host {describe_selector(spec.host)}")
    if spec.match is not None:
        parts.append(f"match {describe_selector(spec.match)}")
    if spec.priority:
        parts.append(f"priority {spec.priority}")
    selectors = ", ".join(parts) if parts else "any request"
    left = "unlimited" if spec.count is None else f"{remaining} of {spec.count} left"
    return f"{selectors} -> {spec.response!r} ({left})"


def no_rule_text(request: Request, reasons: Sequence[str]) -> str:
    """The body of a strict server's ``500``: the request, then each rule and why not."""
    head = f"tserver: no rule matched {request.method} {request.path}"
    if request.query_string:
        head += f"\nquery: {request.query_string}"
    rules = "\n".join(reasons) if reasons else "  (no rules left)"
    return f"{head}\nrules:\n{rules}\n"


def no_request_text(index: int, kept: int, received: int, url: str | None = None) -> str:
    """The one wording of "there is no request at *index*".

    *kept* requests are in the history, *received* arrived since the last
    reset (more than *kept* when ``history_limit`` dropped some)::

        no request at index 3: 1 request was recorded (server at http://...)
    """
    if received == 0:
        recorded = "no requests were recorded"
    else:
        recorded = f"{pluralize(received, 'request')} {'was' if received == 1 else 'were'} recorded"
        if kept != received:
            recorded += f", of which the history keeps the last {kept}"
    where = f" (server at {url})" if url else ""
    return f"no request at index {index}: {recorded}{where}"


#: How many messages a conversation dump lists before it says "... and N more".
MESSAGES_LIMIT = 40


def format_conversation(session: WebSocketSession) -> str:
    """A WebSocket session for a failure message: how it went, one line a message.

    ``->`` is the server to the client, ``<-`` the client to the server; the
    times count from the first message::

        WebSocket session #0 on /chat (subprotocol 'chat'), closed 1000 'bye' by the server:
            +0.000s  ->  text    'welcome'
            +0.012s  <-  text    'join #general'
    """
    agreed = []
    if session.subprotocol is not None:
        agreed.append(f"subprotocol {session.subprotocol!r}")
    agreed += list(session.extensions)
    head = f"WebSocket session #{session.index} on {session.request.path}"
    if agreed:
        head += f" ({', '.join(agreed)})"
    if session.open:
        head += ", open"
    elif session.closed_by is None:
        head += ", closed without a close frame"
    else:
        head += f", closed {session.close_code} {session.close_reason!r} by the {session.closed_by}"
    messages = session.messages
    if not messages:
        return f"{head}: no messages"
    start = messages[0].at
    lines = [f"{head}:"]
    for message in messages[:MESSAGES_LIMIT]:
        arrow = "<-" if message.direction == "in" else "->"
        data = message.data
        shown = format_body(data) if isinstance(data, bytes) else _clip_text(data)
        lines.append(f"{_INDENT}+{message.at - start:.3f}s  {arrow}  {message.kind:<6}  {shown}")
    if len(messages) > MESSAGES_LIMIT:
        lines.append(f"{_INDENT}... and {len(messages) - MESSAGES_LIMIT} more")
    return "\n".join(lines)


def _clip_text(text: str, limit: int = BODY_PREVIEW) -> str:
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"
