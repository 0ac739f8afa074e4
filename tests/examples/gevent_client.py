"""How-to: a gevent client against a subprocess-mode server (``docs/howto.rst``).

Run as a script by ``test_howto_gevent.py``: ``monkey.patch_all()`` changes the
``socket`` module of the whole process, so it must not run inside the pytest
process that runs the other tests.
"""

from gevent import monkey

monkey.patch_all()  # as a gevent application does, before anything else

import gevent  # noqa: E402
import requests  # noqa: E402

from tserver import TestServer  # noqa: E402


def fetch_all_at_once(urls: list[str]) -> list[bytes]:
    """The code under test: fetches every URL in its own greenlet."""
    jobs = [gevent.spawn(requests.get, url, timeout=5) for url in urls]
    gevent.joinall(jobs, timeout=10, raise_error=True)
    return [job.value.content for job in jobs]


def main() -> None:
    # the server runs in a child process: the patched socket module of this
    # process cannot disturb its event loop
    with TestServer(mode="subprocess") as srv:
        srv.set_response("data", b"pong")

        urls = [srv.get_url(f"/ping/{n}") for n in range(10)]
        assert fetch_all_at_once(urls) == [b"pong"] * 10

        srv.assert_history().has_length(10)
    print("ok")


if __name__ == "__main__":
    main()
