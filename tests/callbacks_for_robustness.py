"""Module-level callbacks for the robustness tests, importable in the child.

Subprocess mode pickles a callback by reference, so everything here lives
at module level in a module on ``sys.path`` (pytest puts ``tests/`` there,
and the child gets the parent's ``sys.path``).

Two ways to hold a callback still until the test lets it go:

- in thread mode, the module-level `ENTERED` and `RELEASE` events (the
  callback runs in the test process);
- in any mode, a *gate*: a listening socket of the test whose port the
  request names in ``X-Gate-Port``.  The callback connects to it, sends the
  pid of the process it runs in, and blocks until the test closes its end.
"""

from __future__ import annotations

import os
import signal
import socket
import threading

from tserver import Request

#: Set by `hang` when it starts blocking (thread mode: same process as the test).
ENTERED = threading.Event()

#: Set by the test to let `hang` return (thread mode).
RELEASE = threading.Event()

#: The longest any callback here blocks, whatever the test does (a bound on a hang).
MAX_BLOCK = 60.0

#: What `raise_value_error` raises, so a test can look for it.
BOOM = "boom from a robustness callback"


def echo_path(request: Request) -> str:
    """Answer the request's path (so a pipelined answer shows whose it is)."""
    return request.path


def hang(request: Request) -> bytes:
    """Block the server's event loop until released, then answer ``released``.

    With an ``X-Gate-Port`` header: connect to that port on 127.0.0.1, send
    our pid, and block until the test closes the connection.  Without it:
    set `ENTERED` and wait for `RELEASE`.  Either way at most `MAX_BLOCK`
    seconds.
    """
    port = request.headers.get("X-Gate-Port")
    if port is None:
        ENTERED.set()
        RELEASE.wait(MAX_BLOCK)
        return b"released"
    with socket.create_connection(("127.0.0.1", int(port)), timeout=MAX_BLOCK) as gate:
        gate.sendall(str(os.getpid()).encode() + b"\n")
        gate.recv(1)  # returns b"" when the test closes its end
    return b"released"


def raise_value_error(request: Request) -> bytes:
    """Raise a `ValueError` (an ordinary exception) naming the path."""
    raise ValueError(f"{BOOM} at {request.path}")


def fail_the_test(request: Request) -> bytes:
    """Call ``pytest.fail``: it raises a `BaseException`, not an `Exception`."""
    import pytest

    pytest.fail(f"failed from a callback at {request.path}")


def exit_by_system_exit(request: Request) -> bytes:
    """Raise `SystemExit` (what ``sys.exit()`` raises) inside the callback."""
    raise SystemExit(5)


def kill_own_process(request: Request) -> bytes:
    """SIGKILL the process the callback runs in (subprocess mode only!)."""
    os.kill(os.getpid(), signal.SIGKILL)
    return b"unreachable"  # pragma: no cover


def exit_own_process(request: Request) -> bytes:
    """End the process the callback runs in with status 4, at once (subprocess mode only!)."""
    os._exit(4)


def report_pid(request: Request) -> str:
    """Answer the pid of the process the callback runs in."""
    return str(os.getpid())


def touch(path: str) -> None:
    """Create the file *path*: what unpickling a `Tripwire` would do."""
    with open(path, "w") as marker:
        marker.write("unpickled\n")


class Tripwire:
    """An object whose unpickling creates a file: proof that something unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return touch, (self.path,)
