"""How-to: test a client against broken connections (``docs/howto.rst``)."""

from __future__ import annotations

import pytest
import requests

from tserver import Raw, Response, TestServer


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        # close the connection without an answer
        ("close", requests.exceptions.ConnectionError),
        # reset the connection (TCP RST)
        ("reset", requests.exceptions.ConnectionError),
        # send the headers and half the body, then close
        ("truncate", requests.exceptions.ChunkedEncodingError),
        # send exactly these bytes, then close
        (
            Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
            requests.exceptions.ChunkedEncodingError,
        ),
    ],
)
def test_the_client_reports_a_broken_answer(fault: str | Raw, error: type[Exception]) -> None:
    with TestServer() as srv:
        srv.add_response(Response(data=b"0123456789", fault=fault))

        with pytest.raises(error):
            requests.get(srv.url, timeout=5)

        srv.assert_request().has_method("GET")  # the request itself arrived


def test_a_fault_once_then_a_good_answer() -> None:
    with TestServer() as srv, requests.Session() as session:
        srv.add_response(Response(fault="reset"))  # count=1: only the first request
        srv.set_response("data", b"fine")

        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(srv.url, timeout=5)
        assert session.get(srv.url, timeout=5).content == b"fine"
