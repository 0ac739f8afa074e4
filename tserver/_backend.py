"""The interface shared by the three ways of hosting a recorder.

A backend owns the event loop and the sockets; the `~tserver.TestServer`
facade owns argument checking and the public API.  Every backend takes the
same `~tserver._protocol` commands, so the facade never branches on the mode
for a setting or a read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._protocol import Command
    from ._request import Request

__all__ = ["Backend", "ServeConfig"]


class ServeConfig:
    """Where and how to serve: the arguments a backend needs to start."""

    __slots__ = (
        "address",
        "history_limit",
        "max_body_size",
        "port",
        "startup_timeout",
        "strict",
        "tls",
    )

    def __init__(
        self,
        address: str,
        port: int,
        *,
        strict: bool,
        history_limit: int | None,
        max_body_size: int,
        startup_timeout: float,
        tls: Any = None,
    ) -> None:
        self.address = address
        self.port = port
        self.strict = strict
        self.history_limit = history_limit
        self.max_body_size = max_body_size
        self.startup_timeout = startup_timeout
        self.tls = tls


class Backend(Protocol):
    """start / stop / call / close, plus the two forms of waiting."""

    def start(self) -> int:
        """Bind, start serving, return the bound port once accepting."""

    def stop(self, timeout: float) -> None:
        """Stop serving, close every socket, join or reap what was started."""

    def call(self, command: Command) -> Any:
        """Apply one command to the recorder and return its result."""

    def wait(self, count: int, timeout: float) -> list[Request]:
        """Block until *count* requests arrived; the history snapshot."""

    async def wait_async(self, count: int, timeout: float) -> list[Request]:
        """`wait` without blocking the caller's event loop."""

    def close(self) -> None:
        """Release what `stop` may have left (idempotent)."""
