"""Reading a request head as received: its header lines, in arrival order.

Tornado keeps a request's headers grouped by name (``X-Rep: one``,
``X-Other: o``, ``X-Rep: two`` comes back as one, two, o), and normalises
their names.  The host keeps each request's head exactly as the stream read
it (`tserver._host`), and this module reads its header lines in order.  It
is no second HTTP parser: Tornado has accepted the head before this runs,
so the lines are known to be well formed; this only splits them.

Stdlib only.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["absolute_target", "header_lines", "normalize_name"]

_WHITESPACE = " \t"
#: A URI scheme (RFC 3986 §3.1): ``http``, ``https``, ``ftp``, ``ws``...
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


@lru_cache(512)
def normalize_name(name: str) -> str:
    """A header name in the case Tornado gives received names: ``Content-Type``."""
    return "-".join([word.capitalize() for word in name.split("-")])


def header_lines(head: bytes) -> tuple[tuple[str, str], ...]:
    r"""Each header field of *head* as ``(name as sent, value)``, in arrival order.

    *head* is the request line and the header lines through the blank line.
    Bytes are read as Latin-1 (as Tornado reads them), values are stripped
    of surrounding whitespace, and a folded line (obs-fold, which older
    Tornado versions accept) continues the value before it, joined by one
    space.

    Example::

        >>> head = b"GET / HTTP/1.1\r\nX-Rep: one\r\nx-other:  o \r\nX-Rep: two\r\n\r\n"
        >>> header_lines(head)
        (('X-Rep', 'one'), ('x-other', 'o'), ('X-Rep', 'two'))
    """
    text = head.decode("latin-1").lstrip("\r\n")
    lines = text.split("\n")
    fields: list[list[str]] = []
    for raw in lines[1:]:
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line:
            continue
        if line[0] in _WHITESPACE:
            if fields:
                fields[-1][1] += " " + line.strip(_WHITESPACE)
            continue
        name, _, value = line.partition(":")
        fields.append([name, value.strip(_WHITESPACE)])
    return tuple((name, value) for name, value in fields)


def absolute_target(target: str) -> tuple[str, str] | None:
    """The authority and origin-form target of an absolute-form request target.

    ``"http://api.example.test/v1?x=1"`` gives ``("api.example.test",
    "/v1?x=1")``; a target without a path gives the path ``"/"``.  Any
    scheme counts (a client may ask a proxy for ``ftp://``).  Any other
    target (``"/v1"``, ``"*"``, ``"host:443"``) gives `None`.

    Example::

        >>> absolute_target("http://api.example.test:8080/v1?x=1")
        ('api.example.test:8080', '/v1?x=1')
        >>> absolute_target("HTTPS://h?q"), absolute_target("/v1")
        (('h', '/?q'), None)
    """
    if target.startswith("/"):
        return None
    scheme, sep, rest = target.partition("://")
    if not sep or _SCHEME.fullmatch(scheme) is None:
        return None
    end = len(rest)
    for mark in "/?#":
        at = rest.find(mark)
        if at != -1 and at < end:
            end = at
    authority, tail = rest[:end], rest[end:]
    if not tail.startswith("/"):
        tail = "/" + tail
    return authority, tail
