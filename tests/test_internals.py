"""Unit tests of internals whose edge cases are not reachable, or not natural, from outside.

Plain objects, no sockets: the shared ``__init__`` of `tserver._frozen`, the
header-line splitter of `tserver._head` (obs-fold, which the installed
Tornado refuses before it gets there), the multipart reader of
`tserver._body`, `tserver._waiting.Pending` after its waiter has gone, the
described rules a child sends back (`tserver._recorder`), and the
pickling and framing limits of `tserver._errors` and `tserver._wire`.
"""

from __future__ import annotations

import pickle
import sys
from dataclasses import field, fields
from typing import Any

import pytest
from hamcrest import equal_to

from tserver import Headers, MultiDict, Request, Response, ServerDiedError
from tserver._body import parse_form
from tserver._commands import AddRule, RecorderState, Restore, Snapshot
from tserver._frozen import Frozen, assign, frozen_value
from tserver._head import header_lines
from tserver._recorder import Recorder
from tserver._waiting import Pending, _in_trio
from tserver._wire import MAX_FRAME, FrameError, frame_header

# -- _frozen: the shared __init__ ---------------------------------------------------


@frozen_value()
class _Point(Frozen):
    """A value class without an ``__init__`` of its own: it gets the shared one."""

    x: int
    tags: list[str] = field(default_factory=list)
    label: str = "p"


@frozen_value()
class _Checked(Frozen):
    """A value class whose ``__post_init__`` validates and normalises."""

    name: str

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name must not be empty")
        assign(self, name=self.name.lower())


def test_shared_init_binds_by_position_and_keyword_and_applies_defaults() -> None:
    assert _Point(1) == _Point(x=1, tags=[], label="p")
    assert _Point(1, ["a"], label="q").label == "q"
    # a default_factory makes a new value for every instance
    first, second = _Point(1), _Point(2)
    assert first.tags == []
    assert first.tags is not second.tags
    assert [f.name for f in fields(_Point)] == ["x", "tags", "label"]


def test_shared_init_too_many_positional_arguments() -> None:
    with pytest.raises(TypeError, match=r"^_Point\(\) takes 3 arguments but 4 were given$"):
        _Point(1, [], "p", "extra")  # type: ignore[call-arg]


def test_shared_init_missing_argument() -> None:
    with pytest.raises(TypeError, match=r"^_Point\(\) missing the argument 'x'$"):
        _Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="missing the argument 'x'"):
        _Point(label="q")  # type: ignore[call-arg]


def test_shared_init_unknown_keywords_are_named_sorted() -> None:
    with pytest.raises(TypeError, match=r"^_Point\(\) got unexpected arguments 'colour', 'size'$"):
        _Point(1, size=2, colour="red")  # type: ignore[call-arg]


def test_shared_init_a_value_given_twice() -> None:
    with pytest.raises(TypeError, match=r"^_Point\(\) got several values for 'x'$"):
        _Point(1, x=2)  # type: ignore[misc]
    # given twice wins over unknown: the more likely mistake is named
    with pytest.raises(TypeError, match=r"several values for 'x'$"):
        _Point(1, x=2, other=3)  # type: ignore[misc, call-arg]


def test_shared_init_runs_post_init() -> None:
    assert _Checked("MiXeD").name == "mixed"
    assert _Checked(name="A") == _Checked("a")
    with pytest.raises(ValueError, match="must not be empty"):
        _Checked("")


# -- _head: header lines as received ------------------------------------------------


def test_an_obs_fold_line_continues_the_value_before_it() -> None:
    head = b"GET / HTTP/1.1\r\nX-A: one\r\n  two\r\n\tthree\r\nX-B: b\r\n\r\n"
    assert header_lines(head) == (("X-A", "one two three"), ("X-B", "b"))


def test_a_fold_line_before_any_field_is_dropped() -> None:
    head = b"GET / HTTP/1.1\r\n  stray\r\nX-B: b\r\n\r\n"
    assert header_lines(head) == (("X-B", "b"),)


def test_bare_lf_line_endings_split_too() -> None:
    assert header_lines(b"GET / HTTP/1.1\nX-A: 1\n\n") == (("X-A", "1"),)


# -- _body: multipart edge cases ------------------------------------------------------


def _form(content_type: str | None, body: bytes) -> Request:
    headers = Headers([] if content_type is None else [("Content-Type", content_type)])
    return Request("POST", "/upload", headers=headers, data=body)


def _part(disposition: str, content: bytes, *, boundary: bytes = b"b", extra: bytes = b"") -> bytes:
    return (
        b"--" + boundary + b"\r\nContent-Disposition: " + disposition.encode() + b"\r\n"
        + extra + b"\r\n" + content + b"\r\n"
    )  # fmt: skip


def test_multipart_without_a_boundary_has_no_fields() -> None:
    body = _part('form-data; name="a"', b"1") + b"--b--\r\n"
    request = _form("multipart/form-data", body)
    assert len(request.form) == 0
    assert request.files == {}


def test_no_body_or_no_content_type_has_no_fields() -> None:
    assert parse_form("application/x-www-form-urlencoded", b"") == ([], [])
    assert parse_form(None, b"a=1") == ([], [])


def test_a_truncated_part_keeps_the_parts_before_it() -> None:
    body = (
        _part('form-data; name="a"', b"1")
        + b'--b\r\nContent-Disposition: form-data; name="b"\r\n'  # its head never ends
    )
    request = _form("multipart/form-data; boundary=b", body)
    assert request.form.multi_items() == [("a", "1")]


