"""SPEC points that checks outside this repository found wrong (issue 14, items 4 and 7).

- `Headers.multi_items` keeps arrival order across names (§4, §9.2);
- `Cookie` takes everything after the value by keyword only (§3.1);
- a header that contradicts the framing is framed right or refused (§3.2);
- ``chunks=`` is consumed as it is sent, never when the `Response` is made;
- the no-request failure lists the recorded requests (§5), and failures name
  only public classes (§7).
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator

import pytest
import requests

from tserver import Cookie, NoRequestError, Response, TestServer


def raw_exchange(srv: TestServer, head: bytes) -> bytes:
    """Send *head* (``Connection: close``) on a new connection; everything read back."""
    assert b"Connection: close" in head
    with socket.create_connection((srv.address, srv.port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


# -- header order ------------------------------------------------------------------


def test_multi_items_keep_arrival_order_across_names(server: TestServer) -> None:
    raw_exchange(
        server,
        b"GET /order HTTP/1.1\r\nHost: t\r\nX-Rep: one\r\nX-Other: o\r\nx-rep: two\r\n"
        b"Connection: close\r\n\r\n",
    )
    headers = server.wait_request().headers
    assert headers.multi_items() == [
        ("Host", "t"),
        ("X-Rep", "one"),
        ("X-Other", "o"),
        ("X-Rep", "two"),
        ("Connection", "close"),
    ]
    assert headers.getlist("X-REP") == ["one", "two"]
    assert list(headers) == ["Host", "X-Rep", "X-Other", "Connection"]


def test_order_is_kept_for_each_request_of_a_keep_alive_connection(server: TestServer) -> None:
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        for first, second in (("A", "B"), ("B", "A")):
            head = f"GET /{first} HTTP/1.1\r\nHost: t\r\nX-{first}: 1\r\nX-{second}: 2\r\n\r\n"
            sock.sendall(head.encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    first, second = server.wait_requests(2)
    assert [k for k, _ in first.headers.multi_items()] == ["Host", "X-A", "X-B"]
    assert [k for k, _ in second.headers.multi_items()] == ["Host", "X-B", "X-A"]


# -- Cookie ---------------------------------------------------------------------------


def test_cookie_takes_everything_after_the_value_by_keyword() -> None:
    assert Cookie("s", "v", path="/").render() == "s=v; Path=/"
    with pytest.raises(TypeError):
        Cookie("s", "v", "/")  # type: ignore[misc]


# -- framing headers --------------------------------------------------------------------


def test_a_chunked_transfer_encoding_header_frames_the_body_chunked(server: TestServer) -> None:
    server.add_response(Response(data=b"abc", headers={"Transfer-Encoding": "chunked"}))
    reply = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert b"Content-Length" not in head
    assert body == b"3\r\nabc\r\n0\r\n\r\n"
    answer = requests.get(server.url, timeout=10)  # a real client reads it whole
    assert answer.content == b""  # the rule was used up: the default answers now


@pytest.mark.parametrize(
    ("headers", "data", "says"),
    [
        ({"Transfer-Encoding": "chunked", "Content-Length": "3"}, b"abc", "both"),
        ({"Content-Length": "10"}, b"abc", "body has 3 bytes"),
        ({"Content-Length": "x"}, b"abc", "not one length"),
        ({"Transfer-Encoding": "gzip"}, b"abc", "'chunked' only"),
    ],
)
def test_framing_headers_that_contradict_the_body_are_refused(
    headers: dict[str, str], data: bytes, says: str
) -> None:
    with pytest.raises(ValueError, match=says) as info:
        Response(data=data, headers=headers)
    assert "Raw(" in str(info.value)  # and says how to send it anyway


def test_content_length_and_chunks_contradict() -> None:
    with pytest.raises(ValueError, match="drop the Content-Length"):
        Response(chunks=[b"a"], headers={"Content-Length": "1"})


def test_a_matching_content_length_is_fine(server: TestServer) -> None:
    server.add_response(Response(data=b"abc", headers={"Content-Length": "3"}))
    assert requests.get(server.url, timeout=10).content == b"abc"


def test_set_response_layers_that_contradict_are_refused_at_once(server: TestServer) -> None:
    with pytest.raises(ValueError, match="body has 0 bytes"):
        server.set_response("headers", {"Content-Length": "2"})  # no body to agree with
    server.set_response("data", b"ab")
    server.set_response("headers", {"Content-Length": "2"})  # agrees: fine
    with pytest.raises(ValueError, match="body has 3 bytes"):
        server.set_response("data", b"abc")
    assert requests.get(server.url, timeout=10).content == b"ab"


# -- chunks are consumed as they are sent ------------------------------------------------


def test_an_endless_iterator_of_chunks_is_not_materialised() -> None:
    Response(chunks=itertools.repeat(b"x"))  # returns at once


def test_a_generator_of_chunks_streams_lazily() -> None:
    produced: list[int] = []

    def chunks() -> Iterator[bytes]:
        for n in range(3):
            produced.append(n)
            yield f"part{n};".encode()

    response = Response(chunks=chunks())
    assert produced == []
    with TestServer() as srv:
        srv.add_response(response)
        assert requests.get(srv.url, timeout=10).content == b"part0;part1;part2;"
    assert produced == [0, 1, 2]


def test_a_generator_of_chunks_cannot_cross_to_a_child() -> None:
    with TestServer(mode="subprocess") as srv, pytest.raises(ValueError, match="chunks"):
        srv.add_response(Response(chunks=(b"x" for _ in range(2))))


# -- failures -------------------------------------------------------------------------------


def test_no_request_at_an_index_lists_the_history(server: TestServer) -> None:
    requests.get(server.get_url("/only?x=1"), timeout=10)
    server.wait_request()
    with pytest.raises(AssertionError) as info:
        server.assert_request(3)
    message = str(info.value)
    assert message.startswith("no request at index 3: 1 request was recorded")
    assert server.url in message
    assert "#0  GET /only?x=1" in message
    assert type(info.value) is NoRequestError  # a public class, and an AssertionError
    assert type(info.value).__module__ + "." + type(info.value).__qualname__ == (
        "tserver.NoRequestError"
    )
    with pytest.raises(NoRequestError, match=r"no request at index -2: 1 request was recorded"):
        server.get_request(index=-2)


def test_no_request_at_all_says_so_and_names_the_url(server: TestServer) -> None:
    with pytest.raises(NoRequestError) as info:
        _ = server.request
    assert (
        str(info.value)
        == f"no request at index -1: no requests were recorded (server at {server.url})"
    )


def test_every_error_class_a_user_sees_is_public() -> None:
    import tserver

    public = {
        getattr(tserver, name)
        for name in tserver.__all__
        if isinstance(getattr(tserver, name), type)
    }
    seen: list[type[BaseException]] = []
    with TestServer() as srv:
        for call in (
            srv.assert_request,
            srv.get_request,
            lambda: srv.set_response("stauts", 1),
            lambda: srv.set_response("status", "x"),
            lambda: srv.wait_request(timeout=0.0),
            srv.start,
        ):
            try:
                call()
            except Exception as exc:
                seen.append(type(exc))
    assert len(seen) == 6
    for kind in seen:
        assert kind in public or kind.__module__ == "builtins", kind


# -- rule ids and priority (SPEC 3.2, 9.4) ---------------------------------------------


def test_add_response_returns_ids_counting_from_zero_since_the_reset(server: TestServer) -> None:
    assert [server.add_response(Response(b"r")) for _ in range(3)] == [0, 1, 2]
    server.reset()
    assert server.add_response(Response(b"r")) == 0


def test_a_higher_priority_is_tried_first_and_equal_ones_in_order(server: TestServer) -> None:
    server.add_response(Response(b"catch-all"), count=None, priority=-1)
    server.add_response(Response(b"first"), count=1)
    server.add_response(Response(b"urgent"), count=1, priority=5)
    server.add_response(Response(b"second"), count=1)
    bodies = [requests.get(server.url, timeout=10).content for _ in range(5)]
    assert bodies == [b"urgent", b"first", b"second", b"catch-all", b"catch-all"]


def test_priority_must_be_an_int() -> None:
    with TestServer() as srv, pytest.raises(TypeError, match="priority"):
        srv.add_response(Response(), priority="high")  # type: ignore[arg-type]
