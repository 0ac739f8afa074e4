"""Wrong arguments and edge cases of the public API, each with the error a user gets.

SPEC 7: wrong arguments raise `TypeError` or `ValueError` saying what was
given and what is accepted; these are the ones no other test reaches.
Most need no running server (the checks run in the caller's process).
"""

from __future__ import annotations

import time

import pytest
from helpers.clients import get

import tserver
from tserver import Cookie, Headers, MultiDict, NoRequestError, Raw, Response, TestServer


def test_dir_of_the_package_lists_its_lazy_test_server() -> None:
    names = dir(tserver)
    assert "TestServer" in names
    assert set(tserver.__all__) <= set(names)
    assert names == sorted(names)


# -- the constructor ------------------------------------------------------------------


def test_the_constructor_is_the_one_of_spec_2() -> None:
    import inspect

    parameters = inspect.signature(TestServer).parameters
    contract = {  # SPEC §2, in its order; spare= (issue 22) comes after
        "address": "127.0.0.1",
        "port": 0,
        "mode": "thread",
        "ssl": False,
        "strict": False,
        "history_limit": None,
        "max_body_size": 100 * 1024 * 1024,
        "startup_timeout": 10.0,
        "client_cert": None,
        "proxy": False,
        "proxy_auth": None,
        "http2": False,
        "spare": True,
    }
    assert {name: p.default for name, p in parameters.items()} == contract
    assert list(parameters) == list(contract)
    keyword_only = [n for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY]
    assert keyword_only == list(contract)[3:]


@pytest.mark.parametrize("address", [1, b"127.0.0.1", ""])
def test_address_must_be_a_non_empty_str(address: object) -> None:
    with pytest.raises(TypeError, match=r"TestServer: address .* must be a str such as"):
        TestServer(address=address)  # type: ignore[arg-type]


@pytest.mark.parametrize("port", [-1, 65536, True, "80"])
def test_port_must_be_an_int_in_range(port: object) -> None:
    with pytest.raises(ValueError, match=r"port .* must be an int from 0 \(any free port\)"):
        TestServer(port=port)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [-1, 1.5, True])
def test_max_body_size_must_be_an_int_from_0(size: object) -> None:
    with pytest.raises(ValueError, match=r"max_body_size .* must be an int >= 0"):
        TestServer(max_body_size=size)  # type: ignore[arg-type]


# -- waits and reads ---------------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["1", None, True])
def test_a_wait_timeout_must_be_a_number(timeout: object) -> None:
    server = TestServer()
    with pytest.raises(TypeError, match=r"wait_requests: timeout .* must be a number of seconds"):
        server.wait_request(timeout=timeout)  # type: ignore[arg-type]


def test_get_url_path_must_be_a_str() -> None:
    with pytest.raises(TypeError, match=r"get_url: path 5 must be a str"):
        TestServer().get_url(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("index", ["0", 1.0, False])
def test_request_indexes_must_be_ints(index: object) -> None:
    server = TestServer()
    with pytest.raises(TypeError, match=r"get_request: index .* must be an int"):
        server.get_request(index=index)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"assert_request: index .* must be an int"):
        server.assert_request(index=index)  # type: ignore[arg-type]


def test_assert_request_with_a_timeout_and_no_request_still_says_none_came() -> None:
    with TestServer() as server:
        with pytest.raises(NoRequestError, match="no requests were recorded"):
            server.assert_request(timeout=0.05)
        assert get(server, "/one")[0] == 200
        # the wait is for index 1 (a second request): it times out, then the text says so
        with pytest.raises(NoRequestError, match="1 request was recorded"):
            server.assert_request(index=1, timeout=0.05)


def test_no_request_text_says_how_many_the_history_limit_dropped() -> None:
    with TestServer(history_limit=1) as server:
        for path in ("/a", "/b", "/c"):
            assert get(server, path)[0] == 200
        with pytest.raises(NoRequestError) as info:
            server.get_request(index=-2)
    assert "3 requests were recorded, of which the history keeps the last 1" in str(info.value)


def test_a_with_block_on_a_started_server_keeps_it_and_stops_it() -> None:
    server = TestServer().start()
    port = server.port
    with server as same:
        assert same is server
        assert server.running
        assert server.port == port
        assert get(server)[0] == 200
    assert not server.running


# -- setting responses -------------------------------------------------------------------


def test_set_response_key_must_be_a_str() -> None:
    with pytest.raises(TypeError, match=r"set_response: key 5 must be a str; expected one of"):
        TestServer().set_response(5, b"x")  # type: ignore[arg-type]


def test_set_response_callback_none_is_refused() -> None:
    with pytest.raises(ValueError, match=r"key 'callback': None is not callable"):
        TestServer().set_response("callback", None)


@pytest.mark.parametrize(
    ("method", "error", "text"),
    [
        (5, TypeError, r"method 5 must be a method name such as 'GET' or a list of them"),
        ([5], TypeError, r"method 5 must be a str such as 'POST'"),
        (["GET", "NOT A TOKEN"], ValueError, r"method 'NOT A TOKEN' is not an HTTP method"),
        ([], ValueError, r"method list is empty; give None for any method"),
    ],
)
def test_add_response_method_must_be_a_name_or_a_list_of_names(
    method: object, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        TestServer().add_response(Response(), method=method)  # type: ignore[arg-type]


def test_add_response_accepts_a_tuple_of_methods() -> None:
    with TestServer() as server:
        server.add_response(Response(b"read"), method=("get", "HEAD"), count=None)
        assert get(server) == (200, b"read")


def test_a_header_value_that_is_not_latin_1_is_refused_with_a_pointer_to_raw() -> None:
    with pytest.raises(ValueError, match=r"header 'X-Price' value '10 €' is not Latin-1") as info:
        Response(headers={"X-Price": "10 €"})
    assert "Raw(" in str(info.value)


def test_headers_may_be_a_multidict() -> None:
    given = MultiDict([("X-One", "1"), ("X-Other", "o")])
    assert Response(headers=given).headers == (("X-One", "1"), ("X-Other", "o"))


def test_headers_from_a_multidict_or_headers_keep_repeated_names() -> None:
    given = MultiDict([("X-Rep", "1"), ("X-Other", "o"), ("X-Rep", "2")])
    assert Response(headers=given).headers == (("X-Rep", "1"), ("X-Other", "o"), ("X-Rep", "2"))
    echoed = Headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])  # say, a request's own
    assert Response(headers=echoed).headers == (("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"))


def test_cookies_of_a_wrong_shape_are_refused_naming_the_item() -> None:
    with pytest.raises(TypeError, match=r"got item \('a', 'b', 'c'\)"):
        Response(cookies=[("a", "b", "c")])  # type: ignore[list-item]
    assert Response(cookies=[Cookie("a", "1"), ["b", "2"]]).cookies == (  # type: ignore[list-item]
        Cookie("a", "1"),
        Cookie("b", "2"),
    )


def test_a_response_repr_shows_its_fault_and_reason() -> None:
    assert repr(Response(fault="close")) == "Response(status=200, fault='close')"
    assert "fault=Raw(" in repr(Response(fault=Raw(b"HTTP/1.1 200 OK\r\n\r\n")))
    assert repr(Response(status=299, reason="Fine")) == "Response(status=299, reason='Fine')"


def test_a_response_returned_by_a_callback_waits_its_own_sleep() -> None:
    with TestServer() as server:
        server.set_response("callback", lambda request: Response(b"late", status=202, sleep=0.05))
        started = time.monotonic()
        assert get(server) == (202, b"late")
        assert time.monotonic() - started >= 0.05
