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
    lines = [
        "Targets (ratios from this run: medians of the per-round ratios)",
        "-" * (width + shown_width + 10),
    ]
    for t in targets:
        lines.append(f"{t.label.ljust(width)}  {t.shown.rjust(shown_width)}  {t.status}")
    return "\n".join(lines)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a != a or b != b or b == 0:
        return None
    return a / b


def paired(d: dict[str, Any], key: str, a: str, b: str) -> float | None:
    """*a* / *b* for the figure *key*: the median of the per-round ratios.

    The contenders of a round ran back to back, under the same load; the
    median of those ratios is steadier than the ratio of two medians taken
    from different rounds.  Falls back to the ratio of the medians.
    """
    rounds = d.get(key + ".rounds", {})
    if a in rounds and b in rounds and rounds[a] and rounds[b]:
        ratios = [ratio(x, y) for x, y in zip(rounds[a], rounds[b], strict=True)]
        known = [r for r in ratios if r is not None]
        if known:
            return median(known)
    return ratio(d.get(key, {}).get(a), d.get(key, {}).get(b))


def build_targets(d: dict[str, Any], mib: int) -> list[Target]:
    """The targets of issue 10, each from the figures of one run."""
    ctl = d.get("control", {})
    startstop = d.get("startstop.start+stop", {})
    # label, value, bound, at most (else at least), unit ("x": a ratio)
    rows: list[tuple[str, float | None, float, int, str]] = [
        ("thread throughput >= 1.0x tornado", paired(d, "wrk.rps", "thread", "tornado"), 1, 0, "x"),
        ("  by server CPU per request", paired(d, "wrk.cpu", "tornado", "thread"), 1, 0, "x"),
        (
            "thread throughput >= 1.4x httpserver",
            paired(d, "wrk.rps", "thread", "httpserver"),
            1.4,
            0,
            "x",
        ),
        ("  by server CPU per request", paired(d, "wrk.cpu", "httpserver", "thread"), 1.4, 0, "x"),
        (
            "keep-alive p50 <= 1.05x tornado",
            paired(d, "keepalive.p50", "thread", "tornado"),
            1.05,
            1,
            "x",
        ),
        ("thread start+stop <= 1 ms", startstop.get("thread"), 1e-3, 1, "s"),
        (
            "subprocess-cold start <= 1.1x tornado child",
            paired(d, "startstop.start", "subprocess-cold", "tornado-child"),
            1.1,
            1,
            "x",
        ),
        (
            "subprocess start, spare ready <= 5 ms",
            d.get("startstop.start", {}).get("subprocess"),
            5e-3,
            1,
            "s",
        ),
        (
            f"{d.get('cycles.count', 500)} subprocess cycles >= 10x faster than cold",
            ratio(
                d.get("cycles", {}).get("subprocess-cold"), d.get("cycles", {}).get("subprocess")
            ),
            10,
            0,
            "x",
        ),
    ]
    for call in ("set_response", "history (1 request)"):
        rows.append((f"thread {call} <= 10 us", ctl.get("thread", {}).get(call), 10e-6, 1, "s"))
    for call in ("set_response", "history (1 request)"):
        value = paired(d, f"control.{call}", "subprocess", "socketpair floor")
        rows.append((f"subprocess {call} <= 2x floor", value, 2, 1, "x"))
    for key, what in (("transfer.post", "POST"), ("transfer.get", "GET")):
        speed = paired(d, key, "tornado", "thread")
        rows.append((f"{mib} MiB {what} >= 1.0x tornado (speed)", speed, 1, 0, "x"))
    rss = d.get("rss", {})
    for mode in ("thread", "subprocess"):
        if mode in rss:
            per = rss[mode]["bytes_per_request"]
            rows.append((f"{mode}: memory per request <= 1 KiB", per, 1024, 1, "B"))
        if f"{mode} limit=100" in rss:
            growth = rss[f"{mode} limit=100"]["growth_kib"] * 1024
            rows.append(
                (f"{mode}: history_limit=100 keeps RSS flat (<= 2 MiB)", growth, 2 << 20, 1, "B")
            )
    out = []
    for label, value, bound, at_most, unit in rows:
        if value is None:
            shown = "-"
        elif unit == "x":
            shown = f"{value:.2f}x"
        else:
            shown = fmt_time(value) if unit == "s" else fmt_num(value, unit)
        out.append(Target(label, value, bound, at_most=bool(at_most), shown=shown))
    return out
