"""`Recorder` unit tests: plain `Request` objects, no sockets, no event loop."""

from __future__ import annotations

import asyncio
import pickle
import re
import threading

import pytest
from hamcrest import equal_to, starts_with
from hamcrest.core.base_matcher import BaseMatcher
from hamcrest.core.description import Description

from tserver import Request, Response, WaitTimeoutError
from tserver._backend import await_local, wait_local
from tserver._commands import (
    AddRule,
    GetCount,
    GetHistory,
    GetRequest,
    Reset,
    Restore,
    SetResponse,
    Snapshot,
    TakeReport,
)
from tserver._recorder import Recorder


def req(method: str = "GET", path: str = "/") -> Request:
    return Request(method, path)


def body(recorder: Recorder, method: str = "GET", path: str = "/") -> bytes:
    return recorder.record(req(method, path)).body


def set_key(recorder: Recorder, key: str, value: object, method: str | None = None) -> None:
    recorder.apply(SetResponse(key, value, method))


def set_once(recorder: Recorder, key: str, value: object, method: str | None = None) -> None:
    recorder.apply(SetResponse(key, value, method, once=True))


class _HasHeader(BaseMatcher[Request]):
    """A small matcher over Request, as a user would write one."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _matches(self, item: Request) -> bool:
        return self.name in item.headers

    def describe_to(self, description: Description) -> None:
        description.append_text(f"a request with header {self.name!r}")


class TestDefaultResponse:
    def test_starts_as_200_with_empty_body(self) -> None:
        response = Recorder().record(req())
        assert (response.status, response.body, response.headers) == (200, b"", ())

    def test_keys_combine(self) -> None:
        recorder = Recorder()
        set_key(recorder, "status", 201)
        set_key(recorder, "data", b"made")
        set_key(recorder, "headers", (("X-A", "1"),))
        response = recorder.record(req())
        assert (response.status, response.body, response.headers) == (201, b"made", (("X-A", "1"),))

    def test_later_value_of_a_key_wins(self) -> None:
        recorder = Recorder()
        set_key(recorder, "data", b"one")
        set_key(recorder, "data", b"two")
        assert body(recorder) == b"two"

    def test_json_and_data_replace_each_other(self) -> None:
        recorder = Recorder()
        set_key(recorder, "data", b"plain")
        set_key(recorder, "json", {"a": 1})
        assert body(recorder) == b'{"a": 1}'
        set_key(recorder, "data", b"plain again")
        response = recorder.record(req())
        assert (response.body, response.content_type) == (
            b"plain again",
            "text/html; charset=utf-8",
        )

    def test_method_key_wins_over_any_method_key_whichever_came_first(self) -> None:
        recorder = Recorder()
        set_key(recorder, "data", b"post only", method="POST")
        set_key(recorder, "data", b"any method")
        assert body(recorder, "POST") == b"post only"
        assert body(recorder, "GET") == b"any method"
        set_key(recorder, "data", b"any again")
        assert body(recorder, "POST") == b"post only"

    def test_method_layer_only_overrides_its_own_keys(self) -> None:
        recorder = Recorder()
        set_key(recorder, "status", 404)
        set_key(recorder, "data", b"post", method="POST")
        response = recorder.record(req("POST"))
        assert (response.status, response.body) == (404, b"post")

    def test_request_method_is_matched_case_insensitively(self) -> None:
        recorder = Recorder()
        set_key(recorder, "data", b"post", method="POST")
        assert body(recorder, "post") == b"post"

    def test_a_setting_after_a_request_applies_to_the_next(self) -> None:
        recorder = Recorder()
        assert body(recorder) == b""
        set_key(recorder, "data", b"changed")
        assert body(recorder) == b"changed"


class TestOnceOverrides:
    def test_apply_to_the_next_request_only(self) -> None:
        recorder = Recorder()
        set_key(recorder, "data", b"default")
        set_once(recorder, "data", b"once")
        assert [body(recorder) for _ in range(3)] == [b"once", b"default", b"default"]

    def test_consecutive_calls_combine(self) -> None:
        recorder = Recorder()
        set_once(recorder, "status", 503)
        set_once(recorder, "data", b"busy")
        first, second = recorder.record(req()), recorder.record(req())
        assert (first.status, first.body) == (503, b"busy")
        assert (second.status, second.body) == (200, b"")

    def test_merge_over_the_default(self) -> None:
        recorder = Recorder()
        set_key(recorder, "status", 201)
        set_once(recorder, "data", b"once")
        response = recorder.record(req())
        assert (response.status, response.body) == (201, b"once")

    def test_with_a_method_wait_for_that_method(self) -> None:
        recorder = Recorder()
        set_once(recorder, "data", b"for post", method="POST")
        assert body(recorder, "GET") == b""
        assert body(recorder, "PUT") == b""
        assert body(recorder, "POST") == b"for post"
        assert body(recorder, "POST") == b""

    def test_method_once_wins_over_any_method_once(self) -> None:
        recorder = Recorder()
        set_once(recorder, "data", b"post once", method="POST")
        set_once(recorder, "data", b"any once")
        assert body(recorder, "POST") == b"post once"
        assert body(recorder, "POST") == b""

    def test_are_not_consumed_by_a_request_a_rule_served(self) -> None:
        recorder = Recorder()
        set_once(recorder, "data", b"once")
        recorder.apply(AddRule(Response(b"rule"), count=1, path="/ruled"))
        assert body(recorder, path="/ruled") == b"rule"
        assert body(recorder) == b"once"
        assert body(recorder) == b""


class TestRules:
    def test_first_matching_rule_in_order_added_wins(self) -> None:
        recorder = Recorder()
        recorder.apply(AddRule(Response(b"first"), count=None))
        recorder.apply(AddRule(Response(b"second"), count=None))
        assert body(recorder) == b"first"

    def test_count_limited_rule_counts_down_then_disappears(self) -> None:
        recorder = Recorder()
        set_key(recorder, "data", b"default")
        recorder.apply(AddRule(Response(b"a"), count=2))
        recorder.apply(AddRule(Response(b"b"), count=1))
        assert [body(recorder) for _ in range(5)] == [b"a", b"a", b"b", b"default", b"default"]

    def test_unlimited_rule_serves_every_request(self) -> None:
        recorder = Recorder()
        recorder.apply(AddRule(Response(b"always"), count=None))
        assert {body(recorder) for _ in range(20)} == {b"always"}

    def test_rules_win_over_default_and_once(self) -> None:
        recorder = Recorder()
        set_key(recorder, "data", b"default")
        set_once(recorder, "data", b"once")
        recorder.apply(AddRule(Response(b"rule"), count=1))
        assert body(recorder) == b"rule"

    def test_method_selector(self) -> None:
        recorder = Recorder()
        recorder.apply(AddRule(Response(b"write"), count=None, methods=("POST", "PUT")))
        assert [body(recorder, m) for m in ("GET", "POST", "put", "DELETE")] == [
            b"",
            b"write",
            b"write",
            b"",
        ]

    def test_path_selectors_str_pattern_and_matcher(self) -> None:
        recorder = Recorder()
        recorder.apply(AddRule(Response(b"exact"), count=None, path="/a"))
        recorder.apply(AddRule(Response(b"regex"), count=None, path=re.compile(r"/items/\d+")))
        recorder.apply(AddRule(Response(b"matcher"), count=None, path=starts_with("/m/")))
        assert body(recorder, path="/a") == b"exact"
        assert body(recorder, path="/a/") == b""
        assert body(recorder, path="/items/12") == b"regex"
        assert body(recorder, path="/items/12/x") == b""  # a full match, not a search
        assert body(recorder, path="/m/anything") == b"matcher"

    def test_match_selector(self) -> None:
        recorder = Recorder()
        recorder.apply(AddRule(Response(b"token"), count=None, match=_HasHeader("X-Token")))
        from tserver import Headers

        with_token = Request("GET", "/", headers=Headers([("x-token", "1")]))
        assert recorder.record(with_token).body == b"token"
        assert body(recorder) == b""

    def test_a_selector_that_raises_is_kept_as_an_error_and_skipped(self) -> None:
        class Boom(BaseMatcher[Request]):
            def _matches(self, item: Request) -> bool:
                raise RuntimeError("matcher broke")

            def describe_to(self, description: Description) -> None:
                description.append_text("boom")

        recorder = Recorder()
        recorder.apply(AddRule(Response(b"never"), count=None, match=Boom()))
        assert body(recorder) == b""
        report = recorder.apply(TakeReport())
        assert [(e.type_name, e.message) for e in report.errors] == [
            ("RuntimeError", "matcher broke")
        ]


class TestStrict:
    def test_unmatched_request_gets_500_naming_it_and_the_rules(self) -> None:
        recorder = Recorder(strict=True)
        recorder.apply(AddRule(Response(b"ok"), count=1, path="/expected"))
        response = recorder.record(req("GET", "/other"))
        assert response.status == 500
        text = response.body.decode()
        assert text.startswith("tserver: no rule matched GET /other\n")
        assert "path was '/other'" in text
        assert recorder.apply(GetCount()) == 1  # still recorded
        report = recorder.apply(TakeReport())
        assert len(report.unmatched) == 1
        assert report.unmatched[0].startswith("tserver: no rule matched GET /other")

    def test_unused_count_limited_rules_are_reported(self) -> None:
        recorder = Recorder(strict=True)
        recorder.apply(AddRule(Response(b"ok"), count=2, path="/a"))
        recorder.apply(AddRule(Response(b"any"), count=None, path="/b"))
        assert body(recorder, path="/a") == b"ok"
        report = recorder.apply(TakeReport())
        assert bool(report)
        assert len(report.unused_rules) == 1
        assert "1 of 2 left" in report.unused_rules[0]

    def test_clean_when_every_rule_was_used(self) -> None:
        recorder = Recorder(strict=True)
        recorder.apply(AddRule(Response(b"ok"), count=1))
        assert body(recorder) == b"ok"
        assert not recorder.apply(TakeReport())


class TestHistory:
    def test_keeps_every_request_in_order(self) -> None:
        recorder = Recorder()
        for i in range(3):
            recorder.record(req(path=f"/{i}"))
        assert [r.path for r in recorder.apply(GetHistory())] == ["/0", "/1", "/2"]
        assert recorder.apply(GetRequest(0)).path == "/0"
        assert recorder.apply(GetRequest(-1)).path == "/2"

    def test_history_is_a_snapshot(self) -> None:
        recorder = Recorder()
        recorder.record(req(path="/0"))
        snapshot = recorder.apply(GetHistory())
        recorder.record(req(path="/1"))
        snapshot.clear()
        assert [r.path for r in snapshot] == []
        assert len(recorder.apply(GetHistory())) == 2

    def test_history_limit_keeps_the_last_n_and_counts_all(self) -> None:
        recorder = Recorder(history_limit=3)
        for i in range(7):
            recorder.record(req(path=f"/{i}"))
        assert [r.path for r in recorder.apply(GetHistory())] == ["/4", "/5", "/6"]
        assert recorder.apply(GetCount()) == 7
        assert recorder.apply(GetRequest(0)).path == "/4"

    def test_no_request_yet_is_none(self) -> None:
        assert Recorder().apply(GetRequest(-1)) is None

    def test_index_out_of_range_is_none(self) -> None:
        recorder = Recorder(history_limit=1)
        recorder.record(req())
        recorder.record(req(path="/2"))
        assert recorder.apply(GetRequest(5)) is None
        assert recorder.apply(GetRequest(-2)) is None  # dropped by history_limit
        request = recorder.apply(GetRequest(0))
        assert request is not None
        assert request.path == "/2"

    def test_reset_empties_everything(self) -> None:
        recorder = Recorder()
        set_key(recorder, "data", b"default")
        set_once(recorder, "status", 500)
        recorder.apply(AddRule(Response(b"rule"), count=5))
        recorder.record(req())
        recorder.apply(Reset())
        assert recorder.apply(GetHistory()) == []
        assert recorder.apply(GetCount()) == 0
        response = recorder.record(req())
        assert (response.status, response.body) == (200, b"")

    def test_snapshot_restores_into_a_fresh_recorder_after_pickling(self) -> None:
        recorder = Recorder()
        set_key(recorder, "data", b"default")
        recorder.apply(AddRule(Response(b"rule"), count=1, path="/r"))
        recorder.record(req(path="/seen"))
        set_once(recorder, "status", 202)
        state = pickle.loads(pickle.dumps(recorder.apply(Snapshot())))
        other = Recorder()
        other.apply(Restore(state))
        assert [r.path for r in other.apply(GetHistory())] == ["/seen"]
        assert other.apply(GetCount()) == 1
        assert body(other, path="/r") == b"rule"
        first = other.record(req())
        assert (first.status, first.body) == (202, b"default")
        assert other.record(req()).status == 200


class TestWaiting:
    def test_wait_returns_at_once_when_the_count_is_reached(self) -> None:
        recorder = Recorder()
        recorder.record(req(path="/a"))
        assert [r.path for r in wait_local(recorder, 1, 0.0)] == ["/a"]
        pending, _ = recorder.pending_history(1)
        assert pending.done

    def test_wait_blocks_until_a_concurrent_record(self) -> None:
        recorder = Recorder()
        pending, _ = recorder.pending_history(2)
        result: list[list[Request]] = []

        def waiter() -> None:
            result.append(wait_local(recorder, 2, 10.0))

        thread = threading.Thread(target=waiter)
        thread.start()
        recorder.record(req(path="/1"))
        assert not pending.done
        recorder.record(req(path="/2"))
        assert pending.done  # delivered by the recording thread itself
        thread.join(10.0)
        assert not thread.is_alive()
        assert [r.path for r in result[0]] == ["/1", "/2"]
        assert [r.path for r in pending.result()] == ["/1", "/2"]

    def test_wait_timeout_says_how_many_arrived(self) -> None:
        recorder = Recorder()
        recorder.record(req())
        with pytest.raises(WaitTimeoutError) as info:
            wait_local(recorder, 3, 0.01)
        assert (info.value.expected, info.value.received) == (3, 1)
        assert "for 3 request(s) but 1 arrived" in str(info.value)
        assert isinstance(info.value, TimeoutError)
        recorder.record(req())
        recorder.record(req())  # the wait that gave up is not woken any more
        assert recorder._waiters == []

    def test_the_awaitable_form_under_asyncio(self) -> None:
        recorder = Recorder()

        async def main() -> list[Request]:
            asyncio.get_running_loop().call_later(0.01, recorder.record, req(path="/late"))
            return await await_local(recorder, 1, 10.0)

        assert [r.path for r in asyncio.run(main())] == ["/late"]

    def test_waiter_is_woken_when_its_count_is_reached(self) -> None:
        recorder = Recorder()
        woken: list[int] = []
        cancel = recorder.add_waiter(2, lambda: woken.append(recorder.count))
        assert cancel is not None
        recorder.record(req())
        assert woken == []
        recorder.record(req())
        assert woken == [2]
        recorder.record(req())
        assert woken == [2]  # woken once only

    def test_add_waiter_returns_none_when_already_reached(self) -> None:
        recorder = Recorder()
        recorder.record(req())
        woken: list[int] = []
        assert recorder.add_waiter(1, lambda: woken.append(1)) is None
        recorder.record(req())
        assert woken == []

    def test_cancelled_waiter_is_not_woken(self) -> None:
        recorder = Recorder()
        woken: list[int] = []
        cancel = recorder.add_waiter(1, lambda: woken.append(1))
        assert cancel is not None
        cancel()
        cancel()  # idempotent
        recorder.record(req())
        assert woken == []

    def test_waiters_with_different_counts(self) -> None:
        recorder = Recorder()
        woken: list[str] = []
        recorder.add_waiter(1, lambda: woken.append("one"))
        recorder.add_waiter(3, lambda: woken.append("three"))
        for _ in range(3):
            recorder.record(req())
        assert woken == ["one", "three"]


def test_rule_describe_names_selectors_answer_and_count() -> None:
    recorder = Recorder(strict=True)
    recorder.apply(
        AddRule(Response(b"x"), count=3, methods=("GET", "HEAD"), path="/a", match=equal_to(1))
    )
    report = recorder.apply(TakeReport())
    assert report.unused_rules == (
        "method GET|HEAD, path '/a', match <1> -> Response(status=200, data=b'x') (3 of 3 left)",
    )
