"""`Pending`: a result that another thread delivers, waited for blocking or awaiting.

Every wait of tserver is one of these.  The loop side completes it: the
recorder once enough requests have arrived (thread and inline modes), or the
subprocess channel once the child's reply is read.  The caller then waits in
one of two forms, written once here:

- `Pending.wait` blocks the calling thread on a `threading.Event`;
- `Pending.wait_async` suspends the calling task of whatever event loop runs
  it: asyncio (and Tornado, which runs on asyncio) or trio (as under anyio's
  trio backend), found the way ``sniffio`` finds it.  The completing thread
  hands the wake-up to that loop with its thread-safe call.

A `Pending` completes once; later completions are ignored and say so by
returning `False`.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Pending"]

T = TypeVar("T")


class Pending(Generic[T]):
    """A value or an error that arrives later, from any thread.

    Example::

        >>> pending = Pending()
        >>> pending.wait(0.0)
        False
        >>> threading.Thread(target=pending.set_result, args=(42,)).start()
        >>> pending.wait(5.0), pending.result()
        (True, 42)
    """

    __slots__ = ("_callbacks", "_error", "_event", "_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._value: Any = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        """Whether a result or an error has arrived."""
        return self._event.is_set()

    def set_result(self, value: T) -> bool:
        """Deliver *value*; `False` if something was delivered already."""
        return self._complete(value, None)

    def set_error(self, error: BaseException) -> bool:
        """Deliver *error*, raised by `result`; `False` if something was delivered already."""
        return self._complete(None, error)

    def _complete(self, value: Any, error: BaseException | None) -> bool:
        with self._lock:
            if self._event.is_set():
                return False
            self._value, self._error = value, error
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()
        return True

    def add_done_callback(self, callback: Callable[[], None]) -> None:
        """Call *callback* (in the completing thread) once done, or now if done already."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def result(self) -> T:
        """The value delivered, or raise the error delivered (call once `done`)."""
        assert self._event.is_set(), "Pending.result() before it is done"
        if self._error is not None:
            raise self._error
        value: T = self._value
        return value

    def wait(self, timeout: float | None) -> bool:
        """Block until done or *timeout* seconds passed; whether it is done."""
        return self._event.wait(timeout)

    async def wait_async(self, timeout: float | None) -> bool:
        """`wait` that suspends the calling task instead of blocking its thread."""
        if self._event.is_set():
            return True
        if _in_trio():
            return await self._wait_trio(timeout)
        return await self._wait_asyncio(timeout)

    async def _wait_asyncio(self, timeout: float | None) -> bool:
        loop = asyncio.get_running_loop()
        arrived: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            # the waiting loop may have given up, and closed, just before
            try:
                loop.call_soon_threadsafe(_resolve, arrived)
            except RuntimeError:
                pass

        self.add_done_callback(wake)
        try:
            await asyncio.wait_for(asyncio.shield(arrived), timeout)
        except asyncio.TimeoutError:
            pass
        return self._event.is_set()

    async def _wait_trio(self, timeout: float | None) -> bool:
        import trio

        token = trio.lowlevel.current_trio_token()
        arrived = trio.Event()

        def wake() -> None:
            try:
                token.run_sync_soon(arrived.set)
            except trio.RunFinishedError:
                pass

        self.add_done_callback(wake)
        with trio.move_on_after(float("inf") if timeout is None else timeout):
            await arrived.wait()
        return self._event.is_set()


def _in_trio() -> bool:
    """Whether the running task is trio's (as ``sniffio`` decides, without it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        trio = sys.modules.get("trio")
        if trio is None:
            return False
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            return False
        return True
    return False


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
