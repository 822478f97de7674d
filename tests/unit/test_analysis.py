"""A grid as numbers: variation against a hand computation, records of ok and failed cells."""

from __future__ import annotations

import io
import itertools
import json

import pytest
from PIL import Image

from mai_image_nb import errors
from mai_image_nb.analysis import CELL_FIELDS, cell_record, variation_of
from mai_image_nb.comparison import Cell, Comparison
from mai_image_nb.export import RECORD_FIELDS
from tests.unit.crash_writer import make_generation


def by_hand(images: list[Image.Image]) -> float:
    """API.md's definition, pixel by pixel in plain Python."""
    small = [im.convert("L").resize((64, 64), Image.Resampling.BILINEAR).tobytes()
             for im in images]  # fmt: skip
    pairs = list(itertools.combinations(small, 2))
    per_pair = [sum(abs(x - y) for x, y in zip(a, b, strict=True)) / 4096 / 255 for a, b in pairs]
    return sum(per_pair) / len(per_pair)


def noise(seed: int, size: tuple[int, int] = (200, 120)) -> Image.Image:
    return Image.effect_noise(size, 40 + seed * 10).convert("RGB")


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_variation_matches_the_hand_computation() -> None:
    images = [noise(1), noise(2), Image.new("RGB", (200, 120), (200, 30, 30))]
    assert variation_of(images) == pytest.approx(by_hand(images), abs=1e-9)
    assert variation_of(images[:2]) == pytest.approx(by_hand(images[:2]), abs=1e-9)


def test_variation_bounds() -> None:
    black, white = Image.new("RGB", (64, 64)), Image.new("RGB", (64, 64), (255, 255, 255))
    assert variation_of([black, black.copy()]) == 0
    assert variation_of([black, white]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="two"):
        variation_of([black])


def test_comparison_variation_groups_repeats_and_skips_cells_with_one_image() -> None:
    images = [noise(i) for i in range(3)]
    cells = [
        Cell("p", "16:9", 1.0, k, generation=make_generation(
            f"g{k}", "p", data=png(images[k]), aspect_ratio="16:9", temperature=1.0, sample=k))
        for k in range(3)
    ]  # fmt: skip
    cells += [
        Cell("p", "16:9", 0.0, 0, generation=make_generation("h0", "p", data=png(images[0]))),
        Cell("p", "16:9", 0.0, 1, error=errors.CancelledError()),
    ]
    grid = Comparison(prompts=("p",), aspect_ratios=("16:9",), temperatures=(1.0, 0.0),
                      repeats=3, cells=cells, rerun=lambda *a, **k: None)  # type: ignore[arg-type]  # fmt: skip
    (row,) = grid.variation()
    assert row == {"prompt": "p", "aspect_ratio": "16:9", "temperature": 1.0, "n": 3,
                   "variation": pytest.approx(by_hand(images))}  # fmt: skip
    assert "64×64" in (Comparison.variation.__doc__ or "")
    assert "BILINEAR" in (Comparison.variation.__doc__ or "")


def test_records_of_ok_and_failed_cells_are_json_safe_with_one_set_of_keys() -> None:
    gen = make_generation("g1", "a fox", aspect_ratio="4:3", temperature=0.5, sample=2)
    ok = cell_record(Cell("a fox", "4:3", 0.5, 2, generation=gen), {"g1": "/h/images/g1.png"})
    bad = cell_record(
        Cell("a fox", "4:3", 1.5, 0, error=errors.APIStatusError("no", status_code=500))
    )
    assert tuple(ok) == tuple(bad) == CELL_FIELDS
    assert set(RECORD_FIELDS) <= set(CELL_FIELDS)
    json.dumps([ok, bad])
    assert ok["ok"] and ok["error"] is None and ok["id"] == "g1" and ok["sample"] == 2
    assert ok["file"] == "/h/images/g1.png" and ok["usd_spent"] == 0.0627
    assert ok["cached"] is False
    assert not bad["ok"] and bad["error_type"] == "APIStatusError" and "no" in bad["error"]
    assert bad["id"] is None and bad["usd_spent"] is None
    assert (bad["prompt"], bad["aspect_ratio"], bad["temperature"], bad["repeat"]) == (
        "a fox", "4:3", 1.5, 0)  # fmt: skip
