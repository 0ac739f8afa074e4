"""The human-readable rendering of requests and histories (no sockets)."""

from __future__ import annotations

import pytest
from helpers.requests import JSON, make_request

from tserver._formatting import (
    content_kind,
    format_body,
    format_history,
    format_request_full,
    format_request_line,
    format_size,
    pluralize,
)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (18, "18 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024 * 1024 - 1, "1024.0 KiB"),
        (2 * 1024 * 1024, "2.0 MiB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        (None, "data"),
        ("", "data"),
        ("application/json", "json"),
        ("Application/JSON; charset=utf-8", "json"),
        ("application/problem+json", "json"),
        ("application/x-www-form-urlencoded", "form"),
        ("multipart/form-data; boundary=xyz", "multipart"),
        ("text/plain; charset=latin-1", "text"),
        ("text/csv", "text"),
        ("text/html", "html"),
        ("application/xml", "xml"),
        ("application/atom+xml", "xml"),
        ("application/octet-stream", "binary"),
        ("application/pdf", "pdf"),
        ("image/png", "png"),
    ],
)
def test_content_kind(content_type: str | None, kind: str) -> None:
    assert content_kind(content_type) == kind


def test_pluralize() -> None:
    assert pluralize(0, "request") == "0 requests"
    assert pluralize(1, "request") == "1 request"
    assert pluralize(2, "request") == "2 requests"


def test_format_body_short_and_at_the_limit() -> None:
    assert format_body(b'{"id": 12}') == "b'{\"id\": 12}'"
    assert format_body(b"") == "b''"
    assert format_body(b"a" * 200) == repr(b"a" * 200)


def test_format_body_clips_after_the_limit_and_gives_the_length() -> None:
    assert format_body(b"a" * 201) == f"{b'a' * 200!r}... (201 bytes)"
    assert format_body(b"abcdef", limit=3) == "b'abc'... (6 bytes)"


def test_line_without_body() -> None:
    assert format_request_line(make_request("GET", "/health"), 0) == "    #0  GET /health"


def test_line_with_body_kind_and_size() -> None:
    req = make_request("POST", "/items?id=7", JSON, b'{"id": 12, "n": "x"}')
    assert format_request_line(req, 1) == "    #1  POST /items?id=7  json 20 B"


def test_line_marker() -> None:
    line = format_request_line(make_request("DELETE", "/items/3"), 12, marker=True)
    assert line == "  > #12  DELETE /items/3"


def test_line_widths_align_columns() -> None:
    req = make_request("GET", "/a", data=b"xy")
    line = format_request_line(req, 3, index_width=4, method_width=6, target_width=8)
    assert line == "    #3    GET    /a        data 2 B"


def test_line_shows_control_characters_escaped() -> None:
    req = make_request("GET", "/a\x1bb")
    assert format_request_line(req, 0) == "    #0  GET '/a\\x1bb'"


def test_line_clips_a_long_target() -> None:
    line = format_request_line(make_request("GET", "/" + "x" * 300), 0)
    assert line == "    #0  GET /" + "x" * 196 + "..."


def test_full_lists_headers_in_order_and_the_body() -> None:
    req = make_request(
        "POST",
        "/items",
        [*JSON, ("X-Token", "abd"), ("Accept", "a"), ("Accept", "b")],
        b'{"id": 12, "n": "x"}',
    )
    assert format_request_full(req, 2) == (
        "  > #2  POST /items  json 20 B\n"
        "        Content-Type: application/json\n"
        "        X-Token: abd\n"
        "        Accept: a\n"
        "        Accept: b\n"
        '        body: b\'{"id": 12, "n": "x"}\''
    )


def test_full_without_marker_and_empty_body() -> None:
    assert format_request_full(make_request(), 0, marker=False) == (
        "    #0  GET /\n        body: b''"
    )


def test_full_clips_a_long_body() -> None:
    text = format_request_full(make_request("PUT", "/blob", data=b"z" * 5000), 0)
    assert text.splitlines() == [
        "  > #0  PUT /blob  data 4.9 KiB",
        f"        body: {b'z' * 200!r}... (5000 bytes)",
    ]


def test_history_empty_names_the_server() -> None:
    assert (
        format_history([], url="http://127.0.0.1:8080/")
        == "no requests were recorded (server at http://127.0.0.1:8080/)"
    )
    assert format_history([]) == "no requests were recorded"


THREE = [
    make_request("GET", "/health"),
    make_request("POST", "/items?id=7", JSON, b'{"id": 12, "n": "y"}'),
    make_request("POST", "/items", [*JSON, ("X-Token", "abd")], b'{"id": 12, "n": "x"}'),
]


def test_history_marks_the_subject_and_shows_it_in_full() -> None:
    assert format_history(THREE, subject=2) == (
        "Recorded requests (oldest first):\n"
        "    #0  GET  /health\n"
        "    #1  POST /items?id=7  json 20 B\n"
        "  > #2  POST /items       json 20 B\n"
        "        Content-Type: application/json\n"
        "        X-Token: abd\n"
        '        body: b\'{"id": 12, "n": "x"}\''
    )


def test_history_negative_subject_counts_from_the_end() -> None:
    assert format_history(THREE, subject=-1) == format_history(THREE, subject=2)


@pytest.mark.parametrize("subject", [None, 3, -4])
def test_history_without_a_valid_subject_marks_nothing(subject: int | None) -> None:
    assert format_history(THREE, subject=subject) == (
        "Recorded requests (oldest first):\n"
        "    #0  GET  /health\n"
        "    #1  POST /items?id=7  json 20 B\n"
        "    #2  POST /items       json 20 B"
    )


MANY = [make_request("GET", f"/r{i}") for i in range(25)]


def test_history_cuts_after_the_limit() -> None:
    lines = format_history(MANY, subject=1).splitlines()
    assert lines[0] == "Recorded requests (oldest first):"
    assert lines[1] == "    #0   GET /r0"
    assert lines[2:4] == ["  > #1   GET /r1", "        body: b''"]
    assert lines[-2:] == ["    #19  GET /r19", "    ... and 5 more"]
    assert len(lines) == 1 + 20 + 1 + 1


def test_history_always_shows_a_subject_past_the_limit() -> None:
    lines = format_history(MANY, subject=22).splitlines()
    assert lines[-6:] == [
        "    #18  GET /r18",
        "    #19  GET /r19",
        "    ... 2 more",
        "  > #22  GET /r22",
        "        body: b''",
        "    ... and 2 more",
    ]


def test_history_subject_last_past_the_limit_has_no_tail() -> None:
    lines = format_history(MANY, subject=-1).splitlines()
    assert lines[-3:] == ["    ... 4 more", "  > #24  GET /r24", "        body: b''"]


def test_history_custom_limit() -> None:
    assert format_history(MANY, limit=2) == (
        "Recorded requests (oldest first):\n    #0  GET /r0\n    #1  GET /r1\n    ... and 23 more"
    )
    assert format_history(MANY, limit=0) == (
        "Recorded requests (oldest first):\n    ... and 25 more"
    )


def test_history_limit_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match=r"limit must be >= 0, got -1"):
        format_history(MANY, limit=-1)


def test_history_does_not_widen_columns_for_a_very_long_target() -> None:
    history = [make_request("GET", "/" + "x" * 60, data=b"1"), make_request(data=b"1")]
    lines = format_history(history).splitlines()
    assert lines[1] == "    #0  GET /" + "x" * 60 + "  data 1 B"
    assert lines[2] == "    #1  GET /" + " " * 39 + "  data 1 B"
