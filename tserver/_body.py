"""Reading a request body: its text, its form fields and its files.

What a test reads of a body is computed here, from the bytes as received,
when the test first asks (`Request.form`, `Request.files`, `Request.text`):
recording a request costs the same whatever its body, and the event loop
never parses a form nobody reads.

- Text: the Content-Type's ``charset`` decodes the body when it names a
  text encoding; anything else (``base64``, ``zlib``, ``idna``, an unknown
  name) falls back to UTF-8.  Errors are replaced, never raised.
- ``application/x-www-form-urlencoded``: every field, blank values kept, as
  many as there are (Tornado stops at 1,000).
- ``multipart/form-data``: every part (Tornado stops at 100, and at part
  headers over 10 KiB); a part with a ``filename`` is a file.  A body that
  is not valid multipart gives what could be read before the problem.

Stdlib only.
"""

from __future__ import annotations

import codecs
import re
from email.message import Message
from email.utils import collapse_rfc2231_value
from urllib.parse import parse_qsl

__all__ = ["FilePart", "charset_of", "decode_text", "parse_form"]

_CHARSET_RE = re.compile(r"""charset\s*=\s*"?([^";\s]+)""", re.IGNORECASE)
#: Text encodings that cannot decode arbitrary bytes: never used for a body.
_NOT_FOR_BODIES = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape"})
_FILE_TYPE = "application/octet-stream"

#: A file part: field name, file name, Content-Type, bytes.
FilePart = tuple[str, str, str, bytes]


def charset_of(content_type: str | None, default: str = "utf-8") -> str:
    """The text encoding named by a Content-Type's ``charset``, else *default*.

    Only a codec that turns any bytes into text counts: ``base64``,
    ``rot13``, ``zlib``, ``idna`` and ``punycode`` do not, and give *default*.
    """
    if content_type:
        found = _CHARSET_RE.search(content_type)
        if found:
            try:
                name = codecs.lookup(found.group(1)).name
                b"".decode(name)  # LookupError: not a text encoding
            except (LookupError, ValueError, TypeError):
                return default
            if name not in _NOT_FOR_BODIES:
                return name
    return default


def decode_text(data: bytes, content_type: str | None) -> str:
    """*data* decoded by the charset of *content_type* (else UTF-8), errors replaced."""
    try:
        return data.decode(charset_of(content_type), "replace")
    except (LookupError, UnicodeError, ValueError, TypeError):  # a codec with its own mind
        return data.decode("utf-8", "replace")


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _parameter(header: str, name: str, value: str) -> str | None:
    """One parameter of a header value (``boundary``, ``name``), RFC 2231 forms included."""
    message = Message()
    message[header] = value
    found = message.get_param(name, header=header)
    if found is None:
        return None
    return collapse_rfc2231_value(found)


def parse_form(
    content_type: str | None, body: bytes
) -> tuple[list[tuple[str, str]], list[FilePart]]:
    """The form fields and files of *body*: urlencoded or multipart, else nothing."""
    if not body or not content_type:
        return [], []
    media = _media_type(content_type)
    if media == "application/x-www-form-urlencoded":
        return parse_qsl(decode_text(body, content_type), keep_blank_values=True), []
    if media == "multipart/form-data":
        boundary = _parameter("content-type", "boundary", content_type)
        if boundary:
            return _multipart(body, boundary.encode("latin-1", "replace"))
    return [], []


def _multipart(body: bytes, boundary: bytes) -> tuple[list[tuple[str, str]], list[FilePart]]:
    fields: list[tuple[str, str]] = []
    files: list[FilePart] = []
    # every delimiter starts a line: CRLF "--" boundary (the first may open the body)
    pieces = (b"\r\n" + body).split(b"\r\n--" + boundary)
    for piece in pieces[1:]:  # pieces[0] is the preamble
        if piece.startswith(b"--"):
            break  # the close delimiter
        head_end = piece.find(b"\r\n\r\n")
        if head_end == -1:
            break  # a truncated part: keep what came before it
        line_end = piece.find(b"\r\n")  # the rest of the delimiter line (whitespace)
        head = piece[line_end + 2 : head_end].decode("utf-8", "replace")
        content = piece[head_end + 4 :]
        headers: dict[str, str] = {}
        for line in head.split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        if _media_type(disposition) != "form-data":
            continue
        name = _parameter("content-disposition", "name", disposition)
        if not name:
            continue
        filename = _parameter("content-disposition", "filename", disposition)
        if filename:
            part_type = headers.get("content-type", _FILE_TYPE)
            files.append((name, filename, part_type, content))
        else:
            charset = charset_of(headers.get("content-type"))
            fields.append((name, decode_text(content, f"text/plain; charset={charset}")))
    return fields, files
