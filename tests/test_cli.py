"""The ``tserver`` command line, run for real as a child process.

Each test starts ``python -m tserver ...``, reads its output line by line
through a reader thread and a `queue.Queue` (``get(timeout=...)`` is the only
guard against a hang: no sleeps), talks HTTP to it with `http.client`, and
stops it with a real signal.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.cli import Cli, run, send, start

import tserver
from tserver.cli import main

# -- serve ----------------------------------------------------------------------


def test_serve_prints_a_line_per_request_and_a_summary_on_sigint(cli: list[Cli]) -> None:
    proc = start(
        cli, "serve", "--status", "201", "--data", "hi",
        "--header", "X-A: 1", "--header", "X-A:2",
    )  # fmt: skip
    url = proc.serving_url()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url

    status, headers, body = send(url, "POST", "/a/b?q=1", b"hello")
    assert (status, body) == (201, b"hi")
    assert [v for k, v in headers if k == "X-A"] == ["1", "2"]
    assert proc.line() == "POST /a/b?q=1 -> 201 (5 bytes received)"

    send(url, "GET", "/x")
    assert proc.line() == "GET /x -> 201 (0 bytes received)"
    send(url, "DELETE", "/y")
    assert proc.line() == "DELETE /y -> 201 (0 bytes received)"

    assert proc.stop(signal.SIGINT) == 0
    assert proc.rest(proc.stdout) == [
        "Stopped by SIGINT after 3 requests (1 POST, 1 GET, 1 DELETE)."
    ]
    assert proc.rest(proc.stderr) == []


def test_serve_json_prints_one_object_per_request(cli: list[Cli]) -> None:
    proc = start(cli, "serve", "--json", "--status", "404")
    url = proc.serving_url()
    before = time.time()
    status, _, _ = send(url, "PUT", "/items/7?x=1&x=2", b'{"n": 1}', {"X-Token": "abc"})
    assert status == 404

    record = json.loads(proc.line())
    assert set(record) == {
        "method", "path", "query_string", "headers", "data_len", "status", "received_at",
        "connection", "body",
    }  # fmt: skip
    assert base64.b64decode(record["body"]) == b'{"n": 1}'
    assert record["connection"] == 0
    assert record["method"] == "PUT"
    assert record["path"] == "/items/7"
    assert record["query_string"] == "x=1&x=2"
    assert ["X-Token", "abc"] in record["headers"]
    assert all(isinstance(pair, list) and len(pair) == 2 for pair in record["headers"])
    assert record["data_len"] == 8
    assert record["status"] == 404
    assert before - 1 <= record["received_at"] <= time.time() + 1

    assert proc.stop(signal.SIGTERM) == 0
    assert proc.rest(proc.stdout) == ["Stopped by SIGTERM after 1 request (1 PUT)."]


def test_serve_writes_the_har_at_exit(cli: list[Cli], tmp_path: Path) -> None:
    path = tmp_path / "traffic.har"
    proc = start(cli, "serve", "--har", str(path), "--status", "418")
    url = proc.serving_url()
    send(url, "POST", "/tea?cup=1", b"leaves")
    proc.line()
    assert proc.stop(signal.SIGINT) == 0
    assert proc.rest(proc.stdout) == [
        "Stopped by SIGINT after 1 request (1 POST).",
        f"HAR of the traffic written to {path}",
    ]
    (entry,) = json.loads(path.read_text(encoding="utf-8"))["log"]["entries"]
    assert entry["request"]["method"] == "POST"
    assert entry["request"]["postData"]["text"] == "leaves"
    assert entry["response"]["status"] == 418


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_cleanly_on_a_signal_with_no_requests(cli: list[Cli], signum: int) -> None:
    proc = start(cli, "serve")
    proc.serving_url()
    assert proc.stop(signum) == 0
    name = signal.Signals(signum).name
    assert proc.rest(proc.stdout) == [f"Stopped by {name} after 0 requests."]
    assert proc.rest(proc.stderr) == []


def test_serve_counts_requests_sent_just_before_the_signal(cli: list[Cli]) -> None:
    proc = start(cli, "serve")
    url = proc.serving_url()
    for n in range(5):
        send(url, "GET", f"/{n}")
    assert proc.stop(signal.SIGTERM) == 0
    lines = proc.rest(proc.stdout)
    assert lines == [f"GET /{n} -> 200 (0 bytes received)" for n in range(5)] + [
        "Stopped by SIGTERM after 5 requests (5 GET)."
    ]


def test_serve_on_a_fixed_port(cli: list[Cli]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = start(cli, "serve", "--port", str(port))
    assert proc.serving_url() == f"http://127.0.0.1:{port}/"
    assert proc.stop(signal.SIGTERM) == 0


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_available(), reason="no IPv6 loopback on this machine")
def test_serve_ipv6(cli: list[Cli]) -> None:
    proc = start(cli, "serve", "--address", "::1")
    url = proc.serving_url()
    assert re.fullmatch(r"http://\[::1\]:\d+/", url), url
    assert send(url, "GET", "/six")[0] == 200
    assert proc.line() == "GET /six -> 200 (0 bytes received)"
    assert proc.stop(signal.SIGINT) == 0
    assert proc.rest(proc.stderr) == []  # loopback: no warning


def test_serve_warns_on_a_non_loopback_address(cli: list[Cli]) -> None:
    proc = start(cli, "serve", "--address", "0.0.0.0")
    assert proc.serving_url().startswith("http://0.0.0.0:")
    assert proc.stop(signal.SIGTERM) == 0
    stderr = "".join(proc.rest(proc.stderr))
    assert "warning: 0.0.0.0 is not a loopback address" in stderr


def test_serve_port_in_use_exits_1_naming_the_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--port", str(port))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("tserver: error: cannot listen on 127.0.0.1 port ")
    assert str(port) in result.stderr


# -- demo, version, help ------------------------------------------------------------


def test_demo_exits_0_and_shows_a_failing_assertion() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "passed" in out
    assert "AssertionError: " in out
    assert "'abd'" in out  # the expectation that failed
    assert "'abc'" in out  # what the client really sent
    assert "The server is stopped" in out
    assert result.stderr == ""


def test_version() -> None:
    result = run("--version")
    assert (result.returncode, result.stdout) == (0, f"tserver {tserver.__version__}\n")


def test_console_script_version() -> None:
    script = Path(sys.executable).with_name("tserver")
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable} (not installed)")
    result = subprocess.run(
        [os.fspath(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout) == (0, f"tserver {tserver.__version__}\n")


def test_help_has_commands_and_examples() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: tserver ")
    for text in ("serve", "demo", "--version", "examples:", "tserver serve --json"):
        assert text in result.stdout


def test_serve_help_lists_every_option() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0
    for option in ("--address", "--port", "--status", "--data", "--header", "--json", "--har"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["serve", "--port", "70000"], "invalid port '70000': expected an int from 0"),
        (["serve", "--port", "http"], "invalid port 'http'"),
        (["serve", "--status", "99"], "invalid status '99': expected an HTTP status code"),
        (["serve", "--header", "X-Token"], "invalid header 'X-Token': expected NAME:VALUE"),
        (["serve", "--header", "Bad Name: v"], "invalid header 'Bad Name: v'"),
        (["serve", "--verbose-please"], "unrecognized arguments: --verbose-please"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: tserver")
    assert message in result.stderr


# -- main() in process --------------------------------------------------------------


def test_main_returns_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"tserver {tserver.__version__}\n"
    assert main(["serve", "--status", "600"]) == 2
    assert "invalid status '600'" in capsys.readouterr().err
