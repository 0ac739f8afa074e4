"""The compatibility modules (SPEC §15): test_server 0.1.x and the 2017 dict API.

Each behaviour is tested through real clients, in thread and subprocess
mode, against the compatibility module alone, as a suite written for
test_server would use it.
"""

from __future__ import annotations

import ast
import pathlib
import socket
from http.cookies import SimpleCookie
from urllib.request import urlopen

import pytest
import requests
from helpers import compat_callbacks as cb
from helpers.wire import read_all

import tserver
from tserver.compat import test_server as ts
from tserver.compat import test_server_2017 as old
from tserver.compat.test_server import (
    INTERNAL_ERROR_RESPONSE_STATUS,
    HttpHeaderStorage,
    InternalError,
    NoResponseError,
    Request,
    RequestNotProcessedError,
    Response,
    TestServer,
    WaitTimeoutError,
)


@pytest.fixture
def srv(mode: str) -> TestServer:
    server = TestServer(mode=mode)
    server.start()
    yield server  # type: ignore[misc]
    server.stop()


@pytest.fixture
def srv2017(mode: str) -> old.TestServer:
    server = old.TestServer(engine=mode)
    server.start()
    yield server  # type: ignore[misc]
    server.stop()


# -- test_server 0.1.x -----------------------------------------------------------------------


def test_the_names_suites_import_are_there() -> None:
    assert INTERNAL_ERROR_RESPONSE_STATUS == 555
    for error in (WaitTimeoutError, RequestNotProcessedError, NoResponseError, InternalError):
        assert issubclass(error, ts.TestServerError)
    assert issubclass(WaitTimeoutError, tserver.WaitTimeoutError)  # native excepts catch it too


def test_a_request_nothing_covers_gets_555(srv: TestServer) -> None:
    reply = requests.get(srv.get_url("/nothing"), timeout=10)
    assert (reply.status_code, reply.content) == (555, b"No response available")
    assert srv.request_is_done()


def test_add_response_with_positional_count_and_minus_one(srv: TestServer) -> None:
    srv.add_response(Response(data=b"twice"), 2)
    srv.add_response(Response(data=b"always"), count=-1)
    bodies = [requests.get(srv.get_url(), timeout=10).content for _ in range(4)]
    assert bodies == [b"twice", b"twice", b"always", b"always"]


def test_method_rules_go_before_any_method_rules(srv: TestServer) -> None:
    srv.add_response(Response(data=b"any"), count=-1)
    srv.add_response(Response(data=b"post"), method="post")
    assert requests.post(srv.get_url(), timeout=10).content == b"post"
    assert requests.post(srv.get_url(), timeout=10).content == b"any"  # used up
    assert requests.get(srv.get_url(), timeout=10).content == b"any"


def test_add_response_refuses_unknown_methods_and_counts() -> None:
    server = TestServer()
    with pytest.raises(ts.TestServerError, match="Invalid method: trace"):
        server.add_response(Response(), method="trace")
    with pytest.raises(ValueError, match="count 0"):
        server.add_response(Response(), count=0)


def test_every_answer_carries_listen_port_server_and_content_type(srv: TestServer) -> None:
    srv.add_response(Response(data=b"x", headers={"X-A": "1"}, status=203))
    reply = requests.get(srv.get_url(), timeout=10)
    assert reply.status_code == 203
    assert reply.headers["Listen-Port"] == str(srv.port)
    assert reply.headers["Server"] == f"TestServer/{tserver.__version__}"
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["X-A"] == "1"


def test_given_server_and_content_type_headers_win(srv: TestServer) -> None:
    srv.add_response(Response(headers=[("Server", "Mine/2"), ("Content-Type", "text/plain")]))
    reply = requests.get(srv.get_url(), timeout=10)
    assert (reply.headers["Server"], reply.headers["Content-Type"]) == ("Mine/2", "text/plain")


def test_a_dict_callback_answers(srv: TestServer) -> None:
    srv.add_response(Response(callback=cb.dict_answer))
    reply = requests.get(srv.get_url(), timeout=10)
    assert (reply.status_code, reply.content, reply.headers["X-Cb"]) == (201, b"from-cb", "yes")
    assert reply.headers["Listen-Port"] == str(srv.port)


