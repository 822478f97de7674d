"""Grid costs: wall time vs the ideal, requests under a 429 storm, the contact sheet, the report."""

from __future__ import annotations

import io
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests
from PIL import Image

import mai_image_nb as mai
from bench.bench_client import post_and_fetch
from bench.harness import Row, interleave
from mai_image_nb.offline import OfflineServer
from mai_image_nb.params import request_body, validate_params
from mai_image_nb.previews import preview_bytes

LATENCY_S = 1.0


PROMPTS = ("a red fox in the snow at dusk", "a lighthouse at sunset by the sea", "a cat")
WORKERS = 9


def grid_wall_time(rounds: int) -> list[Row]:
    """3 prompts × 3 ratios × 3 temperatures at 1.0 s latency on 9 workers vs the ideal.

    27 cells on 9 workers take at best three latencies; the peer is 27 bare requests
    (POST + GET) on 9 threads taking from one queue.
    """
    cells = len(PROMPTS) * 9
    ideal_ms = -(-cells // WORKERS) * LATENCY_S * 1000
    grid_ms: list[float] = []
    bare_ms: list[float] = []
    with OfflineServer(image_scale=1 / 16, latency_s=LATENCY_S, seed=1) as srv:
        for r in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                client = mai.Client(base_url=srv.url, history=Path(tmp) / "h", max_workers=WORKERS)
                prompts = [f"{p}, round {r}" for p in PROMPTS]
                started = time.perf_counter()
                grid = client.compare(prompts, progress=False, cache=False)
                grid_ms.append((time.perf_counter() - started) * 1000)
                assert not grid.failed
                assert len(grid) == cells
                client.close()
            bare_ms.append(_bare_concurrent(srv.url, cells, r))
    name = "3 prompts × 3 × 3 grid (27 cells), 1.0 s latency, 9 workers"
    return [
        Row(
            name,
            grid_ms,
            "ideal (27 / 9 × one latency)",
            [ideal_ms] * len(grid_ms),
            goal="≤ 1.15× ideal",
            ok=statistics.median(grid_ms) <= 1.15 * ideal_ms,
        ),
        Row(name, grid_ms, "27 bare requests POST+GET on 9 threads", bare_ms),
    ]


def _bare_concurrent(url: str, n: int, round_: int) -> float:
    todo = list(range(n))
    lock = threading.Lock()

    def worker() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                body = request_body(validate_params(f"bare {round_} {i}", temperature=1.0))
                post_and_fetch(session, url, body, 30)

    threads = [threading.Thread(target=worker) for _ in range(min(n, WORKERS))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - started) * 1000


def storm_requests(rounds: int) -> list[Row]:
    """Requests sent for a 3×3 grid that starts inside a 1 s window where every POST gets 429."""
    sent: list[float] = []
    workers = 4
    cells = 9
    for r in range(rounds):
        with OfflineServer(image_scale=1 / 16, latency_s=0.05, seed=r) as srv:
            with tempfile.TemporaryDirectory() as tmp:
                client = mai.Client(
                    base_url=srv.url, history=Path(tmp) / "h", max_workers=workers, max_retries=8
                )
                srv.rate_limit(1.0)
                grid = client.compare("a storm", progress=False)
                client.close()
            assert not grid.failed, grid.failed
            sent.append(float(srv.post_count))
    return [
        Row(
            "requests sent through a 1 s 429 storm, 3×3 grid, 4 workers",
            sent,
            "cells",
            [float(cells)] * len(sent),
            unit="requests",
            goal=f"≤ cells + workers ({cells + workers})",
            ok=max(sent) <= cells + workers,
            note="one shared back-off: each worker meets the storm at most once",
        )
    ]


def _full_size_grid() -> mai.Comparison:
    """3 prompts × 3 ratios × 3 temperatures of full-size simulator images."""
    with OfflineServer(seed=5) as srv, tempfile.TemporaryDirectory() as tmp:
        client = mai.Client(base_url=srv.url, history=Path(tmp) / "h", max_workers=3)
        grid = client.compare(list(PROMPTS), progress=False)
        for cell in grid.cells:  # bytes in memory before the folder goes
            assert cell.generation is not None
            cell.generation.data  # noqa: B018
        client.close()
    assert not grid.failed
    return grid


def _fresh(grid: mai.Comparison) -> mai.Comparison:
    """The same grid with nothing drawn or decoded yet."""
    return mai.Comparison(
        prompts=grid.prompts,
        aspect_ratios=grid.aspect_ratios,
        temperatures=grid.temperatures,
        repeats=grid.repeats,
        cells=grid.cells,
        rerun=lambda *a, **k: grid,
    )


def contact_sheet(rounds: int) -> list[Row]:
    """The labelled sheet and the HTML report of 27 full-size images vs the decodes inside them."""
    grid = _full_size_grid()
    blobs = [c.generation.data for c in grid.cells if c.generation is not None]

    def thumbnails() -> None:
        for blob in blobs:
            with Image.open(io.BytesIO(blob)) as im:
                im.thumbnail((456, 256))

    def previews() -> None:
        for blob in blobs:
            with Image.open(io.BytesIO(blob)) as im:
                preview_bytes(im, 512)

    sizes: list[float] = []

    def report() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = _fresh(grid).to_html(Path(tmp) / "grid.html")
            sizes.append(path.stat().st_size / 1e6)

    times = interleave(
        {
            "sheet": lambda: _fresh(grid).image(),
            "thumbs": thumbnails,
            "html": report,
            "previews": previews,
        },
        rounds=rounds,
        warmup=1,
    )
    sheet = _fresh(grid).image()
    return [
        Row(
            "contact sheet, 3 prompts × 3 × 3 full-size (decode included)",
            times["sheet"],
            "27 × decode + Image.thumbnail",
            times["thumbs"],
            goal="≤ 600 ms",
            ok=statistics.median(times["sheet"]) <= 600,
            note=f"sheet {sheet.width}×{sheet.height} px",
        ),
        Row(
            "to_html of that grid (27 previews embedded, written)",
            times["html"],
            "27 × decode + previews.preview_bytes",
            times["previews"],
            goal="≤ 1 s, file ≤ 3 MB",
            ok=statistics.median(times["html"]) <= 1000 and max(sizes) <= 3,
            note=f"file {max(sizes):.2f} MB",
        ),
    ]


def run(quick: bool = False) -> list[Row]:
    rows = grid_wall_time(rounds=2 if quick else 5)
    rows += storm_requests(rounds=2 if quick else 7)
    rows += contact_sheet(rounds=3 if quick else 15)
    return rows
