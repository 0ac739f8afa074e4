"""Unit tests of `tserver._channel.Channel` over a bare socketpair: the test plays the child.

No child process and no server: the test holds the other end of a
`socket.socketpair`, reads the command frames with a `FrameDecoder` and
writes replies with `encode_frame` (or `encode_frames`).  Blocking calls
run in threads (`Call`); the test synchronises with events and with the
peer reading a command (which proves it was sent), never by sleeping.
Where a test must know which thread reads, the Channel runs over a
`PatientSocket`, whose reads wait for data instead of timing out every
slice, so the thread that reads keeps reading until the test sends.
"""

from __future__ import annotations

import asyncio
import functools
import select
import signal
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers.requests import make_request

from tserver._channel import Channel, ChannelEOF, ChannelState, ChannelTimeout
from tserver._wire import (
    MAX_FRAME,
    FrameDecoder,
    FrameError,
    Ok,
    Part,
    decode_frame,
    encode_frame,
    encode_frames,
    encode_payload,
    frame_header,
)

#: How long something that should happen at once may take before the test fails.
PATIENCE = 5.0
#: A short call timeout, for the tests about timeouts.
SHORT = 0.3

Frame = tuple[int, bool, bytes]


# -- the rig: a channel, the peer that plays the child, threads that call -------------------


class Peer:
    """The child's end of the socketpair: reads command frames, writes reply frames."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.settimeout(PATIENCE)
        self.decoder = FrameDecoder()
        self.frames: deque[Frame] = deque()
        self.received = 0  # bytes, by `frames_until`

    def frame(self) -> tuple[int, bytes]:
        """The next whole frame the channel sent: its seq and its raw payload."""
        while not self.frames:
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError("the channel's end closed")
            self.frames.extend(self.decoder.feed(data))
        seq, more, payload = self.frames.popleft()
        assert not more, "a command never comes in pieces"
        return seq, payload

    def command(self) -> tuple[int, object]:
        """The next command: its seq and its unpickled message."""
        seq, payload = self.frame()
        return seq, decode_frame(payload)

    def reply(self, seq: int, value: object) -> None:
        self.sock.sendall(encode_frame(Ok(value), seq))

    def silent(self) -> bool:
        """Whether the channel sent nothing more (not a byte) than what was read."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        return not readable and not self.frames and self.decoder.pending == 0

    def frames_until(self, done: threading.Event) -> list[Frame]:
        """Every frame received until *done* is set and nothing more is there to read."""
        frames: list[Frame] = []
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            finished = done.is_set()  # set before: whatever was sent is readable now
            readable, _, _ = select.select([self.sock], [], [], 0.05)
            if not readable:
                if finished:
                    break
                continue
            data = self.sock.recv(1 << 20)
            if not data:
                break
            self.received += len(data)
            frames += self.decoder.feed(data)
        return frames


class Call:
    """A channel call running in its own thread, its outcome kept for the test."""

    def __init__(self, fn: Callable[..., object], *args: object) -> None:
        self.value: object = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[..., object], args: tuple[object, ...]) -> None:
        try:
            self.value = fn(*args)
        except BaseException as exc:  # KeyboardInterrupt too: the test looks at it
            self.error = exc
        finally:
            self.done.set()

    def result(self) -> object:
        """What the call returned (it must return, within `PATIENCE`)."""
        self.thread.join(PATIENCE)
        assert not self.thread.is_alive(), "the call is still blocked"
        assert self.error is None, f"the call raised {self.error!r}"
        return self.value

    def exception(self) -> BaseException:
        """What the call raised (it must raise, within `PATIENCE`)."""
        self.thread.join(PATIENCE)
        assert not self.thread.is_alive(), "the call is still blocked"
        assert self.error is not None, f"the call returned {self.value!r} instead of raising"
        return self.error


