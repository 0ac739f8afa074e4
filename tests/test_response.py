"""`Response`, `Cookie`, `Raw` and `UNSET` as values: validation and pickling."""

from __future__ import annotations

import itertools
import pickle
from datetime import datetime, timedelta, timezone

import pytest

import tserver
from tserver import UNSET, Cookie, Raw, Request, Response


def module_callback(request: Request) -> str:
    return f"echo {request.path}"


def test_public_names_are_importable_from_tserver() -> None:
    assert {"Response", "Cookie", "Raw", "UNSET"} <= set(tserver.__all__)
    assert tserver.UNSET is UNSET


class TestUnset:
    def test_is_falsy_and_prints_its_name(self) -> None:
        assert not UNSET
        assert repr(UNSET) == "UNSET"

    def test_pickles_to_the_same_object(self) -> None:
        assert pickle.loads(pickle.dumps(UNSET)) is UNSET


class TestResponseDefaults:
    def test_defaults(self) -> None:
        response = Response()
        assert response.data == b""
        assert response.status == 200
        assert response.headers == ()
        assert response.cookies == ()
        assert response.json is UNSET
        assert response.sleep == 0.0
        assert response.callback is None
        assert response.chunks is None
        assert response.chunk_sleep == 0.0
        assert response.fault is None
        assert response.reason is None
        assert response.content_type == "text/html; charset=utf-8"

    def test_str_data_is_sent_utf8(self) -> None:
        assert Response("café").data == "café".encode()
        assert Response("café").body == "café".encode()

    def test_json_sets_the_body_and_content_type(self) -> None:
        response = Response(json={"id": 7})
        assert response.body == b'{"id": 7}'
        assert response.content_type == "application/json"

    def test_json_none_sends_null(self) -> None:
        response = Response(json=None)
        assert response.json is None
        assert response.body == b"null"
        assert response.content_type == "application/json"

    def test_headers_from_mapping_or_pairs_keep_repeats_and_order(self) -> None:
        assert Response(headers={"X-A": "1", "X-B": "2"}).headers == (("X-A", "1"), ("X-B", "2"))
        pairs = [("X-A", "1"), ("X-A", "2"), ("x-a", "3")]
        assert Response(headers=pairs).headers == tuple(pairs)

    def test_header_values_may_be_bytes_or_numbers(self) -> None:
        assert Response(headers={"X-N": 5, "X-B": b"v"}).headers == (("X-N", "5"), ("X-B", "v"))  # type: ignore[arg-type]

    def test_cookies_from_mapping_pairs_and_cookie_objects(self) -> None:
        cookie = Cookie("c", "3", path="/")
        response = Response(cookies=[("a", "1"), cookie])
        assert response.cookies == (Cookie("a", "1"), cookie)
        assert Response(cookies={"a": "1"}).cookies == (Cookie("a", "1"),)

    def test_listed_chunks_become_a_tuple_of_bytes(self) -> None:
        response = Response(chunks=[b"a", "b"])
        assert response.chunks == (b"a", b"b")

    def test_an_iterator_of_chunks_is_not_consumed(self) -> None:
        endless = itertools.repeat(b"x")  # materialising it would never end
        response = Response(chunks=endless)
        assert response.chunks is endless
        assert next(endless) == b"x"


