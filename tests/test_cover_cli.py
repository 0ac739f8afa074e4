"""``tserver serve`` where the other CLI tests do not go: host names, a closed pipe, a terminal.

Each test runs ``python -m tserver serve ...`` as a real child process
(measured by coverage through its ``subprocess`` patch) and talks HTTP to it.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import IO

import pytest
from helpers.clients import fetch

#: Seconds to wait for a line or an exit; generous for a loaded CI machine.
TIMEOUT = 20.0


def read_line(pipe: IO[str]) -> str:
    """The next line of *pipe*, failing the test if none comes within `TIMEOUT`."""
    readable, _, _ = select.select([pipe], [], [], TIMEOUT)
    assert readable, f"no output within {TIMEOUT}s"
    return pipe.readline().rstrip("\n")


def serving_url(pipe: IO[str]) -> str:
    first = read_line(pipe)
    match = re.fullmatch(r"Serving on (\S+)", first)
    assert match, f"first line {first!r} is not 'Serving on <URL>'"
    return match.group(1)


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[str]]]:
    """Start ``python -m tserver`` processes by appending; each is reaped at teardown."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(TIMEOUT)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def serve(
    spawn: list[subprocess.Popen[str]], *args: str, **kwargs: object
) -> subprocess.Popen[str]:
    options: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    options.update(kwargs)
    proc: subprocess.Popen[str] = subprocess.Popen(
        [sys.executable, "-m", "tserver", "serve", *args],
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        **options,  # type: ignore[call-overload]
    )
    spawn.append(proc)
    return proc


def test_localhost_is_loopback_and_serves_without_a_warning(
    spawn: list[subprocess.Popen[str]],
) -> None:
    proc = serve(spawn, "--address", "localhost", "--data", "local")
    assert proc.stdout is not None
    assert proc.stderr is not None
    url = serving_url(proc.stdout)
    assert url.startswith("http://localhost:")
    assert fetch("http.client", url).body == b"local"
    assert read_line(proc.stdout).startswith("GET / -> 200")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(TIMEOUT) == 0
    assert proc.stderr.read() == ""  # no "not a loopback address" warning


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")
def test_a_signal_the_kernel_hands_to_the_server_thread_still_stops_serve(
    spawn: list[subprocess.Popen[str]],
) -> None:
    import ctypes

    proc = serve(spawn, "--address", "127.0.0.1")
    assert proc.stdout is not None
    serving_url(proc.stdout)  # serving: its main thread waits on its loop, nothing to wake it
    others = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task") if int(t) != proc.pid]
    assert others  # the server's thread
    tgkill = getattr(ctypes.CDLL(None, use_errno=True), "tgkill", None)  # glibc 2.30+
    if tgkill is None:
        pytest.skip("no tgkill() in this C library")
    assert tgkill(proc.pid, others[0], signal.SIGINT) == 0  # to that thread alone
    assert proc.wait(TIMEOUT) == 0


def test_a_host_name_that_does_not_resolve_warns_then_exits_1_naming_it(
    spawn: list[subprocess.Popen[str]],
) -> None:
    proc = serve(spawn, "--address", "no-such-host.invalid")
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert proc.wait(TIMEOUT) == 1
    err = proc.stderr.read()
    assert "warning: no-such-host.invalid is not a loopback address" in err
    assert "tserver: error: cannot listen on no-such-host.invalid port 0" in err
    assert proc.stdout.read() == ""


def test_a_reader_that_goes_away_ends_serve_with_status_1_and_no_traceback(
    spawn: list[subprocess.Popen[str]],
) -> None:
    # as `tserver serve | head -1` does once it has its line
    proc = serve(spawn)
    assert proc.stdout is not None
    assert proc.stderr is not None
    url = serving_url(proc.stdout)
    proc.stdout.close()
    fetch("http.client", url)  # its line cannot be printed: nobody reads any more
    assert proc.wait(TIMEOUT) == 1
    assert "Traceback" not in proc.stderr.read()


def test_on_a_terminal_serve_says_how_to_stop(spawn: list[subprocess.Popen[str]]) -> None:
    controller, terminal = pty.openpty()
    try:
        proc = serve(spawn, stderr=terminal)
        assert proc.stdout is not None
        serving_url(proc.stdout)
        readable, _, _ = select.select([controller], [], [], TIMEOUT)
        assert readable
        assert b"Press Ctrl+C to stop." in os.read(controller, 1024)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
        assert read_line(proc.stdout) == "Stopped by SIGTERM after 0 requests."
    finally:
        os.close(terminal)
        os.close(controller)
