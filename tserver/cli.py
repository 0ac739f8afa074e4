"""The ``tserver`` command line: ``tserver serve`` and ``tserver demo``.

``tserver serve`` runs a `TestServer` in the foreground and prints one line
per request as it arrives, which helps to see what a client really sends.
``tserver demo`` is a short self-contained tour of the library.  Both are
reached as ``tserver ...`` (the console script) or ``python -m tserver ...``.

The module uses the public ``tserver`` API only (and `argparse` from the
standard library).  ``serve`` waits for requests with
`TestServer.await_requests` on an `asyncio` loop in the main thread; the
SIGINT/SIGTERM handler hands a "stop" to that loop with
`~asyncio.loop.call_soon_threadsafe`, so a request line is printed the moment
the request is recorded and a signal ends the wait at once, with no polling.
See the "Command line" page of the docs for the output formats.

.. versionadded:: 1.0
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ipaddress
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from tserver import TestServer, TestServerError, WaitTimeoutError, __version__
from tserver._demo import demo

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

    from tserver import Request

__all__ = ["main"]

#: How long one `await_requests` call may wait before the loop asks again;
#: only bounds a single wait, a signal ends the wait at once.
_WAIT_PERIOD = 3600.0
#: Requests kept in memory by ``serve`` (it may run for hours).
_HISTORY_LIMIT = 1000

_EPILOG = """\
examples:
  tserver serve                        serve on 127.0.0.1, any free port
  tserver serve --port 8080 --status 201 --data '{"id": 7}' \\
                --header 'Content-Type: application/json'
  tserver serve --json                 one JSON object per request
  tserver demo                         a one-minute tour of the library
  python -m tserver serve              the same without the console script

