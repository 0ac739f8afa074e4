"""``tserver demo``: a short tour of the library, on a real server.

It uses only the public API, as a user's test would: start a server, tell it
what to answer, send a request with urllib, read the record back, assert on
it (once passing, once failing), stop.
"""

from __future__ import annotations

from typing import TextIO

from tserver import TestServer, __version__

__all__ = ["demo"]


def demo(out: TextIO) -> int:
    """A tour: start, answer, send, read back, assert (pass and fail), stop."""
    from urllib.request import ProxyHandler, build_opener
    from urllib.request import Request as UrlRequest

    from hamcrest import has_entry

    def say(text: str = "") -> None:
        out.write(text + "\n")
        out.flush()

    say(f"tserver {__version__} demo: a real HTTP server for testing HTTP clients\n")
    with TestServer() as srv:
        say("1. Start a server on loopback (port 0 picks a free port):")
        say("   >>> srv = TestServer().start()")
        say(f"   serving on {srv.url}\n")

        say("2. Tell it what to answer:")
        say('   >>> srv.set_response("json", {"id": 12, "name": "demo"})\n')
        srv.set_response("json", {"id": 12, "name": "demo"})

        say("3. Let the client under test talk to it (urllib here; any client works):")
        url = srv.get_url("/items?page=2")
        body = b'{"name": "demo"}'
        headers = {"Content-Type": "application/json", "X-Token": "abc"}
        say(f"   POST {url} with headers {headers} and body {body!r}")
        opener = build_opener(ProxyHandler({}))  # loopback: never via a proxy
        with opener.open(UrlRequest(url, data=body, headers=headers), timeout=10) as reply:
            say(f"   answer: {reply.status} {reply.read()!r}\n")

        say("4. Read what the server recorded:")
        request = srv.request
        say(f"   >>> srv.request\n   {request!r}")
        say(f"   method={request.method!r} path={request.path!r} args={dict(request.args)!r}")
        say(f"   headers['X-Token']={request.headers['X-Token']!r} json()={request.json()!r}\n")

        say("5. Assert on it with the fluent layer (hamcrest matchers inside):")
        say('   >>> srv.assert_request().has_method("POST").has_path("/items") \\')
        say('   ...     .has_arg("page", "2").has_json(has_entry("name", "demo"))')
        srv.assert_request().has_method("POST").has_path("/items").has_arg("page", "2").has_json(
            has_entry("name", "demo")
        )
        say("   passed\n")

        say("6. And this is what a failure looks like (the client sent 'abc'):")
        say('   >>> srv.assert_request().has_header("X-Token", "abd")')
        try:
            srv.assert_request().has_header("X-Token", "abd")
        except AssertionError as exc:
            say("   AssertionError: " + str(exc).replace("\n", "\n   "))
        else:  # pragma: no cover - the assertion layer is broken
            say("   (unexpectedly passed)")
            return 1
    say("\nThe server is stopped: the socket is closed and the port is free again.")
    say("Next: read the tutorial, or run `tserver serve` and point a client at it.")
    return 0
