"""What the handler writes on a connection it has taken over from Tornado.

A fault (``Response(fault=...)``) and the ``413`` refusal of an oversized
body both detach the connection's `~tornado.iostream.IOStream` from HTTP and
write to it directly: bytes exactly as given, a response cut in half, an
abortive close, or an answer followed by a graceful drain of the body the
client is still sending.  The functions here do that writing; which one to
use is the handler's decision.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from typing import TYPE_CHECKING

from tornado import iostream

from ._violations import status_line

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "LINGER_SECONDS",
    "close",
    "plain_response",
    "refuse_body",
    "truncated",
    "whole",
    "write_and_close",
]

#: How long a refused body (``413``) is read and discarded before closing.
LINGER_SECONDS = 2.0


async def write_and_close(stream: iostream.IOStream, data: bytes) -> None:
    """Write *data* as it is, then close (a client that left is no error)."""
    try:
        await stream.write(data)
    except iostream.StreamClosedError:
        pass
    finally:
        stream.close()


def close(stream: iostream.IOStream, *, reset: bool, client: socket.socket | None = None) -> None:
    """Close without answering; with *reset*, abort (``SO_LINGER`` 0: the peer gets RST).

    *client*: the socket of the TCP connection to the client, when it is
    not *stream*'s own (a ``CONNECT`` tunnel): that one is reset.
    """
    if reset:
        sock = client or stream.socket
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.close()


def _head(
    status: int, reason: str | None, headers: Iterable[tuple[str, str]], extra: list[str]
) -> bytes:
    lines = [status_line(status, reason)]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += extra
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def truncated(
    status: int, reason: str | None, headers: Iterable[tuple[str, str]], body: bytes
) -> bytes:
    """A response whose ``Content-Length`` promises *body* but that holds half of it."""
    return _head(status, reason, headers, [f"Content-Length: {len(body)}"]) + body[: len(body) // 2]


def whole(
    status: int, reason: str | None, headers: Iterable[tuple[str, str]], body: bytes
) -> bytes:
    """A whole response with its ``Content-Length``, that closes the connection."""
    kept = [(n, v) for n, v in headers if n.lower() not in ("content-length", "connection")]
    return _head(status, reason, kept, [f"Content-Length: {len(body)}", "Connection: close"]) + body


def plain_response(status: int, body: bytes, server: str) -> bytes:
    """A whole ``text/plain`` response that closes the connection."""
    head = (
        f"{status_line(status, None)}\r\nServer: {server}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def refuse_body(stream: iostream.IOStream, data: bytes, declared: int) -> None:
    """Answer *data* without reading the body, then close gracefully.

    Closing a socket with unread bytes makes the kernel send a TCP RST,
    which can reach the client before it reads the answer (a client that
    writes its whole body first then sees "connection reset", not the
    ``413``).  So: send the answer, half-close, and read and discard what
    the client still sends (up to *declared* bytes, for at most
    `LINGER_SECONDS`) before closing.
    """
    try:
        await stream.write(data)
        sock = stream.socket
        if sock is not None:
            sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        drained = 0
        while drained < declared:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            chunk = await asyncio.wait_for(stream.read_bytes(1 << 16, partial=True), left)
            drained += len(chunk)
    except (iostream.StreamClosedError, OSError, asyncio.TimeoutError):
        pass
    finally:
        stream.close()
