"""Run every named protocol violation against seven HTTP clients; write the table of outcomes.

Usage, from the repository root with the test extras installed::

    .venv/bin/python docs/violations_table.py

It serves each name of `tserver.VIOLATIONS` from one `TestServer` (thread
mode, loopback) and asks for it with requests, httpx, aiohttp, urllib3,
urllib, pycurl and Tornado's ``AsyncHTTPClient``, each with a 3 s timeout.
Each cell says what the client did:

- ``raises X``: it raised the exception class ``X`` (for pycurl, the
  libcurl error it reported);
- ``hangs``: nothing came back before the timeout;
- ``accepts silently``: it returned the status and body that the server
  meant, as if nothing were wrong;
- ``wrong body silently: ...``: it returned something else, with no error.

The last two are the interesting cells: the client took a broken message
without a word.

The result is written to ``docs/violations_table.rst``, and the catalogue
(each violation, its description and the bytes it sends for a small
response) to ``docs/violations_catalogue.rst``; the page "Protocol
violations" includes both, and ``tests/test_violations.py`` checks that they
have a row for every violation and a column for every client.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp
import httpx
import pycurl
import requests
import urllib3
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from tserver import VIOLATIONS, Response, TestServer, __version__
from tserver._violations import render

TIMEOUT = 3.0
#: Runs of each client against each violation: an outcome that races shows as ``varies``.
RUNS = 5
BODY = b"hello, client"
UPLOAD = b"u" * (1 << 20)  # for response-before-request-body: more than any buffer takes
OUT = Path(__file__).with_name("violations_table.rst")
CATALOGUE = Path(__file__).with_name("violations_catalogue.rst")
#: The small response the catalogue shows each violation of.
SAMPLE = (200, None, [("Content-Type", "text/plain")], b"hello")

Fetch = Callable[[str, str, bytes | None], tuple[int, bytes]]


def _requests(url: str, method: str, body: bytes | None) -> tuple[int, bytes]:
    with requests.Session() as session:
        session.trust_env = False
        response = session.request(method, url, data=body, timeout=TIMEOUT)
        return response.status_code, response.content


def _httpx(url: str, method: str, body: bytes | None) -> tuple[int, bytes]:
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        response = client.request(method, url, content=body)
        return response.status_code, response.content


def _aiohttp(url: str, method: str, body: bytes | None) -> tuple[int, bytes]:
    async def main() -> tuple[int, bytes]:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, url, data=body) as response,
        ):
            return response.status, await response.read()

    return asyncio.run(main())


def _urllib3(url: str, method: str, body: bytes | None) -> tuple[int, bytes]:
    with urllib3.PoolManager() as pool:
        response = pool.request(method, url, body=body, timeout=TIMEOUT, retries=False)
        return response.status, response.data


def _urllib(url: str, method: str, body: bytes | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:  # a status it calls an error is still an answer
        return exc.code, exc.read()


def _pycurl(url: str, method: str, body: bytes | None) -> tuple[int, bytes]:
    curl = pycurl.Curl()
    out = io.BytesIO()
    try:
        curl.setopt(curl.URL, url)
        curl.setopt(curl.WRITEDATA, out)
        curl.setopt(curl.TIMEOUT_MS, int(TIMEOUT * 1000))
        curl.setopt(curl.NOPROXY, "*")
        if method == "HEAD":
            curl.setopt(curl.NOBODY, True)
        elif body is not None:
            curl.setopt(curl.POSTFIELDS, body)
        curl.perform()
        return curl.getinfo(curl.RESPONSE_CODE), out.getvalue()
    finally:
        curl.close()


def _tornado(url: str, method: str, body: bytes | None) -> tuple[int, bytes]:
    async def main() -> tuple[int, bytes]:
        client = AsyncHTTPClient(force_instance=True)
        try:
            response = await client.fetch(
                url, method=method, body=body, raise_error=False, request_timeout=TIMEOUT
            )
        finally:
            client.close()
        if response.error is not None and not isinstance(response.error, HTTPClientError):
            raise response.error
        return response.code, response.body or b""

    return asyncio.run(main())


CLIENTS: dict[str, Fetch] = {
    "requests": _requests,
    "httpx": _httpx,
    "aiohttp": _aiohttp,
    "urllib3": _urllib3,
    "urllib": _urllib,
    "pycurl": _pycurl,
    "tornado": _tornado,
}

#: What a correct server would have meant: the status and body a client should return.
MEANT: dict[str, tuple[int, bytes]] = {
    "body-on-head": (200, b""),
    "body-on-204": (204, b""),
    "body-on-304": (304, b""),
}

#: libcurl's error names by number (``E_PARTIAL_FILE`` for 18...).
_CURL_ERRORS = {
    getattr(pycurl, name): name
    for name in sorted(dir(pycurl), key=lambda n: n.startswith(("E_FTP_", "E_MULTI_", "E_SHARE_")))[
        ::-1
    ]
    if name.startswith("E_") and isinstance(getattr(pycurl, name), int)
}
_CURL_ERRORS[8] = "E_WEIRD_SERVER_REPLY"  # libcurl's name since 7.51; pycurl keeps the FTP one

_TIMEOUTS = (
    TimeoutError,
    socket.timeout,
    requests.Timeout,
    httpx.TimeoutException,
    asyncio.TimeoutError,
    urllib3.exceptions.TimeoutError,
)


def outcome(fetch: Fetch, url: str, name: str) -> str:
    """What one client did with one violation, as a table cell."""
    method, body = "GET", None
    if name == "body-on-head":
        method = "HEAD"
    elif name == "response-before-request-body":
        method, body = "POST", UPLOAD
    try:
        status, got = fetch(url, method, body)
    except _TIMEOUTS:
        return "hangs"
    except pycurl.error as exc:
        code = exc.args[0] if exc.args else None
        if code == pycurl.E_OPERATION_TIMEDOUT:
            return "hangs"
        return f"raises pycurl.error {_CURL_ERRORS.get(code, code)}"
    except Exception as exc:
        return f"raises {type(exc).__name__}"
    meant = MEANT.get(name, (200, BODY))
    if (status, got) == meant:
        return "accepts silently"
    return f"wrong body silently: {status}, {_describe(got, meant[1])}"


def _cell(fetch: Fetch, url: str, name: str) -> str:
    """The outcome of `RUNS` runs; ``varies: A / B`` when they differ (a race)."""
    seen: list[str] = []
    for _ in range(RUNS):
        found = outcome(fetch, url, name)
        if found not in seen:
            seen.append(found)
    return seen[0] if len(seen) == 1 else "varies: " + " / ".join(sorted(seen))


def _describe(got: bytes, meant: bytes) -> str:
    if not got:
        return "no body"
    if got.startswith(meant) and len(got) > len(meant):
        return f"{len(got) - len(meant)} bytes too many"
    if meant.startswith(got):
        return f"{len(meant) - len(got)} bytes short"
    return f"{len(got)} other bytes"


def table(results: dict[str, dict[str, str]]) -> str:
    """The rst list-table of *results* (violation -> client -> cell)."""
    lines = [
        ".. This file is generated by docs/violations_table.py; do not edit it.",
        f".. tserver {__version__}, Python {sys.version.split()[0]}.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :stub-columns: 1",
        "",
        "   * - violation",
        *(f"     - {client}" for client in CLIENTS),
    ]
    for name, row in results.items():
        lines.append(f"   * - ``{name}``")
        for client in CLIENTS:
            cell = row[client]
            lines.append(f"     - **{cell}**" if "silently" in cell else f"     - {cell}")
    return "\n".join(lines) + "\n"


def catalogue() -> str:
    """The rst list-table of every violation: its description and its bytes."""
    lines = [
        ".. This file is generated by docs/violations_table.py; do not edit it.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 25 75",
        "",
        "   * - name",
        "     - what it breaks, and what it sends for a 200 with the body ``hello``",
    ]
    for name, description in VIOLATIONS.items():
        wire = render(name, *SAMPLE)
        lines += [
            f"   * - ``{name}``",
            f"     - {description.replace('*', chr(92) + '*')}",
            "",
            f"       ``{wire!r}``",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Serve every violation, run every client against it, write the table."""
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    results: dict[str, dict[str, str]] = {}
    with TestServer() as srv:
        for name in VIOLATIONS:
            srv.add_response(Response(BODY, violation=name), path=f"/{name}", count=None)
        for name in VIOLATIONS:
            url = srv.get_url(f"/{name}")
            results[name] = {client: _cell(fetch, url, name) for client, fetch in CLIENTS.items()}
            print(f"{name:30} " + " | ".join(results[name].values()), flush=True)
    OUT.write_text(table(results))
    CATALOGUE.write_text(catalogue())
    print(f"wrote {OUT} and {CATALOGUE}")


if __name__ == "__main__":
    main()
