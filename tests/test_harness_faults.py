"""Faults of the harness itself: callbacks that hang, raise or kill, huge bodies.

A test server is only useful if its own failures are loud and bounded:

- a callback that blocks the event loop for good must not make `stop()`
  hang; `stop(timeout)` returns in about *timeout* and says what it left
  (thread mode: a `RuntimeWarning` and `TestServer.abandoned`; subprocess
  mode: the child is killed, and the next call raises `ServerDiedError`);
- a callback that raises, even a `BaseException` such as ``pytest.fail()``
  or `SystemExit`, gets a ``500`` and fails `check()`, and the server goes
  on serving;
- a child process that dies in the middle of a request gives the client a
  connection error and the test a `ServerDiedError` at its next call;
- a body over ``max_body_size`` gets a ``413`` that the client can read
  (even one that writes its whole body before reading), and the connection
  is closed.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import callbacks_for_robustness as cb
import pytest
import requests
from helpers.clients import get

from tserver import Response, ServerDiedError, TestServer
from tserver._wire import encode_frame

#: The stop() timeout used with a hung callback, and the slack allowed on top.
STOP_TIMEOUT = 0.5
SLACK = 1.5


class Client(threading.Thread):
    """A GET in a background thread; keeps the answer or the exception."""

    def __init__(self, srv: TestServer, path: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(name=f"client {path}")
        self.url = (srv.address, srv.port, path, headers or {})
        self.answer: tuple[int, bytes] | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        host, port, path, headers = self.url
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            self.answer = (response.status, response.read())
        except (http.client.HTTPException, OSError) as exc:
            self.error = exc
        finally:
            conn.close()

    def finish(self) -> None:
        self.join(30)
        assert not self.is_alive(), "the client is still waiting"


@contextmanager
def gate() -> Iterator[socket.socket]:
    """A listening socket that `callbacks_for_robustness.hang` reports to."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    try:
        yield server
    finally:
        server.close()


def server_thread(srv: TestServer) -> threading.Thread:
    """The loop thread of a thread-mode server (named ``tserver-<port>``)."""
    (thread,) = [t for t in threading.enumerate() if t.name == f"tserver-{srv.port}"]
    return thread


# -- a callback that hangs ------------------------------------------------------------


def test_hung_callback_thread_mode_stop_returns_and_says_what_it_abandoned() -> None:
    cb.ENTERED.clear()
    cb.RELEASE.clear()
    srv = TestServer().start()
    port = srv.port
    client: Client | None = None
    loop_thread = server_thread(srv)
    try:
        srv.set_response("callback", cb.hang)
        client = Client(srv, "/hang")
        assert cb.ENTERED.wait(10), "the callback never ran"
        started = time.monotonic()
        with pytest.warns(RuntimeWarning, match=r"stop\(\) left work running") as warned:
            srv.stop(timeout=STOP_TIMEOUT)
        took = time.monotonic() - started
        assert took < STOP_TIMEOUT + SLACK, f"stop() took {took:.2f}s"
        assert not srv.running
        (what,) = srv.abandoned
        assert f"tserver-{port}" in what
        assert "still running" in what
        assert what in str(warned[0].message)
        assert loop_thread.is_alive()  # abandoned, not killed: a thread cannot be
        # the request was recorded before the callback ran, and stays readable
        assert [r.path for r in srv.history] == ["/hang"]
    finally:
        cb.RELEASE.set()
        loop_thread.join(10)
        if client is not None:
            client.finish()
    assert not loop_thread.is_alive(), "the released loop did not finish its shutdown"
    assert client.error is not None or client.answer == (200, b"released")
    srv.check()  # a hang is not an exception: check() has nothing to add
    # once released, everything was closed: the same port serves again
    with TestServer(port=port) as again:
        assert get(again) == (200, b"")
    assert again.abandoned == ()


def test_hung_callback_subprocess_mode_child_is_killed_at_the_timeout() -> None:
    srv = TestServer(mode="subprocess").start()
    client: Client | None = None
    try:
        srv.set_response("callback", cb.hang)
        with gate() as listener:
            client = Client(srv, "/hang", {"X-Gate-Port": str(listener.getsockname()[1])})
            conn, _ = listener.accept()
            with conn:  # held open: the callback stays blocked through stop()
                conn.settimeout(10)
                assert conn.recv(64).strip().isdigit()  # the child's pid
                started = time.monotonic()
                srv.stop(timeout=STOP_TIMEOUT)
                took = time.monotonic() - started
        assert took < STOP_TIMEOUT + SLACK, f"stop() took {took:.2f}s"
        assert srv.abandoned == ()  # nothing left running: the child was killed
        with pytest.raises(ServerDiedError, match=r"did not answer stop\(\)") as info:
            srv.check()
        assert info.value.returncode == -signal.SIGKILL
    finally:
        srv.stop()
        if client is not None:
            client.finish()
    assert client.answer is None
    assert isinstance(client.error, (http.client.HTTPException, ConnectionError))