class Rig:
    """A `Channel` over one end of a socketpair, a `Peer` on the other, and calls."""

    def __init__(self, wrap: Callable[[socket.socket], Any] | None = None) -> None:
        ours, theirs = socket.socketpair()
        self.sock = ours
        self.peer = Peer(theirs)
        self.calls: list[Call] = []
        try:
            self.channel = Channel(ours if wrap is None else wrap(ours))
        except BaseException:
            ours.close()
            theirs.close()
            raise

    def call(self, fn: Callable[..., object], *args: object) -> Call:
        call = Call(fn, *args)
        self.calls.append(call)
        return call

    def close(self) -> None:
        try:
            self.channel.close()  # wakes any call still blocked
            for call in self.calls:
                call.thread.join(PATIENCE)
        finally:
            self.sock.close()
            self.peer.sock.close()


@pytest.fixture
def make_rig() -> Iterator[Callable[..., Rig]]:
    """Makes rigs (optionally over a wrapped socket); closes them all after the test."""
    rigs: list[Rig] = []

    def make(wrap: Callable[[socket.socket], Any] | None = None) -> Rig:
        rig = Rig(wrap)
        rigs.append(rig)
        return rig

    try:
        yield make
    finally:
        for rig in rigs:
            rig.close()


@pytest.fixture
def rig(make_rig: Callable[..., Rig]) -> Rig:
    return make_rig()


class WrappedSocket:
    """The socket as the Channel sees it: only the methods it calls, passed on."""

    def __init__(self, sock: socket.socket) -> None:
        self.real = sock

    def fileno(self) -> int:
        return self.real.fileno()

    def setsockopt(self, level: int, option: int, value: bytes) -> None:
        self.real.setsockopt(level, option, value)

    def send(self, data: Any, flags: int = 0) -> int:
        return self.real.send(data, flags)

    def recv_into(self, buffer: Any) -> int:
        return self.real.recv_into(buffer)

    def shutdown(self, how: int) -> None:
        self.real.shutdown(how)

    def close(self) -> None:
        self.real.close()


class PatientSocket(WrappedSocket):
    """Reads wait until data comes (or the end closes), and say which thread read what."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.entered = threading.Event()  # a thread is in recv_into
        self.reads: list[tuple[int, bytes]] = []

    def recv_into(self, buffer: Any) -> int:
        self.entered.set()
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                size = self.real.recv_into(buffer)
            except BlockingIOError:  # the channel's receive timeout: wait on
                if time.monotonic() > deadline:
                    raise
                continue
            if size:
                self.reads.append((threading.get_ident(), bytes(buffer[:size])))
            return size

    def readers(self) -> dict[int, int]:
        """For each seq received: the thread whose read completed its frame."""
        decoder = FrameDecoder()
        return {seq: ident for ident, data in list(self.reads) for seq, _, _ in decoder.feed(data)}


#: How many bytes a partial send lets out.
PARTIAL = 1000


class InterruptingSocket(WrappedSocket):
    """Sends follow a script: a real SIGINT where Ctrl-C would strike.

    Steps, one per call of `send` (then plain sends): ``"send"``;
    ``"partial"``, send at most `PARTIAL` bytes; ``"interrupt"``, SIGINT
    before sending anything; ``"partial, then interrupt"``, send at most
    `PARTIAL` bytes, then SIGINT (a Ctrl-C during the syscall: CPython runs
    the handler as the call returns, before its caller sees how many bytes
    went out).  The signal is raised in the thread that sends, which must be
    the main thread (only it runs signal handlers).
    """

    def __init__(self, sock: socket.socket, script: list[str]) -> None:
        super().__init__(sock)
        self.script = deque(script)

    def send(self, data: Any, flags: int = 0) -> int:
        step = self.script.popleft() if self.script else "send"
        if step == "interrupt":
            signal.raise_signal(signal.SIGINT)
        view = memoryview(data)
        sent = self.real.send(view if step == "send" else view[:PARTIAL], flags)
        if step == "partial, then interrupt":
            signal.raise_signal(signal.SIGINT)
        return sent


def state_of(channel: Channel) -> ChannelState:
    """The channel's state, read anew (no narrowing by an earlier assertion)."""
    return channel.state


