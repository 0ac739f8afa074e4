"""The matcher classes behind the factories of `tserver.matchers`.

Every class here is a module-level `~hamcrest.core.base_matcher.BaseMatcher`
so that pickle finds it: a matcher given as ``match=`` crosses to the child
process of subprocess mode.  None keeps state between calls.

`RequestMatcher` splits the hamcrest protocol in two so that `RequestWith`
can combine single-field matchers without repeating them: a subclass says
how its *fields* match, describe themselves ("header 'X-Token' matching
'abc'") and describe a mismatch ("header 'X-Token' was 'abd'"); the base
class adds "a request with " and turns anything that is not a `Request`
into a mismatch instead of an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from hamcrest.core.base_matcher import BaseMatcher
from hamcrest.core.core.isanything import IsAnything
from hamcrest.core.string_description import StringDescription

from ._formatting import BODY_PREVIEW, format_body
from ._headers import MultiDict
from ._request import Request, same_host

if TYPE_CHECKING:
    from hamcrest.core.description import Description
    from hamcrest.core.matcher import Matcher

    from ._request import UploadedFile

__all__ = [
    "ContainsInOrder",
    "HasField",
    "HasFile",
    "HasJson",
    "HasNamedValue",
    "HasNoHeader",
    "RequestMatcher",
    "RequestWith",
    "SameHost",
]

# Text about a long body (expected or received) is clipped to this length.
_CLIP_LIMIT = BODY_PREVIEW + 20
_JSON_PREVIEW = 60


def _append_mismatch(matcher: Matcher[Any], value: object, out: Description) -> None:
    """*matcher*'s mismatch text for *value*, clipped when the value is long."""
    inner = StringDescription()
    matcher.describe_mismatch(value, inner)
    text = str(inner)
    if isinstance(value, (bytes, str)) and len(value) > BODY_PREVIEW and len(text) > _CLIP_LIMIT:
        unit = "bytes" if isinstance(value, bytes) else "characters"
        text = f"{text[:_CLIP_LIMIT]}... ({len(value)} {unit})"
    out.append_text(text)


class RequestMatcher(BaseMatcher[Request]):
    """A matcher over one or more fields of a `Request`.

    Subclasses implement `matches_request`, `describe_fields` and
    `describe_field_mismatch`; an item that is not a `Request` never matches.
    """

    def _matches(self, item: object) -> bool:
        return isinstance(item, Request) and self.matches_request(item)

    def describe_to(self, description: Description) -> None:
        description.append_text("a request with ")
        self.describe_fields(description)

    def describe_mismatch(self, item: object, mismatch_description: Description) -> None:
        if isinstance(item, Request):
            self.describe_field_mismatch(item, mismatch_description)
        else:
            mismatch_description.append_text("was ").append_description_of(item)
            mismatch_description.append_text(", not a Request")

    def matches_request(self, request: Request) -> bool:
        """Whether *request* satisfies this matcher."""
        raise NotImplementedError

    def describe_fields(self, description: Description) -> None:
        """Describe the constraint, as it reads after "a request with "."""
        raise NotImplementedError

    def describe_field_mismatch(self, request: Request, mismatch_description: Description) -> None:
        """Name the failing field and its actual value."""
        raise NotImplementedError


class HasField(RequestMatcher):
    """One attribute of the request (``method``, ``path``, ``data``...).

    With *fold_case* the value is upper-cased before it is matched (the
    factory upper-cases the expected method), and the mismatch shows the
    value as sent.  With *clip* (the body fields) a long expected value is
    clipped in the description.
    """

    def __init__(
        self,
        label: str,
        attribute: str,
        matcher: Matcher[Any],
        *,
        fold_case: bool = False,
        clip: bool = False,
    ) -> None:
        self.label = label
        self.attribute = attribute
        self.matcher = matcher
        self.fold_case = fold_case
        self.clip = clip

    def _value(self, request: Request) -> Any:
        value = getattr(request, self.attribute)
        return value.upper() if self.fold_case else value

    def matches_request(self, request: Request) -> bool:
        return self.matcher.matches(self._value(request))

    def describe_fields(self, description: Description) -> None:
        description.append_text(f"{self.label} matching ")
        if self.clip:
            text = str(StringDescription().append_description_of(self.matcher))
            if len(text) > _CLIP_LIMIT:
                text = f"{text[:_CLIP_LIMIT]}..."
            description.append_text(text)
        else:
            description.append_description_of(self.matcher)

    def describe_field_mismatch(self, request: Request, mismatch_description: Description) -> None:
        mismatch_description.append_text(f"{self.label} ")
        if self.fold_case:
            mismatch_description.append_text("was ")
            mismatch_description.append_description_of(getattr(request, self.attribute))
        else:
            _append_mismatch(self.matcher, self._value(request), mismatch_description)


