"""A parent process for the orphan test: start a subprocess-mode server, then block.

Run as ``python parent_that_dies.py``.  It prints the pid of the server's
child process on one line, then blocks reading stdin until the test kills it
(or closes stdin).  The test checks that the child exits by itself once this
parent is gone.
"""

from __future__ import annotations

import sys

from tserver import TestServer


def main() -> None:
    """Start the server, report the child's pid, block until killed."""
    srv = TestServer(mode="subprocess").start()
    print(srv._backend.pid, flush=True)  # type: ignore[union-attr]
    sys.stdin.buffer.read()  # blocks until the test kills us or closes stdin
    srv.stop()


if __name__ == "__main__":
    main()
