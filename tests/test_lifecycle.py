"""start / stop / restart / context manager, in every mode."""

from __future__ import annotations

import http.client
import os
import socket
import threading

import pytest
from helpers.clients import get

from tserver import (
    NoRequestError,
    Request,
    ServerStartError,
    ServerStateError,
    TestServer,
    TestServerError,
)


def explode(request: Request) -> bytes:
    raise ZeroDivisionError(f"kaboom at {request.path}")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_start_returns_self_and_the_real_port(mode: str) -> None:
    srv = TestServer(mode=mode)
    assert srv.port == 0
    try:
        assert srv.start() is srv
        assert 0 < srv.port < 65536
        assert srv.url == f"http://127.0.0.1:{srv.port}/"
        assert srv.mode == mode
        assert srv.address == "127.0.0.1"
        # accepting as soon as start() returns: no retry needed
        assert get(srv) == (200, b"")
    finally:
        srv.stop()


def test_port_in_use_raises_server_start_error_naming_address_and_port(mode: str) -> None:
    with TestServer(mode=mode) as occupant:
        second = TestServer(port=occupant.port, mode=mode)
        with pytest.raises(ServerStartError) as info:
            second.start()
        assert "127.0.0.1" in str(info.value)
        assert str(occupant.port) in str(info.value)
        assert isinstance(info.value, TestServerError)
        second.stop()  # harmless after a failed start
        assert get(occupant)[0] == 200  # the occupant is undisturbed


def test_port_held_by_a_plain_socket(mode: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ServerStartError, match=rf"127\.0\.0\.1.*{port}"):
            TestServer(port=port, mode=mode).start()


def test_start_twice_raises_server_state_error(server: TestServer) -> None:
    port = server.port
    with pytest.raises(ServerStateError, match="already running"):
        server.start()
    assert server.port == port
    assert get(server)[0] == 200


def test_stop_twice_is_harmless(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    srv.stop()
    srv.stop()
    assert not srv.running


def test_stop_before_start_is_a_no_op(mode: str) -> None:
    srv = TestServer(mode=mode)
    srv.stop()
    assert srv.port == 0
    assert srv.history == []


def test_stopped_server_refuses_connections(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    get(srv)
    srv.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()


def test_same_port_can_be_bound_again_right_after_stop(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    port = srv.port
    # a keep-alive connection still open at stop() time, and a closed one
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        get(srv)
        srv.stop()
    finally:
        conn.close()
    # Any server binds with SO_REUSEADDR (Tornado, http.server, aiohttp do):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
    with TestServer(port=port, mode=mode) as again:
        assert again.port == port
        assert get(again)[0] == 200


def test_restart_is_on_the_same_port_with_empty_state(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    try:
        port = srv.port
        srv.set_response("status", 404)
        srv.set_response_once("data", b"pending once")
        get(srv, "/before")
        srv.set_response_once("data", b"pending once")
        srv.stop()
        assert srv.start() is srv
        assert srv.port == port
        assert srv.history == []
        assert srv.request_count == 0
        assert get(srv, "/after") == (200, b"")
        assert [r.path for r in srv.history] == ["/after"]
    finally:
        srv.stop()


def test_settings_made_before_start_are_served(mode: str) -> None:
    srv = TestServer(mode=mode)
    srv.set_response("data", b"configured early")
    with srv:
        assert get(srv) == (200, b"configured early")


def test_state_is_readable_after_stop(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    get(srv, "/one")
    get(srv, "/two")
    srv.stop()
    assert [r.path for r in srv.history] == ["/one", "/two"]
    assert srv.request_count == 2
    assert srv.get_request("path") == "/two"
    assert srv.request.path == "/two"
    assert srv.wait_requests(2, timeout=0)[0].path == "/one"
    srv.check()


def test_context_manager_starts_and_stops(mode: str) -> None:
    with TestServer(mode=mode) as srv:
        assert srv.running
        assert get(srv)[0] == 200
    assert not srv.running


def test_context_manager_checks_on_clean_exit(mode: str) -> None:
    with pytest.raises(AssertionError) as info, TestServer(mode=mode) as srv:  # noqa: PT012
        srv.set_response("callback", explode)
        status, body = get(srv, "/boom")
        assert status == 500
        assert b"ZeroDivisionError" in body
    message = str(info.value)
    assert "ZeroDivisionError" in message
    assert "kaboom at /boom" in message
    assert "Traceback" in message
    assert "explode" in message
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert not srv.running


def test_context_manager_does_not_mask_the_body_exception(mode: str) -> None:
    with pytest.raises(KeyError, match="from the body"), TestServer(mode=mode) as srv:  # noqa: PT012
        srv.set_response("callback", explode)
        get(srv)
        raise KeyError("from the body")
    assert not srv.running


def test_check_passes_when_nothing_went_wrong(server: TestServer) -> None:
    get(server)
    server.check()


def test_reset_clears_handler_errors(server: TestServer) -> None:
    server.set_response("callback", explode)
    get(server)
    server.reset()
    server.check()
    with pytest.raises(NoRequestError):
        server.get_request()


def test_start_stop_cycles_leak_no_fd_and_no_worker(mode: str) -> None:
    cycles = 200 if mode == "thread" else 10  # a child process costs ~0.3 s
    srv = TestServer(mode=mode)
    srv.start().stop()  # first-use imports and caches out of the count
    fds, threads = open_fds(), threading.active_count()
    for i in range(cycles):
        srv.start()
        assert get(srv, f"/{i}")[0] == 200
        srv.stop()
    assert open_fds() == fds
    assert threading.active_count() == threads


def test_not_collected_by_pytest() -> None:
    assert TestServer.__test__ is False
    assert TestServerError.__test__ is False