def assert_idle(channel: Channel) -> None:
    """Nothing left behind: no call waiting, no reply kept, nobody reading."""
    assert channel._reader is None
    assert channel._waiting == set()
    assert channel._replies == {}
    assert channel._submitted == {}
    assert channel._parts == {}


# -- 1. request and reply, paired by seq --------------------------------------------------


def test_a_request_gets_its_reply(rig: Rig) -> None:
    call = rig.call(rig.channel.request, encode_payload(("ping", 1)), PATIENCE)
    seq, message = rig.peer.command()
    assert message == ("ping", 1)
    assert seq == 1
    rig.peer.reply(seq, "pong")
    assert call.result() == Ok("pong")
    assert rig.channel.state is ChannelState.OPEN
    assert_idle(rig.channel)


@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "in-one-write"])
def test_replies_out_of_order_reach_their_callers(rig: Rig, together: bool) -> None:
    first = rig.call(rig.channel.request, encode_payload("first"), PATIENCE)
    first_seq, message = rig.peer.command()
    assert message == "first"
    second = rig.call(rig.channel.request, encode_payload("second"), PATIENCE)
    second_seq, message = rig.peer.command()
    assert message == "second"
    assert first_seq != second_seq
    if together:
        rig.peer.sock.sendall(
            encode_frame(Ok("for second"), second_seq) + encode_frame(Ok("for first"), first_seq)
        )
    else:
        rig.peer.reply(second_seq, "for second")
        assert second.result() == Ok("for second")  # while the first still waits
        assert not first.done.is_set()
        rig.peer.reply(first_seq, "for first")
    assert second.result() == Ok("for second")
    assert first.result() == Ok("for first")
    assert_idle(rig.channel)


# -- 2. leader and followers ----------------------------------------------------------------


def test_the_reading_thread_hands_another_call_its_reply(make_rig: Callable[..., Rig]) -> None:
    sock: PatientSocket | None = None

    def wrap(real: socket.socket) -> PatientSocket:
        nonlocal sock
        sock = PatientSocket(real)
        return sock

    rig = make_rig(wrap)
    assert sock is not None
    leader = rig.call(rig.channel.request, encode_payload("leader"), PATIENCE)
    assert sock.entered.wait(PATIENCE)
    assert rig.channel._reader == leader.thread.ident  # blocked reading
    leader_seq, _ = rig.peer.command()
    follower = rig.call(rig.channel.request, encode_payload("follower"), PATIENCE)
    follower_seq, _ = rig.peer.command()  # sent: it waits for its reply now
    assert rig.channel._reader == leader.thread.ident

    rig.peer.reply(follower_seq, "for the follower")
    assert follower.result() == Ok("for the follower")
    assert sock.readers()[follower_seq] == leader.thread.ident  # handed over by the leader
    assert not leader.done.is_set()

    rig.peer.reply(leader_seq, "for the leader")
    assert leader.result() == Ok("for the leader")
    assert sock.readers()[leader_seq] == leader.thread.ident
    assert_idle(rig.channel)


def test_the_helper_thread_reading_for_a_submit_hands_a_request_its_reply(
    make_rig: Callable[..., Rig],
) -> None:
    sock: PatientSocket | None = None

    def wrap(real: socket.socket) -> PatientSocket:
        nonlocal sock
        sock = PatientSocket(real)
        return sock

    rig = make_rig(wrap)
    assert sock is not None
    pending = rig.channel.submit(encode_payload("awaited"))
    assert sock.entered.wait(PATIENCE)
    helper = rig.channel._helper.ident
    assert rig.channel._reader == helper
    submitted_seq, _ = rig.peer.command()
    call = rig.call(rig.channel.request, encode_payload("blocking"), PATIENCE)
    call_seq, _ = rig.peer.command()

    rig.peer.reply(call_seq, "for the blocking call")
    assert call.result() == Ok("for the blocking call")
    assert sock.readers()[call_seq] == helper
    assert not pending.done

    rig.peer.reply(submitted_seq, "for the awaited call")
    assert pending.wait(PATIENCE)
    assert pending.result() == Ok("for the awaited call")
    assert_idle(rig.channel)


