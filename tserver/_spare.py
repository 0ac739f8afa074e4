"""The warm spare of subprocess mode: a process past its imports that forks server children.

A fresh child (``python -m tserver._child FD``) spends ~100 ms starting an
interpreter and importing Tornado before it can bind.  The spare pays that
once.  The first subprocess-mode start of a process starts a fresh child as
always, and starts the spare beside it: ``python -m tserver._child --spare
TOKEN PID``.  That process imports everything a server child needs, binds
a ``SOCK_SEQPACKET`` socket in Linux's abstract namespace (no file), then
forks and lets its first process exit, so that the spare lives on detached:
it is not our child, holds none of our descriptors between claims, and
watches our process through a pidfd, exiting the moment we do.  It listens,
and reports its pid on the pipe that was its stdout: it is ready.

A claim connects, checks that the listener is that pid under our uid
(``SO_PEERCRED``: nobody who took the name over can receive our
environment), and sends the new server child's end of its socketpair, the
stderr and stdout it must write to, and a memfd holding our working
directory, umask, signal mask and environment (``SCM_RIGHTS``).  The spare
checks that the claim comes from our pid, forks, and answers with the
child's pid and a pidfd of it: we wait for the child and kill it through
that pidfd, which no pid reuse can redirect and which works even if the
spare dies.  The spare (the child's parent) writes the exit status on the
claim's connection once it has reaped it.

What keeps a claimed child indistinguishable from a fresh one:

- it takes on the claim's working directory, umask, signal mask and
  environment before anything else;
- what acts only as an interpreter starts cannot be taken on later: the
  executable, the variables of `_AT_START` (``PYTHON*``, ``LD_*``, the
  locale, ``TZ``, ...), and the resource limits and niceness a fresh child
  would inherit.  A claim compares them with those the spare started under;
  a spare that no longer matches is retired, and a new one started;
- it writes to the stderr file and stdout the claim sends, and receives
  ``sys.path`` in its start frame, as a fresh child does (a fresh child,
  too, imports Tornado and tserver before it sees ``sys.path``);
- its exit status reaches `ServerDiedError` as a fresh child's would.

It does differ in its parent (the spare), its command line, and its hash
seed (the spare's, unless ``PYTHONHASHSEED`` is set).

A claim that finds no ready spare, or whose spare fails it, returns None:
the caller starts a fresh child (on a new socketpair: a claim the spare
received late must not fork a second child on the old one).  After three
failures in a row the process stops using spares.  Linux only; elsewhere,
and with ``TSERVER_SPARE=0`` or ``TestServer(spare=False)``, every child is
a fresh interpreter.  No Tornado here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import resource
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
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
        and hasattr(os, "memfd_create")
        and hasattr(socket, "send_fds")
    )


def child_env() -> dict[str, str]:
    """The environment of a child: ours, with this package importable first."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    return env


#: Environment variables that act as an interpreter (or its C libraries)
#: starts: its imports, allocator, locale, time zone, OpenSSL configuration,
#: coverage's start-up.  A spare started under other values cannot fork a
#: child a fresh one would equal.  The others reach the child with the claim.
_AT_START = (
    "PYTHON",
    "LD_",
    "LC_",
    "LANG",
    "TZ",
    "COVERAGE_",
    "GLIBC_TUNABLES",
    "MALLOC_",
    "OPENSSL_",
)
#: Failed claims in a row after which this process uses no spare any more.
_GIVE_UP = 3


def _fingerprint() -> tuple[object, ...]:
    """What a spare must share with this process to fork a child a fresh one would equal."""
    limits = tuple(
        resource.getrlimit(getattr(resource, name))
        for name in dir(resource)
        if name.startswith("RLIMIT_")
    )
    return (
        sys.executable,
        sorted((k, v) for k, v in os.environ.items() if k.startswith(_AT_START)),
        limits,
        os.getpriority(os.PRIO_PROCESS, 0),
    )


def _umask() -> bytes:
    """Our umask in octal, read without changing it (Linux 4.7+), or b"" if unknown."""
    with contextlib.suppress(OSError), open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"Umask:"):
                return line.split()[1]
    return b""


