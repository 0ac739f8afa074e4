"""HTTPS for ``ssl=True``: a throwaway CA and a server certificate on disk.

`TlsFiles.create` makes a fresh certificate authority with `trustme` (the
``tserver[https]`` extra), issues a server certificate for ``127.0.0.1``,
``::1`` and ``localhost``, and writes three PEM files into a private
temporary directory:

- ``ca.pem``: the CA certificate, for a client's ``verify=`` / ``cafile=``;
- ``server.pem``: the server certificate chain;
- ``server.key``: the server's private key.

The directory is made by `tempfile.mkdtemp` (mode ``0700``) and the files are
created ``0600``.  `TlsFiles.remove` deletes it; the facade calls it at
``stop()``, and every ``start()`` makes a new CA.

The files, not in-memory objects, are the contract because a
``mode="subprocess"`` child loads them with `server_context_from_files`,
which needs only `ssl` (never `trustme`).
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile

from ._errors import ServerStartError

__all__ = ["HTTPS_EXTRA_HINT", "MissingTlsExtraError", "TlsFiles", "server_context_from_files"]

#: The names the server certificate is valid for.
IDENTITIES = ("127.0.0.1", "::1", "localhost")

#: How to install what ``ssl=True`` needs.
HTTPS_EXTRA_HINT = "pip install 'tserver[https]'"


class MissingTlsExtraError(ServerStartError, ImportError):
    """``ssl=True`` needs `trustme`, which is not installed.

    Both a `~tserver.ServerStartError` (the server cannot start) and an
    `ImportError` (an optional dependency is missing), so either ``except``
    catches it.
    """


def server_context_from_files(cert_path: str, key_path: str) -> ssl.SSLContext:
    """A server-side `ssl.SSLContext` loaded from PEM files.

    :param cert_path: the server certificate chain (leaf first).
    :param key_path: the matching private key.
    :returns: a context that offers only HTTP/1.1 over ALPN (Tornado speaks
        nothing else) and asks for no client certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.set_alpn_protocols(["http/1.1"])
    return context


def _write_private(path: str, data: bytes) -> None:
    """Create *path* with mode ``0600`` (never reusing a file) and write *data*."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "wb") as f:
        f.write(data)


class TlsFiles:
    """The throwaway CA and server certificate of one ``ssl=True`` run.

    Holds only paths (plain strings), so it pickles and can be handed to a
    child process.

    .. attribute:: directory

       The private temporary directory holding the files.

    .. attribute:: ca_path

       ``ca.pem``: the CA certificate clients should trust.

    .. attribute:: cert_path

       ``server.pem``: the server certificate chain.

    .. attribute:: key_path

       ``server.key``: the server's private key.
    """

    __slots__ = ("ca_path", "cert_path", "directory", "key_path")

    def __init__(self, directory: str, ca_path: str, cert_path: str, key_path: str) -> None:
        self.directory = directory
        self.ca_path = ca_path
        self.cert_path = cert_path
        self.key_path = key_path

    def __repr__(self) -> str:
        return f"<TlsFiles {self.directory}>"

    @classmethod
    def create(cls) -> TlsFiles:
        """Make a new CA and server certificate and write them to a private directory.

        :raises MissingTlsExtraError: `trustme` is not installed; the message
            says to ``pip install 'tserver[https]'``.
        """
        try:
            import trustme
        except ImportError as exc:
            raise MissingTlsExtraError(
                "ssl=True needs the 'trustme' package, which is not installed; "
                f"install the https extra: {HTTPS_EXTRA_HINT} "
                "(or pass ssl=<ssl.SSLContext> in thread mode)",
                name="trustme",
            ) from exc
        ca = trustme.CA()
        leaf = ca.issue_cert(*IDENTITIES)
        directory = tempfile.mkdtemp(prefix="tserver-tls-")
        files = cls(
            directory,
            os.path.join(directory, "ca.pem"),
            os.path.join(directory, "server.pem"),
            os.path.join(directory, "server.key"),
        )
        try:
            _write_private(files.ca_path, ca.cert_pem.bytes())
            _write_private(files.cert_path, b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
            _write_private(files.key_path, leaf.private_key_pem.bytes())
        except BaseException:
            files.remove()
            raise
        return files

    def server_context(self) -> ssl.SSLContext:
        """A server-side `ssl.SSLContext` loaded from `cert_path` and `key_path`."""
        return server_context_from_files(self.cert_path, self.key_path)

    def client_context(self) -> ssl.SSLContext:
        """A client-side `ssl.SSLContext` (verification on) that trusts `ca_path`."""
        return ssl.create_default_context(cafile=self.ca_path)

    @property
    def exists(self) -> bool:
        """Whether the directory is still on disk (`remove` not called yet)."""
        return os.path.isdir(self.directory)

    def remove(self) -> None:
        """Delete the directory and its files; calling it again does nothing."""
        shutil.rmtree(self.directory, ignore_errors=True)