class HasNamedValue(RequestMatcher):
    """A named entry of ``args``, ``headers``, ``form`` or ``cookies``.

    It matches when *any* value of the name matches, so ``?q=1&q=2`` has an
    arg ``'q'`` matching ``'2'``; the mismatch lists every value.
    """

    def __init__(self, label: str, attribute: str, name: str, matcher: Matcher[Any]) -> None:
        self.label = label
        self.attribute = attribute
        self.name = name
        self.matcher = matcher

    def _values(self, request: Request) -> list[str]:
        found = getattr(request, self.attribute)
        if isinstance(found, MultiDict):
            return found.getlist(self.name)
        return [found[self.name]] if self.name in found else []

    def matches_request(self, request: Request) -> bool:
        return any(self.matcher.matches(value) for value in self._values(request))

    def describe_fields(self, description: Description) -> None:
        description.append_text(f"{self.label} ").append_description_of(self.name)
        if not isinstance(self.matcher, IsAnything):
            description.append_text(" matching ").append_description_of(self.matcher)

    def describe_field_mismatch(self, request: Request, mismatch_description: Description) -> None:
        values = self._values(request)
        mismatch_description.append_text(f"{self.label} ")
        mismatch_description.append_description_of(self.name)
        if not values:
            mismatch_description.append_text(" was absent")
        elif len(values) == 1:
            mismatch_description.append_text(" ")
            _append_mismatch(self.matcher, values[0], mismatch_description)
        else:
            mismatch_description.append_list(" had values [", ", ", "]", values)


