"""HAR 1.2: the recorded exchanges as a log that browsers and HAR viewers open.

`Answer` is what the log says of a response: the status line, the headers
the handler sent, the body when it is known (a whole body, or what a stream
sent up to `STREAM_CAP` bytes), the fault or violation, and when it ended.
It is made from the served `~tserver.Response` when the log is asked for,
not per request: the handler only keeps a reference to the response.  The
headers are the ones the handler writes for that response (tserver's
``Server``, ``Content-Type`` and ``Date``, the response's own, its cookies,
and the framing); ``tests/test_har.py`` checks them against the wire.

`har_log` turns requests and answers into the HAR document (a dict of JSON
values).  Plain Python: it runs wherever the records are, in the test
process or in a child.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import re
from http.client import responses
from typing import TYPE_CHECKING, Any, NamedTuple

from ._body import decode_text
from ._events import EVENT_STREAM
from ._response import UNSET, Raw
from ._version import __version__

if TYPE_CHECKING:
    from ._request import Request
    from ._response import Response

__all__ = ["STREAM_CAP", "Answer", "answer_of", "har_log"]

#: The most of a streamed body that the log keeps, in bytes.
STREAM_CAP = 64 * 1024
_SERVER = f"tserver/{__version__}"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CHARSET = re.compile(r"charset=", re.IGNORECASE)
_REPRESENTATION = ("content-encoding", "content-language", "content-type")
_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")


class Answer(NamedTuple):
    """What the log says of one response (picklable: it crosses from a child).

    ``body`` is the content as decoded (`None`: not known, nothing was
    written), at most `STREAM_CAP` bytes (``truncated`` past it);
    ``size`` the bytes the body took on the wire (-1: not known).
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    mime: str
    fault: str | None
    finished_at: float | None
    truncated: bool = False
    size: int = -1


def _date(when: float) -> str:
    return email.utils.formatdate(when, usegmt=True)


def _capped(body: bytes, truncated: bool) -> tuple[bytes, bool]:
    if len(body) > STREAM_CAP:
        return body[:STREAM_CAP], True
    return body, truncated


def answer_of(
    request: Request,
    response: Response | None,
    status: int | None,
    finished_at: float | None,
    streamed: bytes | None = None,
    truncated: bool = False,
) -> Answer:
    """The `Answer` of the served *response* to *request* (`None`: none was written).

    The headers are those the handler writes for it: tserver's ``Server``,
    ``Content-Type`` and ``Date`` (of the second the request came), the
    response's own, its cookies, the framing, and Tornado's ``Connection``.
    """
    if response is None or status is None:
        fault = None
        if response is not None and response.fault is not None:
            fault = "raw" if isinstance(response.fault, Raw) else str(response.fault)
        return Answer(0, "", (), None, "", fault, finished_at)
    if response.json is not UNSET:
        mime = "application/json"
    elif response.events is not None:
        mime = EVENT_STREAM
    else:
        mime = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = [("Server", _SERVER), ("Content-Type", mime)]
    headers.append(("Date", _date(request.received_at)))
    if response.events is not None:
        headers.append(("Cache-Control", "no-cache"))
    if response.headers:
        given = {name.lower() for name, _ in response.headers}
        headers = [h for h in headers if h[0].lower() not in given]
        headers += [h for h in response.headers if h[0].lower() != "transfer-encoding"]
        mime = next((v for n, v in response.headers if n.lower() == "content-type"), mime)
    names = {name.lower() for name, _ in headers}
    if response.encoding is not None and "content-encoding" not in names:
        headers.append(("Content-Encoding", response.encoding))
    headers += [("Set-Cookie", cookie.render()) for cookie in response.cookies]
    body = response.body if streamed is None else streamed
    size = len(body)
    if status in (204, 304) or status < 200:  # no content, nor what describes it
        body, size = b"", 0
        headers = [h for h in headers if h[0].lower() not in _REPRESENTATION]
    elif response.sends_chunked:
        headers.append(("Transfer-Encoding", "chunked"))
        size = -1 if response.encoding is not None else size
    else:
        size = len(response.wire_body())
        if "content-length" not in names:
            headers.append(("Content-Length", str(size)))
    connection = request.headers.get("Connection", "").lower()
    if request.version == "HTTP/1.1" and connection == "close":
        headers.append(("Connection", "close"))
    elif request.version == "HTTP/1.0" and connection == "keep-alive":
        headers.append(("Connection", "Keep-Alive"))
    if request.method == "HEAD":
        body, size = b"", 0
    elif response.fault == "truncate":
        body = body[: len(body) // 2]
        size = len(body)
    fault = response.violation or (None if response.fault is None else str(response.fault))
    reason = response.reason or responses.get(status, "Unknown")
    body, truncated = _capped(body, truncated)
    return Answer(status, reason, tuple(headers), body, mime, fault, finished_at, truncated, size)


def answer_from_wire(data: bytes, fault: str, finished_at: float) -> Answer:
    """The `Answer` of bytes written as they are (a violation): what they say, read leniently."""
    head, _, body = data.partition(b"\r\n\r\n")
    if b"\r\n" not in head and b"\n\n" in data:  # bare LF line endings
        head, _, body = data.partition(b"\n\n")
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() and len(parts[1]) == 3 else 0
    reason = parts[2] if len(parts) > 2 else ""
    headers = tuple(
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in lines[1:])
    )
    mime = next((v for n, v in headers if n.lower() == "content-type"), "")
    body, truncated = _capped(body, False)
    return Answer(
        status, reason, headers, body, mime, fault, finished_at, truncated, len(data) - len(head)
    )


