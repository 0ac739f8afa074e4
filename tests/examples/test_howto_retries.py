"""How-to: test a client's retries (``docs/howto.rst``)."""

from __future__ import annotations

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tserver import Response, TestServer


def make_session(retries: int = 3) -> requests.Session:
    """The code under test: a session that retries 502, 503 and 504."""
    retry = Retry(total=retries, status_forcelist=[502, 503, 504], backoff_factor=0)
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


def test_retries_until_the_server_recovers() -> None:
    with TestServer() as srv, make_session() as session:
        srv.add_response(Response(status=503), count=2)  # the first two requests fail
        srv.set_response("data", b"ok")  # then the default answers

        assert session.get(srv.get_url("/data"), timeout=5).content == b"ok"

        srv.assert_history().has_length(3)


def test_gives_up_after_the_last_retry() -> None:
    with TestServer() as srv, make_session(retries=2) as session:
        srv.add_response(Response(status=503), count=None)  # every request fails

        with pytest.raises(requests.exceptions.RetryError):
            session.get(srv.get_url("/data"), timeout=5)

        assert srv.request_count == 3  # the first try and two retries


def test_does_not_retry_a_client_error() -> None:
    with TestServer() as srv, make_session() as session:
        srv.set_response("status", 404)

        assert session.get(srv.get_url("/missing"), timeout=5).status_code == 404

        srv.assert_history().has_length(1)
