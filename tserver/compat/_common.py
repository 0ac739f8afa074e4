"""What both compatibility modules answer with: a Response, raw when HTTP forbids it."""

from __future__ import annotations

import http
from collections.abc import Iterable

import tserver
from tserver import Raw

__all__ = ["SERVER_HEADER", "answer", "with_defaults"]

#: What test_server's ``Server`` header names.
SERVER_HEADER = f"TestServer/{tserver.__version__}"


def with_defaults(
    headers: Iterable[tuple[str, str]], port: int, charset: str = "utf-8"
) -> list[tuple[str, str]]:
    """*headers* as test_server sent them, with its own headers added.

    ``Listen-Port`` is set to *port*; ``Content-Type`` (HTML in *charset*)
    and ``Server`` are added unless given.
    """
    pairs = [(name, value) for name, value in headers if name.lower() != "listen-port"]
    names = {name.lower() for name, _ in pairs}
    pairs.append(("Listen-Port", str(port)))
    if "content-type" not in names:
        pairs.append(("Content-Type", f"text/html; charset={charset}"))
    if "server" not in names:
        pairs.append(("Server", SERVER_HEADER))
    return pairs


def answer(status: int, headers: Iterable[tuple[str, str]], data: bytes | str) -> tserver.Response:
    """A `tserver.Response`, or the same answer written raw when tserver refuses it.

    test_server sent what it was given: a header value with a NUL byte or
    outside Latin-1, a status out of range.  `tserver.Response` refuses
    those; here they are written as bytes (UTF-8), and the connection closed.
    """
    pairs = list(headers)
    try:
        return tserver.Response(data, status=status, headers=pairs)
    except (ValueError, TypeError):
        pass
    body = data.encode("utf-8") if isinstance(data, str) else data
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in pairs:
        text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
        lines.append(f"{name}: {text}")
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    return tserver.Response(fault=Raw(head + body))