@pytest.mark.parametrize(
    ("callback", "words"),
    [
        (cb.wrong_type, b"Callback response has invalid type key: nonsense"),
        (cb.not_a_dict, b"Callback response is not a dict"),
        (cb.str_data, b'Callback repsponse field "data" must be bytes'),
        (cb.raises, b"the callback broke"),
    ],
)
def test_callback_errors_answer_555_with_their_text(
    srv: TestServer, callback: object, words: bytes
) -> None:
    srv.add_response(Response(callback=callback))  # type: ignore[arg-type]
    reply = requests.get(srv.get_url(), timeout=10)
    assert (reply.status_code, reply.content) == (555, words)


def test_data_that_is_not_bytes_answers_555(srv: TestServer) -> None:
    srv.add_response(Response(data="text"))  # type: ignore[arg-type]
    reply = requests.get(srv.get_url(), timeout=10)
    assert (reply.status_code, reply.content) == (555, b'Response parameter "data" must be bytes')


def test_a_raw_callback_writes_its_bytes(srv: TestServer) -> None:
    srv.add_response(Response(raw_callback=cb.raw_answer))
    reply = requests.get(srv.get_url(), timeout=10)
    assert (reply.status_code, reply.reason, reply.content) == (299, "Custom", b"raw")
    srv.add_response(Response(raw_callback=cb.raw_not_bytes))
    assert requests.get(srv.get_url(), timeout=10).status_code == 555


def test_headers_http_forbids_are_written_raw(srv: TestServer) -> None:
    srv.add_response(Response(data=b"x", headers=[("X-Word", "фыва")]))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert "X-Word: фыва\r\n".encode() in reply
    assert reply.endswith(b"\r\n\r\nx")


def test_sleep_delays_the_answer(srv: TestServer) -> None:
    srv.add_response(Response(data=b"late", sleep=0.05))
    assert requests.get(srv.get_url(), timeout=10).content == b"late"


def test_the_request_in_test_servers_shape(srv: TestServer) -> None:
    srv.add_response(Response(data=b"ok"))
    requests.post(
        srv.get_url("/form?q=1&q=2&blank="),
        files={"doc": ("a.txt", b"file body", "text/plain")},
        data={"field": "value"},
        cookies={"session": "abc"},
        headers={"X-Token": "t1"},
        timeout=10,
    )
    req = srv.get_request()
    assert isinstance(req, Request)
    assert srv.request.path == req.path == "/form"
    assert req.method == "POST"
    assert req.args == {"q": "2"}  # the last value; blank values dropped
    assert req.client_ip == "127.0.0.1"
    assert isinstance(req.cookies, SimpleCookie)
    assert req.cookies["session"].value == "abc"
    assert req.files["doc"][0]["content"] == b"file body"
    assert req.files["doc"][0]["filename"] == "a.txt"
    assert req.files["doc"][0]["content_type"] == "text/plain"
    assert req.files["field"][0]["content"] == b"value"  # the form's other parts too
    assert req.headers.get("x-token") == "t1"
    assert b"file body" in req.data


def test_headers_storage_shapes() -> None:
    headers = HttpHeaderStorage([("X-A", "1"), ("x-a", "2"), ("X-B", "3")])
    assert headers.get("x-a") == "1"
    assert headers.getlist("X-A") == ["1", "2"]
    assert (headers.count_keys(), headers.count_items()) == (2, 3)
    assert "x-b" in headers
    with pytest.raises(KeyError):
        headers.get("absent")
    headers.set("X-A", "9")
    headers.remove("X-B")
    assert list(headers.items()) == [("X-A", "9")]
    assert repr(headers) == "[('X-A', '9')]"
    assert list(HttpHeaderStorage({"K": "v"}).items()) == [("K", "v")]


def test_get_request_before_any_request_raises(srv: TestServer) -> None:
    assert not srv.request_is_done()
    with pytest.raises(RequestNotProcessedError):
        srv.get_request()


def test_wait_request_returns_none_or_raises(srv: TestServer) -> None:
    with pytest.raises(WaitTimeoutError, match="No request processed"):
        srv.wait_request(0.05)
    srv.add_response(Response())
    urlopen(srv.get_url(), timeout=10).close()
    assert srv.wait_request(5) is None
    assert srv.num_req_processed == 1


