"""The pytest plugin's shared subprocess server after its child died, through `pytester`."""

from __future__ import annotations

import pytest

# Preloaded for pytester's in-process runs (see tests/test_pytest_plugin.py):
# without it a run would import fresh copies of tserver's lazily imported modules.
import tserver._assertions
import tserver._backend_subprocess
import tserver._backend_thread
import tserver.matchers  # noqa: F401

TESTS = """
import os
import select
import signal
import urllib.request


def test_kills_the_child(tserver_subprocess):
    pid = tserver_subprocess._backend.pid
    os.kill(pid, signal.SIGKILL)
    pidfd = os.pidfd_open(pid)
    try:
        assert select.select([pidfd], [], [], 10.0)[0]
    finally:
        os.close(pidfd)


def test_gets_a_fresh_child_on_the_same_port(tserver_subprocess):
    tserver_subprocess.set_response("data", b"fresh")
    with urllib.request.urlopen(tserver_subprocess.url, timeout=10) as resp:
        assert resp.read() == b"fresh"
    assert tserver_subprocess.request_count == 1
"""


def test_a_shared_subprocess_server_whose_child_died_serves_the_next_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_child_dies=TESTS)
    result = pytester.runpytest("-p", "no:randomly")
    # the test that killed it fails (its server died); the next one gets a new child
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*ServerDiedError: the tserver child process (pid *) died with exit status -9*",
            "E*(checked by the 'tserver_subprocess' fixture after the test returned)",
            "FAILED test_child_dies.py::test_kills_the_child - *",
        ]
    )
