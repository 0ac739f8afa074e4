"""Reading requests (``docs/reading.rst``): the fields, the history, the waits."""

from __future__ import annotations

import threading

import pytest
import requests

from tserver import NoRequestError, TestServer, WaitTimeoutError


def test_the_fields_of_a_request() -> None:
    with TestServer() as srv:
        requests.post(
            srv.get_url("/items?tag=a&tag=b&empty="),
            json={"id": 12},
            headers={"X-Token": "abc"},
            cookies={"session": "s1"},
            timeout=5,
        )

        request = srv.request  # the last request
        assert request.method == "POST"
        assert request.path == "/items"
        assert request.query_string == "tag=a&tag=b&empty="
        assert request.args["tag"] == "a"  # the first value
        assert request.args.getlist("tag") == ["a", "b"]  # every value
        assert request.args["empty"] == ""  # blank values are kept
        assert request.headers["x-token"] == "abc"  # names ignore case
        assert request.cookies == {"session": "s1"}
        assert request.data == b'{"id": 12}'  # the body, byte for byte
        assert request.text == '{"id": 12}'  # decoded by its charset
        assert request.json() == {"id": 12}
        assert request.client_ip == "127.0.0.1"
        assert request.version == "HTTP/1.1"
        assert request.scheme == "http"
        assert request.url == srv.get_url("/items?tag=a&tag=b&empty=")


def test_forms_and_uploads() -> None:
    with TestServer() as srv:
        requests.post(
            srv.url,
            data={"title": "report"},
            files={"attachment": ("report.csv", b"a,b\n1,2\n", "text/csv")},
            timeout=5,
        )

        request = srv.request
        assert request.form["title"] == "report"
        upload = request.files["attachment"][0]
        assert upload.filename == "report.csv"
        assert upload.content_type == "text/csv"
        assert upload.data == b"a,b\n1,2\n"


def test_the_history() -> None:
    with TestServer() as srv, requests.Session() as session:
        for path in ("/a", "/b", "/c"):
            session.get(srv.get_url(path), timeout=5)

        assert [request.path for request in srv.history] == ["/a", "/b", "/c"]
        assert srv.request_count == 3
        assert srv.get_request("path", index=0) == "/a"  # a field of one request
        assert srv.get_request("path") == "/c"  # index=-1: the last one
        assert srv.get_request().path == "/c"  # no key: the Request itself

        srv.reset()  # forget everything
        assert srv.history == []
        with pytest.raises(NoRequestError):
            srv.get_request()


def test_a_history_limit() -> None:
    with TestServer(history_limit=2) as srv, requests.Session() as session:
        for n in range(5):
            session.get(srv.get_url(f"/{n}"), timeout=5)

        assert [request.path for request in srv.history] == ["/3", "/4"]  # the last 2
        assert srv.request_count == 5  # but all of them were counted


def test_waiting() -> None:
    with TestServer() as srv:
        worker = threading.Thread(
            target=lambda: requests.get(srv.get_url("/late"), timeout=5).close()
        )
        worker.start()
        assert srv.wait_request(timeout=5).path == "/late"
        worker.join()

        with pytest.raises(WaitTimeoutError) as timeout:
            srv.wait_requests(2, timeout=0.1)  # a second request never comes
        assert (timeout.value.received, timeout.value.expected) == (1, 2)
