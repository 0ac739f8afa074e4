"""Tables and targets: turn the medians of `run.py` into text."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    index = min(len(data) - 1, max(0, round(fraction * (len(data) - 1))))
    return data[index]


def fmt_time(seconds: float | None) -> str:
    """Microseconds below 1 ms, milliseconds below 10 s."""
    if seconds is None or seconds != seconds:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us" if seconds < 1e-4 else f"{seconds * 1e6:.0f} us"
    if seconds < 10:
        return f"{seconds * 1e3:.2f} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.1f} s"


def fmt_num(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"


class Table:
    """Rows of labelled cells under a fixed list of columns."""

    def __init__(self, title: str, columns: Sequence[str]) -> None:
        self.title = title
        self.columns = list(columns)
        self.rows: list[tuple[str, dict[str, str]]] = []
        self.notes: list[str] = []

    def add(self, label: str, cells: dict[str, str]) -> None:
        self.rows.append((label, cells))

    def render(self) -> str:
        label_width = max([len(self.title), *(len(label) for label, _ in self.rows)])
        widths = {
            c: max([len(c), *(len(cells.get(c, "")) for _, cells in self.rows)])
            for c in self.columns
        }
        head = (
            self.title.ljust(label_width)
            + "  "
            + "  ".join(c.rjust(widths[c]) for c in self.columns)
        )
        lines = [head, "-" * len(head)]
        for label, cells in self.rows:
            lines.append(
                label.ljust(label_width)
                + "  "
                + "  ".join(cells.get(c, "").rjust(widths[c]) for c in self.columns)
            )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


class Target:
    """One target: a measured figure against a bound."""

    def __init__(
        self, label: str, value: float | None, bound: float, *, at_most: bool, shown: str
    ) -> None:
        self.label = label
        self.value = value
        self.bound = bound
        self.at_most = at_most
        self.shown = shown

    @property
    def status(self) -> str:
        if self.value is None or self.value != self.value:
            return "n/a"
        ok = self.value <= self.bound if self.at_most else self.value >= self.bound
        return "PASS" if ok else "MISS"

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.label,
            "value": self.value,
            "bound": self.bound,
            "at_most": self.at_most,
            "shown": self.shown,
            "status": self.status,
        }


def render_targets(targets: Sequence[Target]) -> str:
    width = max(len(t.label) for t in targets)
    shown_width = max(len(t.shown) for t in targets)
    lines = ["Targets (ratios from this run)", "-" * (width + shown_width + 10)]
    for t in targets:
        lines.append(f"{t.label.ljust(width)}  {t.shown.rjust(shown_width)}  {t.status}")
    return "\n".join(lines)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a != a or b != b or b == 0:
        return None
    return a / b


def build_targets(d: dict[str, Any], mib: int) -> list[Target]:
    """The targets of issue 10, each from the figures of one run."""
    out: list[Target] = []

    def add(label: str, value: float | None, bound: float, at_most: bool, unit: str = "x") -> None:
        if value is None:
            shown = "-"
        elif unit == "x":
            shown = f"{value:.2f}x"
        else:
            shown = fmt_time(value) if unit == "s" else fmt_num(value, unit)
        out.append(Target(label, value, bound, at_most=at_most, shown=shown))

    rps, cpu = d.get("wrk.rps", {}), d.get("wrk.cpu", {})
    add(
        "thread throughput >= 1.0x tornado",
        ratio(rps.get("thread"), rps.get("tornado")),
        1.0,
        False,
    )
    add(
        "  the same, by server CPU per request",
        ratio(cpu.get("tornado"), cpu.get("thread")),
        1.0,
        False,
    )
    add(
        "thread throughput >= 1.4x httpserver",
        ratio(rps.get("thread"), rps.get("httpserver")),
        1.4,
        False,
    )
    ka = d.get("keepalive.p50", {})
    add("keep-alive p50 <= 1.05x tornado", ratio(ka.get("thread"), ka.get("tornado")), 1.05, True)
    add(
        "thread start+stop <= 1 ms",
        d.get("startstop.start+stop", {}).get("thread"),
        1e-3,
        True,
        "s",
    )
    st = d.get("startstop.start", {})
    add(
        "subprocess start <= 1.1x tornado child",
        ratio(st.get("subprocess"), st.get("tornado-child")),
        1.1,
        True,
    )
    ctl = d.get("control", {})
    for call in ("set_response", "history (1 request)"):
        add(f"thread {call} <= 10 us", ctl.get("thread", {}).get(call), 10e-6, True, "s")
    floor = ctl.get("socketpair floor", {})
    for call in ("set_response", "history (1 request)"):
        mine = ctl.get("subprocess", {}).get(call)
        add(f"subprocess {call} <= 2x floor", ratio(mine, floor.get(call)), 2.0, True)
    for key, what in (("transfer.post", "POST"), ("transfer.get", "GET")):
        times = d.get(key, {})
        add(
            f"{mib} MiB {what} >= 1.0x tornado (speed)",
            ratio(times.get("tornado"), times.get("thread")),
            1.0,
            False,
        )
    rss = d.get("rss", {})
    for mode in ("thread", "subprocess"):
        if mode in rss:
            add(
                f"{mode}: memory per request <= 1 KiB",
                rss[mode]["bytes_per_request"],
                1024,
                True,
                "B",
            )
        limited = rss.get(f"{mode} limit=100")
        if limited:
            growth = limited["growth_kib"] * 1024
            add(f"{mode}: history_limit=100 keeps RSS flat (<= 2 MiB)", growth, 2 << 20, True, "B")
    return out
