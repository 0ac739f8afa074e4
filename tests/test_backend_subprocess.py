"""Subprocess mode: the child process, its death, its stderr, and pickling.

What only this mode has: a separate Python process hosting the recorder, a
socketpair carrying pickled commands, a child that may die (and must be
reported, never waited on forever), a child that must not outlive its parent,
and objects that must cross the process boundary by pickle.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hamcrest import equal_to, starts_with
from helpers import child_callbacks
from helpers.child_callbacks import DYING_WORDS, NOTE, Satisfies
from helpers.clients import fetch
from helpers.processes import wait_for_exit

import tserver._backend_subprocess as backend_module
import tserver._channel as channel_module
from tserver import (
    Response,
    ServerDiedError,
    ServerStartError,
    ServerStateError,
    TestServer,
    WaitTimeoutError,
)
from tserver._commands import SetResponse

HELPERS = Path(__file__).parent / "helpers"


@pytest.fixture
def srv() -> Iterator[TestServer]:
    server = TestServer(mode="subprocess").start()
    try:
        yield server
    finally:
        server.stop()


def child_pid(server: TestServer) -> int:
    """The pid of the running child (private: only tests look at it)."""
    backend: Any = server._backend
    return int(backend.pid)


def get(server: TestServer, path: str = "/", headers: dict[str, str] | None = None) -> bytes:
    return fetch("http.client", server.get_url(path), headers=headers).body


# -- the child is a real, separate process ------------------------------------


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("spare", [False, True], ids=["fresh", "from-spare"])
def test_child_is_a_separate_python_process_started_with_dash_m(spare: bool) -> None:
    TestServer(mode="subprocess").start().stop()  # the first start of a process is fresh
    with TestServer(mode="subprocess", spare=spare) as srv:
        pid = child_pid(srv)
        assert pid != os.getpid()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[:3] == [sys.executable.encode(), b"-m", b"tserver._child"]
        if spare:  # forked by the spare, which is no child of ours (it detached)
            assert cmdline[3] == b"--spare"
            assert parent_of(pid) != os.getpid()
            assert parent_of(parent_of(pid)) != os.getpid()
        else:  # a fresh interpreter, our child
            assert cmdline[3:] == [cmdline[3], b""]
            assert cmdline[3].isdigit()
            assert parent_of(pid) == os.getpid()
        # and a callback really runs over there
        srv.set_response("callback", child_callbacks.report_pid)
        assert get(srv) == str(pid).encode()


def test_start_returns_when_accepting() -> None:
    server = TestServer(mode="subprocess")
    try:
        server.start()
        # the very first connection attempt succeeds: no retry, no sleep
        with socket.create_connection((server.address, server.port), timeout=5) as sock:
            sock.sendall(b"GET /first HTTP/1.0\r\n\r\n")
            reply = sock.makefile("rb").read()
        assert reply.startswith(b"HTTP/1.1 200 ")
        assert server.get_request("path") == "/first"
    finally:
        server.stop()


def test_port_in_use_is_a_start_error_naming_address_and_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        server = TestServer(port=port, mode="subprocess")
        with pytest.raises(ServerStartError) as info:
            server.start()
        message = str(info.value)
        assert "127.0.0.1" in message
        assert str(port) in message
        assert not server.running
        server.stop()  # a no-op after a failed start
    # the leak guard checks that the failed start left no fd and no child


# -- a dead child is reported at the next call --------------------------------


def _history(s: TestServer) -> object:
    return s.history


def _set_response(s: TestServer) -> object:
    s.set_response("data", b"x")
    return None


def _add_response(s: TestServer) -> object:
    s.add_response(Response(b"x"))
    return None


def _wait_request(s: TestServer) -> object:
    return s.wait_request(timeout=5.0)


def _check(s: TestServer) -> object:
    s.check()
    return None


def _request_count(s: TestServer) -> object:
    return s.request_count


def _reset(s: TestServer) -> object:
    s.reset()
    return None


def _assert_request(s: TestServer) -> object:
    return s.assert_request(timeout=5.0)


CALLS: dict[str, Callable[[TestServer], object]] = {
    "history": _history,
    "set_response": _set_response,
    "add_response": _add_response,
    "wait_request": _wait_request,
    "check": _check,
    "request_count": _request_count,
    "reset": _reset,
    "assert_request": _assert_request,
}


@pytest.mark.parametrize("first_call", list(CALLS))
def test_killed_child_raises_server_died_at_the_next_call(first_call: str) -> None:
    server = TestServer(mode="subprocess").start()
    try:
        port = server.port
        pid = child_pid(server)
        os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(ServerDiedError) as info:
            CALLS[first_call](server)
        assert time.monotonic() - started < 1.0  # a bound on a hang, not a benchmark
        died = info.value
        assert died.returncode == -signal.SIGKILL
        assert isinstance(died.stderr_tail, str)
        assert str(pid) in str(died)
        # every later call but stop() raises it again
        for name, call in CALLS.items():
            with pytest.raises(ServerDiedError) as again:
                call(server)
            assert again.value.returncode == -signal.SIGKILL, name
        # stop() works, and a fresh start() serves again, on the same port
        server.stop()
        server.start()
        assert server.port == port
        assert child_pid(server) != pid
        server.set_response("data", b"alive again")
        assert get(server) == b"alive again"
        assert server.request_count == 1
    finally:
        server.stop()


def test_child_that_writes_to_stderr_then_exits_3_is_reported_with_both(
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = TestServer(mode="subprocess").start()
    try:
        server.set_response("callback", child_callbacks.die_with_message)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            get(server, "/die")
        started = time.monotonic()
        with pytest.raises(ServerDiedError) as info:
            server.history  # noqa: B018
        assert time.monotonic() - started < 1.0
        assert info.value.returncode == 3
        assert DYING_WORDS in info.value.stderr_tail
        assert DYING_WORDS in str(info.value)
        with pytest.raises(ServerDiedError):
            server.check()
    finally:
        server.stop()
    # what the child said is also copied to our stderr (never silently lost)
    assert DYING_WORDS in capfd.readouterr().err


def test_child_that_dies_unnoticed_is_reported_after_stop() -> None:
    # The child dies while no call is in flight; stop() must not raise, but
    # the death must not pass silently: later calls (the check() that a
    # with-block makes on exit) raise ServerDiedError.
    server = TestServer(mode="subprocess").start()
    pid = child_pid(server)
    os.kill(pid, signal.SIGKILL)
    assert wait_for_exit(pid, 5.0)
    server.stop()
    with pytest.raises(ServerDiedError) as info:
        server.check()
    assert info.value.returncode == -signal.SIGKILL
    server.stop()  # still idempotent


def test_with_block_exit_reports_a_child_that_died() -> None:
    server = TestServer(mode="subprocess")
    with pytest.raises(ServerDiedError) as info, server:  # noqa: PT012
        server.set_response("callback", child_callbacks.die_with_message)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            get(server, "/die")
    assert info.value.returncode == 3


# -- no orphans -----------------------------------------------------------------


def test_child_exits_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, str(HELPERS / "parent_that_dies.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert parent.stdin is not None
    assert parent.stdout is not None
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), parent.stderr.read() if parent.stderr else line
        grandchild = int(line)
        pidfd = os.pidfd_open(grandchild)  # opened while it surely runs
        try:
            assert not select.select([pidfd], [], [], 0)[0], "the child exited too early"
            parent.kill()
            parent.wait(5)
            readable, _, _ = select.select([pidfd], [], [], 2.0)
            assert readable, f"the server child {grandchild} outlived its killed parent by 2 s"
        finally:
            os.close(pidfd)
    finally:
        parent.kill()
        parent.wait()
        parent.stdin.close()
        parent.stdout.close()
        if parent.stderr is not None:
            parent.stderr.close()


# -- the child's stderr ---------------------------------------------------------


def test_child_stderr_is_copied_to_our_stderr_at_stop(
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = TestServer(mode="subprocess").start()
    try:
        server.set_response("callback", child_callbacks.note_on_stderr)
        assert get(server) == b"noted"
        assert server.wait_request().path == "/"
    finally:
        server.stop()
    assert NOTE in capfd.readouterr().err


# -- what cannot cross the process boundary ---------------------------------------


def _closure_factory() -> Callable[[Any], bytes]:
    body = b"closure"

    def answer(request: Any) -> bytes:
        return body

    return answer


def _main_function() -> Callable[[Any], bytes]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec("def answer(request):\n    return b'main'\n", namespace)
    function: Callable[[Any], bytes] = namespace["answer"]
    assert function.__module__ == "__main__"
    return function


UNPORTABLE: dict[str, tuple[Callable[[], Callable[[Any], bytes]], str]] = {
    "lambda": (lambda: lambda request: b"lambda", "lambda"),
    "closure": (_closure_factory, "closure"),
    "__main__": (_main_function, "__main__"),
}


def _assert_explains(message: str, why: str) -> None:
    assert why in message
    assert "subprocess mode" in message
    assert "module level" in message  # what to use instead
    assert "importable" in message


@pytest.mark.parametrize("kind", list(UNPORTABLE))
def test_unportable_callback_refused_by_set_response(srv: TestServer, kind: str) -> None:
    make, why = UNPORTABLE[kind]
    with pytest.raises(ValueError, match=r"^set_response: callback ") as info:
        srv.set_response("callback", make())
    _assert_explains(str(info.value), why)
    with pytest.raises(ValueError, match=r"^set_response_once: callback "):
        srv.set_response_once("callback", make())
    assert get(srv) == b""  # nothing was sent to the child


@pytest.mark.parametrize("kind", list(UNPORTABLE))
def test_unportable_callback_refused_by_add_response(srv: TestServer, kind: str) -> None:
    make, why = UNPORTABLE[kind]
    with pytest.raises(ValueError, match=r"^add_response: callback ") as info:
        srv.add_response(Response(callback=make()))
    _assert_explains(str(info.value), why)


def test_unportable_callback_refused_before_start_too() -> None:
    server = TestServer(mode="subprocess")
    with pytest.raises(ValueError, match="lambda"):
        server.set_response("callback", lambda request: b"")
    server.stop()


def test_thread_mode_accepts_a_lambda() -> None:
    with TestServer(mode="thread") as server:
        server.set_response("callback", lambda request: b"from a lambda")
        assert get(server) == b"from a lambda"


def test_matcher_built_with_a_lambda_is_refused(srv: TestServer) -> None:
    matcher = Satisfies(lambda request: True)
    with pytest.raises(ValueError, match=r"^add_response: match ") as info:
        srv.add_response(Response(b"x"), match=matcher)
    assert "pickle" in str(info.value)
    _assert_explains(str(info.value), "Satisfies")
    with pytest.raises(ValueError, match=r"^add_response: path "):
        srv.add_response(Response(b"x"), path=Satisfies(lambda path: True))


def test_matcher_class_defined_in_a_function_is_refused(srv: TestServer) -> None:
    class Local(Satisfies):
        pass

    with pytest.raises(ValueError, match=r"^add_response: match .*closure") as info:
        srv.add_response(Response(b"x"), match=Local(child_callbacks.is_post))
    _assert_explains(str(info.value), "Local")


def test_module_level_matchers_and_callbacks_run_in_the_child(srv: TestServer) -> None:
    srv.add_response(Response(b"post rule"), match=Satisfies(child_callbacks.is_post))
    srv.add_response(Response(callback=child_callbacks.echo_path), path=starts_with("/c"))
    srv.add_response(Response(b"hamcrest path"), path=equal_to("/h"))
    assert requests.post(srv.get_url("/any"), data=b"", timeout=10).content == b"post rule"
    assert get(srv, "/cb") == b"callback:/cb"
    assert get(srv, "/h") == b"hamcrest path"


# -- big frames ---------------------------------------------------------------------


def test_a_20_mib_post_is_recorded_and_read_back(srv: TestServer) -> None:
    body = os.urandom(1024) * (20 * 1024)
    digest = hashlib.sha256(body).hexdigest()
    reply = requests.post(srv.get_url("/upload"), data=body, timeout=30)
    assert reply.status_code == 200
    assert len(srv.wait_request().data) == len(body)
    assert hashlib.sha256(srv.get_request("data")).hexdigest() == digest
    assert hashlib.sha256(srv.history[-1].data).hexdigest() == digest
    srv.stop()  # the final state comes back in one frame too
    assert hashlib.sha256(srv.history[0].data).hexdigest() == digest


# -- state crosses at start and at stop ----------------------------------------------


def test_state_set_before_start_is_served_and_history_read_after_stop() -> None:
    server = TestServer(mode="subprocess")
    server.set_response("data", b"default before start")
    server.set_response("status", 201, method="GET")
    server.set_response_once("data", b"once before start")
    server.add_response(Response(callback=child_callbacks.echo_path), path="/cb", count=None)
    server.add_response(Response(b"by matcher"), match=Satisfies(child_callbacks.is_post))
    try:
        server.start()
        assert get(server, "/a") == b"once before start"
        assert get(server, "/b") == b"default before start"
        assert get(server, "/cb") == b"callback:/cb"
        reply = requests.post(server.get_url("/p"), data=b"payload", timeout=10)
        assert (reply.status_code, reply.content) == (200, b"by matcher")
    finally:
        server.stop()
    assert [r.path for r in server.history] == ["/a", "/b", "/cb", "/p"]
    assert server.request_count == 4
    assert server.get_request("data") == b"payload"
    server.assert_history().has_length(4)
    server.check()


def test_restart_sends_fresh_state_to_a_new_child(srv: TestServer) -> None:
    srv.set_response("data", b"first run")
    assert get(srv) == b"first run"
    port, pid = srv.port, child_pid(srv)
    srv.stop()
    srv.start()
    assert (srv.port, srv.request_count) == (port, 0)
    assert child_pid(srv) != pid
    assert get(srv) == b""


# -- the protocol under concurrency and timeouts ------------------------------------


def test_calls_from_another_thread_are_not_held_up_by_a_pending_wait(srv: TestServer) -> None:
    results: list[object] = []
    waiting = threading.Event()

    def waiter() -> None:
        waiting.set()
        try:
            results.append(srv.wait_requests(1, timeout=10.0))
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    try:
        assert waiting.wait(5.0)
        # In thread mode these calls never wait for the waiter; neither here.
        started = time.monotonic()
        srv.set_response("data", b"set while a wait is pending")
        assert srv.history == []
        assert time.monotonic() - started < 2.0
        assert get(srv, "/wake") == b"set while a wait is pending"
    finally:
        thread.join(15.0)
    assert not thread.is_alive()
    assert len(results) == 1
    history = results[0]
    assert isinstance(history, list), history
    assert [r.path for r in history] == ["/wake"]


@pytest.mark.parametrize("pending", ["a wait", "an await", "both"])
def test_replies_reach_their_own_callers_across_threads(srv: TestServer, pending: str) -> None:
    """Whichever thread reads the socketpair hands each reply to its caller.

    Eight threads read requests by index while a blocking wait (whose thread
    then reads for everyone) and/or an awaiting wait (read for by the helper
    thread) are pending: a reply handed to the wrong caller would show as a
    wrong path, a lost one as a timeout.
    """
    for number in range(20):
        get(srv, f"/{number}")
    failures: list[str] = []
    waits = {"a wait": 1, "an await": 1, "both": 2}[pending]
    ready = threading.Barrier(9 + waits)

    def reader(offset: int) -> None:
        ready.wait(10)
        for call in range(150):
            index = (offset * 7 + call) % 20
            path = srv.get_request("path", index)
            if path != f"/{index}":
                failures.append(f"thread {offset}: request {index} came back as {path}")
            if call % 10 == 0 and len(srv.history) < 20:
                failures.append(f"thread {offset}: a history too short")

    waited: list[object] = []

    def blocking_wait() -> None:
        ready.wait(10)
        waited.append([r.path for r in srv.wait_requests(22, timeout=20.0)])

    def awaiting_wait() -> None:
        async def main() -> list[str]:
            ready.wait(10)
            return [r.path for r in await srv.await_requests(22, timeout=20.0)]

        waited.append(asyncio.run(main()))

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(8)]
    if pending != "an await":
        threads.append(threading.Thread(target=blocking_wait))
    if pending != "a wait":
        threads.append(threading.Thread(target=awaiting_wait))
    for thread in threads:
        thread.start()
    try:
        ready.wait(10)
        for thread in threads[:8]:
            thread.join(60.0)
        assert not any(thread.is_alive() for thread in threads[:8])
        get(srv, "/20")
        get(srv, "/21")
    finally:
        for thread in threads:
            thread.join(30.0)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert waited == [[f"/{n}" for n in range(22)]] * waits


def test_a_late_large_reply_nobody_reads_does_not_stop_the_child(srv: TestServer) -> None:
    """The parent reads only while a call waits; the child must not block on its writes."""

    async def give_up() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(srv.await_requests(1, timeout=30.0), 0.2)

    asyncio.run(give_up())  # the child still waits, and will answer with the history
    big = b"x" * (4 << 20)
    # recorded: the late answer to the wait carries these 4 MiB, and nobody reads it
    assert requests.post(srv.url, data=big, timeout=10).status_code == 200
    assert get(srv, "/still-serving") == b""
    srv.set_response("data", big)  # a large command while that answer is unread
    assert get(srv, "/big") == big
    assert [r.path for r in srv.history] == ["/", "/still-serving", "/big"]


def test_a_command_that_does_not_pickle_registers_nothing(srv: TestServer) -> None:
    backend: Any = srv._backend
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        backend.call(SetResponse("data", lambda: None))
    assert backend._channel._waiting == set()
    srv.set_response("data", b"still in step")
    assert get(srv) == b"still in step"


@pytest.mark.parametrize("where", ["reading", "unpickling"])
def test_an_interrupt_in_the_reading_thread_hands_reading_on(
    srv: TestServer, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    backend: Any = srv._backend
    owner, name = (
        (backend._channel._decoder, "feed")
        if where == "reading"
        else (channel_module, "decode_frame")
    )
    real = getattr(owner, name)

    def interrupted(data: Any) -> Any:
        monkeypatch.setattr(owner, name, real)  # once
        raise KeyboardInterrupt

    monkeypatch.setattr(owner, name, interrupted)
    with pytest.raises(KeyboardInterrupt):
        _ = srv.request_count  # its reply (one whole frame) is dropped with the interrupt
    assert backend._channel._reader is None
    srv.set_response("data", b"after the interrupt")
    assert get(srv) == b"after the interrupt"
    assert srv.request_count == 1


def test_stop_with_a_wait_pending_returns_promptly_and_the_wait_times_out() -> None:
    server = TestServer(mode="subprocess").start()
    results: list[object] = []
    waiting = threading.Event()

    def waiter() -> None:
        waiting.set()
        try:
            results.append(server.wait_requests(1, timeout=3.0))
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    try:
        assert waiting.wait(5.0)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2.0  # not held up by the pending wait
    finally:
        thread.join(15.0)
        server.stop()
    assert not thread.is_alive()
    assert len(results) == 1
    # as in thread mode: no request can come any more, so the wait runs out
    assert isinstance(results[0], WaitTimeoutError), results[0]


def test_late_reply_after_a_call_timeout_is_skipped(
    srv: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = socket.create_server(("127.0.0.1", 0))
    client_result: list[bytes] = []
    srv.set_response("callback", child_callbacks.block_until_released)

    def client() -> None:
        client_result.append(
            get(srv, "/blocked", {"X-Release-Port": str(release.getsockname()[1])})
        )

    thread = threading.Thread(target=client)
    thread.start()
    try:
        release.settimeout(10.0)
        conn, _ = release.accept()  # the child's loop is now blocked in the callback
        with conn:
            monkeypatch.setattr(backend_module, "CALL_TIMEOUT", 0.3)
            with pytest.raises(ServerStateError, match="did not answer within"):
                srv.request_count  # noqa: B018  (its int reply comes late)
            monkeypatch.undo()
            conn.sendall(b"!")
        thread.join(10.0)
        assert client_result == [b"released"]
        # the late int reply is skipped: these calls get their own replies
        history = srv.history
        assert isinstance(history, list)
        assert [r.path for r in history] == ["/blocked"]
        assert srv.request_count == 1
        assert srv.get_request("path") == "/blocked"
    finally:
        thread.join(10.0)
        release.close()


def test_cancelled_await_neither_blocks_the_loop_nor_desyncs_the_protocol(
    srv: TestServer,
) -> None:
    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(srv.await_request(timeout=30.0), 0.2)
        return time.monotonic() - started

    assert asyncio.run(main()) < 2.0  # not held until the 30 s wait ends
    # the child still answers the cancelled wait when a request comes: dropped
    assert get(srv, "/after") == b""
    assert [r.path for r in srv.history] == ["/after"]
    assert srv.wait_request(timeout=5.0).path == "/after"


# -- what the child cannot unpickle -------------------------------------------------


@pytest.fixture
def parent_only_callback() -> Iterator[Callable[[Any], bytes]]:
    """A function that pickles here but whose module the child cannot import.

    This is what a callback defined in a test module looks like under
    ``pytest --import-mode=importlib``.
    """
    module = types.ModuleType("tserver_test_parent_only")
    exec("def answer(request):\n    return b'parent only'\n", module.__dict__)
    sys.modules[module.__name__] = module
    try:
        yield module.answer
    finally:
        del sys.modules[module.__name__]


def test_command_the_child_cannot_unpickle_fails_alone(
    srv: TestServer, parent_only_callback: Callable[[Any], bytes]
) -> None:
    with pytest.raises(ValueError, match="cannot unpickle") as info:
        srv.add_response(Response(callback=parent_only_callback))
    assert "tserver_test_parent_only" in str(info.value)
    # the child is alive and in sync
    srv.set_response("data", b"still serving")
    assert get(srv) == b"still serving"
    assert srv.request_count == 1


def test_state_the_child_cannot_unpickle_is_a_start_error(
    parent_only_callback: Callable[[Any], bytes],
) -> None:
    server = TestServer(mode="subprocess")
    server.set_response("callback", parent_only_callback)
    with pytest.raises(ServerStartError, match="does not unpickle") as info:
        server.start()
    assert "tserver_test_parent_only" in str(info.value)
    assert not server.running
    server.stop()


# -- signals ---------------------------------------------------------------------------


def test_ctrl_c_is_left_to_the_parent(srv: TestServer) -> None:
    # Ctrl-C in a terminal signals the whole process group, child included;
    # the child ignores it and the parent's stop() ends it.
    os.kill(child_pid(srv), signal.SIGINT)
    srv.set_response("data", b"alive")
    assert get(srv) == b"alive"
    assert srv.request_count == 1


def test_stop_kills_a_child_blocked_in_a_callback_and_says_so() -> None:
    server = TestServer(mode="subprocess").start()
    release = socket.create_server(("127.0.0.1", 0))
    errors: list[BaseException] = []

    def client() -> None:
        try:
            get(server, "/stuck", {"X-Release-Port": str(release.getsockname()[1])})
        except (http.client.HTTPException, OSError) as exc:
            errors.append(exc)

    server.set_response("callback", child_callbacks.block_until_released)
    thread = threading.Thread(target=client)
    thread.start()
    try:
        release.settimeout(10.0)
        conn, _ = release.accept()  # the child's loop is blocked in the callback
        with conn:  # held open: the callback stays blocked through stop()
            started = time.monotonic()
            server.stop(timeout=0.5)
            assert time.monotonic() - started < 5.0
        with pytest.raises(ServerDiedError, match=r"did not answer stop\(\) within 0.5s"):
            server.check()
    finally:
        server.stop()
        thread.join(10.0)
        release.close()
    assert len(errors) == 1
