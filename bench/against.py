"""tserver against an earlier tserver, in one interleaved run.

Usage::

    python bench/against.py                   # against REF, the full run
    python bench/against.py --ref HEAD~3 --quick
    python bench/against.py --ref A --now B  # two refs, neither the working tree

What a change costs per request: the tserver of a git ref (its ``tserver/``
exported with ``git archive`` into a temporary directory) and the tserver of
this working tree each serve from a child process of their own, in thread
mode, configured alike.  Each round measures both in turn, in a rotating
order: the median latency of small GETs on one kept-alive connection, and
wrk's throughput.  Figures are medians over the rounds; the table's ratio
divides two medians of the same run, and a target is checked on the median
of the per-round ratios, which a noisy machine moves less (``now / before``:
above 1 is slower for latency, below 1 is slower for throughput).  The
bench process, and so the servers, run on CPU 0; wrk on CPU 1.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import measures
from contenders import Contender, child_cpu_seconds
from report import Table, Target, fmt_num, fmt_time, median, render_targets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The main before connection tracking (issue 16): "Fixes from review...".
REF = "630cf54"

#: A server in a child process: thread mode, answering "ok"; one command per
#: line on stdin (``reset``, ``count``), the port and the module's path first.
SERVER_SCRIPT = r"""
import sys
import tserver
from tserver import TestServer

srv = TestServer(mode="thread").start()
srv.set_response("data", b"ok")
print(srv.port, tserver.__file__, flush=True)
for line in sys.stdin:
    if line.strip() == "reset":
        srv.reset()
        srv.set_response("data", b"ok")
        print("ok", flush=True)
    elif line.strip() == "count":
        print(srv.request_count, flush=True)
srv.stop()
"""


@dataclasses.dataclass(frozen=True)
class Size:
    """How long a run is: interleaved rounds, GETs per latency sample, seconds of wrk."""

    rounds: int
    keepalive: int
    wrk: float


SIZES = {
    "full": Size(rounds=7, keepalive=2000, wrk=3.0),
    "quick": Size(rounds=3, keepalive=500, wrk=1.0),
}


class TreeServer(Contender):
    """tserver imported from *tree*, serving in a child process."""

    def __init__(self, name: str, tree: str) -> None:
        super().__init__()
        self.name = name
        self.tree = tree
        self.module = ""
        self.proc: Any = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=self.tree)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=self.tree,  # `python -c` puts the working directory first on sys.path
        )
        port, self.module = self._line().split(" ", 1)
        self.port = int(port)
        if not self.module.startswith(self.tree):
            raise RuntimeError(f"{self.name}: imported {self.module}, not from {self.tree}")

    def _line(self, command: str | None = None) -> str:
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = str(self.proc.stdout.readline()).strip()
        if not line:
            raise RuntimeError(f"{self.name}: the server process ended ({self.proc.poll()})")
        return line

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()

    def count(self) -> int:
        return int(self._line("count"))

    def reset(self) -> None:
        self._line("reset")

    def cpu_seconds(self) -> float:
        return child_cpu_seconds(self.proc.pid)


@contextlib.contextmanager
def exported(ref: str) -> Iterator[str]:
    """A temporary directory holding ``tserver/`` as it was at *ref*."""
    archive = subprocess.run(
        ["git", "-C", ROOT, "archive", "--format=tar", ref, "tserver"],
        capture_output=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="tserver-ref-") as tree:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
        yield tree


def _short(ref: str) -> str:
    return subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "--short", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def rotate(names: list[str], number: int) -> list[str]:
    shift = number % len(names)
    return names[shift:] + names[:shift]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default=REF, help=f"the earlier tserver (default {REF})")
    parser.add_argument("--now", help="a ref to measure instead of the working tree")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs")
    parser.add_argument("--rounds", type=int, help="rounds instead of the size's")
    parser.add_argument("--connections", type=int, default=10, help="wrk's connections")
    args = parser.parse_args()
    size = SIZES["quick" if args.quick else "full"]
    if args.rounds:
        size = dataclasses.replace(size, rounds=args.rounds)
    commit = _short(args.ref)
    now = "the working tree" if args.now is None else _short(args.now)
    names = ["before", "now"]
    latency: dict[str, list[float]] = {n: [] for n in names}
    rps: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    pin = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    with (
        exported(args.ref) as tree,
        contextlib.nullcontext(ROOT) if args.now is None else exported(args.now) as now_tree,
        measures.pinned_to_cpu0(pin),
    ):
        servers = {"before": TreeServer("before", tree), "now": TreeServer("now", now_tree)}
        try:
            for server in servers.values():
                server.start()
            for number in range(size.rounds):
                for name in rotate(names, number):
                    samples = measures.keepalive(servers[name], size.keepalive)
                    latency[name].append(median(samples))
                for name in rotate(names, number + 1):
                    result = measures.throughput(servers[name], size.wrk, args.connections)
                    if result["socket_errors"] or result["non2xx"]:
                        raise RuntimeError(f"{name}: wrk saw errors: {result}")
                    rps[name].append(result["rps"])
                    cpu[name].append(result["cpu_per_request"])
        finally:
            for server in servers.values():
                if server.proc is not None:
                    server.stop()

    table = Table(f"tserver {now} (now) against {commit} (before)", [*names, "now / before"])
    p50 = {n: median(latency[n]) for n in names}
    rate = {n: median(rps[n]) for n in names}
    per_request = {n: median(cpu[n]) for n in names}
    table.add(
        "keep-alive GET, median",
        {
            **{n: fmt_time(p50[n]) for n in names},
            "now / before": f"{p50['now'] / p50['before']:.3f}",
        },
    )
    table.add(
        f"wrk -c{args.connections}, requests/s",
        {
            **{n: fmt_num(rate[n]) for n in names},
            "now / before": f"{rate['now'] / rate['before']:.3f}",
        },
    )
    table.add(
        "server CPU per request (wrk)",
        {
            **{n: fmt_time(per_request[n]) for n in names},
            "now / before": f"{per_request['now'] / per_request['before']:.3f}",
        },
    )
    table.notes.append(
        f"{size.rounds} rounds; each: {size.keepalive} GETs per server on one "
        f"connection, then wrk for {size.wrk:g} s each; medians over the rounds"
    )
    table.notes.append(
        "per-round ratios, keep-alive: "
        + " ".join(f"{a / b:.3f}" for a, b in zip(latency["now"], latency["before"], strict=True))
    )
    table.notes.append(
        "per-round ratios, wrk: "
        + " ".join(f"{a / b:.3f}" for a, b in zip(rps["now"], rps["before"], strict=True))
    )
    print(table.render())
    latency_ratio = median(a / b for a, b in zip(latency["now"], latency["before"], strict=True))
    rps_ratio = median(a / b for a, b in zip(rps["now"], rps["before"], strict=True))
    print()
    print(
        render_targets(
            [
                Target(
                    "keep-alive GET latency, now / before <= 1.05",
                    latency_ratio,
                    1.05,
                    at_most=True,
                    shown=f"{latency_ratio:.3f}",
                ),
                Target(
                    "wrk throughput, now / before >= 0.95",
                    rps_ratio,
                    0.95,
                    at_most=False,
                    shown=f"{rps_ratio:.3f}",
                ),
            ]
        )
    )


if __name__ == "__main__":
    main()
