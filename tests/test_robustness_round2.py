"""Regression tests for the second round of robustness defects (SPEC §2, §3, §4, §7, §8).

Each test pins one defect of the issue, numbered as there:

1. a malformed ``Content-Length`` (a non-ASCII digit, or 5,000 zero-padded
   digits) gave a ``500`` and an error at `check()` instead of a ``4xx``;
2. a ``charset`` naming a codec that is not a text encoding (``base64``,
   ``hex``, ``rot13``, ``zlib``, ``idna``, ``punycode``) lost a form request
   and made ``text``, ``json()`` and ``has_json`` raise;
6. Tornado's parsing limits (1,000 query arguments, 100 multipart parts,
   which is 99 in effect, and 10 KiB of part headers) silently dropped valid
   requests or their fields;
10. a response callback that let `asyncio.CancelledError` escape dropped the
    connection with no response;
11. a 100,000-deep JSON body made ``Request.json()`` raise `RecursionError`;
12. the TLS private key of ``ssl=True`` stayed on disk while serving, so a
    killed test process left it behind;
9. a failed TLS handshake was logged by Tornado at WARNING.

Everything goes through the public API over real sockets on 127.0.0.1, in
both modes wherever the defect shows in both.  Nothing sleeps: replies are
read with a bounded socket timeout and requests awaited with `wait_request`.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
from hamcrest import anything, assert_that
from hamcrest.core.string_description import StringDescription
from helpers import child_callbacks
from helpers.child_callbacks import CANCELLED_MESSAGE
from helpers.clients import get as fetch

from tserver import Response, TestServer
from tserver.matchers import has_json

#: Seconds a reply may take before the test fails (a bound, never a delay).
READ_TIMEOUT = 5.0

#: The multipart boundary of every multipart body here.
BOUNDARY = "tserver-round2-boundary"


def _send_raw(srv: TestServer, raw: bytes) -> tuple[int, bytes]:
    """Send *raw* on a new connection and read until the server closes it.

    Every request sent here says ``Connection: close``, so the reply ends
    with the connection.  Returns the status code and the whole reply.
    """
    reply = b""
    with socket.create_connection((srv.address, srv.port), timeout=READ_TIMEOUT) as sock:
        sock.sendall(raw)
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:  # closed with bytes of ours unread
                break
            if not chunk:
                break
            reply += chunk
    status_line = reply.partition(b"\r\n")[0]
    assert status_line.startswith(b"HTTP/1.1 "), f"no response, got {reply[:200]!r}"
    return int(status_line.split()[1]), reply


def _post(srv: TestServer, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    """POST *body* with *content_type* on a new connection: (status, body)."""
    conn = http.client.HTTPConnection(srv.address, srv.port, timeout=READ_TIMEOUT)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _multipart(parts: list[tuple[str, bytes]]) -> bytes:
    """A ``multipart/form-data`` body of *parts*: (header lines, value) each."""
    body = b""
    for head, value in parts:
        body += f"--{BOUNDARY}\r\n{head}\r\n\r\n".encode() + value + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


# -- 1. a malformed Content-Length -----------------------------------------------------


def test_content_length_with_a_non_ascii_digit_is_a_400(mode: str) -> None:
    """``Content-Length: ²`` (the byte 0xB2) is refused with 400, not a 500.

    Tornado reads header bytes as Latin-1, so 0xB2 becomes ``"²"``, which
    `str.isdigit` accepts and `int` rejects: today the handler's own
    size check raises `ValueError`, the client gets a ``500`` and `check()`
    fails.  §8: a bad header gets a 4xx, the server keeps serving, and
    nothing reaches the test process.
    """
    with TestServer(mode=mode) as srv:
        status, reply = _send_raw(
            srv,
            b"POST /superscript HTTP/1.1\r\nHost: t\r\n"
            b"Content-Length: \xb2\r\nConnection: close\r\n\r\n",
        )
        assert status == 400, reply[:300]
        assert fetch(srv, "/after") == (200, b"")
        assert srv.wait_request(timeout=READ_TIMEOUT).path == "/after"
        srv.check()


def test_content_length_of_five_thousand_zero_padded_digits_is_no_500(mode: str) -> None:
    """``Content-Length: 000…01`` (5,000 digits) is a 400 or a 1-byte body, never a 500.

    The value is a valid (if silly) 1, but `int` refuses strings over
    Python's 4,300-digit limit: today the handler's size check raises, the
    client gets a ``500`` and `check()` fails.  Either refusing it (400) or
    reading the 1-byte body is acceptable; the server must go on serving
    and `check()` stay clean.
    """
    digits = b"0" * 4999 + b"1"
    with TestServer(mode=mode) as srv:
        status, reply = _send_raw(
            srv,
            b"POST /zeros HTTP/1.1\r\nHost: t\r\nContent-Length: "
            + digits
            + b"\r\nConnection: close\r\n\r\nx",
        )
        assert status in (200, 400), reply[:300]
        if status == 200:  # accepted: then recorded with its 1-byte body
            request = srv.wait_request(timeout=READ_TIMEOUT)
            assert (request.path, request.data) == ("/zeros", b"x")
        assert fetch(srv, "/after") == (200, b"")
        assert srv.wait_request(timeout=READ_TIMEOUT).path == "/after"
        srv.check()


# -- 2. a charset that is not a text encoding ------------------------------------------

#: Codecs Python knows that are not text encodings a body can be decoded with:
#: bytes-to-bytes codecs (LookupError on decode), ``idna`` (no ``replace``
#: error handler: UnicodeError) and ``punycode`` (decodes ASCII into garbage).
NON_TEXT_CHARSETS = ["base64", "hex", "rot13", "zlib", "idna", "punycode"]


@pytest.mark.parametrize("charset", NON_TEXT_CHARSETS)
def test_form_body_with_a_non_text_charset_is_recorded_as_utf8(mode: str, charset: str) -> None:
    """A form POST labelled ``charset=<codec>`` is answered, recorded and read as UTF-8.

    Today the handler decodes the form with that codec: the bytes-to-bytes
    codecs and ``idna`` raise, so the client gets a ``500``, the request is
    missing from the history and `check()` fails; ``punycode`` is answered
    and recorded, but "decodes" ``a=1&b=2`` into ``'\\x80'`` (and raises,
    so ``500``, on a non-ASCII byte).  §4: ``text`` is the body decoded by
    the charset *else UTF-8, errors replaced*; only a real text encoding may
    decode a body.  The second body's ``\\xff`` shows the UTF-8 replacement.
    """
    content_type = f"application/x-www-form-urlencoded; charset={charset}"
    bodies = [
        (b"a=1&b=2", "a=1&b=2", [("a", "1"), ("b", "2")]),
        (b"a=1&b=2&c=\xff", "a=1&b=2&c=\ufffd", [("a", "1"), ("b", "2"), ("c", "\ufffd")]),
    ]
    with TestServer(mode=mode) as srv:
        for number, (body, text, form) in enumerate(bodies, start=1):
            assert _post(srv, "/form", body, content_type) == (200, b"")
            assert len(srv.wait_requests(number, timeout=READ_TIMEOUT)) == number
            request = srv.request
            assert request.data == body
            assert request.text == text
            assert request.form.multi_items() == form
        srv.check()


@pytest.mark.parametrize("charset", NON_TEXT_CHARSETS)
def test_json_body_with_a_non_text_charset_reads_as_utf8(mode: str, charset: str) -> None:
    """``text``, ``json()``, `has_json` and the fluent ``has_json`` work on such a body.

    Today the request is recorded, but reading it raises: `LookupError`
    (base64, hex, rot13, zlib) or `UnicodeError` (idna) from ``text``, and
    the `has_json` matcher, documented never to raise, lets the `LookupError`
    through; with ``punycode`` the body reads as ``''`` and is "not JSON".
    """
    body = b'{"a": 1}'
    with TestServer(mode=mode) as srv:
        assert _post(srv, "/json", body, f"application/json; charset={charset}") == (200, b"")
        request = srv.wait_request(timeout=READ_TIMEOUT)
        assert request.data == body
        assert request.text == '{"a": 1}'
        assert request.json() == {"a": 1}
        assert_that(request, has_json({"a": 1}))
        assert not has_json({"a": 2}).matches(request)
        srv.assert_request().has_json({"a": 1})
        srv.check()


# -- 6. Tornado's parsing limits -------------------------------------------------------


def test_more_than_a_thousand_query_arguments_are_recorded(mode: str) -> None:
    """A GET with 1,500 query arguments is answered and recorded with all of them.

    Tornado parses the query of every request with a 1,000-field limit
    (``ParseUrlEncodedConfig.max_arguments``, Tornado 6.5.8+; 1,001 is
    already refused): today the client gets an empty ``400`` and nothing is
    recorded.  A test server must record what the client sent; its request
    line (about 12 KiB) is well under the 64 KiB header limit of §8.
    """
    query = "&".join(f"k{i}=v{i}" for i in range(1500))
    with TestServer(mode=mode) as srv:
        assert fetch(srv, f"/many?{query}") == (200, b"")
        request = srv.wait_request(timeout=READ_TIMEOUT)
        assert request.query_string == query
        assert len(request.args) == 1500
        assert request.args.multi_items() == [(f"k{i}", f"v{i}") for i in range(1500)]
        srv.check()


@pytest.mark.parametrize("count", [100, 150])
def test_multipart_body_with_many_parts_is_recorded_in_full(mode: str, count: int) -> None:
    """A multipart POST with 100 or 150 fields records every one of them in ``form``.

    Tornado's multipart parser refuses bodies over its part limit
    (``ParseMultipartConfig.max_parts``, 100): the handler catches that and
    records the request with ``form`` silently empty.  The limit is off by
    one in Tornado 6.6 (the empty preamble counts as a part), so 100 parts
    are already dropped, and 99 are the most that get through.
    """
    parts = [
        (f'Content-Disposition: form-data; name="f{i}"', f"v{i}".encode()) for i in range(count)
    ]
    with TestServer(mode=mode) as srv:
        assert _post(srv, "/parts", _multipart(parts), MULTIPART) == (200, b"")
        request = srv.wait_request(timeout=READ_TIMEOUT)
        assert len(request.form) == count
        assert request.form.multi_items() == [(f"f{i}", f"v{i}") for i in range(count)]
        srv.check()


def test_multipart_part_header_over_10_kib_is_recorded(mode: str) -> None:
    """A file part whose headers exceed 10 KiB (a 12 KiB filename) is in ``files``.

    Tornado refuses a part header block over ``max_part_header_size``
    (10 KiB): today the request is recorded with ``files`` (and ``form``)
    silently empty.
    """
    filename = "f" * (12 * 1024) + ".txt"
    disposition = f'Content-Disposition: form-data; name="upload"; filename="{filename}"'
    parts = [
        (f"{disposition}\r\nContent-Type: text/plain", b"file data"),
        ('Content-Disposition: form-data; name="note"', b"hello"),
    ]
    with TestServer(mode=mode) as srv:
        assert _post(srv, "/upload", _multipart(parts), MULTIPART) == (200, b"")
        request = srv.wait_request(timeout=READ_TIMEOUT)
        assert list(request.files) == ["upload"]
        [upload] = request.files["upload"]
        assert (upload.filename, upload.content_type, upload.data) == (
            filename,
            "text/plain",
            b"file data",
        )
        assert list(request.form.multi_items()) == [("note", "hello")]
        srv.check()


# -- 10. a callback that lets CancelledError escape ------------------------------------


@pytest.mark.parametrize(
    "callback",
    [child_callbacks.raise_cancelled, child_callbacks.raise_cancelled_async],
    ids=["sync", "async"],
)
def test_callback_raising_cancelled_error_answers_500(
    mode: str, callback: Callable[..., Any]
) -> None:
    """`asyncio.CancelledError` out of a callback is a 500 with the traceback, like any error.

    §3.2: a callback that raises gets a ``500`` whose body holds the
    traceback, and `check()` raises an `AssertionError` naming the
    exception, with it as ``__cause__``.  Today the handler lets a
    `CancelledError` through as if `stop()` had cancelled it and drops the
    connection: the client gets no response at all.  (The error is then
    recorded by Tornado only after the connection is closed, so today even
    `check()` may miss it in thread mode, racing the client.)
    """
    srv = TestServer(mode=mode).start()
    try:
        srv.set_response("callback", callback)
        srv.add_response(Response(b"after"), path="/after")
        try:
            status, body = fetch(srv, "/cancelled")
        except (http.client.HTTPException, ConnectionError) as exc:
            pytest.fail(f"the connection was dropped with no response: {exc!r}")
        assert status == 500, body
        assert b"Traceback" in body
        assert b"CancelledError" in body
        assert CANCELLED_MESSAGE.encode() in body
        # the server goes on serving
        assert fetch(srv, "/after") == (200, b"after")
        assert [r.path for r in srv.wait_requests(2, timeout=READ_TIMEOUT)] == [
            "/cancelled",
            "/after",
        ]
        with pytest.raises(AssertionError, match="CancelledError") as info:
            srv.check()
        assert CANCELLED_MESSAGE in str(info.value)
        assert isinstance(info.value.__cause__, asyncio.CancelledError)
    finally:
        srv.stop()


# -- 11. a deeply nested JSON body -----------------------------------------------------


def test_deeply_nested_json_body_is_a_value_error(mode: str) -> None:
    """``json()`` on a 100,000-deep array raises the documented `ValueError`.

    §4: ``json()`` raises `ValueError` with a clear message when the body is
    not JSON it can parse; today `json.loads` hits the recursion limit and
    `RecursionError` (a `RuntimeError`) escapes.  The `has_json` matcher
    already treats it as a mismatch (pinned here too, so it stays so).
    """
    body = b"[" * 100_000 + b"]" * 100_000
    with TestServer(mode=mode) as srv:
        assert _post(srv, "/deep", body, "application/json") == (200, b"")
        request = srv.wait_request(timeout=READ_TIMEOUT)
        assert request.data == body
        with pytest.raises(ValueError, match="JSON"):
            request.json()
        matcher = has_json(anything())
        assert not matcher.matches(request)
        description = StringDescription()
        matcher.describe_mismatch(request, description)
        assert "not JSON" in str(description)
        with pytest.raises(AssertionError, match="not JSON"):
            srv.assert_request().has_json([])
        srv.check()


# -- 12. the TLS private key on disk ---------------------------------------------------


def _files_holding_a_private_key(directory: str) -> list[str]:
    """The names of the files in *directory* that contain a PEM private key."""
    return sorted(
        path.name
        for path in Path(directory).iterdir()
        if path.is_file() and b"PRIVATE KEY" in path.read_bytes()
    )


def test_tls_private_key_is_off_disk_while_serving(mode: str) -> None:
    """With ``ssl=True`` running, only the CA certificate is on disk, and HTTPS works.

    Today ``server.key`` stays in the CA directory until `stop()`, so a
    test process that is killed leaves a private key behind.  The server
    needs the key only to build its `ssl.SSLContext` (in the child, in
    subprocess mode): it must be gone by the time `start()` returns, while
    ``ca_path`` stays for clients until `stop()` removes the directory.
    """
    srv = TestServer(mode=mode, ssl=True).start()
    try:
        ca_path = srv.ca_path
        assert ca_path is not None
        assert os.path.isfile(ca_path)
        directory = os.path.dirname(ca_path)
        assert _files_holding_a_private_key(directory) == []
        with urlopen(srv.get_url("/secure"), context=srv.client_ssl_context()) as response:
            assert response.status == 200
        assert srv.wait_request(timeout=READ_TIMEOUT).scheme == "https"
        srv.check()
    finally:
        srv.stop()
    assert not os.path.exists(directory)


#: Starts an ``ssl=True`` server (thread mode: no server child to orphan),
#: prints its CA directory, then blocks on stdin until it is killed.
KILLED_SCRIPT = """
import os, sys
from tserver import TestServer
srv = TestServer(ssl=True, mode="thread").start()
print(os.path.dirname(srv.ca_path), flush=True)
sys.stdin.read()
"""


def test_killed_process_leaves_no_tls_private_key() -> None:
    """A process SIGKILLed while serving ``ssl=True`` leaves no private key on disk.

    `stop()` never runs in a killed process, so whatever is on disk while
    serving stays there: the CA directory (with ``ca.pem``) may remain, but
    today ``server.key`` remains with it.
    """
    directory = ""
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 20.0)
            assert ready, "the script printed nothing in 20 s"
            directory = proc.stdout.readline().decode().strip()
            os.kill(proc.pid, signal.SIGKILL)
            _, err = proc.communicate(timeout=10)
            assert directory, f"the script printed no directory; stderr: {err.decode()}"
            assert proc.returncode == -signal.SIGKILL
            assert os.path.isabs(directory)
            assert "tserver" in os.path.basename(directory)
            leftover = _files_holding_a_private_key(directory) if os.path.isdir(directory) else []
            assert leftover == [], f"private key files left in {directory}: {leftover}"
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.communicate()
            if directory and "tserver" in os.path.basename(directory):
                shutil.rmtree(directory, ignore_errors=True)


# -- 9. failed TLS handshakes are not warnings -----------------------------------------


def _plain_http_to_the_tls_port(srv: TestServer) -> None:
    """Send plain HTTP to the TLS port and read until the server closes."""
    with socket.create_connection((srv.address, srv.port), timeout=READ_TIMEOUT) as sock:
        sock.sendall(b"GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        while True:
            try:
                if not sock.recv(65536):
                    break
            except ConnectionResetError:
                break


def _client_that_does_not_trust_the_ca(srv: TestServer) -> None:
    """An HTTPS request that trusts only the system CAs: the client aborts the handshake."""
    with pytest.raises(urllib.error.URLError) as info:
        urlopen(srv.get_url("/untrusted"), context=ssl.create_default_context(), timeout=10)
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)


@pytest.mark.parametrize(
    "bad_client",
    [_plain_http_to_the_tls_port, _client_that_does_not_trust_the_ca],
    ids=["plain-http", "untrusting-client"],
)
def test_failed_tls_handshake_logs_no_warning(
    bad_client: Callable[[TestServer], None], caplog: pytest.LogCaptureFixture
) -> None:
    """A client that fails the TLS handshake makes no WARNING log record.

    A client failing the handshake is what a test of a client's TLS
    handling does on purpose; Tornado logs ``SSL Error on ...`` at WARNING
    for it today, noise in every such test's output.

    Ordering: the server notices the failure on its own thread, so the test
    makes one good HTTPS request afterwards before looking at the log.  The
    plain-HTTP client reads until the server closes, which Tornado does
    right after logging.  The untrusting client has sent its alert and
    closed before the good client connects, so the bad connection is
    readable on the server's loop no later than the loop iteration that
    accepts the good one, and Tornado's read of it (which logs) runs in that
    iteration; the good response needs several more iterations (handshake,
    request) before the client has it.  (Thread mode: in subprocess mode
    the child's log is not in ``caplog``.)
    """
    caplog.set_level(logging.WARNING)
    with TestServer(ssl=True) as srv:
        bad_client(srv)
        with urlopen(srv.get_url("/good"), context=srv.client_ssl_context()) as response:
            assert response.status == 200
        assert [r.path for r in srv.history] == ["/good"]
        srv.check()
    loud = [
        f"{r.name} {r.levelname}: {r.getMessage()}"
        for r in caplog.records
        if r.name.startswith("tornado") and r.levelno >= logging.WARNING
    ]
    assert loud == []
