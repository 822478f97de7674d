"""Long session soak: one open client, 1,000 batches of 4 and 200 grids of 2×2, nothing grows.

Threads (`threading.active_count()`), open descriptors (`/proc/self/fd`) and RSS
(`/proc/self/statm`) are read from outside the client every 100 batches and every 50
grids; the simulator runs in this process too, so its threads and sockets count. Each
row compares the last sample with the first (taken after one warm-up batch).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import mai_image_nb as mai
from bench.harness import Row, Sample, growth_rows, sample_process
from mai_image_nb.offline import OfflineServer

BATCHES = {True: 100, False: 1000}
GRIDS = {True: 20, False: 200}
SAMPLE_EVERY_BATCHES = 100
SAMPLE_EVERY_GRIDS = 50
TINY_SCALE = 1 / 16  # 64×64 pictures: the session's bookkeeping, not image making


def soak(home: Path, quick: bool) -> tuple[list[Sample], int, float, int]:
    """(samples, POSTs, seconds, failures) of one client's long session."""
    batches, grids = BATCHES[quick], GRIDS[quick]
    failures = 0
    started = time.perf_counter()
    with OfflineServer(image_scale=TINY_SCALE, seed=11) as server:
        with mai.Client(base_url=server.url, history=home / "history", max_workers=4) as client:
            client.generate_many([f"warm up {k}" for k in range(4)], progress=False)
            samples = [sample_process("start")]
            for i in range(batches):
                results = client.generate_many(
                    [f"batch {i} item {k}" for k in range(4)], progress=False
                )
                failures += sum(not isinstance(r, mai.Generation) for r in results)
                if (i + 1) % SAMPLE_EVERY_BATCHES == 0:
                    samples.append(sample_process(f"batch {i + 1}"))
            for i in range(grids):
                grid = client.compare(
                    f"grid {i}", aspect_ratios=["1:1", "16:9"], temperatures=[0.4, 1.2],
                    progress=False,
                )  # fmt: skip
                failures += len(grid.failed)
                if (i + 1) % SAMPLE_EVERY_GRIDS == 0:
                    samples.append(sample_process(f"grid {i + 1}"))
        posts = server.post_count
    return samples, posts, time.perf_counter() - started, failures


def run(quick: bool) -> list[Row]:
    if not Path("/proc/self/fd").is_dir():
        print("[bench_soak] needs /proc (Linux): skipped")
        return []
    with tempfile.TemporaryDirectory(prefix="mai-soak-") as tmp:
        samples, posts, seconds, failures = soak(Path(tmp), quick)
    batches, grids = BATCHES[quick], GRIDS[quick]
    what = f"{batches} batches of 4 + {grids} grids of 2×2 on one client"
    return growth_rows(
        samples,
        subject="soak: {what} at the last sample",
        baseline="first sample",
        ok=failures == 0,
        note=f"{what}: {posts} POSTs in {seconds:.0f} s, {failures} failed",
    )
