"""Argument checks of the `~tserver.TestServer` facade.

They run in the caller's process, so a `ValueError` or `TypeError` points at
the caller's line, whatever the mode.
"""

from __future__ import annotations

import importlib.util
import math
import pickle
import re
import ssl as _ssl
from collections.abc import Iterable, Iterator
from dataclasses import fields
from typing import Any

from ._request import Request
from ._response import normalize_method

__all__ = [
    "REQUEST_KEYS",
    "check_server_args",
    "check_client_cert",
    "check_count",
    "check_methods",
    "check_path_selector",
    "check_portable",
    "check_timeout",
    "is_matcher",
]

#: The keys of `~tserver.TestServer.get_request`: every field, plus the
#: ``text`` property and the parsed ``json``.
REQUEST_KEYS = (*(f.name for f in fields(Request)), "form", "files", "text", "json")


def is_matcher(obj: object) -> bool:
    """Whether *obj* quacks like a hamcrest matcher."""
    return callable(getattr(obj, "matches", None)) and callable(getattr(obj, "describe_to", None))


def check_count(where: str, count: object, *, allow_none: bool) -> int | None:
    """A positive int (or `None` when allowed)."""
    if count is None and allow_none:
        return None
    if isinstance(count, bool) or not isinstance(count, int):
        forms = "a positive int or None" if allow_none else "a positive int"
        raise TypeError(f"{where}: count {count!r} must be {forms}")
    if count < 1:
        raise ValueError(f"{where}: count must be >= 1, got {count!r}")
    return count


