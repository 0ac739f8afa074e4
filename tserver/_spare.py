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
from typing import IO, Protocol

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
#: Failed claims, or spares retired unused, in a row after which this
#: process uses no spare any more.
_GIVE_UP = 3
#: The resource limits a child inherits as it starts.
_LIMITS = tuple(getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_"))


def _fingerprint() -> tuple[object, ...]:
    """What a spare must share with this process to fork a child a fresh one would equal."""
    return (
        sys.executable,
        sorted((k, v) for k, v in os.environ.items() if k.startswith(_AT_START)),
        tuple(resource.getrlimit(limit) for limit in _LIMITS),
        os.getpriority(os.PRIO_PROCESS, 0),
    )


def _umask() -> bytes:
    """Our umask in octal, read without changing it (Linux 4.7+), or b"" if unknown."""
    with contextlib.suppress(OSError), open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"Umask:"):
                return line.split()[1]
    return b""


def _world() -> tuple[int, int]:
    """What the child takes on: a memfd describing it, and an ``O_PATH`` fd of our directory.

    The memfd holds, NUL-separated: the umask (octal, empty if unknown), the
    blocked signal numbers and the ignored ones (each comma-separated), then
    ``NAME=value`` for each environment variable.  The directory travels as
    a descriptor so that the child enters the very one we are in, even if it
    was renamed or removed meanwhile.
    """
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    ignored = [n for n in signal.valid_signals() if signal.getsignal(n) == signal.SIG_IGN]
    parts = [_umask(), b",".join(b"%d" % n for n in blocked), b",".join(b"%d" % n for n in ignored)]
    parts += [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in child_env().items()]
    data = b"\0".join(parts)
    here = os.open(".", os.O_PATH | os.O_CLOEXEC)
    try:
        fd = os.memfd_create("tserver-claim", os.MFD_CLOEXEC)
    except BaseException:
        os.close(here)
        raise
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        os.close(here)
        raise
    return fd, here


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
        #: Children it forked for us (a spare retired unused counts against spares).
        self.claims = 0
        self._lock = threading.Lock()  # reading the pid

    def ready(self, timeout: float) -> int:
        """The spare's pid once it listens (`SpareGone` if it cannot, or not in *timeout* s)."""
        if not self._lock.acquire(timeout=max(0.0, timeout)):
            raise SpareGone(f"the spare was not ready within {timeout:g}s")
        try:
            if self.pid is None:
                out = self.proc.stdout
                if self.retired or out is None or out.closed:
                    raise SpareGone("the spare never became ready")
                self.pid = self._read_pid(out, timeout)
            return self.pid
        finally:
            self._lock.release()

    def _read_pid(self, out: IO[bytes], timeout: float) -> int:
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
        self, channel: socket.socket, stderr_fd: int, world: tuple[int, int], timeout: float
    ) -> ForkedChild:
        """Have the spare fork a server child on *channel* writing to *stderr_fd*.

        *world* is what `_world` returns; *timeout* bounds the whole claim.
        """
        deadline = time.monotonic() + timeout
        pid = self.ready(timeout)
        try:
            fds = [channel.fileno(), stderr_fd, *world]
            with contextlib.suppress(OSError):
                if os.get_inheritable(1):  # our stdout, as a fresh child would inherit it
                    fds.append(1)
            conn = _connect(self.address, max(0.001, deadline - time.monotonic()))
            try:
                _check_peer(conn, pid)
                socket.send_fds(conn, [b"fork"], fds)
                reply, got, _flags, _address = socket.recv_fds(conn, 64, 1, socket.MSG_CMSG_CLOEXEC)
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
        self.claims += 1
        return ForkedChild(int(reply), got[0], conn)

    def retire(self) -> None:
        """Fork no more: the spare exits once the children it forked have exited."""
        self.retired = True
        if self.proc.poll() is None:  # still importing: stop it there
            self.proc.kill()
            self.proc.wait()
        with self._lock:  # after a `ready` under way (it ends within its timeout)
            out = self.proc.stdout
            if self.pid is None and out is not None and not out.closed:
                with contextlib.suppress(OSError, ValueError):  # it detached just before?
                    if select.select([out], [], [], 0)[0]:
                        line = out.readline()
                        self.pid = int(line) if line.strip().isdigit() else None
            if out is not None:
                out.close()
            pid = self.pid
        if pid is None:
            return  # it never said it listens: it cannot have forked anything
        with contextlib.suppress(SpareGone, OSError):  # gone already, or not ours any more
            conn = _connect(self.address, 1.0)
            with conn:
                _check_peer(conn, pid)
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
            watched = os.dup(self._pidfd)  # ours alone: another wait may close the pidfd
        try:
            poller = select.poll()
            poller.register(watched, select.POLLIN)  # readable once the child exited
            if not poller.poll(None if timeout is None else max(0, round(timeout * 1000))):
                raise subprocess.TimeoutExpired(f"tserver child {self._pid}", timeout or 0.0)
        finally:
            os.close(watched)
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


