"""WebSocket echo round trips: tserver's scripted session beside a bare websockets server.

Usage::

    python bench/ws.py              # 7 rounds of 2,000 round trips each
    python bench/ws.py --rounds 3 --trips 200

Both servers echo every message: tserver answers an upgrade with
``WebSocket([Echo()])`` (thread mode), the peer is the ``websockets``
library's own asyncio server in a thread of its own, with an echo handler
and no compression (tserver's session takes none either: the client offers
none).  One client (websockets' sync client) sends a 64-byte text message
and waits for it back, *trips* times per round; the rounds alternate the
two servers, so drift on a shared machine hits both alike.  The figures are
medians of the per-round medians, and the ratio divides those.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import websockets.asyncio.server
import websockets.sync.client

from tserver import TestServer
from tserver.ws import Echo, WebSocket

MESSAGE = "x" * 64


@contextmanager
def tserver_echo() -> Iterator[str]:
    """tserver, thread mode, echoing: its ``ws://`` URL."""
    with TestServer() as srv:
        srv.add_response(WebSocket([Echo()], compress=False), path="/echo", count=None)
        yield srv.get_url("/echo").replace("http", "ws", 1)


@contextmanager
def websockets_echo() -> Iterator[str]:
    """The websockets library's asyncio server in a thread, echoing: its URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def echo(connection: websockets.asyncio.server.ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async def serve() -> None:
        server = await websockets.asyncio.server.serve(echo, "127.0.0.1", 0, compression=None)
        holder["server"] = server
        holder["port"] = next(iter(server.sockets)).getsockname()[1]
        ready.set()
        await server.wait_closed()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"ws://127.0.0.1:{holder['port']}/"
    finally:
        server = holder["server"]
        assert isinstance(server, websockets.asyncio.server.Server)
        loop.call_soon_threadsafe(server.close)
        thread.join(10)
        loop.close()


def round_trips(url: str, trips: int) -> list[float]:
    """*trips* echo round trips on one connection: each one's seconds."""
    times = []
    with websockets.sync.client.connect(url, compression=None) as client:
        client.send(MESSAGE)  # warm up: the first message also sets up the session
        client.recv(timeout=10)
        for _ in range(trips):
            start = time.perf_counter()
            client.send(MESSAGE)
            answer = client.recv(timeout=10)
            times.append(time.perf_counter() - start)
            assert answer == MESSAGE
    return times


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the table; exit status 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds (default: %(default)s)")
    parser.add_argument("--trips", type=int, default=2000, help="round trips per round")
    args = parser.parse_args(argv)
    if args.rounds < 1 or not 1 <= args.trips <= 100_000:
        parser.error("--rounds must be 1 or more, --trips from 1 to 100000")
    servers: dict[str, Callable[[], AbstractContextManager[str]]] = {
        "tserver WebSocket([Echo()])": tserver_echo,
        "websockets echo server": websockets_echo,
    }
    medians: dict[str, list[float]] = {name: [] for name in servers}
    for number in range(args.rounds):
        order = list(servers) if number % 2 == 0 else list(reversed(servers))
        for name in order:
            with servers[name]() as url:
                medians[name].append(statistics.median(round_trips(url, args.trips)))
    ours, peer = (statistics.median(medians[name]) for name in servers)
    print(f"WebSocket echo round trip, 64-byte text, {args.trips} per round, {args.rounds} rounds")
    print(f"{'server':<32} {'median':>10}")
    print("-" * 43)
    for name in servers:
        print(f"{name:<32} {statistics.median(medians[name]) * 1e6:>8.0f} us")
    print(f"tserver / websockets: {ours / peer:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
