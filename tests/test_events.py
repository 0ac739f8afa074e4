"""Server-sent events and lazy streams (SPEC §10), with real SSE clients."""

from __future__ import annotations

import asyncio
import itertools
import json
import pickle
import socket
from collections.abc import Iterator

import aiohttp
import httpx
import pytest
from helpers.wire import read_until
from httpx_sse import connect_sse

from tserver import Event, Response, TestServer

# -- Event ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (Event("hello"), b"data: hello\n\n"),
        (Event("two\nlines"), b"data: two\ndata: lines\n\n"),
        (Event("cr\r\nlf\rcr"), b"data: cr\ndata: lf\ndata: cr\n\n"),
        (Event({"n": [1, 2]}), b'data: {"n": [1, 2]}\n\n'),
        (Event(None), b"data: null\n\n"),
        (Event(), b"data: \n\n"),
        (Event(comment="keep-alive"), b": keep-alive\n\n"),
        (
            Event("x", event="update", id="7", retry=1500, comment="c"),
            b": c\nevent: update\nid: 7\nretry: 1500\ndata: x\n\n",
        ),
        (Event("ünï"), "data: ünï\n\n".encode()),
    ],
)
def test_the_wire_form_of_an_event(event: Event, wire: bytes) -> None:
    assert event.encode() == wire


def test_an_event_is_an_immutable_picklable_value() -> None:
    event = Event("x", id="1")
    assert pickle.loads(pickle.dumps(event)) == event
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Event("x", "update")  # type: ignore[misc]  # everything after data is by keyword


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": {1, 2}}, "neither a str nor a JSON value"),
        ({"id": "a\nb"}, "id 'a\\\\nb' must be one line"),
        ({"event": 3}, "event 3 must be a str"),
        ({"retry": -1}, "retry -1 must be an int"),
        ({"retry": True}, "retry True must be an int"),
        ({"comment": "a\rb"}, "comment 'a\\\\rb' must be one line"),
    ],
)
def test_a_bad_event_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        Event(**kwargs)  # type: ignore[arg-type]