# -- 3. submit: a Pending, completed by the helper thread -------------------------------------


def test_submit_is_completed_by_the_helper_thread(rig: Rig) -> None:
    pending = rig.channel.submit(encode_payload("submitted"))
    completed_in: list[str] = []
    called = threading.Event()

    def done() -> None:
        completed_in.append(threading.current_thread().name)
        called.set()

    pending.add_done_callback(done)  # not done yet: called by whoever completes it
    assert not pending.done
    seq, message = rig.peer.command()
    assert message == "submitted"
    rig.peer.reply(seq, ["the", "value"])
    assert pending.wait(PATIENCE)
    assert pending.result() == Ok(["the", "value"])
    assert called.wait(PATIENCE)
    assert completed_in == [rig.channel._helper.name]
    assert_idle(rig.channel)


def test_submit_awaited_under_asyncio(rig: Rig) -> None:
    async def main() -> object:
        pending = rig.channel.submit(encode_payload("awaited"))
        waiter = asyncio.ensure_future(pending.wait_async(PATIENCE))
        await asyncio.sleep(0)  # the waiter starts waiting
        assert not waiter.done()
        seq, message = rig.peer.command()
        rig.peer.reply(seq, ("reply to", message))
        assert await waiter
        return pending.result()

    assert asyncio.run(main()) == Ok(("reply to", "awaited"))
    assert_idle(rig.channel)


# -- 4. late replies --------------------------------------------------------------------------


def test_a_late_reply_is_dropped_and_the_next_call_gets_its_own(rig: Rig) -> None:
    with pytest.raises(ChannelTimeout):
        rig.channel.request(encode_payload("slow"), SHORT)
    late_seq, message = rig.peer.command()
    assert message == "slow"
    assert rig.channel._waiting == set()  # it gave up: nobody waits for late_seq

    call = rig.call(rig.channel.request, encode_payload("next"), PATIENCE)
    next_seq, message = rig.peer.command()
    assert message == "next"
    rig.peer.reply(late_seq, "too late")
    rig.peer.reply(next_seq, "just in time")
    assert call.result() == Ok("just in time")
    assert rig.channel.state is ChannelState.OPEN
    assert_idle(rig.channel)


# -- 5. timeouts follow progress --------------------------------------------------------------


def test_a_silent_peer_times_out(rig: Rig) -> None:
    started = time.monotonic()
    with pytest.raises(ChannelTimeout):
        rig.channel.request(encode_payload("anyone?"), SHORT)
    elapsed = time.monotonic() - started
    assert SHORT <= elapsed < SHORT + 1.0
    _, message = rig.peer.command()  # it was sent all the same
    assert message == "anyone?"
    assert rig.channel.state is ChannelState.OPEN
    assert_idle(rig.channel)


def test_a_reply_that_keeps_arriving_is_not_cut_off(rig: Rig) -> None:
    started = time.monotonic()
    call = rig.call(rig.channel.request, encode_payload("big"), SHORT)
    seq, _ = rig.peer.command()
    value = bytes(range(256)) * 24
    data = encode_frame(Ok(value), seq)
    size = len(data) // 6 + 1
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    assert len(pieces) == 6
    slow_peer = threading.Event()
    for piece in pieces:
        slow_peer.wait(0.1)  # well within the timeout, each time
        rig.peer.sock.sendall(piece)
    assert call.result() == Ok(value)
    assert time.monotonic() - started > 2 * SHORT  # the whole reply took longer than that
    assert_idle(rig.channel)


