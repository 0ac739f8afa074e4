"""Content codings (SPEC §10): compressed answers, streamed per chunk, and decoded uploads."""

from __future__ import annotations

import gzip
import socket
import zlib
from typing import BinaryIO

import brotli
import httpx
import pytest
import requests
import zstandard

from tserver import Event, Response, TestServer
from tserver._encoding import DECODED_MAX, decode_body

ENCODINGS = ["gzip", "deflate", "br", "zstd"]


def _decompress(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "br":
        return bytes(brotli.decompress(data))
    return zstandard.ZstdDecompressor().stream_reader(data).read()


def _compress(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "br":
        return bytes(brotli.compress(data))
    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_compressed_answer(server: TestServer, encoding: str) -> None:
    body = b"hello " * 1000
    server.add_response(Response(body, encoding=encoding))
    response = requests.get(server.url, timeout=10, stream=True)
    raw = response.raw.read(decode_content=False)
    assert response.headers["Content-Encoding"] == encoding
    assert int(response.headers["Content-Length"]) == len(raw) < len(body)
    assert _decompress(encoding, raw) == body


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_clients_decode_it(server: TestServer, encoding: str) -> None:
    server.add_response(Response(json={"ok": True}, encoding=encoding), count=None)
    assert requests.get(server.url, timeout=10).json() == {"ok": True}
    assert httpx.get(server.url, timeout=10).json() == {"ok": True}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_each_streamed_chunk_decodes_as_it_arrives(server: TestServer, encoding: str) -> None:
    server.add_response(Response(hold="body", encoding=encoding))
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = sock.makefile("rb")
        head = b"".join(iter(reader.readline, b"\r\n"))
        assert f"Content-Encoding: {encoding}\r\n".encode() in head
        held = server.wait_held()
        decoder = _Decoder(encoding)
        for piece in (b"first piece", b"second piece"):
            held.send(piece)
            assert decoder.feed(_read_chunk(reader)) == piece  # whole, before the next exists
        held.release()
        while chunk := _read_chunk(reader):
            decoder.feed(chunk)
        assert decoder.ended()
        reader.close()


def test_a_compressed_event_stream(server: TestServer) -> None:
    server.add_response(Response(events=[Event("a"), Event("b")], encoding="gzip"))
    with httpx.Client(timeout=10) as client:
        response = client.get(server.url)
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.text == "data: a\n\ndata: b\n\n"


def test_a_deliberate_lie_stays_possible(server: TestServer) -> None:
    server.add_response(Response(b"plain", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(requests.exceptions.ContentDecodingError):
        requests.get(server.url, timeout=10)
    server.add_response(Response(b"x" * 100, encoding="gzip", headers={"Content-Encoding": "br"}))
    response = requests.get(server.url, timeout=10, stream=True)
    assert response.headers["Content-Encoding"] == "br"  # the header as given
    assert gzip.decompress(response.raw.read(decode_content=False)) == b"x" * 100


def test_a_bad_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match="encoding 'lzma'; expected None, 'gzip'"):
        Response(b"x", encoding="lzma")
    with pytest.raises(ValueError, match="Content-Length 5 but the body has"):
        Response(b"hello", encoding="gzip", headers={"Content-Length": "5"})
    length = len(zlib.compress(b"hello"))
    assert Response(b"hello", encoding="deflate", headers={"Content-Length": str(length)})


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_an_encoded_upload_keeps_its_bytes_and_reads_decoded(
    server: TestServer, encoding: str
) -> None:
    raw = _compress(encoding, b'{"n": 1}')
    headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
    requests.post(server.url, data=raw, headers=headers, timeout=10)
    request = server.wait_request()
    assert request.data == raw
    assert request.content == b'{"n": 1}'
    assert request.text == '{"n": 1}'
    assert request.json() == {"n": 1}
    server.assert_request().has_json({"n": 1})


def test_an_encoded_form_reads_decoded(server: TestServer) -> None:
    raw = gzip.compress(b"a=1&b=2")
    headers = {
        "Content-Encoding": "gzip",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    requests.post(server.url, data=raw, headers=headers, timeout=10)
    assert server.wait_request().form.to_dict() == {"a": ["1"], "b": ["2"]}


def test_what_does_not_decode_is_left_as_it_came() -> None:
    assert decode_body("gzip", b"not gzip") == b"not gzip"
    assert decode_body("unknown", b"x") == b"x"
    assert decode_body("gzip, identity", gzip.compress(b"x")) == b"x"
    assert decode_body("deflate", zlib.compress(b"x")[2:-4]) == b"x"  # raw deflate too
    bomb = gzip.compress(b"\0" * (DECODED_MAX + 1))
    with pytest.raises(ValueError, match="decodes to more than"):
        decode_body("gzip", bomb)


def test_br_and_zstd_name_the_extra_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "brotli", None)  # import brotli now fails
    with pytest.raises(ValueError, match=r"pip install 'tserver\[compression\]'"):
        Response(b"x", encoding="br")


# -- reading helpers ------------------------------------------------------------------------


class _Decoder:
    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding in ("gzip", "deflate"):
            self.state = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        elif encoding == "br":
            self.state = brotli.Decompressor()
        else:
            self.state = zstandard.ZstdDecompressor().decompressobj()

    def feed(self, data: bytes) -> bytes:
        if self.encoding == "br":
            return bytes(self.state.process(data))
        return bytes(self.state.decompress(data))

    def ended(self) -> bool:
        if self.encoding in ("gzip", "deflate"):
            return bool(self.state.eof)
        if self.encoding == "br":
            return bool(self.state.is_finished())
        return bool(self.state.eof)


def _read_chunk(reader: BinaryIO) -> bytes:
    """One chunk of a chunked body, read whole (``b""``: the last chunk)."""
    size = int(reader.readline().strip(), 16)
    data = reader.read(size + 2)
    return data[:-2]


def test_bodies_that_do_not_decode_whole_are_left_as_they_came() -> None:
    full = gzip.compress(b"x" * 5000)
    assert decode_body("gzip", full[: len(full) // 2]) == full[: len(full) // 2]
    assert decode_body("gzip", full + b"GARBAGE") == full + b"GARBAGE"
    assert decode_body("gzip", gzip.compress(b"AAA") + gzip.compress(b"BBB")) == b"AAABBB"
    frame = zstandard.ZstdCompressor().compress(bytes(range(256)) * 40)
    cut = frame[: len(frame) // 2]
    assert decode_body("zstd", cut) == cut
    deflated = zlib.compress(b"z" * 5000)
    assert decode_body("deflate", deflated[:-6]) == deflated[:-6]


def test_an_encoded_multipart_upload_reads_its_files_decoded(server: TestServer) -> None:
    prepared = requests.Request(
        "POST", server.url, files={"doc": ("a.txt", b"file body")}, data={"k": "v"}
    ).prepare()
    assert isinstance(prepared.body, bytes)
    raw = gzip.compress(prepared.body)
    headers = {"Content-Type": prepared.headers["Content-Type"], "Content-Encoding": "gzip"}
    requests.post(server.url, data=raw, headers=headers, timeout=10)
    request = server.wait_request()
    assert request.data == raw
    assert request.files["doc"][0].data == b"file body"
    assert request.form["k"] == "v"
