"""The host's book of held exchanges (``Response(hold=...)``, SPEC §10).

A handler that serves a held response opens a `HeldSlot` here and waits on
it for the test's actions; the test reaches the slot through a `Held`
handle, whose actions the host carries out on its loop (`HeldSlot.push`).

Threads: slots are opened, acted on and closed on the loop thread alone.
The book's own lists (held now, not yet claimed, waiting tests) are also
read by other threads (`listing`, `claim`), under the book's lock, which is
never held across a wait or a wake-up.  No Tornado: a slot's waiting is an
`asyncio` future of the loop that serves it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import select
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._held import Held
from ._waiting import Pending

if TYPE_CHECKING:
    from ._held import HeldKey
    from ._request import Request

__all__ = ["Action", "HeldBook", "HeldSlot", "peer_gone"]

#: What the test asked: ``("release", Response | None)``, ``("send", bytes |
#: Event)`` or ``("fail", fault)``.
Action = tuple[str, Any]
#: Numbers of held exchanges: one sequence per process, so that a handle
#: from an earlier server never names an exchange of a later one.
_NUMBERS = itertools.count()


class HeldSlot:
    """One held exchange, as its handler waits on it (loop thread only)."""

    __slots__ = ("_actions", "_book", "_waiter", "abort", "gone", "handle", "open")

    def __init__(self, book: HeldBook, handle: Held, gone: Callable[[], bool]) -> None:
        self._book = book
        self.handle = handle
        #: Whether the client has closed its end (asked of the kernel, any thread).
        self.gone = gone
        #: Closes the connection at once (``"close"`` or ``"reset"``), even
        #: while the handler is still writing what an earlier action sent.
        self.abort: Callable[[str], None] | None = None
        self._actions: deque[Action] = deque()
        self._waiter: asyncio.Future[None] | None = None
        #: Whether it takes actions still: not released, failed or gone.
        self.open = True

    def push(self, action: Action) -> bool:
        """Queue the test's *action* for the handler; `False` if it is held no more.

        A client that has closed its end counts as gone now, even before
        the loop has read its end of stream: the test that closed it and
        then acts sees ``False`` every time.
        """
        if self.open and self.gone():
            self.end()
        if not self.open:
            return False
        self._actions.append(action)
        if action[0] != "send":  # released or failed: the end of holding
            self.end()
        if action[0] == "fail" and action[1] in ("close", "reset") and self.abort is not None:
            self.abort(action[1])
        self._wake()
        return True

    def end(self) -> None:
        """It is held no more (released, failed, or its client has gone)."""
        if self.open:
            self.open = False
            self._book.drop(self)
        self._wake()

    async def next(self) -> Action | None:
        """The next action, once the test acts; `None` once it ended with none left."""
        while not self._actions:
            if not self.open:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._actions.popleft()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class HeldBook:
    """The exchanges held now, and those no `wait_held` has returned yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[HeldKey, HeldSlot] = {}
        self._unclaimed: deque[Held] = deque()
        self._waiters: deque[Pending[Held]] = deque()

    def open(
        self, request: Request, hold: bool | str, event_stream: bool, gone: Callable[[], bool]
    ) -> HeldSlot:
        """Hold the answer to *request* (loop thread); the oldest waiting test gets it.

        *gone* tells whether its client has closed the connection.
        """
        handle = Held((os.getpid(), next(_NUMBERS)), request, hold, event_stream)
        slot = HeldSlot(self, handle, gone)
        with self._lock:
            self._live[handle.key] = slot
            waiter = self._waiters.popleft() if self._waiters else None
            if waiter is None:
                self._unclaimed.append(handle)
        if waiter is not None:
            waiter.set_result(handle)
        return slot

    def drop(self, slot: HeldSlot) -> None:
        """*slot* is held no more: `listing` leaves it out."""
        with self._lock:
            self._live.pop(slot.handle.key, None)

    def slot(self, key: HeldKey) -> HeldSlot | None:
        """The slot of *key* while it is held."""
        with self._lock:
            return self._live.get(key)

    def listing(self) -> list[Held]:
        """The exchanges held now, oldest first, but those whose client has gone (any thread)."""
        with self._lock:
            slots = list(self._live.values())
        return [slot.handle for slot in slots if not slot.gone()]

    def claim(self) -> tuple[Pending[Held], Callable[[], bool]]:
        """The oldest exchange no earlier claim returned, now or when one is held; a cancel.

        The cancel function withdraws a claim still waiting, and says
        whether it did (`False`: the exchange is being delivered).
        """
        pending: Pending[Held] = Pending()
        with self._lock:
            handle = self._unclaimed.popleft() if self._unclaimed else None
            if handle is None:
                self._waiters.append(pending)
        if handle is not None:
            pending.set_result(handle)
            return pending, _nothing

        def cancel() -> bool:
            with self._lock:
                if pending in self._waiters:
                    self._waiters.remove(pending)
                    return True
            return False

        return pending, cancel

    def unclaim(self, handle: Held) -> None:
        """Give back *handle*, which a claim took but nobody received (a cancelled wait).

        It goes first to a claim waiting now, else to the front of the line,
        while it is held; an exchange held no more is dropped.
        """
        with self._lock:
            if handle.key not in self._live:
                return
            waiter = self._waiters.popleft() if self._waiters else None
            if waiter is None:
                self._unclaimed.appendleft(handle)
        if waiter is not None:
            waiter.set_result(handle)

    def forget(self) -> list[HeldSlot]:
        """Empty the book (a reset): the slots held now, for the caller to close."""
        with self._lock:
            slots = list(self._live.values())
            self._unclaimed.clear()
        return slots

    def abandon_waiters(self, error: BaseException) -> None:
        """End every waiting claim with *error*: nothing more will be held."""
        with self._lock:
            waiters, self._waiters = self._waiters, deque()
        for pending in waiters:
            pending.set_error(error)


def peer_gone(sock: Any) -> bool:
    """Whether the peer of *sock* has closed or reset its end (`None`: closed here).

    The kernel knows as soon as the FIN arrives, before any read of it
    (``POLLRDHUP``, Linux); elsewhere only an error or a hang-up tells.
    """
    if sock is None:
        return True
    try:
        fd = sock.fileno()
    except (OSError, ValueError):
        return True
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, _HANGUP)
    try:
        return bool(poller.poll(0))
    except OSError:
        return True


#: The events that say a peer has gone.
_HANGUP = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR


def _nothing() -> bool:
    """A cancel function with nothing to cancel (the exchange is there)."""
    return False