def _world() -> int:
    """A memfd holding what the child takes on: working directory, umask, signal mask, env.

    NUL-separated: the directory, the umask (octal), the blocked signal
    numbers (comma-separated), then ``NAME=value`` for each variable.
    """
    blocked = b",".join(b"%d" % sig for sig in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    parts = [os.getcwdb(), _umask(), blocked]
    parts += [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in child_env().items()]
    data = b"\0".join(parts)
    fd = os.memfd_create("tserver-claim", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


class Spare:
    """One spare: the process that starts it (until it detached), its pid and address.

    ``proc`` is the first process; it exits once it has forked the spare off.
    The spare's pid arrives on ``proc``'s stdout once it listens (`ready`).
    """

    def __init__(self) -> None:
        self.fingerprint = _fingerprint()
        token = secrets.token_hex(8)
        self.address = f"\0tserver-spare-{os.getpid()}-{token}".encode()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tserver._child", "--spare", token, str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,  # the spare's pid, once it listens
            stderr=subprocess.DEVNULL,  # a claimed child writes to the claim's stderr
            env=child_env(),
        )
        self.pid: int | None = None
        self.retired = False
        self._lock = threading.Lock()  # reading the pid

    def ready(self, timeout: float) -> int:
        """The spare's pid once it listens (`SpareGone` if it cannot, or not in *timeout* s)."""
        with self._lock:
            if self.pid is None:
                self.pid = self._read_pid(timeout)
            return self.pid

    def _read_pid(self, timeout: float) -> int:
        out = self.proc.stdout
        assert out is not None
        try:
            if not select.select([out], [], [], timeout)[0]:
                raise SpareGone(f"the spare was not ready within {timeout:g}s")
            line = out.readline()  # one write of the spare, or EOF if it died first
            status = self.proc.wait(timeout)  # its first process exits once it forked
        except subprocess.TimeoutExpired:
            raise SpareGone(f"the spare was not ready within {timeout:g}s") from None
        finally:
            out.close()
        if not line.strip().isdigit():
            raise SpareGone(f"the spare could not start (exit status {status})")
        return int(line)

    def fork(
        self, channel: socket.socket, stderr_fd: int, world: int, timeout: float
    ) -> ForkedChild:
        """Have the spare fork a server child on *channel* writing to *stderr_fd*.

        *world* is the memfd of `_world`; *timeout* bounds the whole claim.
        """
        deadline = time.monotonic() + timeout
        pid = self.ready(timeout)
        try:
            fds = [channel.fileno(), stderr_fd, world]
            with contextlib.suppress(OSError):
                os.fstat(1)
                fds.append(1)  # our stdout, when we have one (a fresh child inherits it)
            conn = _connect(self.address, max(0.001, deadline - time.monotonic()))
            try:
                _check_peer(conn, pid)
                socket.send_fds(conn, [b"fork"], fds)
                reply, got, _flags, _address = socket.recv_fds(conn, 64, 1)
            except BaseException:
                conn.close()
                raise
        except OSError as exc:  # TimeoutError is one
            raise SpareGone(f"the spare did not fork: {exc}") from None
        if not reply.isdigit() or len(got) != 1:
            for fd in got:
                os.close(fd)
            conn.close()
            raise SpareGone(f"the spare did not fork ({reply!r})")
        conn.settimeout(None)
        return ForkedChild(int(reply), got[0], conn)

    def retire(self) -> None:
        """Fork no more: the spare exits once the children it forked have exited."""
        self.retired = True
        if self.proc.poll() is None:  # still importing: stop it there
            self.proc.kill()
            self.proc.wait()
        with self._lock:  # after a `ready` under way (it ends within its timeout)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            if self.pid is None:
                return  # it never said it listens: it cannot have forked anything
        with contextlib.suppress(SpareGone, OSError):  # gone already, or not ours any more
            conn = _connect(self.address, 1.0)
            with conn:
                _check_peer(conn, self.pid)
                conn.send(b"retire")

    @property
    def usable(self) -> bool:
        """Not retired, and started in the world we live in now."""
        return not self.retired and self.fingerprint == _fingerprint()


def _connect(address: bytes, timeout: float) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.settimeout(timeout)
        conn.connect(address)
    except OSError as exc:
        conn.close()
        raise SpareGone(f"cannot reach the spare: {exc}") from None
    return conn


def _check_peer(conn: socket.socket, pid: int) -> None:
    """The listener on *conn* is the spare *pid*, under our uid (not whoever took its name)."""
    peer_pid, peer_uid, _gid = struct.unpack(
        "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    )
    if peer_pid != pid or peer_uid != os.getuid():
        raise SpareGone(f"the spare's address is held by pid {peer_pid} (uid {peer_uid})")


class ForkedChild:
    """A server child the spare forked: its pidfd, and the connection that asked for it.

    The pidfd says when the child has exited and carries a kill to exactly
    that process, even if the spare has died.  The spare writes the exit
    status on the connection once it has reaped the child.
    """

    #: Seconds to wait for the status once the pidfd says the child exited.
    STATUS_SECONDS = 5.0

    def __init__(self, pid: int, pidfd: int, conn: socket.socket) -> None:
        self._pid = pid
        self._pidfd = pidfd
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
        """Whether it was waited for to the end (so it is gone)."""
        return self._collected

    def kill(self) -> None:
        """Send SIGKILL (nothing once the child is collected)."""
        with self._lock:
            if not self._collected:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the child to exit (`subprocess.TimeoutExpired` after *timeout*); its status.

        None when the spare went away first (the status is then unknowable).
        The wait holds no lock, so another thread can `kill` meanwhile.
        """
        with self._lock:
            if self._collected:
                return self.returncode
            poller = select.poll()
            poller.register(self._pidfd, select.POLLIN)  # readable once the child exited
        if not poller.poll(None if timeout is None else max(0, round(timeout * 1000))):
            raise subprocess.TimeoutExpired(f"tserver child {self._pid}", timeout or 0.0)
        with self._lock:
            if not self._collected:
                self._conn.settimeout(self.STATUS_SECONDS)
                try:
                    reply = self._conn.recv(64)
                except OSError:  # the spare died or is stuck: the status is lost
                    reply = b""
                self.returncode = int(reply) if reply.lstrip(b"-").isdigit() else None
                self._collected = True
                self._conn.close()
                os.close(self._pidfd)
        return self.returncode


_lock = threading.Lock()  # _current and _failures
_current: Spare | None = None
_failures = 0
_forked: weakref.WeakSet[ForkedChild] = weakref.WeakSet()
_owner = os.getpid()


def _usable_spare() -> Spare | None:
    """The current spare if it can serve this claim; else start one for the next, and None."""
    global _current
    with _lock:
        current = _current
        if current is not None and current.usable:
            return current
        if current is not None:
            current.retire()
        _current = Spare()  # imports while a fresh child serves this claim
        return None


def claim(channel: socket.socket, stderr_fd: int, timeout: float) -> ForkedChild | None:
    """A server child forked by the spare on *channel*, or None: start a fresh one instead.

    On None the caller must not use *channel* (the spare may still act on a
    claim it received late): it starts the fresh child on a new socketpair.
    """
    global _failures
    if not enabled() or os.getpid() != _owner or _failures >= _GIVE_UP:
        return None
    try:
        spare = _usable_spare()
    except OSError:
        return None
    if spare is None:
        return None
    try:
        world = _world()
    except OSError:  # our working directory was removed, say: a fresh child copes
        return None
    try:
        child = spare.fork(channel, stderr_fd, world, timeout)
    except SpareGone:
        with _lock:
            _failures += 1
            spare.retire()  # dead, stuck or impersonated: the next claim starts another
        return None
    finally:
        os.close(world)
    _failures = 0
    return child


def settle(timeout: float) -> None:
    """Wait for a spare being started to detach, so that nothing of it is ours any more.

    Its first process is our child, and its stdout a pipe of ours, until it
    has forked the spare off: `stop` of a subprocess-mode server calls this,
    so a server started and stopped leaves neither behind.
    """
    global _failures
    with _lock:
        spare = _current
    if spare is None or spare.pid is not None or os.getpid() != _owner:
        return
    try:
        spare.ready(timeout)
    except SpareGone:
        with _lock:
            _failures += 1
            spare.retire()


def forked_pids() -> set[int]:
    """Server children forked by a spare whose exit was not collected (for leak checks)."""
    return {child.pid for child in list(_forked) if not child.collected}


def _forget_after_fork() -> None:  # pragma: no cover (in a forked copy, which saves no data)
    """In a process forked off this one: the spare is not ours, only our parent may use it."""
    global _current, _owner, _lock, _failures
    _lock = threading.Lock()  # another thread may have held it at the fork
    if _current is not None:
        _current.proc.returncode = 0  # not our child: nothing to reap, nothing to warn about
        if _current.proc.stdout is not None:
            _current.proc.stdout.close()
    _current = None
    _failures = 0
    _owner = os.getpid()


def _at_exit() -> None:
    """A spare still importing when we exit is stopped there (a ready one watches us and exits)."""
    if _current is not None and os.getpid() == _owner:
        if _current.proc.poll() is None:
            _current.proc.kill()
            _current.proc.wait()
        if _current.proc.stdout is not None:
            _current.proc.stdout.close()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)