_lock = threading.Lock()  # the module's state below
_current: Spare | None = None
#: Failed claims in a row, and spares retired in a row without serving one.
_failures = 0
_unused = 0
_forked: weakref.WeakSet[ForkedChild] = weakref.WeakSet()
_owner = os.getpid()
#: Seconds `settle` waits for a spare being started to detach.
SETTLE_SECONDS = 5.0


def _in_use() -> bool:
    """Whether this process may use a spare now."""
    return enabled() and os.getpid() == _owner and max(_failures, _unused) < _GIVE_UP


def _replace(new: Spare | None, *, failed: bool = False) -> None:
    """Make *new* the current spare; retire the one it replaces (outside the lock)."""
    global _current, _failures, _unused
    with _lock:
        old, _current = _current, new
        if failed:
            _failures += 1
        if old is not None and old.claims == 0 and not failed:
            _unused += 1  # the world keeps changing under the spares: stop starting them
    if old is not None:
        old.retire()


def claim(channel: socket.socket, stderr_fd: int, timeout: float) -> ForkedChild | None:
    """A server child forked by the spare on *channel*, or None: start a fresh one instead.

    On None the caller must not use *channel* (the spare may still act on a
    claim it received late): it starts the fresh child on a new socketpair,
    then calls `prepare`.
    """
    global _failures, _unused
    if not _in_use():
        return None
    with _lock:
        spare = _current
    if spare is None or not spare.usable:
        return None  # `prepare`, once the fresh child is serving, starts one
    try:
        world = _world()
    except OSError:  # our working directory is out of reach: a fresh child copes
        return None
    try:
        child = spare.fork(channel, stderr_fd, world, timeout)
    except (SpareGone, OSError, ValueError):
        if _current is spare:
            _replace(None, failed=True)  # dead, stuck or impersonated: `prepare` starts another
        return None
    finally:
        for fd in world:
            os.close(fd)
    with _lock:
        _failures = _unused = 0
    return child


def prepare() -> None:
    """Start a spare if there is none this process's next claim could use.

    Called once a server's fresh child serves: the spare imports while the
    test goes on, not while the first child does.
    """
    if not _in_use():
        return
    with _lock:
        current = _current
    if current is not None and current.usable:
        return
    if current is not None and current.claims == 0 and _unused + 1 >= _GIVE_UP:
        _replace(None)  # that one counts as the last unused: no more spares
        return
    with contextlib.suppress(OSError):
        _replace(Spare())


def settle() -> None:
    """Wait for a spare being started to detach, so that nothing of it is ours any more.

    Its first process is our child, and its stdout a pipe of ours, until it
    has forked the spare off: `stop` of a subprocess-mode server calls this,
    so a server started and stopped leaves neither behind.  A spare that
    does not detach within `SETTLE_SECONDS` is let go.
    """
    with _lock:
        spare = _current
    if spare is None or spare.pid is not None or spare.retired or os.getpid() != _owner:
        return
    try:
        spare.ready(SETTLE_SECONDS)
    except SpareGone:
        if _current is spare:
            _replace(None)


def forked_pids() -> set[int]:
    """Server children forked by a spare whose exit was not collected (for leak checks)."""
    return {child.pid for child in list(_forked) if not child.collected}


def _forget_after_fork() -> None:  # pragma: no cover (in a forked copy, which saves no data)
    """In a process forked off this one: the spare is not ours, only our parent may use it."""
    global _current, _owner, _lock, _failures, _unused
    _lock = threading.Lock()  # another thread may have held it at the fork
    if _current is not None:
        _current.proc.returncode = 0  # not our child: nothing to reap, nothing to warn about
        if _current.proc.stdout is not None:
            _current.proc.stdout.close()
    _current = None
    _failures = _unused = 0
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
