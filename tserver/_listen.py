"""Binding the listening sockets of a server (thread mode and the child alike)."""

from __future__ import annotations

import socket

from ._errors import ServerStartError

__all__ = ["bind_listening"]


def bind_listening(address: str, port: int) -> list[socket.socket]:
    """Bind and listen on *address*:*port*, or `ServerStartError` naming both.

    Like `tornado.netutil.bind_sockets` (one socket per address, IPv6 ones
    ``V6ONLY``, one port for all with ``port=0``), but a failed bind closes
    every socket made so far instead of leaving it to the garbage collector
    (a `ResourceWarning`).
    """
    sockets: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(address, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
        for family, kind, proto, _, sockaddr in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            where = sockaddr
            if port == 0 and len(sockets) > 1:  # the same free port everywhere
                where = (sockaddr[0], sockets[0].getsockname()[1], *sockaddr[2:])
            sock.setblocking(False)
            sock.bind(where)
            sock.listen(1024)
        return sockets
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ServerStartError(
            f"cannot listen on {address} port {port}: {exc.strerror or exc}"
            + (" (is another server using it?)" if port else "")
        ) from exc
