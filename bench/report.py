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
