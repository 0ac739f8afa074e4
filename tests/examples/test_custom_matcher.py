"""Docs example (docs/matchers.rst): writing your own request matcher."""

from __future__ import annotations

from typing import Any
from urllib.error import HTTPError
from urllib.request import Request as UrlRequest
from urllib.request import urlopen

import pytest
from hamcrest import assert_that, is_not, starts_with
from hamcrest.core.base_matcher import BaseMatcher
from hamcrest.core.description import Description
from hamcrest.core.helpers.wrap_matcher import wrap_matcher
from hamcrest.core.matcher import Matcher

from tserver import Headers, Request, Response, TestServer

# -- the matcher --------------------------------------------------------------


class HasBearerToken(BaseMatcher[Request]):
    """A request whose Authorization header carries a matching bearer token."""

    def __init__(self, token: Matcher[Any]) -> None:
        self.token = token  # set once: the matcher keeps no state between calls

    @staticmethod
    def _token(item: object) -> str | None:
        """The bearer token of *item*, or None (not a request, no token)."""
        if not isinstance(item, Request):
            return None
        scheme, _, token = item.headers.get("Authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" else None

    def _matches(self, item: object) -> bool:
        token = self._token(item)
        return token is not None and self.token.matches(token)

    def describe_to(self, description: Description) -> None:
        description.append_text("a request with bearer token matching ")
        description.append_description_of(self.token)

    def describe_mismatch(self, item: object, mismatch_description: Description) -> None:
        if not isinstance(item, Request):
            mismatch_description.append_text("was ").append_description_of(item)
            mismatch_description.append_text(", not a Request")
            return
        token = self._token(item)
        if token is None:
            header = item.headers.get("Authorization")
            mismatch_description.append_text("header 'Authorization' was ")
            mismatch_description.append_description_of(header or "absent")
            return
        mismatch_description.append_text("bearer token ")
        self.token.describe_mismatch(token, mismatch_description)


def has_bearer_token(token: str | Matcher[Any]) -> Matcher[Request]:
    """Matches a request sent with ``Authorization: Bearer <token>``.

    Examples::

        has_bearer_token("s3cr3t")
        has_bearer_token(starts_with("eyJ"))
    """
    return HasBearerToken(wrap_matcher(token))


# -- using it -----------------------------------------------------------------


def test_with_assert_that() -> None:
    request = Request("GET", "/", headers=Headers([("Authorization", "Bearer abc")]))
    assert_that(request, has_bearer_token("abc"))
    assert_that(request, has_bearer_token(starts_with("a")))
    with pytest.raises(AssertionError) as failure:
        assert_that(request, has_bearer_token("xyz"))
    assert str(failure.value) == (
        "\nExpected: a request with bearer token matching 'xyz'\n     but: bearer token was 'abc'\n"
    )
    without = Request("GET", "/", headers=Headers([("Authorization", "Basic eA==")]))
    with pytest.raises(AssertionError, match="but: header 'Authorization' was 'Basic eA=='"):
        assert_that(without, has_bearer_token("abc"))


def test_with_the_server() -> None:
    with TestServer() as srv:
        # Any hamcrest matcher works as a rule's match=: refuse a wrong token.
        srv.add_response(Response(status=401), match=is_not(has_bearer_token("abc")))
        ok = UrlRequest(srv.get_url("/me"), headers={"Authorization": "Bearer abc"})
        with urlopen(ok) as response:
            assert response.status == 200
        bad = UrlRequest(srv.get_url("/me"), headers={"Authorization": "Bearer xyz"})
        with pytest.raises(HTTPError) as refused:
            urlopen(bad)
        refused.value.close()
        assert refused.value.code == 401

        srv.assert_request(0).matches(has_bearer_token("abc"))
        with pytest.raises(AssertionError) as failure:
            srv.assert_request(1).matches(has_bearer_token("abc"))
        assert str(failure.value).splitlines()[:3] == [
            "request #1 of 2 did not match",
            "Expected: a request with bearer token matching 'abc'",
            "     but: bearer token was 'xyz'",
        ]
