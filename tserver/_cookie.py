"""`Cookie`: one ``Set-Cookie`` header of a response, checked when it is made."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from email.utils import format_datetime

from ._frozen import Frozen, assign, frozen_value

__all__ = ["TOKEN_RE", "Cookie", "normalize_cookies"]

#: An HTTP token (RFC 9110): what a cookie, header or method name must be.
TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SAMESITE = ("Strict", "Lax", "None")


@frozen_value()
class Cookie(Frozen):
    """One cookie to set, rendered as one ``Set-Cookie`` header.

    Everything after the value is given by keyword.

    ``expires`` is a `~datetime.datetime` (naive means UTC) or an HTTP-date
    string; ``max_age`` a number of seconds; ``samesite`` one of ``"Strict"``,
    ``"Lax"``, ``"None"``.

    Example: the value of its ``Set-Cookie`` header::

        >>> from tserver import Cookie
        >>> Cookie("session", "abc", path="/", httponly=True, samesite="Lax").render()
        'session=abc; Path=/; HttpOnly; SameSite=Lax'
    """

    name: str
    value: str
    path: str | None = None
    domain: str | None = None
    expires: datetime | str | None = None
    max_age: int | None = None
    secure: bool = False
    httponly: bool = False
    samesite: str | None = None

    def __init__(
        self,
        name: str,
        value: str,
        *,
        path: str | None = None,
        domain: str | None = None,
        expires: datetime | str | None = None,
        max_age: int | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = None,
    ) -> None:
        assign(
            self,
            name=name,
            value=value,
            path=path,
            domain=domain,
            expires=expires,
            max_age=max_age,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )
        self._validate()

    def __repr__(self) -> str:
        return self._fields_repr()

    def __post_init__(self) -> None:
        # what a dataclass subclass's generated __init__ calls
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.name, str) or not TOKEN_RE.match(self.name):
            raise ValueError(f"Cookie: name {self.name!r} is not an HTTP token")
        if not isinstance(self.value, str) or re.search(r'[\x00-\x20";\\,\x7f]', self.value):
            raise ValueError(
                f"Cookie: value {self.value!r} must be a str without spaces, "
                "quotes, commas, semicolons, backslashes or control characters"
            )
        for attr in ("path", "domain"):
            got = getattr(self, attr)
            if got is not None and (not isinstance(got, str) or ";" in got):
                raise ValueError(f"Cookie: {attr} {got!r} must be a str without ';'")
        if self.expires is not None and not isinstance(self.expires, (datetime, str)):
            raise TypeError(
                f"Cookie: expires {self.expires!r} must be a datetime or an HTTP-date string"
            )
        if self.max_age is not None and (
            isinstance(self.max_age, bool) or not isinstance(self.max_age, int)
        ):
            raise TypeError(f"Cookie: max_age {self.max_age!r} must be an int")
        if self.samesite is not None and self.samesite not in _SAMESITE:
            raise ValueError(
                f"Cookie: samesite {self.samesite!r}; expected one of 'Strict', 'Lax', 'None'"
            )

    def render(self) -> str:
        """The value of the ``Set-Cookie`` header for this cookie."""
        parts = [f"{self.name}={self.value}"]
        if self.path is not None:
            parts.append(f"Path={self.path}")
        if self.domain is not None:
            parts.append(f"Domain={self.domain}")
        if self.expires is not None:
            if isinstance(self.expires, datetime):
                when = self.expires
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                when = when.astimezone(timezone.utc)  # usegmt needs UTC
                parts.append(f"Expires={format_datetime(when, usegmt=True)}")
            else:
                parts.append(f"Expires={self.expires}")
        if self.max_age is not None:
            parts.append(f"Max-Age={self.max_age}")
        if self.secure:
            parts.append("Secure")
        if self.httponly:
            parts.append("HttpOnly")
        if self.samesite is not None:
            parts.append(f"SameSite={self.samesite}")
        return "; ".join(parts)


def normalize_cookies(where: str, cookies: object) -> tuple[Cookie, ...]:
    """Cookies as a tuple of `Cookie`, from a mapping, pairs or `Cookie` objects."""
    if cookies is None:
        return ()
    if isinstance(cookies, Cookie):
        return (cookies,)
    if isinstance(cookies, Mapping):
        items: Iterable[object] = cookies.items()
    elif isinstance(cookies, (str, bytes)) or not isinstance(cookies, Iterable):
        raise TypeError(
            f"{where}: cookies must be a mapping, a list of (name, value) pairs "
            f"or Cookie objects, not {cookies!r}"
        )
    else:
        items = cookies
    out = []
    for item in items:
        if isinstance(item, Cookie):
            out.append(item)
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            out.append(Cookie(item[0], item[1]))
        else:
            raise TypeError(
                f"{where}: cookies must be a mapping, a list of (name, value) "
                f"pairs or Cookie objects; got item {item!r}"
            )
    return tuple(out)
