"""One function per measurement; each takes a started contender (or makes one).

Every function returns raw samples (seconds, or a dict of figures); `run.py`
interleaves the contenders round by round and takes the medians.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

from contenders import HOST, SMALL_BODY, Contender, make

clock = time.perf_counter


def start_stop(name: str, reps: int, budget: float) -> dict[str, list[float]]:
    """Time ``start()`` and ``stop()`` of a fresh server, *reps* times (within *budget* s).

    One untimed cycle comes first: first-use imports, and subprocess mode's
    warm spare (`tserver._spare`) ready, as it is for every later server.
    """
    warm = make(name)
    warm.start()
    warm.stop()
    starts: list[float] = []
    stops: list[float] = []
    both: list[float] = []
    began = clock()
    for number in range(reps):
        contender = make(name)
        t0 = clock()
        contender.start()
        t1 = clock()
        contender.stop()
        t2 = clock()
        starts.append(t1 - t0)
        stops.append(t2 - t1)
        both.append(t2 - t0)
        if number >= 2 and clock() - began > budget:
            break
    return {"start": starts, "stop": stops, "start+stop": both}


def cycles(name: str, count: int) -> float:
    """Seconds for *count* consecutive start/stop cycles of fresh servers (one untimed first)."""
    warm = make(name)
    warm.start()
    warm.stop()
    began = clock()
    for _ in range(count):
        contender = make(name)
        contender.start()
        contender.stop()
    return clock() - began


def _get(conn: http.client.HTTPConnection, path: str = "/") -> bytes:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path} answered {response.status}")
    return body


def one_get(contender: Contender) -> None:
    """One small GET on its own connection."""
    conn = http.client.HTTPConnection(HOST, contender.port)
    try:
        _get(conn, "/item?id=1")
    finally:
        conn.close()


def keepalive(contender: Contender, count: int) -> list[float]:
    """Latency of *count* small GETs on one kept-alive connection (after a warm-up)."""
    conn = http.client.HTTPConnection(HOST, contender.port)
    try:
        for _ in range(20):
            _get(conn)
        samples = []
        for _ in range(count):
            t0 = clock()
            _get(conn, "/item?id=1")
            samples.append(clock() - t0)
    finally:
        conn.close()
    contender.reset()
    return samples


def new_connection(contender: Contender, count: int) -> list[float]:
    """Latency of *count* small GETs, each on a new connection (connect to close)."""
    samples = []
    for _ in range(count):
        t0 = clock()
        conn = http.client.HTTPConnection(HOST, contender.port)
        try:
            _get(conn, "/item?id=1")
        finally:
            conn.close()
        samples.append(clock() - t0)
    contender.reset()
    return samples


_WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(\w+),")
_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def wrk_command(port: int, seconds: float, connections: int) -> list[str]:
    """wrk on the other core (``taskset -c 1``) when there is one."""
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        f"http://{HOST}:{port}/item?id=1",
    ]
    if shutil.which("taskset") and _cores() >= 2:
        command = ["taskset", "-c", "1", *command]
    return command


def _cores() -> int:
    return os.cpu_count() or 1


def throughput(contender: Contender, seconds: float, connections: int) -> dict[str, Any]:
    """Run wrk against *contender*; compare its completed count with the server's."""
    contender.reset()
    cpu = contender.cpu_seconds()
    done = subprocess.run(
        wrk_command(contender.port, seconds, connections),
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 30,
    )
    cpu = contender.cpu_seconds() - cpu
    out = done.stdout
    total = _WRK_TOTAL.search(out)
    rate = _WRK_RATE.search(out)
    if done.returncode or total is None or rate is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {out}{done.stderr}")
    errors = _WRK_ERRORS.search(out)
    non2xx = _WRK_NON2XX.search(out)
    server_count = contender.count()
    contender.reset()
    return {
        "rps": float(rate.group(1)),
        "cpu_per_request": cpu / max(1, server_count),
        "wrk_completed": int(total.group(1)),
        "server_count": server_count,
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def big_post(contender: Contender, blob: bytes) -> float:
    """Seconds to POST *blob* and read the (small) answer, on a new connection."""
    conn = http.client.HTTPConnection(HOST, contender.port)
    try:
        t0 = clock()
        conn.request("POST", "/upload", body=blob)
        response = conn.getresponse()
        response.read()
        elapsed = clock() - t0
        if response.status != 200:
            raise RuntimeError(f"POST answered {response.status}")
    finally:
        conn.close()
    contender.reset()  # drop the recorded body
    return elapsed


def big_get(contender: Contender, size: int) -> float:
    """Seconds to GET a body of *size* bytes (already set) on a new connection."""
    conn = http.client.HTTPConnection(HOST, contender.port)
    try:
        t0 = clock()
        conn.request("GET", "/download")
        response = conn.getresponse()
        got = 0
        while True:
            chunk = response.read(1 << 20)
            if not chunk:
                break
            got += len(chunk)
        elapsed = clock() - t0
    finally:
        conn.close()
    if got != size:
        raise RuntimeError(f"GET read {got} bytes, expected {size}")
    contender.reset()
    return elapsed


# -- control calls ---------------------------------------------------------------


def _timed(fn: Any, count: int) -> list[float]:
    """*count* timings of ``fn()``, after ``count // 4`` untimed calls to warm it up."""
    for _ in range(count // 4):
        fn()
    samples = []
    for _ in range(count):
        t0 = clock()
        fn()
        samples.append(clock() - t0)
    return samples


def control_calls(contender: Contender, count: int) -> dict[str, list[float]]:
    """Median cost of the control calls of a running tserver (thread or subprocess)."""
    srv = contender.srv  # type: ignore[attr-defined]
    srv.reset()
    one_get(contender)
    srv.wait_request()
    result = {
        "set_response": _timed(lambda: srv.set_response("data", SMALL_BODY), count),
        "history (1 request)": _timed(lambda: srv.history, count),
        "request_count": _timed(lambda: srv.request_count, count),
        "reset": _timed(srv.reset, count),
    }
    srv.set_response("data", contender.body)
    return result


def wait_latency(contender: Contender, count: int) -> list[float]:
    """Seconds from a request being recorded to `wait_request` returning."""
    srv = contender.srv  # type: ignore[attr-defined]
    sock = socket.create_connection((HOST, contender.port))
    request = f"GET /wait HTTP/1.1\r\nHost: {HOST}:{contender.port}\r\n\r\n".encode()
    samples = []
    try:
        for _ in range(count):
            srv.reset()
            srv.set_response("data", SMALL_BODY)
            sock.sendall(request)
            recorded = srv.wait_request()
            samples.append(time.time() - recorded.received_at)
            _read_response(sock)
    finally:
        sock.close()
    return samples


def _read_response(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(rest) < length:
        rest += sock.recv(65536)


@contextlib.contextmanager
def pinned_to_cpu0(pin: bool) -> Iterator[None]:
    """Run this thread, and the threads and processes it starts, on CPU 0."""
    if not pin:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def thread_floor(count: int) -> dict[str, float]:
    lock = threading.Lock()
    table: dict[str, Any] = {}
    history = [object()]

    def set_key() -> None:
        with lock:
            table["data"] = b"ok"

    def read() -> list[Any]:
        with lock:
            return list(history)

    return {
        "set_response": statistics.median(_timed(set_key, count)),
        "history (1 request)": statistics.median(_timed(read, count)),
    }


def one_request_history() -> list[Any]:
    contender = make("thread")
    contender.start()
    try:
        one_get(contender)
        history: list[Any] = contender.srv.history  # type: ignore[attr-defined]
        return history
    finally:
        contender.stop()
