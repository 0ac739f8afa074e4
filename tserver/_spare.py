"""The warm spare of subprocess mode: a process past its imports that forks server children.

A fresh child (``python -m tserver._child FD``) spends ~100 ms starting an
interpreter and importing Tornado before it can bind.  The spare pays that
once.  It is started as ``python -m tserver._child --spare TOKEN PID``: it
imports everything a server child needs, binds a ``SOCK_SEQPACKET``
listening socket in Linux's abstract namespace (no file), then forks and
lets its first process exit, so that it lives on detached: it is not our
child, holds none of our descriptors between claims, and watches our
process through a pidfd, exiting the moment we do.  Only our process may
use it (``SO_PEERCRED``: the peer's pid must be ours).

A claim connects, sends the new server child's end of its socketpair and
the stderr and stdout it must write to (``SCM_RIGHTS``); the spare forks,
and the forked process runs exactly what a fresh child runs from its first
frame on.  The claim's connection stays open as the handle on that child:
the spare (its parent) writes the child's exit status on it when it exits,
and kills it when asked.  So consecutive subprocess-mode servers each start
in a few milliseconds.

What keeps a claimed child indistinguishable from a fresh one:

- the claim carries this process's environment and working directory as
  they are now, and the forked child takes them on before anything else;
- what acts only as an interpreter starts cannot be taken on later: the
  executable, and the variables of `_AT_START` (``PYTHON*``, ``LD_*``, the
  locale, ``TZ``, coverage's).  A claim compares them with those the spare
  started under, and a spare that no longer matches is retired and replaced;
- the forked child writes to the stderr file and stdout the claim sends, and
  receives ``sys.path`` in its start frame, as a fresh child does (a fresh
  child, too, imports Tornado and tserver before it sees ``sys.path``);
- its exit status reaches `ServerDiedError` as a fresh child's would.

Linux only (abstract sockets, pidfds); elsewhere, and with
``TSERVER_SPARE=0`` or ``TestServer(spare=False)``, every child is a fresh
interpreter.  No Tornado here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import select
import socket
import subprocess
import sys
import threading
import weakref
from typing import Protocol

__all__ = [
    "ENV_SWITCH",
    "ForkedChild",
    "Process",
    "Spare",
    "child_env",
    "claim",
    "enabled",
    "forked_pids",
]

#: The environment variable that turns the spare off for the whole process.
ENV_SWITCH = "TSERVER_SPARE"


class Process(Protocol):
    """What `~tserver._childproc.ChildProcess` needs of a process.

    A `subprocess.Popen` (a fresh child) or a `ForkedChild`.
    """

    @property
    def pid(self) -> int:
        """The process id."""

    def kill(self) -> None:
        """Send SIGKILL."""

    def wait(self, timeout: float | None = None) -> int | None:
        """Reap within *timeout* seconds (`subprocess.TimeoutExpired` if not); the exit status."""


class SpareGone(Exception):
    """The spare did not fork: it died, never started, or did not answer in time."""


def enabled() -> bool:
    """Whether claims may use a spare: Linux, and not ``TSERVER_SPARE=0``."""
    return (
        sys.platform.startswith("linux")
        and os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")
        and hasattr(os, "pidfd_open")
        and hasattr(socket, "send_fds")
    )


def child_env() -> dict[str, str]:
    """The environment of a child: ours, with this package importable first."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    return env


#: Environment variables that act as an interpreter starts (its imports, its
#: locale, its time zone, coverage's start-up): a spare started under other
#: values cannot fork a child a fresh one would equal.  The others reach the
#: forked child with the claim.
_AT_START = ("PYTHON", "LD_", "LC_", "LANG", "TZ", "COVERAGE_")


def _fingerprint() -> tuple[object, ...]:
    """What a spare must share with this process to fork a child a fresh one would equal."""
    return (
        sys.executable,
        sorted((k, v) for k, v in os.environ.items() if k.startswith(_AT_START)),
    )


def _connect(address: bytes, timeout: float) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.settimeout(timeout)
        conn.connect(address)
    except OSError as exc:
        conn.close()
        raise SpareGone(f"cannot reach the spare: {exc}") from None
    return conn


