"""What tserver records below and beside the request: connections, TLS, exchanges.

`Connection` is one accepted TCP connection, `TLSInfo` what its TLS
handshake settled, `Exchange` one request with what answered it.  Like
`Request` they are frozen, picklable values of the standard library only:
they cross the process boundary of subprocess mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ._frozen import Frozen, assign, frozen_value

if TYPE_CHECKING:
    from ._request import Request

__all__ = ["Connection", "Exchange", "TLSInfo"]


@frozen_value()
class TLSInfo(Frozen):
    """What the TLS handshake of an HTTPS connection settled.

    .. attribute:: version

       The protocol version, ``"TLSv1.3"`` or ``"TLSv1.2"``.

    .. attribute:: cipher

       The name of the cipher suite (``"TLS_AES_256_GCM_SHA384"``).

    .. attribute:: alpn

       The protocol chosen by ALPN (``"http/1.1"``), or `None` when the
       client offered none.

    .. attribute:: sni

       The server name the client sent (``"localhost"``), or `None`: a
       client connecting to an IP address sends none.

    .. attribute:: client_cert

       The client's certificate as `ssl.SSLSocket.getpeercert` gives it (a
       dict with ``subject``, ``issuer``, ``notAfter``...), or `None` when
       the client sent none (see ``client_cert=`` of `TestServer`).

    Example::

        >>> info = TLSInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", "http/1.1", "localhost")
        >>> info.version, info.alpn, info.sni, info.client_cert
        ('TLSv1.3', 'http/1.1', 'localhost', None)
    """

    version: str | None
    cipher: str | None
    alpn: str | None = None
    sni: str | None = None
    client_cert: dict[str, Any] | None = None

    __hash__: ClassVar[None] = None  # type: ignore[assignment]  # client_cert is a dict

    def __init__(
        self,
        version: str | None,
        cipher: str | None,
        alpn: str | None = None,
        sni: str | None = None,
        client_cert: dict[str, Any] | None = None,
    ) -> None:
        assign(self, version=version, cipher=cipher, alpn=alpn, sni=sni, client_cert=client_cert)


@frozen_value()
class Connection(Frozen):
    """One accepted TCP connection, from its accept to its close.

    .. attribute:: index

       ``0`` for the first connection since `TestServer.start` or
       `TestServer.reset`, counting up (a connection still open at a reset
       is numbered anew after it, oldest first).

    .. attribute:: client_ip

       The peer address (``"127.0.0.1"``).

    .. attribute:: client_port

       The peer port.

    .. attribute:: opened_at

       `time.time` when the connection was accepted.

    .. attribute:: closed_at

       `time.time` when it closed, or `None` while it is open.

    .. attribute:: requests

       How many requests it carried.

    .. attribute:: tls

       Its `TLSInfo` (HTTPS), or `None`.

    .. attribute:: protocol

       ``"HTTP/1.1"`` or ``"HTTP/1.0"`` (that of its last request;
       ``"HTTP/1.1"`` before any), or ``"HTTP/2"``.

    .. attribute:: error

       Why it ended without carrying HTTP, or `None`: a TLS handshake that
       failed says so here (``"TLS handshake failed: ..."``), and so does an
       HTTP/2 client that broke the protocol (``"HTTP/2 protocol error:
       ..."``, the connection then ended with ``GOAWAY``), quietly, instead
       of a log line.
    """

    index: int
    client_ip: str
    client_port: int
    opened_at: float
    closed_at: float | None = None
    requests: int = 0
    tls: TLSInfo | None = None
    protocol: str = "HTTP/1.1"
    error: str | None = None

    __hash__: ClassVar[None] = None  # type: ignore[assignment]  # tls holds a dict

    def __init__(
        self,
        index: int,
        client_ip: str,
        client_port: int,
        opened_at: float,
        closed_at: float | None = None,
        requests: int = 0,
        tls: TLSInfo | None = None,
        protocol: str = "HTTP/1.1",
        error: str | None = None,
    ) -> None:
        assign(
            self,
            index=index,
            client_ip=client_ip,
            client_port=client_port,
            opened_at=opened_at,
            closed_at=closed_at,
            requests=requests,
            tls=tls,
            protocol=protocol,
            error=error,
        )

    def __repr__(self) -> str:
        state = "open" if self.closed_at is None else "closed"
        tls = f" {self.tls.version}" if self.tls is not None else ""
        error = f" error={self.error!r}" if self.error else ""
        return (
            f"Connection(#{self.index} {self.client_ip}:{self.client_port} {self.protocol}{tls}, "
            f"{self.requests} request(s), {state}{error})"
        )


@frozen_value()
class Exchange(Frozen):
    """One request and what answered it (aligned with `TestServer.history`).

    .. attribute:: request

       The `Request`.

    .. attribute:: rule

       The id of the rule that answered (what `TestServer.add_response`
       returned), or `None` for the default response and a once-override.

    .. attribute:: status

       The status code of the status line sent, or `None` when none was
       (a fault, a held response not yet released).  Set before any byte of
       the response is written.

    .. attribute:: completed

       Whether the response was written whole: set once its last byte was
       handed to the socket, which can be a moment after the client read it.
    """

    request: Request
    rule: int | None = None
    status: int | None = None
    completed: bool = False

    __hash__: ClassVar[None] = None  # type: ignore[assignment]  # a Request is unhashable

    def __init__(
        self,
        request: Request,
        rule: int | None = None,
        status: int | None = None,
        completed: bool = False,
    ) -> None:
        assign(self, request=request, rule=rule, status=status, completed=completed)