def test_events_exclude_the_other_bodies() -> None:
    for other in ({"data": b"x"}, {"json": {}}, {"chunks": [b"x"]}):
        with pytest.raises(ValueError, match="events= excludes data=, json= and chunks="):
            Response(events=[], **other)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must hold Event"):
        Response(events=["data: x\n\n"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must be an iterable of Event"):
        Response(events=Event("x"))  # type: ignore[arg-type]
    assert Response(events=[]).content_type == "text/event-stream"


# -- an event stream on the wire ----------------------------------------------------------


def test_an_event_stream_is_one_flushed_chunk_per_event(server: TestServer) -> None:
    events = [Event("one", id="1"), Event({"two": 2}, event="json")]
    server.add_response(Response(events=events))
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        data = read_until(sock, b"0\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    head += b"\r\n"
    assert b"\r\nContent-Type: text/event-stream\r\n" in head
    assert b"\r\nCache-Control: no-cache\r\n" in head
    assert b"\r\nTransfer-Encoding: chunked\r\n" in head
    wires = [e.encode() for e in events]
    assert body == b"".join(b"%x\r\n%s\r\n" % (len(w), w) for w in wires) + b"0\r\n\r\n"


def test_httpx_sse_reads_events_and_pushed_ones(server: TestServer) -> None:
    server.add_response(Response(events=[Event("first", id="1")], hold="body"))
    with httpx.Client(timeout=10) as client, connect_sse(client, "GET", server.url) as source:
        held = server.wait_held()
        assert held.event_stream
        events = source.iter_sse()
        # the event given up front waits with the rest of the body; pushed ones go at once
        held.send(Event("pushed", event="note", id="0"))
        first = next(events)
        assert (first.event, first.data, first.id) == ("note", "pushed", "0")
        held.release()
        rest = [(e.data, e.id) for e in events]
    assert rest == [("first", "1")]


def test_aiohttp_reads_an_event_stream(server: TestServer) -> None:
    server.add_response(Response(events=[Event("a"), Event({"b": 1}), Event(comment="end")]))

    async def main() -> list[bytes]:
        async with aiohttp.ClientSession() as session, session.get(server.url) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            return [line async for line in response.content]

    lines = asyncio.run(main())
    assert lines == [b"data: a\n", b"\n", b'data: {"b": 1}\n', b"\n", b": end\n", b"\n"]


def test_the_last_event_id_of_a_reconnecting_consumer(server: TestServer) -> None:
    # the first connection ends after event 2; the consumer comes back for the rest
    server.add_response(Response(events=[Event("a", id="1"), Event("b", id="2")], hold="body"))
    server.add_response(Response(events=[Event("c", id="3")]))
    seen: list[str] = []
    last_id = None
    with httpx.Client(timeout=10) as client:
        for attempt in range(2):
            headers = {} if last_id is None else {"Last-Event-ID": last_id}
            with connect_sse(client, "GET", server.url, headers=headers) as source:
                if attempt == 0:
                    held = server.wait_held()
                    held.send(Event("a", id="1"))
                    held.send(Event("b", id="2"))
                try:
                    for event in source.iter_sse():
                        seen.append(event.data)
                        last_id = event.id
                        if attempt == 0 and event.id == "2":
                            held.fail("close")
                except httpx.RemoteProtocolError:
                    pass  # the server went away mid-stream: reconnect
    assert seen == ["a", "b", "c"]
    assert "last-event-id" not in server.history[0].headers
    assert server.history[1].headers["Last-Event-ID"] == "2"


# -- lazy and endless streams -------------------------------------------------------------


def test_an_endless_generator_streams_until_the_client_leaves() -> None:
    pulled = itertools.count()

    def endless() -> Iterator[bytes]:
        while True:
            next(pulled)
            yield b"x" * 65536

    srv = TestServer().start()
    try:
        srv.add_response(Response(chunks=endless()))
        with httpx.Client(timeout=10) as client, client.stream("GET", srv.url) as response:
            got = 0
            for piece in response.iter_bytes():
                got += len(piece)
                if got >= 3 * 65536:
                    break
    finally:
        srv.stop()
    # socket buffers hold some chunks; an endless stream would have had no end
    assert 3 <= next(pulled) < 500
    srv.check()


def test_a_generator_cannot_cross_to_a_child() -> None:
    with TestServer(mode="subprocess") as srv:
        for field in ("chunks", "events"):
            generator = (item for item in [])
            with pytest.raises(ValueError, match=f"{field} is an iterator .* cannot cross"):
                srv.add_response(Response(**{field: generator}))  # type: ignore[arg-type]
        # a list crosses, and so does a callback that makes the generator in the child
        srv.add_response(Response(events=[Event("listed")]))
        with httpx.Client(timeout=10) as client:
            assert client.get(srv.url).text == "data: listed\n\n"


def test_an_iterator_serves_its_items_once() -> None:
    with TestServer() as srv, httpx.Client(timeout=10) as client:
        srv.add_response(Response(chunks=iter([b"a", b"b"])), count=2)
        srv.add_response(Response(events=iter([Event("e")])), count=2, path="/e")
        assert [client.get(srv.url).content for _ in range(2)] == [b"ab", b""]
        assert [client.get(srv.get_url("/e")).text for _ in range(2)] == ["data: e\n\n", ""]


def test_openai_streams_a_chat_completion(server: TestServer) -> None:
    openai = pytest.importorskip("openai")
    chunks = [
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "test",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        }
        for text in ("Hel", "lo")
    ]
    server.add_response(
        Response(events=[*(Event(c) for c in chunks), Event("[DONE]")]),
        method="POST",
        path="/v1/chat/completions",
    )
    client = openai.OpenAI(base_url=server.get_url("/v1"), api_key="test", max_retries=0)
    with client:
        stream = client.chat.completions.create(
            model="test", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(part.choices[0].delta.content or "" for part in stream)
    assert text == "Hello"
    request = server.assert_request().has_method("POST").has_path("/v1/chat/completions")
    assert json.loads(server.request.data)["stream"] is True
    assert request is not None


def test_events_go_chunk_sleep_apart(server: TestServer) -> None:
    import time

    server.add_response(Response(events=[Event("a"), Event("b"), Event("c")], chunk_sleep=0.1))
    started = time.monotonic()
    with httpx.Client(timeout=10) as client:
        assert client.get(server.url).text == "data: a\n\ndata: b\n\ndata: c\n\n"
    assert time.monotonic() - started >= 0.2  # two gaps


def test_an_event_is_fixed_when_made() -> None:
    data = {"n": 1}
    event = Event(data)
    data["n"] = 2
    assert event.encode() == b'data: {"n": 1}\n\n'
    assert event.data == {"n": 1}
    assert hash(event) == hash(Event({"n": 1}))
    with pytest.raises(ValueError, match="not JSON compliant"):
        Event(float("nan"))


def test_a_stream_has_no_place_in_a_bodiless_status() -> None:
    for status in (204, 304, 101):
        with pytest.raises(ValueError, match=f"status {status} never has"):
            Response(events=[Event("a")], status=status)
        with pytest.raises(ValueError, match=f"status {status} never has"):
            Response(chunks=[b"a"], status=status)


def test_a_dripping_stream_answers_a_head_at_once(server: TestServer) -> None:
    import time

    server.add_response(Response(chunks=[b"x" * 100, b"y" * 100], rate=10))
    started = time.monotonic()
    with httpx.Client(timeout=10) as client:
        assert client.head(server.url).status_code == 200
        assert client.get(server.get_url("/next")).status_code == 200  # not behind a drip
    assert time.monotonic() - started < 5
