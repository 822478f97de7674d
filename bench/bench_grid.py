"""Grid costs: wall time vs the ideal, requests under a 429 storm, the contact sheet."""

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
from bench.harness import Row
from mai_image_nb.offline import OfflineServer
from mai_image_nb.params import request_body, validate_params

LATENCY_S = 1.0


def grid_wall_time(rounds: int) -> list[Row]:
    """A 3×3 grid at 1.0 s latency on 9 workers vs 9 bare concurrent requests and the ideal."""
    grid_ms: list[float] = []
    bare_ms: list[float] = []
    with OfflineServer(image_scale=1 / 16, latency_s=LATENCY_S, seed=1) as srv:
        for r in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                client = mai.Client(base_url=srv.url, history=Path(tmp) / "h", max_workers=9)
                started = time.perf_counter()
                grid = client.compare(f"a fox, round {r}", progress=False, cache=False)
                grid_ms.append((time.perf_counter() - started) * 1000)
                assert not grid.failed
                client.close()
            bare_ms.append(_bare_concurrent(srv.url, 9, r))
    return [
        Row(
            "3×3 grid, 1.0 s latency, 9 workers",
            grid_ms,
            "ideal (one latency)",
            [LATENCY_S * 1000] * len(grid_ms),
            goal="≤ 1.15× ideal",
            ok=statistics.median(grid_ms) <= 1.15 * LATENCY_S * 1000,
        ),
        Row(
            "3×3 grid, 1.0 s latency, 9 workers",
            grid_ms,
            "9 bare threads, requests POST+GET",
            bare_ms,
        ),
    ]


def _bare_concurrent(url: str, n: int, round_: int) -> float:
    def one(i: int) -> None:
        with requests.Session() as session:
            body = request_body(validate_params(f"bare {round_} {i}", temperature=1.0))
            post_and_fetch(session, url, body, 30)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
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


def contact_sheet(rounds: int) -> list[Row]:
    """The labelled sheet of a 3×3 full-size grid vs the plain thumbnail resizes inside it."""
    with OfflineServer(seed=5) as srv, tempfile.TemporaryDirectory() as tmp:
        client = mai.Client(base_url=srv.url, history=Path(tmp) / "h", max_workers=3)
        grid = client.compare("a red fox in the snow at dusk", progress=False)
        blobs = [c.generation.data for c in grid.cells if c.generation is not None]
        client.close()
    sheet_ms: list[float] = []
    thumbs_ms: list[float] = []
    for _ in range(rounds):
        fresh = mai.Comparison(
            prompts=grid.prompts,
            aspect_ratios=grid.aspect_ratios,
            temperatures=grid.temperatures,
            repeats=grid.repeats,
            cells=[_undecoded(c) for c in grid.cells],
            rerun=lambda *a, **k: grid,
        )
        started = time.perf_counter()
        fresh.image()
        sheet_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        for blob in blobs:
            with Image.open(io.BytesIO(blob)) as im:
                im.thumbnail((456, 256))
        thumbs_ms.append((time.perf_counter() - started) * 1000)
    return [
        Row(
            "contact sheet, 3×3 full-size (decode included)",
            sheet_ms,
            "9 × decode + Image.thumbnail",
            thumbs_ms,
            goal="≤ 300 ms",
            ok=statistics.median(sheet_ms) <= 300,
        )
    ]


def _undecoded(cell: mai.Cell) -> mai.Cell:
    """The same cell with a copy of its Generation that has not decoded its image yet."""
    assert cell.generation is not None
    clone = cell.generation.as_cached()
    clone._image = None
    return mai.Cell(cell.prompt, cell.aspect_ratio, cell.temperature, cell.repeat, generation=clone)


def run(quick: bool = False) -> list[Row]:
    rows = grid_wall_time(rounds=2 if quick else 7)
    rows += storm_requests(rounds=2 if quick else 7)
    rows += contact_sheet(rounds=3 if quick else 15)
    return rows
