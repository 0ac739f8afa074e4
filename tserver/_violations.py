"""Named HTTP/1.x protocol violations (``Response(violation=NAME)``, SPEC §11).

Each name breaks a response in one way on the wire, and `VIOLATIONS` says
which rule of RFC 9110 (semantics) or RFC 9112 (HTTP/1.1 message syntax) it
breaks.  `render` takes what the rest of the `~tserver.Response` describes
(status, reason, headers, body) and writes the bytes; the handler sends them
on the connection it takes over from Tornado and then closes it, so that a
client is never left waiting on a message it cannot delimit.  Plain Python:
these are bytes, built and tested without a server.
"""

from __future__ import annotations

from http.client import responses

__all__ = ["HEAD_VIOLATIONS", "VIOLATIONS", "check_violation", "render", "status_line"]

#: Every violation, and the rule it breaks.
VIOLATIONS: dict[str, str] = {
    "content-length-too-long": (
        "Content-Length declares more bytes than the body holds, then the connection "
        "closes: an incomplete message (RFC 9112 §6.3, rule 5)"
    ),
    "content-length-too-short": (
        "extra bytes follow the body that Content-Length declares (RFC 9112 §6.3: the "
        "message ends after Content-Length octets)"
    ),
    "content-length-twice": (
        "two Content-Length fields with different values (RFC 9112 §6.3, rule 5: "
        "an unrecoverable error)"
    ),
    "content-length-and-chunked": (
        "both Content-Length and Transfer-Encoding: chunked (RFC 9112 §6.1: a sender "
        "MUST NOT send Content-Length with Transfer-Encoding)"
    ),
    "content-length-negative": ("Content-Length: -1 (RFC 9110 §8.6: Content-Length = 1*DIGIT)"),
    "chunk-size-invalid": (
        "a chunk size that is not hexadecimal (RFC 9112 §7.1: chunk-size = 1*HEXDIG)"
    ),
    "chunk-size-too-long": (
        "a chunk declares more bytes than it holds, then the connection closes "
        "(RFC 9112 §7.1: chunk-data is chunk-size octets)"
    ),
    "chunk-missing-last": (
        "the chunked body never sends its last chunk; the connection closes "
        "(RFC 9112 §7.1: chunked-body ends with last-chunk)"
    ),
    "chunk-extension-garbage": (
        "a chunk extension that is not a token (RFC 9112 §7.1.1: chunk-ext = "
        '*( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ))'
    ),
    "status-line-invalid": (
        "no space between the version and the status code (RFC 9112 §4: status-line = "
        "HTTP-version SP status-code SP [ reason-phrase ])"
    ),
    "status-code-invalid": (
        "a four-digit status code, 1000 (RFC 9110 §15 and RFC 9112 §4: status-code = 3DIGIT)"
    ),
    "http-version-invalid": (
        'the version HTTP/1.x (RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT)'
    ),
    "header-without-colon": (
        'a header line without a colon (RFC 9112 §5: field-line = field-name ":" OWS '
        "field-value OWS)"
    ),
    "header-obs-fold": (
        "a header value folded onto a second line (RFC 9112 §5.2: a server MUST NOT send obs-fold)"
    ),
    "header-nul-byte": (
        "a NUL byte in a header value (RFC 9110 §5.5: field values MUST NOT hold NUL)"
    ),
    "header-bare-cr": (
        "a bare CR in a header value (RFC 9110 §5.5 and RFC 9112 §2.2: a bare CR MUST be "
        "rejected or replaced)"
    ),
    "line-endings-bare-lf": (
        "the status line and header lines end with LF alone (RFC 9112 §2.2: a sender "
        "MUST end each line with CRLF)"
    ),
    "header-space-before-colon": (
        "whitespace between a header name and its colon (RFC 9112 §5.1: a recipient "
        "MUST reject such a response line)"
    ),
    "body-on-head": (
        "the answer to a HEAD request carries the body (RFC 9110 §9.3.2: the server "
        "MUST NOT send content in a response to HEAD)"
    ),
    "body-on-204": (
        "a 204 No Content with a body (RFC 9110 §15.3.5: a 204 response cannot contain content)"
    ),
    "body-on-304": (
        "a 304 Not Modified with a body (RFC 9110 §15.4.5: a 304 response cannot contain content)"
    ),
    "informational-with-body": (
        "a 103 Early Hints with a body before the final response (RFC 9110 §15.2: a 1xx "
        "response is terminated by the end of its header section)"
    ),
    "response-before-request-body": (
        "the answer is sent and the connection closed before the request body is read "
        "(RFC 9112 §9.6: a server SHOULD NOT close while the client is still sending)"
    ),
    "transfer-encoding-unknown": (
        "Transfer-Encoding: x-unknown, a coding the client cannot know; the body ends with "
        "the close (RFC 9112 §6.1: a server MUST NOT send a transfer coding the request "
        "did not allow)"
    ),
}

#: The violations decided on the request's head, before its body is read.
HEAD_VIOLATIONS = frozenset({"response-before-request-body"})

