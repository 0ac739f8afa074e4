"""Reading what the server wrote, from a plain socket."""

from __future__ import annotations

import socket

__all__ = ["read_all", "read_past", "read_until"]


def read_until(sock: socket.socket, end: bytes) -> bytes:
    """Bytes from *sock* until they end with *end* (an assertion if it closes first)."""
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def read_past(sock: socket.socket, marker: bytes) -> bytes:
    """Bytes from *sock* until they hold *marker*, and whatever came with it in the last read."""
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def read_all(sock: socket.socket) -> bytes:
    """Every byte from *sock* until the server closes it."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data
