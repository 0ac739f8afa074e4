"""Thread mode and its host where it goes wrong: starting, stopping, TLS, streaming.

- serving fails inside the loop thread while starting: `ServerStartError`,
  the port free again, no thread left;
- ``stop()`` called by a response callback, on the server's own thread;
- the soft limit of open files, when it cannot be raised;
- a TLS client that connects and never completes its handshake, at ``stop()``;
- a server-side context that cannot wrap connections (a client-side one);
- a lazy ``chunks=`` iterable that yields something that is not bytes, and
  an endless one whose client goes away;
- header values and header blocks too big for the handler's caches.
"""

from __future__ import annotations

import http.client
import itertools
import resource
import socket
import ssl
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest
from helpers.clients import fetch, get

from tserver import Response, ServerStartError, TestServer
from tserver._host import raise_fd_limit


def server_threads(port: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"tserver-{port}"]


# -- starting ------------------------------------------------------------------------


class _Injected(RuntimeError):
    """The fault a test injects where the loop thread starts serving."""


def _fail_in_the_loop_thread(monkeypatch: pytest.MonkeyPatch) -> _Injected:
    """Make the loop thread's first step of serving (reading the fd limit) raise."""
    error = _Injected("injected fault while the loop thread starts serving")

    def getrlimit(which: int) -> tuple[int, int]:
        raise error

    monkeypatch.setattr(resource, "getrlimit", getrlimit)
    return error


def test_serving_that_fails_in_the_loop_thread_is_a_start_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fail_in_the_loop_thread(monkeypatch)
    server = TestServer()
    with pytest.raises(ServerStartError, match="injected fault while the loop thread starts"):
        server.start()
    assert not server.running
    assert server.port == 0  # no port was taken
    monkeypatch.undo()
    with server:  # nothing was left behind: the same server starts now
        server.set_response("data", b"started")
        assert get(server) == (200, b"started")


def test_a_failed_thread_start_frees_its_port_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port that is free now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _fail_in_the_loop_thread(monkeypatch)
    with pytest.raises(ServerStartError):
        TestServer(port=port).start()
    assert server_threads(port) == []
    with socket.socket() as again:  # bound again at once: the failed start closed it
        again.bind(("127.0.0.1", port))


def test_a_failure_in_the_loop_thread_is_reported_as_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    injected = _fail_in_the_loop_thread(monkeypatch)
    with pytest.raises(ServerStartError) as info:
        TestServer().start()
    assert "did not start within" not in str(info.value)
    assert info.value.__cause__ is injected


# -- stopping from the server's own thread ----------------------------------------------------


def _stop_from_a_callback(server: TestServer, caught: list[str]) -> None:
    def stop_here(request: object) -> bytes:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            server.stop()  # on the loop thread: must not join itself
        caught.extend(str(w.message) for w in seen)
        return b"stopped from the callback"

    server.set_response("callback", stop_here)


def test_stop_called_by_a_callback_neither_deadlocks_nor_drops_the_answer() -> None:
    server = TestServer().start()
    caught: list[str] = []
    _stop_from_a_callback(server, caught)
    try:
        assert get(server, "/stop") == (200, b"stopped from the callback")
        assert not server.running
        for thread in server_threads(server.port):  # it ends by itself once the callback returns
            thread.join(10.0)
            assert not thread.is_alive()
        assert [r.path for r in server.history] == ["/stop"]
    finally:
        server.stop()
    server.check()


def test_stop_called_by_a_callback_reports_nothing_abandoned() -> None:
    server = TestServer().start()
    caught: list[str] = []
    _stop_from_a_callback(server, caught)
    try:
        get(server, "/stop")
        for thread in server_threads(server.port):
            thread.join(10.0)
    finally:
        server.stop()
    assert caught == []
    assert server.abandoned == ()


# -- the limit of open files --------------------------------------------------------------


def test_an_infinite_hard_fd_limit_raises_the_soft_one_to_a_million(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, tuple[int, int]]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, resource.RLIM_INFINITY))
    monkeypatch.setattr(resource, "setrlimit", lambda which, limits: calls.append((which, limits)))
    raise_fd_limit()
    assert calls == [(resource.RLIMIT_NOFILE, (1 << 20, 1 << 20))]


