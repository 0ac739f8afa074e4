"""Content codings: compressing response bodies and decoding request bodies (SPEC §10).

``gzip`` and ``deflate`` come from the standard library (``zlib``); ``br``
and ``zstd`` from brotli and zstandard, the extra ``tserver[compression]``,
imported only when used.  ``deflate`` is the zlib format, as RFC 9110 §8.4.1.2
defines it.  A streamed body is compressed chunk by chunk, each flushed, so
that each chunk decodes as it arrives (`Compressor`).  gzip output carries
no timestamp: the same body compresses to the same bytes.
"""

from __future__ import annotations

import importlib
import zlib
from typing import Any

__all__ = ["ENCODINGS", "Compressor", "check_encoding", "compress", "decode_body"]

#: The codings ``Response(encoding=...)`` accepts.
ENCODINGS = ("gzip", "deflate", "br", "zstd")
_MODULES = {"br": "brotli", "zstd": "zstandard"}
#: The most a request body may decode to (a guard against decompression bombs).
DECODED_MAX = 256 * 1024 * 1024


def _module(encoding: str) -> Any:
    return importlib.import_module(_MODULES[encoding])


def check_encoding(where: str, encoding: object) -> str | None:
    """``None`` or one of `ENCODINGS` whose library is installed."""
    if encoding is None:
        return None
    if encoding not in ENCODINGS:
        raise ValueError(
            f"{where}: encoding {encoding!r}; expected None, 'gzip', 'deflate', 'br' or 'zstd'"
        )
    assert isinstance(encoding, str)
    if encoding in _MODULES:
        try:
            _module(encoding)
        except ImportError:
            raise ValueError(
                f"{where}: encoding={encoding!r} needs the {_MODULES[encoding]} package: "
                "pip install 'tserver[compression]'"
            ) from None
    return encoding


class Compressor:
    """Compresses one body piece by piece: `chunk` for each piece (flushed), `end` once."""

    __slots__ = ("_encoding", "_state")

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        if encoding == "gzip":
            self._state: Any = zlib.compressobj(wbits=31)
        elif encoding == "deflate":
            self._state = zlib.compressobj()
        elif encoding == "br":
            self._state = _module("br").Compressor()
        else:
            self._state = _module("zstd").ZstdCompressor().compressobj()

    def chunk(self, data: bytes) -> bytes:
        """*data* compressed and flushed: the client can decode it at once."""
        state = self._state
        if self._encoding in ("gzip", "deflate"):
            return bytes(state.compress(data) + state.flush(zlib.Z_SYNC_FLUSH))
        if self._encoding == "br":
            return bytes(state.process(data) + state.flush())
        zstd = _module("zstd")
        return bytes(state.compress(data) + state.flush(zstd.COMPRESSOBJ_FLUSH_BLOCK))

    def end(self) -> bytes:
        """What ends the compressed stream."""
        if self._encoding == "br":
            return bytes(self._state.finish())
        return bytes(self._state.flush())


def compress(encoding: str, data: bytes) -> bytes:
    """*data* compressed whole."""
    if encoding == "gzip":
        compressor = zlib.compressobj(wbits=31)
        return compressor.compress(data) + compressor.flush()
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "br":
        return bytes(_module("br").compress(data))
    return bytes(_module("zstd").ZstdCompressor().compress(data))


def decode_body(content_encoding: str | None, data: bytes) -> bytes:
    """A request body as its ``Content-Encoding`` header says it was encoded, decoded.

    Codings are undone last first; an unknown coding, a library that is not
    installed, or bytes that do not decode leave the body as it came.

    :raises ValueError: the body decodes to more than `DECODED_MAX` bytes.
    """
    if not content_encoding or not data:
        return data
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    body = data
    for coding in reversed(codings):
        if coding == "identity":
            continue
        try:
            body = _decode(coding, body)
        except _TooBig as exc:
            raise ValueError(str(exc)) from None
        except Exception:  # not this coding after all, or no library for it
            return data
    return body


class _TooBig(Exception):
    pass


def _decode(coding: str, data: bytes) -> bytes:
    """*data* decoded, whole: a stream cut short, or bytes after its end, do not decode."""
    if coding in ("gzip", "x-gzip", "deflate"):
        # gzip: its header; deflate: the zlib format, or raw deflate as some clients send
        wbits = 31
        if coding == "deflate":
            wbits = 15 if data[:1] and (data[0] & 0x0F) == 8 else -15
        out = b""
        rest = data
        while True:
            decompressor = zlib.decompressobj(wbits=wbits)
            out += decompressor.decompress(rest, DECODED_MAX + 1 - len(out))
            if decompressor.unconsumed_tail or len(out) > DECODED_MAX:
                raise _TooBig(f"the request body decodes to more than {DECODED_MAX} bytes")
            if not decompressor.eof:
                raise ValueError("the encoded body is cut short")
            rest = decompressor.unused_data
            if not rest:
                return out
            if wbits != 31:  # only gzip may hold several members, one after the other
                raise ValueError("bytes follow the end of the encoded body")
    if coding == "br":
        out = bytes(_module("br").decompress(data))
    elif coding == "zstd":
        decompressor = _module("zstd").ZstdDecompressor().decompressobj()
        out = decompressor.decompress(data)
        if not decompressor.eof or decompressor.unused_data:
            raise ValueError("the encoded body is cut short, or bytes follow it")
    else:
        raise KeyError(coding)
    if len(out) > DECODED_MAX:
        raise _TooBig(f"the request body decodes to more than {DECODED_MAX} bytes")
    return out
