"""The pytest plugin (`tserver.pytest_plugin`), tested through `pytester`.

Each test writes a small test module, runs pytest on it (in process unless
it needs its own process) and asserts on the outcomes and the report text.
The plugin is found through its ``pytest11`` entry point, as for a user.
"""

from __future__ import annotations

import json
import re

import pytest

# pytester's in-process runs unload every module first imported during the
# run.  tserver imports its backends (and Tornado's server side) lazily, so
# without this preload each run would import fresh copies of some modules
# while the `tornado` package still points at the old ones: two
# StreamClosedError classes, and Tornado logging "Uncaught exception".
import tserver._assertions
import tserver._backend_subprocess
import tserver._backend_thread
import tserver.matchers  # noqa: F401

HEADER = """
import json
import urllib.error
import urllib.request

import pytest

from tserver import Response


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def boom(request):
    raise ZeroDivisionError("boom in callback")
"""


def make_tests(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_plugin_use=HEADER + body)


def test_passing_test_and_reset_between_tests(pytester: pytest.Pytester) -> None:
    make_tests(
        pytester,
        """
PORTS = []

def test_one(tserver):
    tserver.set_response("data", b"hello")
    assert get(tserver.get_url("/a?q=1")) == (200, b"hello")
    tserver.assert_request().has_method("GET").has_path("/a").has_arg("q", "1")
    PORTS.append(tserver.port)

def test_two(tserver):
    # the same server, reset: no history, default response again
    assert tserver.request_count == 0
    assert get(tserver.url) == (200, b"")
    assert tserver.mode == "thread"
    PORTS.append(tserver.port)

def test_same_server():
    assert len(set(PORTS)) == 1, PORTS
""",
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_failing_assertion_report(pytester: pytest.Pytester) -> None:
    make_tests(
        pytester,
        """
def test_wrong_path(tserver):
    get(tserver.get_url("/right"))
    tserver.assert_request().has_path("/wrong")
""",
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*def test_wrong_path(tserver):*",
            '>*tserver.assert_request().has_path("/wrong")',
            "E*AssertionError: request #0 of 1 did not match",
            "E*Expected: a request with path matching '/wrong'",
            "E*but: path was '/right'",
            "E*> #0  GET /right  -> 200",
            "FAILED test_plugin_use.py::test_wrong_path - AssertionError: *",
        ]
    )


def test_callback_error_fails_the_test_that_caused_it(pytester: pytest.Pytester) -> None:
    make_tests(
        pytester,
        """
def test_before(tserver):
    assert get(tserver.url)[0] == 200

def test_culprit(tserver):
    tserver.set_response("callback", boom)
    assert get(tserver.get_url("/x"))[0] == 500   # the test itself passes

def test_after(tserver):
    assert get(tserver.url)[0] == 200
""",
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_culprit _*",
            "E*ZeroDivisionError: boom in callback",
            "*direct cause*",
            "E*AssertionError: tserver at http://127.0.0.1:*/ found problems while serving:",
            "*- ZeroDivisionError: boom in callback while answering GET /x",
            "*(checked by the 'tserver' fixture after the test returned)",
            "FAILED test_plugin_use.py::test_culprit - AssertionError: *",
        ]
    )
    # the server logs nothing (pytest would show it as "Captured log call")
    assert "Uncaught exception" not in result.stdout.str()


def test_a_failed_test_shows_the_server_problems_beside(pytester: pytest.Pytester) -> None:
    make_tests(
        pytester,
        """
def test_both(tserver):
    tserver.set_response("callback", boom)
    get(tserver.url)
    assert 1 == 2
""",
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)  # reported once, no teardown error
    result.stdout.fnmatch_lines(
        [
            "E*assert 1 == 2",
            "*Captured tserver call*",
            "'tserver' fixture: tserver at http://*/ found problems while serving:",
            "- ZeroDivisionError: boom in callback while answering GET /",
        ]
    )


def test_problems_during_fixture_teardown_are_errors(pytester: pytest.Pytester) -> None:
    make_tests(
        pytester,
        """
@pytest.fixture
def client(tserver):
    tserver.set_response("callback", boom)
    yield tserver.url
    get(tserver.get_url("/logout"))   # after the call-phase check

def test_uses_client(client):
    assert client.startswith("http://")
""",
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_uses_client*",
            "*ZeroDivisionError: boom in callback while answering GET /logout",
        ]
    )


def test_session_server_survives_a_test_that_stops_it(pytester: pytest.Pytester) -> None:
    make_tests(
        pytester,
        """
PORTS = []

def test_stop_it(tserver):
    PORTS.append(tserver.port)
    tserver.stop()

def test_served_again(tserver):
    assert tserver.running
    assert tserver.port == PORTS[0]
    assert get(tserver.url)[0] == 200
""",
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_subprocess_fixture_and_mode_option(pytester: pytest.Pytester) -> None:
    make_tests(
        pytester,
        """
def test_modes(request, tserver, tserver_subprocess, tserver_factory):
    option = request.config.getoption("tserver_mode")
    assert tserver.mode == option
    assert tserver_subprocess.mode == "subprocess"
    assert tserver_factory().mode == option
    assert tserver_factory(mode="thread").mode == "thread"
    assert tserver is not tserver_subprocess
    tserver_subprocess.set_response("json", {"ok": True})
    assert get(tserver_subprocess.url) == (200, b'{"ok": true}')
    assert tserver_subprocess.request.path == "/"
    assert tserver.request_count == 0

def test_subprocess_callback_error(tserver):
    tserver.set_response("callback", boom)
    assert get(tserver.url)[0] == 500
""",
    )
    for option in ([], ["--tserver-mode=subprocess"]):
        result = pytester.runpytest("-p", "no:randomly", *option)
        # the callback error fails its test in both modes
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*_ test_subprocess_callback_error _*",
                "*ZeroDivisionError: boom in callback while answering GET /*",
            ]
        )


