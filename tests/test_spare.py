"""The warm spare of subprocess mode (`tserver._spare`).

After the first subprocess-mode start of a process, each child is forked by
a spare process that is already past its imports.  These tests check that
such a child cannot be told apart from a fresh one, that the spare follows
the world it must match, that only this process can use it (and that it
only talks to its real spare), that it fails over to a fresh child, and
that nothing outlives a test process, even a killed one.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import child_callbacks
from helpers.clients import fetch
from helpers.processes import wait_for_exit

from tserver import ServerDiedError, TestServer, _spare

HELPERS = Path(__file__).resolve().parent / "helpers"

pytestmark = pytest.mark.skipif(not _spare.enabled(), reason="the spare needs Linux")


def child_pid(srv: TestServer) -> int:
    backend: Any = srv._backend  # tests may look at the child
    return int(backend.pid)


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def spares_of(pid: int) -> set[int]:
    """The live spares of process *pid*, found by their command lines."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            args = cmdline(int(entry))
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if args[3:4] == ["--spare"] and args[-1] == str(pid) and state != "Z":
            found.add(int(entry))
    return found


def primed() -> None:
    """Make sure a usable spare exists: the next start is forked by it."""
    TestServer(mode="subprocess").start().stop()


def spare_now() -> int:
    """The pid of the spare that forks the next child (primed first)."""
    primed()
    with TestServer(mode="subprocess") as srv:
        return parent_of(child_pid(srv))


def ready_spare() -> tuple[Any, int]:
    """The current spare (primed first) and its pid."""
    primed()
    spare = _spare._current
    assert spare is not None
    return spare, spare.ready(10)


def token_of(spare: int) -> str:
    return cmdline(spare)[4]


def current_token() -> str:
    current = _spare._current
    assert current is not None
    return current.address.decode().rsplit("-", 1)[1]


def assert_retired(spare: int, token: str) -> None:
    """*spare* forks no more, and exits once the servers it forked have (other tests' too)."""
    assert token != current_token()
    address = f"\0tserver-spare-{os.getpid()}-{token}".encode()
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with probe, pytest.raises(ConnectionRefusedError):  # its listener is closed
        probe.connect(address)
    try:
        forked = Path(f"/proc/{spare}/task/{spare}/children").read_text().split()
    except FileNotFoundError:  # gone already
        forked = []
    if not forked:  # a session fixture's server may still need it to collect its status
        assert wait_for_exit(spare), "the retired spare did not exit"


def world(srv: TestServer) -> dict[str, Any]:
    srv.set_response("callback", child_callbacks.report_world)
    answer: dict[str, Any] = json.loads(fetch("http.client", srv.url).body)
    return answer


@pytest.fixture
def sub() -> Iterator[TestServer]:
    primed()
    srv = TestServer(mode="subprocess").start()
    try:
        assert parent_of(child_pid(srv)) != os.getpid()  # forked by the spare
        yield srv
    finally:
        srv.stop()  # not check(): these tests kill the child


# -- a claimed child is a subprocess-mode child ---------------------------------------------


