"""Awaitable waits on a local `Recorder` (thread, inline and stopped servers)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._recorder import Recorder
    from ._request import Request

__all__ = ["wait_async"]


async def wait_async(recorder: Recorder, count: int, timeout: float) -> list[Request]:
    """Wait, without blocking the running loop, until *count* requests arrived.

    The recorder wakes the waiter from whichever thread records the request;
    the wake-up is handed to this loop with ``call_soon_threadsafe``.
    """
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        # The recording thread may pick this waiter just before the wait
        # gave up and its loop closed: then there is no one left to wake.
        if not loop.is_closed():
            try:
                loop.call_soon_threadsafe(_resolve, arrived)
            except RuntimeError:  # closed in between
                pass

    cancel = recorder.add_waiter(count, wake)
    if cancel is not None:
        try:
            await asyncio.wait_for(asyncio.shield(arrived), timeout)
        except asyncio.TimeoutError:
            raise recorder.timeout_error(count, timeout) from None
        finally:
            cancel()
    return recorder.wait(count, 0.0)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
