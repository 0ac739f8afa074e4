"""A parent process for the spare's lifetime tests: start subprocess servers, then block.

Run as ``python spare_parent.py N [fork]``.  It starts N subprocess-mode
servers one after another (the first one's child is fresh and starts the
warm spare, the others are forked by it), keeps them running, and prints
one line: the pid of the spare, then the pids of the servers' children.
With ``fork`` it then forks (no thread runs in it); the copy starts two
servers of its own and prints ``copy`` and the parent of the second one's
child.  Then the parent blocks reading stdin until the test kills it or
closes stdin.
"""

from __future__ import annotations

import os
import sys

from tserver import TestServer


def parent_of(pid: int) -> int:
    """The parent of process *pid*."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def main() -> None:
    """Start the servers, report the pids, block until killed."""
    servers = [TestServer(mode="subprocess").start() for _ in range(int(sys.argv[1]))]
    pids = [srv._backend.pid for srv in servers]  # type: ignore[union-attr]
    print(parent_of(pids[-1]), *pids, flush=True)
    if sys.argv[2:] == ["fork"]:
        copy = os.fork()
        if copy == 0:
            TestServer(mode="subprocess").start().stop()
            with TestServer(mode="subprocess") as srv:
                print("copy", parent_of(srv._backend.pid), flush=True)  # type: ignore[union-attr]
            os._exit(0)  # not the parent's exit handlers: its servers are not ours
        os.waitpid(copy, 0)
    sys.stdin.buffer.read()  # blocks until the test kills us or closes stdin
    for srv in servers:
        srv.stop()


if __name__ == "__main__":
    main()
