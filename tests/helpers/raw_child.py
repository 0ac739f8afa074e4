"""`RawChild`: subprocess mode's child process, driven frame by frame.

The tests of the child's own protocol (``python -m tserver._child FD``)
start it as `tserver._childproc` does, with one end of a socketpair, and
speak the frames of `tserver._wire` to it directly: no `TestServer`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tserver._wire import FrameDecoder, StartChild, decode_frame, encode_frame

#: The directory that holds the ``tserver`` package (the child's ``PYTHONPATH``).
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def start_child_frame() -> StartChild:
    """A `StartChild` for a plain HTTP server on 127.0.0.1, any port, no state."""
    return StartChild(
        address="127.0.0.1",
        port=0,
        tls_cert=None,
        tls_key=None,
        strict=False,
        history_limit=None,
        max_body_size=1 << 20,
        sys_path=tuple(sys.path),
        state=None,
    )


class RawChild:
    """A started ``python -m tserver._child FD``; `close` reaps it and closes everything."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p
        )
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tserver._child", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self._decoder = FrameDecoder()
        self._frames: list[tuple[int, bool, bytes]] = []

    def send(self, message: object, seq: int) -> None:
        """Send one frame holding *message*."""
        self.sock.sendall(encode_frame(message, seq))

    def reply(self, timeout: float = 10.0) -> tuple[int, object]:
        """The next reply frame: ``(seq, message)`` (`TimeoutError` if none comes)."""
        self.sock.settimeout(timeout)
        while not self._frames:
            data = self.sock.recv(1 << 16)
            if not data:
                raise EOFError("the child closed its end")
            self._frames += self._decoder.feed(data)
        seq, _, payload = self._frames.pop(0)
        return seq, decode_frame(payload)

    def finish(self, timeout: float = 10.0) -> tuple[int, str]:
        """Close our end, wait for the child to exit: its status and stderr."""
        self.sock.close()
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err.decode("utf-8", "replace")

    def close(self) -> None:
        """Kill the child if it still runs, reap it, close the socket and the pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10.0)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.sock.close()
