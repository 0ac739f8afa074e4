"""Module-level callbacks and matchers that run in the child process.

Each one is picklable by reference (``helpers.child_callbacks.NAME``), which
is what subprocess mode requires of anything it sends to the child.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
from collections.abc import Callable

from hamcrest.core.base_matcher import BaseMatcher
from hamcrest.core.description import Description

from tserver import Request

#: What `die_with_message` writes to the child's stderr before exiting.
DYING_WORDS = "tserver-test: the child is about to exit with status 3"

#: The message of the `asyncio.CancelledError` that `raise_cancelled` lets escape.
CANCELLED_MESSAGE = "tserver-test: a CancelledError raised by the callback itself"

#: What `note_on_stderr` writes to the child's stderr (it keeps serving).
NOTE = "tserver-test: a note written by the child to its stderr"


def die_with_message(request: Request) -> bytes:
    """Write `DYING_WORDS` to stderr, then end the process at once with status 3."""
    sys.stderr.write(DYING_WORDS + "\n")
    sys.stderr.flush()
    os._exit(3)


def note_on_stderr(request: Request) -> bytes:
    """Write `NOTE` to stderr and answer ``noted``."""
    sys.stderr.write(NOTE + "\n")
    sys.stderr.flush()
    return b"noted"


def report_pid(request: Request) -> str:
    """Answer the pid of the process that runs the callback."""
    return str(os.getpid())


def raise_cancelled(request: Request) -> bytes:
    """Let `asyncio.CancelledError` escape, as a callback's own cancelled await would."""
    raise asyncio.CancelledError(CANCELLED_MESSAGE)


async def raise_cancelled_async(request: Request) -> bytes:
    """The coroutine form of `raise_cancelled`: the error escapes after an await."""
    await asyncio.sleep(0)
    raise asyncio.CancelledError(CANCELLED_MESSAGE)


def echo_path(request: Request) -> str:
    """Answer ``callback:<path>``."""
    return f"callback:{request.path}"


def block_until_released(request: Request) -> bytes:
    """Block the child's event loop until the test releases it.

    Connects to the port named by the ``X-Release-Port`` header (a listening
    socket of the test), then blocks in ``recv`` until the test sends one
    byte (or closes).  While it blocks, the child answers no control call.
    """
    port = int(request.headers["X-Release-Port"])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.recv(1)
    return b"released"


class Satisfies(BaseMatcher[Request]):
    """A matcher over `Request` that delegates to a predicate.

    Picklable only when the predicate is (a lambda is not): used to show
    that subprocess mode refuses a matcher built with a lambda.
    """

    def __init__(self, predicate: Callable[[Request], bool]) -> None:
        self.predicate = predicate

    def _matches(self, item: Request) -> bool:
        return bool(self.predicate(item))

    def describe_to(self, description: Description) -> None:
        description.append_text(f"a request satisfying {self.predicate!r}")


def is_post(request: Request) -> bool:
    """A module-level predicate for `Satisfies` (picklable)."""
    return request.method == "POST"


class LocksOnceMatched(BaseMatcher[Request]):
    """A matcher that keeps a lock once it has matched: it no longer pickles.

    It pickles when it is given (the child gets it), but not when the child
    sends its final state back at ``stop()``.
    """

    def _matches(self, item: Request) -> bool:
        self.lock = threading.Lock()
        return True

    def describe_to(self, description: Description) -> None:
        description.append_text("any request (and keep a lock)")


def fork_and_answer(request: Request) -> str:
    """Fork the child process; both copies answer with the pid of the forked copy.

    The forked copy goes on running the child's event loop, as a careless
    callback's fork would: the test checks that it does not outlive the server.
    """
    pid = os.fork()
    return str(pid or os.getpid())


async def wait_then_fail_on_cancel(request: Request) -> bytes:
    """Wait (for ``stop()`` to cancel it), then fail while cleaning up."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        await asyncio.sleep(0.05)
        raise RuntimeError("cleanup after cancel failed") from None
    return b"never"


async def sleep_long(request: Request) -> bytes:
    """Wait for 30 seconds (long past any test's end)."""
    await asyncio.sleep(30)
    return b"never"


def report_world(request: Request) -> bytes:
    """What a child process inherits from its parent's world, as JSON.

    The environment, the working directory, ``sys.path``, the executable,
    the SIGINT disposition, the descriptors 0-2 (as what they point at), the
    umask, blocked and ignored signals (of the main thread, which serves),
    the resource limits and the niceness.
    """
    import json
    import resource
    import signal

    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)

    def target(fd: int) -> str:
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return "closed"

    return json.dumps(
        {
            "env": dict(os.environ),
            "cwd": os.getcwd(),
            "sys.path": sys.path,
            "executable": sys.executable,
            "sigint": str(signal.getsignal(signal.SIGINT)),
            "fds": [target(fd) for fd in (0, 1, 2)],
            "status": {k: status[k].strip() for k in ("Umask", "SigBlk", "SigIgn")},
            "limits": {
                name: resource.getrlimit(getattr(resource, name))
                for name in dir(resource)
                if name.startswith("RLIMIT_")
            },
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
        }
    ).encode()


def say_on_stdout(request: Request) -> bytes:
    """Print a line to the child's stdout and answer ``said``."""
    print("tserver-test: a line on the child's stdout", flush=True)
    return b"said"
