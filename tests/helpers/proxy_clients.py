"""One request through a proxy with any real HTTP client: the proxy dispatch of the suite.

`via_proxy` sends one ``GET`` to *url* through the proxy at *proxy* with the
client named, verification on (the CA file *ca*), and returns the status
and body.  With *auth* the client presents ``(user, password)`` to the
proxy in its own way (credentials in the proxy URL, ``proxy_auth=``,
``PROXYUSERPWD``...).  Nothing here turns verification off.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit

import aiohttp
import httpx
import pycurl
import requests
import urllib3

CURL = shutil.which("curl")

#: Every client `via_proxy` drives.
PROXY_CLIENTS = (
    "requests",
    "requests-env",
    "httpx",
    "urllib3",
    "aiohttp",
    "pycurl",
    "curl",
    "urllib",
)

#: The variables that name proxies, in either case: cleared around each request.
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


def with_credentials(proxy: str, auth: tuple[str, str] | None) -> str:
    """*proxy* with ``user:password@`` in it (quoted), or as it is."""
    if auth is None:
        return proxy
    parts = urlsplit(proxy)
    user, password = (quote(part, safe="") for part in auth)
    return f"{parts.scheme}://{user}:{password}@{parts.netloc}"


@contextmanager
def proxy_environment(**variables: str) -> Iterator[None]:
    """The proxy variables set to *variables* (lower and upper case), restored after."""
    names = [n for v in _PROXY_VARIABLES for n in (v, v.upper())]
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    for name, value in variables.items():
        os.environ[name.lower()] = value
        os.environ[name.upper()] = value
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def via_proxy(
    client: str,
    url: str,
    proxy: str,
    *,
    ca: str | None = None,
    auth: tuple[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """``GET`` *url* through *proxy* with *client*; its status and body."""
    context = ssl.create_default_context(cafile=ca) if ca else None
    if client == "requests":
        proxied = with_credentials(proxy, auth)
        with requests.Session() as session:
            session.trust_env = False
            reply = session.get(
                url, proxies={"http": proxied, "https": proxied}, verify=ca or True, timeout=timeout
            )
            return reply.status_code, reply.content
    if client == "requests-env":
        proxied = with_credentials(proxy, auth)
        with proxy_environment(http_proxy=proxied, https_proxy=proxied), requests.Session() as s:
            reply = s.get(url, verify=ca or True, timeout=timeout)
            return reply.status_code, reply.content
    if client == "httpx":
        with httpx.Client(
            proxy=with_credentials(proxy, auth),
            verify=context or True,
            trust_env=False,
            timeout=timeout,
        ) as session:
            answer = session.get(url)
            return answer.status_code, answer.content
    if client == "urllib3":
        headers = None if auth is None else urllib3.make_headers(proxy_basic_auth=":".join(auth))
        with urllib3.ProxyManager(
            proxy, proxy_headers=headers, ca_certs=ca, timeout=timeout, retries=False
        ) as manager:
            response = manager.request("GET", url)
            return response.status, response.data
    if client == "aiohttp":
        return asyncio.run(_aiohttp(url, proxy, context, auth, timeout))
    if client == "pycurl":
        return _pycurl(url, proxy, ca, auth, timeout)
    if client == "curl":
        return curl(url, proxy, ca=ca, auth=auth, timeout=timeout)
    if client == "urllib":
        proxied = with_credentials(proxy, auth)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": proxied, "https": proxied}),
            urllib.request.HTTPSHandler(context=context),
        )
        try:
            with opener.open(url, timeout=timeout) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()
    raise ValueError(f"unknown client {client!r}; expected one of {PROXY_CLIENTS}")


async def _aiohttp(
    url: str,
    proxy: str,
    context: ssl.SSLContext | None,
    auth: tuple[str, str] | None,
    timeout: float,
) -> tuple[int, bytes]:
    # proxy_auth= and BasicAuth are deprecated since aiohttp 3.14 (for
    # proxy_headers=), and still what most code that uses aiohttp passes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        proxy_auth = None if auth is None else aiohttp.BasicAuth(*auth)
        async with (
            aiohttp.ClientSession(
                trust_env=False, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as session,
            session.get(url, proxy=proxy, proxy_auth=proxy_auth, ssl=context or True) as reply,
        ):
            return reply.status, await reply.read()


def _pycurl(
    url: str, proxy: str, ca: str | None, auth: tuple[str, str] | None, timeout: float
) -> tuple[int, bytes]:
    body = io.BytesIO()
    handle = pycurl.Curl()
    try:
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.PROXY, proxy)
        handle.setopt(pycurl.NOPROXY, "")
        handle.setopt(pycurl.WRITEDATA, body)
        handle.setopt(pycurl.TIMEOUT_MS, int(timeout * 1000))
        if ca:
            handle.setopt(pycurl.CAINFO, ca)
        if auth is not None:
            handle.setopt(pycurl.PROXYUSERPWD, ":".join(auth))
        handle.perform()
        return int(handle.getinfo(pycurl.RESPONSE_CODE)), body.getvalue()
    finally:
        handle.close()


def curl(
    url: str,
    proxy: str,
    *extra: str,
    ca: str | None = None,
    auth: tuple[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """The ``curl`` command line through *proxy*: status and body (``-w`` appends the status)."""
    assert CURL is not None, "curl is not installed"
    command = [CURL, "-sS", "--noproxy", "", "-x", proxy, "--max-time", str(timeout)]
    if ca:
        command += ["--cacert", ca]
    if auth is not None:
        command += ["--proxy-user", ":".join(auth)]
    command += [*extra, "-w", "\n%{http_code}", url]
    done = subprocess.run(command, capture_output=True, timeout=timeout + 5, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    body, _, status = done.stdout.rpartition(b"\n")
    return int(status), body
