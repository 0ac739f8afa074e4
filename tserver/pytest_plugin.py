"""pytest fixtures: ``tserver``, ``tserver_subprocess`` and ``tserver_factory``.

Registered through the ``pytest11`` entry point, so installing tserver makes
them available; this module uses only the public `tserver` API.

Layering: one server per mode and per session (a session-scoped fixture
starts it on port 0 and stops it when the session ends), handed to each test
by a function-scoped fixture that calls `~tserver.TestServer.reset` before
the test.  Every server a test used is checked (`~tserver.TestServer.check`)
right after the test function returns, inside the test's own ``call`` phase,
so an exception swallowed by a response callback, or in strict mode a
request no rule matched or a rule not used up, makes *that test* FAILED,
with the server's report as the failure message.  When the test has failed
already, the report is attached to it as a "tserver" section instead.
Problems that appear later, during fixture teardown, are reported as an
ERROR at teardown.

Under pytest-xdist every worker process is a session of its own, with its
own servers on their own free ports: nothing is shared between workers.

.. versionadded:: 1.0
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from tserver import ServerDiedError, TestServer, TestServerError

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

__all__ = ["ServerFactory", "tserver", "tserver_factory", "tserver_subprocess"]

#: The values of ``--tserver-mode``.
MODES = ("thread", "subprocess")


class ServerFactory(Protocol):
    """The type of the ``tserver_factory`` fixture, for annotating tests."""

    def __call__(
        self,
        address: str = "127.0.0.1",
        port: int = 0,
        mode: str | None = None,
        **options: Any,
    ) -> TestServer:
        """Make and start a `~tserver.TestServer`; *options* are its keywords."""


class _Watched:
    """A server a test uses: checked after the test function, again at teardown."""

    __slots__ = ("label", "reported", "server")

    def __init__(self, server: TestServer, label: str) -> None:
        self.server = server
        self.label = label
        self.reported = False  # its problems were raised or shown already


_WATCHED = pytest.StashKey[list[_Watched]]()


def _watch(item: pytest.Item, server: TestServer, label: str) -> _Watched:
    watched = _Watched(server, label)
    item.stash.setdefault(_WATCHED, []).append(watched)
    return watched


# -- options and hooks ---------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--tserver-mode`` and ``--tserver-har``."""
    group = parser.getgroup("tserver", "tserver: a recording HTTP test server")
    group.addoption(
        "--tserver-mode",
        dest="tserver_mode",
        choices=MODES,
        default="thread",
        help="the mode of the 'tserver' fixture and the default mode of "
        "'tserver_factory' servers: thread (default) or subprocess",
    )
    group.addoption(
        "--tserver-har",
        dest="tserver_har",
        metavar="DIR",
        default=None,
        help="write DIR/<test id>.har, the traffic of each server a failed test used (HAR 1.2)",
    )


_HAR_WRITTEN = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """With ``--tserver-har``: a failed test's traffic goes to a HAR file the report names."""
    report = yield
    folder = item.config.getoption("tserver_har")
    watched = item.stash.get(_WATCHED, [])
    if folder and report.failed and watched and not item.stash.get(_HAR_WRITTEN, False):
        item.stash[_HAR_WRITTEN] = True
        lines = _write_hars(folder, item, watched)
        longrepr: Any = report.longrepr
        if hasattr(longrepr, "addsection"):  # the traceback's repr: shown at its end
            longrepr.addsection("tserver", "\n".join(lines))
        else:
            report.sections.append(("tserver", "\n".join(lines)))
    return report