class TestResponseValidation:
    @pytest.mark.parametrize("status", [99, 600, -1, 0])
    def test_status_out_of_range(self, status: int) -> None:
        with pytest.raises(ValueError, match=rf"status {status} is out of range; expected 100-599"):
            Response(status=status)

    @pytest.mark.parametrize("status", ["200", 200.0, True, None])
    def test_status_of_wrong_type(self, status: object) -> None:
        with pytest.raises(TypeError, match=r"status .* must be an int from 100 to 599"):
            Response(status=status)  # type: ignore[arg-type]

    def test_json_and_data_exclude_each_other(self) -> None:
        with pytest.raises(ValueError, match="give data= or json=, not both"):
            Response(b"x", json={"a": 1})

    @pytest.mark.parametrize("kwargs", [{"data": b"x"}, {"json": [1]}])
    def test_chunks_exclude_data_and_json(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ValueError, match="chunks= excludes data= and json="):
            Response(chunks=[b"a"], **kwargs)  # type: ignore[arg-type]

    def test_chunks_must_be_an_iterable_not_bytes(self) -> None:
        with pytest.raises(TypeError, match=r"chunks .*must be an iterable of bytes"):
            Response(chunks=b"abc")  # type: ignore[arg-type]

    def test_json_that_does_not_serialise(self) -> None:
        with pytest.raises(ValueError, match="json value is not JSON-serialisable"):
            Response(json={"a": object()})

    def test_data_of_wrong_type(self) -> None:
        with pytest.raises(TypeError, match="data must be bytes or str, not int"):
            Response(data=5)  # type: ignore[arg-type]

    @pytest.mark.parametrize("name", ["sleep", "chunk_sleep"])
    def test_negative_sleep(self, name: str) -> None:
        with pytest.raises(ValueError, match=rf"{name} -1 must be >= 0 seconds"):
            Response(**{name: -1})  # type: ignore[arg-type]

    def test_sleep_of_wrong_type(self) -> None:
        with pytest.raises(TypeError, match="sleep '1' must be a number of seconds"):
            Response(sleep="1")  # type: ignore[arg-type]

    def test_unknown_fault(self) -> None:
        with pytest.raises(
            ValueError,
            match=r"fault 'explode'; expected one of 'close', .*'close_after', Raw\(b'\.\.\.'\), "
            r"GoAway\(\.\.\.\) or ResetStream\(\.\.\.\)",
        ):
            Response(fault="explode")

    def test_truncate_needs_a_body(self) -> None:
        with pytest.raises(ValueError, match="fault='truncate' needs a body"):
            Response(fault="truncate")
        assert Response(b"abcd", fault="truncate").fault == "truncate"

    @pytest.mark.parametrize(
        "headers",
        [{"Bad Name": "v"}, {"": "v"}, [("X-Ok", "a\r\nInjected: 1")]],
        ids=["space", "empty", "crlf"],
    )
    def test_bad_header_raises_value_error(self, headers: object) -> None:
        with pytest.raises(ValueError, match="header"):
            Response(headers=headers)  # type: ignore[arg-type]

    @pytest.mark.parametrize("headers", ["X-A: 1", [("X-A",)], [("X-A", None)]])
    def test_headers_of_wrong_shape_raise_type_error(self, headers: object) -> None:
        with pytest.raises(TypeError, match="header"):
            Response(headers=headers)  # type: ignore[arg-type]

    def test_cookies_of_wrong_shape(self) -> None:
        with pytest.raises(TypeError, match="cookies must be a mapping"):
            Response(cookies="a=1")  # type: ignore[arg-type]

    def test_callback_must_be_callable(self) -> None:
        with pytest.raises(TypeError, match="is not callable"):
            Response(callback="nope")  # type: ignore[arg-type]

    def test_reason_must_be_one_line(self) -> None:
        with pytest.raises(ValueError, match="reason"):
            Response(reason="OK\r\nX: y")


class TestResponseValue:
    def test_assigning_raises(self) -> None:
        response = Response(b"x")
        with pytest.raises(AttributeError):
            response.status = 500  # type: ignore[misc]
        assert response.status == 200

    def test_pickles_with_every_field(self) -> None:
        response = Response(
            status=201,
            json={"id": 7},
            headers=[("X-A", "1"), ("X-A", "2")],
            cookies=[Cookie("s", "v", httponly=True)],
            sleep=0.5,
            callback=module_callback,
            reason="Made",
        )
        clone = pickle.loads(pickle.dumps(response))
        assert clone == response
        assert clone.body == b'{"id": 7}'
        assert clone.callback is module_callback

    def test_pickles_chunks_and_raw_fault(self) -> None:
        for response in (
            Response(chunks=[b"a", b"b"], chunk_sleep=0.1),
            Response(fault=Raw(b"HTTP/1.1 200 OK\r\n")),
        ):
            assert pickle.loads(pickle.dumps(response)) == response

    def test_equality_by_value(self) -> None:
        assert Response(b"x", status=201) == Response("x", status=201)
        assert Response(b"x") != Response(b"y")

    def test_repr_shows_what_differs_from_the_default(self) -> None:
        assert repr(Response()) == "Response(status=200)"
        assert repr(Response(b"hi", status=404)) == "Response(status=404, data=b'hi')"
        assert repr(Response(json={"a": 1})) == "Response(status=200, json={'a': 1})"


