"""Subprocess mode where it goes wrong: starting, awaiting a dead child, the child's protocol.

- a child that exits while it starts, one that cannot be spawned at all, and
  one that does not report within ``startup_timeout``: `ServerStartError`
  saying which, and nothing left behind;
- the awaitable waits once the child has died, before and during the wait;
- a default response that no longer pickles when ``stop()`` brings the
  state back;
- the child's own protocol (``python -m tserver._child FD``), frame by frame:
  a parent that leaves before starting it, a first frame that is not a
  `StartChild`, a corrupt frame, a parent that stops reading.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import cover_callbacks
from helpers.child_callbacks import die_with_message
from helpers.clients import fetch
from helpers.processes import wait_for_exit
from helpers.raw_child import RawChild, start_child_frame

from tserver import Response, ServerDiedError, ServerStartError, TestServer
from tserver._commands import GetCount
from tserver._wire import MAX_FRAME, Ok, encode_frame


def child_pid(server: TestServer) -> int:
    """The pid of the running child (private: only tests look at it)."""
    backend: Any = server._backend
    return int(backend.pid)


def served_body(server: TestServer, path: str = "/") -> bytes:
    return fetch("http.client", server.get_url(path)).body


# -- starting -----------------------------------------------------------------------


def test_a_child_that_exits_while_starting_is_a_start_error_with_status_and_stderr() -> None:
    server = TestServer(mode="subprocess")
    server.set_response("callback", cover_callbacks.ExitsWhenUnpickled())
    with pytest.raises(ServerStartError, match=r"exited while starting \(exit status 7\)") as info:
        server.start()
    assert cover_callbacks.EXIT_WORDS in str(info.value)
    assert not server.running
    server.stop()  # a no-op: nothing runs
    # a failed start is no start: what was set before it is kept, and fails again
    with pytest.raises(ServerStartError, match=r"exit status 7"):
        server.start()
    server.reset()
    with server:
        server.set_response("data", b"fresh")
        assert served_body(server) == b"fresh"


def test_a_child_that_cannot_be_spawned_is_a_start_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    server = TestServer(mode="subprocess")
    with pytest.raises(ServerStartError, match="cannot start the server child process") as info:
        server.start()
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert "no-such-python" in str(info.value)
    assert not server.running
    monkeypatch.undo()
    with server:  # with the interpreter back, the same server starts
        server.set_response("data", b"spawned")
        assert served_body(server) == b"spawned"


def test_a_child_that_does_not_report_within_startup_timeout_is_a_start_error() -> None:
    server = TestServer(mode="subprocess", startup_timeout=0.0)
    with pytest.raises(ServerStartError, match=r"did not start within 0s"):
        server.start()
    assert not server.running
    server.stop()


# -- awaiting a child that died ------------------------------------------------------------


def test_an_await_after_the_child_was_killed_raises_server_died() -> None:
    server = TestServer(mode="subprocess").start()
    try:
        pid = child_pid(server)
        os.kill(pid, signal.SIGKILL)
        assert wait_for_exit(pid)
        with pytest.raises(ServerDiedError) as info:
            asyncio.run(server.await_request(timeout=5.0))
        assert info.value.returncode == -signal.SIGKILL
        assert str(pid) in str(info.value)
        server.stop()
        with pytest.raises(ServerDiedError) as again:  # after stop() as well
            asyncio.run(server.await_requests(1, timeout=5.0))
        assert again.value.returncode == -signal.SIGKILL
    finally:
        server.stop()


def test_a_child_that_dies_during_an_await_raises_server_died() -> None:
    server = TestServer(mode="subprocess").start()

    def die() -> None:
        with pytest.raises((http.client.HTTPException, OSError)):
            fetch("http.client", server.get_url("/die"))

    async def scenario() -> None:
        waiting = asyncio.ensure_future(server.await_requests(2, timeout=30.0))
        await asyncio.sleep(0)  # the wait is with the child now
        assert not waiting.done()
        await asyncio.to_thread(die)
        with pytest.raises(ServerDiedError) as info:
            await waiting
        assert info.value.returncode == 3

    try:
        server.add_response(Response(callback=die_with_message))
        asyncio.run(scenario())
    finally:
        server.stop()


# -- the final state ----------------------------------------------------------------------


def test_a_default_callback_that_no_longer_pickles_is_dropped_at_stop_and_said() -> None:
    server = TestServer(mode="subprocess").start()
    server.set_response("callback", cover_callbacks.LocksOnceCalled())
    server.set_response("headers", {"X-Kept": "yes"})
    reply = fetch("http.client", server.get_url("/x"))
    assert reply.body == b"called"
    with pytest.warns(RuntimeWarning, match=r"the default response's callback \(.*was dropped"):
        server.stop()
    assert [r.path for r in server.history] == ["/x"]  # the rest came back
    server.check()


# -- the child's protocol, frame by frame ---------------------------------------------------


@pytest.fixture
def raw_child() -> Iterator[RawChild]:
    child = RawChild()
    try:
        yield child
    finally:
        child.close()


def test_a_child_whose_parent_leaves_before_starting_it_exits_quietly(
    raw_child: RawChild,
) -> None:
    assert raw_child.finish() == (0, "")


def test_a_child_whose_first_frame_is_not_start_child_exits_saying_so(
    raw_child: RawChild,
) -> None:
    raw_child.send(GetCount(), 1)
    status, err = raw_child.finish()
    assert status == 1
    assert "tserver child: expected StartChild, got GetCount()" in err


def test_a_child_started_without_state_serves_then_exits_on_a_corrupt_frame(
    raw_child: RawChild,
) -> None:
    raw_child.send(start_child_frame(), 1)
    seq, started = raw_child.reply()
    assert seq == 1
    assert isinstance(started, Ok)
    port = int(started.value)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"GET /raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert client.recv(1 << 16).startswith(b"HTTP/1.1 200 OK\r\n")
    raw_child.send(GetCount(), 2)
    assert raw_child.reply() == (2, Ok(1))
    # a header announcing more than a frame may hold: the stream is corrupt
    raw_child.sock.sendall((MAX_FRAME + 1).to_bytes(8, "big") + (3).to_bytes(8, "big"))
    status, err = raw_child.finish()
    assert status == 0
    assert f"tserver child: frame header announces {MAX_FRAME + 1} bytes" in err
    assert err.rstrip().endswith("; exiting")


def test_a_child_whose_parent_stops_reading_drops_the_reply_and_exits_at_eof(
    raw_child: RawChild,
) -> None:
    raw_child.send(start_child_frame(), 1)
    assert raw_child.reply()[0] == 1
    raw_child.sock.shutdown(socket.SHUT_RD)  # the child's replies now fail (EPIPE)
    raw_child.send(GetCount(), 2)
    raw_child.send(GetCount(), 3)
    assert raw_child.finish() == (0, "")


def test_a_command_that_arrives_with_start_child_is_answered(raw_child: RawChild) -> None:
    raw_child.sock.sendall(encode_frame(start_child_frame(), 1) + encode_frame(GetCount(), 2))
    assert raw_child.reply()[0] == 1
    assert raw_child.reply(timeout=1.0) == (2, Ok(0))
