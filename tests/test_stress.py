"""Lifecycle under stress, in every mode (SPEC §2, issue 9 part 3).

- Hundreds of start/stop cycles leave no fd, thread, child process or
  temporary file behind (the leak guard of ``conftest.py`` checks fds,
  threads and children after each test; these tests also check within).
- `stop()` while requests are in flight, whether sleeping, streaming,
  uploading or arriving: every client gets a response or a connection error,
  promptly, and nothing hangs.
- Many servers at once, each answering.
- Two servers on one fixed port: the second gets `ServerStartError`.

Temporary files: the tests point `tempfile` at a private directory
(``tempfile.tempdir`` here, ``TMPDIR`` for a child), so "nothing left
behind" is checked exactly, without being confused by other processes (or
other pytest-xdist workers) using the system's ``/tmp`` at the same time.
"""

from __future__ import annotations

import http.client
import os
import socket
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from helpers.clients import get

from tserver import Response, ServerStartError, TestServer, _spare

pytestmark = pytest.mark.slow

#: Start/stop cycles per mode (issue 9 asks for 500 in each).  A subprocess
#: cycle has the warm spare fork a child (`tserver._spare`): about 10 ms, where
#: a fresh interpreter took 0.1 s (500 cycles were 50 s, now about 5 s).
CYCLES = {"thread": 500, "subprocess": 500}
TLS_CYCLES = 10

#: Servers running at once.  A subprocess-mode server is a ~30 MB child
#: process, so 100 of them would need ~3 GB and ~20 s of CPU to start.
MANY = {"thread": 100, "subprocess": 10}


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`tempfile` writes into an empty directory of this test only (a child too)."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    monkeypatch.setenv("TMPDIR", str(directory))  # inherited by a child process
    return directory


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def children() -> set[int]:
    """Our child processes, and the ones the spare forked for us and we did not collect."""
    with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
        return {int(pid) for pid in f.read().split()} | _spare.forked_pids()


def spare_children() -> set[int]:
    """The live processes the current spare has forked (it reaps them as they exit).

    Among them the one it forked ahead, waiting for the next claim.
    """
    spare = _spare._current
    if spare is None or spare.pid is None:
        return set()
    try:
        text = Path(f"/proc/{spare.pid}/task/{spare.pid}/children").read_text()
    except FileNotFoundError:
        return set()
    return {int(pid) for pid in text.split()}


# -- start/stop cycles --------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs Linux /proc")
def test_start_stop_cycles_leave_nothing_behind(mode: str, private_tmp: Path) -> None:
    cycles = CYCLES[mode]
    for _ in range(2):  # first-use imports and caches (and the spare) out of the count
        TestServer(mode=mode).start().stop()
    fds, threads, kids = open_fds(), set(threading.enumerate()), children()
    forked = spare_children()
    started = time.monotonic()
    # a server of its own per cycle, on a port of its own: under a parallel run
    # a port just freed can be taken at once by another test's client socket
    # (restarting on the same port is tested in test_lifecycle.py)
    for i in range(cycles):
        srv = TestServer(mode=mode)
        try:
            srv.start()
            srv.set_response("data", f"cycle {i}")
            assert get(srv, f"/{i}") == (200, f"cycle {i}".encode())
        finally:
            srv.stop()
        assert [r.path for r in srv.history] == [f"/{i}"]
        srv.check()
    took = time.monotonic() - started
    print(
        f"\n{mode}: {cycles} start/stop cycles in {took:.1f} s ({took / cycles * 1000:.1f} ms each)"
    )
    assert open_fds() == fds
    assert set(threading.enumerate()) == threads
    assert children() == kids
    # the spare reaped every child it forked: it has as many as before (the
    # one it forks ahead, waiting for the next claim, is a new one)
    assert len(spare_children()) == len(forked)
    assert list(private_tmp.iterdir()) == []


def test_tls_start_stop_cycles_remove_their_files(mode: str, private_tmp: Path) -> None:
    pytest.importorskip("trustme")
    srv = TestServer(mode=mode, ssl=True)
    fds = open_fds()
    ca_dirs = set()
    try:
        for i in range(TLS_CYCLES):
            srv.start()
            assert srv.ca_path is not None
            ca_dir = Path(srv.ca_path).parent
            assert ca_dir.parent == private_tmp  # where tempfile was told to write
            assert ca_dir.name.startswith("tserver-")
            ca_dirs.add(ca_dir)
            assert get(srv, f"/tls{i}") == (200, b"")
            srv.stop()
            assert not ca_dir.exists()
    finally:
        srv.stop()
    assert len(ca_dirs) == TLS_CYCLES  # a new CA each start
    assert list(private_tmp.iterdir()) == []
    assert open_fds() == fds


# -- stop() with requests in flight -------------------------------------------------------


