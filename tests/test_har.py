"""The traffic as HAR 1.2 (issue 25): a valid log of a mixed session, in every mode."""

from __future__ import annotations

import base64
import datetime
import json
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from haralyzer import HarEntry, HarParser

from tserver import Cookie, Event, Response, TestServer
from tserver._har import STREAM_CAP


def _is_pairs(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("value"), str)
        for p in value
    )


def validate_har(har: dict[str, Any]) -> None:
    """The HAR 1.2 rules (http://www.softwareishard.com/blog/har-12-spec/) a log must keep."""
    log = har["log"]
    assert log["version"] == "1.2"
    assert isinstance(log["creator"]["name"], str)
    assert isinstance(log["creator"]["version"], str)
    assert isinstance(log["entries"], list)
    for entry in log["entries"]:
        datetime.datetime.fromisoformat(entry["startedDateTime"].replace("Z", "+00:00"))
        assert isinstance(entry["time"], (int, float))
        assert entry["time"] >= 0
        assert entry["cache"] == {}
        for phase in ("send", "wait", "receive"):
            assert isinstance(entry["timings"][phase], (int, float))
            assert entry["timings"][phase] >= -1
        assert isinstance(entry["serverIPAddress"], str)
        assert isinstance(entry["connection"], str)
        request, response = entry["request"], entry["response"]
        for key in ("method", "url", "httpVersion"):
            assert isinstance(request[key], str)
        for key in ("cookies", "headers", "queryString"):
            assert _is_pairs(request[key]), key
        assert isinstance(request["headersSize"], int)
        assert isinstance(request["bodySize"], int)
        if "postData" in request:
            post = request["postData"]
            assert isinstance(post["mimeType"], str)
            assert isinstance(post["text"], str)
            for param in post.get("params", []):
                assert isinstance(param["name"], str)
        assert isinstance(response["status"], int)
        assert isinstance(response["statusText"], str)
        assert isinstance(response["httpVersion"], str)
        assert _is_pairs(response["cookies"])
        assert _is_pairs(response["headers"])
        content = response["content"]
        assert isinstance(content["size"], int)
        assert isinstance(content["mimeType"], str)
        assert content.get("encoding") in (None, "base64")
        assert isinstance(response["redirectURL"], str)
        assert isinstance(response["headersSize"], int)
        assert isinstance(response["bodySize"], int)
    json.dumps(har)  # JSON values only


def _mixed_session(srv: TestServer) -> None:
    srv.add_response(Response(status=503), count=1, path="/retry")
    srv.add_response(Response(events=[Event("a"), Event("b")]), path="/events")
    srv.add_response(Response(fault="reset"), path="/fault")
    srv.add_response(
        Response(json={"ok": True}, cookies=[Cookie("s", "1")], headers={"X-A": "b"}),
        path="/json",
    )
    with requests.Session() as session:
        session.trust_env = False
        for _ in range(2):
            session.get(srv.get_url("/retry?attempt=1"), timeout=10)
        session.post(
            srv.get_url("/upload"),
            files={"file": ("a.bin", b"\x00\x01\xff")},
            data={"k": "v"},
            timeout=10,
        )
        session.get(srv.get_url("/events"), timeout=10)
        session.get(srv.get_url("/json"), timeout=10)
        with pytest.raises(requests.ConnectionError):
            session.get(srv.get_url("/fault"), timeout=10)


