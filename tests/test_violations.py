"""Named protocol violations (SPEC §11): the bytes on the wire, in every mode and over TLS."""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from tserver import VIOLATIONS, Response, TestServer
from tserver._violations import render

BODY = b"hello, client"


def _fetch(server: TestServer, name: str, *, tls: ssl.SSLContext | None = None) -> bytes:
    """Ask for the violation *name* on a raw socket; every byte until the server closes."""
    method = "HEAD" if name == "body-on-head" else "GET"
    head = f"{method} /{name} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    if name == "response-before-request-body":  # an upload, of which only a part is sent
        head = f"POST /{name} HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n".encode()
        head += b"u" * 1000
    raw = socket.create_connection((server.address, server.port), timeout=10)
    sock = raw if tls is None else tls.wrap_socket(raw, server_hostname="127.0.0.1")
    with sock:
        sock.sendall(head)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass  # the violations that close on purpose may reset; what came is the answer
    return data


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """The head's lines (without their line ends) and the rest."""
    end = b"\n\n" if b"\r\n" not in data.split(b"\n", 1)[0] + b"\n" else b"\r\n\r\n"
    head, _, rest = data.partition(end)
    sep = b"\n" if end == b"\n\n" else b"\r\n"
    return head.split(sep), rest


def _values(lines: list[bytes], name: bytes) -> list[bytes]:
    return [
        line.split(b":", 1)[1].strip() for line in lines if line.lower().startswith(name + b":")
    ]


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


CHECKS: dict[str, Callable[[list[bytes], bytes], None]] = {}


def check(name: str) -> Callable[[Callable[[list[bytes], bytes], None]], None]:
    def register(function: Callable[[list[bytes], bytes], None]) -> None:
        CHECKS[name] = function

    return register


@check("content-length-too-long")
def _(lines: list[bytes], rest: bytes) -> None:
    assert _values(lines, b"content-length") == [b"%d" % (len(BODY) + 10)]
    assert rest == BODY  # then the close


@check("content-length-too-short")
def _(lines: list[bytes], rest: bytes) -> None:
    assert _values(lines, b"content-length") == [b"%d" % len(BODY)]
    assert rest.startswith(BODY)
    assert len(rest) > len(BODY)


@check("content-length-twice")
def _(lines: list[bytes], rest: bytes) -> None:
    lengths = _values(lines, b"content-length")
    assert len(lengths) == 2
    assert lengths[0] != lengths[1]


@check("content-length-and-chunked")
def _(lines: list[bytes], rest: bytes) -> None:
    assert _values(lines, b"content-length")
    assert _values(lines, b"transfer-encoding") == [b"chunked"]
    assert rest == _chunk(BODY) + b"0\r\n\r\n"


@check("content-length-negative")
def _(lines: list[bytes], rest: bytes) -> None:
    assert _values(lines, b"content-length") == [b"-1"]


@check("chunk-size-invalid")
def _(lines: list[bytes], rest: bytes) -> None:
    assert _values(lines, b"transfer-encoding") == [b"chunked"]
    size = rest.split(b"\r\n", 1)[0]
    assert not re.fullmatch(rb"[0-9a-fA-F]+", size)


@check("chunk-size-too-long")
def _(lines: list[bytes], rest: bytes) -> None:
    size, _, data = rest.partition(b"\r\n")
    assert int(size, 16) > len(data.removesuffix(b"\r\n"))
    assert not rest.endswith(b"0\r\n\r\n")


@check("chunk-missing-last")
def _(lines: list[bytes], rest: bytes) -> None:
    assert _values(lines, b"transfer-encoding") == [b"chunked"]
    assert rest == _chunk(BODY)  # and no last chunk before the close