class Outcome:
    """What each client thread got: a status, or the name of its exception."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: list[str] = []

    def add(self, result: str) -> None:
        with self.lock:
            self.results.append(result)


def _one_request(srv: TestServer, path: str, outcome: Outcome) -> None:
    conn = http.client.HTTPConnection(srv.address, srv.port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        outcome.add(f"{path} {response.status}")
    except (http.client.HTTPException, OSError) as exc:
        outcome.add(f"{path} {type(exc).__name__}")
    finally:
        conn.close()


def _keep_sending(srv: TestServer, outcome: Outcome) -> None:
    """Requests on new connections until one fails after stop() (bounded)."""
    for i in range(100_000):
        conn = http.client.HTTPConnection(srv.address, srv.port, timeout=30)
        try:
            conn.request("GET", f"/loop/{i}")
            conn.getresponse().read()
        except (http.client.HTTPException, OSError) as exc:
            outcome.add(f"/loop {type(exc).__name__}")
            return
        finally:
            conn.close()
    outcome.add("/loop never failed")


def _half_upload(srv: TestServer, outcome: Outcome, sent: threading.Event) -> None:
    """Send the head and half the body of a POST, then wait for the server."""
    with socket.create_connection((srv.address, srv.port), timeout=30) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + b"x" * 50)
        sent.set()
        try:
            data = sock.recv(1024)
            outcome.add(f"/upload {'EOF' if not data else data[:12].decode()}")
        except OSError as exc:
            outcome.add(f"/upload {type(exc).__name__}")


def test_stop_with_requests_in_flight_leaves_no_client_hanging(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    outcome = Outcome()
    upload_sent = threading.Event()
    srv.add_response(Response(b"late", sleep=30), path="/sleep", count=None)
    srv.add_response(Response(chunks=[b"a"] * 60, chunk_sleep=0.5), path="/stream", count=None)
    clients = [
        threading.Thread(target=_one_request, args=(srv, path, outcome))
        for path in ["/sleep"] * 4 + ["/stream"] * 4 + ["/fast"] * 2
    ]
    clients.append(threading.Thread(target=_half_upload, args=(srv, outcome, upload_sent)))
    clients += [threading.Thread(target=_keep_sending, args=(srv, outcome)) for _ in range(2)]
    try:
        for thread in clients:
            thread.start()
        srv.wait_requests(10 + 20, timeout=10)  # the ten above, and the loops are going
        assert upload_sent.wait(10)
        started = time.monotonic()
        srv.stop()
        took = time.monotonic() - started
    finally:
        srv.stop()
        for thread in clients:
            thread.join(15)
    assert not [t for t in clients if t.is_alive()], "a client hangs"
    assert took < 5.0, f"stop() took {took:.2f}s"
    results = sorted(outcome.results)
    disconnected = ("RemoteDisconnected", "IncompleteRead", "ConnectionResetError")
    refused = ("ConnectionRefusedError", *disconnected)
    assert results.count("/fast 200") == 2, results
    assert [r for r in results if r.startswith("/sleep")] == [
        r for r in results if r.startswith("/sleep") and r.endswith(disconnected)
    ]
    assert len([r for r in results if r.startswith("/sleep")]) == 4
    assert len([r for r in results if r.startswith("/stream") and r.endswith(disconnected)]) == 4
    assert len([r for r in results if r.startswith("/loop") and r.endswith(refused)]) == 2
    assert [r for r in results if r.startswith("/upload")] in (
        ["/upload EOF"],
        ["/upload ConnectionResetError"],
    )
    assert "/upload" not in {r.path for r in srv.history}  # half a body is no request
    srv.check()


# -- many servers at once -----------------------------------------------------------------


def test_many_servers_at_once_each_answer(mode: str) -> None:
    count = MANY[mode]
    with ExitStack() as stack:
        servers = [stack.enter_context(TestServer(mode=mode)) for _ in range(count)]
        assert len({srv.port for srv in servers}) == count
        for number, srv in enumerate(servers):
            srv.set_response("data", f"server {number}")
        for number, srv in enumerate(servers):
            assert get(srv, f"/{number}") == (200, f"server {number}".encode())
        for number, srv in enumerate(servers):
            assert [r.path for r in srv.history] == [f"/{number}"]


# -- one port, two servers ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("second_mode", ["thread", "subprocess"])
def test_second_server_on_a_fixed_port_gets_server_start_error(mode: str, second_mode: str) -> None:
    port = _free_port()
    with TestServer(port=port, mode=mode) as first:
        assert first.port == port
        second = TestServer(port=port, mode=second_mode)
        with pytest.raises(ServerStartError) as info:
            second.start()
        assert "127.0.0.1" in str(info.value)
        assert str(port) in str(info.value)
        assert not second.running
        second.stop()  # a no-op after the failed start
        assert get(first) == (200, b"")
    # and once the first one stopped, the port is free for the second
    with second:
        assert get(second) == (200, b"")
