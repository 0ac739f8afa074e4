"""Shared fixtures: the server mode, and a guard against leaked resources.

Every test runs under `leak_guard`: it fails when the test leaves an open
file descriptor, a thread or a child process behind, and (through the
``filterwarnings = error`` setting) on any `ResourceWarning`.
"""

from __future__ import annotations

import gc
import os
import threading
import unittest
from collections.abc import Iterator

import pytest
from helpers.cli import Cli
from helpers.processes import wait_for_exit

from tserver import TestServer, _spare

#: The modes every behaviour test runs in.
MODES = ["thread", "subprocess"]


def _open_fds() -> set[int]:
    try:
        return {int(fd) for fd in os.listdir("/proc/self/fd")}
    except FileNotFoundError:  # not Linux: no fd accounting
        return set()


def _fd_target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def _children() -> set[int]:
    """Our child processes, and the server children a warm spare forked for us."""
    try:
        with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
            ours = {int(pid) for pid in f.read().split()}
    except FileNotFoundError:
        ours = set()
    return ours | _spare.forked_pids()


#: Worker threads that an async runtime keeps for reuse, idle, after a test:
#: trio's thread cache (trio resolves host names there) ends them itself.
_RUNTIME_THREADS = ("Trio thread ",)


def _leaks(
    request: pytest.FixtureRequest,
    fds: set[int],
    threads: set[threading.Thread],
    children: set[int],
) -> tuple[list[threading.Thread], set[int], set[int]]:
    new_threads = [
        t
        for t in threading.enumerate()
        if t not in threads and t.is_alive() and not t.name.startswith(_RUNTIME_THREADS)
    ]
    new_fds = _open_fds() - fds
    cls = getattr(request.node, "cls", None)
    if {"tserver", "tserver_subprocess"} & set(request.fixturenames) or (
        cls is not None and issubclass(cls, unittest.TestCase) and "setUpClass" in vars(cls)
    ):
        # The plugin's session servers and a unittest class's server (started
        # before this guard, by scope) keep their keep-alive connections across
        # tests, and close a client's side as they notice it: no fd accounting.
        new_fds = set()
    return new_threads, new_fds, _children() - children


@pytest.fixture(autouse=True)
def leak_guard(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if it leaks an fd, a thread or a child process.

    Lazy: the garbage collector runs only when something looks leaked (an
    object that is garbage but not yet collected may still hold an fd), not
    twice per test, which was most of the suite's time.
    """
    if request.node.get_closest_marker("no_leak_guard"):
        yield
        return
    fds = _open_fds()
    threads = set(threading.enumerate())
    children = _children()
    yield
    # stop() joins threads, reaps children and closes sockets synchronously,
    # so everything must be gone by now: no waiting, no retries.
    new_threads, new_fds, new_children = _leaks(request, fds, threads, children)
    if new_threads or new_fds or new_children:
        # pytest keeps the test's log records until its teardown ends; a
        # client's "retrying after ..." record holds the exception, its
        # frames and so the broken socket. The text is already captured.
        caplog.get_records("call").clear()
        gc.collect()  # garbage that holds an fd: collected now, it warns (an error)
        new_threads, new_fds, new_children = _leaks(request, fds, threads, children)
    problems = []
    if new_threads:
        problems.append(f"leaked threads: {[t.name for t in new_threads]}")
    if new_fds:
        problems.append(f"leaked fds: {[(fd, _fd_target(fd)) for fd in sorted(new_fds)]}")
    if new_children:
        problems.append(f"leaked child processes: {sorted(new_children)}")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish() -> None:
    """Let this process's warm spare go, and wait for it to exit.

    It saves its coverage data as it exits: now, before the coverage of the
    run is combined, rather than when this process has ended.
    """
    spare = _spare._current
    if spare is None or spare.pid is None:
        return
    spare.retire()
    wait_for_exit(spare.pid)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each server mode in turn."""
    return str(request.param)


@pytest.fixture
def server(mode: str) -> Iterator[TestServer]:
    """A started server in the current mode, stopped (not checked) after the test."""
    srv = TestServer(mode=mode).start()
    try:
        yield srv
    finally:
        srv.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slow tests first.

    Under ``-n auto`` a long test that starts last runs alone while the other
    workers sit idle; started first, it runs beside everything else.  The
    order is the same in every worker (xdist requires it).
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def cli() -> Iterator[list[Cli]]:
    """Start ``Cli(...)`` objects (``helpers.cli.start``); all are reaped at teardown."""
    started: list[Cli] = []
    yield started
    for proc in started:
        proc.close()