def test_reset_forgets_requests_and_responses(srv: TestServer) -> None:
    srv.add_response(Response(data=b"x"), count=-1)
    requests.get(srv.get_url(), timeout=10)
    srv.reset()
    assert not srv.request_is_done()
    assert requests.get(srv.get_url(), timeout=10).status_code == 555


def test_get_url_and_start_daemon() -> None:
    server = TestServer()
    server.add_response(Response(data=b"before start"))  # kept until start()
    assert server.port is None
    server.start(daemon=False)
    try:
        assert server.get_url() == f"http://127.0.0.1:{server.port}"
        assert server.get_url("/a?b=1") == f"http://127.0.0.1:{server.port}/a?b=1"
        assert server.get_url("/x", port=1234) == "http://127.0.0.1:1234/x"
        assert requests.get(server.get_url(), timeout=10).content == b"before start"
        assert server.native.history[0].path == "/"  # the native server, for moving on
    finally:
        server.stop()


# -- the 2017 dict API -----------------------------------------------------------------------


def test_2017_request_defaults_before_any_request(srv2017: old.TestServer) -> None:
    assert dict(srv2017.request) == old.REQUEST_DEFAULTS
    assert srv2017.request["done"] is False


def test_2017_response_keys_and_the_request_after(srv2017: old.TestServer) -> None:
    srv2017.response["data"] = b"hello"
    srv2017.response["code"] = 203
    srv2017.response["headers"] = [("X-A", "1")]
    srv2017.response["cookies"] = [("sid", "42")]
    reply = requests.get(srv2017.get_url("/p?a=1&a=2"), cookies={"c": "v"}, timeout=10)
    assert (reply.status_code, reply.content) == (203, b"hello")
    assert reply.headers["X-A"] == "1"
    assert reply.headers["Set-Cookie"] == "sid=42"
    assert reply.headers["Listen-Port"] == str(srv2017.port)
    assert reply.headers["Server"] == f"TestServer/{tserver.__version__}"
    request = srv2017.request
    assert (request["path"], request["method"], request["done"]) == ("/p", "GET", True)
    assert request["args"] == {"a": "2"}
    assert request["cookies"]["c"]["value"] == "v"
    assert request["cookies"]["c"]["name"] == "c"
    assert request["headers"]["Host"] == f"127.0.0.1:{srv2017.port}"
    assert srv2017.response["data"] == b"hello"
    assert srv2017.response["sleep"] is None  # the defaults read back


def test_2017_method_keys_and_response_once(srv2017: old.TestServer) -> None:
    srv2017.response["data"] = b"any"
    srv2017.response["post.data"] = b"post"
    srv2017.response_once["code"] = 201
    srv2017.response_once["put.data"] = b"put once"
    assert requests.get(srv2017.get_url(), timeout=10).status_code == 201
    assert "code" not in srv2017.response_once  # used by that request
    assert requests.get(srv2017.get_url(), timeout=10).status_code == 200
    assert requests.post(srv2017.get_url(), timeout=10).content == b"post"
    assert srv2017.response_once["put.data"] == b"put once"  # waits for a PUT
    assert requests.put(srv2017.get_url(), timeout=10).content == b"put once"
    assert requests.put(srv2017.get_url(), timeout=10).content == b"any"


def test_2017_files_in_tornados_shape(srv2017: old.TestServer) -> None:
    requests.post(srv2017.get_url(), files={"up": ("f.bin", b"\x00\x01")}, timeout=10)
    upload = srv2017.request["files"]["up"][0]
    assert (upload["filename"], upload.body) == ("f.bin", b"\x00\x01")


def test_2017_handler_style_callbacks(srv2017: old.TestServer) -> None:
    srv2017.response["callback"] = cb.handler_style
    reply = requests.get(srv2017.get_url("/cb"), timeout=10)
    assert (reply.status_code, reply.content, reply.headers["X-Path"]) == (
        202,
        b"hello world",
        "/cb",
    )
    srv2017.response["callback"] = cb.handler_generator
    assert requests.get(srv2017.get_url(), timeout=10).content == b"before after"
    srv2017.response["callback"] = None  # back to the keys
    srv2017.response["data"] = b"plain"
    assert requests.get(srv2017.get_url(), timeout=10).content == b"plain"