def test_mode_option_is_validated(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--tserver-mode=inline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--tserver-mode: invalid choice: 'inline'*"])


def test_help_and_fixtures_listing(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--tserver-mode={thread,subprocess}*"])
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines_random(
        [
            "tserver -- *pytest_plugin.py:*",
            "tserver_subprocess -- *pytest_plugin.py:*",
            "tserver_factory -- *pytest_plugin.py:*",
        ]
    )


def test_factory_servers(pytester: pytest.Pytester) -> None:
    make_tests(
        pytester,
        """
MADE = []

def test_make(tserver_factory):
    one = tserver_factory()
    two = tserver_factory(strict=True, history_limit=1)
    MADE.extend([one, two])
    assert one.running and two.running
    assert one.port != two.port
    two.add_response(Response(b"rule"), path="/r", count=None)
    assert get(two.get_url("/r")) == (200, b"rule")
    assert get(two.get_url("/r?again")) == (200, b"rule")
    assert [r.query_string for r in two.history] == ["again"]
    assert one.request_count == 0

def test_stopped_after():
    assert len(MADE) == 2
    assert not any(server.running for server in MADE)

def test_strict_miss(tserver_factory):
    strict = tserver_factory(strict=True)
    strict.add_response(Response(b"x"), path="/expected")
    assert get(strict.get_url("/other"))[0] == 500
""",
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_strict_miss _*",
            "E*AssertionError: tserver at http://127.0.0.1:*/ found problems while serving:",
            "*strict mode: *no rule matched GET /other*",
            "*strict mode: rules not used up*",
            "*(checked by the tserver_factory server #1 after the test returned)",
        ]
    )


def test_problems_of_several_servers_fail_the_test_once(pytester: pytest.Pytester) -> None:
    make_tests(
        pytester,
        """
def test_two_broken(tserver_factory):
    for n in range(2):
        server = tserver_factory()
        server.set_response("callback", boom)
        assert get(server.get_url(f"/s{n}"))[0] == 500
""",
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)  # and no error at teardown
    result.stdout.fnmatch_lines(
        [
            "E*AssertionError: tserver_factory server #1: tserver at http://*",
            "*- ZeroDivisionError: boom in callback while answering GET /s0",
            "*tserver_factory server #2: tserver at http://*",
            "*- ZeroDivisionError: boom in callback while answering GET /s1",
        ]
    )


@pytest.mark.slow
def test_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    make_tests(
        pytester,
        """
import os

@pytest.mark.parametrize("n", range(8))
def test_each(tserver, n, tmp_path_factory):
    tserver.set_response("data", str(n))
    assert get(tserver.get_url(f"/{n}")) == (200, str(n).encode())
    assert tserver.request_count == 1
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    out = tmp_path_factory.getbasetemp().parent / f"{worker}-{n}.json"
    out.write_text(json.dumps({"worker": worker, "port": tserver.port, "pid": os.getpid()}))
""",
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=8)
    records = [json.loads(p.read_text()) for p in pytester.path.rglob("gw*-*.json")]
    assert len(records) == 8
    ports: dict[str, set[int]] = {}
    for record in records:
        ports.setdefault(record["worker"], set()).add(record["port"])
    assert set(ports) == {"gw0", "gw1"}  # xdist's first batch goes to both
    # one server per worker session, never shared between workers
    assert all(len(p) == 1 for p in ports.values()), ports
    assert len({next(iter(p)) for p in ports.values()}) == len(ports)


@pytest.mark.parametrize("fixture", ["tserver", "tserver_subprocess"])
def test_a_failed_test_writes_the_har_of_its_traffic(
    pytester: pytest.Pytester, fixture: str
) -> None:
    make_tests(
        pytester,
        f"""
def test_fails({fixture}):
    {fixture}.add_response(Response(status=503), count=1)
    assert get({fixture}.url)[0] == 503
    assert get({fixture}.get_url("/again"))[0] == 503, "the client expected two 503s"

def test_passes({fixture}):
    assert get({fixture}.url)[0] == 200
""",
    )
    folder = pytester.path / "hars"
    result = pytester.runpytest_inprocess(f"--tserver-har={folder}")
    result.assert_outcomes(passed=1, failed=1)
    (written,) = folder.iterdir()
    assert re.fullmatch(r"test_plugin_use\.py_test_fails-[0-9a-f]{8}\.har", written.name)
    result.stdout.fnmatch_lines([f"*fixture: HAR of the traffic written to {written}"])
    har = json.loads(written.read_text(encoding="utf-8"))
    entries = har["log"]["entries"]
    assert [(e["request"]["url"].rsplit("/", 1)[1], e["response"]["status"]) for e in entries] == [
        ("", 503),
        ("again", 200),
    ]


def test_no_har_without_the_option(pytester: pytest.Pytester) -> None:
    make_tests(
        pytester,
        """
def test_fails(tserver):
    get(tserver.url)
    assert False
""",
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(failed=1)
    assert "HAR of the traffic" not in result.stdout.str()


def test_ids_that_read_alike_get_files_of_their_own(pytester: pytest.Pytester) -> None:
    make_tests(
        pytester,
        """
@pytest.mark.parametrize("name", ["a/b", "a b", "a_b"])
def test_fails(tserver, name):
    get(tserver.get_url("/" + name.replace(" ", "%20")))
    assert False
""",
    )
    folder = pytester.path / "hars"
    result = pytester.runpytest_inprocess(f"--tserver-har={folder}")
    result.assert_outcomes(failed=3)
    assert len(list(folder.iterdir())) == 3