def _pairs(items: Any) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in items]


def _is_text(mime: str) -> bool:
    return mime.startswith(_TEXT_TYPES) or "+json" in mime or "+xml" in mime


def _content(body: bytes, mime: str) -> dict[str, Any]:
    """A HAR text field: the body as text, or base64 for binary.

    Text when the type says so (or names a charset), else when the bytes
    are UTF-8 without control characters (a form, a text-only multipart).
    """
    if _is_text(mime) or _CHARSET.search(mime):
        text = decode_text(body, mime)
        if "\ufffd" not in text:
            return {"text": text}
    text_or_none = _utf8(body)
    if text_or_none is not None:
        return {"text": text_or_none}
    return {"text": base64.b64encode(body).decode("ascii"), "encoding": "base64"}


def _utf8(body: bytes) -> str | None:
    """*body* as UTF-8 text, if it is text: no control characters but tab, CR and LF."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(text) else text


def _iso(when: float) -> str:
    moment = datetime.datetime.fromtimestamp(when, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _request(request: Request) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "httpVersion": request.version,
        "cookies": _pairs(request.cookies.items()),
        "headers": _pairs(request.raw_headers),
        "queryString": _pairs(request.args.multi_items()),
        "headersSize": len(request.raw_head) if request.raw_head else -1,
        "bodySize": len(request.data),
    }
    if request.data:
        mime = request.headers.get("Content-Type", "")
        post: dict[str, Any] = {"mimeType": mime}
        content = _content(request.data, mime)
        post["text"] = content["text"]
        if "encoding" in content:
            post["_encoding"] = "base64"
        if request.form:
            post["params"] = _pairs(request.form.multi_items())
        files = [
            {"name": upload.name, "fileName": upload.filename, "contentType": upload.content_type}
            for uploads in request.files.values()
            for upload in uploads
        ]
        if files:
            post["params"] = post.get("params", []) + files
        entry["postData"] = post
    return entry


def _response(answer: Answer) -> dict[str, Any]:
    body = answer.body
    content: dict[str, Any] = {"size": -1 if body is None else len(body), "mimeType": answer.mime}
    if body:
        content.update(_content(body, answer.mime))
    cookies = [
        {"name": value.split("=", 1)[0], "value": value.split("=", 1)[1].split(";", 1)[0]}
        for name, value in answer.headers
        if name.lower() == "set-cookie" and "=" in value
    ]
    return {
        "status": answer.status,
        "statusText": answer.reason,
        "httpVersion": "HTTP/1.1",  # how Tornado answers every request
        "cookies": cookies,
        "headers": _pairs(answer.headers),
        "content": content,
        "redirectURL": next((v for n, v in answer.headers if n.lower() == "location"), ""),
        "headersSize": -1,
        "bodySize": answer.size,
    }


def har_log(
    exchanges: list[tuple[Request, int | None, bool, Answer]],
    server_ip: str,
) -> dict[str, Any]:
    """The HAR 1.2 document of *exchanges*: ``(request, rule, completed, answer)``."""
    entries = []
    for request, rule, completed, answer in exchanges:
        ended = answer.finished_at or request.received_at
        wait = max(0.0, (ended - request.received_at) * 1000)
        entries.append(
            {
                "startedDateTime": _iso(request.received_at),
                "time": round(wait, 3),
                "request": _request(request),
                "response": _response(answer),
                "cache": {},
                "timings": {"send": 0, "wait": round(wait, 3), "receive": 0},
                "serverIPAddress": server_ip,
                "connection": str(request.connection),
                "_tserver": {
                    "rule": rule,
                    "fault": answer.fault,
                    "completed": completed,
                    "exchange": request.exchange,
                    "bodyTruncated": answer.truncated,
                },
            }
        )
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "tserver", "version": __version__},
            "pages": [],
            "entries": entries,
        }
    }
