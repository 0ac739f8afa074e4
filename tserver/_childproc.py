"""The child process of subprocess mode as the parent sees it: spawned, reaped, explained.

`ChildProcess` starts ``sys.executable -m tserver._child FD`` with one end of
the socketpair (or has the warm spare of `tserver._spare` fork one), keeps
the child's stderr in an unlinked temporary file, and turns its death into
a `ServerDiedError` carrying the exit status and the tail of that stderr.
Whatever the child wrote is copied to our own stderr when the file is
released, so nothing it said is lost.  No Tornado here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
from typing import IO

from . import _spare
from ._errors import ServerDiedError, ServerStartError

__all__ = ["ChildProcess"]

#: How much of the end of the child's stderr a `ServerDiedError` quotes.
STDERR_TAIL = 4000


def _spawn(channel: socket.socket, stderr: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start a fresh child with *channel* as an inherited fd (the one POSIX-only spot)."""
    fd = channel.fileno()
    return subprocess.Popen(
        [sys.executable, "-m", "tserver._child", str(fd)],
        pass_fds=(fd,),
        stdin=subprocess.DEVNULL,
        stderr=stderr,
        env=_spare.child_env(),
    )


class ChildProcess:
    """One started child: its `subprocess.Popen`, its stderr, and how it died.

    ``died`` is set by the first `reap` and never changes after.
    """

    def __init__(self, *, spare: bool = True, timeout: float = 10.0) -> None:
        self._stderr: IO[bytes] | None = tempfile.TemporaryFile(prefix="tserver-child-stderr-")
        self._lock = threading.Lock()  # the stderr file, and building `died`
        self.died: ServerDiedError | None = None
        ours, theirs = socket.socketpair()
        try:
            # half the start's time at most: a fresh child must still fit in the rest
            forked = _spare.claim(theirs, self._stderr.fileno(), timeout / 2) if spare else None
            if forked is None and spare:  # a claim the spare got late must find this pair gone
                ours.close()
                theirs.close()
                ours, theirs = socket.socketpair()
            self.proc: _spare.Process = forked or _spawn(theirs, self._stderr)
        except OSError as exc:
            ours.close()
            self.release_stderr()
            raise ServerStartError(f"cannot start the server child process: {exc}") from exc
        except BaseException:
            ours.close()
            self.release_stderr()
            raise
        finally:
            theirs.close()
        #: Our end of the socketpair (the child holds the other).
        self.channel = ours

    def kill(self) -> None:
        """Send SIGKILL (reaped by `wait` or `reap`)."""
        self.proc.kill()

    def wait(self, timeout: float) -> None:
        """Reap the child within *timeout* seconds, else kill and reap it."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def reap(self, how: str | None = None) -> ServerDiedError:
        """Reap the child (killed after a second) and say how it died, once."""
        with self._lock:
            if self.died is None:
                try:
                    returncode = self.proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    returncode = self.proc.wait()
                tail = self._stderr_tail()
                self.died = ServerDiedError(
                    f"the tserver child process (pid {self.proc.pid}) {how or 'died'} "
                    + (
                        f"with exit status {returncode}"
                        if returncode is not None
                        else "with an exit status nobody could collect"
                    )
                    + (
                        f"; its stderr ends with:\n{tail}"
                        if tail
                        else " and wrote nothing to stderr"
                    ),
                    returncode,
                    tail,
                )
            return self.died

    def _stderr_tail(self) -> str:
        stream = self._stderr
        if stream is None:
            return ""
        stream.flush()
        size = stream.seek(0, os.SEEK_END)
        stream.seek(max(0, size - STDERR_TAIL))
        return stream.read().decode("utf-8", "replace")

    def release_stderr(self) -> None:
        """Copy what the child wrote to our stderr (never lose it); close the file."""
        with self._lock:  # not while reap() reads its tail
            stream, self._stderr = self._stderr, None
            if stream is None:
                return
            with stream:
                stream.seek(0)
                text = stream.read()
            if text:
                sys.stderr.write(text.decode("utf-8", "replace"))
                sys.stderr.flush()
