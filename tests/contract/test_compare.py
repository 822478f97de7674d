"""Grids and batches over loopback: concurrency, shared back-off, cancel, retry, budget."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import mai_image_nb as mai
from mai_image_nb import errors
from mai_image_nb.comparison import GRID_KEY
from mai_image_nb.offline import Fault, OfflineServer
from mai_image_nb.params import IMAGE_SIZES
from mai_image_nb.sheet import TILE_HEIGHT_PX

RATIOS = ("1:1", "16:9", "9:16")
TEMPS = (0.2, 1.0, 1.8)


def post_times(server: OfflineServer) -> list[float]:
    return sorted(r.time for r in server.requests if r.method == "POST")


@pytest.fixture
def grid_client(server: OfflineServer, tmp_path: Path) -> Iterator[mai.Client]:
    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=9) as c:
        yield c


def test_3x3_grid_runs_concurrently_and_each_image_is_in_its_cell(
    server: OfflineServer, grid_client: mai.Client
) -> None:
    latency_s = 2.0
    server.set_latency(latency_s)
    grid = grid_client.compare("a lighthouse", progress=False)
    # Concurrent: every POST arrived before the first one could have been answered (each is
    # held for the latency). How long the grid took is bench_grid's business.
    times = post_times(server)
    assert len(times) == 9 and times[-1] - times[0] < latency_s
    assert len(grid.cells) == 9
    assert not grid.failed
    for cell in grid.cells:
        assert cell.generation is not None
        assert cell.generation.aspect_ratio == cell.aspect_ratio
        assert cell.generation.temperature == cell.temperature
        a, b = (int(x) for x in cell.aspect_ratio.split(":"))
        tile = cell.generation.image
        assert abs(tile.width / tile.height - a / b) / (a / b) < 0.01
    assert grid["16:9", 1.8].aspect_ratio == "16:9"
    assert grid.total_usd == pytest.approx(9 * 0.0627)
    assert grid.paid_usd == pytest.approx(9 * 0.0627)


def test_getitem_matches_values_as_passed(grid_client: mai.Client) -> None:
    grid = grid_client.compare(
        "a cat", aspect_ratios=["4:3"], temperatures=[1, 0.5], progress=False
    )
    assert grid["4:3", 1].temperature == 1.0
    assert grid["4:3", 0.5].temperature == 0.5
    with pytest.raises(KeyError):
        grid["1:1", 1]


def test_grid_then_same_grid_is_free_and_cached(
    server: OfflineServer, grid_client: mai.Client
) -> None:
    first = grid_client.compare("a cat", repeats=2, progress=False)
    assert server.post_count == 18
    again = grid_client.compare("a cat", repeats=2, progress=False)
    assert server.post_count == 18
    assert again.paid_usd == 0
    assert again.total_usd == pytest.approx(first.total_usd)
    assert [c.generation.id for c in again.cells] == [c.generation.id for c in first.cells]  # type: ignore[union-attr]
    # Repeat r of a cell is sample=r of generate(): the grid and single calls share the cache.
    single = grid_client.generate("a cat", aspect_ratio="16:9", temperature=1.0, sample=1)
    assert single.cached
    assert single.id == next(
        c.generation.id  # type: ignore[union-attr]
        for c in first.cells
        if (c.aspect_ratio, c.temperature, c.repeat) == ("16:9", 1.0, 1)
    )


def test_shared_backoff_no_request_inside_the_window(server: OfflineServer, tmp_path: Path) -> None:
    server.set_latency(0.3)
    server.script(Fault.status(429, retry_after="2"))
    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=3) as c:
        grid = c.compare("a fox", progress=False)
    assert not grid.failed
    times = post_times(server)
    assert len(times) == 10  # nine cells, one of them twice
    start = times[0]
    inside = [t - start for t in times if 0.25 < t - start < 1.95]
    assert inside == []
    assert sum(1 for t in times if t - start <= 0.25) <= 3  # only the first wave


def test_failed_cells_keep_their_neighbours_and_retry_only_them(
    server: OfflineServer, tmp_path: Path
) -> None:
    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=1) as c:
        server.script(Fault.status(400), Fault.out_of_credits())
        grid = c.compare("a fox", progress=False)
        assert len(grid.failed) == 2
        failed_keys = {(x.aspect_ratio, x.temperature) for x in grid.failed}
        kept = {(x.aspect_ratio, x.temperature): x.generation.id for x in grid.cells if x.ok}  # type: ignore[union-attr]
        assert len(kept) == 7
        assert isinstance(grid.failed[1].error, errors.AuthenticationError)
        before = server.post_count
        retried = grid.retry_failed(progress=False)
        assert server.post_count == before + 2
        assert not retried.failed
        for cell in retried.cells:
            key = (cell.aspect_ratio, cell.temperature)
            if key in kept:
                assert cell.generation is not None and cell.generation.id == kept[key]
            else:
                assert key in failed_keys
        assert retried.retry_failed(progress=False) is retried


def test_cancel_mid_run(server: OfflineServer, tmp_path: Path) -> None:
    server.set_latency(0.2)
    cancel = threading.Event()
    cancelled_at: list[float] = []
    finished: list[mai.Cell] = []

    def on_cell(cell: mai.Cell) -> None:
        finished.append(cell)
        if not cancel.is_set():
            cancelled_at.append(time.monotonic())
            cancel.set()

    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=2) as c:
        grid = c.compare("a fox", progress=False, cancel=cancel, on_cell=on_cell)
        cancelled = [x for x in grid.cells if isinstance(x.error, errors.CancelledError)]
        done = [x for x in grid.cells if x.ok]
        assert cancelled
        assert done
        assert len(cancelled) + len(done) == 9
        assert all(t <= cancelled_at[0] for t in post_times(server))
        sent = server.post_count
        again = c.compare("a fox", progress=False)
        assert not again.failed
        assert server.post_count - sent == len(cancelled)


def test_keyboard_interrupt_stops_sending_and_loses_nothing(
    server: OfflineServer, tmp_path: Path
) -> None:
    server.set_latency(0.2)
    main = threading.main_thread().ident
    assert threading.get_ident() == main

    interrupted = threading.Event()

    def interrupt(cell: mai.Cell) -> None:  # Jupyter's stop button, once
        assert main is not None
        if not interrupted.is_set():
            interrupted.set()
            signal.pthread_kill(main, signal.SIGINT)

    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=2) as c:
        with pytest.raises(KeyboardInterrupt):
            c.compare("an owl", progress=False, on_cell=interrupt)
        # Requests already on the wire finish in the background and land in the history.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(c.history or []) < server.post_count:
            threading.Event().wait(0.02)
        sent = server.post_count
        assert sent < 9
        assert len(c.history or []) == sent
        again = c.compare("an owl", progress=False)
        assert not again.failed
        assert server.post_count - sent == 9 - sent
        assert again.paid_usd == pytest.approx((9 - sent) * 0.0627)


def test_budget_refuses_a_grid_before_starting(server: OfflineServer, tmp_path: Path) -> None:
    with mai.Client(base_url=server.url, history=tmp_path / "h", budget_usd=0.5) as c:
        c.compare("a fox", aspect_ratios=["1:1"], progress=False)  # 3 images, 0.19
        with pytest.raises(errors.BudgetExceededError) as info:
            c.compare("a fox", progress=False)  # 6 more would pass 0.5
        assert server.post_count == 3
        assert "0.3762" in str(info.value)  # the estimate of the 6 uncached cells
        # only the uncached cells count: the first row again is free
        c.compare("a fox", aspect_ratios=["1:1"], progress=False)
        assert server.post_count == 3


def test_contact_sheet_has_label_bands_and_one_tile_per_cell(
    server: OfflineServer, tmp_path: Path
) -> None:
    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=1) as c:
        server.script(Fault.status(400))  # first cell fails: a placeholder tile
        grid = c.compare("a red fox in the snow", progress=False)
    sheet = grid.image().convert("RGB")
    header = sheet.crop((140, 52, sheet.width - 20, 80))
    assert len(header.getcolors(maxcolors=1 << 16) or []) > 2  # text drawn on the band
    column = sheet.crop((12, 100, 110, sheet.height - 20))
    assert len(column.getcolors(maxcolors=1 << 16) or []) > 2
    rows = (sheet.height - 24 - 40 - 34) // (TILE_HEIGHT_PX + 8)
    assert rows == 3
    # Each tile: sample its centre; failed tile carries the placeholder colour.
    from mai_image_nb.sheet import FAILED_FILL

    slot = max(round(TILE_HEIGHT_PX * w / h) for w, h in (IMAGE_SIZES[r] for r in RATIOS))
    for row in range(3):
        for col in range(3):
            x = 12 + 110 + col * (slot + 8) + slot // 2
            y = 12 + 40 + 34 + row * (TILE_HEIGHT_PX + 8) + 20
            pixel = sheet.getpixel((x, y))
            if (row, col) == (0, 0):
                assert pixel == FAILED_FILL
            else:
                assert pixel != (255, 255, 255)
    saved = grid.save(tmp_path / "grid")
    assert saved.suffix == ".png"
    with Image.open(saved) as im:
        assert GRID_KEY in im.text  # type: ignore[attr-defined]
    html = grid._repr_html_()
    assert "a red fox in the snow" in html
    assert grid._repr_png_().startswith(b"\x89PNG")


def test_repeats_are_laid_side_by_side(grid_client: mai.Client) -> None:
    one = grid_client.compare("a cat", aspect_ratios=["1:1"], temperatures=[1.0], progress=False)
    two = grid_client.compare(
        "a cat", aspect_ratios=["1:1"], temperatures=[1.0], repeats=2, progress=False
    )
    assert two.image().width > one.image().width + TILE_HEIGHT_PX - 10
    assert len(two.cells) == 2
    assert [c.repeat for c in two.cells] == [0, 1]


def test_compare_validates_before_sending(server: OfflineServer, grid_client: mai.Client) -> None:
    kwargs: dict[str, Any]
    for kwargs in (
        {"aspect_ratios": ["1:1", "5:4"]},
        {"temperatures": [0.5, 3]},
        {"temperatures": []},
        {"aspect_ratios": "16:9"},
        {"aspect_ratios": ["1:1", "1:1"]},
        {"repeats": 0},
    ):
        with pytest.raises(mai.ValidationError):
            grid_client.compare("a cat", progress=False, **kwargs)
    assert server.post_count == 0


def test_to_records(grid_client: mai.Client) -> None:
    grid = grid_client.compare("a cat", aspect_ratios=["1:1"], temperatures=[0, 2], progress=False)
    records = grid.to_records()
    assert [r["temperature"] for r in records] == [0, 2]
    assert all(r["ok"] and r["id"] for r in records)


def test_progress_bar_on_stderr(
    grid_client: mai.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    grid_client.compare("a cat", aspect_ratios=["1:1"], temperatures=[0, 2], progress=True)
    err = capsys.readouterr().err
    assert "2/2" in err


def test_on_cell_is_called_in_workers_for_each_cell(grid_client: mai.Client) -> None:
    seen: list[tuple[str, float, str]] = []
    lock = threading.Lock()

    def on_cell(cell: mai.Cell) -> None:
        with lock:
            seen.append((cell.aspect_ratio, cell.temperature, threading.current_thread().name))

    grid_client.compare("a cat", progress=False, on_cell=on_cell)
    assert len(seen) == 9
    assert all(name.startswith("mai_image_nb") for _, _, name in seen)
    # cached cells are reported too (from the calling thread)
    seen.clear()
    grid_client.compare("a cat", progress=False, on_cell=on_cell)
    assert len(seen) == 9
