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
import base64
import collections
import contextlib
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from tserver import Response, TestServer, TestServerError, WaitTimeoutError, __version__
from tserver._demo import demo

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

    from tserver import Exchange, Request

__all__ = ["main"]

#: How long one `await_requests` call may wait before the loop asks again;
#: only bounds a single wait, a signal ends the wait at once.
_WAIT_PERIOD = 3600.0
#: Requests kept in memory by ``serve`` (it may run for hours).
_HISTORY_LIMIT = 1000
#: Where ``--admin`` serves its endpoints.
_ADMIN = "/__tserver/"
#: How long a request's line waits for its status (a slow or held answer).
_STATUS_WAIT = 0.5
#: How often ``--watch`` looks at the stubs file.
_WATCH_PERIOD = 0.25

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


def _credentials(text: str) -> tuple[str, str]:
    user, colon, password = text.partition(":")
    if not colon or not user:
        raise argparse.ArgumentTypeError(
            f"invalid credentials {text!r}: expected USER:PASSWORD such as 'alice:s3cret'"
        )
    return user, password


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
        "headers, data_len, status, received_at, connection, and the body base64-encoded)",
    )
    serve.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="print each request's headers and the start of its body under its line",
    )
    serve.add_argument(
        "--body-bytes",
        type=_int_in("body-bytes", 0, 1 << 30, "an int of 0 or more"),
        default=200,
        metavar="N",
        help="how much of each body --verbose shows (default: %(default)s bytes)",
    )
    serve.add_argument(
        "--log",
        metavar="FILE",
        help="append one JSON object per request to FILE (as --json prints them), "
        "while the console stays short",
    )
    serve.add_argument(
        "--stubs",
        metavar="FILE",
        help="answer by the default response and the rules of a stubs file "
        "(JSON, or TOML when FILE ends in .toml); see the Command line page",
    )
    serve.add_argument(
        "--watch",
        action="store_true",
        help="reload the stubs file when it changes (the history starts afresh)",
    )
    serve.add_argument(
        "--ssl",
        action="store_true",
        help="serve HTTPS with a throwaway CA; the CA file to trust is printed",
    )
    serve.add_argument(
        "--client-cert",
        choices=("optional", "required"),
        help="ask clients for a certificate (with --ssl or --proxy); the client "
        "certificate file is printed",
    )
    serve.add_argument(
        "--proxy",
        action="store_true",
        help="also serve as a proxy: absolute-form requests and CONNECT tunnels, "
        "answered by the stubs (nothing is forwarded)",
    )
    serve.add_argument(
        "--proxy-auth",
        type=_credentials,
        metavar="USER:PASSWORD",
        help="with --proxy: answer 407 to proxied requests without these credentials",
    )
    serve.add_argument(
        "--admin",
        action="store_true",
        help=f"serve GET {_ADMIN}requests (the JSON log) and POST {_ADMIN}reset "
        "(history emptied, stubs loaded again) on the same address",
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


def _record(request: Request, status: int | None) -> dict[str, Any]:
    """One request as a JSON object: the ``--json`` line, the ``--log`` line, the admin list."""
    return {
        "method": request.method,
        "path": request.path,
        "query_string": request.query_string,
        "headers": request.headers.multi_items(),
        "data_len": len(request.data),
        "status": status,
        "received_at": request.received_at,
        "connection": request.connection,
        "body": base64.b64encode(request.data).decode("ascii"),
    }


def _is_admin(request: Request) -> bool:
    return request.path.startswith(_ADMIN)


class _Printer:
    """Prints each new request once, as a text line (``--verbose``: more) or a JSON object.

    A request is printed with the status of its answer, which is set a
    moment after the request is recorded: a request whose status is not set
    yet waits (its followers too, to keep the order) up to `_STATUS_WAIT`
    seconds, then is printed without one (a fault, a held answer).
    """

    def __init__(
        self,
        out: TextIO,
        *,
        as_json: bool,
        verbose: bool = False,
        body_bytes: int = 200,
        log: TextIO | None = None,
    ) -> None:
        self._out = out
        self._as_json = as_json
        self._verbose = verbose
        self._body_bytes = body_bytes
        self._log = log
        self._last: Request | None = None
        self._waiting_since: float | None = None
        self.methods: collections.Counter[str] = collections.Counter()
        self.printed = 0
        #: requests the history limit dropped before they could be printed
        self.dropped = 0
        #: requests handled since the last reset (printed, dropped, or admin calls)
        self.seen = 0
        #: set by `show` when the snapshot no longer holds the last request printed
        self.lost = False

    def restart(self) -> None:
        """The server was reset: its history starts afresh."""
        self._last = None
        self._waiting_since = None
        self.seen = 0

    def show(self, exchanges: Sequence[Exchange], now: float) -> bool:
        """Print the requests of *exchanges* (a snapshot) not printed yet; whether one waits.

        `seen` counts what was handled: printed, admin calls, and what
        `_HISTORY_LIMIT` dropped unseen.
        """
        start = 0
        if self._last is not None:
            for index in range(len(exchanges) - 1, -1, -1):
                if exchanges[index].request is self._last:
                    start = index + 1
                    break
            else:  # the limit dropped it, and maybe more after it
                self.lost = True
        elif len(exchanges) >= _HISTORY_LIMIT:  # some may have been dropped unseen
            self.lost = True
        for exchange in exchanges[start:]:
            if exchange.status is None and not exchange.completed:
                if self._waiting_since is None:
                    self._waiting_since = now
                if now - self._waiting_since < _STATUS_WAIT:
                    return True
            self._waiting_since = None
            self._print(exchange)
            self._last = exchange.request
            self.seen += 1
        return False

    def _print(self, exchange: Exchange) -> None:
        request = exchange.request
        if _is_admin(request):
            return
        record = _record(request, exchange.status)
        if self._log is not None:
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()
        line = json.dumps(record) if self._as_json else self._line(request, exchange.status)
        self._out.write(line + "\n")
        self._out.flush()
        self.methods[request.method] += 1
        self.printed += 1

    def _line(self, request: Request, status: int | None) -> str:
        answer = "no status" if status is None else str(status)
        line = (
            f"{_printable(request.method)} {_printable(request.target)} -> "
            f"{answer} ({len(request.data)} bytes received)"
        )
        if not self._verbose:
            return line
        lines = [line]
        lines += [
            f"  {_printable(name)}: {_printable(value)}" for name, value in request.raw_headers
        ]
        if request.data:
            shown = request.data[: self._body_bytes]
            more = f" ... ({len(request.data)} bytes)" if len(shown) < len(request.data) else ""
            lines.append(f"  body: {repr(shown)[2:-1]}{more}")
        return "\n".join(lines)

    def summary(self, signame: str) -> str:
        """The last line: what stopped the server and what it saw."""
        total = self.printed + self.dropped
        noun = "request" if total == 1 else "requests"
        line = f"Stopped by {signame} after {total} {noun}"
        if self.methods:
            line += " (" + ", ".join(f"{n} {m}" for m, n in self.methods.most_common()) + ")"
        return line + "."


class _Setup:
    """What ``serve`` puts on its server, again after each reset (admin, ``--watch``)."""

    def __init__(self, srv: TestServer, args: argparse.Namespace) -> None:
        self.srv = srv
        self.args = args
        #: called after a reset, from any thread (the watch loop restarts its count)
        self.on_reset: Callable[[], None] = lambda: None

    def apply(self) -> int:
        """Set the flags' answer, the stubs and the admin endpoints; how many stub rules."""
        srv, args = self.srv, self.args
        srv.set_response("status", args.status)
        srv.set_response("data", args.data)
        if args.header:
            srv.set_response("headers", args.header)
        rules = len(srv.load_stubs(args.stubs)) if args.stubs else 0
        if args.admin:
            endpoints = (("GET", "requests", self.requests), ("POST", "reset", self.reset))
            for method, name, callback in endpoints:
                srv.add_response(
                    Response(callback=callback),
                    method=method,
                    path=_ADMIN + name,
                    count=None,
                    priority=1 << 30,  # before any stub
                )
        return rules

    def requests(self, request: Request) -> Response:
        """``GET /__tserver/requests``: every request recorded, as JSON (admin calls left out)."""
        records = [
            _record(e.request, e.status) for e in self.srv.exchanges if not _is_admin(e.request)
        ]
        return Response(json=records)

    def reset(self, request: Request) -> Response:
        """``POST /__tserver/reset``: an empty history, the stubs loaded again."""
        self.srv.reset()
        try:
            rules = self.apply()
        except ValueError as exc:  # the stubs file no longer loads
            self.on_reset()
            return Response(json={"reset": True, "error": str(exc)}, status=500)
        self.on_reset()
        return Response(json={"reset": True, "rules": rules})

    def reload(self) -> str:
        """``--watch``: load the changed stubs file; what to print.

        The file is checked on a server that never starts before the running
        one is reset: a broken file leaves the running rules in place.
        """
        try:
            TestServer().load_stubs(self.args.stubs)
        except ValueError as exc:
            return f"tserver: --watch: not reloaded, the old rules stay: {exc}"
        self.srv.reset()
        try:
            rules = self.apply()
        except ValueError as exc:  # it changed again, for the worse, since the check
            self.on_reset()
            return f"tserver: --watch: the file changed while it was loaded: {exc}"
        self.on_reset()
        noun = "rule" if rules == 1 else "rules"
        return f"Reloaded {self.args.stubs}: {rules} {noun} (the history starts afresh)"


class _Stopper:
    """The SIGINT/SIGTERM handler: ends the wait of `_watch` at once.

    A signal handler runs in the main thread between two bytecodes, so it
    only records the signal and hands the stop to the event loop with
    ``call_soon_threadsafe`` (which wakes the loop through its self-pipe).
    The kernel may deliver the signal to another thread (the server's), and
    then nothing would interrupt the main thread's wait for its handler to
    run: while attached, the signal also wakes the loop through
    `signal.set_wakeup_fd`, whichever thread it reached.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signame: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[None] | None = None
        self._previous: dict[int, Any] = {}
        self._wakeup: tuple[socket.socket, socket.socket, int] | None = None

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
        if self._previous and threading.current_thread() is threading.main_thread():
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            loop.add_reader(reader, _drain, reader)  # waking up is all it is for
            self._wakeup = (reader, writer, signal.set_wakeup_fd(writer.fileno()))
        if self.signame is not None:
            _resolve(self._stop)
        return self._stop

    def detach(self) -> None:
        """Undo what `attach` set up for waking the loop."""
        if self._wakeup is not None and self._loop is not None:
            reader, writer, previous = self._wakeup
            self._wakeup = None
            signal.set_wakeup_fd(previous)
            self._loop.remove_reader(reader)
            reader.close()
            writer.close()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signame is None:
            self.signame = signal.Signals(signum).name
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                loop.call_soon_threadsafe(_resolve, stop)


def _drain(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.recv(64)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _watch(
    srv: TestServer, printer: _Printer, stopper: _Stopper, setup: _Setup, out: TextIO
) -> None:
    """Print requests as they are recorded until a signal resolves the stop future."""
    loop = asyncio.get_running_loop()
    stop = stopper.attach(loop)
    restarted = asyncio.Event()

    def on_reset() -> None:  # any thread: the admin endpoint runs on the server's
        loop.call_soon_threadsafe(restarted.set)

    setup.on_reset = on_reset
    watcher = None
    if setup.args.watch and setup.args.stubs:
        watcher = asyncio.ensure_future(_watch_file(setup, out))
    try:
        waiting = False
        while not stop.done():
            wait = asyncio.ensure_future(srv.await_requests(printer.seen + 1, _WAIT_PERIOD))
            reset = asyncio.ensure_future(restarted.wait())
            either: list[asyncio.Future[Any]] = [wait, stop, reset]
            await asyncio.wait(
                either,
                return_when=asyncio.FIRST_COMPLETED,
                timeout=_STATUS_WAIT / 5 if waiting else None,
            )
            for task in (wait, reset):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if restarted.is_set():
                restarted.clear()
                printer.restart()
                continue
            if stop.done():
                break
            if wait.done() and isinstance(wait.exception(), WaitTimeoutError):
                continue
            waiting = printer.show(srv.exchanges, loop.time())
            if printer.lost:  # printing fell behind by more than the history limit
                printer.lost = False
                count = srv.request_count
                printer.dropped += max(0, count - printer.seen)
                printer.seen = max(printer.seen, count)
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        stopper.detach()


async def _watch_file(setup: _Setup, out: TextIO) -> None:
    """``--watch``: reload the stubs file when its modification time or size changes."""

    def state() -> tuple[float, int] | None:
        try:
            info = os.stat(setup.args.stubs)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    last = state()
    while True:
        await asyncio.sleep(_WATCH_PERIOD)
        now = state()
        if now is not None and now != last:
            last = now
            out.write(setup.reload() + "\n")
            out.flush()


def _open_log(path: str | None, err: TextIO) -> TextIO | None:
    if path is None:
        return None
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        err.write(f"tserver: --log {path}: cannot open it: {exc.strerror or exc}\n")
        return None


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
    if args.watch and not args.stubs:
        err.write("tserver: --watch needs --stubs FILE\n")
        return 2
    if args.proxy_auth and not args.proxy:
        err.write("tserver: --proxy-auth needs --proxy\n")
        return 2
    if args.client_cert and not (args.ssl or args.proxy):
        err.write("tserver: --client-cert needs --ssl or --proxy\n")
        return 2
    srv = TestServer(
        args.address,
        args.port,
        history_limit=_HISTORY_LIMIT,
        ssl=args.ssl,
        client_cert=args.client_cert,
        proxy=args.proxy,
        proxy_auth=args.proxy_auth,
    )
    setup = _Setup(srv, args)
    try:
        rules = setup.apply()
    except ValueError as exc:  # a bad stubs file: before anything listens
        err.write(f"tserver: error: {exc}\n")
        return 2
    log = _open_log(args.log, err)
    if args.log and log is None:
        return 2
    printer = _Printer(
        out, as_json=args.json, verbose=args.verbose, body_bytes=args.body_bytes, log=log
    )
    stopper = _Stopper()
    stopper.install()
    try:
        srv.start()
        try:
            out.write(f"Serving on {srv.url}\n")
            _describe(srv, args, rules, out)
            out.flush()
            if err.isatty():
                err.write("Press Ctrl+C to stop.\n")
            asyncio.run(_watch(srv, printer, stopper, setup, out))
        finally:
            srv.stop()
        printer.show(srv.exchanges, float("inf"))  # what came after the last wake-up
        out.write(printer.summary(stopper.signame or "a signal") + "\n")
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
        if log is not None:
            log.close()
    return 0


def _describe(srv: TestServer, args: argparse.Namespace, rules: int, out: TextIO) -> None:
    """The lines after ``Serving on``: what else a client needs to know."""
    if srv.ca_path is not None:
        out.write(f"CA certificate (trust it): {srv.ca_path}\n")
    if srv.client_cert_path is not None:
        out.write(f"Client certificate and key: {srv.client_cert_path}\n")
    if args.proxy:
        out.write(f"Proxy: {srv.proxy_url}\n")
    if args.stubs:
        noun = "rule" if rules == 1 else "rules"
        watching = ", watching it" if args.watch else ""
        out.write(f"Stubs: {args.stubs} ({rules} {noun}{watching})\n")
    if args.admin:
        out.write(f"Admin: GET {srv.get_url(_ADMIN + 'requests')}, POST {_ADMIN}reset\n")


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
