"""How-to: test streaming, both ways (``docs/howto.rst``)."""

from __future__ import annotations

from collections.abc import Iterator

import requests

from tserver import Response, TestServer


def read_events(url: str) -> list[str]:
    """The code under test: reads newline-separated events as they arrive."""
    with requests.get(url, stream=True, timeout=5) as response:
        return [line.decode() for line in response.iter_lines() if line]


def test_the_client_reads_a_chunked_stream() -> None:
    with TestServer() as srv:
        srv.add_response(
            Response(chunks=[b"event: 1\n", b"event: 2\n", b"event: 3\n"], chunk_sleep=0.05)
        )

        assert read_events(srv.get_url("/events")) == ["event: 1", "event: 2", "event: 3"]


def test_the_client_uploads_a_chunked_body() -> None:
    def body() -> Iterator[bytes]:
        yield b"first,"
        yield b"second"

    with TestServer() as srv:
        requests.post(srv.get_url("/upload"), data=body(), timeout=5)

        # the body is recorded decoded, exactly as the client meant it
        srv.assert_request().has_header("Transfer-Encoding", "chunked").has_data(b"first,second")
