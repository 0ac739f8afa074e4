"""Robustness, round two: limits of the process and of subprocess mode's child.

Each test pins one defect of issue 15 that needs a process of its own or the
child's internals: running out of file descriptors (3), a final state that
does not pickle (4), a history of many megabytes (5), an interrupt in the
middle of a command (8), a callback that forks (13) and a stopped child (14).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests
from helpers import child_callbacks
from helpers.clients import get as fetch
from helpers.processes import wait_for_exit

from tserver import Response, ServerDiedError, TestServer

ROOT = Path(__file__).resolve().parent.parent


def _child_pid(srv: TestServer) -> int:
    pid = srv._backend.pid  # type: ignore[attr-defined]  # tests may look at the child
    assert isinstance(pid, int)
    return pid


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- 3: out of file descriptors ------------------------------------------------------

_FD_STARVED = textwrap.dedent(
    """
    import os, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # the server may not raise it
    from tserver import TestServer
    srv = TestServer(mode=sys.argv[1]).start()
    srv.set_response("data", b"served")
    print(srv.port, getattr(srv._backend, "pid", None) or os.getpid(), flush=True)
    sys.stdin.readline()  # the test says when to stop
    srv.stop()
    print(srv.request_count, flush=True)
    """
)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux")
@pytest.mark.parametrize("mode", ["thread", "subprocess"])
def test_running_out_of_descriptors_backs_off_quietly_and_serves_again(mode: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _FD_STARVED, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    idle: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        assert proc.stderr is not None
        port, server_pid = map(int, proc.stdout.readline().split())
        # the server's process has 64 descriptors: these exhaust them
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(100)]
        before = _cpu_seconds(server_pid)
        window = 1.5
        time.sleep(window)  # a measurement window, not a synchronisation
        spent = _cpu_seconds(server_pid) - before
        # spinning on an always-ready socket burns a whole core
        assert spent < 0.3 * window, f"the server used {spent:.2f}s of CPU in {window}s"
        for sock in idle:
            sock.close()
        idle = []
        # descriptors are free again: a new request is served
        answer = requests.get(f"http://127.0.0.1:{port}/after", timeout=10)
        assert answer.content == b"served"
        proc.stdin.write(b"stop\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert int(out) >= 1
        assert b"Too many open files" not in err
        assert len(err) < 2000, err[-2000:]  # quiet: no log flood
    finally:
        for sock in idle:
            sock.close()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_the_soft_descriptor_limit_is_raised_where_allowed() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with TestServer():
        raised, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert raised >= soft
    if hard != resource.RLIM_INFINITY:
        assert raised == hard


# -- 4: a final state that does not pickle --------------------------------------------


def test_a_final_state_that_does_not_pickle_keeps_the_rest_and_says_what() -> None:
    srv = TestServer(mode="subprocess").start()
    srv.add_response(Response(b"matched"), match=child_callbacks.LocksOnceMatched(), count=None)
    assert fetch(srv, "/a") == (200, b"matched")
    with pytest.warns(RuntimeWarning, match=r"rule #0 .*lock.*described"):
        srv.stop()
    assert not srv.running
    assert [r.path for r in srv.history] == ["/a"]  # every other part came back
    srv.check()  # nothing went wrong while serving


# -- 5: a history of many megabytes ----------------------------------------------------


def test_a_history_of_many_pieces_reads_back_whole() -> None:
    body = os.urandom(1 << 20)
    with TestServer(mode="subprocess", max_body_size=1 << 30) as srv:
        for n in range(40):  # 40 MiB: more than two pieces of the wire
            assert requests.post(srv.get_url(f"/{n}"), data=body, timeout=30).status_code == 200
        history = srv.history
        assert [r.path for r in history] == [f"/{n}" for n in range(40)]
        assert all(r.data == body for r in history)
        assert len(srv.wait_requests(40, timeout=10)) == 40
    # stop() brought the same state back in pieces too
    assert len(srv.history) == 40
    assert srv.history[-1].data == body


# -- 8: an interrupt in the middle of a command -------------------------------------------


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_an_interrupted_command_is_sent_whole_and_the_channel_stays_in_step() -> None:
    """Ctrl-C (or a test timeout's signal) in the middle of a big command.

    The child's loop is blocked in a callback, so the parent's send of a big
    ``set_response`` stalls once the socket's buffer is full; a ``SIGALRM``
    whose handler raises `KeyboardInterrupt` arrives there.  Its arrival is
    seen at C level, through the signal wake-up fd, by a thread that then
    releases the child.  The command must go out whole, the interrupt come
    after it: a half-sent frame would leave every later call reading garbage.
    """
    big = b"x" * (8 << 20)
    release = socket.create_server(("127.0.0.1", 0))
    wake_read, wake_write = socket.socketpair()
    wake_write.setblocking(False)
    blocked: list[tuple[int, bytes]] = []
    with TestServer(mode="subprocess") as srv:
        srv.add_response(Response(callback=child_callbacks.block_until_released), path="/block")
        port = release.getsockname()[1]
        client = threading.Thread(
            target=lambda: blocked.append(
                fetch_with_headers(srv, "/block", {"X-Release-Port": str(port)})
            )
        )
        client.start()
        release.settimeout(10.0)
        conn, _ = release.accept()  # the child's loop is blocked in the callback now

        def release_on_signal() -> None:
            readable, _, _ = select.select([wake_read], [], [], 10.0)
            assert readable, "the signal never came"
            conn.sendall(b"!")  # the child reads again

        releaser = threading.Thread(target=release_on_signal)
        releaser.start()

        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGALRM, interrupt)
        old_wakeup = signal.set_wakeup_fd(wake_write.fileno())
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(KeyboardInterrupt):
                srv.set_response("data", big)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.set_wakeup_fd(old_wakeup)
            signal.signal(signal.SIGALRM, previous)
            releaser.join(10.0)
            client.join(10.0)
            for sock in (conn, release, wake_read, wake_write):
                sock.close()
        assert blocked == [(200, b"released")]
        assert fetch(srv, "/big") == (200, big)  # the command arrived whole
        srv.set_response("data", b"in step")
        assert fetch(srv, "/after") == (200, b"in step")
        assert [r.path for r in srv.history] == ["/block", "/big", "/after"]


def fetch_with_headers(srv: TestServer, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    answer = requests.get(srv.get_url(path), headers=headers, timeout=30)
    return answer.status_code, answer.content


# -- 13: a callback that forks ----------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux")
def test_a_process_forked_by_a_callback_does_not_outlive_the_server() -> None:
    with TestServer(mode="subprocess") as srv:
        srv.add_response(Response(callback=child_callbacks.fork_and_answer), path="/fork")
        status, body = fetch(srv, "/fork")
        assert status == 200
        forked = int(body)
        # the child still answers its own commands (the copy took none of them;
        # connections the copy may still accept before it ends are its own)
        for n in range(20):
            srv.set_response("data", f"command {n}".encode())
            assert srv.request_count == 1
        assert [r.path for r in srv.history] == ["/fork"]
    assert wait_for_exit(forked, 10.0), f"the forked copy {forked} outlived stop()"


# -- 14: a stopped child -------------------------------------------------------------------


def test_stop_bounds_a_stopped_child_and_reports_it() -> None:
    srv = TestServer(mode="subprocess").start()
    pid = _child_pid(srv)
    os.kill(pid, signal.SIGSTOP)
    started = time.monotonic()
    srv.stop(timeout=0.5)
    took = time.monotonic() - started
    assert took < 5.0, f"stop() took {took:.1f}s with timeout=0.5"
    assert wait_for_exit(pid, 5.0)
    with pytest.raises(ServerDiedError, match=r"did not answer stop\(\) within 0.5s"):
        srv.check()
