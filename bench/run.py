"""tserver against its peers, side by side, in one interleaved run.

Usage::

    python bench/run.py            # the full run (a few minutes)
    python bench/run.py --quick    # fewer rounds and samples (under a minute)
    python bench/run.py --only keepalive,wrk --contenders thread,tornado

Contenders (see ``contenders.py``): tserver in thread and subprocess mode, a
bare Tornado app with one wildcard handler (in a thread, and in a child
process for start-up), pytest-httpserver and the stdlib ThreadingHTTPServer.
Each section runs several rounds; every round measures each contender in
turn, in a rotating order, so drift on a shared machine hits them all alike.
Figures are medians over the rounds; ratios divide medians of the same run.

The process pins itself to CPU 0 (its server threads and children inherit
that) and runs wrk on CPU 1 with ``taskset``.  Needs: ``pip install -e
'.[bench]'`` for pytest-httpserver (else that column is skipped with a note)
and ``wrk`` (``apt-get install wrk``; else the throughput section is skipped).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import measures
import procs
from contenders import Contender, have_httpserver, make
from report import (
    Table,
    build_targets,
    fmt_num,
    fmt_time,
    median,
    percentile,
    render_targets,
)

SECTIONS = [
    "startstop",
    "cycles",
    "fresh",
    "keepalive",
    "newconn",
    "wrk",
    "transfer",
    "control",
    "wait",
    "rss",
]
ALL = [
    "thread",
    "subprocess",
    "subprocess-cold",
    "tornado",
    "tornado-child",
    "httpserver",
    "stdlib",
]
SERVING = ["thread", "subprocess", "tornado", "httpserver", "stdlib"]
MIB = 1024 * 1024
#: Rounds and sample counts of the full run, --quick and --tiny (the smoke test).
SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "rounds": 3,
        "startstop": 1.0,
        "cycles": 500,
        "fresh": 2,
        "keepalive": 400,
        "newconn": 200,
        "wrk": 3.0,
        "wrk_rounds": 5,
        "mib": 50,
        "control": 1000,
        "wait": 200,
        "rss": 20000,
    },
    "quick": {
        "rounds": 2,
        "startstop": 0.5,
        "cycles": 100,
        "fresh": 1,
        "keepalive": 150,
        "newconn": 60,
        "wrk": 1.0,
        "wrk_rounds": 2,
        "mib": 50,
        "control": 300,
        "wait": 50,
        "rss": 5000,
    },
    "tiny": {
        "rounds": 1,
        "startstop": 0.1,
        "cycles": 2,
        "fresh": 1,
        "keepalive": 5,
        "newconn": 3,
        "wrk": 1.0,
        "wrk_rounds": 1,
        "mib": 1,
        "control": 5,
        "wait": 3,
        "rss": 300,
    },
}


def compile_bytecode() -> bool:
    """Write tserver's ``__pycache__`` if Python would not (True if it did).

    The peers come from wheels, byte-compiled when pip installed them; an
    editable tserver under ``PYTHONDONTWRITEBYTECODE`` would instead compile
    its sources in every fresh interpreter, which start-up figures would
    charge to tserver.
    """
    if not sys.flags.dont_write_bytecode:
        return False
    import compileall

    import tserver

    return bool(compileall.compile_dir(os.path.dirname(tserver.__file__), quiet=1))


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.size = SIZES["tiny" if args.tiny else "quick" if args.quick else "full"]
        self.rounds = args.rounds or self.size["rounds"]
        self.fixed_rounds = bool(args.rounds)
        self.contenders = [c for c in args.contenders.split(",") if c]
        self.notes: list[str] = []
        if "httpserver" in self.contenders and not have_httpserver():
            self.contenders.remove("httpserver")
            self.notes.append(
                "pytest-httpserver is not installed: its column is skipped "
                "(pip install -e '.[bench]')"
            )
        self.pin = (
            not args.no_pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
        )
        self.data: dict[str, Any] = {}
        self.tables: list[Table] = []
        if compile_bytecode():
            self.notes.append(
                "compiled tserver's bytecode first (as pip does at install): "
                "PYTHONDONTWRITEBYTECODE is set, so an editable install would "
                "recompile it in every fresh interpreter and child"
            )

    def pick(self, names: list[str]) -> list[str]:
        return [n for n in names if n in self.contenders]

    def interleave(
        self, names: list[str], measure: Any, rounds: int | None = None
    ) -> dict[str, list[Any]]:
        """``measure(name)`` for every name, round by round, in a rotating order."""
        results: dict[str, list[Any]] = {n: [] for n in names}
        for number in range(self.rounds if rounds is None or self.fixed_rounds else rounds):
            shift = number % max(1, len(names))
            for name in names[shift:] + names[:shift]:
                results[name].append(measure(name))
        return results

    def serving(
        self, names: list[str], measure: Any, rounds: int | None = None
    ) -> dict[str, list[Any]]:
        """Start *names* once, then `interleave` *measure(contender)*; stop them all."""
        started: dict[str, Contender] = {}
        try:
            for name in names:
                started[name] = make(name)
                started[name].start()
            return self.interleave(names, lambda n: measure(started[n]), rounds)
        finally:
            for contender in started.values():
                contender.stop()

    # -- sections ---------------------------------------------------------------

    def startstop(self) -> None:
        names = self.pick(ALL)
        reps = {
            "thread": 30,
            "tornado": 30,
            "subprocess": 30,
            "subprocess-cold": 10,
            "tornado-child": 10,
        }
        scale = self.size["startstop"]
        raw = self.interleave(
            names,
            lambda n: measures.start_stop(n, max(2, int(reps.get(n, 3) * scale)), 3.0 * scale),
        )
        table = Table("start / stop, in one process", names)
        for key in ("start", "stop", "start+stop"):
            values = {n: median(x for r in raw[n] for x in r[key]) for n in names}
            self.data[f"startstop.{key}"] = values
            self.data[f"startstop.{key}.rounds"] = {
                n: [median(r[key]) for r in raw[n]] for n in names
            }
            table.add(f"{key} (median)", {n: fmt_time(v) for n, v in values.items()})
        table.notes.append(
            "tornado-child: the bare app in `python -c`, started once it printed its port"
        )
        table.notes.append(
            "subprocess: the child forked by the warm spare, ready after one untimed start; "
            "subprocess-cold: spare=False, a fresh interpreter per child"
        )
        self.tables.append(table)

    def cycles(self) -> None:
        names = self.pick(["thread", "subprocess", "subprocess-cold"])
        count = self.size["cycles"]
        raw = self.interleave(names, lambda n: measures.cycles(n, count), rounds=1)
        values = {n: median(raw[n]) for n in names}
        self.data["cycles"] = values
        self.data["cycles.count"] = count
        table = Table(f"{count} consecutive start/stop cycles, one process", names)
        table.add("total", {n: f"{v:.2f} s" for n, v in values.items()})
        table.add("per cycle", {n: fmt_time(v / count) for n, v in values.items()})
        self.tables.append(table)

    def fresh(self) -> None:
        programs = dict(procs.FRESH)
        if "httpserver" not in self.contenders:
            programs = {k: v for k, v in programs.items() if "httpserver" not in k}
        reps = self.size["fresh"]
        raw = self.interleave(
            list(programs), lambda k: [procs.fresh_process(programs[k]) for _ in range(reps)]
        )
        values = {k: median(x for r in raw[k] for x in r) for k in programs}
        self.data["fresh"] = values
        table = Table("fresh interpreter, whole process", ["median"])
        for key, value in values.items():
            table.add(key, {"median": fmt_time(value)})
        self.tables.append(table)

    def keepalive(self) -> None:
        names = self.pick(SERVING)
        count = self.size["keepalive"]
        raw = self.serving(names, lambda c: measures.keepalive(c, count))
        p50 = {n: percentile([x for r in raw[n] for x in r], 0.5) for n in names}
        p99 = {n: percentile([x for r in raw[n] for x in r], 0.99) for n in names}
        self.data["keepalive.p50"], self.data["keepalive.p99"] = p50, p99
        self.data["keepalive.p50.rounds"] = {n: [percentile(r, 0.5) for r in raw[n]] for n in names}
        table = Table("keep-alive GET (http.client, same process)", names)
        table.add("p50", {n: fmt_time(v) for n, v in p50.items()})
        table.add("p99", {n: fmt_time(v) for n, v in p99.items()})
        self.tables.append(table)

    def p50_section(self, key: str, title: str, names: list[str], measure: Any) -> None:
        """Serve *names*, collect ``measure(contender)`` samples, show their median."""
        raw = self.serving(names, measure)
        p50 = {n: percentile([x for r in raw[n] for x in r], 0.5) for n in names}
        self.data[f"{key}.p50"] = p50
        table = Table(title, names)
        table.add("p50", {n: fmt_time(v) for n, v in p50.items()})
        self.tables.append(table)

    def newconn(self) -> None:
        count = self.size["newconn"]
        self.p50_section(
            "newconn",
            "GET on a new connection",
            self.pick(SERVING),
            lambda c: measures.new_connection(c, count),
        )

    def wrk(self) -> None:
        if shutil.which("wrk") is None:
            self.notes.append("wrk is not installed: throughput skipped (apt-get install wrk)")
            return
        names = self.pick(SERVING)
        seconds = self.size["wrk"]
        with measures.pinned_to_cpu0(self.pin):  # the servers' threads and children inherit it
            raw = self.serving(
                names, lambda c: measures.throughput(c, seconds, 16), self.size["wrk_rounds"]
            )
        rps = {n: median(r["rps"] for r in raw[n]) for n in names}
        self.data["wrk.rps"] = rps
        self.data["wrk.raw"] = raw
        table = Table(f"throughput: wrk -t1 -c16 -d{seconds:g}s (other core)", names)
        table.add("requests/s (median)", {n: fmt_num(v) for n, v in rps.items()})
        cpu = {n: median(r["cpu_per_request"] for r in raw[n]) for n in names}
        self.data["wrk.cpu"] = cpu
        self.data["wrk.rps.rounds"] = {n: [r["rps"] for r in raw[n]] for n in names}
        self.data["wrk.cpu.rounds"] = {n: [r["cpu_per_request"] for r in raw[n]] for n in names}
        table.add("server CPU per request", {n: fmt_time(v) for n, v in cpu.items()})
        table.add(
            "completed by wrk (sum)",
            {n: fmt_num(sum(r["wrk_completed"] for r in raw[n])) for n in names},
        )
        table.add(
            "counted by the server (sum)",
            {n: fmt_num(sum(r["server_count"] for r in raw[n])) for n in names},
        )
        table.add(
            "server - wrk (per run)",
            {
                n: ",".join(str(r["server_count"] - r["wrk_completed"]) for r in raw[n])
                for n in names
            },
        )
        table.add(
            "wrk errors (sum)",
            {n: fmt_num(sum(r["socket_errors"] + r["non2xx"] for r in raw[n])) for n in names},
        )
        table.notes.append(
            "wrk counts the responses it completed; the server counts every request it "
            "read, including the ones still in flight (at most one per connection) "
            "when wrk stops and closes its connections"
        )
        table.notes.append(
            "CPU per request: CPU time of the serving process over the run / requests it "
            "counted; steadier than requests/s when other jobs share the machine"
        )
        self.tables.append(table)

    def transfer(self) -> None:
        names = self.pick(SERVING)
        mib = self.size["mib"]
        blob = os.urandom(mib * MIB)

        def one(c: Contender) -> tuple[float, float]:
            # the best of two per round: a transfer is a fixed amount of
            # work, and other jobs on the machine only ever slow it down
            post = min(measures.big_post(c, blob) for _ in range(2))
            c.set_body(blob)
            get = min(measures.big_get(c, len(blob)) for _ in range(2))
            c.set_body(b"ok")
            return post, get

        raw = self.serving(names, one)
        post = {n: median(r[0] for r in raw[n]) for n in names}
        get = {n: median(r[1] for r in raw[n]) for n in names}
        self.data["transfer.post"], self.data["transfer.get"] = post, get
        self.data["transfer.post.rounds"] = {n: [r[0] for r in raw[n]] for n in names}
        self.data["transfer.get.rounds"] = {n: [r[1] for r in raw[n]] for n in names}
        table = Table(f"{mib} MiB body, new connection (best of 2 a round)", names)
        table.add("POST (time)", {n: fmt_time(v) for n, v in post.items()})
        table.add("POST (MiB/s)", {n: fmt_num(mib / v) for n, v in post.items()})
        table.add("GET (time)", {n: fmt_time(v) for n, v in get.items()})
        table.add("GET (MiB/s)", {n: fmt_num(mib / v) for n, v in get.items()})
        self.tables.append(table)

    def control(self) -> None:
        names = self.pick(["thread", "subprocess"])
        if not names:
            return
        counts = {
            "thread": self.size["control"] * 10,
            "subprocess": self.size["control"],
        }
        started: dict[str, Contender] = {}
        floor: procs.FloorChild | None = None
        try:
            for name in names:
                started[name] = make(name)
                started[name].start()
            measured = list(names)
            if "subprocess" in names:  # its floor runs in the same rounds, interleaved
                floor = procs.FloorChild()
                floor.prime(measures.one_request_history())
                measured.append("socketpair floor")

            def measure(name: str) -> dict[str, list[float]]:
                if name == "socketpair floor":
                    assert floor is not None
                    return floor.round_trips(counts["subprocess"])
                return measures.control_calls(started[name], counts[name])

            raw = self.interleave(measured, measure)
        finally:
            for contender in started.values():
                contender.stop()
            if floor is not None:
                floor.close()
        calls = list(raw[names[0]][0])
        values = {
            n: {k: median(x for r in raw[n] for x in r.get(k, [])) for k in calls if k in raw[n][0]}
            for n in measured
        }
        for call in ("set_response", "history (1 request)"):
            self.data[f"control.{call}"] = {n: values[n][call] for n in measured}
            self.data[f"control.{call}.rounds"] = {
                n: [median(r[call]) for r in raw[n]] for n in measured
            }
        columns = list(measured)
        if "thread" in names:
            values["thread floor"] = measures.thread_floor(counts["thread"])
            columns.insert(1, "thread floor")
        self.data["control"] = values
        table = Table("control calls (median per call)", columns)
        for call in calls:
            table.add(call, {c: fmt_time(values[c].get(call)) for c in columns})
        table.notes.append(
            "thread floor: a function call that takes a threading.Lock and sets a dict key; "
            "socketpair floor: pickle + socketpair round trip to a child Python echoing "
            "from an asyncio loop (the same data as the call, as plain Python objects)"
        )
        self.tables.append(table)

    def wait(self) -> None:
        names = self.pick(["thread", "subprocess"])
        if not names:
            return
        count = self.size["wait"]
        self.p50_section(
            "wait",
            "wait latency: recorded -> wait_request returns",
            names,
            lambda c: measures.wait_latency(c, count),
        )

    def rss(self) -> None:
        requests = self.size["rss"]
        runs: list[tuple[str, int | None]] = [
            (m, None) for m in ("thread", "subprocess") if m in self.contenders
        ]
        runs += [(m, 100) for m, _ in list(runs)]
        if "tornado" in self.contenders:
            runs.append(("tornado", None))
        results = {
            f"{m}{'' if lim is None else f' limit={lim}'}": procs.rss_worker(m, requests, lim)
            for m, lim in runs
        }
        self.data["rss"] = results
        table = Table(f"memory: RSS growth over {requests:,} small GETs", list(results))
        table.add("growth", {k: fmt_num(r["growth_kib"], "KiB") for k, r in results.items()})
        table.add(
            "per request", {k: fmt_num(r["bytes_per_request"], "B") for k, r in results.items()}
        )
        table.notes.append(
            "a GET with the headers requests sends, no body; RSS of the serving process "
            "(the child in subprocess mode); tornado keeps nothing: the allocator's noise"
        )
        self.tables.append(table)


def machine() -> str:
    import tornado

    import tserver

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, load {load}; "
        f"Python {platform.python_version()}, Tornado {tornado.version}, "
        f"tserver {tserver.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and samples")
    parser.add_argument("--tiny", action="store_true", help="a smoke test: figures meaningless")
    parser.add_argument("--rounds", type=int, default=0, help="rounds per section")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help="sections: " + ",".join(SECTIONS)
    )
    parser.add_argument("--contenders", default=",".join(ALL), help="of " + ",".join(ALL))
    parser.add_argument(
        "--no-pin", action="store_true", help="throughput: do not pin the servers to CPU 0"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown section(s) {sorted(unknown)}; expected {SECTIONS}")
    if set(args.contenders.split(",")) - set(ALL):
        parser.error(f"--contenders: expected some of {ALL}")
    bench = Bench(args)
    pinned = "not pinned"
    if bench.pin:
        pinned = "throughput: servers on CPU 0, wrk on CPU 1; other sections not pinned"
    began = time.monotonic()
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    print(f"tserver bench, {when}: {machine()}; {pinned}")
    print(
        f"command: python bench/run.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip()
    )
    for note in bench.notes:
        print(f"note: {note}")
    shown = len(bench.notes)
    for section in SECTIONS:
        if section in args.only.split(","):
            t0 = time.monotonic()
            getattr(bench, section)()
            print(f"\n[{section}: {time.monotonic() - t0:.1f}s]")
            for table in bench.tables:
                print(table.render())
            bench.tables.clear()  # printed as they come
            for note in bench.notes[shown:]:
                print(f"note: {note}")
            shown = len(bench.notes)
    targets = build_targets(bench.data, bench.size["mib"])
    print("\n" + render_targets(targets))
    print(f"\ntotal {time.monotonic() - began:.0f}s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "date": when,
                    "machine": machine(),
                    "args": vars(args),
                    "data": bench.data,
                    "targets": [t.as_dict() for t in targets],
                    "notes": bench.notes,
                },
                f,
                indent=1,
                default=str,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