# -- a callback that raises ------------------------------------------------------------


@pytest.mark.parametrize(
    ("callback", "type_name"),
    [
        (cb.raise_value_error, "ValueError"),
        (cb.fail_the_test, "Failed"),
        (cb.exit_by_system_exit, "SystemExit"),
    ],
    ids=["ValueError", "pytest.fail", "SystemExit"],
)
def test_raising_callback_gets_500_and_fails_check_and_the_server_goes_on(
    mode: str, callback: object, type_name: str
) -> None:
    with pytest.raises(AssertionError) as info, TestServer(mode=mode) as srv:  # noqa: PT012
        srv.add_response(Response(callback=callback), path="/raise", count=None)
        srv.set_response("data", b"fine")
        for _ in range(3):
            status, body = get(srv, "/raise")
            assert status == 500
            assert type_name.encode() in body
            assert b"Traceback" in body
            assert get(srv, "/next") == (200, b"fine")
        assert srv.request_count == 6
    message = str(info.value)
    assert message.count(f"- {type_name}") == 3
    assert "while answering GET /raise" in message
    cause = info.value.__cause__
    assert cause is not None
    if mode == "thread":
        assert type(cause).__name__ == type_name


# -- a child that dies in the middle of a request -----------------------------------------


@pytest.mark.parametrize(
    ("callback", "returncode"),
    [(cb.kill_own_process, -signal.SIGKILL), (cb.exit_own_process, 4)],
    ids=["kills-itself", "exits"],
)
def test_child_that_dies_in_its_callback(callback: object, returncode: int) -> None:
    srv = TestServer(mode="subprocess").start()
    try:
        port = srv.port
        srv.set_response("callback", callback)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            get(srv, "/die")
        with pytest.raises(ServerDiedError) as info:
            srv.request_count  # noqa: B018
        assert info.value.returncode == returncode
        with pytest.raises(ServerDiedError):
            srv.set_response("data", b"again")
        srv.stop()
        srv.start()  # afresh, on the same port
        assert srv.port == port
        assert get(srv) == (200, b"")
    finally:
        srv.stop()


def test_child_killed_from_outside_while_a_request_is_in_flight() -> None:
    srv = TestServer(mode="subprocess").start()
    client: Client | None = None
    try:
        srv.set_response("callback", cb.hang)
        with gate() as listener:
            client = Client(srv, "/hang", {"X-Gate-Port": str(listener.getsockname()[1])})
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                pid = int(conn.recv(64).strip())
                os.kill(pid, signal.SIGKILL)
                client.finish()
        assert client.answer is None
        assert isinstance(client.error, (http.client.HTTPException, ConnectionError))
        started = time.monotonic()
        with pytest.raises(ServerDiedError) as info:
            srv.history  # noqa: B018
        assert time.monotonic() - started < 2.0  # noticed, never waited for
        assert info.value.returncode == -signal.SIGKILL
        assert str(pid) in str(info.value)
    finally:
        srv.stop()
        if client is not None:
            client.finish()


# -- an oversized body -------------------------------------------------------------------------


BIG = 16 * 1024 * 1024  # more than the loopback socket buffers hold


@pytest.mark.parametrize("client", ["http.client", "requests"])
def test_oversized_body_gets_a_readable_413_and_the_server_is_fine(mode: str, client: str) -> None:
    limit = 1024 * 1024
    with TestServer(mode=mode, max_body_size=limit) as srv:
        srv.set_response("data", b"fine")
        body = b"x" * BIG
        if client == "requests":
            reply = requests.post(srv.get_url("/big"), data=body, timeout=30)
            status, text, connection = reply.status_code, reply.content, reply.headers
        else:
            conn = http.client.HTTPConnection(srv.address, srv.port, timeout=30)
            try:
                conn.request("POST", "/big", body=body)
                response = conn.getresponse()
                status, text, connection = response.status, response.read(), response.headers
                assert response.will_close
            finally:
                conn.close()
        assert status == 413
        assert text == f"tserver: body of {BIG} bytes is over max_body_size={limit}\n".encode()
        assert connection["Connection"] == "close"
        # a body within the limit, on a new connection, is served and recorded
        reply = requests.post(srv.get_url("/small"), data=b"y" * limit, timeout=30)
        assert (reply.status_code, reply.content) == (200, b"fine")
        assert srv.request_count == 1  # the refused request was never a Request
        assert srv.request.path == "/small"
        assert len(srv.request.data) == limit


