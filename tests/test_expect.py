"""``Expect: 100-continue`` both ways (SPEC §10): continue, refuse before the body, withhold."""

from __future__ import annotations

import asyncio
import io
import subprocess
from typing import Any

import aiohttp
import httpx
import pycurl
import pytest

from tserver import Response, TestServer

BODY = b"q" * 100_000
HEAD = "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n"


def _head(path: str, length: int = len(BODY)) -> bytes:
    return HEAD.format(path=path, length=length).encode()


@pytest.fixture
def expecting(server: TestServer) -> TestServer:
    server.add_response(
        Response(b"refused", status=417, expect="refuse"), path="/refuse", count=None
    )
    server.add_response(Response(b"withheld", expect="withhold"), path="/withhold", count=None)
    server.add_response(Response(b"continued"), path="/continue", count=None)
    return server


def test_by_default_the_server_answers_100_then_reads_the_body(expecting: TestServer) -> None:
    with _socket(expecting) as (sock, reader):
        sock.sendall(_head("/continue"))
        assert reader.readline() == b"HTTP/1.1 100 (Continue)\r\n"
        assert reader.readline() == b"\r\n"
        sock.sendall(BODY)
        assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
    assert expecting.wait_request().data == BODY


def test_refuse_answers_before_the_body_and_never_reads_it(expecting: TestServer) -> None:
    with _socket(expecting) as (sock, reader):
        sock.sendall(_head("/refuse"))  # and no body
        answer = reader.read()  # all of it: the server closes
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 417 Expectation Failed\r\n")
    assert b"\r\nConnection: close" in head
    assert body == b"refused"
    request = expecting.wait_request()
    assert (request.path, request.data) == ("/refuse", b"")
    assert request.headers["Expect"] == "100-continue"
    assert expecting.exchanges[0].status == 417


def test_withhold_sends_no_100(expecting: TestServer) -> None:
    with _socket(expecting) as (sock, reader):
        sock.sendall(_head("/withhold"))
        sock.sendall(BODY)  # the client decides to send anyway
        # the first line after the body is the final answer: no 100 came before it
        assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
    request = expecting.wait_request()
    assert request.data == BODY
    assert request.headers["Expect"] == "100-continue"  # recorded as sent


def test_without_an_expectation_the_rule_answers_as_usual(expecting: TestServer) -> None:
    response = httpx.post(expecting.get_url("/refuse"), content=b"abc", timeout=10)
    assert (response.status_code, response.content) == (417, b"refused")
    assert expecting.wait_request().data == b"abc"  # read: nothing asked to skip it


def _aiohttp(url: str) -> Any:
    async def main() -> tuple[int, bytes]:
        timeout = aiohttp.ClientTimeout(total=1)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, data=BODY, expect100=True) as response,
        ):
            return response.status, await response.read()

    try:
        return asyncio.run(main())
    except TimeoutError:
        return "timeout"


def _pycurl(url: str) -> Any:
    curl = pycurl.Curl()
    out = io.BytesIO()
    try:
        curl.setopt(curl.URL, url)
        curl.setopt(curl.POSTFIELDS, BODY)
        curl.setopt(curl.HTTPHEADER, ["Expect: 100-continue"])
        curl.setopt(curl.WRITEDATA, out)
        curl.setopt(curl.TIMEOUT, 10)
        curl.perform()
        return curl.getinfo(curl.RESPONSE_CODE), out.getvalue()
    finally:
        curl.close()


def _curl(url: str) -> Any:
    done = subprocess.run(
        [
            "curl",
            "-s",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            "@-",
            "-w",
            "%{http_code}",
            url,
        ],
        input=BODY,
        capture_output=True,
        timeout=20,
        check=True,
    )
    return int(done.stdout[-3:]), done.stdout[:-3]


def _httpx(url: str) -> Any:
    response = httpx.post(url, content=BODY, headers={"Expect": "100-continue"}, timeout=10)
    return response.status_code, response.content