_FILLER = b"body that must not be there"


def check_violation(where: str, violation: object) -> str | None:
    """``None`` or a name of `VIOLATIONS`."""
    if violation is None:
        return None
    if not isinstance(violation, str) or violation not in VIOLATIONS:
        raise ValueError(
            f"{where}: violation {violation!r}; expected one of "
            + ", ".join(repr(name) for name in VIOLATIONS)
        )
    return violation


def status_line(status: int, reason: str | None) -> str:
    """``HTTP/1.1 <status> <reason>``, the standard reason phrase unless one is given."""
    return f"HTTP/1.1 {status} {reason or responses.get(status, 'Unknown')}"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


#: The violations that are about a body where none belongs.
_BODY_WHERE_NONE = frozenset(
    {"body-on-head", "body-on-204", "body-on-304", "informational-with-body"}
)


def render(
    name: str,
    status: int,
    reason: str | None,
    headers: list[tuple[str, str]],
    body: bytes,
    no_content: bool = False,
) -> bytes:
    """The bytes of the response *status*, *headers*, *body*, broken as *name* says.

    *headers* hold no framing fields (Content-Length, Transfer-Encoding): the
    violation frames the body, or breaks its framing.  *no_content*: the
    request was HEAD, or the status has no content (204, 304, 1xx): no body
    goes out, and a 204 or 304 declares no length, but where the violation
    is that very body.
    """
    empty = no_content and name not in _BODY_WHERE_NONE
    lines = [status_line(status, reason)] + [f"{n}: {v}" for n, v in headers]
    if empty and (status in (204, 304) or status < 200):
        sized = lines  # such a status declares no length (the violation may still)
    else:
        sized = [*lines, f"Content-Length: {len(body)}"]
    tail = body
    end = "\r\n"
    if name == "content-length-too-long":
        lines = [*lines, f"Content-Length: {len(body) + 10}"]
    elif name == "content-length-too-short":
        lines, tail = sized, body + b"EXTRA BYTES AFTER THE BODY"
    elif name == "content-length-twice":
        lines = [*sized, f"Content-Length: {len(body) + 1}"]
    elif name == "content-length-and-chunked":
        lines = [*sized, "Transfer-Encoding: chunked"]
        tail = (_chunk(body) if body else b"") + b"0\r\n\r\n"
    elif name == "content-length-negative":
        lines = [*lines, "Content-Length: -1"]
    elif name.startswith("chunk-"):
        lines = [*lines, "Transfer-Encoding: chunked"]
        data = body or b"chunk"
        if name == "chunk-size-invalid":
            tail = b"xyz\r\n" + data + b"\r\n0\r\n\r\n"
        elif name == "chunk-size-too-long":
            tail = b"%x\r\n%s\r\n" % (len(data) + 10, data)
        elif name == "chunk-missing-last":
            tail = _chunk(data)
        else:  # chunk-extension-garbage
            tail = b'%x;\x01"(garbage)\r\n%s\r\n0\r\n\r\n' % (len(data), data)
    elif name == "status-line-invalid":
        lines = [status_line(status, reason).replace(" ", "", 1), *sized[1:]]
    elif name == "status-code-invalid":
        lines = ["HTTP/1.1 1000 Invalid", *sized[1:]]
    elif name == "http-version-invalid":
        lines = [status_line(status, reason).replace("HTTP/1.1", "HTTP/1.x", 1), *sized[1:]]
    elif name == "header-without-colon":
        lines = [*sized, "X-Broken-Header without a colon"]
    elif name == "header-obs-fold":
        lines = [*sized, "X-Folded: first part", " second part"]
    elif name == "header-nul-byte":
        lines = [*sized, "X-Nul: before\x00after"]
    elif name == "header-bare-cr":
        lines = [*sized, "X-Bare-Cr: before\rafter"]
    elif name == "line-endings-bare-lf":
        lines, end = sized, "\n"
    elif name == "header-space-before-colon":
        lines = [*sized, "X-Spaced : value"]
    elif name in ("body-on-head", "response-before-request-body"):
        lines = sized
    elif name in ("body-on-204", "body-on-304"):
        code = 204 if name == "body-on-204" else 304
        tail = body or _FILLER
        lines = [status_line(code, None)] + [f"{n}: {v}" for n, v in headers]
        lines.append(f"Content-Length: {len(tail)}")
    elif name == "informational-with-body":
        early = b"HTTP/1.1 103 Early Hints\r\nContent-Length: %d\r\n\r\n%s" % (
            len(_FILLER),
            _FILLER,
        )
        return early + _join(sized, "\r\n") + body
    elif name == "transfer-encoding-unknown":
        lines = [*lines, "Transfer-Encoding: x-unknown"]
    else:  # pragma: no cover -- check_violation knows every name
        raise ValueError(f"unknown violation {name!r}")
    return _join(lines, end) + (b"" if empty else tail)


def _join(lines: list[str], end: str) -> bytes:
    return (end.join(lines) + end + end).encode("latin-1")