# -- the harness's own boundaries (docs/security.rst) --------------------------------------


def tcp_sockets(listening_only: bool = True) -> dict[int, tuple[str, int]]:
    """TCP sockets of this machine (listening ones only by default): inode -> local address."""
    found: dict[int, tuple[str, int]] = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            if listening_only and fields[3] != "0A":  # LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            # the kernel prints each 32-bit word in host (little-endian) order
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found[int(fields[9])] = (socket.inet_ntop(family, words), int(port, 16))
    return found


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process *pid* holds open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def outward_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1; a UDP connect sends nothing
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


needs_proc = pytest.mark.skipif(
    not os.path.exists("/proc/net/tcp"), reason="needs Linux /proc/net/tcp"
)


@needs_proc
def test_default_server_listens_on_loopback_only(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.set_response("callback", cb.report_pid)
        status, pid = get(srv)
        assert status == 200
        serving = socket_inodes(int(pid))
        on_port = {inode: where for inode, where in tcp_sockets().items() if where[1] == srv.port}
        # one socket listens on the port, loopback only, held by the serving process
        assert list(on_port.values()) == [("127.0.0.1", srv.port)]
        assert set(on_port) <= serving
        if mode == "subprocess":  # and the child listens on nothing else
            assert len(serving & set(tcp_sockets())) == 1
        outward = outward_address()
        if outward is not None:  # not reachable from another interface
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((outward, srv.port), timeout=5).close()


@needs_proc
def test_child_talks_to_the_parent_over_a_unix_socketpair_only() -> None:
    with TestServer(mode="subprocess") as srv:
        srv.set_response("callback", cb.report_pid)
        pid = int(get(srv)[1])
        assert pid != os.getpid()
        child_sockets = socket_inodes(pid)
        with open("/proc/net/unix") as f:
            unix = {int(row.split()[6]) for row in f.read().splitlines()[1:]}
        tcp = tcp_sockets(listening_only=False)
        # its TCP sockets are the HTTP listener and connections accepted on
        # that port; every other socket is a Unix socket (the socketpair,
        # and the self-pipe of its event loop)
        assert {tcp[inode][1] for inode in child_sockets & set(tcp)} == {srv.port}
        assert len(child_sockets & set(tcp_sockets())) == 1
        others = child_sockets - set(tcp)
        assert others, "the child holds no channel to its parent?"
        # (a connection closed between the two reads is gone by the second)
        assert (others - unix) & socket_inodes(pid) == set()


@needs_proc
def test_child_stderr_file_is_private_and_already_unlinked() -> None:
    with TestServer(mode="subprocess") as srv:
        srv.set_response("callback", cb.report_pid)
        pid = int(get(srv)[1])
        target = os.readlink(f"/proc/{pid}/fd/2")
        assert target.endswith(" (deleted)"), target  # no name on disk to open
        assert os.stat(f"/proc/{pid}/fd/2").st_mode & 0o777 == 0o600


@pytest.mark.parametrize("where", ["as the request", "as a body"])
def test_a_pickle_sent_to_the_http_port_is_never_unpickled(
    mode: str, where: str, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    frame = encode_frame(cb.Tripwire(str(marker)))  # exactly what the socketpair carries
    assert not marker.exists()
    with TestServer(mode=mode) as srv:
        srv.set_response("data", b"fine")
        with socket.create_connection((srv.address, srv.port), timeout=10) as sock:
            if where == "as the request":
                sock.sendall(frame)
            else:
                sock.sendall(
                    b"POST /pickle HTTP/1.1\r\nHost: t\r\n"
                    + f"Content-Length: {len(frame)}\r\n\r\n".encode()
                    + frame
                )
            sock.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert get(srv) == (200, b"fine")
        if where == "as a body":
            assert reply.startswith(b"HTTP/1.1 200 OK")
            assert srv.history[0].data == frame  # kept as bytes
        else:
            assert reply in (b"", b"HTTP/1.1 400 Bad Request\r\n\r\n")
            assert srv.request_count == 1
    assert not marker.exists()