# -- 6. replies in several frames -------------------------------------------------------------


def history(count: int) -> list[Any]:
    return [
        make_request("POST", f"/{i}", data=bytes([65 + i]) * (50 + 10 * i)) for i in range(count)
    ]


def test_a_history_in_pieces_is_joined_in_order(rig: Rig) -> None:
    requests = history(12)
    call = rig.call(rig.channel.request, encode_payload("history"), PATIENCE)
    seq, _ = rig.peer.command()
    frames = list(encode_frames(Ok(requests), seq, piece=300))
    assert len(frames) >= 4  # really in pieces
    first = FrameDecoder().feed(frames[0])
    assert first[0][1]  # more to come
    assert isinstance(decode_frame(first[0][2]), Part)
    for data in frames:
        rig.peer.sock.sendall(data)
    reply = call.result()
    assert isinstance(reply, Ok)
    assert [r.path for r in reply.value] == [r.path for r in requests]
    assert reply == Ok(requests)
    assert_idle(rig.channel)


def test_pieces_of_a_history_interleaved_with_another_reply(rig: Rig) -> None:
    requests = history(12)
    pending = rig.channel.submit(encode_payload("history"))
    history_seq, _ = rig.peer.command()
    call = rig.call(rig.channel.request, encode_payload("count"), PATIENCE)
    count_seq, _ = rig.peer.command()
    frames = list(encode_frames(Ok(requests), history_seq, piece=300))
    half = len(frames) // 2
    rig.peer.sock.sendall(b"".join(frames[:half]))
    rig.peer.reply(count_seq, 12)
    assert call.result() == Ok(12)
    assert not pending.done
    rig.peer.sock.sendall(b"".join(frames[half:]))
    assert pending.wait(PATIENCE)
    assert pending.result() == Ok(requests)
    assert_idle(rig.channel)


# -- 7. end of file ---------------------------------------------------------------------------


def test_the_peer_closing_fails_every_waiting_call(rig: Rig) -> None:
    pending = rig.channel.submit(encode_payload("awaited"))
    rig.peer.command()
    call = rig.call(rig.channel.request, encode_payload("blocking"), PATIENCE)
    rig.peer.command()  # both sent, both waiting
    rig.peer.sock.close()
    assert isinstance(call.exception(), ChannelEOF)
    assert pending.wait(PATIENCE)
    with pytest.raises(ChannelEOF):
        pending.result()
    assert rig.channel.state is ChannelState.EOF
    with pytest.raises(ChannelEOF):
        rig.channel.send(encode_payload("later"), None)
    with pytest.raises(ChannelEOF):
        rig.channel.submit(encode_payload("later"))
    assert_idle(rig.channel)


def test_writing_to_a_closed_peer_is_eof(rig: Rig) -> None:
    rig.peer.sock.close()
    assert state_of(rig.channel) is ChannelState.OPEN  # nobody read: not noticed yet
    with pytest.raises(ChannelEOF):
        rig.channel.request(encode_payload("anyone?"), PATIENCE)  # BrokenPipeError inside
    assert state_of(rig.channel) is ChannelState.EOF
    assert_idle(rig.channel)
    with pytest.raises(ChannelEOF):
        rig.channel.request(encode_payload("again"), PATIENCE)


def test_a_corrupt_frame_header_is_the_end_of_the_stream(rig: Rig) -> None:
    call = rig.call(rig.channel.request, encode_payload("hello"), PATIENCE)
    seq, _ = rig.peer.command()
    rig.peer.sock.sendall(struct.pack(">QQ", MAX_FRAME + 1, seq))
    assert isinstance(call.exception(), ChannelEOF)
    assert rig.channel.state is ChannelState.EOF


# -- 8. goodbye -------------------------------------------------------------------------------


