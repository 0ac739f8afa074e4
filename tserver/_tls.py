"""HTTPS for ``ssl=True``: a throwaway CA, and a server certificate that never rests on disk.

`TlsFiles.create` makes a fresh certificate authority with `trustme` (the
``tserver[https]`` extra) and issues a server certificate for
``127.0.0.1``, ``::1`` and ``localhost``.  Only what clients need goes to
disk, into a private temporary directory (`tempfile.mkdtemp`, mode
``0700``, files ``0600``):

- ``ca.pem``: the CA certificate, for a client's ``verify=`` / ``cafile=``.

The server's certificate chain and private key stay in memory
(`TlsFiles.cert_pem`, `TlsFiles.key_pem`): the server's context loads them
through an anonymous in-memory file (``memfd``) where the system has one,
else through a file in the private directory that is removed the moment
it is loaded.  A subprocess-mode child gets them in its start frame over
the private socketpair and loads them the same way.  So a test process
killed with ``SIGKILL`` leaves no private key behind; ``ca.pem`` and the
directory are removed by `TlsFiles.remove` at ``stop()``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import tempfile
from typing import Any

from ._errors import ServerStartError

__all__ = [
    "CLIENT_CERT_MODES",
    "HTTPS_EXTRA_HINT",
    "TlsFiles",
    "TunnelCerts",
    "offer_h2",
    "record_sni",
    "server_context_from_pem",
    "sni_of",
]

#: The names the server certificate is valid for.
IDENTITIES = ("127.0.0.1", "::1", "localhost")
#: The name in the client certificate of ``client_cert=``.
CLIENT_IDENTITY = "client.tserver.test"

#: How to install what ``ssl=True`` needs.
HTTPS_EXTRA_HINT = "pip install 'tserver[https]'"


def record_sni(context: ssl.SSLContext) -> None:
    """Make *context* note on each socket the server name its client sent (SNI).

    A callback the context already has still runs, after the note.  Done
    once per context.
    """
    if getattr(context, "tserver_notes_sni", False):
        return
    previous: Any = context.sni_callback

    def note(sock: Any, server_name: str | None, ctx: ssl.SSLContext) -> int | None:
        with contextlib.suppress(AttributeError):  # an SSLObject may take no attribute
            sock.tserver_sni = server_name
        return previous(sock, server_name, ctx) if previous is not None else None

    context.sni_callback = note
    context.tserver_notes_sni = True  # type: ignore[attr-defined]


def offer_h2(context: ssl.SSLContext) -> None:
    """Offer HTTP/2 over ALPN on *context* (``http2=True``): ``h2``, then ``http/1.1``."""
    context.set_alpn_protocols(["h2", "http/1.1"])


def sni_of(sock: object) -> str | None:
    """The server name the client of *sock* sent (see `record_sni`), or `None`."""
    name = getattr(sock, "tserver_sni", None)
    return name if isinstance(name, str) else None


def _write_private(path: str, data: bytes) -> None:
    """Create *path* with mode ``0600`` (never reusing a file) and write *data*."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "wb") as f:
        f.write(data)