class TestCookie:
    def test_plain_cookie(self) -> None:
        assert Cookie("a", "1").render() == "a=1"

    def test_every_attribute(self) -> None:
        cookie = Cookie(
            "session",
            "abc",
            path="/",
            domain="example.org",
            expires="Wed, 21 Oct 2015 07:28:00 GMT",
            max_age=3600,
            secure=True,
            httponly=True,
            samesite="Lax",
        )
        assert cookie.render() == (
            "session=abc; Path=/; Domain=example.org; "
            "Expires=Wed, 21 Oct 2015 07:28:00 GMT; Max-Age=3600; Secure; HttpOnly; "
            "SameSite=Lax"
        )

    def test_expires_as_datetime_is_rendered_as_an_http_date(self) -> None:
        naive = datetime(2015, 10, 21, 7, 28, 0)
        aware = datetime(2015, 10, 21, 9, 28, 0, tzinfo=timezone(timedelta(hours=2)))
        for when in (naive, aware):
            assert Cookie("a", "1", expires=when).render() == (
                "a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT"
            )

    @pytest.mark.parametrize(
        ("kwargs", "error", "message"),
        [
            (
                {"name": "bad name", "value": "1"},
                ValueError,
                "name 'bad name' is not an HTTP token",
            ),
            ({"name": "a", "value": "has space"}, ValueError, "value 'has space' must be a str"),
            ({"name": "a", "value": "x;y"}, ValueError, "must be a str without spaces"),
            ({"name": "a", "value": 1}, ValueError, "value 1 must be a str"),
            ({"name": "a", "value": "1", "path": "/;x"}, ValueError, "path '/;x'"),
            ({"name": "a", "value": "1", "expires": 5}, TypeError, "expires 5 must be a datetime"),
            (
                {"name": "a", "value": "1", "max_age": "60"},
                TypeError,
                "max_age '60' must be an int",
            ),
            (
                {"name": "a", "value": "1", "max_age": True},
                TypeError,
                "max_age True must be an int",
            ),
            (
                {"name": "a", "value": "1", "samesite": "lax"},
                ValueError,
                "samesite 'lax'; expected one of 'Strict', 'Lax', 'None'",
            ),
        ],
    )
    def test_validation(
        self, kwargs: dict[str, object], error: type[Exception], message: str
    ) -> None:
        with pytest.raises(error, match=message):
            Cookie(**kwargs)  # type: ignore[arg-type]

    def test_is_frozen_and_picklable(self) -> None:
        cookie = Cookie("a", "1", max_age=5)
        with pytest.raises(AttributeError):
            cookie.value = "2"  # type: ignore[misc]
        assert pickle.loads(pickle.dumps(cookie)) == cookie


class TestRaw:
    def test_holds_bytes(self) -> None:
        assert Raw(b"abc").data == b"abc"

    def test_refuses_str(self) -> None:
        with pytest.raises(TypeError, match="Raw: data must be bytes, not str"):
            Raw("abc")  # type: ignore[arg-type]

    def test_is_frozen_and_picklable(self) -> None:
        raw = Raw(b"abc")
        with pytest.raises(AttributeError):
            raw.data = b"x"  # type: ignore[misc]
        assert pickle.loads(pickle.dumps(raw)) == raw
