"""`Request` and `UploadedFile` as values: frozen, picklable, decoded on demand."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

import tserver
from tserver import Headers, MultiDict, Request, UploadedFile


def make_request(**overrides: object) -> Request:
    fields: dict[str, object] = {
        "method": "POST",
        "path": "/api/items",
        "query_string": "q=1&q=2&blank=",
        "args": MultiDict([("q", "1"), ("q", "2"), ("blank", "")]),
        "headers": Headers([("Content-Type", "application/json"), ("X-Token", "abc")]),
        "cookies": {"session": "s1"},
        "data": b'{"id": 12}',
        "form": MultiDict(),
        "files": {"f": [UploadedFile("f", "a.txt", "text/plain", b"hello")]},
        "client_ip": "127.0.0.1",
        "client_port": 50000,
        "version": "HTTP/1.1",
        "scheme": "http",
        "url": "http://127.0.0.1:8080/api/items?q=1&q=2&blank=",
        "received_at": 1700000000.5,
    }
    fields.update(overrides)
    return Request(**fields)  # type: ignore[arg-type]


def test_public_names_are_importable_from_tserver() -> None:
    assert tserver.Request is Request
    assert tserver.UploadedFile is UploadedFile
    assert {"Request", "UploadedFile", "Headers", "MultiDict"} <= set(tserver.__all__)


def test_only_method_and_path_are_required() -> None:
    request = Request("GET", "/")
    assert request.query_string == ""
    assert request.args == MultiDict()
    assert request.headers == Headers()
    assert request.cookies == {}
    assert request.data == b""
    assert request.form == MultiDict()
    assert request.files == {}
    assert request.version == "HTTP/1.1"
    assert request.scheme == "http"


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Request)])
def test_assigning_to_any_field_raises(name: str) -> None:
    request = make_request()
    with pytest.raises(AttributeError):
        setattr(request, name, "changed")
    assert getattr(request, name) == getattr(make_request(), name)


def test_pickles_with_every_field_equal() -> None:
    request = make_request()
    clone = pickle.loads(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
    assert clone == request
    assert type(clone.headers) is Headers
    assert clone.headers["x-token"] == "abc"
    assert clone.args.getlist("q") == ["1", "2"]
    assert clone.files["f"][0].data == b"hello"
    assert copy.deepcopy(request) == request


def test_compares_by_value() -> None:
    assert make_request() == make_request()
    assert make_request() != make_request(data=b"other")


def test_is_not_hashable_because_it_holds_dicts() -> None:
    with pytest.raises(TypeError):
        hash(make_request())


class TestText:
    def test_defaults_to_utf8(self) -> None:
        request = make_request(headers=Headers(), data="café".encode())
        assert request.text == "café"

    def test_uses_the_content_type_charset(self) -> None:
        request = make_request(
            headers=Headers([("Content-Type", "text/plain; charset=ISO-8859-1")]),
            data="café".encode("latin-1"),
        )
        assert request.text == "café"

    def test_quoted_charset(self) -> None:
        request = make_request(
            headers=Headers([("Content-Type", 'text/plain; charset="utf-16-le"')]),
            data="hé".encode("utf-16-le"),
        )
        assert request.text == "hé"

    def test_unknown_charset_falls_back_to_utf8(self) -> None:
        request = make_request(
            headers=Headers([("Content-Type", "text/plain; charset=no-such-codec")]),
            data="é".encode(),
        )
        assert request.text == "é"

    def test_undecodable_bytes_are_replaced(self) -> None:
        request = make_request(headers=Headers(), data=b"ok\xff")
        assert request.text == "ok\ufffd"


class TestJson:
    def test_parses_the_body(self) -> None:
        assert make_request().json() == {"id": 12}

    def test_decodes_by_charset_first(self) -> None:
        body = '{"name": "café"}'.encode("latin-1")
        request = make_request(
            headers=Headers([("Content-Type", "application/json; charset=latin-1")]),
            data=body,
        )
        assert request.json() == {"name": "café"}

    def test_not_json_raises_value_error_showing_the_body(self) -> None:
        request = make_request(data=b"not json at all")
        with pytest.raises(ValueError, match="not JSON") as info:
            request.json()
        assert "b'not json at all'" in str(info.value)
        assert "15 bytes" in str(info.value)

    def test_empty_body_is_not_json(self) -> None:
        with pytest.raises(ValueError, match="0 bytes"):
            make_request(data=b"").json()

    def test_long_body_is_cut_in_the_message(self) -> None:
        with pytest.raises(ValueError, match=r"\.\.\.$"):
            make_request(data=b"x" * 500).json()


def test_target_joins_path_and_query() -> None:
    assert make_request().target == "/api/items?q=1&q=2&blank="
    assert make_request(query_string="").target == "/api/items"


def test_repr_shows_method_target_and_body_size() -> None:
    assert repr(make_request()) == (
        "Request(POST '/api/items?q=1&q=2&blank=', data=<10 bytes application/json>)"
    )
    assert repr(Request("GET", "/")) == "Request(GET '/')"


class TestUploadedFile:
    def test_fields(self) -> None:
        upload = UploadedFile("doc", "a.txt", "text/plain", b"hello")
        assert (upload.name, upload.filename, upload.content_type, upload.data) == (
            "doc",
            "a.txt",
            "text/plain",
            b"hello",
        )

    def test_is_frozen(self) -> None:
        upload = UploadedFile("doc", "a.txt", "text/plain", b"hello")
        with pytest.raises(AttributeError):
            upload.data = b"other"  # type: ignore[misc]

    def test_pickles_and_compares_by_value(self) -> None:
        upload = UploadedFile("doc", "a.txt", "text/plain", b"hello")
        assert pickle.loads(pickle.dumps(upload)) == upload
        assert upload != UploadedFile("doc", "a.txt", "text/plain", b"other")

    def test_repr_shows_size_not_content(self) -> None:
        upload = UploadedFile("doc", "a.txt", "text/plain", b"x" * 1000)
        assert repr(upload) == (
            "UploadedFile(name='doc', filename='a.txt', content_type='text/plain', size=1000)"
        )