def _write_hars(folder: str, item: pytest.Item, watched: list[_Watched]) -> list[str]:
    """One HAR file per server *item* used (``<test id>.har``, numbered if several); a line each."""
    os.makedirs(folder, exist_ok=True)
    # readable, and unique: two ids that read alike ("a/b", "a b") differ in the hash
    digest = hashlib.sha1(item.nodeid.encode(), usedforsecurity=False).hexdigest()[:8]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid).strip("_")[:180] + f"-{digest}"
    paths = []
    for number, one in enumerate(watched):
        name = f"{stem}.har" if len(watched) == 1 else f"{stem}-{number + 1}.har"
        path = os.path.join(folder, name)
        try:
            one.server.save_har(path)
        except (TestServerError, OSError) as exc:
            paths.append(f"{one.label}: no HAR written ({exc})")
            continue
        paths.append(f"{one.label}: HAR of the traffic written to {path}")
    return paths


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Check the servers the test used as soon as the test function returns."""
    __tracebackhide__ = True
    watched = item.stash.setdefault(_WATCHED, [])  # the factory adds to it later
    try:
        result = yield
    except BaseException:
        # the test failed by itself: show the servers' problems beside it
        for label, exc in _problems(watched, "after the test failed"):
            item.add_report_section("call", "tserver", f"{label}: {exc}")
        raise
    _raise(_problems(watched, "after the test returned"))
    return result


def _problems(watched: list[_Watched], when: str) -> list[tuple[str, BaseException]]:
    """Check each server not reported yet; the failures, each marked reported."""
    __tracebackhide__ = True
    failures: list[tuple[str, BaseException]] = []
    for one in watched:
        if one.reported:
            continue
        try:
            one.server.check()
        except (AssertionError, TestServerError) as exc:
            one.reported = True
            if hasattr(exc, "add_note"):  # Python 3.11+
                exc.add_note(f"(checked by the {one.label} {when})")
            failures.append((one.label, exc))
    return failures


def _raise(failures: list[tuple[str, BaseException]]) -> None:
    """Raise the one failure, or an `AssertionError` listing several."""
    __tracebackhide__ = True
    if len(failures) == 1:
        raise failures[0][1]
    if failures:
        text = "\n\n".join(f"{label}: {exc}" for label, exc in failures)
        raise AssertionError(text) from failures[0][1]


# -- the shared servers ----------------------------------------------------------


@pytest.fixture(scope="session")
def _tserver_session(pytestconfig: pytest.Config) -> Iterator[TestServer]:
    """The session's server behind ``tserver`` (mode from ``--tserver-mode``)."""
    server = TestServer(mode=pytestconfig.getoption("tserver_mode")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _tserver_subprocess_session() -> Iterator[TestServer]:
    """The session's server behind ``tserver_subprocess``."""
    server = TestServer(mode="subprocess").start()
    yield server
    server.stop()


def _hand_out(
    request: pytest.FixtureRequest, server: TestServer, label: str
) -> Iterator[TestServer]:
    """Reset *server* for this test, hand it out, check it at teardown."""
    __tracebackhide__ = True
    if not server.running:  # a previous test stopped it: serve again, same port
        server.start()
    else:
        try:
            server.reset()
        except ServerDiedError:  # the child of a subprocess server died earlier
            server.stop()
            server.start()
    watched = _watch(request.node, server, label)
    yield server
    _raise(_problems([watched], "at teardown"))


@pytest.fixture
def tserver(request: pytest.FixtureRequest, _tserver_session: TestServer) -> Iterator[TestServer]:
    """The session's shared `~tserver.TestServer`, reset for this test.

    Thread mode by default, subprocess mode with ``--tserver-mode=subprocess``.
    Reset before the test; checked right after it (a problem fails the test).
    """
    yield from _hand_out(request, _tserver_session, "'tserver' fixture")


@pytest.fixture
def tserver_subprocess(
    request: pytest.FixtureRequest, _tserver_subprocess_session: TestServer
) -> Iterator[TestServer]:
    """The session's shared subprocess-mode `~tserver.TestServer`, reset for this test."""
    yield from _hand_out(request, _tserver_subprocess_session, "'tserver_subprocess' fixture")


@pytest.fixture
def tserver_factory(request: pytest.FixtureRequest) -> Iterator[ServerFactory]:
    """Make started servers of any options; each is checked and stopped after the test.

    ``tserver_factory(**kwargs)`` takes the arguments of `~tserver.TestServer`;
    ``mode`` defaults to ``--tserver-mode`` (``"thread"``).
    """
    default_mode = str(request.config.getoption("tserver_mode"))
    made: list[_Watched] = []

    def make(
        address: str = "127.0.0.1",
        port: int = 0,
        mode: str | None = None,
        **options: Any,
    ) -> TestServer:
        server = TestServer(address, port, default_mode if mode is None else mode, **options)
        server.start()
        made.append(_watch(request.node, server, f"tserver_factory server #{len(made) + 1}"))
        return server

    yield make
    __tracebackhide__ = True
    for one in reversed(made):
        one.server.stop()
    _raise(_problems(made, "at teardown"))
