"""Side-by-side timing: every figure is a ratio against a floor or peer measured in the same run.

These machines are shared and noisy, so a subject and its baseline are interleaved
(subject, baseline, subject, …) and reported as min and median of each, and of the ratio.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Row", "interleave", "print_table"]


@dataclass(frozen=True)
class Row:
    """One line of the table: subject vs baseline, in the unit given."""

    name: str
    subject: Sequence[float]
    baseline_name: str
    baseline: Sequence[float]
    unit: str = "ms"
    goal: str = ""
    ok: bool | None = None
    note: str = ""

    @property
    def ratio_min(self) -> float:
        return min(self.subject) / min(self.baseline) if min(self.baseline) else float("inf")

    @property
    def ratio_median(self) -> float:
        base = statistics.median(self.baseline)
        return statistics.median(self.subject) / base if base else float("inf")


def interleave(
    subjects: dict[str, Callable[[], object]], *, rounds: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Time each callable `rounds` times, taking turns, in milliseconds."""
    for _ in range(warmup):
        for fn in subjects.values():
            fn()
    timings: dict[str, list[float]] = {name: [] for name in subjects}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in subjects.items():
                started = time.perf_counter()
                fn()
                timings[name].append((time.perf_counter() - started) * 1000)
    finally:
        if gc_was_enabled:
            gc.enable()
    return timings


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def print_table(rows: Sequence[Row]) -> str:
    """A Markdown table of every row; returned and printed."""
    header = (
        "| benchmark | subject min / median | baseline | baseline min / median "
        "| ratio min / median | goal | met |"
    )
    lines = [header, "|---|---|---|---|---|---|---|"]
    for row in rows:
        met = "" if row.ok is None else ("yes" if row.ok else "**no**")
        lines.append(
            f"| {row.name} | {_fmt(min(row.subject))} / {_fmt(statistics.median(row.subject))} "
            f"{row.unit} | {row.baseline_name} | {_fmt(min(row.baseline))} / "
            f"{_fmt(statistics.median(row.baseline))} {row.unit} | "
            f"{row.ratio_min:.2f}× / {row.ratio_median:.2f}× | {row.goal} | {met} |"
        )
        if row.note:
            lines.append(f"| ↳ {row.note} | | | | | | |")
    text = "\n".join(lines)
    print(text)
    return text
