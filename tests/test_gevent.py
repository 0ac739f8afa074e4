"""Subprocess mode under gevent: a client that patches ``socket`` cannot disturb it.

Each test runs a script in its own interpreter (monkey-patching is global
and cannot be undone), which patches everything first, then starts a
server and talks to it.  The script prints ``OK`` (or what it saw) and the
test asserts on that output.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gevent") is None, reason="gevent is not installed (test extra)"
)

GREENLET_CLIENTS = r"""
from gevent import monkey
monkey.patch_all()

import socket
import threading

import gevent
import requests

from tserver import TestServer

assert socket.socket.__module__.startswith("gevent"), socket.socket
assert threading.Thread.__module__.startswith("gevent"), threading.Thread

with TestServer(mode="subprocess") as srv:
    srv.set_response("data", b"pong")
    srv.set_response("data", b"posted", method="POST")

    def fetch(i):
        if i % 2:
            reply = requests.post(srv.get_url(f"/g/{i}"), data=f"body {i}", timeout=10)
        else:
            reply = requests.get(srv.get_url(f"/g/{i}?n={i}"), timeout=10)
        return reply.status_code, reply.content

    # a greenlet waits while ten others send: none of them blocks the rest
    waiter = gevent.spawn(srv.wait_requests, 10, 10.0)
    jobs = [gevent.spawn(fetch, i) for i in range(10)]
    gevent.joinall(jobs, timeout=30, raise_error=True)
    expected = [(200, b"posted" if i % 2 else b"pong") for i in range(10)]
    assert [job.value for job in jobs] == expected, [job.value for job in jobs]
    seen = waiter.get(timeout=30)
    assert sorted(r.path for r in seen) == sorted(f"/g/{i}" for i in range(10)), seen
    by_path = {r.path: r for r in srv.history}
    assert by_path["/g/3"].method == "POST" and by_path["/g/3"].data == b"body 3"
    assert by_path["/g/4"].method == "GET" and by_path["/g/4"].args["n"] == "4"
    assert srv.request_count == 10
print("OK")
"""

# A client doing its I/O natively, as pycurl does in C: it never yields to
# gevent's hub.  In thread mode the server's "thread" is a greenlet of this
# same OS thread, so it cannot run while the client blocks in recv(): the
# request can only end by the client's timeout, whatever the machine's speed.
NATIVE_CLIENT = r"""
import sys

from gevent import monkey
monkey.patch_all()

from tserver import TestServer

native_socket = monkey.get_original("socket", "socket")
mode, timeout = sys.argv[1], float(sys.argv[2])

with TestServer(mode=mode) as srv:
    srv.set_response("data", b"pong")
    client = native_socket()
    try:
        client.settimeout(timeout)
        client.connect((srv.address, srv.port))
        client.sendall(b"GET /native HTTP/1.0\r\n\r\n")
        reply = b""
        try:
            while chunk := client.recv(65536):
                reply += chunk
        except TimeoutError:
            print("TIMED OUT")
        else:
            print("SERVED", reply.split(b"\r\n")[0].decode(), reply.endswith(b"\r\n\r\npong"))
    finally:
        client.close()
"""


def run_script(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_subprocess_mode_serves_greenlet_clients_under_monkey_patching() -> None:
    assert run_script(GREENLET_CLIENTS).splitlines() == ["OK"]


def test_native_blocking_client_is_served_in_subprocess_mode() -> None:
    assert run_script(NATIVE_CLIENT, "subprocess", "10").splitlines() == [
        "SERVED HTTP/1.1 200 OK True"
    ]


def test_native_blocking_client_starves_thread_mode_under_gevent() -> None:
    # The mode that would be disturbed: with threading patched, the server
    # loop is a greenlet and a non-yielding client blocks it completely.
    assert run_script(NATIVE_CLIENT, "thread", "1").splitlines() == ["TIMED OUT"]