def test_2017_reset_restores_the_defaults(srv2017: old.TestServer) -> None:
    srv2017.response["data"] = b"x"
    requests.get(srv2017.get_url(), timeout=10)
    srv2017.reset()
    assert srv2017.request["path"] is None
    assert requests.get(srv2017.get_url(), timeout=10).content == b""
    assert srv2017.response["data"] == ""


def test_2017_unknown_keys_are_refused() -> None:
    server = old.TestServer()
    with pytest.raises(old.TestServerError, match="unknown response key 'stauts'"):
        server.response["stauts"] = 200


def test_2017_generator_data_in_thread_mode() -> None:
    server = old.TestServer(port=0, address="127.0.0.1", engine="thread")
    server.start()
    try:
        server.response["data"] = (item for item in (b"one", b"two"))
        bodies = [requests.get(server.get_url(), timeout=10) for _ in range(3)]
        assert [(r.status_code, r.content) for r in bodies] == [
            (200, b"one"),
            (200, b"two"),
            (405, b""),
        ]
    finally:
        server.stop()


def test_2017_generator_data_is_refused_in_subprocess_mode() -> None:
    server = old.TestServer(engine="subprocess")
    server.start()
    try:
        with pytest.raises(ValueError, match="cannot cross to it"):
            server.response["data"] = (item for item in (b"one",))
        server.response["data"] = b"still served"  # the refused value was not kept
        assert requests.get(server.get_url(), timeout=10).content == b"still served"
    finally:
        server.stop()


def test_2017_get_url_and_engine() -> None:
    server = old.TestServer(engine="subprocess")
    assert server.native.mode == "subprocess"
    server.start()
    try:
        assert server.get_url() == f"http://127.0.0.1:{server.port}/"
        assert server.get_url("x") == f"http://127.0.0.1:{server.port}/x"
    finally:
        server.stop()


# -- built on the public API alone -----------------------------------------------------------


@pytest.mark.parametrize("module", [ts, old])
def test_the_compat_modules_use_tserver_public_names_only(module: object) -> None:
    source = pathlib.Path(module.__file__).read_text(encoding="utf-8")  # type: ignore[attr-defined]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tserver"):
            assert node.module == "tserver", f"{node.module} is not the public API"
        named = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        if named and node.value.id == "tserver":  # type: ignore[attr-defined]
            assert not node.attr.startswith("_") or node.attr == "__version__", node.attr


# -- the 2017 suite's behaviours, case by case -------------------------------------------------


def test_2017_once_headers_and_cookies_replace_the_defaults(srv2017: old.TestServer) -> None:
    srv2017.response["headers"] = [("foo", "bar")]
    srv2017.response["cookies"] = [("foo", "bar")]
    srv2017.response_once["headers"] = [("baz", "gaz")]
    srv2017.response_once["cookies"] = [("baz", "gaz")]
    once = requests.get(srv2017.get_url(), timeout=10)
    assert (once.headers.get("foo"), once.headers["baz"]) == (None, "gaz")
    assert once.headers["Set-Cookie"] == "baz=gaz"
    after = requests.get(srv2017.get_url(), timeout=10)
    assert (after.headers["foo"], after.headers.get("baz")) == ("bar", None)
    assert after.headers["Set-Cookie"] == "foo=bar"


