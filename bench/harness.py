"""Side-by-side timing: every figure is a ratio against a floor or peer measured in the same run.

These machines are shared and noisy, so a subject and its baseline are interleaved
(subject, baseline, subject, …) and reported as min and median of each, and of the ratio.
"""

from __future__ import annotations

import gc
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Row", "Sample", "growth_rows", "interleave", "print_table", "sample_process"]


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


# A soak's goal: the last sample at most this much above the first ("flat").
GROWTH_SLACK = {"threads": 8, "fds": 24, "rss_mib": 64.0}
_GROWTH_NAMES = {"threads": ("threads", "threads"), "fds": ("open fds", "fds"),
                 "rss_mib": ("RSS", "MiB")}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """Threads, open descriptors and RSS of this process, read from outside the code."""

    when: str
    threads: int
    fds: int
    rss_mib: float


def sample_process(when: str) -> Sample:
    """Read `threading.active_count()`, `/proc/self/fd` and `/proc/self/statm` (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        rss_pages = int(statm.read().split()[1])
    return Sample(
        when,
        threading.active_count(),
        len(os.listdir("/proc/self/fd")),
        rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20,
    )


def growth_rows(
    samples: Sequence[Sample], *, subject: str, baseline: str, ok: bool = True, note: str = ""
) -> list[Row]:
    """One row each for threads, fds and RSS: the last sample against the first.

    `subject` and `baseline` are formats with `{what}` ("threads", "open fds", "RSS");
    `ok` is ANDed into every row's goal (e.g. "no call failed"); `note` goes on the first.
    """
    first, last = samples[0], samples[-1]
    rows: list[Row] = []
    for field, slack in GROWTH_SLACK.items():
        what, unit = _GROWTH_NAMES[field]
        values = [getattr(s, field) for s in samples]
        trace = "samples " + ", ".join(f"{v:.0f}" for v in values)
        rows.append(
            Row(
                subject.format(what=what),
                [getattr(last, field)],
                baseline.format(what=what),
                [getattr(first, field)],
                unit=unit,
                goal=f"≤ first + {slack:g}",
                ok=ok and getattr(last, field) <= getattr(first, field) + slack,
                note=trace + (f"; {note}" if note and not rows else ""),
            )
        )
    return rows


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
