"""One request with any real HTTP client: the one client dispatch of the test suite.

`fetch` sends one request with the client named, reads the whole answer
(4xx and 5xx included) and returns a `Reply`: status, every header in the
order received, body.  Tests choose their clients from `CLIENTS` by
parametrizing; nothing else in the suite switches on a client's name.
"""

from __future__ import annotations

import http.client
import io
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pycurl
import requests
import urllib3

if TYPE_CHECKING:
    from tserver import TestServer

#: Every real client `fetch` drives.
CLIENTS = ("urllib", "requests", "httpx", "http.client", "urllib3", "pycurl")


@dataclass(frozen=True)
class Reply:
    """What a client received: status, every header in order, the body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header *name* (case-insensitive), or `None`."""
        values = self.header_list(name)
        return values[0] if values else None

    def header_list(self, name: str) -> list[str]:
        """Every value of header *name*, in the order received."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


def fetch(
    client: str,
    url: str,
    method: str = "GET",
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    ca: str | None = None,
) -> Reply:
    """Send one request with *client* (never through a proxy); return its `Reply`.

    *ca* is the PEM file of the CA an HTTPS request trusts (`TestServer.ca_path`).
    """
    headers = headers or {}
    context = None if ca is None else ssl.create_default_context(cafile=ca)
    if client == "urllib":
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        try:
            with opener.open(req, timeout=timeout) as resp:
                return Reply(resp.status, list(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as err:
            with err:
                return Reply(err.code, list(err.headers.items()), err.read())
    if client == "requests":
        with requests.Session() as session:
            session.trust_env = False
            verify: str | bool = True if ca is None else ca
            with session.request(
                method, url, data=data, headers=headers, timeout=timeout, verify=verify
            ) as r:
                return Reply(r.status_code, list(r.raw.headers.iteritems()), r.content)
    if client == "httpx":
        with httpx.Client(timeout=timeout, trust_env=False, verify=context or True) as c:
            got = c.request(method, url, content=data, headers=headers)
            return Reply(got.status_code, list(got.headers.multi_items()), got.content)
    if client == "http.client":
        parts = urlsplit(url)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=timeout, context=context
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            conn.request(method, target or "/", body=data, headers=headers)
            resp = conn.getresponse()
            return Reply(resp.status, resp.getheaders(), resp.read())
        finally:
            conn.close()
    if client == "urllib3":
        with urllib3.PoolManager(ssl_context=context) as pool:
            got3 = pool.request(
                method, url, body=data, headers=headers, timeout=timeout, retries=False
            )
            return Reply(got3.status, list(got3.headers.iteritems()), got3.data)
    if client == "pycurl":
        return _pycurl(url, method, data, headers, timeout, ca)
    raise ValueError(f"fetch: unknown client {client!r}; expected one of {CLIENTS}")


def _pycurl(
    url: str,
    method: str,
    data: bytes | None,
    headers: dict[str, str],
    timeout: float,
    ca: str | None,
) -> Reply:
    body = io.BytesIO()
    lines: list[bytes] = []
    curl = pycurl.Curl()
    try:
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.PROXY, "")
        curl.setopt(pycurl.CUSTOMREQUEST, method)
        curl.setopt(pycurl.TIMEOUT_MS, int(timeout * 1000))
        curl.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in headers.items()])
        curl.setopt(pycurl.WRITEDATA, body)
        curl.setopt(pycurl.HEADERFUNCTION, lines.append)
        if data is not None:
            curl.setopt(pycurl.POSTFIELDS, data)
        if ca is not None:
            curl.setopt(pycurl.CAINFO, ca)
        curl.perform()
        status = int(curl.getinfo(pycurl.RESPONSE_CODE))
    finally:
        curl.close()
    pairs = []
    for raw in lines:
        name, sep, value = raw.decode("latin-1").partition(":")
        if sep and not name.startswith("HTTP/"):
            pairs.append((name.strip(), value.strip()))
    return Reply(status, pairs, body.getvalue())


def get(srv: TestServer, path: str = "/", *, timeout: float = 10.0) -> tuple[int, bytes]:
    """``GET`` *path* from *srv* with http.client on a new connection (HTTPS if it serves it)."""
    reply = fetch("http.client", srv.get_url(path), timeout=timeout, ca=srv.ca_path)
    return reply.status, reply.body
