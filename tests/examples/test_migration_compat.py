"""Migration from test_server through the compatibility modules (``docs/migration.rst``)."""

from __future__ import annotations

import requests

import tserver
from tserver.compat.test_server import Response, TestServer
from tserver.compat.test_server_2017 import TestServer as TestServer2017
from tserver.matchers import has_header


def test_a_0_1_suite_with_only_its_import_changed() -> None:
    server = TestServer()  # was: from test_server import Response, TestServer
    server.start()
    try:
        server.add_response(Response(data=b"hello"), count=-1)
        server.add_response(Response(data=b"created", status=201), method="post")

        assert requests.post(server.get_url("/items"), timeout=5).status_code == 201
        assert requests.get(server.get_url("/items"), timeout=5).content == b"hello"

        request = server.get_request()
        assert request.method == "GET"
        assert request.headers.get("Host") == f"127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_a_2017_suite_with_only_its_import_changed() -> None:
    server = TestServer2017(engine="subprocess")  # was: from test_server import TestServer
    server.start()
    try:
        server.response["data"] = b"zorro"
        server.response_once["code"] = 503

        assert requests.get(server.get_url(), timeout=5).status_code == 503
        assert requests.get(server.get_url("/foo?bar=1"), timeout=5).content == b"zorro"

        assert server.request["path"] == "/foo"
        assert server.request["args"]["bar"] == "1"
    finally:
        server.stop()


def test_moving_to_the_native_api_one_call_at_a_time() -> None:
    server = TestServer()
    server.start()
    try:
        server.add_response(Response(data=b"old style"))
        requests.get(server.get_url(), headers={"X-Token": "t"}, timeout=5)

        # step 1: assert through the native server behind the compat one
        server.native.assert_request().has_path("/").matches(has_header("X-Token", "t"))
        # step 2: add responses natively (count=None for "always")
        server.native.add_response(tserver.Response(b"new style"), count=None)
        assert requests.get(server.get_url(), timeout=5).content == b"new style"
    finally:
        server.stop()
