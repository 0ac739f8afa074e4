"""Watching processes the tests start or that tserver starts: no polling."""

from __future__ import annotations

import os
import select


def wait_for_exit(pid: int, timeout: float = 10.0) -> bool:
    """True once process *pid* has ended (an event: its pidfd becomes readable)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True  # already gone (and reaped)
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(pidfd)
