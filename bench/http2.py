"""HTTP/2 (h2c by prior knowledge): tserver beside Hypercorn serving a minimal ASGI app.

Usage::

    python bench/http2.py                       # 5 rounds
    python bench/http2.py --rounds 1 --trips 50 --streams 50

Both servers answer ``GET /`` with ``200`` and a 2-byte body: tserver
(``http2=True``, thread mode, its default answer) and Hypercorn running an
ASGI app of a few lines on an asyncio loop in a thread of its own.  The
client is h2 itself on a blocking socket, one connection per server and
round:

- latency: one stream at a time, *trips* times (the median round trip);
- throughput: *streams* streams opened at once, answered, and again, for
  *batches* batches (streams per second).

The rounds alternate the two servers, so drift on a shared machine hits
both alike.  The figures are medians of the rounds; the ratios divide them.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import h2.config
import h2.connection
import h2.events
from hypercorn.asyncio import serve
from hypercorn.config import Config

from tserver import TestServer

BODY = b"ok"


@contextmanager
def tserver_h2c() -> Iterator[int]:
    """tserver, thread mode, ``http2=True``: its port."""
    with TestServer(http2=True) as srv:
        srv.set_response("data", BODY)
        yield srv.port


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The minimal ASGI app: ``200`` and the body, whatever is asked."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"server", b"b")]})
    await send({"type": "http.response.body", "body": BODY})


@contextmanager
def hypercorn_h2c() -> Iterator[int]:
    """Hypercorn on a loop of its own thread, serving `_app`: its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # Hypercorn's now: it closes it
    config.keep_alive_max_requests = 1 << 30  # one connection serves the whole round
    config.accesslog = None
    config.errorlog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()

    async def run() -> None:
        started.set()
        await serve(_app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    thread = threading.Thread(target=lambda: loop.run_until_complete(run()), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


class Client:
    """h2 on a blocking socket, speaking h2c by prior knowledge."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.authority = f"127.0.0.1:{port}"
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())

    def close(self) -> None:
        self.sock.close()

    def get(self, count: int) -> None:
        """Open *count* streams at once; return when every one has ended with the body."""
        waiting: dict[int, bytes] = {}
        for _ in range(count):
            stream_id = self.conn.get_next_available_stream_id()
            self.conn.send_headers(
                stream_id,
                [
                    (":method", "GET"),
                    (":path", "/"),
                    (":scheme", "http"),
                    (":authority", self.authority),
                ],
                end_stream=True,
            )
            waiting[stream_id] = b""
        self.sock.sendall(self.conn.data_to_send())
        while waiting:
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("the server closed the connection")
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    waiting[event.stream_id] += event.data
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                elif isinstance(event, h2.events.StreamEnded):
                    assert waiting.pop(event.stream_id) == BODY
                elif isinstance(event, h2.events.StreamReset):
                    raise ConnectionError(f"stream {event.stream_id} was reset")
            pending = self.conn.data_to_send()
            if pending:
                self.sock.sendall(pending)


def measure(port: int, trips: int, streams: int, batches: int) -> tuple[float, float]:
    """One round on one connection: (median seconds of one stream, streams per second)."""
    client = Client(port)
    try:
        client.get(1)  # warm up: the settings exchange, the first request
        times = []
        for _ in range(trips):
            start = time.perf_counter()
            client.get(1)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(batches):
            client.get(streams)
        rate = streams * batches / (time.perf_counter() - start)
    finally:
        client.close()
    return statistics.median(times), rate


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the table; exit status 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default: %(default)s)")
    parser.add_argument("--trips", type=int, default=1000, help="one-stream round trips")
    parser.add_argument("--streams", type=int, default=100, help="streams opened at once")
    parser.add_argument("--batches", type=int, default=20, help="batches of --streams")
    args = parser.parse_args(argv)
    if args.rounds < 1 or not 1 <= args.trips <= 100_000 or not 1 <= args.streams <= 100:
        parser.error("--rounds must be 1 or more, --trips from 1 to 100000, --streams 1 to 100")
    if args.batches < 1:
        parser.error("--batches must be 1 or more")
    servers: dict[str, Callable[[], AbstractContextManager[int]]] = {
        "tserver http2=True": tserver_h2c,
        "Hypercorn, minimal ASGI app": hypercorn_h2c,
    }
    latency: dict[str, list[float]] = {name: [] for name in servers}
    rate: dict[str, list[float]] = {name: [] for name in servers}
    for number in range(args.rounds):
        order = list(servers) if number % 2 == 0 else list(reversed(servers))
        for name in order:
            with servers[name]() as port:
                one, many = measure(port, args.trips, args.streams, args.batches)
            latency[name].append(one)
            rate[name].append(many)
    print(
        f"HTTP/2 (h2c), GET with a 2-byte answer, {args.rounds} rounds: {args.trips} "
        f"one-stream trips, {args.batches} batches of {args.streams} streams"
    )
    print(f"{'server':<30} {'one stream':>12} {'streams/s':>12}")
    print("-" * 56)
    for name in servers:
        one, many = statistics.median(latency[name]), statistics.median(rate[name])
        print(f"{name:<30} {one * 1e6:>9.0f} us {many:>12.0f}")
    ours, peer = servers
    print(
        "tserver / Hypercorn: latency "
        f"{statistics.median(latency[ours]) / statistics.median(latency[peer]):.2f}, "
        f"throughput {statistics.median(rate[ours]) / statistics.median(rate[peer]):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
