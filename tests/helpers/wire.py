"""Reading what the server wrote, from a plain socket."""

from __future__ import annotations

import socket

__all__ = ["read_until"]


def read_until(sock: socket.socket, end: bytes) -> bytes:
    """Bytes from *sock* until they end with *end* (an assertion if it closes first)."""
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data