@check("chunk-extension-garbage")
def _(lines: list[bytes], rest: bytes) -> None:
    size_line = rest.split(b"\r\n", 1)[0]
    size, _, extension = size_line.partition(b";")
    assert int(size, 16) == len(BODY)
    assert not re.fullmatch(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+(=.*)?", extension)


@check("status-line-invalid")
def _(lines: list[bytes], rest: bytes) -> None:
    assert not re.fullmatch(rb"HTTP/\d\.\d \d{3} .*", lines[0])
    assert lines[0].startswith(b"HTTP/1.1200")


@check("status-code-invalid")
def _(lines: list[bytes], rest: bytes) -> None:
    code = int(lines[0].split(b" ")[1])
    assert not 100 <= code <= 999


@check("http-version-invalid")
def _(lines: list[bytes], rest: bytes) -> None:
    assert not re.match(rb"HTTP/\d\.\d ", lines[0])


@check("header-without-colon")
def _(lines: list[bytes], rest: bytes) -> None:
    assert any(b":" not in line for line in lines[1:])


@check("header-obs-fold")
def _(lines: list[bytes], rest: bytes) -> None:
    assert any(line[:1] in (b" ", b"\t") for line in lines[1:])


@check("header-nul-byte")
def _(lines: list[bytes], rest: bytes) -> None:
    assert any(b"\x00" in line for line in lines[1:])


@check("header-bare-cr")
def _(lines: list[bytes], rest: bytes) -> None:
    assert any(b"\r" in line for line in lines[1:])  # a CR that does not end the line


@check("line-endings-bare-lf")
def _(lines: list[bytes], rest: bytes) -> None:
    assert len(lines) > 2
    assert not any(b"\r" in line for line in lines)
    assert rest == BODY


@check("header-space-before-colon")
def _(lines: list[bytes], rest: bytes) -> None:
    assert any(re.match(rb"[^:\s]+[ \t]+:", line) for line in lines[1:])


@check("body-on-head")
def _(lines: list[bytes], rest: bytes) -> None:
    assert rest == BODY  # to a HEAD request


@check("body-on-204")
def _(lines: list[bytes], rest: bytes) -> None:
    assert lines[0].startswith(b"HTTP/1.1 204 ")
    assert rest == BODY


@check("body-on-304")
def _(lines: list[bytes], rest: bytes) -> None:
    assert lines[0].startswith(b"HTTP/1.1 304 ")
    assert rest == BODY


@check("informational-with-body")
def _(lines: list[bytes], rest: bytes) -> None:
    assert lines[0].startswith(b"HTTP/1.1 103 ")
    length = int(_values(lines, b"content-length")[0])
    assert length > 0
    final, after = rest[:length], rest[length:]
    assert final
    assert after.startswith(b"HTTP/1.1 200 OK\r\n")
    assert after.endswith(b"\r\n\r\n" + BODY)


@check("response-before-request-body")
def _(lines: list[bytes], rest: bytes) -> None:
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert rest == BODY  # answered after 1,000 of 100,000 bytes


@check("transfer-encoding-unknown")
def _(lines: list[bytes], rest: bytes) -> None:
    assert _values(lines, b"transfer-encoding") == [b"x-unknown"]
    assert not _values(lines, b"content-length")
    assert rest == BODY  # ended by the close


def test_every_violation_has_a_wire_check() -> None:
    assert set(CHECKS) == set(VIOLATIONS)


def _serve_all(server: TestServer) -> None:
    for name in VIOLATIONS:
        server.add_response(Response(BODY, violation=name), path=f"/{name}")


def test_each_violation_on_the_wire(server: TestServer) -> None:
    _serve_all(server)
    for name, verify in CHECKS.items():
        lines, rest = _split(_fetch(server, name))
        verify(lines, rest)
    request = server.history[list(VIOLATIONS).index("response-before-request-body")]
    assert (request.method, request.data) == ("POST", b"")  # its body was never read
    assert [e.status for e in server.exchanges][:2] == [200, 200]
    server.check()


def test_each_violation_over_tls(mode: str) -> None:
    with TestServer(mode=mode, ssl=True) as srv:
        _serve_all(srv)
        context = ssl.create_default_context(cafile=srv.ca_path)
        for name, verify in CHECKS.items():
            lines, rest = _split(_fetch(srv, name, tls=context))
            verify(lines, rest)


def test_a_violation_keeps_the_rest_of_the_response(server: TestServer) -> None:
    server.add_response(
        Response(
            json={"a": 1},
            status=201,
            reason="Made",
            headers={"X-Kept": "yes"},
            cookies={"c": "1"},
            violation="content-length-too-long",
        ),
        path="/content-length-too-long",
    )
    lines, rest = _split(_fetch(server, "content-length-too-long"))
    assert lines[0] == b"HTTP/1.1 201 Made"
    assert b"X-Kept: yes" in lines
    assert b"Set-Cookie: c=1" in lines
    assert b"Content-Type: application/json" in lines
    assert rest == b'{"a": 1}'


def test_violations_are_named_and_described() -> None:
    assert len(VIOLATIONS) >= 24
    for name, description in VIOLATIONS.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", name)
        assert re.search(r"RFC 911[02] §\d", description), name
        assert "\n" not in description
    with pytest.raises(ValueError, match="violation 'nope'; expected one of 'content-length-"):
        Response(violation="nope")
    with pytest.raises(ValueError, match="cannot have fault"):
        Response(violation="header-nul-byte", fault="close")
    with pytest.raises(ValueError, match="cannot have chunks"):
        Response(violation="header-nul-byte", chunks=[b"x"])


DOCS = Path(__file__).parents[1] / "docs"


def test_the_page_lists_every_violation_as_described() -> None:
    assert ".. include:: violations_catalogue.rst" in (DOCS / "violations.rst").read_text()
    catalogue = (DOCS / "violations_catalogue.rst").read_text()
    rows = re.findall(r"   \* - ``([a-z0-9-]+)``\n     - (.*)\n\n       ``(.*)``", catalogue)
    assert {name: text.replace("\\*", "*") for name, text, _ in rows} == VIOLATIONS
    sample = (200, None, [("Content-Type", "text/plain")], b"hello")
    assert {name: wire for name, _, wire in rows} == {
        name: repr(render(name, *sample)) for name in VIOLATIONS
    }


def test_the_client_table_has_every_violation_and_every_client() -> None:
    text = (DOCS / "violations_table.rst").read_text()
    rows = text.split("   * - ")[1:]
    header, body = rows[0], rows[1:]
    clients = [cell.strip() for cell in header.split("     - ")]
    assert clients == [
        "violation",
        "requests",
        "httpx",
        "aiohttp",
        "urllib3",
        "urllib",
        "pycurl",
        "tornado",
    ]
    names = []
    for row in body:
        cells = [cell.strip() for cell in row.split("     - ")]
        assert len(cells) == len(clients), row
        names.append(cells[0].strip("`"))
        for cell in cells[1:]:
            assert re.match(
                r"\**(raises |hangs|accepts silently|wrong body silently|varies: )", cell
            )
    assert names == list(VIOLATIONS)


def test_no_content_stays_without_content(server: TestServer) -> None:
    server.add_response(Response(BODY, violation="header-space-before-colon"), path="/")
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    lines, rest = _split(data)
    assert _values(lines, b"content-length") == [b"%d" % len(BODY)]
    assert rest == b""  # the violation is the header, not a body on a HEAD
    server.add_response(Response(status=204, violation="header-nul-byte"), path="/204")
    lines, rest = _split(_fetch(server, "204"))
    assert lines[0].startswith(b"HTTP/1.1 204 ")
    assert not _values(lines, b"content-length")
    assert rest == b""


def test_response_before_request_body_has_nothing_to_wait_for() -> None:
    for extra in ({"callback": print}, {"sleep": 1.0}, {"hold": True}):
        with pytest.raises(ValueError, match="cannot have"):
            Response(violation="response-before-request-body", **extra)  # type: ignore[arg-type]
