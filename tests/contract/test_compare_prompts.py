"""Prompt variants in one grid, over loopback: axes, indexing, cache, budget, cancel, retry."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mai_image_nb as mai
from mai_image_nb import errors
from mai_image_nb.offline import Fault, OfflineServer

PROMPTS = ("a red fox in the snow", "a blue whale at sea")
SMALL: dict[str, Any] = {
    "aspect_ratios": ["1:1", "16:9"],
    "temperatures": [0, 1],
    "progress": False,
}


def posted_prompts(server: OfflineServer) -> list[str]:
    return [r.json["prompt"] for r in server.requests if r.method == "POST"]


@pytest.fixture
def grid_client(server: OfflineServer, tmp_path: Path) -> Iterator[mai.Client]:
    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=4) as c:
        yield c


def test_variants_make_every_cell_in_order_with_its_prompt(
    server: OfflineServer, grid_client: mai.Client
) -> None:
    grid = grid_client.compare(list(PROMPTS), repeats=2, **SMALL)
    assert grid.prompts == PROMPTS
    assert grid.aspect_ratios == ("1:1", "16:9")
    assert grid.temperatures == (0, 1)
    assert grid.repeats == 2
    assert len(grid) == 16 and not grid.failed
    places = [(c.prompt, c.aspect_ratio, c.temperature, c.repeat) for c in grid.cells]
    assert places == [
        (p, r, t, k) for p in PROMPTS for r in ("1:1", "16:9") for t in (0, 1) for k in (0, 1)
    ]
    for cell in grid.cells:
        assert cell.generation is not None
        assert cell.generation.prompt == cell.prompt
        assert cell.generation.sample == cell.repeat
    assert sorted(posted_prompts(server)) == sorted([PROMPTS[0]] * 8 + [PROMPTS[1]] * 8)


def test_indexing_with_and_without_the_prompt(grid_client: mai.Client) -> None:
    one = grid_client.compare("a cat", **SMALL)
    assert one.prompts == ("a cat",)
    assert one["16:9", 1].aspect_ratio == "16:9"
    assert one["a cat", "16:9", 1.0] is one["16:9", 1]
    with pytest.raises(KeyError):
        one["a dog", "16:9", 1]

    two = grid_client.compare(list(PROMPTS), **SMALL)
    gen = two[PROMPTS[1], "16:9", 0]
    assert (gen.prompt, gen.aspect_ratio, gen.temperature, gen.sample) == (
        PROMPTS[1], "16:9", 0, 0
    )  # fmt: skip
    with pytest.raises(KeyError, match="2 prompts"):
        two["16:9", 0]
    with pytest.raises(KeyError):
        two[PROMPTS[0], "4:3", 0]


def test_a_bare_string_is_one_prompt_and_a_tuple_works_too(grid_client: mai.Client) -> None:
    grid = grid_client.compare("a cat and a dog", aspect_ratios=["1:1"], temperatures=[0],
                               progress=False)  # fmt: skip
    assert grid.prompts == ("a cat and a dog",) and len(grid) == 1
    grid = grid_client.compare(("x", "y"), aspect_ratios=["1:1"], temperatures=[0], progress=False)
    assert grid.prompts == ("x", "y") and len(grid) == 2


@pytest.mark.parametrize(
    ("prompts", "field"),
    [
        pytest.param([], "prompt", id="empty"),
        pytest.param(["ok", ""], "prompt", id="an-empty-variant"),
        pytest.param(["ok", 3], "prompt", id="not-a-string"),
        pytest.param(["ok", "x" * 4001], "prompt", id="too-long"),
        pytest.param(["same", "same"], "prompt", id="repeated"),
        pytest.param([f"p{i}" for i in range(13)], "prompt", id="thirteen"),
        pytest.param(b"bytes", "prompt", id="bytes"),
        pytest.param(None, "prompt", id="none"),
    ],
)
def test_bad_variants_are_refused_before_sending(
    server: OfflineServer, grid_client: mai.Client, prompts: Any, field: str
) -> None:
    with pytest.raises(errors.ValidationError) as info:
        grid_client.compare(prompts, **SMALL)
    assert info.value.field == field
    assert server.post_count == 0


def test_twelve_variants_are_allowed(grid_client: mai.Client) -> None:
    grid = grid_client.compare([f"a cat number {i}" for i in range(12)], aspect_ratios=["1:1"],
                               temperatures=[0], progress=False)  # fmt: skip
    assert len(grid.prompts) == 12 and not grid.failed


def test_variants_share_the_cache_with_single_calls_and_earlier_grids(
    server: OfflineServer, grid_client: mai.Client
) -> None:
    single = grid_client.generate(PROMPTS[1], aspect_ratio="16:9", temperature=1, sample=1)
    first = grid_client.compare([PROMPTS[0]], repeats=2, **SMALL)
    assert server.post_count == 1 + 8
    both = grid_client.compare(list(PROMPTS), repeats=2, **SMALL)
    assert server.post_count == 1 + 8 + 7  # only the second prompt's cells, less the single
    assert both[PROMPTS[0], "1:1", 0].id == first["1:1", 0].id
    reused = [c for c in both.cells if c.prompt == PROMPTS[1] and c.generation.cached]  # type: ignore[union-attr]
    assert [(c.aspect_ratio, c.temperature, c.repeat) for c in reused] == [("16:9", 1, 1)]
    assert reused[0].generation.id == single.id  # type: ignore[union-attr]
    assert both.paid_usd == pytest.approx(7 * 0.0627)
    assert both.total_usd == pytest.approx(16 * 0.0627)


def test_budget_counts_every_uncached_cell_of_every_prompt(
    server: OfflineServer, tmp_path: Path
) -> None:
    with mai.Client(base_url=server.url, history=tmp_path / "h", budget_usd=0.6) as c:
        c.compare([PROMPTS[0]], **SMALL)  # 4 images, 0.25
        with pytest.raises(errors.BudgetExceededError):
            c.compare([*PROMPTS, "a third"], **SMALL)  # 8 more would pass 0.6
        assert server.post_count == 4  # refused before sending anything
        grid = c.compare(list(PROMPTS), **SMALL)  # 4 more: 0.50 in all, allowed
        assert server.post_count == 8 and not grid.failed


def test_cancel_ends_the_unsent_cells_of_every_prompt(
    server: OfflineServer, tmp_path: Path
) -> None:
    server.set_latency(0.1)
    cancel = threading.Event()

    def on_cell(cell: mai.Cell) -> None:
        cancel.set()

    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=1) as c:
        grid = c.compare(list(PROMPTS), cancel=cancel, on_cell=on_cell, **SMALL)
        cancelled = [x for x in grid.cells if isinstance(x.error, errors.CancelledError)]
        assert len(cancelled) == len(grid) - server.post_count
        assert {x.prompt for x in cancelled} == set(PROMPTS)
        resumed = grid.retry_failed(progress=False)
        assert not resumed.failed
        assert server.post_count == len(grid)
        assert [x.prompt for x in resumed.cells] == [x.prompt for x in grid.cells]


def test_retry_failed_reruns_only_the_failed_cells_keeping_their_prompt(
    server: OfflineServer, tmp_path: Path
) -> None:
    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=1, max_retries=0) as c:
        server.script(Fault.status(500))  # the first cell fails
        grid = c.compare(list(PROMPTS), **SMALL)
        assert len(grid.failed) == 1
        bad = grid.failed[0]
        kept = {(x.prompt, x.aspect_ratio, x.temperature): x.generation.id  # type: ignore[union-attr]
                for x in grid.cells if x.ok}  # fmt: skip
        before = server.post_count
        retried = grid.retry_failed(progress=False)
        assert server.post_count == before + 1
        assert posted_prompts(server)[-1] == bad.prompt
        for cell in retried.cells:
            key = (cell.prompt, cell.aspect_ratio, cell.temperature)
            assert cell.generation is not None
            if key in kept:
                assert cell.generation.id == kept[key]
        assert retried.prompts == grid.prompts


def test_on_cell_and_progress_see_every_cell_of_every_prompt(
    grid_client: mai.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[mai.Cell] = []
    lock = threading.Lock()

    def on_cell(cell: mai.Cell) -> None:
        with lock:
            seen.append(cell)

    grid = grid_client.compare(list(PROMPTS), on_cell=on_cell, **{**SMALL, "progress": True})
    assert sorted((c.prompt, c.aspect_ratio, c.temperature) for c in seen) == sorted(
        (c.prompt, c.aspect_ratio, c.temperature) for c in grid.cells
    )
    assert "8/8" in capsys.readouterr().err


def test_repr_names_the_shape_and_the_prompts(grid_client: mai.Client) -> None:
    grid = grid_client.compare(list(PROMPTS), **SMALL)
    text = repr(grid)
    assert text.startswith("<Comparison 2×2×2 ") and "(+1 more)" in text
    assert grid.prompt == PROMPTS[0]