class Spare:
    """One spare: the process that starts it (until it detached), and its address.

    ``proc`` is the first process; it exits once the spare listens and has
    forked itself off, and `ready` reaps it.
    """

    def __init__(self) -> None:
        self.fingerprint = _fingerprint()
        token = secrets.token_hex(8)
        self.address = f"\0tserver-spare-{os.getpid()}-{token}".encode()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tserver._child", "--spare", token, str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # a claimed child writes to the claim's stderr
            env=child_env(),
        )
        self.retired = False

    def ready(self, timeout: float) -> None:
        """Wait until the spare listens (its first process exited with status 0)."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise SpareGone(f"the spare was not ready within {timeout:g}s") from None
        if status != 0:
            raise SpareGone(f"the spare could not start (exit status {status})")

    def fork(self, channel: socket.socket, stderr_fd: int, timeout: float) -> ForkedChild:
        """Have the spare fork a server child on *channel* writing to *stderr_fd*."""
        self.ready(timeout)
        fds = [channel.fileno(), stderr_fd]
        with contextlib.suppress(OSError):
            os.fstat(1)
            fds.append(1)  # our stdout, when we have one (a fresh child inherits it)
        world = b"\0".join(
            [os.getcwdb()]
            + [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in child_env().items()]
        )
        conn = _connect(self.address, timeout)
        try:
            socket.send_fds(conn, [b"fork" + world], fds)
            reply = conn.recv(64)
            if not reply.isdigit():
                raise SpareGone(f"the spare did not fork ({reply!r})")
        except OSError as exc:  # TimeoutError is one
            conn.close()
            raise SpareGone(f"the spare did not fork: {exc}") from None
        except BaseException:
            conn.close()
            raise
        conn.settimeout(None)
        return ForkedChild(int(reply), conn)

    def retire(self) -> None:
        """Fork no more: the spare exits once the children it forked have exited."""
        self.retired = True
        if self.proc.poll() is None:  # still importing: stop it there
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(SpareGone, OSError):  # it may have detached just before
            conn = _connect(self.address, 1.0)
            with conn:
                conn.send(b"retire")

    @property
    def usable(self) -> bool:
        """Not retired, and started in the world we live in now."""
        return not self.retired and self.fingerprint == _fingerprint()


class ForkedChild:
    """A server child the spare forked, known by the connection that asked for it.

    The spare writes the child's exit status on the connection when it has
    reaped it, and kills the child when ``kill`` is written: no pid reuse can
    make either reach another process.
    """

    def __init__(self, pid: int, conn: socket.socket) -> None:
        self._pid = pid
        self._conn = conn
        self._lock = threading.Lock()
        self._collected = False
        self.returncode: int | None = None
        _forked.add(self)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._pid

    @property
    def collected(self) -> bool:
        """Whether its exit status was read (so it is gone)."""
        return self._collected

    def kill(self) -> None:
        """Have the spare send SIGKILL (nothing once the child is collected)."""
        with self._lock:
            if not self._collected:
                with contextlib.suppress(OSError):
                    self._conn.send(b"kill")

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the child to exit (`subprocess.TimeoutExpired` after *timeout*); its status.

        None when the spare went away first (the status is then unknowable).
        The wait holds no lock, so another thread can `kill` meanwhile.
        """
        if self._collected:
            return self.returncode
        poller = select.poll()
        poller.register(self._conn, select.POLLIN)
        if not poller.poll(None if timeout is None else max(0, round(timeout * 1000))):
            raise subprocess.TimeoutExpired(f"tserver child {self._pid}", timeout or 0.0)
        with self._lock:
            if not self._collected:
                try:
                    reply = self._conn.recv(64)
                except OSError:
                    reply = b""
                self.returncode = int(reply) if reply.lstrip(b"-").isdigit() else None
                self._collected = True
                self._conn.close()
        return self.returncode


_lock = threading.Lock()  # _current
_current: Spare | None = None
_forked: weakref.WeakSet[ForkedChild] = weakref.WeakSet()
_owner = os.getpid()


def _spare() -> Spare:
    """The current spare, started or replaced if it cannot serve this claim."""
    global _current
    with _lock:
        current = _current
        if current is None or not current.usable:
            if current is not None:
                current.retire()
            current = _current = Spare()
        return current


def claim(channel: socket.socket, stderr_fd: int, timeout: float) -> ForkedChild | None:
    """A server child forked by the spare on *channel*, or None: start a fresh one instead."""
    if not enabled() or os.getpid() != _owner:
        return None
    try:
        spare = _spare()
    except OSError:
        return None
    try:
        return spare.fork(channel, stderr_fd, timeout)
    except SpareGone:
        with _lock:
            spare.retire()  # dead or stuck: the next claim starts another
        return None


def forked_pids() -> set[int]:
    """Server children forked by a spare whose exit was not collected (for leak checks)."""
    return {child.pid for child in list(_forked) if not child.collected}


def _forget_after_fork() -> None:
    """In a process forked off this one: the spare is not ours, only our parent may use it."""
    global _current, _owner, _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    if _current is not None:
        _current.proc.returncode = 0  # not our child: nothing to reap, nothing to warn about
    _current = None
    _owner = os.getpid()


def _at_exit() -> None:
    """A spare still importing when we exit is stopped there (a ready one watches us and exits)."""
    if _current is not None and os.getpid() == _owner and _current.proc.poll() is None:
        _current.proc.kill()
        _current.proc.wait()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)
