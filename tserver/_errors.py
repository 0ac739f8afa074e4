"""The tserver error hierarchy.

Every error the library raises on its own behalf derives from
`TestServerError`.  Wrong arguments are plain `ValueError` / `TypeError` and
failed expectations plain `AssertionError`, so that pytest reports them as
test failures rather than as errors of the library.
"""

from __future__ import annotations

__all__ = [
    "NoRequestError",
    "ServerDiedError",
    "ServerStartError",
    "ServerStateError",
    "TestServerError",
    "WaitTimeoutError",
]


class TestServerError(Exception):
    """Base class of every error raised by tserver itself."""

    __test__ = False  # not a pytest test class, despite its name


class ServerStartError(TestServerError):
    """The server could not start, for example because its port is in use."""


class ServerStateError(TestServerError):
    """A call does not fit the server's current state.

    For example: `~tserver.TestServer.start` on a running server,
    `~tserver.TestServer.set_response` on a strict server, or a blocking wait
    made on the server's own event loop thread.
    """


class ServerDiedError(TestServerError):
    """The child process of a ``mode="subprocess"`` server has died.

    .. attribute:: returncode

       The child's exit status (negative: killed by that signal), or `None`
       when it could not be collected.

    .. attribute:: stderr_tail

       The last lines the child wrote to its standard error.

    Every later call on the server but `~tserver.TestServer.stop` raises the
    same error again.
    """

    def __init__(self, message: str, returncode: int | None, stderr_tail: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.returncode, self.stderr_tail))


class NoRequestError(TestServerError, LookupError, AssertionError):
    """No request was recorded at the index asked for.

    Also an `AssertionError`: in a test, a request that never came is a
    failed expectation, and pytest reports it as a failure.
    """


class WaitTimeoutError(TestServerError, TimeoutError):
    """A wait for requests ran out of time.

    .. attribute:: expected

       How many requests were awaited (counted since the last reset).

    .. attribute:: received

       How many had arrived when the wait gave up.
    """

    def __init__(self, message: str, expected: int, received: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.received = received

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.expected, self.received))


# Tracebacks and reprs name the class where users import it from: tserver.
for _error in (
    TestServerError,
    ServerStartError,
    ServerStateError,
    ServerDiedError,
    NoRequestError,
    WaitTimeoutError,
):
    _error.__module__ = "tserver"
del _error
