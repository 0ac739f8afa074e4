"""Module-level callbacks, matchers and client helpers for the response tests.

Everything a rule carries (``callback=``, ``path=``, ``match=``) must be
importable by the child process of subprocess mode, so it lives here, at
module level, and not in the test functions (a lambda or a closure is refused
with `ValueError` in that mode).  The child gets the parent's ``sys.path``,
and pytest puts ``tests/`` on it through the rootdir ``conftest.py``.

The second half is a tiny uniform front to the real HTTP clients the tests
use (urllib, requests, httpx, http.client), so a test can be parametrized
over clients and still read the status, every header (repeats kept) and the
body the same way.
"""

from __future__ import annotations

import time
from typing import Any

from hamcrest.core.base_matcher import BaseMatcher
from hamcrest.core.description import Description

from tserver import Request, Response

# -- callbacks ----------------------------------------------------------------

#: Exceptions raised by `raise_value_error`, newest last (thread mode only:
#: in subprocess mode they are raised in the child).
RAISED: list[BaseException] = []


def echo_text(request: Request) -> str:
    """Answer ``<METHOD> <path> <body>`` as a str."""
    return f"{request.method} {request.path} {request.text}"


def echo_bytes(request: Request) -> bytes:
    """Answer the request body back as bytes."""
    return b"got:" + request.data


def created_json(request: Request) -> Response:
    """Answer a full `Response`: 201, JSON, a Location header."""
    return Response(
        status=201,
        json={"path": request.path, "q": request.args.get("q")},
        headers={"Location": "/items/7", "X-Callback": "yes"},
    )


async def async_echo(request: Request) -> Response:
    """An ``async def`` callback: awaits once, then answers."""
    import asyncio

    await asyncio.sleep(0)
    return Response(f"async {request.path}", headers={"X-Async": "1"})


def stream_or_fault(request: Request) -> Response:
    """A `Response` with a fault for ``/fault``, else a chunked stream."""
    if request.path == "/fault":
        return Response(fault="close")
    return Response(chunks=[b"part1,", b"part2"], status=206)


def raise_value_error(request: Request) -> Response:
    """Raise a `ValueError` naming the path."""
    exc = ValueError(f"boom from callback on {request.path}")
    RAISED.append(exc)
    raise exc


class UnpicklableError(Exception):
    """An exception that does not survive a pickle round trip."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")
        self.code = code


def raise_unpicklable(request: Request) -> Response:
    """Raise an exception that cannot cross the process boundary."""
    raise UnpicklableError(42, "cannot cross")


def return_wrong_type(request: Request) -> Any:
    """Return neither a `Response`, bytes nor str."""
    return 12345


def received_delay(request: Request) -> str:
    """How many seconds passed between recording the request and this call."""
    return f"{time.time() - request.received_at:.6f}"


# -- matchers -----------------------------------------------------------------


class HasBodyLongerThan(BaseMatcher[Request]):
    """A hand-written matcher over `Request` (picklable: module-level class)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def _matches(self, item: Request) -> bool:
        return len(item.data) > self.size

    def describe_to(self, description: Description) -> None:
        description.append_text(f"a request with a body longer than {self.size} bytes")

    def describe_mismatch(self, item: Request, mismatch_description: Description) -> None:
        mismatch_description.append_text(f"body was {len(item.data)} bytes")


class RaisingMatcher(BaseMatcher[Request]):
    """A matcher that fails with an exception instead of an answer."""

    def _matches(self, item: Request) -> bool:
        raise RuntimeError("matcher exploded")

    def describe_to(self, description: Description) -> None:
        description.append_text("a matcher that raises")
