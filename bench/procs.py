"""Measurements that need another process: fresh interpreters, RSS, the IPC floor."""

from __future__ import annotations

import json
import os
import pickle
import socket
import struct
import subprocess
import sys
import time
from typing import Any

clock = time.perf_counter
HERE = os.path.dirname(os.path.abspath(__file__))

#: ``python -c`` programs timed as whole processes (start to exit).
FRESH = {
    "python -c pass": "pass",
    "import tornado.web": "import tornado.web",
    "import tserver": "import tserver",
    "import pytest_httpserver": "import pytest_httpserver",
    "thread: import+start+stop": ("from tserver import TestServer; TestServer().start().stop()"),
    "subprocess: import+start+stop": (
        "from tserver import TestServer; TestServer(mode='subprocess').start().stop()"
    ),
    "tornado: import+start+stop": (
        "import sys; sys.path.insert(0, {here!r}); "
        "from contenders import BareTornado; s = BareTornado(); s.start(); s.stop()"
    ),
    "httpserver: import+start+stop": (
        "from pytest_httpserver import HTTPServer; s = HTTPServer(); s.start(); s.stop()"
    ),
}


def fresh_process(program: str) -> float:
    """Wall time of ``python -c program``, start to exit."""
    t0 = clock()
    done = subprocess.run(
        [sys.executable, "-c", program.format(here=HERE)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    elapsed = clock() - t0
    if done.returncode:
        raise RuntimeError(f"python -c {program!r} failed: {done.stderr.decode()[-500:]}")
    return elapsed


def rss_worker(mode: str, requests: int, history_limit: int | None) -> dict[str, Any]:
    """Run `rss_worker.py` in a fresh interpreter; its JSON result."""
    command = [sys.executable, os.path.join(HERE, "rss_worker.py"), mode, str(requests)]
    if history_limit is not None:
        command.append(str(history_limit))
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode:
        raise RuntimeError(f"rss_worker {mode} failed: {done.stderr[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the floor of subprocess mode: a raw socketpair + pickle round trip ---------------

FLOOR_CHILD = r"""
import asyncio, pickle, socket, struct, sys
HEADER = struct.Struct(">Q")
sock = socket.socket(fileno=int(sys.argv[1]))
sock.setblocking(False)
replies = {"set": ("ok", None)}
buffer = bytearray()

def readable():
    data = sock.recv(1 << 16)
    if not data:
        loop.stop()
        return
    buffer.extend(data)
    while len(buffer) >= 8:
        (size,) = HEADER.unpack_from(buffer)
        if len(buffer) < 8 + size:
            break
        seq, command = pickle.loads(bytes(buffer[8:8 + size]))
        del buffer[:8 + size]
        if command[0] == "history":
            reply = ("ok", replies["history"])
        elif command[0] == "prime":
            replies["history"] = command[1]
            reply = ("ok", None)
        else:
            reply = replies["set"]
        payload = pickle.dumps((seq, reply), pickle.HIGHEST_PROTOCOL)
        sock.sendall(HEADER.pack(len(payload)) + payload)

loop = asyncio.new_event_loop()
loop.add_reader(sock.fileno(), readable)
loop.run_forever()
"""

_HEADER = struct.Struct(">Q")


class FloorChild:
    """A child Python that echoes pickled commands over a socketpair (asyncio loop)."""

    def __init__(self) -> None:
        self.sock, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FLOOR_CHILD, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.seq = 0

    def call(self, command: tuple[Any, ...]) -> Any:
        self.seq += 1
        payload = pickle.dumps((self.seq, command), pickle.HIGHEST_PROTOCOL)
        self.sock.sendall(_HEADER.pack(len(payload)) + payload)
        data = self.sock.recv(1 << 16)
        while len(data) < 8 or len(data) < 8 + _HEADER.unpack_from(data)[0]:
            data += self.sock.recv(1 << 16)
        seq, reply = pickle.loads(data[8:])
        assert seq == self.seq
        return reply[1]

    def close(self) -> None:
        self.sock.close()
        self.proc.wait()

    def prime(self, history: list[Any]) -> None:
        """Make the child answer a history read with *history*'s twin.

        The twin is the recorded request as plain Python (its fields in a
        dict, headers as pairs), so the child needs nothing of tserver and
        the pickle carries the same amount of data.
        """
        self.call(("prime", [_plain(r) for r in history]))
        for _ in range(50):
            self.call(("set", "data", b"ok", None, False))

    def round_trips(self, count: int) -> dict[str, list[float]]:
        """*count* round trips of each kind: a setting, and a history read."""
        result: dict[str, list[float]] = {"set_response": [], "history (1 request)": []}
        for _ in range(count // 4):  # warm up, as measures._timed does
            self.call(("set", "data", b"ok", None, False))
            self.call(("history",))
        for _ in range(count):
            t0 = clock()
            self.call(("set", "data", b"ok", None, False))
            result["set_response"].append(clock() - t0)
        for _ in range(count):
            t0 = clock()
            self.call(("history",))
            result["history (1 request)"].append(clock() - t0)
        return result


def _plain(request: Any) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.path,
        "query_string": request.query_string,
        "args": request.args.multi_items(),
        "headers": request.headers.multi_items(),
        "cookies": dict(request.cookies),
        "data": request.data,
        "form": request.form.multi_items(),
        "files": {},
        "client_ip": request.client_ip,
        "client_port": request.client_port,
        "version": request.version,
        "scheme": request.scheme,
        "url": request.url,
        "received_at": request.received_at,
    }