serve prints "Serving on <URL>" first, then one line per request, and stops
on Ctrl+C (SIGINT) or SIGTERM with a summary line and exit status 0.
Documentation: the "Command line" page of the tserver docs.
"""


# -- argument parsing -----------------------------------------------------------


def _int_in(what: str, low: int, high: int, accepted: str) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: expected {accepted}")
        return value

    convert.__name__ = what  # argparse names the type in some messages
    return convert


_port = _int_in("port", 0, 65535, "an int from 0 (any free port) to 65535")
_status = _int_in("status", 100, 599, "an HTTP status code from 100 to 599")


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(c.isspace() for c in name):
        raise argparse.ArgumentTypeError(
            f"invalid header {text!r}: expected NAME:VALUE such as 'X-Token: abc'"
        )
    return name, value.strip()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tserver",
        description="A real HTTP server on loopback for testing HTTP clients.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tserver {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve in the foreground and print every request",
        description="Serve in the foreground, print one line per request, "
        "stop on Ctrl+C (SIGINT) or SIGTERM with a summary.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--address",
        default="127.0.0.1",
        help="address to bind (default: %(default)s; '::1' for IPv6; "
        "a non-loopback address prints a warning)",
    )
    serve.add_argument(
        "--port", type=_port, default=0, help="port to bind (default: 0, any free port)"
    )
    serve.add_argument(
        "--status", type=_status, default=200, help="status of every answer (default: 200)"
    )
    serve.add_argument(
        "--data", default="", help="body of every answer, sent UTF-8 (default: empty)"
    )
    serve.add_argument(
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a header of every answer; repeat for more (the same name may repeat)",
    )
    serve.add_argument(
        "--har",
        metavar="FILE",
        help="at exit, write the traffic to FILE as a HAR 1.2 log (the last "
        f"{_HISTORY_LIMIT} requests)",
    )
    serve.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per request (method, path, query_string, "
        "headers, data_len, status, received_at)",
    )
    commands.add_parser(
        "demo",
        help="a short self-contained tour of the library",
        description="Start a server, answer a request, read it back and assert on it.",
    )
    return parser


# -- serve ------------------------------------------------------------------------


def _is_loopback(address: str) -> bool:
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.partition("%")[0]).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _printable(text: str) -> str:
    return text if text.isprintable() else repr(text)[1:-1]


class _Printer:
    """Prints each new request once, as a text line or a JSON object."""

    def __init__(self, out: TextIO, status: int, *, as_json: bool) -> None:
        self._out = out
        self._status = status
        self._as_json = as_json
        self._last: Request | None = None
        self.methods: collections.Counter[str] = collections.Counter()
        self.printed = 0

    def show(self, history: Sequence[Request]) -> bool:
        """Print the requests of *history* (a snapshot) not printed yet.

        Returns `False` when `_HISTORY_LIMIT` dropped some of them unseen.
        """
        start, complete = 0, len(history) < _HISTORY_LIMIT
        if self._last is not None:
            for index in range(len(history) - 1, -1, -1):
                if history[index] is self._last:
                    start, complete = index + 1, True
                    break
        for request in history[start:]:
            self._out.write(self._line(request) + "\n")
            self._out.flush()
            self.methods[request.method] += 1
            self.printed += 1
            self._last = request
        return complete

    def _line(self, request: Request) -> str:
        if self._as_json:
            return json.dumps(
                {
                    "method": request.method,
                    "path": request.path,
                    "query_string": request.query_string,
                    "headers": request.headers.multi_items(),
                    "data_len": len(request.data),
                    "status": self._status,
                    "received_at": request.received_at,
                }
            )
        return (
            f"{_printable(request.method)} {_printable(request.target)} -> "
            f"{self._status} ({len(request.data)} bytes received)"
        )

    def summary(self, total: int, signame: str) -> str:
        """The last line: what stopped the server and what it saw."""
        noun = "request" if total == 1 else "requests"
        line = f"Stopped by {signame} after {total} {noun}"
        if self.methods:
            line += " (" + ", ".join(f"{n} {m}" for m, n in self.methods.most_common()) + ")"
        return line + "."


class _Stopper:
    """The SIGINT/SIGTERM handler: ends the wait of `_watch` at once.

    A signal handler runs in the main thread between two bytecodes, so it
    only records the signal and hands the stop to the event loop with
    ``call_soon_threadsafe`` (which wakes the loop through its self-pipe).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signame: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[None] | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Handle the signals (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put back the handlers `install` replaced."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def attach(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """A future that a signal resolves (at once if one came already)."""
        self._loop, self._stop = loop, loop.create_future()
        if self.signame is not None:
            _resolve(self._stop)
        return self._stop

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signame is None:
            self.signame = signal.Signals(signum).name
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                loop.call_soon_threadsafe(_resolve, stop)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _watch(srv: TestServer, printer: _Printer, stopper: _Stopper) -> None:
    """Print requests as they are recorded until a signal resolves the stop future."""
    stop = stopper.attach(asyncio.get_running_loop())
    seen = 0  # requests printed, or dropped unseen by the history limit
    while not stop.done():
        wait = asyncio.ensure_future(srv.await_requests(seen + 1, _WAIT_PERIOD))
        either: list[asyncio.Future[Any]] = [wait, stop]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not wait.done():
            wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await wait
            break
        try:
            history = wait.result()
        except WaitTimeoutError:
            continue
        before = printer.printed
        if printer.show(history):
            seen += printer.printed - before
        else:  # printing fell behind by more than the history limit
            seen = srv.request_count


def _serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if not _is_loopback(args.address):
        err.write(
            f"tserver: warning: {args.address} is not a loopback address: anyone who "
            "can reach this machine can send requests to this server\n"
        )
        err.flush()
    if args.har and not os.path.isdir(os.path.dirname(os.path.abspath(args.har))):
        err.write(f"tserver: --har {args.har}: its directory does not exist\n")
        return 2
    srv = TestServer(args.address, args.port, history_limit=_HISTORY_LIMIT)
    srv.set_response("status", args.status)
    srv.set_response("data", args.data)
    if args.header:
        srv.set_response("headers", args.header)
    printer = _Printer(out, args.status, as_json=args.json)
    stopper = _Stopper()
    stopper.install()
    try:
        srv.start()
        try:
            out.write(f"Serving on {srv.url}\n")
            out.flush()
            if err.isatty():
                err.write("Press Ctrl+C to stop.\n")
            asyncio.run(_watch(srv, printer, stopper))
        finally:
            srv.stop()
        printer.show(srv.history)  # what came between the last wake-up and the stop
        out.write(printer.summary(srv.request_count, stopper.signame or "a signal") + "\n")
        if args.har:
            srv.save_har(args.har)
            out.write(f"HAR of the traffic written to {args.har}\n")
        out.flush()
    except BrokenPipeError:  # e.g. `tserver serve | head -3`: nobody reads any more
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())  # so that the exit flush fails quietly
            os.close(devnull)
        return 1
    finally:
        stopper.restore()
    return 0


# -- demo ---------------------------------------------------------------------------


# -- main -------------------------------------------------------------------------


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def main(argv: list[str] | None = None) -> int:
    """Run the ``tserver`` command line with *argv* (default: ``sys.argv[1:]``).

    Returns the exit status instead of raising ``SystemExit``: ``0`` on
    success, ``1`` when the server cannot start (the port is in use...),
    ``2`` for bad arguments (with a message on stderr saying which and what
    is accepted).

    Example::

        >>> from tserver.cli import main
        >>> main(["--version"])  # as the shell command: tserver --version
        tserver ...
        0
    """
    out, err = sys.stdout, sys.stderr
    for stream in (out, err):
        reconfigure: Callable[..., None] | None = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")  # odd bytes in a path never crash us
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return _exit_status(exc.code)
    try:
        if args.command == "serve":
            return _serve(args, out, err)
        return demo(out)
    except TestServerError as exc:
        err.write(f"tserver: error: {exc}\n")
        return 1
