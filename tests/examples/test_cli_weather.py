"""A program in another language (a shell script) tested against ``tserver serve --stubs``.

The server runs as a command, as it would for a Go, Rust or Node program:
the test reads the ``Serving on`` line for the URL, runs the program with
that URL, then asks the admin endpoint what the program sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture
def weather_api() -> Iterator[str]:
    """``tserver serve --stubs weather_stubs.toml --admin`` on a free port: its URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tserver", "serve", "--admin", "--stubs",
         str(HERE / "weather_stubs.toml")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    first = server.stdout.readline()  # "Serving on http://127.0.0.1:PORT/"
    assert first.startswith("Serving on "), first
    try:
        yield first.removeprefix("Serving on ").strip().rstrip("/")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
        server.stdout.close()


def weather(api: str, city: str) -> subprocess.CompletedProcess[str]:
    """Run the program under test, pointed at *api*."""
    env = {**os.environ, "WEATHER_API": api, "WEATHER_TOKEN": "s3cret", "no_proxy": "*"}
    return subprocess.run(
        ["sh", str(HERE / "weather.sh"), city],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_the_program_prints_the_forecast(weather_api: str) -> None:
    done = weather(weather_api, "Paris")
    assert (done.returncode, done.stdout) == (0, "Paris: 21 C, sunny\n")

    with urllib.request.urlopen(f"{weather_api}/__tserver/requests") as reply:
        [request] = json.load(reply)
    assert (request["method"], request["path"]) == ("GET", "/v1/forecast")
    assert request["query_string"] == "city=Paris"
    assert ["Authorization", "Bearer s3cret"] in request["headers"]


def test_the_program_reports_an_outage(weather_api: str) -> None:
    done = weather(weather_api, "Atlantis")
    assert done.returncode == 2
    assert done.stderr == "weather: the service is down, try later\n"


def test_the_program_reports_an_unknown_city(weather_api: str) -> None:
    done = weather(weather_api, "Nowhere")
    assert (done.returncode, done.stderr) == (1, "weather: unexpected HTTP 404\n")
