"""Examples of the page "Protocol violations" (``docs/violations.rst``)."""

from __future__ import annotations

import pytest
import requests

from tserver import VIOLATIONS, Response, TestServer


def test_my_client_raises_on_a_bad_chunk_size() -> None:
    with TestServer() as srv:
        srv.add_response(Response(b"never whole", violation="chunk-size-invalid"))

        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(srv.url, timeout=5)


def test_every_violation_breaks_the_response_it_is_given() -> None:
    with TestServer() as srv:
        srv.add_response(Response(json={"id": 7}, status=201, violation="content-length-too-long"))
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(srv.url, timeout=5)  # 201, JSON, and a length that lies

    assert VIOLATIONS["header-obs-fold"].startswith("a header value folded")
