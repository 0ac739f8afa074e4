"""Module-level objects for the ``test_cover_*`` tests that cross to subprocess mode's child.

Each one pickles by reference (``helpers.cover_callbacks.NAME``) and imports
in the child, which gets the parent's ``sys.path``.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from tserver import Request

#: What `exit_while_unpickled` writes to the child's stderr before it exits.
EXIT_WORDS = "tserver-test: an object set before start() ends the child as it is unpickled"

#: The exit status of a child that unpickles an `ExitsWhenUnpickled`.
EXIT_STATUS = 7


def exit_while_unpickled(status: int) -> None:
    """Say so on stderr, then ``sys.exit(status)``: as an import that exits would."""
    sys.stderr.write(EXIT_WORDS + "\n")
    sys.stderr.flush()
    sys.exit(status)


class ExitsWhenUnpickled:
    """A callback that pickles, but whose unpickling ends the process.

    It stands for a callback whose module calls ``sys.exit()`` (or fails
    harder) when the child imports it.
    """

    def __call__(self, request: Request) -> bytes:
        return b"never served"

    def __reduce__(self) -> tuple[Any, ...]:
        return (exit_while_unpickled, (EXIT_STATUS,))


class LocksOnceCalled:
    """A callback that keeps a lock once it has answered: it no longer pickles.

    It pickles when it is set (the child gets it), but not when the child
    sends its final state back at ``stop()``.
    """

    def __call__(self, request: Request) -> bytes:
        self.lock = threading.Lock()
        return b"called"
