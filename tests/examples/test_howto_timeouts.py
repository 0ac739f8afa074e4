"""How-to: test a client's timeouts (``docs/howto.rst``)."""

from __future__ import annotations

import time

import pytest
import requests

from tserver import Response, TestServer


def test_the_client_gives_up_on_a_slow_server() -> None:
    with TestServer() as srv:
        srv.add_response(Response(sleep=5.0))  # answers after 5 s ...

        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(srv.url, timeout=0.2)  # ... the client waits 0.2 s
        assert time.monotonic() - started < 4.0

        # the request was recorded when it arrived, before the (late) answer
        srv.assert_request().has_method("GET").has_path("/")
    # leaving the block stops the server at once, sleeping answer or not


def test_a_slow_answer_within_the_timeout_arrives() -> None:
    with TestServer() as srv:
        srv.add_response(Response(data=b"late but fine", sleep=0.1))

        assert requests.get(srv.url, timeout=5).content == b"late but fine"