def test_the_har_of_a_mixed_session(server: TestServer, tmp_path: Path) -> None:
    _mixed_session(server)
    har = server.to_har()
    validate_har(har)
    entries = har["log"]["entries"]
    assert [(e["request"]["method"], e["response"]["status"]) for e in entries] == [
        ("GET", 503),
        ("GET", 200),
        ("POST", 200),
        ("GET", 200),
        ("GET", 200),
        ("GET", 0),  # the reset: no status line went out
    ]
    retry, again, upload, events, answer, fault = entries
    assert retry["_tserver"]["rule"] == 0
    assert again["_tserver"]["rule"] is None  # the default answered
    assert retry["connection"] == again["connection"] == "0"  # kept alive
    assert (retry["_tserver"]["exchange"], again["_tserver"]["exchange"]) == (0, 1)
    assert retry["request"]["queryString"] == [{"name": "attempt", "value": "1"}]
    assert retry["serverIPAddress"] == server.address
    assert retry["request"]["headers"][0]["name"] == "Host"  # in arrival order
    post = upload["request"]["postData"]
    assert post["mimeType"].startswith("multipart/form-data; boundary=")
    assert {"name": "k", "value": "v"} in post["params"]
    assert {"name": "file", "fileName": "a.bin", "contentType": ""} in post["params"] or any(
        p.get("fileName") == "a.bin" for p in post["params"]
    )
    assert events["response"]["content"] == {
        "size": len(b"data: a\n\ndata: b\n\n"),
        "mimeType": "text/event-stream",
        "text": "data: a\n\ndata: b\n\n",
    }
    assert {"name": "Transfer-Encoding", "value": "chunked"} in events["response"]["headers"]
    assert answer["response"]["content"]["text"] == '{"ok": true}'
    assert answer["response"]["cookies"] == [{"name": "s", "value": "1"}]
    assert fault["_tserver"]["fault"] == "reset"
    assert fault["_tserver"]["completed"] is False
    # a file that a real HAR consumer opens
    path = tmp_path / "session.har"
    server.save_har(path)
    parser = HarParser(json.loads(path.read_text(encoding="utf-8")))
    assert parser.version == "1.2"
    assert parser.creator["name"] == "tserver"
    loaded = [HarEntry(e) for e in parser.har_data["entries"]]
    assert [e.status for e in loaded] == [503, 200, 200, 200, 200, 0]
    assert loaded[4].response.text == '{"ok": true}'
    assert loaded[2].request.method == "POST"


def test_the_log_outlives_stop(mode: str) -> None:
    srv = TestServer(mode=mode).start()
    try:
        srv.add_response(Response(b"kept", status=201))
        requests.get(srv.url, timeout=10)
    finally:
        srv.stop()
    entry = srv.to_har()["log"]["entries"][0]
    assert entry["response"]["status"] == 201
    assert entry["response"]["content"]["text"] == "kept"


def test_binary_bodies_are_base64(server: TestServer) -> None:
    server.add_response(Response(b"\x00\xff", headers={"Content-Type": "application/octet-stream"}))
    requests.post(server.url, data=b"\x01\xfe", timeout=10)
    entry = server.to_har()["log"]["entries"][0]
    assert entry["request"]["postData"]["_encoding"] == "base64"
    assert base64.b64decode(entry["request"]["postData"]["text"]) == b"\x01\xfe"
    content = entry["response"]["content"]
    assert content["encoding"] == "base64"
    assert base64.b64decode(content["text"]) == b"\x00\xff"


def test_a_streamed_body_is_kept_up_to_its_cap(server: TestServer) -> None:
    server.add_response(Response(chunks=[b"x" * STREAM_CAP, b"y" * 10]))
    assert len(requests.get(server.url, timeout=10).content) == STREAM_CAP + 10
    entry = server.to_har()["log"]["entries"][0]
    assert entry["response"]["content"]["size"] == STREAM_CAP
    assert entry["_tserver"]["bodyTruncated"] is True


@pytest.mark.parametrize(
    "response",
    [
        Response(b"plain"),
        Response(json=[1], status=201, reason="Made"),
        Response(b"x", headers=[("X-Two", "1"), ("X-Two", "2")], cookies={"a": "1"}),
        Response(b"x", headers={"Content-Type": "text/plain"}),
        Response(status=204),
        Response(chunks=[b"a", b"b"]),
        Response(events=[Event("e")]),
        Response(b"zip", encoding="gzip"),
    ],
    ids=["plain", "json", "repeated", "content-type", "204", "chunks", "events", "gzip"],
)
def test_the_logged_headers_are_the_headers_sent(server: TestServer, response: Response) -> None:
    server.add_response(response)
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = sock.makefile("rb")
        status_line = reader.readline()
        sent = []
        while (line := reader.readline()) != b"\r\n":
            name, _, value = line.decode("latin-1").rstrip("\r\n").partition(": ")
            sent.append((name, value))
        reader.close()
    entry = server.to_har()["log"]["entries"][0]
    logged = [(h["name"], h["value"]) for h in entry["response"]["headers"]]
    assert status_line.decode().split(" ", 2)[2].strip() == entry["response"]["statusText"]

    def without_date(headers: list[tuple[str, str]]) -> Counter[tuple[str, str]]:
        return Counter(h for h in headers if h[0] != "Date")

    assert without_date(logged) == without_date(sent)


