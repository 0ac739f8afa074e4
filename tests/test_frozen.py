"""The public value classes: frozen dataclasses whose methods are written by hand.

`tserver._frozen` keeps them dataclasses without `dataclass` generating
code (start-up time of subprocess mode's child); these tests pin that every
dataclass behaviour users may rely on is still there.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import datetime
from typing import Any

import pytest

from tserver import Cookie, Headers, MultiDict, Raw, Request, Response, UploadedFile

VALUES: list[object] = [
    Request("GET", "/a", "q=1", MultiDict([("q", "1")]), Headers([("X-A", "1")]), {"s": "v"}),
    UploadedFile("f", "a.txt", "text/plain", b"hello"),
    Cookie("session", "abc", path="/", expires=datetime(2030, 1, 1), samesite="Lax"),
    Raw(b"HTTP/1.1 200 OK\r\n"),
    Response(b"body", status=201, headers={"X-B": "2"}, cookies={"c": "d"}),
]
IDS = [type(v).__name__ for v in VALUES]


@pytest.mark.parametrize("value", VALUES, ids=IDS)
def test_is_a_dataclass_that_refuses_assignment(value: object) -> None:
    assert dataclasses.is_dataclass(value)
    name = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError, match=f"cannot assign to field '{name}'"):
        setattr(value, name, "changed")
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field"):
        delattr(value, name)


@pytest.mark.parametrize("value", VALUES, ids=IDS)
def test_copies_compare_equal_and_other_types_do_not(value: object) -> None:
    for twin in (pickle.loads(pickle.dumps(value)), copy.copy(value), copy.deepcopy(value)):
        assert twin == value
        assert twin is not value
    assert value != object()
    assert value != dataclasses.astuple(value)  # type: ignore[call-overload]


@pytest.mark.parametrize("value", VALUES, ids=IDS)
def test_replace_builds_through_init(value: object) -> None:
    first = dataclasses.fields(value)[0]  # type: ignore[arg-type]
    changed = dataclasses.replace(value, **{first.name: getattr(value, first.name)})  # type: ignore[type-var]
    assert changed == value


def test_a_differing_field_makes_values_unequal() -> None:
    assert Cookie("a", "1") != Cookie("a", "2")
    assert Raw(b"x") != Raw(b"y")
    assert Request("GET", "/") != Request("POST", "/")
    assert Response(status=200) != Response(status=204)


def test_replace_validates_like_the_constructor() -> None:
    with pytest.raises(ValueError, match="samesite 'Sometimes'"):
        dataclasses.replace(Cookie("a", "1"), samesite="Sometimes")
    with pytest.raises(TypeError, match="Raw: data must be bytes"):
        dataclasses.replace(Raw(b"x"), data="text")
    with pytest.raises(ValueError, match="out of range"):
        dataclasses.replace(Response(), status=999)


def test_hashable_where_the_fields_are_and_request_never() -> None:
    assert hash(Cookie("a", "1")) == hash(Cookie("a", "1"))
    assert len({Raw(b"x"), Raw(b"x"), Raw(b"y")}) == 2
    with pytest.raises(TypeError, match="unhashable"):
        hash(Request("GET", "/"))


def test_reprs_are_those_of_a_dataclass_or_their_own() -> None:
    assert repr(Raw(b"x")) == "Raw(data=b'x')"
    assert repr(Cookie("a", "1")) == (
        "Cookie(name='a', value='1', path=None, domain=None, expires=None, "
        "max_age=None, secure=False, httponly=False, samesite=None)"
    )
    assert repr(Request("GET", "/x")) == "Request(GET '/x')"


def test_request_defaults_are_empty_and_the_mutable_ones_not_shared() -> None:
    first, second = Request("GET", "/"), Request("GET", "/")
    assert (first.args, first.headers, first.form) == (MultiDict(), Headers(), MultiDict())
    assert first.cookies == {}
    assert first.files == {}
    assert first.cookies is not second.cookies
    assert first.files is not second.files
    assert [f.name for f in dataclasses.fields(Request)][:3] == ["method", "path", "query_string"]
    assert dataclasses.asdict(Request("GET", "/"))["client_ip"] == "127.0.0.1"


def test_request_has_no_instance_dict() -> None:
    assert not hasattr(Request("GET", "/"), "__dict__")


def test_a_frozen_dataclass_may_subclass_them_and_keeps_their_checks() -> None:
    @dataclasses.dataclass(frozen=True)
    class TaggedCookie(Cookie):
        tag: str = "t"

    cookie = TaggedCookie("a", "1", tag="mine")
    assert (cookie.name, cookie.value, cookie.tag) == ("a", "1", "mine")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cookie.tag = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="not an HTTP token"):
        TaggedCookie("bad name", "1")
    for cls in (Cookie, Raw, Response, Request, UploadedFile):
        params: Any = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert (params.frozen, params.eq) == (True, True), cls


def test_one_field_values_hash_like_a_dataclass() -> None:
    assert hash(Raw(b"x")) == hash((b"x",))