def check_timeout(where: str, timeout: object) -> float:
    """A number of seconds >= 0."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{where}: timeout {timeout!r} must be a number of seconds")
    if timeout < 0 or math.isnan(timeout):
        raise ValueError(f"{where}: timeout must be >= 0 seconds, got {timeout!r}")
    return float(timeout)


def check_methods(where: str, method: object) -> tuple[str, ...] | None:
    """`None`, or a tuple of upper-case method tokens from a name or a list."""
    if method is None:
        return None
    if isinstance(method, str):
        return (normalize_method(where, method),)
    if isinstance(method, Iterable):
        methods = tuple(normalize_method(where, m) for m in method)
        if not methods:
            raise ValueError(f"{where}: method list is empty; give None for any method")
        return methods
    raise TypeError(
        f"{where}: method {method!r} must be a method name such as 'GET' or a list of them"
    )


def check_path_selector(where: str, path: object) -> object:
    """A str (exact path), a compiled pattern or a hamcrest matcher."""
    if isinstance(path, str) and "?" in path:
        raise ValueError(
            f"{where}: path {path!r} holds a query, but paths are matched without "
            "their query; give the path alone and select the query with "
            "match=has_arg(name, value) or match=has_query_string(...)"
        )
    if path is None or isinstance(path, (str, re.Pattern)) or is_matcher(path):
        return path
    raise TypeError(
        f"{where}: path {path!r} must be a str (the exact path), a compiled "
        "re.Pattern (full match) or a hamcrest matcher"
    )


def check_host_selector(where: str, host: object) -> object:
    """A str (the host, any port unless it names one), a compiled pattern or a hamcrest matcher."""
    if host is None or isinstance(host, re.Pattern) or is_matcher(host):
        return host
    if isinstance(host, str):
        if not host or "/" in host:
            raise ValueError(
                f"{where}: host {host!r} must be a host name or address, optionally with "
                "':port' ('api.example.test', 'api.example.test:8443', '[::1]:80'), not a URL"
            )
        return host
    raise TypeError(
        f"{where}: host {host!r} must be a str (compared without case, and without "
        "the port unless it names one), a compiled re.Pattern (full match over "
        "Request.host) or a hamcrest matcher"
    )


def check_portable(where: str, what: str, obj: Any) -> None:
    """Refuse what cannot cross to a subprocess-mode child by pickle."""
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None) or type(obj).__module__
    hint = (
        "subprocess mode runs it in the child process, so it must be picklable "
        "and importable there: use a function or class defined at module level "
        "in an importable module (not a lambda, a closure or a __main__ name)"
    )
    if isinstance(obj, Iterator):
        raise ValueError(
            f"{where}: {what} is an iterator ({name}), which cannot cross to the child "
            "process of subprocess mode; give a list or a tuple, or a callback (defined "
            f"at module level) that returns a Response with fresh {what}: it runs in "
            "the child, where a generator streams lazily"
        )
    if "<lambda>" in name or "<locals>" in name:
        raise ValueError(f"{where}: {what} {name} is a lambda or a closure; {hint}")
    if module == "__main__" or type(obj).__module__ == "__main__":
        raise ValueError(f"{where}: {what} {name} is defined in __main__; {hint}")
    try:
        pickle.dumps(obj)
    except Exception as exc:
        raise ValueError(f"{where}: {what} {name} does not pickle ({exc}); {hint}") from exc


def check_client_cert(client_cert: object, ssl: object, proxy: object = False) -> None:
    """``client_cert=``: `None`, or ``"optional"``/``"required"`` (``ssl=True``, ``proxy=True``)."""
    if client_cert is None:
        return
    if client_cert not in ("optional", "required"):
        raise ValueError(
            f"TestServer: client_cert {client_cert!r}; expected None, 'optional' or 'required'"
        )
    if ssl is not True and proxy is not True:
        raise ValueError(
            f"TestServer: client_cert={client_cert!r} needs ssl=True or proxy=True (the "
            "throwaway CA issues the client certificate); with ssl=<SSLContext>, set its "
            "verify_mode yourself"
        )


def check_bool(name: str, value: object) -> bool:
    """A ``TestServer`` switch that must be True or False."""
    if not isinstance(value, bool):
        raise TypeError(f"TestServer: {name} {value!r} must be True or False")
    return value


def check_proxy(proxy: object, proxy_auth: object) -> tuple[str, str] | None:
    """``proxy=`` a bool; ``proxy_auth=`` `None` or ``(user, password)``, with ``proxy=True``."""
    check_bool("proxy", proxy)
    if proxy_auth is None:
        return None
    if (
        not isinstance(proxy_auth, tuple)
        or len(proxy_auth) != 2
        or not all(isinstance(part, str) for part in proxy_auth)
    ):
        raise TypeError(
            f"TestServer: proxy_auth {proxy_auth!r} must be a (user, password) tuple of str"
        )
    user, password = proxy_auth
    if not user or ":" in user:
        raise ValueError(
            f"TestServer: proxy_auth user {user!r} must be non-empty and hold no ':' "
            "(Basic credentials are 'user:password')"
        )
    if not proxy:
        raise ValueError("TestServer: proxy_auth needs proxy=True")
    return (user, password)


def check_http2(http2: object) -> bool:
    """``http2=`` a bool; `True` needs the ``h2`` package (the ``tserver[http2]`` extra)."""
    wanted = check_bool("http2", http2)
    if wanted and importlib.util.find_spec("h2") is None:
        raise ImportError(
            "TestServer: http2=True needs the 'h2' package: pip install 'tserver[http2]'"
        )
    return wanted


def check_server_args(
    address: object,
    port: object,
    mode: object,
    ssl: object,
    history_limit: object,
    max_body_size: object,
    *,
    modes: tuple[str, ...],
    crosses_process: bool,
) -> None:
    """The constructor arguments of `~tserver.TestServer` (not its timeout)."""
    where = "TestServer"
    if not isinstance(address, str) or not address:
        raise TypeError(f"{where}: address {address!r} must be a str such as '127.0.0.1'")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"{where}: port {port!r} must be an int from 0 (any free port) to 65535")
    if mode not in modes:
        expected = " or ".join(repr(m) for m in modes)
        raise ValueError(f"{where}: mode {mode!r}; expected {expected}")
    if not isinstance(ssl, (bool, _ssl.SSLContext)):
        raise TypeError(f"{where}: ssl {ssl!r} must be True, False or an ssl.SSLContext")
    if isinstance(ssl, _ssl.SSLContext) and ssl.protocol == _ssl.PROTOCOL_TLS_CLIENT:
        raise ValueError(
            f"{where}: ssl= is a client-side SSLContext (ssl.create_default_context() "
            "makes one); a server needs ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER) with "
            "its certificate loaded, or use ssl=True"
        )
    if isinstance(ssl, _ssl.SSLContext) and crosses_process:
        raise ValueError(
            f"{where}: ssl=<SSLContext> cannot cross to the child process of "
            "subprocess mode; use ssl=True (a throwaway CA) or mode='thread'"
        )
    if history_limit is not None:
        check_count(f"{where}: history_limit", history_limit, allow_none=False)
    if isinstance(max_body_size, bool) or not isinstance(max_body_size, int) or max_body_size < 0:
        raise ValueError(f"{where}: max_body_size {max_body_size!r} must be an int >= 0")