class HasNoHeader(RequestMatcher):
    """The request has no header of this name (compared case-insensitively)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def matches_request(self, request: Request) -> bool:
        return self.name not in request.headers

    def describe_fields(self, description: Description) -> None:
        description.append_text("no header ").append_description_of(self.name)

    def describe_field_mismatch(self, request: Request, mismatch_description: Description) -> None:
        values = request.headers.getlist(self.name)
        mismatch_description.append_text("header ").append_description_of(self.name)
        if len(values) == 1:
            mismatch_description.append_text(" was present with value ")
            mismatch_description.append_description_of(values[0])
        else:
            mismatch_description.append_list(" was present with values [", ", ", "]", values)


class HasJson(RequestMatcher):
    """The body parses as JSON and the parsed value matches.

    A body that is not JSON is a mismatch, never an exception.
    """

    def __init__(self, matcher: Matcher[Any]) -> None:
        self.matcher = matcher

    @staticmethod
    def _parse(request: Request) -> tuple[bool, Any]:
        try:
            return True, request.json()
        except (ValueError, RecursionError):
            return False, None

    def matches_request(self, request: Request) -> bool:
        parsed, value = self._parse(request)
        return parsed and self.matcher.matches(value)

    def describe_fields(self, description: Description) -> None:
        description.append_text("JSON body")
        if not isinstance(self.matcher, IsAnything):
            description.append_text(" matching ").append_description_of(self.matcher)

    def describe_field_mismatch(self, request: Request, mismatch_description: Description) -> None:
        parsed, value = self._parse(request)
        if not parsed:
            preview = format_body(request.data, _JSON_PREVIEW)
            mismatch_description.append_text(f"body was not JSON: {preview}")
        else:
            mismatch_description.append_text("JSON body ")
            _append_mismatch(self.matcher, value, mismatch_description)


class HasFile(RequestMatcher):
    """A multipart file part of this field name whose details all match."""

    def __init__(
        self,
        name: str,
        filename: Matcher[Any],
        content_type: Matcher[Any],
        data: Matcher[Any],
    ) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.data = data

    def _checks(self) -> list[tuple[str, str, Matcher[Any]]]:
        checks = [
            ("filename", "filename", self.filename),
            ("content type", "content_type", self.content_type),
            ("data", "data", self.data),
        ]
        return [check for check in checks if not isinstance(check[2], IsAnything)]

    def _part_matches(self, part: UploadedFile) -> bool:
        return all(m.matches(getattr(part, attr)) for _, attr, m in self._checks())

    def matches_request(self, request: Request) -> bool:
        return any(self._part_matches(part) for part in request.files.get(self.name, ()))

    def describe_fields(self, description: Description) -> None:
        description.append_text("file ").append_description_of(self.name)
        for i, (label, _, matcher) in enumerate(self._checks()):
            description.append_text(" having " if i == 0 else ", ")
            description.append_text(f"{label} matching ").append_description_of(matcher)

    def _describe_part(self, part: UploadedFile, out: Description) -> None:
        failing = [c for c in self._checks() if not c[2].matches(getattr(part, c[1]))]
        for i, (label, attr, matcher) in enumerate(failing):
            out.append_text(f"{', ' if i else ''}{label} ")
            _append_mismatch(matcher, getattr(part, attr), out)

    def describe_field_mismatch(self, request: Request, mismatch_description: Description) -> None:
        parts = request.files.get(self.name, [])
        mismatch_description.append_text("file ").append_description_of(self.name)
        if not parts:
            mismatch_description.append_text(" was absent")
        elif len(parts) == 1:
            mismatch_description.append_text(": ")
            self._describe_part(parts[0], mismatch_description)
        else:
            mismatch_description.append_text(f" had {len(parts)} parts, none matching: ")
            for i, part in enumerate(parts):
                mismatch_description.append_text(f"{'; ' if i else ''}[{i}] ")
                self._describe_part(part, mismatch_description)


class RequestWith(RequestMatcher):
    """All of several field matchers, described and reported field by field.

    Only the constrained fields are described, and a mismatch names only
    the fields that failed.  With no fields it matches any `Request`.
    """

    def __init__(self, fields: Sequence[RequestMatcher]) -> None:
        self.fields = tuple(fields)

    def matches_request(self, request: Request) -> bool:
        return all(field.matches_request(request) for field in self.fields)

    def describe_to(self, description: Description) -> None:
        if self.fields:
            super().describe_to(description)
        else:
            description.append_text("a request")

    def describe_fields(self, description: Description) -> None:
        for i, field in enumerate(self.fields):
            if i:
                description.append_text(", ")
            field.describe_fields(description)

    def describe_field_mismatch(self, request: Request, mismatch_description: Description) -> None:
        failing = [f for f in self.fields if not f.matches_request(request)]
        for i, field in enumerate(failing):
            if i:
                mismatch_description.append_text(", ")
            field.describe_field_mismatch(request, mismatch_description)


class ContainsInOrder(BaseMatcher[Sequence[Request]]):
    """A sequence in which items matching each matcher appear in this order.

    Other items may come between; the earliest match of each matcher is
    taken, which finds an order whenever one exists.
    """

    def __init__(self, matchers: Sequence[Matcher[Any]]) -> None:
        self.matchers = tuple(matchers)

    @staticmethod
    def _is_sequence(item: object) -> TypeGuard[Sequence[Any]]:
        return isinstance(item, Sequence) and not isinstance(item, (str, bytes))

    def _scan(self, items: Sequence[Any]) -> list[int]:
        """The positions matched, one per matcher, until one finds nothing."""
        found: list[int] = []
        start = 0
        for matcher in self.matchers:
            for position in range(start, len(items)):
                if matcher.matches(items[position]):
                    found.append(position)
                    start = position + 1
                    break
            else:
                break
        return found

    def _matches(self, item: object) -> bool:
        return self._is_sequence(item) and len(self._scan(item)) == len(self.matchers)

    def describe_to(self, description: Description) -> None:
        description.append_list("requests in this order: ", ", then ", "", self.matchers)

    def describe_mismatch(self, item: object, mismatch_description: Description) -> None:
        if not self._is_sequence(item):
            mismatch_description.append_text("was ").append_description_of(item)
            mismatch_description.append_text(", not a sequence of requests")
            return
        found = self._scan(item)
        if len(found) == len(self.matchers):
            mismatch_description.append_text("was ").append_description_of(item)
        elif found:
            where = ", ".join(f"#{position}" for position in found)
            mismatch_description.append_text(
                f"{where} matched in order, then no request after #{found[-1]} matched "
            )
        else:
            mismatch_description.append_text("no request matched ")
        if len(found) < len(self.matchers):
            mismatch_description.append_description_of(self.matchers[len(found)])


class SameHost(BaseMatcher[str]):
    """A host (`~tserver.Request.host`) that is *host*: no case, any port unless *host* has one."""

    def __init__(self, host: str) -> None:
        self.host = host

    def _matches(self, item: object) -> bool:
        return isinstance(item, str) and same_host(self.host, item)

    def describe_to(self, description: Description) -> None:
        description.append_description_of(self.host)
        if ":" not in self.host.rpartition("]")[2]:
            description.append_text(" (any port)")