@pytest.mark.parametrize("then_exit", [False, True], ids=["stays", "exits-after-replying"])
def test_goodbye_is_the_last_command(rig: Rig, then_exit: bool) -> None:
    call = rig.call(rig.channel.goodbye, encode_payload("bye"), PATIENCE)
    seq, message = rig.peer.command()
    assert message == "bye"
    assert rig.channel.state is ChannelState.CLOSING
    with pytest.raises(ChannelEOF):
        rig.channel.request(encode_payload("one more"), PATIENCE)
    with pytest.raises(ChannelEOF):
        rig.channel.submit(encode_payload("one more"))
    with pytest.raises(ChannelEOF):
        rig.channel.goodbye(encode_payload("bye again"), PATIENCE)
    assert rig.peer.silent()  # none of them was sent
    rig.peer.reply(seq, "farewell")
    if then_exit:
        rig.peer.sock.close()
    assert call.result() == Ok("farewell")
    assert rig.channel.state in (
        (ChannelState.CLOSING, ChannelState.EOF) if then_exit else (ChannelState.CLOSING,)
    )
    assert_idle(rig.channel)


# -- 9. close ---------------------------------------------------------------------------------


def test_close_ends_everything_once(rig: Rig) -> None:
    pending = rig.channel.submit(encode_payload("never answered"))
    rig.peer.command()
    helper = rig.channel._helper
    assert helper.is_alive()
    rig.channel.close()
    assert rig.channel.state is ChannelState.CLOSED
    assert not helper.is_alive()
    assert rig.sock.fileno() == -1
    assert pending.done
    with pytest.raises(ChannelEOF):
        pending.result()
    rig.channel.close()  # again: nothing happens
    assert rig.channel.state is ChannelState.CLOSED
    with pytest.raises(ChannelEOF):
        rig.channel.request(encode_payload("after close"), PATIENCE)
    assert rig.channel._waiting == set()


def test_close_wakes_a_blocked_request(rig: Rig) -> None:
    call = rig.call(rig.channel.request, encode_payload("waits"), PATIENCE * 2)
    rig.peer.command()
    rig.channel.close()
    assert isinstance(call.exception(), ChannelEOF)  # within PATIENCE, not its timeout
    assert rig.channel._reader is None


# -- 10. a reply that does not unpickle fails alone -------------------------------------------

GARBAGE = b"this is not a pickle"


def test_a_reply_that_does_not_unpickle_fails_only_its_request(rig: Rig) -> None:
    bad = rig.call(rig.channel.request, encode_payload("bad"), PATIENCE)
    bad_seq, _ = rig.peer.command()
    good = rig.call(rig.channel.request, encode_payload("good"), PATIENCE)
    good_seq, _ = rig.peer.command()
    rig.peer.sock.sendall(
        frame_header(len(GARBAGE), bad_seq) + GARBAGE + encode_frame(Ok("fine"), good_seq)
    )
    assert good.result() == Ok("fine")
    assert isinstance(bad.exception(), FrameError)
    assert rig.channel.state is ChannelState.OPEN
    assert_idle(rig.channel)


def test_a_reply_that_does_not_unpickle_fails_only_its_submit(rig: Rig) -> None:
    pending = rig.channel.submit(encode_payload("bad"))
    bad_seq, _ = rig.peer.command()
    good = rig.call(rig.channel.request, encode_payload("good"), PATIENCE)
    good_seq, _ = rig.peer.command()
    rig.peer.sock.sendall(
        frame_header(len(GARBAGE), bad_seq) + GARBAGE + encode_frame(Ok("fine"), good_seq)
    )
    assert good.result() == Ok("fine")
    assert pending.wait(PATIENCE)
    with pytest.raises(FrameError):
        pending.result()
    assert rig.channel.state is ChannelState.OPEN
    again = rig.call(rig.channel.request, encode_payload("again"), PATIENCE)
    seq, _ = rig.peer.command()
    rig.peer.reply(seq, "still in step")
    assert again.result() == Ok("still in step")
    assert_idle(rig.channel)


