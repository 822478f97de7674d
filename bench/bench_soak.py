"""Long session soak: one open client, 1,000 batches of 4 and 200 grids of 2×2, nothing grows.

Threads (`threading.active_count()`), open descriptors (`/proc/self/fd`) and RSS
(`/proc/self/statm`) are read from outside the client every 100 batches and every 50
grids; the simulator runs in this process too, so its threads and sockets count. Each
row compares the last sample with the first (taken after one warm-up batch).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import mai_image_nb as mai
from bench.harness import Row
from mai_image_nb.offline import OfflineServer

BATCHES = {True: 100, False: 1000}
GRIDS = {True: 20, False: 200}
SAMPLE_EVERY_BATCHES = 100
SAMPLE_EVERY_GRIDS = 50
SLACK = {"threads": 8, "fds": 24, "rss": 64.0}  # last ≤ first + this
TINY_SCALE = 1 / 16  # 64×64 pictures: the session's bookkeeping, not image making


@dataclass(frozen=True)
class Sample:
    when: str
    threads: int
    fds: int
    rss_mib: float


def sample(when: str) -> Sample:
    with open("/proc/self/statm", encoding="ascii") as statm:
        rss_pages = int(statm.read().split()[1])
    return Sample(
        when,
        threading.active_count(),
        len(os.listdir("/proc/self/fd")),
        rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20,
    )


def soak(home: Path, quick: bool) -> tuple[list[Sample], int, float, int]:
    """(samples, POSTs, seconds, failures) of one client's long session."""
    batches, grids = BATCHES[quick], GRIDS[quick]
    failures = 0
    started = time.perf_counter()
    with OfflineServer(image_scale=TINY_SCALE, seed=11) as server:
        with mai.Client(base_url=server.url, history=home / "history", max_workers=4) as client:
            client.generate_many([f"warm up {k}" for k in range(4)], progress=False)
            samples = [sample("start")]
            for i in range(batches):
                results = client.generate_many(
                    [f"batch {i} item {k}" for k in range(4)], progress=False
                )
                failures += sum(not isinstance(r, mai.Generation) for r in results)
                if (i + 1) % SAMPLE_EVERY_BATCHES == 0:
                    samples.append(sample(f"batch {i + 1}"))
            for i in range(grids):
                grid = client.compare(
                    f"grid {i}", aspect_ratios=["1:1", "16:9"], temperatures=[0.4, 1.2],
                    progress=False,
                )  # fmt: skip
                failures += len(grid.failed)
                if (i + 1) % SAMPLE_EVERY_GRIDS == 0:
                    samples.append(sample(f"grid {i + 1}"))
        posts = server.post_count
    return samples, posts, time.perf_counter() - started, failures


def run(quick: bool) -> list[Row]:
    if not Path("/proc/self/fd").is_dir():
        print("[bench_soak] needs /proc (Linux): skipped")
        return []
    with tempfile.TemporaryDirectory(prefix="mai-soak-") as tmp:
        samples, posts, seconds, failures = soak(Path(tmp), quick)
    first, last = samples[0], samples[-1]
    batches, grids = BATCHES[quick], GRIDS[quick]
    what = f"{batches} batches of 4 + {grids} grids of 2×2 on one client"
    note = f"{what}: {posts} POSTs in {seconds:.0f} s, {failures} failed"
    rows = []
    for field, unit in (("threads", "threads"), ("fds", "fds"), ("rss_mib", "MiB")):
        slack = SLACK["rss" if field == "rss_mib" else field]
        values = [getattr(s, field) for s in samples]
        trace = ", ".join(f"{v:.0f}" for v in values)
        rows.append(
            Row(
                f"soak: {field.replace('_mib', '')} at the last sample",
                [getattr(last, field)],
                "first sample",
                [getattr(first, field)],
                unit=unit,
                goal=f"≤ first + {slack:g}",
                ok=getattr(last, field) <= getattr(first, field) + slack and failures == 0,
                note=f"samples {trace}" + (f"; {note}" if field == "threads" else ""),
            )
        )
    return rows