CLIENTS = {"aiohttp": _aiohttp, "pycurl": _pycurl, "curl": _curl, "httpx": _httpx}

#: What each client does, asserted here and shown in docs/streaming.rst.
OUTCOMES = {
    ("aiohttp", "continue"): (200, b"continued"),
    ("aiohttp", "refuse"): (417, b"refused"),
    ("aiohttp", "withhold"): "timeout",  # waits for the 100 and never sends the body
    ("pycurl", "continue"): (200, b"continued"),
    ("pycurl", "refuse"): (417, b"refused"),
    ("pycurl", "withhold"): (200, b"withheld"),  # sends the body after its wait (1 s)
    ("curl", "continue"): (200, b"continued"),
    ("curl", "refuse"): (417, b"refused"),
    ("curl", "withhold"): (200, b"withheld"),
    ("httpx", "continue"): (200, b"continued"),  # sends the body at once, 100 or not
    ("httpx", "refuse"): (417, b"refused"),
    ("httpx", "withhold"): (200, b"withheld"),
}


@pytest.mark.parametrize("way", ["continue", "refuse", "withhold"])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_what_clients_do(expecting: TestServer, client: str, way: str) -> None:
    assert CLIENTS[client](expecting.get_url(f"/{way}")) == OUTCOMES[client, way]
    if OUTCOMES[client, way] != "timeout":
        request = expecting.wait_request()
        assert request.data == (b"" if way == "refuse" else BODY)


def test_expect_is_checked() -> None:
    with pytest.raises(ValueError, match="expect 'sometimes'; expected None or 'continue'"):
        Response(expect="sometimes")
    with pytest.raises(ValueError, match=r"expect=.refuse. answers before the body .* callback"):
        Response(expect="refuse", callback=print)
    with pytest.raises(ValueError, match="cannot have hold"):
        Response(expect="refuse", hold=True)


class _socket:
    def __init__(self, server: TestServer) -> None:
        import socket

        self.sock = socket.create_connection((server.address, server.port), timeout=10)
        self.reader = self.sock.makefile("rb")

    def __enter__(self) -> tuple[Any, Any]:
        return self.sock, self.reader

    def __exit__(self, *exc: object) -> None:
        self.reader.close()
        self.sock.close()


def test_the_docs_table_says_what_the_outcomes_are() -> None:
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "streaming.rst").read_text()
    section = page.split("\nExpect: 100-continue\n")[1].split("\nCompressed bodies\n")[0]
    means = {
        "waits, then sends": "sent",
        "sends at once": "sent",
        "sends after its wait (1 s)": "sent",
        "gets the 417": "refused",
        "waits for the 100 forever": "timeout",
    }
    table = {}
    for line in section.splitlines():
        name = line[:10].strip()
        if name in CLIENTS:
            cells = [line[12:32].strip(), line[34:54].strip(), line[56:].strip()]
            for way, cell in zip(("continue", "refuse", "withhold"), cells, strict=True):
                table[name, way] = means[cell]
    expected = {
        key: "timeout" if out == "timeout" else "refused" if out[0] == 417 else "sent"
        for key, out in OUTCOMES.items()
    }
    assert table == expected


def test_the_expectation_is_case_insensitive_and_ignored_from_http_1_0(
    expecting: TestServer,
) -> None:
    with _socket(expecting) as (sock, reader):
        sock.sendall(_head("/continue").replace(b"100-continue", b"100-Continue"))
        assert reader.readline() == b"HTTP/1.1 100 (Continue)\r\n"
        assert reader.readline() == b"\r\n"
        sock.sendall(BODY)
        assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
    with _socket(expecting) as (sock, reader):
        sock.sendall(_head("/refuse").replace(b"HTTP/1.1", b"HTTP/1.0") + BODY)
        # no 100 to a 1.0 client, and the rule's refusal does not apply: the body is read
        assert reader.readline() == b"HTTP/1.1 417 Expectation Failed\r\n"
    assert expecting.history[-1].data == BODY