def test_a_body_without_its_close_delimiter_keeps_every_whole_part() -> None:
    body = _part('form-data; name="a"', b"1") + _part('form-data; name="b"', b"2")
    assert _form("multipart/form-data; boundary=b", body).form.multi_items() == [
        ("a", "1"),
        ("b", "2\r\n"),  # no delimiter after it: the last part keeps its line end
    ]


def test_parts_that_are_not_named_form_data_are_skipped() -> None:
    body = (
        _part('attachment; name="x"', b"not form-data")
        + _part("form-data", b"no name")
        + _part('form-data; name=""', b"empty name")
        + _part('form-data; name="kept"', b"yes")
        + b"--b--\r\n"
    )
    request = _form("multipart/form-data; boundary=b", body)
    assert request.form.multi_items() == [("kept", "yes")]
    assert request.files == {}


def test_rfc_2231_filename_and_the_default_file_type() -> None:
    body = (
        _part("form-data; name=\"doc\"; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.txt", b"hi")
        + b"--b--\r\n"
    )
    files = _form("multipart/form-data; boundary=b", body).files
    (upload,) = files["doc"]
    assert upload.filename == "naïve résumé.txt"
    assert upload.content_type == "application/octet-stream"
    assert upload.data == b"hi"


def test_a_quoted_boundary_and_a_part_charset() -> None:
    body = (
        _part(
            'form-data; name="t"',
            "café".encode("latin-1"),
            boundary=b"x y",
            extra=b"Content-Type: text/plain; charset=latin-1\r\n",
        )
        + b"--x y--\r\n"
    )
    request = _form('multipart/form-data; boundary="x y"', body)
    assert request.form["t"] == "café"


# -- _waiting: a Pending completes once -------------------------------------------------


def test_a_pending_completes_once_and_says_so() -> None:
    pending: Pending[int] = Pending()
    assert pending.set_result(1) is True
    assert pending.set_result(2) is False
    assert pending.set_error(ValueError("late")) is False
    assert pending.result() == 1


def test_a_pending_completed_after_its_trio_run_ended_raises_nothing() -> None:
    trio = pytest.importorskip("trio")
    pending: Pending[str] = Pending()

    async def wait_briefly() -> bool:
        return await pending.wait_async(0.01)

    assert trio.run(wait_briefly) is False  # timed out; its wake-up stays registered
    assert pending.set_result("late") is True  # the wake-up finds the run finished
    assert pending.result() == "late"


def test_outside_any_event_loop_no_trio_run_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("trio")
    assert _in_trio() is False  # trio is imported, but no run is active
    monkeypatch.delitem(sys.modules, "trio")
    assert _in_trio() is False  # trio not even imported


# -- _recorder: rules a child could not send back ------------------------------------------


class _Unpicklable:
    """A stand-in for a matcher that holds a lock: its pickling fails."""

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle '_thread.lock' object")


def _described_rule() -> Any:
    recorder = Recorder(strict=True)
    recorder.apply(
        AddRule(
            Response(b"x", callback=lambda request: b"from the callback"),
            count=2,
            path=equal_to("/a"),
            match=equal_to(Request("GET", "/a")),
            priority=3,
        )
    )
    (rule,) = recorder.apply(Snapshot()).rules
    assert repr(rule).startswith("<Rule #0: path '/a', match <Request(")
    return rule.described()


def test_a_described_rule_pickles_keeps_its_counts_and_loses_its_callback() -> None:
    rule = _described_rule()
    copy = pickle.loads(pickle.dumps(rule))
    assert copy.id == 0
    assert (copy.remaining, copy.served) == (2, 0)
    assert copy.spec.response == Response(status=200)  # the lambda's response did not pickle
    assert copy.spec.priority == 3


def test_a_described_rule_matches_nothing_and_says_why() -> None:
    rule = _described_rule()
    recorder = Recorder(strict=True)
    recorder.apply(Restore(RecorderState(rules=(rule,), next_rule=1)))
    answer = recorder.record(Request("GET", "/a"))
    assert answer.status == 500
    text = answer.body.decode()
    assert "rule #0: path '/a', match <Request(" in text
    assert "priority 3" in text
    assert "but: path (a selector that stayed in the child process)" in text
    assert repr(rule.spec.path) == "'/a'"


def test_a_rule_whose_response_pickles_keeps_it_when_described() -> None:
    recorder = Recorder()
    recorder.apply(AddRule(Response(b"kept", status=201), count=None, path="/p"))
    (rule,) = recorder.apply(Snapshot()).rules
    described = rule.described()
    assert described.spec.response == Response(b"kept", status=201)
    assert described.spec.path == "/p"  # a str path needs no description
    assert described.spec.match is None


# -- _errors and _wire: what crosses the socketpair ------------------------------------------


def test_server_died_error_pickles_with_its_attributes() -> None:
    error = ServerDiedError("the child died", -9, "tail of stderr")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ServerDiedError
    assert str(copy) == "the child died"
    assert (copy.returncode, copy.stderr_tail) == (-9, "tail of stderr")


def test_a_frame_over_the_limit_is_refused() -> None:
    assert len(frame_header(MAX_FRAME, 1)) == 16
    with pytest.raises(FrameError, match=f"frame of {MAX_FRAME + 1} bytes exceeds"):
        frame_header(MAX_FRAME + 1, 1)


# -- _headers: comparisons -------------------------------------------------------------------


def test_headers_compare_with_mappings_but_not_with_other_things() -> None:
    headers = Headers([("X-A", "1")])
    assert headers == {"x-a": "1"}
    assert headers != [("X-A", "1")]
    assert headers != 1
    assert headers.__eq__(MultiDict([("X-A", "1")])) is NotImplemented
