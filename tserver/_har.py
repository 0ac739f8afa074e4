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

from ._encoding import compress
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
_PRINTABLE = re.compile(rb"[\x20-\x7e\r\n\t]*")
_REPRESENTATION = ("content-encoding", "content-language", "content-type")
_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")


class Answer(NamedTuple):
    """What the log says of one response (picklable: it crosses from a child)."""

    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None  # None: not known (nothing was written, or a callback failed)
    mime: str
    fault: str | None
    finished_at: float | None
    truncated: bool = False


def _date(when: float) -> str:
    return email.utils.formatdate(when, usegmt=True)


def answer_of(
    response: Response | None,
    status: int | None,
    finished_at: float | None,
    streamed: bytes | None = None,
    truncated: bool = False,
) -> Answer:
    """The `Answer` of the served *response* (`None`: none was chosen or written)."""
    if response is None or status is None:
        fault = None
        if response is not None and response.fault is not None:
            fault = "raw" if isinstance(response.fault, Raw) else str(response.fault)
        return Answer("", (), None, "", fault, finished_at)
    if response.json is not UNSET:
        mime = "application/json"
    elif response.events is not None:
        mime = EVENT_STREAM
    else:
        mime = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = [("Server", _SERVER), ("Content-Type", mime)]
    headers.append(("Date", _date(finished_at or 0.0)))
    if response.events is not None:
        headers.append(("Cache-Control", "no-cache"))
    if response.headers:
        given = {name.lower() for name, _ in response.headers}
        headers = [h for h in headers if h[0].lower() not in given]
        headers += [h for h in response.headers if h[0].lower() != "transfer-encoding"]
        mime = next((v for n, v in response.headers if n.lower() == "content-type"), mime)
    if response.encoding is not None and not any(
        name.lower() == "content-encoding" for name, _ in headers
    ):
        headers.append(("Content-Encoding", response.encoding))
    headers += [("Set-Cookie", cookie.render()) for cookie in response.cookies]
    body = response.body if streamed is None else streamed
    if status in (204, 304) or status < 200:  # no content, nor what describes it
        body = b""
        headers = [h for h in headers if h[0].lower() not in _REPRESENTATION]
    elif response.sends_chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    else:
        sent = response.body
        if response.encoding is not None:
            sent = compress(response.encoding, sent)
        headers.append(("Content-Length", str(len(sent))))
    fault = response.violation or (None if response.fault is None else str(response.fault))
    reason = response.reason or responses.get(status, "Unknown")
    return Answer(reason, tuple(headers), body, mime, fault, finished_at, truncated)


def _pairs(items: Any) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in items]


def _is_text(mime: str) -> bool:
    return mime.startswith(_TEXT_TYPES) or "+json" in mime or "+xml" in mime


def _content(body: bytes, mime: str) -> dict[str, Any]:
    """A HAR text field: the body as text, or base64 for binary.

    A body of no stated type is text if it is printable ASCII.
    """
    if _is_text(mime) or (not mime and _PRINTABLE.fullmatch(body)):
        try:
            return {"text": body.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"text": base64.b64encode(body).decode("ascii"), "encoding": "base64"}


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


def _response(status: int | None, answer: Answer, version: str) -> dict[str, Any]:
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
        "status": 0 if status is None else status,
        "statusText": answer.reason,
        "httpVersion": version,
        "cookies": cookies,
        "headers": _pairs(answer.headers),
        "content": content,
        "redirectURL": next((v for n, v in answer.headers if n.lower() == "location"), ""),
        "headersSize": -1,
        "bodySize": -1 if body is None else len(body),
    }


def har_log(
    exchanges: list[tuple[Request, int | None, int | None, bool, Answer]],
    server_ip: str,
) -> dict[str, Any]:
    """The HAR 1.2 document of *exchanges*: ``(request, rule, status, completed, answer)``."""
    entries = []
    for request, rule, status, completed, answer in exchanges:
        ended = answer.finished_at or request.received_at
        wait = max(0.0, (ended - request.received_at) * 1000)
        entries.append(
            {
                "startedDateTime": _iso(request.received_at),
                "time": round(wait, 3),
                "request": _request(request),
                "response": _response(status, answer, request.version),
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
