"""HTTP/2 (SPEC §14): ``http2=True`` serves h2 by ALPN and h2c by prior knowledge.

Real clients (httpx, curl, pycurl) over TLS and plain, in thread and
subprocess mode; h2 itself as a raw client where a test needs to steer the
frames: flow control both ways, concurrent streams with one held, faults.
"""

from __future__ import annotations

import gc
import shutil
import socket
import ssl
import subprocess
import unittest
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import pytest
from helpers.child_callbacks import echo_path
from helpers.clients import get

from tserver import Event, GoAway, Raw, ResetStream, Response, TestServer

h2_config = pytest.importorskip("h2.config")
h2_connection = pytest.importorskip("h2.connection")
h2_events = pytest.importorskip("h2.events")
h2_errors = pytest.importorskip("h2.errors")
httpx = pytest.importorskip("httpx")

CURL = shutil.which("curl")
#: Big enough to need many WINDOW_UPDATEs past the initial 64 KiB windows.
BIG = 20 * 1024 * 1024


@pytest.fixture(params=["tls", "plain"])
def h2srv(mode: str, request: pytest.FixtureRequest) -> Iterator[TestServer]:
    """A started ``http2=True`` server in the current mode, over TLS or plain."""
    srv = TestServer(mode=mode, ssl=request.param == "tls", http2=True).start()
    try:
        srv.set_response("data", b"over h2")
        yield srv
    finally:
        srv.stop()


def _client(srv: TestServer) -> Any:
    """An httpx client that speaks HTTP/2 only (ALPN over TLS, prior knowledge plain)."""
    if srv.ca_path is not None:
        return httpx.Client(http2=True, verify=srv.client_ssl_context())
    return httpx.Client(http1=False, http2=True)