def _entry(server: TestServer, index: int = 0) -> dict[str, Any]:
    return server.to_har()["log"]["entries"][index]  # type: ignore[no-any-return]


def test_text_bodies_are_text(server: TestServer) -> None:
    form = "a=1&b=%C3%BC"
    requests.post(server.url, data={"a": "1", "b": "ü"}, timeout=10)
    latin = "café".encode("latin-1")
    requests.post(
        server.url, data=latin, headers={"Content-Type": "text/plain; charset=iso-8859-1"}
    )
    requests.post(server.url, data="ünïcode".encode(), timeout=10)  # no type stated
    requests.post(server.url, files={"f": ("t.txt", b"text only")}, timeout=10)
    posts = [e["request"]["postData"] for e in server.to_har()["log"]["entries"]]
    assert [p.get("_encoding") for p in posts] == [None] * 4
    assert posts[0]["text"] == form
    assert posts[1]["text"] == "café"
    assert posts[2]["text"] == "ünïcode"
    assert "text only" in posts[3]["text"]


def test_what_the_log_says_was_sent(server: TestServer) -> None:
    server.add_response(Response(b"abc", headers={"Content-Length": "3"}), path="/own")
    server.add_response(Response(b"x" * 500, encoding="gzip"), path="/gzip")
    server.add_response(Response(b"0123456789", fault="truncate"), path="/cut")
    server.add_response(Response(b"BODY", violation="body-on-204"), path="/v204")
    with requests.Session() as session:
        session.get(server.get_url("/own"), timeout=10)
        session.get(server.get_url("/gzip"), timeout=10)
        session.head(server.get_url("/own"), timeout=10)
        with pytest.raises(requests.RequestException):
            session.get(server.get_url("/cut"), timeout=10)
        session.get(server.get_url("/v204"), timeout=10)
    requests.get(server.get_url("/own"), headers={"Connection": "close"}, timeout=10)
    own, gzip_, head, cut, v204, closing = server.to_har()["log"]["entries"]

    def names(entry: dict[str, Any]) -> list[str]:
        return [h["name"] for h in entry["response"]["headers"]]

    assert names(own).count("Content-Length") == 1
    assert gzip_["response"]["content"]["size"] == 500  # decoded
    assert gzip_["response"]["bodySize"] < 100  # as it crossed the wire
    assert head["response"]["content"]["size"] == 0  # no body answers a HEAD
    assert cut["response"]["content"]["text"] == "01234"  # half of it went out
    assert v204["response"]["status"] == 204  # what the wire said
    assert v204["response"]["content"]["text"] == "BODY"
    assert {"name": "Connection", "value": "close"} in closing["response"]["headers"]
    date = next(h["value"] for h in own["response"]["headers"] if h["name"] == "Date")
    received = datetime.datetime.fromisoformat(own["startedDateTime"].replace("Z", "+00:00"))
    assert abs(email_date(date) - received).total_seconds() < 1.5


def email_date(value: str) -> datetime.datetime:
    import email.utils

    return email.utils.parsedate_to_datetime(value)


def test_an_http_1_0_request_is_answered_in_http_1_1(server: TestServer) -> None:
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert sock.makefile("rb").readline().startswith(b"HTTP/1.1 200")
    entry = _entry(server)
    assert (entry["request"]["httpVersion"], entry["response"]["httpVersion"]) == (
        "HTTP/1.0",
        "HTTP/1.1",
    )


def test_a_fresh_response_is_not_kept_whole() -> None:
    import gc
    import weakref

    made: list[weakref.ref[Response]] = []

    def big(request: Any) -> Response:
        response = Response(b"b" * (1 << 20))
        made.append(weakref.ref(response))
        return response

    with TestServer() as srv:
        srv.add_response(Response(callback=big))
        assert len(requests.get(srv.url, timeout=10).content) == 1 << 20
        srv.wait_request()
        requests.get(srv.get_url("/sync"), timeout=10)  # the first exchange is done by now
        gc.collect()
        assert made[0]() is None  # its 1 MiB body is not kept for the log
        content = _entry(srv)["response"]["content"]
        assert content["size"] == STREAM_CAP


def test_a_server_named_by_host_name_logs_its_address() -> None:
    with TestServer(address="localhost") as srv:
        requests.get(f"http://localhost:{srv.port}/", timeout=10)
        assert _entry(srv)["serverIPAddress"] in ("127.0.0.1", "::1")
