"""The servers the bench compares, behind one small interface.

Each contender answers every path and method with a configurable body and
counts the requests it handled, so the bench can drive them all the same way:

``thread``        tserver, ``mode="thread"``
``subprocess``    tserver, ``mode="subprocess"``: the warm spare forks its child
``subprocess-cold`` the same with ``spare=False``: a fresh interpreter per child
``tornado``       a bare Tornado app, one wildcard ``RequestHandler``, IOLoop in a
                  thread: the ceiling for tserver's shape
``tornado-child`` the same bare app in a child Python process that reports its
                  port on a pipe: the ceiling for subprocess mode's start
``httpserver``    pytest-httpserver (werkzeug), one permanent wildcard handler
``stdlib``        ``http.server.ThreadingHTTPServer`` (HTTP/1.1 keep-alive)
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"
SMALL_BODY = b"ok"


class Contender:
    """Start, stop, set the body of GET answers, count requests."""

    name = "?"
    records = False  # keeps each request for the test to read (tserver, httpserver)

    def __init__(self) -> None:
        self.port = 0
        self.body = SMALL_BODY

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def set_body(self, body: bytes) -> None:
        self.body = body

    def count(self) -> int:
        """Requests handled (recorded, for tserver) since the last `reset`."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the requests handled so far (and their recorded copies)."""
        raise NotImplementedError

    def cpu_seconds(self) -> float:
        """CPU time used so far by the process that serves (this one, by default)."""
        return time.process_time()


# -- tserver ------------------------------------------------------------------


class TServer(Contender):
    records = True

    def __init__(self, mode: str, name: str = "", **kwargs: Any) -> None:
        super().__init__()
        self.name = name or mode
        self.mode = mode
        self.kwargs = kwargs
        self.srv: Any = None

    def start(self) -> None:
        from tserver import TestServer

        self.srv = TestServer(mode=self.mode, **self.kwargs)
        self.srv.start()
        self.port = self.srv.port
        self.srv.set_response("data", self.body)

    def stop(self) -> None:
        self.srv.stop()

    def set_body(self, body: bytes) -> None:
        self.body = body
        if self.srv is not None and self.srv.running:
            self.srv.set_response("data", body)

    def count(self) -> int:
        return int(self.srv.request_count)

    def reset(self) -> None:
        self.srv.reset()
        self.srv.set_response("data", self.body)

    def cpu_seconds(self) -> float:
        if self.mode != "subprocess":
            return time.process_time()
        return child_cpu_seconds(self.srv._backend.pid)


# -- bare Tornado in a thread ---------------------------------------------------


class _State:
    __slots__ = ("body", "count")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.count = 0


def _bare_handler() -> type:
    from tornado import web

    class Wildcard(web.RequestHandler):
        """One handler for every path: the minimum a recording server does."""

        def initialize(self, state: _State) -> None:
            self.state = state

        def get(self) -> None:
            self.state.count += 1
            self.write(self.state.body)

        def post(self) -> None:
            self.state.count += 1
            self.write(SMALL_BODY)

    return Wildcard


class BareTornado(Contender):
    name = "tornado"

    def start(self) -> None:
        from tornado import httpserver, netutil, web

        self.state = _State(self.body)
        sockets = netutil.bind_sockets(0, HOST)
        self.port = sockets[0].getsockname()[1]
        app = web.Application([(r".*", _bare_handler(), {"state": self.state})])
        ready = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.server = httpserver.HTTPServer(app)
            self.server.add_sockets(sockets)
            ready.set()
            self.loop.run_forever()
            self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait()

    def stop(self) -> None:
        async def shutdown() -> None:
            self.server.stop()
            await self.server.close_all_connections()
            self.loop.stop()

        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(shutdown()))
        self.thread.join()

    def set_body(self, body: bytes) -> None:
        self.body = body
        if hasattr(self, "state"):
            self.state.body = body

    def count(self) -> int:
        return self.state.count

    def reset(self) -> None:
        self.state.count = 0


# -- bare Tornado in a child process ----------------------------------------------

CHILD_SCRIPT = r"""
import asyncio, sys
from tornado import httpserver, netutil, web

class Wildcard(web.RequestHandler):
    def get(self):
        self.write(b"ok")
    def post(self):
        self.write(b"ok")

loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
sockets = netutil.bind_sockets(0, "127.0.0.1")
server = httpserver.HTTPServer(web.Application([(r".*", Wildcard)]))
server.add_sockets(sockets)
sys.stdout.write(f"{sockets[0].getsockname()[1]}\n")
sys.stdout.flush()
loop.add_reader(sys.stdin.fileno(), loop.stop)  # EOF on stdin: the parent stops us
loop.run_forever()
server.stop()
"""


class TornadoChild(Contender):
    """The bare app in ``python -c``; started when it printed its port."""

    name = "tornado-child"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def stop(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait()
        self.proc.stdout.close()

    def count(self) -> int:
        return -1  # not counted

    def reset(self) -> None:
        pass


# -- pytest-httpserver ---------------------------------------------------------------


def have_httpserver() -> bool:
    try:
        import pytest_httpserver  # noqa: F401
    except ImportError:
        return False
    return True


class HttpServer(Contender):
    """pytest-httpserver as its users run it: defaults, one permanent handler."""

    name = "httpserver"
    records = True

    def start(self) -> None:
        from pytest_httpserver import HTTPServer

        # as under pytest (whose log capture configures the root logger):
        # werkzeug does not print a line per request
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.srv = HTTPServer(host=HOST, port=0)
        self.srv.start()
        self.port = self.srv.port
        self._expect()

    def _expect(self) -> None:
        self.srv.expect_request(re.compile(".*")).respond_with_data(self.body)

    def stop(self) -> None:
        self.srv.stop()
        self.srv.clear()

    def set_body(self, body: bytes) -> None:
        self.body = body
        if getattr(self, "srv", None) is not None and self.srv.is_running():
            self.srv.clear_all_handlers()
            self._expect()

    def count(self) -> int:
        return len(self.srv.log)

    def reset(self) -> None:
        self.srv.clear_log()


# -- stdlib ThreadingHTTPServer ---------------------------------------------------------


class _StdlibHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the others
    # headers and body go out in two writes: without this, Nagle's algorithm
    # and the client's delayed ACK add 40 ms to every keep-alive answer
    disable_nagle_algorithm = True

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:  # read (and drop) the body
            length -= len(self.rfile.read(min(length, 1 << 20)))
        server: Any = self.server
        server.hits += 1
        body = server.body if self.command == "GET" else SMALL_BODY
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    body = b""
    hits = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        """wrk resets its connections when it stops: not worth a traceback."""


class Stdlib(Contender):
    name = "stdlib"

    def start(self) -> None:
        self.srv: Any = _QuietServer((HOST, 0), _StdlibHandler)
        self.srv.daemon_threads = True
        self.srv.body = self.body
        self.srv.hits = 0
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join()

    def set_body(self, body: bytes) -> None:
        self.body = body
        if hasattr(self, "srv"):
            self.srv.body = body

    def count(self) -> int:
        return int(self.srv.hits)

    def reset(self) -> None:
        self.srv.hits = 0


def make(name: str) -> Contender:
    """The contender called *name*."""
    if name in ("thread", "subprocess"):
        return TServer(name)
    if name == "subprocess-cold":
        return TServer("subprocess", name, spare=False)
    return {
        "tornado": BareTornado,
        "tornado-child": TornadoChild,
        "httpserver": HttpServer,
        "stdlib": Stdlib,
    }[name]()


def child_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process *pid* (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
