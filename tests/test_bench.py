"""Smoke test of ``bench/run.py``: every section runs and prints its table.

The figures of a ``--tiny`` run mean nothing; what is checked is that the
bench still runs against the current code, prints the rows and targets the
docs quote, and that wrk's completed count and the server's recorded count
agree up to the requests in flight.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"
SECTIONS = "startstop,cycles,keepalive,newconn,wrk,transfer,control,wait,rss"
CONTENDERS = ["thread", "subprocess", "subprocess-cold", "tornado"]
SERVING = ["thread", "subprocess", "tornado"]  # subprocess-cold only starts and stops


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUN), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_tiny_run_prints_every_table_and_target(tmp_path: Path) -> None:
    out_file = tmp_path / "bench.json"
    done = run_bench(
        "--tiny",
        "--only",
        SECTIONS,
        "--contenders",
        ",".join(CONTENDERS),
        "--json",
        str(out_file),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for section in SECTIONS.split(","):
        if section == "wrk" and shutil.which("wrk") is None:
            assert "wrk is not installed" in out
            continue
        assert f"[{section}: " in out, section
    for row in (
        "start+stop (median)",
        "p50",
        "p99",
        "POST (time)",
        "GET (time)",
        "set_response",
        "history (1 request)",
        "per request",
    ):
        assert f"\n{row} " in out, row
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("Targets (")) + 2
    targets = lines[first : lines.index("", first)]
    assert len(targets) >= 14, targets
    assert {line.rsplit(maxsplit=1)[-1] for line in targets} <= {"PASS", "MISS", "n/a"}, targets
    assert any(line.startswith("thread start+stop <= 1 ms") for line in targets)
    assert any(line.startswith("subprocess set_response <= 2x floor") for line in targets)

    report = json.loads(out_file.read_text())
    data = report["data"]
    assert set(data["startstop.start+stop"]) == {
        "thread",
        "subprocess",
        "subprocess-cold",
        "tornado",
    }
    assert set(data["cycles"]) == {"thread", "subprocess", "subprocess-cold"}
    assert data["cycles.count"] == 2
    assert all(v > 0 for v in data["startstop.start+stop"].values())
    assert set(data["control"]) == {"thread", "thread floor", "subprocess", "socketpair floor"}
    assert data["rss"]["thread"]["requests"] == 300
    by_label = {t["target"]: t["status"] for t in report["targets"]}
    assert by_label["thread start+stop <= 1 ms"] in {"PASS", "MISS"}
    assert by_label["subprocess start, spare ready <= 5 ms"] in {"PASS", "MISS"}
    assert by_label["2 subprocess cycles >= 10x faster than cold"] in {"PASS", "MISS"}
    if shutil.which("wrk") is not None:
        for name in SERVING:
            for run in data["wrk.raw"][name]:
                assert run["wrk_completed"] > 0, run
                assert run["socket_errors"] == 0, run
                # the server counted what wrk completed, plus at most one
                # request in flight per connection when wrk stopped
                assert 0 <= run["server_count"] - run["wrk_completed"] <= 16, run


def test_unknown_section_is_refused() -> None:
    done = run_bench("--only", "startstop,nonsense")
    assert done.returncode == 2
    assert "--only: unknown section(s) ['nonsense']" in done.stderr


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``bench/NAME`` with *args*; it must succeed."""
    done = subprocess.run(
        [sys.executable, str(RUN.parent / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_the_websocket_echo_bench_runs() -> None:
    done = run_script("ws.py", "--rounds", "1", "--trips", "20")
    lines = done.stdout.splitlines()
    assert lines[0] == "WebSocket echo round trip, 64-byte text, 20 per round, 1 rounds"
    assert lines[3].startswith("tserver WebSocket([Echo()])")
    assert lines[4].startswith("websockets echo server")
    assert lines[5].startswith("tserver / websockets: ")


def test_the_http2_bench_runs() -> None:
    pytest.importorskip("hypercorn")
    done = run_script(
        "http2.py", "--rounds", "1", "--trips", "20", "--streams", "10", "--batches", "2"
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("HTTP/2 (h2c), GET with a 2-byte answer, 1 rounds: 20 one-stream")
    assert lines[3].startswith("tserver http2=True")
    assert lines[4].startswith("Hypercorn, minimal ASGI app")
    assert lines[5].startswith("tserver / Hypercorn: latency ")