def test_2017_a_nul_byte_in_a_header_is_sent_raw(srv2017: old.TestServer) -> None:
    srv2017.response_once["code"] = 302
    srv2017.response["data"] = "zzz"
    srv2017.response_once["headers"] = [("X-Nul", "a\x00b")]
    with socket.create_connection(("127.0.0.1", srv2017.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 302 Found\r\n")
    assert b"X-Nul: a\x00b\r\n" in reply
    assert reply.endswith(b"zzz")
    assert requests.get(srv2017.get_url(), timeout=10).content == b"zzz"  # once: used up


def test_2017_utf8_header_bytes_go_out_as_they_are(srv2017: old.TestServer) -> None:
    srv2017.response["headers"] = [("Location", (srv2017.get_url() + "фыва").encode("utf-8"))]
    reply = requests.get(srv2017.get_url(), allow_redirects=False, timeout=10)
    assert reply.raw.headers["Location"].encode("latin-1").decode("utf-8").endswith("/фыва")


def test_2017_request_charset_decodes_the_arguments(srv2017: old.TestServer) -> None:
    srv2017.request["charset"] = "cp1251"
    body = "конь".encode("cp1251")
    requests.post(srv2017.get_url("?who=%EA%EE%ED%FC"), data=body, timeout=10)
    assert srv2017.request["data"] == body
    assert srv2017.request["args"]["who"] == "конь"
    assert srv2017.request["charset"] == "cp1251"


def test_2017_wait_request(srv2017: old.TestServer) -> None:
    with pytest.raises(old.WaitTimeoutError):
        srv2017.wait_request(0.05)
    requests.options(srv2017.get_url(), timeout=10)
    assert srv2017.wait_request(5) is None
    assert srv2017.request["method"] == "OPTIONS"


def test_2017_content_type_and_server_can_be_given(srv2017: old.TestServer) -> None:
    assert requests.get(srv2017.get_url(), timeout=10).headers["Content-Type"] == (
        "text/html; charset=UTF-8"
    )
    srv2017.response["headers"] = (("Content-Type", "text/html; charset=koi8-r"), ("Server", "G"))
    reply = requests.get(srv2017.get_url(), timeout=10)
    assert (reply.headers["Content-Type"], reply.headers["Server"]) == (
        "text/html; charset=koi8-r",
        "G",
    )
    assert old.__version__ == ts.__version__ == tserver.__version__


# -- the difference table of docs/migration.rst, the native side -----------------------------


def test_difference_table_native_side() -> None:
    with tserver.TestServer() as native:
        assert requests.get(native.url, timeout=10).status_code == 200  # no 555: the default
        with pytest.raises(TypeError):
            native.add_response(tserver.Response(), 2)  # type: ignore[misc]  # count: keyword
        with pytest.raises(ValueError, match="count"):
            native.add_response(tserver.Response(), count=-1)
        with pytest.raises(ValueError, match=r"fault=Raw"):
            tserver.Response(headers={"X-Word": "фыва"})
        with pytest.raises(ValueError, match=r"fault=Raw"):
            tserver.Response(headers={"X-Nul": "a\x00b"})
        requests.post(native.url, files={"f": ("a.txt", b"x")}, data={"k": "v"}, timeout=10)
        request = native.request
        assert request.headers.get("Absent") is None
        assert request.files["f"][0].data == b"x"
        assert "k" not in request.files
        assert request.form["k"] == "v"
        assert request.cookies == {}


def test_every_method_is_answered_by_the_compat_rules(srv: TestServer) -> None:
    srv.add_response(Response(data=b"any"), count=-1)
    assert requests.request("PURGE", srv.get_url(), timeout=10).content == b"any"
    assert requests.head(srv.get_url(), timeout=10).status_code == 200
    assert srv.get_request().method == "HEAD"


def test_2017_handler_extras_sleep_and_mapping_views(srv2017: old.TestServer) -> None:
    srv2017.response["get.callback"] = cb.handler_extras
    srv2017.response["sleep"] = 0.01
    reply = requests.get(srv2017.get_url(), timeout=10)
    assert reply.json() == {"ok": True}
    assert reply.headers["X-Many"] == "1, 2"
    assert "X-Gone" not in reply.headers
    assert reply.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert "get.callback" in srv2017.response
    assert len(srv2017.response) == len(list(srv2017.response)) == len(old.RESPONSE_DEFAULTS) + 1
    del srv2017.response["get.callback"]
    assert requests.get(srv2017.get_url(), timeout=10).status_code == 200
    srv2017.response_once["code"] = 204
    assert len(srv2017.response_once) == 1
    srv2017.request["note"] = "mine"
    assert srv2017.request["note"] == "mine"
    del srv2017.request["note"]
    assert len(srv2017.request) == len(old.REQUEST_DEFAULTS)
