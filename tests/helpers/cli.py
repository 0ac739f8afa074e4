"""Running ``python -m tserver ...`` for real: its output line by line, requests to it.

`Cli` starts the command with its stdout and stderr read by threads into
queues (``get(timeout=...)`` is the only guard against a hang: no sleeps);
the ``cli`` fixture of ``conftest.py`` reaps every one started with `start`.
"""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
from urllib.parse import urljoin

import pytest

from helpers import clients

#: Seconds to wait for one line; generous for a loaded CI machine.
LINE_TIMEOUT = 20.0
_EOF = None


class Cli:
    """A running ``python -m tserver ...`` with its output in two queues."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tserver", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.stdout: queue.Queue[str | None] = queue.Queue()
        self.stderr: queue.Queue[str | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=_pump, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=_pump, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def line(self) -> str:
        """The next stdout line, without its newline (fails after LINE_TIMEOUT)."""
        try:
            line = self.stdout.get(timeout=LINE_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no output line within {LINE_TIMEOUT}s; stderr: {self.drain_stderr()!r}")
        assert line is not _EOF, f"stdout closed early; stderr: {self.drain_stderr()!r}"
        return line.rstrip("\n")

    def serving_url(self) -> str:
        """Read the first line, which must be ``Serving on <URL>``; the URL."""
        first = self.line()
        match = re.fullmatch(r"Serving on (\S+)", first)
        assert match, f"first line {first!r} is not 'Serving on <URL>'"
        return match.group(1)

    def stop(self, signum: int) -> int:
        """Send *signum*, wait for the exit status."""
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=LINE_TIMEOUT)

    def rest(self, which: queue.Queue[str | None]) -> list[str]:
        """The remaining lines of a stream up to its end (the child has exited)."""
        lines: list[str] = []
        while (line := which.get(timeout=LINE_TIMEOUT)) is not _EOF:
            lines.append(line.rstrip("\n"))
        return lines

    def drain_stderr(self) -> str:
        """What stderr holds so far (non-blocking)."""
        chunks: list[str | None] = []
        while True:
            try:
                chunk = self.stderr.get_nowait()
            except queue.Empty:
                return "".join(c for c in chunks if c)
            chunks.append(chunk or "")

    def close(self) -> None:
        """Kill if still running, reap, join the readers, close the pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=LINE_TIMEOUT)
        for reader in self._readers:
            reader.join(LINE_TIMEOUT)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def _pump(pipe: object, into: queue.Queue[str | None]) -> None:
    assert hasattr(pipe, "readline")
    for line in iter(pipe.readline, ""):
        into.put(line)
    into.put(_EOF)


def start(started: list[Cli], *args: str) -> Cli:
    proc = Cli(*args)
    started.append(proc)
    return proc


def send(
    url: str,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request with `http.client` (never through a proxy)."""
    reply = clients.fetch(
        "http.client",
        urljoin(url, target),
        method,
        data=body,
        headers=headers,
        timeout=LINE_TIMEOUT,
    )
    return reply.status, reply.headers, reply.body


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tserver", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