def test_the_first_start_is_fresh_and_starts_the_spare(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONTSERVERTEST", "first")  # no spare matches this world yet
    with TestServer(mode="subprocess") as first:
        assert parent_of(child_pid(first)) == os.getpid()  # as it always was
        assert _spare._current is not None
        spare = _spare._current
    with TestServer(mode="subprocess") as second:
        assert parent_of(child_pid(second)) == spare.pid
    assert _spare._current is spare


def test_consecutive_servers_are_forked_by_one_spare() -> None:
    primed()
    with TestServer(mode="subprocess") as first, TestServer(mode="subprocess") as second:
        one, two = child_pid(first), child_pid(second)
        assert one != two
        spare = parent_of(two)
        assert parent_of(one) == spare
        assert spare != os.getpid()
        assert cmdline(spare)[1:4] == ["-m", "tserver._child", "--spare"]
        assert cmdline(spare)[-1] == str(os.getpid())  # it serves this process only
        first.set_response("data", b"one")
        second.set_response("data", b"two")
        assert fetch("http.client", first.url).body == b"one"
        assert fetch("http.client", second.url).body == b"two"
    assert token_of(spare) == current_token()  # it stays for the next claim


def test_a_claimed_child_inherits_what_a_fresh_child_inherits() -> None:
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
    old_umask = os.umask(0o027)
    old_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with TestServer(mode="subprocess", spare=False) as fresh:
            assert parent_of(child_pid(fresh)) == os.getpid()
            expected = world(fresh)
        primed()
        with TestServer(mode="subprocess") as claimed:
            assert parent_of(child_pid(claimed)) != os.getpid()
            seen = world(claimed)
    finally:
        signal.signal(signal.SIGHUP, old_hup)
        os.umask(old_umask)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    assert seen["status"]["Umask"] == "0027"
    assert int(seen["status"]["SigBlk"], 16) & (1 << (signal.SIGUSR2 - 1))
    assert int(seen["status"]["SigIgn"], 16) & (1 << (signal.SIGHUP - 1))
    # stdin /dev/null, the stdout we have now, a stderr file of its own
    assert seen["fds"][:2] == expected["fds"][:2] == ["/dev/null", os.readlink("/proc/self/fd/1")]
    assert seen["fds"][2].endswith("(deleted)")
    assert expected["fds"][2].endswith("(deleted)")
    del seen["fds"], expected["fds"]
    assert seen == expected


def test_a_claimed_child_writes_to_our_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    primed()
    with TestServer(mode="subprocess") as srv:
        assert parent_of(child_pid(srv)) != os.getpid()
        srv.set_response("callback", child_callbacks.say_on_stdout)
        assert fetch("http.client", srv.url).body == b"said"
    assert "tserver-test: a line on the child's stdout" in capfd.readouterr().out


def test_a_claimed_child_that_is_killed_reports_the_signal_and_its_stderr(sub: TestServer) -> None:
    sub.set_response("callback", child_callbacks.note_on_stderr)
    assert fetch("http.client", sub.url).body == b"noted"
    os.kill(child_pid(sub), signal.SIGKILL)
    with pytest.raises(ServerDiedError) as caught:
        sub.get_request()
    assert caught.value.returncode == -signal.SIGKILL
    assert child_callbacks.NOTE in caught.value.stderr_tail


def test_a_claimed_child_that_exits_reports_its_status(sub: TestServer) -> None:
    sub.set_response("callback", child_callbacks.die_with_message)
    with pytest.raises(OSError):  # the connection ends without an answer
        fetch("http.client", sub.url)
    with pytest.raises(ServerDiedError) as caught:
        sub.request_count  # noqa: B018 - a call on the server
    assert caught.value.returncode == 3
    assert child_callbacks.DYING_WORDS in caught.value.stderr_tail


def test_kill_through_the_handle_reaches_the_child(sub: TestServer) -> None:
    backend: Any = sub._backend
    backend._child.kill()  # what stop() does to a child that does not answer
    with pytest.raises(ServerDiedError) as caught:
        sub.reset()
    assert caught.value.returncode == -signal.SIGKILL


# -- the spare follows the world ------------------------------------------------------------


def test_the_environment_as_it_is_now_reaches_a_claimed_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    primed()
    with TestServer(mode="subprocess") as before:
        spare = parent_of(child_pid(before))
        assert "TSERVER_TEST_SPARE" not in world(before)["env"]
    monkeypatch.setenv("TSERVER_TEST_SPARE", "changed")
    monkeypatch.setenv("TSERVER_TEST_BIG", "x" * 300_000)  # more than a socket message holds
    monkeypatch.delenv("HOME", raising=False)
    with TestServer(mode="subprocess") as after:
        assert parent_of(child_pid(after)) == spare  # the same spare
        env = world(after)["env"]
    assert env["TSERVER_TEST_SPARE"] == "changed"
    assert env["TSERVER_TEST_BIG"] == "x" * 300_000
    assert "HOME" not in env


def test_the_working_directory_as_it_is_now_reaches_a_claimed_child(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spare = spare_now()
    monkeypatch.chdir(tmp_path)
    with TestServer(mode="subprocess") as after:
        assert parent_of(child_pid(after)) == spare
        assert world(after)["cwd"] == str(tmp_path)


def test_a_removed_working_directory_is_the_claimed_childs_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    primed()
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with TestServer(mode="subprocess") as srv:  # as a fresh child would, it is in there
        pid = child_pid(srv)
        assert parent_of(pid) != os.getpid()
        assert os.readlink(f"/proc/{pid}/cwd") == os.readlink("/proc/self/cwd")
        assert os.readlink(f"/proc/{pid}/cwd").endswith("(deleted)")
        srv.set_response("data", b"served")
        assert fetch("http.client", srv.url).body == b"served"


def test_sys_path_as_it_is_now_reaches_a_claimed_child(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "spare_probe.py").write_text(
        "def answer(request):\n    return b'imported from the new path'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import spare_probe  # type: ignore[import-not-found]

    primed()
    with TestServer(mode="subprocess") as srv:
        assert parent_of(child_pid(srv)) != os.getpid()
        assert world(srv)["sys.path"][0] == str(tmp_path)
        srv.set_response("callback", spare_probe.answer)
        assert fetch("http.client", srv.url).body == b"imported from the new path"


@pytest.mark.parametrize("change", ["PYTHONHASHSEED", "TZ", "LC_ALL", "RLIMIT_MEMLOCK"])
def test_what_acts_at_interpreter_start_gets_a_new_spare(
    monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    import resource

    old = spare_now()
    old_token = token_of(old)
    locked = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    lowered = (locked[1] if locked[1] != resource.RLIM_INFINITY else 1 << 30) - 4096
    try:
        if change == "RLIMIT_MEMLOCK":
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (lowered, locked[1]))
        else:
            monkeypatch.setenv(change, {"TZ": "UTC", "LC_ALL": "C"}.get(change, "0"))
        with TestServer(mode="subprocess") as fresh:  # this one fresh, a new spare started
            assert parent_of(child_pid(fresh)) == os.getpid()
        with TestServer(mode="subprocess") as after:
            new = parent_of(child_pid(after))
            seen = world(after)
    finally:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, locked)
    assert new not in (old, os.getpid())
    assert token_of(new) == current_token()
    if change == "RLIMIT_MEMLOCK":
        assert seen["limits"]["RLIMIT_MEMLOCK"] == [lowered, locked[1]]
    else:
        assert seen["env"][change] == os.environ[change]
    assert_retired(old, old_token)


def test_a_spare_a_live_child_still_needs_waits_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    primed()
    with TestServer(mode="subprocess") as kept:
        old = parent_of(child_pid(kept))
        old_token = token_of(old)
        monkeypatch.setenv("PYTHONTSERVERTEST", "a new spare")
        with TestServer(mode="subprocess") as other:
            assert parent_of(child_pid(other)) != old
        # the old spare is retired but must still collect its child's status
        assert old in spares_of(os.getpid())
        kept.set_response("data", b"still served")
        assert fetch("http.client", kept.url).body == b"still served"
    assert_retired(old, old_token)


# -- switching it off -----------------------------------------------------------------------


def test_spare_false_starts_a_fresh_child() -> None:
    primed()
    with TestServer(mode="subprocess", spare=False) as srv:
        assert parent_of(child_pid(srv)) == os.getpid()


def test_the_environment_switch_turns_the_spare_off(monkeypatch: pytest.MonkeyPatch) -> None:
    primed()
    monkeypatch.setenv("TSERVER_SPARE", "0")
    assert not _spare.enabled()
    with TestServer(mode="subprocess") as srv:
        assert parent_of(child_pid(srv)) == os.getpid()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_spare_must_be_a_bool(value: object) -> None:
    with pytest.raises(TypeError, match=r"spare .* must be True or False"):
        TestServer(mode="subprocess", spare=value)  # type: ignore[arg-type]


# -- when the spare is gone, stuck or misused -----------------------------------------------


def test_a_dead_spare_costs_one_fresh_child_then_is_replaced() -> None:
    spare = spare_now()
    os.kill(spare, signal.SIGKILL)
    assert wait_for_exit(spare)
    with TestServer(mode="subprocess") as srv:
        assert parent_of(child_pid(srv)) == os.getpid()  # started fresh
        srv.set_response("data", b"served")
        assert fetch("http.client", srv.url).body == b"served"
    primed()
    with TestServer(mode="subprocess") as srv:
        replacement = parent_of(child_pid(srv))
        assert replacement not in (spare, os.getpid())


def test_a_child_outlives_its_killed_spare_under_our_control(sub: TestServer) -> None:
    pid = child_pid(sub)
    spare = parent_of(pid)
    os.kill(spare, signal.SIGKILL)
    assert wait_for_exit(spare)
    sub.set_response("data", b"still served")
    assert fetch("http.client", sub.url).body == b"still served"
    backend: Any = sub._backend
    backend._child.kill()  # through its pidfd: no spare needed
    assert wait_for_exit(pid)
    with pytest.raises(ServerDiedError) as caught:
        sub.reset()
    assert caught.value.returncode is None  # its parent, who knew it, is gone
    assert "nobody could collect" in str(caught.value)


def test_a_stalled_spare_costs_a_fresh_child_on_a_channel_of_its_own() -> None:
    _, pid = ready_spare()
    os.kill(pid, signal.SIGSTOP)
    try:
        # the claim waits half of it for the stopped spare, then a fresh child starts
        srv = TestServer(mode="subprocess", startup_timeout=6.0).start()
    finally:
        os.kill(pid, signal.SIGCONT)  # it now forks the claim it got late
    try:
        assert parent_of(child_pid(srv)) == os.getpid()
        for body in (b"one", b"two", b"three"):  # nobody else reads this server's commands
            srv.set_response("data", body)
            assert fetch("http.client", srv.url).body == body
    finally:
        srv.stop()
    srv.check()


def test_a_spare_whose_address_was_taken_over_is_not_trusted() -> None:
    spare, pid = ready_spare()
    forked = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    os.kill(pid, signal.SIGKILL)
    assert wait_for_exit(pid)
    for child in forked:  # the one forked ahead: it may not have let go of the name yet
        assert wait_for_exit(int(child))
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as impostor:
        impostor.bind(spare.address)  # the name is free again: anyone could take it
        impostor.listen()
        with TestServer(mode="subprocess") as srv:
            assert parent_of(child_pid(srv)) == os.getpid()  # fresh: nothing was sent
        claim, _ = impostor.accept()  # the claim connected, saw who listens, and left
        with claim:
            assert claim.recv(1 << 20) == b""  # nothing was sent: no environment, no fds


def test_another_process_cannot_use_our_spare(sub: TestServer) -> None:
    spare = parent_of(child_pid(sub))
    address = _spare._current.address  # type: ignore[union-attr]
    probe = (
        "import socket, sys\n"
        "a, b = socket.socketpair()\n"
        "c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
        "c.settimeout(10)\n"
        "c.connect(bytes.fromhex(sys.argv[1]))\n"
        "try:\n"
        "    socket.send_fds(c, [b'fork'], [b.fileno(), 2, 2])\n"
        "    print(repr(c.recv(64)))\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, address.hex()],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    # closed unread: no pid, no fork (the send may already meet the closed end)
    assert result.stdout.split()[0] in ("b''", "refused"), result.stdout
    with TestServer(mode="subprocess") as srv:  # and it still serves us
        assert parent_of(child_pid(srv)) == spare


def test_after_three_failed_claims_the_process_stops_using_spares(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_spare, "_failures", 0)  # put back (to 0) after the test
    _, pid = ready_spare()
    for attempt in range(3):
        os.kill(pid, signal.SIGKILL)
        assert wait_for_exit(pid)
        with TestServer(mode="subprocess") as srv:  # its claim fails: a fresh child
            assert parent_of(child_pid(srv)) == os.getpid()
        assert _spare._failures == attempt + 1
        if _spare._current is not None:  # the spare started after it, for the next claim
            pid = _spare._current.ready(10)
    assert _spare._current is None  # no new spare after the third failure
    with TestServer(mode="subprocess") as srv:
        assert parent_of(child_pid(srv)) == os.getpid()
    assert _spare._current is None
    assert _spare._failures == 3


def test_a_world_that_keeps_changing_stops_starting_spares(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_spare, "_unused", 0)  # put back (to 0) after the test
    primed()
    for turn in range(4):  # each start sees another world: no spare ever serves
        monkeypatch.setenv("PYTHONTSERVERTEST", f"turn {turn}")
        with TestServer(mode="subprocess") as srv:
            assert parent_of(child_pid(srv)) == os.getpid()
    assert _spare._unused == 3
    assert _spare._current is None  # the fourth start started none


def test_a_waiting_child_that_was_killed_is_replaced_cleanly() -> None:
    _, pid = ready_spare()
    waiting = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(waiting) == 1  # the child forked ahead of the next claim
    os.kill(int(waiting[0]), signal.SIGKILL)
    assert wait_for_exit(int(waiting[0]))
    with TestServer(mode="subprocess") as srv:
        child = child_pid(srv)
        assert parent_of(child) == pid
        held = [os.readlink(f"/proc/{child}/fd/{fd}") for fd in os.listdir(f"/proc/{child}/fd")]
        assert not [target for target in held if "tserver-claim" in target]
        srv.set_response("data", b"served")
        assert fetch("http.client", srv.url).body == b"served"


# -- nothing outlives the test process ------------------------------------------------------


def _run_parent(*args: str, **popen: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HELPERS / "spare_parent.py"), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


def _finish(parent: subprocess.Popen[bytes]) -> None:
    parent.kill()
    parent.wait()
    for pipe in (parent.stdin, parent.stdout, parent.stderr):
        if pipe is not None:
            pipe.close()


def test_a_killed_test_process_leaves_no_spare_and_no_child_behind() -> None:
    parent = _run_parent("3")
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline().split()
        assert len(line) == 4, parent.communicate()
        spare, first, *forked = map(int, line)
        assert parent_of(first) == parent.pid  # the first one fresh
        assert all(parent_of(pid) == spare for pid in forked)
        everyone = (spare, first, *forked)
        watched = [os.pidfd_open(pid) for pid in everyone]  # while they surely run
        try:
            assert not select.select(watched, [], [], 0)[0], "something exited too early"
            parent.kill()
            parent.wait(5)
            for pidfd, pid in zip(watched, everyone, strict=True):
                assert select.select([pidfd], [], [], 5.0)[0], f"{pid} outlived the killed parent"
        finally:
            for pidfd in watched:
                os.close(pidfd)
    finally:
        _finish(parent)


def test_a_process_forked_off_the_test_process_starts_a_spare_of_its_own() -> None:
    parent = _run_parent("2", "fork")
    try:
        assert parent.stdout is not None
        spare = int(parent.stdout.readline().split()[0])
        label, copy_spare = parent.stdout.readline().split()
        assert label == b"copy"
        assert int(copy_spare) != spare
        assert parent_of(int(copy_spare)) != parent.pid  # a spare, not the copy's own child
        parent.stdin.close()  # type: ignore[union-attr]
        assert parent.wait(10) == 0
        assert wait_for_exit(spare)
        assert wait_for_exit(int(copy_spare))
    finally:
        _finish(parent)


def test_a_parent_without_stdout_has_children_without_stdout() -> None:
    script = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from helpers import child_callbacks\n"
        "from helpers.clients import fetch\n"
        "from tserver import TestServer\n"
        "TestServer(mode='subprocess').start().stop()\n"
        "with TestServer(mode='subprocess') as srv:\n"
        "    srv.set_response('callback', child_callbacks.say_on_stdout)\n"
        "    for _ in range(3):\n"
        "        assert fetch('http.client', srv.url).body == b'said'\n"
        "sys.stderr.write('done\\n')\n"
    )
    result = subprocess.run(
        ["sh", "-c", 'exec "$0" -c "$1" "$2" 1>&-', sys.executable, script, str(HELPERS.parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.endswith("done\n"), result.stderr
    assert "on the child's stdout" not in result.stderr  # printed nowhere, as a fresh child


def test_claims_from_many_threads_each_get_a_child_of_their_own() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> tuple[int, bytes]:
        with TestServer(mode="subprocess") as srv:
            srv.set_response("data", b"%d" % i)
            return child_pid(srv), fetch("http.client", srv.url).body

    primed()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(8)))
    assert [body for _, body in results] == [b"%d" % i for i in range(8)]
    children = {pid for pid, _ in results}
    assert len(children) == 8
    assert not children & _spare.forked_pids()  # each one collected


def test_a_spare_socket_is_no_descriptor_of_ours_between_servers() -> None:
    primed()
    fds = set(os.listdir("/proc/self/fd"))
    with TestServer(mode="subprocess") as srv:
        assert parent_of(child_pid(srv)) != os.getpid()
        srv.set_response("data", b"x")
        assert fetch("http.client", srv.url).body == b"x"
    assert set(os.listdir("/proc/self/fd")) == fds  # the handle on the child was closed


# -- the parent side's error paths ------------------------------------------------------------


def _spare_with(proc: subprocess.Popen[bytes], address: bytes = b"\0tserver-nothing") -> Any:
    """A `_spare.Spare` around *proc* and *address*, as if it had started them."""
    import threading

    spare: Any = _spare.Spare.__new__(_spare.Spare)
    spare.proc, spare.address, spare.retired, spare.pid = proc, address, False, None
    spare.claims = 0
    spare.fingerprint = _spare._fingerprint()
    spare._lock = threading.Lock()
    return spare


def test_a_spare_that_could_not_start_is_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], stdout=subprocess.PIPE)
    with pytest.raises(_spare.SpareGone, match=r"could not start \(exit status 3\)"):
        _spare_with(proc).ready(10)


def test_a_spare_not_ready_in_time_is_gone() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "input()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        with pytest.raises(_spare.SpareGone, match="not ready within"):
            _spare_with(proc).ready(0.01)
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdin is not None
        proc.stdin.close()


def test_a_claim_answered_wrongly_is_gone() -> None:
    import threading

    done = subprocess.Popen([sys.executable, "-c", "print(1)"], stdout=subprocess.PIPE)
    address = b"\0tserver-test-%d" % os.getpid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
        listener.bind(address)
        listener.listen()

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 64, 4)
                for fd in fds:
                    os.close(fd)
                conn.send(b"no")

        helper = threading.Thread(target=answer)
        helper.start()
        spare = _spare_with(done, address)
        assert spare.ready(10) == 1  # what the process printed
        spare.pid = os.getpid()  # but this process listens: its SO_PEERCRED
        ours, theirs = socket.socketpair()
        world = (os.memfd_create("test"), os.open(".", os.O_PATH))
        with ours, theirs, open(os.devnull, "wb") as stderr:
            with pytest.raises(_spare.SpareGone, match=r"did not fork \(b'no'\)"):
                spare.fork(theirs, stderr.fileno(), world, 10)
            helper.join()
            spare.pid = 1  # anyone but the listener
            with pytest.raises(_spare.SpareGone, match="address is held by pid"):
                spare.fork(theirs, stderr.fileno(), world, 10)
        for fd in world:
            os.close(fd)
    with ours, theirs, open(os.devnull, "wb") as stderr:  # nobody listens there any more
        world = (os.memfd_create("test"), os.open(".", os.O_PATH))
        with pytest.raises(_spare.SpareGone, match="cannot reach the spare"):
            spare.fork(theirs, stderr.fileno(), world, 10)
        for fd in world:
            os.close(fd)


def test_a_spare_retired_while_it_imports_is_stopped() -> None:
    spare = _spare.Spare()  # not the current one: this test's own
    assert spare.proc.poll() is None  # importing takes a tenth of a second
    spare.retire()
    assert spare.proc.returncode is not None
    assert not spare.usable


def test_exiting_while_the_spare_imports_stops_it() -> None:
    script = (
        "from tserver import _spare\n"
        "spare = _spare.Spare()\n"
        "_spare._current = spare\n"
        "print(spare.proc.pid, flush=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-X", "dev", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout.strip().isdigit()
    assert "still running" not in result.stderr, result.stderr
    assert "ResourceWarning" not in result.stderr, result.stderr