class H2Client:
    """h2 as a raw client on a blocking socket: the test steers every frame."""

    def __init__(self, srv: TestServer, *, acknowledge: bool = True) -> None:
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if srv.ca_path is not None:
            context = ssl.create_default_context(cafile=srv.ca_path)
            context.set_alpn_protocols(["h2"])
            sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
            assert sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        self.scheme = "https" if srv.ca_path is not None else "http"
        self.authority = f"127.0.0.1:{srv.port}"
        self.acknowledge = acknowledge  # give back each stream's window as data comes
        self.conn = h2_connection.H2Connection(
            config=h2_config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        self.bodies: dict[int, bytearray] = {}
        self.heads: dict[int, dict[bytes, bytes]] = {}
        self.ended: set[int] = set()
        self.resets: dict[int, int] = {}
        self.terminated: Any = None
        self.slow: set[int] = set()  # streams whose window is not given back
        self.flush()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(
        self, method: str, path: str, body: bytes | None = None, *, end: bool = True
    ) -> int:
        stream_id: int = self.conn.get_next_available_stream_id()
        headers = [
            (":method", method),
            (":path", path),
            (":scheme", self.scheme),
            (":authority", self.authority),
        ]
        self.conn.send_headers(stream_id, headers, end_stream=end and body is None)
        self.flush()
        if body is not None:
            self.upload(stream_id, body)
        return stream_id

    def send_head(self, fields: list[tuple[str, str]], *, end: bool = True) -> int:
        """Open a stream with exactly *fields* (pseudo-headers included)."""
        stream_id: int = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, fields, end_stream=end)
        self.flush()
        return stream_id

    def upload(self, stream_id: int, body: bytes) -> None:
        """Send *body* within the server's windows, waiting for its WINDOW_UPDATEs."""
        view = memoryview(body)
        while view:
            room = min(
                self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size
            )
            if room <= 0:
                self.read()
                continue
            self.conn.send_data(stream_id, view[:room].tobytes())
            self.flush()
            view = view[room:]
        self.conn.end_stream(stream_id)
        self.flush()

    def read(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the server closed the connection")
        for event in self.conn.receive_data(data):
            if isinstance(event, h2_events.ResponseReceived):
                self.heads[event.stream_id] = dict(event.headers)
            elif isinstance(event, h2_events.DataReceived):
                self.bodies.setdefault(event.stream_id, bytearray()).extend(event.data)
                if event.stream_id in self.slow:  # the connection's window alone
                    self.conn.increment_flow_control_window(event.flow_controlled_length)
                elif self.acknowledge:
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
            elif isinstance(event, h2_events.StreamEnded):
                self.ended.add(event.stream_id)
            elif isinstance(event, h2_events.StreamReset):
                self.resets[event.stream_id] = event.error_code
            elif isinstance(event, h2_events.ConnectionTerminated):
                self.terminated = event
        self.flush()

    def until(self, done: Any) -> None:
        while not done():
            self.read()


# -- real clients -----------------------------------------------------------------


def test_httpx(h2srv: TestServer) -> None:
    with _client(h2srv) as client:
        response = client.get(h2srv.get_url("/a?x=1"))
        assert response.http_version == "HTTP/2"
        assert response.content == b"over h2"
        second = client.post(h2srv.get_url("/b"), content=b"payload")
        assert second.http_version == "HTTP/2"
    first, posted = h2srv.history
    assert first.version == "HTTP/2"
    assert first.path == "/a"
    assert first.args["x"] == "1"
    assert first.url == h2srv.get_url("/a?x=1")
    assert first.raw_head == b""
    assert posted.method == "POST"
    assert posted.data == b"payload"
    assert posted.chunk_sizes == (7,)
    assert (posted.connection, posted.exchange) == (0, 1)
    (connection,) = h2srv.connections
    assert connection.protocol == "HTTP/2"
    assert connection.requests == 2
    if h2srv.ca_path is not None:
        assert connection.tls is not None
        assert connection.tls.alpn == "h2"


def test_events_and_the_assertions_over_http2(h2srv: TestServer) -> None:
    h2srv.add_response(Response(events=[Event("one"), Event("two", id="2")]), path="/sse")
    with _client(h2srv) as client:
        response = client.get(
            h2srv.get_url("/sse?topic=a"), headers={"accept": "text/event-stream"}
        )
    assert response.http_version == "HTTP/2"
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text == "data: one\n\nid: 2\ndata: two\n\n"
    h2srv.assert_request().has_method("GET").has_path("/sse").has_arg("topic", "a").has_header(
        "Accept", "text/event-stream"
    )
    h2srv.assert_history().has_length(1)


def test_http1_still_served_on_the_same_port(h2srv: TestServer) -> None:
    verify = h2srv.client_ssl_context() if h2srv.ca_path is not None else True
    with httpx.Client(verify=verify) as client:
        response = client.get(h2srv.get_url("/one"))
        assert response.http_version == "HTTP/1.1"
        assert response.content == b"over h2"
    request = h2srv.wait_request()
    assert request.version == "HTTP/1.1"
    assert request.raw_head.startswith(b"GET /one HTTP/1.1\r\n")
    assert [c.protocol for c in h2srv.connections] == ["HTTP/1.1"]


@pytest.mark.skipif(CURL is None, reason="no curl on this machine")
def test_curl(h2srv: TestServer) -> None:
    assert CURL is not None
    if h2srv.ca_path is not None:
        options = ["--http2", "--cacert", h2srv.ca_path]
    else:
        options = ["--http2-prior-knowledge"]
    done = subprocess.run(
        [CURL, "-sS", *options, "-w", "\n%{http_version}", h2srv.get_url("/curl")],
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert done.stdout == b"over h2\n2"
    assert h2srv.wait_request().version == "HTTP/2"


def test_pycurl(h2srv: TestServer) -> None:
    pycurl = pytest.importorskip("pycurl")
    if not pycurl.version_info()[4] & pycurl.VERSION_HTTP2:
        pytest.skip("this libcurl has no HTTP/2 (no nghttp2)")
    curl = pycurl.Curl()
    body = BytesIO()
    try:
        curl.setopt(pycurl.URL, h2srv.get_url("/pycurl"))
        curl.setopt(pycurl.WRITEDATA, body)
        if h2srv.ca_path is not None:
            curl.setopt(pycurl.CAINFO, h2srv.ca_path)
            curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
        else:
            curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)
        curl.perform()
        assert curl.getinfo(pycurl.RESPONSE_CODE) == 200
        assert curl.getinfo(pycurl.INFO_HTTP_VERSION) == pycurl.CURL_HTTP_VERSION_2_0
    finally:
        curl.close()
    assert body.getvalue() == b"over h2"
    assert h2srv.wait_request().version == "HTTP/2"


# -- header rules -------------------------------------------------------------------


def test_header_rules(h2srv: TestServer) -> None:
    h2srv.add_response(
        Response(
            b"ok",
            headers={
                "X-Mixed-Case": "kept",
                "Connection": "keep-alive",
                "Keep-Alive": "timeout=5",
                "Upgrade": "h2c",
                "Proxy-Connection": "keep-alive",
                "Transfer-Encoding": "chunked",
            },
        ),
        path="/h",
    )
    with H2Client(h2srv) as client:
        sent = (
            (":method", "GET"),
            (":scheme", client.scheme),
            (":path", "/h?q=1"),
            (":authority", client.authority),
            ("cookie", "a=1"),
            ("x-one", "1"),
            ("cookie", "b=2"),
        )
        stream_id = client.send_head(list(sent))
        client.until(lambda: stream_id in client.ended)
        head = client.heads[stream_id]
    assert head[b":status"] == b"200"
    assert head[b"x-mixed-case"] == b"kept"
    assert all(name == name.lower() for name in head)
    for name in (b"connection", b"keep-alive", b"upgrade", b"proxy-connection"):
        assert name not in head
    assert b"transfer-encoding" not in head
    request = h2srv.wait_request()
    assert request.raw_headers == sent  # pseudo-headers and split cookies as they came
    assert request.cookies == {"a": "1", "b": "2"}
    assert request.headers["Cookie"] == "a=1; b=2"
    assert request.headers["Host"] == client.authority
    assert request.host == client.authority
    assert request.headers["X-One"] == "1"
    assert ":path" not in request.headers
    # arrival order across names; the cookies joined where the first came
    assert list(request.headers.multi_items()) == [
        ("Host", client.authority),
        ("Cookie", "a=1; b=2"),
        ("X-One", "1"),
    ]


# -- flow control ------------------------------------------------------------------


def test_big_upload_and_download(h2srv: TestServer) -> None:
    big = bytes(range(256)) * (BIG // 256)
    h2srv.add_response(Response(big), path="/down")
    with H2Client(h2srv) as client:
        up = client.request("POST", "/up", big)
        client.until(lambda: up in client.ended)
        down = client.request("GET", "/down")
        client.until(lambda: down in client.ended)
        assert client.heads[up][b":status"] == b"200"
        assert bytes(client.bodies[down]) == big
    upload = h2srv.history[0]
    assert len(upload.data) == BIG
    assert upload.data == big
    assert max(upload.chunk_sizes or ()) <= 16384


def test_held_stream_does_not_block_the_others(h2srv: TestServer) -> None:
    h2srv.add_response(Response(b"late", hold=True), path="/held")
    h2srv.add_response(Response(b"fast"), path="/fast")
    with H2Client(h2srv) as client:
        held = client.request("GET", "/held")
        fast = client.request("GET", "/fast")
        client.until(lambda: fast in client.ended)
        assert bytes(client.bodies[fast]) == b"fast"
        assert held not in client.heads  # still held
        waiting = h2srv.wait_held()
        assert waiting.request.path == "/held"
        assert waiting.release()
        client.until(lambda: held in client.ended)
        assert bytes(client.bodies[held]) == b"late"
    assert [r.path for r in h2srv.history] == ["/held", "/fast"]
    assert [e.status for e in h2srv.exchanges] == [200, 200]


def test_stalled_stream_does_not_block_the_others(h2srv: TestServer) -> None:
    big = b"x" * (1024 * 1024)
    h2srv.add_response(Response(big), path="/big")
    h2srv.add_response(Response(b"small"), path="/small")
    with H2Client(h2srv) as client:
        stalled = client.request("GET", "/big")
        client.slow.add(stalled)  # its own window is never given back: it stalls at 64 KiB
        client.until(lambda: len(client.bodies.get(stalled, b"")) >= 65535)
        small = client.request("GET", "/small")
        client.until(lambda: small in client.ended)
        assert bytes(client.bodies[small]) == b"small"
        assert stalled not in client.ended
        client.slow.clear()
        client.conn.acknowledge_received_data(65535, stalled)  # the window opens again
        client.flush()
        client.until(lambda: stalled in client.ended)
        assert bytes(client.bodies[stalled]) == big


def test_streamed_chunks(h2srv: TestServer) -> None:
    h2srv.add_response(Response(chunks=[b"one", b"two", b"three"]), path="/chunks")
    with _client(h2srv) as client:
        response = client.get(h2srv.get_url("/chunks"))
        assert response.http_version == "HTTP/2"
        assert response.content == b"onetwothree"
        assert "transfer-encoding" not in response.headers


# -- faults as frames ----------------------------------------------------------------


def test_reset_fault_resets_that_stream_alone(h2srv: TestServer) -> None:
    h2srv.add_response(Response(fault="reset"), path="/reset")
    with H2Client(h2srv) as client:
        broken = client.request("GET", "/reset")
        client.until(lambda: broken in client.resets)
        assert client.resets[broken] == h2_errors.ErrorCodes.INTERNAL_ERROR
        fine = client.request("GET", "/fine")
        client.until(lambda: fine in client.ended)
        assert bytes(client.bodies[fine]) == b"over h2"
    assert [r.path for r in h2srv.history] == ["/reset", "/fine"]
    h2srv.check()


def test_close_fault_sends_goaway(h2srv: TestServer) -> None:
    h2srv.add_response(Response(fault="close"), path="/close")
    with H2Client(h2srv) as client:
        client.request("GET", "/close")
        with pytest.raises(ConnectionError):
            client.until(lambda: False)  # to the end of the connection
        assert client.terminated is not None
        assert client.terminated.error_code == h2_errors.ErrorCodes.NO_ERROR
    h2srv.check()


def test_goaway_after_n_streams(h2srv: TestServer) -> None:
    h2srv.add_response(Response(b"served"), count=2)
    h2srv.add_response(Response(fault=GoAway()))  # the third stream on
    with H2Client(h2srv) as client:
        first = client.request("GET", "/1")
        client.until(lambda: first in client.ended)
        second = client.request("GET", "/2")
        client.until(lambda: second in client.ended)
        client.request("GET", "/3")
        with pytest.raises(ConnectionError):
            client.until(lambda: False)
        assert client.terminated is not None
        assert client.terminated.error_code == h2_errors.ErrorCodes.NO_ERROR
        assert client.terminated.last_stream_id == second  # the third: unprocessed
    assert [r.path for r in h2srv.history] == ["/1", "/2", "/3"]
    h2srv.check()


def test_goaway_with_a_chosen_code_and_last_stream(h2srv: TestServer) -> None:
    h2srv.add_response(Response(fault=GoAway(error_code=0xB, last_stream_id=7)))
    with H2Client(h2srv) as client:
        client.request("GET", "/")
        with pytest.raises(ConnectionError):
            client.until(lambda: False)
        assert client.terminated is not None
        assert client.terminated.error_code == h2_errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert client.terminated.last_stream_id == 7


def test_our_goaway_reaches_a_client_still_sending(h2srv: TestServer) -> None:
    h2srv.add_response(Response(fault=GoAway(error_code=0xB)), path="/bye")
    with H2Client(h2srv) as client:
        client.request("GET", "/bye")
        for _ in range(12_000):  # some 200 KB the server no longer answers
            client.conn.ping(b"12345678")
        client.flush()  # read to the end, not reset under it: the GOAWAY stays readable
        with pytest.raises(ConnectionError):
            client.until(lambda: False)
        assert client.terminated is not None
        assert client.terminated.error_code == 0xB


def test_reset_stream_in_the_middle_of_a_body(h2srv: TestServer) -> None:
    body = bytes(range(256)) * 400
    h2srv.add_response(Response(body, fault=ResetStream(error_code=0x8, after=1000)), path="/cut")
    with H2Client(h2srv) as client:
        cut = client.request("GET", "/cut")
        client.until(lambda: cut in client.resets)
        assert client.resets[cut] == h2_errors.ErrorCodes.CANCEL
        assert client.heads[cut][b"content-length"] == str(len(body)).encode()
        assert bytes(client.bodies[cut]) == body[:1000]
        assert cut not in client.ended
        fine = client.request("GET", "/fine")
        client.until(lambda: fine in client.ended)
    assert h2srv.exchanges[0].status == 200
    h2srv.check()


@pytest.mark.parametrize("fault", [GoAway(), ResetStream(after=1)])
def test_http2_faults_are_refused_over_http1(fault: GoAway | ResetStream, mode: str) -> None:
    with TestServer(mode=mode) as srv:
        srv.add_response(Response(b"body", fault=fault))
        with httpx.Client() as client, pytest.raises(httpx.RemoteProtocolError):
            client.get(srv.get_url("/"))
        with pytest.raises(AssertionError, match="is an HTTP/2 fault"):
            srv.check()
        srv.reset()


def test_http2_fault_values_are_checked() -> None:
    with pytest.raises(ValueError, match="error_code"):
        GoAway(error_code=-1)
    with pytest.raises(ValueError, match="last_stream_id"):
        GoAway(last_stream_id=1 << 31)
    with pytest.raises(ValueError, match="after"):
        ResetStream(after=True)
    assert GoAway() == GoAway(0, None)
    assert repr(ResetStream(8, after=3)) == "ResetStream(error_code=8, after=3)"


def test_held_fail_reset(h2srv: TestServer) -> None:
    h2srv.add_response(Response(hold=True), path="/held")
    with H2Client(h2srv) as client:
        held = client.request("GET", "/held")
        assert h2srv.wait_held().fail("reset")
        client.until(lambda: held in client.resets)
        other = client.request("GET", "/after")
        client.until(lambda: other in client.ended)
    assert h2srv.held == []


@pytest.mark.parametrize("hold", [True, "body"])
def test_held_fail_with_http2_faults(h2srv: TestServer, hold: bool | str) -> None:
    h2srv.add_response(Response(hold=hold), path="/held", count=None)
    with H2Client(h2srv) as client:
        held = client.request("GET", "/held")
        assert h2srv.wait_held().fail(ResetStream(error_code=8))  # CANCEL
        client.until(lambda: held in client.resets)
        assert client.resets[held] == 8
        other = client.request("GET", "/held")
        assert h2srv.wait_held().fail(GoAway(error_code=0xB, last_stream_id=1))
        with pytest.raises(ConnectionError):
            client.until(lambda: False)
        assert client.terminated is not None
        assert client.terminated.error_code == 0xB
        assert client.terminated.last_stream_id == 1
        assert other not in client.ended
    assert [e.completed for e in h2srv.exchanges] == [False, False]  # cut short, both
    h2srv.check()


def test_held_fail_refuses_other_values() -> None:
    with TestServer() as srv:
        srv.add_response(Response(hold=True))
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            held = srv.wait_held()
            with pytest.raises(ValueError, match=r"GoAway\(\.\.\.\) or ResetStream"):
                held.fail("explode")
            assert held.fail("close")


def test_raw_is_refused_over_http2(h2srv: TestServer) -> None:
    h2srv.add_response(Response(fault=Raw(b"HTTP/1.1 200 OK\r\n\r\n")), path="/raw")
    with H2Client(h2srv) as client:
        stream_id = client.request("GET", "/raw")
        client.until(lambda: stream_id in client.resets)
    with pytest.raises(AssertionError, match=r"Raw\(\.\.\.\) cannot be sent over HTTP/2"):
        h2srv.check()


def test_close_after_sends_the_answer_then_goaway(h2srv: TestServer) -> None:
    h2srv.add_response(Response(b"last words", fault="close_after"), path="/bye")
    with H2Client(h2srv) as client:
        stream_id = client.request("GET", "/bye")
        with pytest.raises(ConnectionError):
            client.until(lambda: False)
        assert bytes(client.bodies[stream_id]) == b"last words"
        assert stream_id in client.ended
        assert client.terminated is not None
    assert h2srv.exchanges[0].completed


def test_a_client_goaway_ends_the_connection(h2srv: TestServer) -> None:
    h2srv.add_response(Response(b"never sent", hold=True), path="/held")
    with H2Client(h2srv) as client:
        client.request("GET", "/held")
        handle = h2srv.wait_held()
        # GOAWAY (last stream 0, NO_ERROR), written by hand: h2's client state
        # machine would refuse every frame after its own
        client.sock.sendall(b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + bytes(8))
        with pytest.raises(ConnectionError):
            client.until(lambda: False)
    assert handle.release() is False
    assert h2srv.held == []
    h2srv.check()


def test_client_reset_ends_the_holding(h2srv: TestServer) -> None:
    h2srv.add_response(Response(hold=True), path="/held")
    with H2Client(h2srv) as client:
        held = client.request("GET", "/held")
        handle = h2srv.wait_held()
        client.conn.reset_stream(held)
        client.flush()
        after = client.request("GET", "/after")  # answered after the reset was read
        client.until(lambda: after in client.ended)
        assert h2srv.held == []
        assert handle.release() is False


def test_held_body_is_sent_as_it_is_pushed(h2srv: TestServer) -> None:
    h2srv.add_response(Response(b"end", hold="body"), path="/drip")
    with H2Client(h2srv) as client:
        stream_id = client.request("GET", "/drip")
        held = h2srv.wait_held()
        client.until(lambda: stream_id in client.heads)
        assert held.send(b"first ")
        client.until(lambda: bytes(client.bodies.get(stream_id, b"")) == b"first ")
        assert held.release()
        client.until(lambda: stream_id in client.ended)
        assert bytes(client.bodies[stream_id]) == b"first end"


def test_declared_body_over_the_limit_gets_413(mode: str) -> None:
    with TestServer(mode=mode, http2=True, max_body_size=1000) as srv, H2Client(srv) as client:
        fields = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/up"),
            (":authority", client.authority),
            ("content-length", "5000"),
        ]
        stream_id = client.send_head(fields, end=False)
        client.until(lambda: stream_id in client.ended)
        assert client.heads[stream_id][b":status"] == b"413"
        unsized = client.request("POST", "/up", end=False)
        client.conn.send_data(unsized, b"x" * 5000)
        client.flush()
        client.until(lambda: unsized in client.resets)
        assert client.resets[unsized] == h2_errors.ErrorCodes.REFUSED_STREAM


def test_streams_that_are_not_served(h2srv: TestServer) -> None:
    with H2Client(h2srv) as client:
        connect = client.send_head([(":method", "CONNECT"), (":authority", "example.test:443")])
        client.until(lambda: connect in client.resets)
        bad_host = client.send_head(
            [
                (":method", "GET"),
                (":scheme", client.scheme),
                (":path", "/"),
                (":authority", "no such host"),
            ]
        )
        client.until(lambda: bad_host in client.resets)
        assert client.resets[bad_host] == h2_errors.ErrorCodes.PROTOCOL_ERROR
        fine = client.request("GET", "/fine")
        client.until(lambda: fine in client.ended)
    assert [r.path for r in h2srv.history] == ["/fine"]


def test_a_client_that_breaks_the_protocol_gets_goaway(h2srv: TestServer) -> None:
    with H2Client(h2srv) as client:
        client.sock.sendall(b"\x00\x00\x01\x04\x00\x00\x00\x00\x00\x00")  # SETTINGS of 1 byte
        with pytest.raises(ConnectionError):
            client.until(lambda: False)
        assert client.terminated is not None
        assert client.terminated.error_code == h2_errors.ErrorCodes.FRAME_SIZE_ERROR
    assert h2srv.history == []
    (connection,) = h2srv.connections
    assert connection.error is not None
    assert connection.error.startswith("HTTP/2 protocol error: ")


def test_a_slow_reader_holds_back_its_own_stream_alone(h2srv: TestServer) -> None:
    h2srv.add_response(Response(b"slow", read_rate=1000), path="/slowread")
    h2srv.add_response(Response(b"fast"), path="/fast")
    with H2Client(h2srv) as client:
        slow = client.request("POST", "/slowread", end=False)
        for _ in range(4):  # a minute's reading, within its window
            client.conn.send_data(slow, b"s" * 15000)
        client.flush()
        fast = client.request("POST", "/fast", b"f" * 200_000)  # three windows' worth
        client.until(lambda: fast in client.ended)
        assert slow not in client.ended  # still being read, a kilobyte a second
        assert bytes(client.bodies[fast]) == b"fast"
        # the connection's window is not the slow stream's to hold
        assert client.conn.outbound_flow_control_window > 1 << 20
    assert [r.path for r in h2srv.history] == ["/fast"]


def test_a_drip_slows_its_own_stream_alone(h2srv: TestServer) -> None:
    big = b"x" * (24 << 20)
    h2srv.add_response(Response(b"d" * 20000, rate=2000), path="/drip")  # ten seconds
    h2srv.add_response(Response(big), path="/big", count=None)
    with H2Client(h2srv) as client:
        drip = client.request("GET", "/drip")
        client.until(lambda: drip in client.heads)
        for _ in range(2):  # during the drip, and after a second one started
            fetched = client.request("GET", "/big")
            client.until(lambda stream=fetched: stream in client.ended)  # type: ignore[misc]
            assert len(client.bodies[fetched]) == len(big)
            assert drip not in client.ended


def test_stop_while_a_connection_is_being_sniffed(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tserver._h2serve import PREFACE

    srv = TestServer(mode=mode, http2=True).start()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(PREFACE[:8])  # a preface in pieces: the server waits for the rest
        assert get(srv) == (200, b"")  # on a connection accepted after that one
        assert len(srv.connections) == 2
        srv.stop()
        try:  # closed, not left waiting (reset: the bytes it peeked at were never read)
            assert sock.recv(1) == b""
        except ConnectionResetError:
            pass
    gc.collect()  # a task exception nobody retrieved would be logged now
    assert "never retrieved" not in caplog.text
    assert all(connection.closed_at is not None for connection in srv.connections)


def test_stop_during_a_paced_upload(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    srv = TestServer(mode=mode, http2=True).start()
    srv.add_response(Response(b"slow", read_rate=1000), path="/slowread")
    try:
        with H2Client(srv) as client:
            slow = client.request("POST", "/slowread", b"s" * 5000)  # five seconds' reading
            other = client.request("GET", "/other")  # answered once the slow one is reading
            client.until(lambda: other in client.ended)
            assert slow not in client.ended
            srv.stop()
    finally:
        srv.stop()
    gc.collect()
    assert "never retrieved" not in caplog.text
    assert "InvalidStateError" not in caplog.text


def test_reset_stream_needs_a_whole_body() -> None:
    with pytest.raises(ValueError, match="cannot have chunks="):
        Response(chunks=[b"a", b"b"], fault=ResetStream(after=1))
    with pytest.raises(ValueError, match="cannot have events="):
        Response(events=[Event("x")], fault=ResetStream(after=1))


def test_stop_with_streams_in_progress(mode: str) -> None:
    srv = TestServer(mode=mode, http2=True).start()
    try:
        srv.add_response(Response(hold=True), path="/held")
        srv.add_response(Response(b"y" * 1024 * 1024), path="/big")
        with H2Client(srv) as client:
            client.request("GET", "/held")
            srv.wait_held()
            stalled = client.request("GET", "/big")
            client.slow.add(stalled)
            client.until(lambda: len(client.bodies.get(stalled, b"")) >= 65535)
            srv.stop()
            with pytest.raises((ConnectionError, OSError)):
                client.until(lambda: False)
    finally:
        srv.stop()
    assert [e.completed for e in srv.exchanges] == [False, False]


def test_reset_and_close_connections(h2srv: TestServer) -> None:
    h2srv.add_response(Response(hold=True), path="/held")
    with H2Client(h2srv) as client:
        client.request("GET", "/held")
        h2srv.wait_held()
        h2srv.reset()  # a held exchange's connection is closed
        with pytest.raises(ConnectionError):
            client.until(lambda: False)
    with H2Client(h2srv) as client:
        first = client.request("GET", "/idle")
        client.until(lambda: first in client.ended)
        assert h2srv.close_connections() == 1
        with pytest.raises(ConnectionError):
            client.until(lambda: False)


def test_byte_level_answers_are_refused(h2srv: TestServer) -> None:
    h2srv.add_response(Response(b"x", violation="content-length-twice"), path="/violation")
    h2srv.add_response(Response(b"x", fault="truncate"), path="/truncate")
    with H2Client(h2srv) as client:
        violation = client.request("GET", "/violation")
        truncate = client.request("GET", "/truncate")
        client.until(lambda: {violation, truncate} <= set(client.resets))
    with pytest.raises(AssertionError, match="cannot be sent over HTTP/2") as failed:
        h2srv.check()
    assert "violation='content-length-twice'" in str(failed.value)
    assert "fault='truncate'" in str(failed.value)


def test_a_header_h2_refuses_resets_the_stream(h2srv: TestServer) -> None:
    h2srv.add_response(Response(b"x", headers={"TE": "gzip"}), path="/te")
    with H2Client(h2srv) as client:
        stream_id = client.request("GET", "/te")
        client.until(lambda: stream_id in client.resets)
        assert client.resets[stream_id] == h2_errors.ErrorCodes.INTERNAL_ERROR
    with pytest.raises(AssertionError, match="HTTP/2 refused the answer's header fields"):
        h2srv.check()


def test_callback_and_read_rate(h2srv: TestServer) -> None:
    h2srv.add_response(Response(read_rate=1_000_000, callback=echo_path))
    with H2Client(h2srv) as client:
        stream_id = client.request("POST", "/cb", b"abc" * 1000)
        client.until(lambda: stream_id in client.ended)
        assert bytes(client.bodies[stream_id]) == b"callback:/cb"
    assert h2srv.request.data == b"abc" * 1000


def test_upgrade_h2c_is_answered_in_http1(h2srv: TestServer) -> None:
    with httpx.Client(verify=h2srv.client_ssl_context() if h2srv.ca_path else True) as client:
        response = client.get(
            h2srv.get_url("/up"),
            headers={
                "Connection": "Upgrade, HTTP2-Settings",
                "Upgrade": "h2c",
                "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA",
            },
        )
    assert response.http_version == "HTTP/1.1"
    assert response.status_code == 200
    assert h2srv.request.version == "HTTP/1.1"


def test_a_preface_sent_in_pieces(mode: str) -> None:
    from tserver._h2serve import PREFACE

    with TestServer(mode=mode, http2=True) as srv:
        srv.set_response("data", b"pieces")
        conn = h2_connection.H2Connection(
            config=h2_config.H2Configuration(client_side=True, header_encoding=None)
        )
        conn.initiate_connection()
        conn.send_headers(
            1,
            [(":method", "GET"), (":scheme", "http"), (":path", "/p"), (":authority", "x")],
            end_stream=True,
        )
        opening = conn.data_to_send()
        assert opening.startswith(PREFACE)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(opening[:5])  # the start of the preface alone
            sock.sendall(opening[5:])
            body = b""
            while True:
                data = sock.recv(1 << 16)
                assert data, "the server closed before answering"
                events = conn.receive_data(data)
                sock.sendall(conn.data_to_send())
                body += b"".join(e.data for e in events if isinstance(e, h2_events.DataReceived))
                if any(isinstance(e, h2_events.StreamEnded) for e in events):
                    break
        assert body == b"pieces"
        assert srv.request.version == "HTTP/2"


def test_http2_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="http2"):
        TestServer(http2="yes")  # type: ignore[arg-type]


def test_inline_mode() -> None:
    from tornado.testing import gen_test

    from tserver.testing import AsyncTestServerTestCase

    class Case(AsyncTestServerTestCase):
        def get_server_options(self) -> dict[str, Any]:
            return {"http2": True}

        @gen_test
        async def test_h2c(self) -> None:
            self.server.set_response("data", b"inline")
            async with httpx.AsyncClient(http1=False, http2=True) as client:
                response = await client.get(self.server.get_url("/in"))
            assert response.http_version == "HTTP/2"
            assert response.content == b"inline"
            assert self.server.request.version == "HTTP/2"

    result = unittest.TestResult()
    Case("test_h2c").run(result)
    assert result.wasSuccessful(), result.errors + result.failures


def test_http2_without_h2_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "h2" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match=r"pip install 'tserver\[http2\]'"):
        TestServer(http2=True)