#: What ``client_cert=`` asks of a client, as an `ssl` verify mode.
CLIENT_CERT_MODES = {"optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def server_context_from_pem(
    cert_pem: bytes,
    key_pem: bytes,
    client_ca_pem: bytes | None = None,
    client_cert: str | None = None,
) -> ssl.SSLContext:
    """A server-side `ssl.SSLContext` of a certificate chain and key held in memory.

    :param cert_pem: the server certificate chain (leaf first), PEM.
    :param key_pem: the matching private key, PEM.
    :param client_ca_pem: the CA that signs client certificates, PEM.
    :param client_cert: ``"optional"`` or ``"required"`` asks clients for a
        certificate signed by *client_ca_pem*; `None` asks for none.
    :returns: a context that offers only HTTP/1.1 over ALPN (`offer_h2`
        adds ``h2`` for ``http2=True``) and notes the server name each
        client sends.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if client_cert is not None and client_ca_pem is not None:
        context.verify_mode = CLIENT_CERT_MODES[client_cert]
        context.load_verify_locations(cadata=client_ca_pem.decode("ascii"))
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd("tserver-server-pem", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, cert_pem + b"\n" + key_pem)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
    else:  # pragma: no cover - not on Linux
        directory = tempfile.mkdtemp(prefix="tserver-key-")
        try:
            path = os.path.join(directory, "server.pem")
            _write_private(path, cert_pem + b"\n" + key_pem)
            context.load_cert_chain(path)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    context.set_alpn_protocols(["http/1.1"])
    record_sni(context)
    return context


class TlsFiles:
    """The throwaway CA and server certificate of one ``ssl=True`` run.

    Pickles (paths and PEM bytes), so it can be handed to a child process.

    .. attribute:: directory

       The private temporary directory holding ``ca.pem``.

    .. attribute:: ca_path

       ``ca.pem``: the CA certificate clients should trust.

    .. attribute:: cert_pem

       The server certificate chain, PEM (in memory only).

    .. attribute:: key_pem

       The server's private key, PEM (in memory only).

    .. attribute:: ca_pem

       The CA certificate, PEM (it also signs the client certificate).

    .. attribute:: client_cert

       ``"optional"``, ``"required"`` or `None`: what the server asks of a
       client.

    .. attribute:: client_cert_path

       ``client.pem``, the client certificate and its key, when
       ``client_cert`` asks for one; else `None`.

    .. attribute:: ca_key_pem

       The CA's private key, PEM (in memory only), with ``proxy=True``;
       else ``b""``.
    """

    __slots__ = (
        "ca_key_pem",
        "ca_path",
        "ca_pem",
        "cert_pem",
        "client_cert",
        "client_cert_path",
        "directory",
        "key_pem",
    )

    def __init__(
        self,
        directory: str,
        ca_path: str,
        cert_pem: bytes,
        key_pem: bytes,
        ca_pem: bytes = b"",
        client_cert: str | None = None,
        client_cert_path: str | None = None,
        ca_key_pem: bytes = b"",
    ) -> None:
        self.directory = directory
        self.ca_path = ca_path
        self.cert_pem = cert_pem
        self.key_pem = key_pem
        self.ca_pem = ca_pem
        self.client_cert = client_cert
        self.client_cert_path = client_cert_path
        self.ca_key_pem = ca_key_pem

    def __repr__(self) -> str:
        return f"<TlsFiles {self.directory}>"

    @classmethod
    def create(cls, client_cert: str | None = None, *, proxy: bool = False) -> TlsFiles:
        """Make a new CA and server certificate; write the CA to a private directory.

        With *client_cert* (``"optional"`` or ``"required"``) the CA also
        issues a client certificate, written with its key to ``client.pem``
        (mode ``0600``): what a client presents, as the CA is what it trusts.
        With *proxy* the CA's private key is kept too (`ca_key_pem`, in
        memory only): a proxy issues a certificate for each host a client
        opens a ``CONNECT`` tunnel to (`TunnelCerts`).

        :raises ServerStartError: `trustme` is not installed (the `ImportError`
            is its cause); the message says to ``pip install 'tserver[https]'``.
        """
        try:
            import trustme
        except ImportError as exc:
            raise ServerStartError(
                "ssl=True and proxy=True need the 'trustme' package, which is not installed; "
                f"install the https extra: {HTTPS_EXTRA_HINT} "
                "(or pass ssl=<ssl.SSLContext> in thread mode)"
            ) from exc
        ca = trustme.CA()
        leaf = ca.issue_cert(*IDENTITIES)
        directory = tempfile.mkdtemp(prefix="tserver-tls-")
        files = cls(
            directory,
            os.path.join(directory, "ca.pem"),
            b"".join(blob.bytes() for blob in leaf.cert_chain_pems),
            leaf.private_key_pem.bytes(),
            ca.cert_pem.bytes(),
            client_cert,
            os.path.join(directory, "client.pem") if client_cert else None,
            ca.private_key_pem.bytes() if proxy else b"",
        )
        try:
            _write_private(files.ca_path, files.ca_pem)
            if files.client_cert_path is not None:
                client = ca.issue_cert(CLIENT_IDENTITY)
                _write_private(
                    files.client_cert_path,
                    b"".join(blob.bytes() for blob in client.cert_chain_pems)
                    + client.private_key_pem.bytes(),
                )
        except BaseException:
            files.remove()
            raise
        return files

    def server_context(self) -> ssl.SSLContext:
        """A server-side `ssl.SSLContext` of the server certificate and key."""
        return server_context_from_pem(self.cert_pem, self.key_pem, self.ca_pem, self.client_cert)

    def client_context(self) -> ssl.SSLContext:
        """A client-side `ssl.SSLContext` (verification on) that trusts `ca_path`.

        It presents the client certificate when there is one.
        """
        context = ssl.create_default_context(cafile=self.ca_path)
        if self.client_cert_path is not None:
            context.load_cert_chain(self.client_cert_path)
        return context

    @property
    def exists(self) -> bool:
        """Whether the directory is still on disk (`remove` not called yet)."""
        return os.path.isdir(self.directory)

    def remove(self) -> None:
        """Delete the directory and its files; calling it again does nothing."""
        shutil.rmtree(self.directory, ignore_errors=True)


#: How many hosts' tunnel certificates a proxy keeps (the oldest go first).
TUNNEL_CERTS_KEPT = 256


class TunnelCerts:
    """Server contexts for the TLS inside ``CONNECT`` tunnels: one per host, cached.

    A client that opens a tunnel to ``api.example.test:443`` and starts TLS
    in it gets a certificate for ``api.example.test`` issued by the throwaway
    CA, which the client trusts through ``ca_path``.  The certificate of each
    host is made once (well under a millisecond) and its context kept.

    :param ca_pem: the CA certificate, PEM.
    :param ca_key_pem: the CA's private key, PEM.
    :param client_cert: ``"optional"`` or ``"required"`` asks clients inside
        tunnels for a certificate signed by the CA, as ``ssl=True`` does.
    """

    __slots__ = ("_ca", "_contexts", "ca_key_pem", "ca_pem", "client_cert")

    def __init__(self, ca_pem: bytes, ca_key_pem: bytes, client_cert: str | None = None) -> None:
        self.ca_pem = ca_pem
        self.ca_key_pem = ca_key_pem
        self.client_cert = client_cert
        self._ca: Any = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    def __reduce__(self) -> tuple[Any, ...]:  # the cache stays behind
        return (TunnelCerts, (self.ca_pem, self.ca_key_pem, self.client_cert))

    def context_for(self, host: str) -> ssl.SSLContext:
        """The server context for *host* (a name or an IP address, no port, no brackets).

        :raises ValueError: the CA cannot issue a certificate for *host*.
        """
        key = host.lower()
        context = self._contexts.get(key)
        if context is not None:
            return context
        if self._ca is None:
            import trustme

            self._ca = trustme.CA.from_pem(self.ca_pem, self.ca_key_pem)
        try:
            leaf = self._ca.issue_cert(key)
        except Exception as exc:  # a name no certificate can hold
            raise ValueError(f"no certificate can be issued for {host!r}: {exc}") from exc
        context = server_context_from_pem(
            b"".join(blob.bytes() for blob in leaf.cert_chain_pems),
            leaf.private_key_pem.bytes(),
            self.ca_pem,
            self.client_cert,
        )
        if len(self._contexts) >= TUNNEL_CERTS_KEPT:
            del self._contexts[next(iter(self._contexts))]
        self._contexts[key] = context
        return context
