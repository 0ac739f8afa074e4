"""Memory per recorded request, in a fresh interpreter (run by `run.py`).

Usage: ``python bench/rss_worker.py MODE REQUESTS [HISTORY_LIMIT]``, MODE one of
``thread``, ``subprocess``, ``tornado`` (the bare app, which keeps nothing: the
allocator's noise).  Starts the server, serves a warm-up, resets, then sends
REQUESTS small GETs (the headers `requests` sends), pipelined on one
connection, and prints one JSON line: the server process's RSS before and after
and the growth per request.  In subprocess mode the RSS is the child's.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from contenders import HOST, BareTornado, TServer

BATCH = 100


def rss_kib(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def request_bytes(port: int, number: int) -> bytes:
    return (
        f"GET /item?id={number} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        "User-Agent: python-requests/2.32.3\r\nAccept-Encoding: gzip, deflate\r\n"
        "Accept: */*\r\nConnection: keep-alive\r\n\r\n"
    ).encode()


def send(port: int, count: int) -> None:
    """*count* GETs pipelined in batches on one connection; all answers read."""
    sock = socket.create_connection((HOST, port))
    try:
        sent = 0
        while sent < count:
            batch = min(BATCH, count - sent)
            sock.sendall(b"".join(request_bytes(port, sent + i) for i in range(batch)))
            sent += batch
            data = b""
            # every answer has an empty body: one blank line ends each
            while data.count(b"\r\n\r\n") < batch:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise RuntimeError("the server closed the connection")
                data += chunk
    finally:
        sock.close()


def main() -> None:
    mode, requests = sys.argv[1], int(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    server: Any
    if mode == "tornado":
        server = BareTornado()
        server.set_body(b"")
    else:
        server = TServer(mode, history_limit=limit)
        server.set_body(b"")
    server.start()
    pid: int | str = "self"
    if mode == "subprocess":
        pid = server.srv._backend.pid
    try:
        send(server.port, min(2000, requests))  # warm-up: buffers, caches, allocations
        server.reset()
        gc.collect()
        before = rss_kib(pid)
        t0 = time.perf_counter()
        send(server.port, requests)
        elapsed = time.perf_counter() - t0
        if mode != "tornado":
            assert server.count() == requests, (server.count(), requests)
        gc.collect()
        after = rss_kib(pid)
    finally:
        server.stop()
    print(
        json.dumps(
            {
                "mode": mode,
                "requests": requests,
                "history_limit": limit,
                "rss_before_kib": before,
                "rss_after_kib": after,
                "growth_kib": after - before,
                "bytes_per_request": (after - before) * 1024 / requests,
                "seconds": elapsed,
            }
        )
    )


if __name__ == "__main__":
    main()