def test_an_fd_limit_that_cannot_be_raised_is_kept_and_the_server_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused: list[tuple[int, int]] = []

    def setrlimit(which: int, limits: tuple[int, int]) -> None:
        refused.append(limits)
        raise ValueError("not allowed to raise the limit")

    monkeypatch.setattr(resource, "getrlimit", lambda which: (256, 4096))
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    with TestServer() as server:
        server.set_response("data", b"served anyway")
        assert get(server) == (200, b"served anyway")
    assert refused == [(4096, 4096)]


# -- TLS -------------------------------------------------------------------------------------


def test_stop_ends_a_tls_handshake_the_client_never_completes() -> None:
    pytest.importorskip("trustme")
    server = TestServer(ssl=True).start()
    try:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with silent:
            # a later request proves the silent connection was accepted (the
            # backlog is served in order) and its handshake is waiting
            server.set_response("data", b"tls")
            assert get(server) == (200, b"tls")
            server.stop(timeout=5.0)
            try:
                assert silent.recv(1) == b""  # closed by the server, not left open
            except ConnectionResetError:
                pass
        assert server.abandoned == ()
    finally:
        server.stop()
    server.check()


#: Run in a process of its own: the bug it shows leaks a socket, which would
#: warn wherever the garbage collector happens to find it.
_CLIENT_CONTEXT_SCRIPT = """
import socket, ssl
from tserver import TestServer

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.verify_mode = ssl.CERT_REQUIRED
context.check_hostname = True  # a server cannot wrap with it: ValueError per connection
server = TestServer(ssl=context).start()
try:
    with socket.create_connection(("127.0.0.1", server.port), timeout=2.0) as client:
        try:
            print("closed" if client.recv(1) == b"" else "answered")
        except ConnectionResetError:
            print("closed")
        except TimeoutError:
            print("left hanging")
finally:
    server.stop()
"""


def test_a_client_side_context_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match=r"client-side SSLContext.*PROTOCOL_TLS_SERVER"):
        TestServer(ssl=ssl.create_default_context())


def test_a_context_that_cannot_wrap_connections_closes_them() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", _CLIENT_CONTEXT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "closed", done.stderr
    assert "Traceback" not in done.stderr


# -- streaming ---------------------------------------------------------------------------------


def test_a_lazy_chunk_that_is_not_bytes_drops_the_connection_and_is_reported() -> None:
    def chunks() -> Iterator[object]:
        yield b"first"
        yield 42

    server = TestServer().start()
    try:
        server.add_response(Response(chunks=chunks()))  # type: ignore[arg-type]
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            fetch("http.client", server.get_url("/lazy"))
    finally:
        server.stop()
    with pytest.raises(AssertionError, match="found problems while serving") as info:
        server.check()
    expected = "- TypeError: Response: chunks: data must be bytes or str, not int"
    assert f"{expected} while answering GET /lazy" in str(info.value)
    assert isinstance(info.value.__cause__, TypeError)


def test_an_endless_stream_ends_when_its_client_goes_away() -> None:
    produced = itertools.count()

    def endless() -> Iterator[bytes]:
        for _ in produced:
            yield b"x" * 1024

    with TestServer() as server:
        server.add_response(Response(chunks=endless()))
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request("GET", "/endless")
            assert conn.getresponse().read(4096) == b"x" * 4096
        finally:
            conn.close()
        # the server goes on serving, and the stream stopped with its client
        server.set_response("data", b"next")
        assert get(server, "/next") == (200, b"next")
        stopped_at = next(produced)
        assert get(server, "/again") == (200, b"next")
        assert next(produced) == stopped_at + 1
        assert [r.path for r in server.history] == ["/endless", "/next", "/again"]


# -- the handler's caches ---------------------------------------------------------------------


def test_long_header_values_and_big_header_blocks_are_recorded_exactly() -> None:
    long_value = "v" * 300  # longer than the values the handler shares
    block = {f"X-Pad-{n}": "p" * 100 for n in range(50)}  # a 5 KiB block: not cached
    with TestServer() as server:
        for _ in range(2):  # the second time through whatever the handler kept
            fetch("http.client", server.get_url("/h"), headers={"X-Long": long_value, **block})
        first, second = server.history
        for request in (first, second):
            assert request.headers["X-Long"] == long_value
            assert request.headers.getlist("X-Pad-49") == ["p" * 100]
            assert len(request.headers) >= 51
        assert first.headers == second.headers
