"""Frames and commands of subprocess mode's socketpair: sans-I/O, no sockets."""

from __future__ import annotations

import dataclasses
import pickle
import struct

import pytest

from tserver import Headers, MultiDict, Request, Response, UploadedFile
from tserver._commands import AddRule, CheckReport, GetRequest, HandlerError, SetResponse
from tserver._records import TLSInfo
from tserver._request import request_from_wire, request_to_wire
from tserver._wire import (
    PIECE_BYTES,
    Failed,
    FrameDecoder,
    FrameError,
    Ok,
    Part,
    decode_frame,
    encode_frame,
    encode_frames,
    join_parts,
)

MESSAGES: list[object] = [
    SetResponse("data", b"x", "POST", once=True),
    AddRule(Response(b"rule", status=201), count=None, methods=("GET",), path="/a"),
    GetRequest(-2),
    Ok([Request("GET", "/h")]),
    Ok(None),
]


def decoded(frames: list[tuple[int, bool, bytes]]) -> list[tuple[int, object]]:
    assert not any(more for _, more, _ in frames)
    return [(seq, decode_frame(payload)) for seq, _, payload in frames]


def test_frame_is_a_header_of_length_and_seq_then_the_pickle() -> None:
    frame = encode_frame(GetRequest(3), seq=41)
    size, seq = struct.unpack(">QQ", frame[:16])
    assert (size, seq) == (len(frame) - 16, 41)
    assert decode_frame(frame[16:]) == GetRequest(3)


def test_one_whole_frame() -> None:
    decoder = FrameDecoder()
    assert decoded(decoder.feed(encode_frame(MESSAGES[0], 5))) == [(5, MESSAGES[0])]
    assert decoder.pending == 0


def test_seq_defaults_to_zero() -> None:
    assert decoded(FrameDecoder().feed(encode_frame("first"))) == [(0, "first")]


def test_several_frames_in_one_chunk_come_out_in_order() -> None:
    decoder = FrameDecoder()
    stream = b"".join(encode_frame(m, i) for i, m in enumerate(MESSAGES))
    assert decoded(decoder.feed(stream)) == list(enumerate(MESSAGES))
    assert decoder.pending == 0


def test_byte_by_byte_yields_each_message_when_its_last_byte_arrives() -> None:
    decoder = FrameDecoder()
    frames = [encode_frame(m, i) for i, m in enumerate(MESSAGES)]
    got: list[tuple[int, object]] = []
    for n, frame in enumerate(frames):
        for i, byte in enumerate(frame):
            out = decoded(decoder.feed(bytes([byte])))
            if i < len(frame) - 1:
                assert out == []
            else:
                assert out == [(n, MESSAGES[n])]
            got += out
    assert got == list(enumerate(MESSAGES))
    assert decoder.pending == 0


def test_split_inside_the_header() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(MESSAGES[1], 9)
    assert decoder.feed(frame[:11]) == []
    assert decoder.pending == 11
    assert decoded(decoder.feed(frame[11:])) == [(9, MESSAGES[1])]


def test_split_right_after_the_header() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(MESSAGES[1], 9)
    assert len(frame) > 40
    assert decoder.feed(frame[:16]) == []
    assert decoded(decoder.feed(frame[16:] + encode_frame("more", 10))) == [
        (9, MESSAGES[1]),
        (10, "more"),
    ]


def test_chunk_ending_mid_frame_keeps_the_rest() -> None:
    decoder = FrameDecoder()
    first, second = encode_frame(MESSAGES[0], 1), encode_frame(MESSAGES[2], 2)
    cut = len(first) + 5
    stream = first + second
    assert decoded(decoder.feed(stream[:cut])) == [(1, MESSAGES[0])]
    assert decoded(decoder.feed(memoryview(stream)[cut:])) == [(2, MESSAGES[2])]


def test_empty_feed_yields_nothing() -> None:
    assert FrameDecoder().feed(b"") == []


