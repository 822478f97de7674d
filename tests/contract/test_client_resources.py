"""Long sessions stay bounded: threads, sockets and memory do not grow with the number of calls.

These are leak tests with generous bounds, not speed tests (the soak benchmark in
bench/bench_soak.py runs the long version). Counts are read from outside the code under
test: `threading.active_count()`, `/proc/self/fd`, the process's RSS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb.offline import OfflineServer

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc (Linux only)"
)

THREAD_SLACK = 8
FD_SLACK = 24


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_batches_and_grids_leave_threads_and_sockets_bounded(
    server: OfflineServer, tmp_path: Path
) -> None:
    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=4) as c:
        c.generate_many(["warm up a", "warm up b", "warm up c", "warm up d"], progress=False)
        threads, fds = threading.active_count(), open_fds()
        for i in range(36):
            results = c.generate_many([f"batch {i} item {k}" for k in range(4)], progress=False)
            assert all(isinstance(r, mai.Generation) for r in results), results
        for i in range(12):
            grid = c.compare(
                f"grid {i}", aspect_ratios=["1:1", "16:9"], temperatures=[0.5, 1.0], progress=False
            )
            assert not grid.failed, grid.failed
        # Before the fix: one session (and one simulator thread) per dead worker, 200+ here.
        assert threading.active_count() <= threads + THREAD_SLACK
        assert open_fds() <= fds + FD_SLACK
    assert server.post_count == 4 + 36 * 4 + 12 * 4
    # Sessions are reused across batches: connections stay near 2 × max_workers, not 1 a call.
    assert server.connection_count <= 4 * 2 * 2, server.connection_count


def _run_script(script: str, tmp_path: Path, timeout_s: float = 300) -> str:
    env = {**os.environ, "MAI_IMAGE_HOME": str(tmp_path / "home"), "PYTHONWARNINGS": "error"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_twenty_grids_under_ulimit_256(tmp_path: Path) -> None:
    """With 256 file descriptors, 20 grids on one client never fail a cell for lack of sockets."""
    out = _run_script(
        """
        import os, resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard if hard != -1 else 256))
        import mai_image_nb as mai
        from mai_image_nb.offline import OfflineServer
        failed = 0
        with OfflineServer(image_scale=0.125, seed=3) as srv:
            with mai.Client(base_url=srv.url, history="hist") as c:
                for i in range(20):
                    grid = c.compare(f"grid {i}", progress=False)
                    failed += len(grid.failed)
                    for cell in grid.failed:
                        print("FAILED", type(cell.error).__name__, cell.error)
                fds = len(os.listdir("/proc/self/fd"))
            print("posts", srv.post_count)
        print("failed", failed, "fds", fds)
        """,
        tmp_path,
    )
    assert "failed 0 " in out, out
    assert "posts 180" in out, out
    assert int(out.split("fds ")[1]) < 256 - 64, out


@pytest.mark.slow
def test_history_false_memory_stays_near_the_size_of_the_files(tmp_path: Path) -> None:
    """100 full-size images with history=False, each shown once: RSS grows by about the bytes.

    Decoded 1024×1024 RGB pixels are 3 MiB an image (300 MiB for 100, as before the fix);
    the encoded files are a small fraction of that.
    """
    out = _run_script(
        """
        import gc
        import mai_image_nb as mai
        from mai_image_nb.offline import OfflineServer

        def rss_mib():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096 / 2**20

        with OfflineServer(seed=5) as srv:
            with mai.Client(base_url=srv.url, history=False, max_workers=2) as c:
                c.generate("warm up").image.size
                gc.collect()
                before = rss_mib()
                kept = []
                for i in range(100):
                    g = c.generate(f"a lighthouse number {i}")
                    assert g.image.size == (1024, 1024)  # decoded, shown, let go
                    kept.append(g)
                gc.collect()
                grown = rss_mib() - before
                files = sum(len(g.data) for g in kept) / 2**20
                print(f"grown {grown:.1f} files {files:.1f}")
            after_close = rss_mib()
        print(f"closed {after_close:.1f}")
        """,
        tmp_path,
    )
    grown, files = (float(x) for x in out.split()[1:4:2])
    assert grown <= files + 96, out  # retaining decoded pixels would add ~300 MiB


def test_decoded_pixels_are_not_retained_and_close_releases_the_memory_cache(
    server: OfflineServer,
) -> None:
    import gc
    import weakref

    from mai_image_nb.params import validate_params

    with mai.Client(base_url=server.url, history=False) as c:
        gen = c.generate("a lighthouse")
        shown = gen.image
        assert gen.image is shown  # the same object while someone holds it
        pixels = weakref.ref(shown)
        del shown
        gc.collect()
        assert pixels() is None, "a cache or the Generation kept the decoded image"
        assert gen.image.size == (gen.width, gen.height)  # decoded again on demand
        params = validate_params("a lighthouse", model=c.model)
        assert c.cached(params) is not None
    assert c.cached(params) is None  # close() let go of the in-memory cache
