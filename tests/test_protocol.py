"""Framing and commands of the facade/child protocol: sans-I/O, no sockets."""

from __future__ import annotations

import pickle
import struct

import pytest

from tserver import Request, Response
from tserver._protocol import (
    AddRule,
    CheckReport,
    Failed,
    FrameDecoder,
    FrameError,
    GetRequest,
    HandlerError,
    Ok,
    SetResponse,
    decode_frame,
    encode_frame,
)

MESSAGES: list[object] = [
    SetResponse("data", b"x", "POST", once=True),
    AddRule(Response(b"rule", status=201), count=None, methods=("GET",), path="/a"),
    GetRequest(-2),
    Ok([Request("GET", "/h")]),
    Ok(None),
]


def test_frame_is_a_length_header_then_the_pickle() -> None:
    frame = encode_frame(GetRequest(3))
    (size,) = struct.unpack(">Q", frame[:8])
    assert size == len(frame) - 8
    assert pickle.loads(frame[8:]) == GetRequest(3)


def test_one_whole_frame() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame(MESSAGES[0])) == [MESSAGES[0]]
    assert decoder.pending == 0


def test_several_frames_in_one_chunk_come_out_in_order() -> None:
    decoder = FrameDecoder()
    stream = b"".join(encode_frame(m) for m in MESSAGES)
    assert decoder.feed(stream) == MESSAGES
    assert decoder.pending == 0


def test_byte_by_byte_yields_each_message_when_its_last_byte_arrives() -> None:
    decoder = FrameDecoder()
    frames = [encode_frame(m) for m in MESSAGES]
    got: list[object] = []
    for frame in frames:
        for i, byte in enumerate(frame):
            out = decoder.feed(bytes([byte]))
            if i < len(frame) - 1:
                assert out == []
            else:
                assert out == [frame_message(frame)]
            got += out
    assert got == MESSAGES
    assert decoder.pending == 0


def frame_message(frame: bytes) -> object:
    return pickle.loads(frame[8:])


def test_split_inside_the_header() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(MESSAGES[1])
    assert decoder.feed(frame[:3]) == []
    assert decoder.pending == 3
    assert decoder.feed(frame[3:]) == [MESSAGES[1]]


def test_chunk_ending_mid_frame_keeps_the_rest() -> None:
    decoder = FrameDecoder()
    first, second = encode_frame(MESSAGES[0]), encode_frame(MESSAGES[2])
    cut = len(first) + 5
    stream = first + second
    assert decoder.feed(stream[:cut]) == [MESSAGES[0]]
    assert decoder.feed(stream[cut:]) == [MESSAGES[2]]


def test_empty_feed_yields_nothing() -> None:
    assert FrameDecoder().feed(b"") == []


def test_oversized_header_raises_frame_error() -> None:
    decoder = FrameDecoder(max_frame=1000)
    with pytest.raises(FrameError, match=r"announces 1001 bytes, over the 1000 limit"):
        decoder.feed(struct.pack(">Q", 1001) + b"x")


def test_default_limit_refuses_a_garbage_length() -> None:
    with pytest.raises(FrameError, match="over the"):
        FrameDecoder().feed(b"\xff" * 8)


def test_corrupt_payload_raises_frame_error() -> None:
    payload = b"this is not a pickle"
    with pytest.raises(FrameError, match=r"corrupt frame of 20 bytes"):
        FrameDecoder().feed(struct.pack(">Q", len(payload)) + payload)


def test_frame_error_is_a_value_error() -> None:
    assert issubclass(FrameError, ValueError)
    with pytest.raises(ValueError, match="corrupt frame"):
        decode_frame(b"\x80\x05junk")


def test_failed_reply_carries_the_exception() -> None:
    reply = pickle.loads(pickle.dumps(Failed(KeyError("k"))))
    assert isinstance(reply.error, KeyError)
    assert reply.error.args == ("k",)


def test_handler_error_portable_drops_an_unpicklable_exception() -> None:
    class Local(Exception):
        pass

    error = HandlerError("Local", "boom", "Traceback ...", Request("GET", "/"), Local("boom"))
    portable = error.portable()
    assert portable.exception is None
    assert (portable.type_name, portable.message, portable.traceback) == (
        "Local",
        "boom",
        "Traceback ...",
    )
    pickle.dumps(portable)


def test_handler_error_portable_keeps_a_picklable_exception() -> None:
    error = HandlerError("ValueError", "bad", "tb", None, ValueError("bad"))
    assert error.portable() is error


def test_check_report_is_true_only_with_problems() -> None:
    assert not CheckReport()
    assert CheckReport(unmatched=("x",))
    assert CheckReport(unused_rules=("r",))
    assert CheckReport(errors=(HandlerError("E", "m", "tb"),))
