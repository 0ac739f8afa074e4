"""Fuzzing the HTTP front door with hypothesis, in every mode (SPEC §8).

Hypothesis builds request heads and bodies from parts that are sometimes
right and often wrong: method tokens, targets and versions of random bytes,
headers with odd names, separators and values, line endings of CRLF, LF or
CR alone, and bodies framed by a right, short or long ``Content-Length``, by
good or broken chunks, or not at all; and plain random bytes.

Each example goes to one server per mode (made outside the hypothesis loop
and reused), on a new connection that the client half-closes, so the server
always reaches the end of what was sent.  The server must then answer (HTTP,
or nothing) and close within a bounded time, and serve the next good
request; at the end nothing was raised into the test process (`check()`),
nothing was logged at WARNING or above, and every recorded request has
usable `str` fields.
"""

from __future__ import annotations

import logging
import os
import socket

import pytest
from helpers.clients import get as fetch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_malformed import assert_usable

from tserver import TestServer

#: Examples per mode; ``TSERVER_FUZZ_EXAMPLES=5000`` for a deeper run by hand.
EXAMPLES = int(os.environ.get("TSERVER_FUZZ_EXAMPLES", "150"))
READ_TIMEOUT = 5.0

latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=12).map(
    lambda text: text.encode("latin-1")
)
methods = st.one_of(
    st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PROPFIND"]),
    latin1,
)
targets = st.one_of(
    st.builds(lambda tail: b"/" + tail, st.binary(max_size=30)),
    st.sampled_from([b"*", b"/", b"http://x/y?z=1", b"/a?b=1&b=2", b""]),
)
versions = st.one_of(
    st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/0.9", b"HTTP/2.0", b"http/1.1", b""]),
    st.binary(max_size=8),
)
header_names = st.one_of(
    st.sampled_from([b"Host", b"X-Test", b"Cookie", b"Content-Type", b"Expect", b"Connection"]),
    st.binary(min_size=1, max_size=16),
)
separators = st.sampled_from([b": ", b":", b" : ", b"", b":\t"])
headers = st.lists(st.tuples(header_names, separators, st.binary(max_size=40)), max_size=8).map(
    lambda items: [name + sep + value for name, sep, value in items]
)
line_ends = st.sampled_from([b"\r\n", b"\n", b"\r"])
framings = st.sampled_from(
    ["none", "length", "short-length", "long-length", "chunked", "bad-chunks", "both"]
)


@st.composite
def http_requests(draw: st.DrawFn) -> bytes:
    """One request: a request line, headers, a framed body (often broken)."""
    end = draw(line_ends)
    method, target, version = draw(methods), draw(targets), draw(versions)
    lines = [b" ".join(part for part in (method, target, version) if part or draw(st.booleans()))]
    if draw(st.booleans()):
        lines.append(b"Host: t")
    lines += draw(headers)
    body = draw(st.binary(max_size=200))
    framing = draw(framings)
    if framing in ("length", "both"):
        lines.append(b"Content-Length: %d" % len(body))
    elif framing == "short-length":
        lines.append(b"Content-Length: %d" % max(0, len(body) - 1))
    elif framing == "long-length":
        lines.append(b"Content-Length: %d" % (len(body) + 5))
    if framing in ("chunked", "bad-chunks", "both"):
        lines.append(b"Transfer-Encoding: chunked")
        size = b"%x" % len(body) if framing != "bad-chunks" else draw(st.binary(max_size=4))
        body = size + b"\r\n" + body + b"\r\n0\r\n\r\n" if body else b"0\r\n\r\n"
    return end.join(lines) + end + end + body


payloads = st.one_of(
    http_requests(),
    st.binary(max_size=300),
    st.lists(http_requests(), min_size=2, max_size=3).map(b"".join),  # pipelined
)


def send_and_read(srv: TestServer, payload: bytes) -> bytes:
    """Send *payload*, half-close, and read until the server closes (bounded)."""
    received = b""
    with socket.create_connection((srv.address, srv.port), timeout=READ_TIMEOUT) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed first: fine, it read enough to refuse
        for _ in range(10_000):
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                raise AssertionError(
                    f"the server did not close within {READ_TIMEOUT}s after {payload[:200]!r}; "
                    f"received {received[:200]!r}"
                ) from None
            if not data:
                break
            received += data
    return received


def get(srv: TestServer, path: str) -> tuple[int, bytes]:
    return fetch(srv, path, timeout=READ_TIMEOUT)


def test_fuzzed_requests_never_take_the_server_down(
    mode: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    capfd.readouterr()
    examples = 0
    with TestServer(mode=mode, max_body_size=4096) as srv:
        srv.set_response("data", b"fine")

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(payload=payloads)
        def one_example(payload: bytes) -> None:
            nonlocal examples
            examples += 1
            before = srv.request_count
            received = send_and_read(srv, payload)
            assert received == b"" or received.startswith(b"HTTP/1.1 "), received[:200]
            assert get(srv, f"/good/{examples}") == (200, b"fine")
            assert srv.request_count >= before + 1
            assert srv.request.path == f"/good/{examples}"

        one_example()
        history = srv.history
    assert examples >= EXAMPLES
    for request in history:
        assert_usable(request)
    loud = [f"{r.name} {r.levelname}: {r.getMessage()}" for r in caplog.records if r.levelno >= 30]
    assert loud == []
    assert capfd.readouterr().err == ""