# -- 11. an interrupt never leaves half a frame -----------------------------------------------


def interrupted_send(make_rig: Callable[..., Rig], script: list[str], size: int) -> None:
    """*size* bytes sent from the main thread under *script*: Ctrl-C comes, the frame whole."""
    assert threading.current_thread() is threading.main_thread()
    rig = make_rig(lambda real: InterruptingSocket(real, script))
    payload = encode_payload(bytes(range(256)) * (size // 256))
    sent = threading.Event()
    frames: list[Frame] = []
    reader = threading.Thread(target=lambda: frames.extend(rig.peer.frames_until(sent)))
    reader.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            rig.channel.request(payload, PATIENCE)
    finally:
        sent.set()
        reader.join(PATIENCE)
    whole = len(frame_header(len(payload), 1)) + len(payload)
    assert rig.peer.received == whole, (
        f"{rig.peer.received} bytes of a frame of {whole} were left on the stream"
    )
    assert len(frames) == 1
    seq, more, received = frames[0]
    assert (seq, more) == (1, False)
    assert received == payload
    assert rig.channel.state is ChannelState.OPEN
    assert_idle(rig.channel)  # the interrupted call waits for nothing
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    # still in step: the late reply is dropped; the next command and its reply pair up
    rig.peer.reply(1, "late")
    call = rig.call(rig.channel.request, encode_payload("next"), PATIENCE)
    seq, message = rig.peer.command()
    assert (seq, message) == (2, "next")
    rig.peer.reply(seq, "in step")
    assert call.result() == Ok("in step")


@pytest.mark.parametrize(
    ("script", "size"),
    [
        (["partial", "interrupt"], 10_000),  # header and payload in one buffer
        (["send", "interrupt"], 4 << 20),  # the header alone is out
        (["send", "partial", "interrupt"], 4 << 20),  # in the middle of the payload
    ],
    ids=["small-mid-frame", "big-after-header", "big-mid-payload"],
)
def test_an_interrupt_in_the_middle_of_a_frame_is_held_back(
    make_rig: Callable[..., Rig], script: list[str], size: int
) -> None:
    interrupted_send(make_rig, script, size)


@pytest.mark.parametrize(
    ("script", "size"),
    [
        (["partial, then interrupt"], 10_000),  # part of the one buffer is out
        (["partial, then interrupt"], 4 << 20),  # the header is out
    ],
    ids=["small", "big"],
)
def test_an_interrupt_as_the_first_send_returns_is_held_back(
    make_rig: Callable[..., Rig], script: list[str], size: int
) -> None:
    interrupted_send(make_rig, script, size)


@pytest.mark.parametrize("how", ["request", "submit"])
def test_an_interrupt_before_the_first_send_still_sends_the_frame_whole(
    make_rig: Callable[..., Rig], how: str
) -> None:
    """Ctrl-C as the frame starts: the frame goes out whole, then the interrupt."""
    rig = make_rig(lambda real: InterruptingSocket(real, ["interrupt"]))
    payload = encode_payload("interrupted")
    send: Callable[[bytes], object] = (
        functools.partial(rig.channel.request, timeout=PATIENCE)
        if how == "request"
        else rig.channel.submit
    )
    with pytest.raises(KeyboardInterrupt):
        send(payload)
    seq, message = rig.peer.command()  # one whole frame, nothing more
    assert (seq, message) == (1, "interrupted")
    assert rig.channel.state is ChannelState.OPEN
    assert rig.channel._waiting == set()
    assert rig.channel._submitted == {}
    rig.peer.reply(1, "late: dropped")
    call = rig.call(rig.channel.request, encode_payload("next"), PATIENCE)
    seq, message = rig.peer.command()
    assert (seq, message) == (2, "next")
    rig.peer.reply(seq, "in step")
    assert call.result() == Ok("in step")
