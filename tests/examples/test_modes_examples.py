"""The examples of ``docs/modes.rst``: what crosses the process boundary.

The page includes `greeting` and the test with ``literalinclude``, and shows
the `ValueError` message from the ``LAMBDA_REFUSED`` string below, wrapped to
fit the page; the test compares it with the real message, ignoring only how
the lines are wrapped.  (The gevent example of the page is
``gevent_client.py``, run by ``test_howto_gevent.py``.)
"""

from __future__ import annotations

import pytest
import requests

from tserver import Request, TestServer


def greeting(request: Request) -> str:
    """A callback defined at module level: the child process can import it."""
    return f"hello {request.args.get('name', 'you')}"


def test_what_crosses() -> None:
    with TestServer(mode="subprocess") as srv:
        with pytest.raises(ValueError) as refused:
            srv.set_response("callback", lambda request: "hello")

        srv.set_response("callback", greeting)
        assert requests.get(srv.get_url("/?name=ada"), timeout=5).text == "hello ada"

    assert f"ValueError: {refused.value}" == " ".join(LAMBDA_REFUSED.split())


LAMBDA_REFUSED = """\
ValueError: set_response: callback test_what_crosses.<locals>.<lambda> is
a lambda or a closure; subprocess mode runs it in the child process, so it must be picklable and
importable there: use a function or class defined at module level in an
importable module (not a lambda, a closure or a __main__ name)
"""