def test_oversized_header_raises_frame_error() -> None:
    decoder = FrameDecoder(max_frame=1000)
    with pytest.raises(FrameError, match=r"announces 1001 bytes, over the 1000 limit"):
        decoder.feed(struct.pack(">QQ", 1001, 1) + b"x")


def test_default_limit_refuses_a_garbage_length() -> None:
    with pytest.raises(FrameError, match="over the"):
        FrameDecoder().feed(b"\xff" * 16)


def test_a_corrupt_payload_fails_alone_when_decoded() -> None:
    payload = b"this is not a pickle"
    stream = struct.pack(">QQ", len(payload), 3) + payload + encode_frame("next", 4)
    (seq, _, bad), good = FrameDecoder().feed(stream)
    assert seq == 3
    with pytest.raises(FrameError, match=r"corrupt frame of 20 bytes"):
        decode_frame(bad)
    assert decoded([good]) == [(4, "next")]


@pytest.mark.parametrize("message", [*MESSAGES, Failed(KeyError("k")), CheckReport()])
def test_messages_compare_print_and_pickle_by_their_fields(message: object) -> None:
    copy = pickle.loads(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
    assert type(copy) is type(message)
    assert repr(copy) == repr(message)
    if not isinstance(message, Failed):  # exceptions compare by identity
        assert copy == message


def test_messages_of_different_types_never_compare_equal() -> None:
    assert GetRequest(1) == GetRequest(1)
    assert GetRequest(1) != GetRequest(2)
    assert Ok(None) != Failed(KeyError())
    assert Ok(1) != 1
    assert repr(SetResponse("data", b"x")) == (
        "SetResponse(key='data', value=b'x', method=None, once=False)"
    )
    assert SetResponse("data", b"x") != GetRequest(1)


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
    assert HandlerError("E", "m", "tb").portable() == HandlerError("E", "m", "tb")


def test_check_report_is_true_only_with_problems() -> None:
    assert not CheckReport()
    assert CheckReport(unmatched=("x",))
    assert CheckReport(unused_rules=("r",))
    assert CheckReport(errors=(HandlerError("E", "m", "tb"),))


def test_history_replies_carry_every_field_of_every_request() -> None:
    rich = Request(
        "POST",
        "/up",
        "a=1&a=2",
        MultiDict([("a", "1"), ("a", "2")]),
        Headers([("Content-Type", "multipart/form-data; boundary=x"), ("X-Two", "2")]),
        {"session": "s"},
        b"--x...",
        MultiDict([("field", "value")]),
        {"file": [UploadedFile("file", "a.txt", "text/plain", b"hello")]},
        "::1",
        5555,
        "HTTP/1.0",
        "https",
        "https://[::1]:8443/up?a=1&a=2",
        1700000000.25,
    )
    for reply in (Ok([rich, Request("GET", "/")]), Ok(rich), Ok([])):
        frame = encode_frame(reply, 3)
        [(seq, _, payload)] = FrameDecoder().feed(frame)
        back = decode_frame(payload)
        assert (seq, back) == (3, reply)
        assert isinstance(back, Ok)
        requests = back.value if isinstance(back.value, list) else [back.value]
        for got in requests:
            assert isinstance(got.headers, Headers)
            assert isinstance(got.args, MultiDict)
    plain = Request("GET", "/", "q=1", MultiDict([("q", "1")]), Headers([("A", "b")]))
    assert b"tserver" not in encode_frame(Ok([plain]))  # no class names on the hot path


def test_messages_are_frozen() -> None:
    message = SetResponse("data", b"x")
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'key'"):
        message.key = "json"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'value'"):
        del message.value  # type: ignore[misc]
    assert message == SetResponse("data", b"x")


# -- big replies in pieces ---------------------------------------------------------


def _big_history(count: int, size: int) -> list[Request]:
    return [Request("POST", f"/{n}", data=bytes([n % 256]) * size) for n in range(count)]


def test_a_big_history_travels_in_pieces_and_joins_back() -> None:
    history = _big_history(12, PIECE_BYTES // 4)
    frames = list(encode_frames(Ok(history), seq=7))
    assert len(frames) > 2  # several pieces, none holding the whole history
    assert max(len(f) for f in frames) < PIECE_BYTES + PIECE_BYTES // 2
    decoder = FrameDecoder()
    parts: list[Part] = []
    reply: object = None
    for data in frames:
        for seq, more, payload in decoder.feed(data):
            assert seq == 7
            message = decode_frame(payload)
            if more:
                assert isinstance(message, Part)
                parts.append(message)
            else:
                reply = message
    joined = join_parts(parts, reply)
    assert isinstance(joined, Ok)
    assert [r.path for r in joined.value] == [r.path for r in history]
    assert joined.value == history


def test_small_replies_and_failures_are_one_frame() -> None:
    assert len(list(encode_frames(Ok(_big_history(3, 10)), 1))) == 1
    assert len(list(encode_frames(Failed(KeyError("k")), 1))) == 1
    assert len(list(encode_frames(Ok(b"x" * (2 * PIECE_BYTES)), 1))) == 1  # not a history


def test_a_failure_after_pieces_is_the_reply() -> None:
    failure = Failed(KeyError("k"))
    assert join_parts([Part(_big_history(1, 1))], failure) is failure
    assert join_parts([], failure) is failure


# -- every field of a request crosses ----------------------------------------------

#: A value other than the default for every field of `Request`.  A field added
#: to `Request` must be added here, and `request_to_wire` must carry it.
NON_DEFAULT: dict[str, object] = {
    "method": "POST",
    "path": "/up",
    "query_string": "a=1&a=2",
    "args": MultiDict([("a", "1"), ("a", "2")]),
    "headers": Headers([("Content-Type", "text/plain"), ("X-Two", "2"), ("x-two", "3")]),
    "cookies": {"session": "s"},
    "data": b"--x...",
    "form": MultiDict([("field", "value")]),
    "files": {"file": [UploadedFile("file", "a.txt", "text/plain", b"hello")]},
    "client_ip": "::1",
    "client_port": 5555,
    "version": "HTTP/1.0",
    "scheme": "https",
    "url": "https://[::1]:8443/up?a=1&a=2",
    "received_at": 1700000000.25,
    "connection": 3,
    "exchange": 2,
    "raw_head": b"POST /up HTTP/1.0\r\nX-Two: 2\r\n\r\n",
    "raw_headers": (("X-Two", "2"), ("x-two", "3")),
    "chunk_sizes": (3, 1),
    "tls": TLSInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", "http/1.1", "localhost", {"a": 1}),
    "host": "api.example.test:8443",
    "proxied": True,
    "tunnel": "api.example.test:8443",
}


def test_every_request_field_survives_the_wire() -> None:
    # form and files are parsed from the body when read: given, they cross too
    names = [f.name for f in dataclasses.fields(Request)] + ["form", "files"]
    assert sorted(NON_DEFAULT) == sorted(names), "give every Request field a value here"
    request = Request(**NON_DEFAULT)  # type: ignore[arg-type]
    default = Request("GET", "/")
    for name in names:
        assert getattr(request, name) != getattr(default, name), name
    back = request_from_wire(pickle.loads(pickle.dumps(request_to_wire(request))))
    for name in names:
        assert getattr(back, name) == getattr(request, name), f"{name} did not cross"
    [(_, _, payload)] = FrameDecoder().feed(encode_frame(Ok([request]), 1))
    reply = decode_frame(payload)
    assert isinstance(reply, Ok)
    assert reply.value == [request]


def test_a_form_not_parsed_yet_crosses_unparsed() -> None:
    request = Request(
        "POST",
        "/f",
        headers=Headers([("Content-Type", "application/x-www-form-urlencoded")]),
        data=b"a=1&a=2&b=",
    )
    wire = request_to_wire(request)
    assert wire[7] is None  # nothing parsed to send
    back = request_from_wire(wire)
    assert back.form.multi_items() == [("a", "1"), ("a", "2"), ("b", "")]  # parsed here
    assert request_to_wire(back)[7] == (("a", "1"), ("a", "2"), ("b", ""))
