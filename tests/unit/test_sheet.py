"""The contact sheet on any two axes: where each tile lands, measured on the drawn pixels."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

import mai_image_nb as mai
from mai_image_nb import errors
from mai_image_nb.comparison import Cell, Comparison
from mai_image_nb.labels import text_width, wrap_text
from mai_image_nb.offline import Fault, OfflineServer
from mai_image_nb.sheet import AXES, MIN_TILE_HEIGHT_PX, TILE_HEIGHT_PX
from tests.unit.crash_writer import make_generation

PROMPTS = ("a fox", "a whale " + "with a very long description " * 6)
RATIOS = ("1:1", "16:9")
TEMPS = (0.0, 1.5)
SIZES = {"1:1": (90, 90), "16:9": (160, 90)}


def solid(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def colour_of(i: int) -> tuple[int, int, int]:
    return (30 + (i * 53) % 200, 20 + (i * 97) % 180, 10 + (i * 31) % 120)


def grid(repeats: int = 2, fail: tuple[Any, ...] | None = None) -> Comparison:
    cells = []
    places = itertools.product(PROMPTS, RATIOS, TEMPS, range(repeats))
    for i, (p, r, t, k) in enumerate(places):
        if (p, r, t, k) == fail:
            cells.append(Cell(p, r, t, k, error=errors.APIStatusError("boom", status_code=500)))
            continue
        data = solid(colour_of(i), SIZES[r])
        gen = make_generation(f"g{i}", p, data=data, aspect_ratio=r, temperature=t, sample=k)
        cells.append(Cell(p, r, t, k, generation=gen))
    return Comparison(prompts=PROMPTS, aspect_ratios=RATIOS, temperatures=TEMPS, repeats=repeats,
                      cells=cells, rerun=lambda *a, **k: None)  # type: ignore[arg-type]  # fmt: skip


def bbox_of(sheet: Image.Image, colour: tuple[int, int, int]) -> tuple[int, int, int, int]:
    diff = ImageChops.difference(sheet, Image.new("RGB", sheet.size, colour))
    bands = [band.point(lambda v: 255 if v == 0 else 0) for band in diff.split()]
    mask = ImageChops.multiply(ImageChops.multiply(bands[0], bands[1]), bands[2])
    box = mask.getbbox()
    assert box is not None, f"no tile of colour {colour}"
    return box


PAIRS = [pytest.param(r, c, id=f"{r}-x-{c}") for r, c in itertools.permutations(AXES, 2)]


@pytest.mark.parametrize(("rows", "cols"), PAIRS)
def test_each_tile_lands_in_its_row_column_block_and_slot(rows: str, cols: str) -> None:
    comparison = grid()
    sheet = comparison.image(rows=rows, cols=cols)
    values = {"prompt": PROMPTS, "aspect_ratio": RATIOS, "temperature": TEMPS, "repeat": (0, 1)}
    blocks = [a for a in AXES if a not in (rows, cols, "repeat")]
    inner = "repeat" not in (rows, cols)
    placed = []
    for i, cell in enumerate(comparison.cells):
        where = {"prompt": cell.prompt, "aspect_ratio": cell.aspect_ratio,
                 "temperature": cell.temperature, "repeat": cell.repeat}  # fmt: skip
        block = tuple(values[a].index(where[a]) for a in blocks)
        slot = (block, values[rows].index(where[rows]), values[cols].index(where[cols]),
                cell.repeat if inner else 0)  # fmt: skip
        placed.append((slot, bbox_of(sheet, colour_of(i)), cell.aspect_ratio))
    heights = {box[3] - box[1] for _, box, _ in placed}
    assert len(heights) == 1  # one common height
    (tile_h,) = heights
    assert MIN_TILE_HEIGHT_PX <= tile_h <= TILE_HEIGHT_PX
    for _, box, ratio in placed:  # shapes kept: no distortion
        w, h = SIZES[ratio]
        assert abs((box[2] - box[0]) - tile_h * w / h) <= 1
    for (sa, a, _), (sb, b, _) in itertools.permutations(placed, 2):
        block_a, row_a, col_a, k_a = sa
        block_b, row_b, col_b, k_b = sb
        if block_a < block_b:
            assert a[3] < b[1], "blocks stack one under another, in order"
        if block_a == block_b and row_a == row_b:
            assert a[1] == b[1], "a row shares one top"
        if block_a == block_b and row_a < row_b:
            assert a[3] < b[1], "rows in order"
        if col_a < col_b:
            assert a[2] < b[0], "columns in order, never overlapping"
        if col_a == col_b and k_a < k_b:
            assert a[2] < b[0], "repeats side by side within a cell"
        if col_a == col_b and k_a == k_b:
            assert abs((a[0] + a[2]) - (b[0] + b[2])) <= 1, "a slot is centred on one line"


def test_repeats_on_an_axis_are_not_also_side_by_side() -> None:
    comparison = grid()
    by_cols = comparison.image(rows="prompt", cols="repeat")
    default = comparison.image()
    assert by_cols.size != default.size
    assert comparison.image() is default  # drawn once per layout


@pytest.mark.parametrize(
    ("rows", "cols", "field"),
    [
        pytest.param("prompts", "temperature", "rows", id="plural"),
        pytest.param("aspect_ratio", "seed", "cols", id="unknown"),
        pytest.param("temperature", "temperature", "cols", id="same-twice"),
        pytest.param(None, "temperature", "rows", id="none"),
    ],
)
def test_bad_axes_are_refused(rows: Any, cols: Any, field: str) -> None:
    comparison = grid()
    with pytest.raises(errors.ValidationError) as info:
        comparison.image(rows=rows, cols=cols)
    assert info.value.field == field
    assert "aspect_ratio" in str(info.value)
    with pytest.raises(errors.ValidationError):
        comparison.save("never.png", rows=rows, cols=cols)


def test_a_failed_cell_is_a_placeholder_of_its_shape() -> None:
    fail = (PROMPTS[0], "16:9", 1.5, 1)
    comparison = grid(fail=fail)
    sheet = comparison.image()
    ok = [i for i, c in enumerate(comparison.cells) if c.ok]
    for i in ok:
        bbox_of(sheet, colour_of(i))
    assert len(comparison.failed) == 1


def test_one_prompt_is_the_title_and_no_block() -> None:
    one = Comparison(prompts=PROMPTS[:1], aspect_ratios=RATIOS, temperatures=TEMPS, repeats=2,
                     cells=[c for c in grid().cells if c.prompt == PROMPTS[0]],
                     rerun=lambda *a, **k: None)  # type: ignore[arg-type]  # fmt: skip
    two = grid()
    assert one.image().height < two.image().height / 1.5  # no second block


@pytest.mark.parametrize("width", [60, 120, 300])
@pytest.mark.parametrize("max_lines", [1, 2, 4])
def test_wrapped_labels_fit_and_never_cut_a_word_silently(width: int, max_lines: int) -> None:
    text = "a lighthouse on a rocky coast at sunset, supercalifragilisticexpialidocious clouds"
    lines = wrap_text(text, 18, width, max_lines)
    assert 1 <= len(lines) <= max_lines
    words = set(text.split())
    for i, line in enumerate(lines):
        assert text_width(line, 18) <= width
        for j, word in enumerate(line.split()):
            last = i == len(lines) - 1 and j == len(line.split()) - 1
            cut = word.endswith("…")
            assert word in words or cut, (word, lines)
            if cut and not last:
                assert word[:-1] and any(w.startswith(word[:-1]) for w in words)
    shown = " ".join(lines).replace("…", "")
    if not lines[-1].endswith("…"):
        assert shown.split() == text.split()  # everything shown, in order


def test_a_short_label_is_one_line_untouched() -> None:
    assert wrap_text("temperature 1.5", 18, 400, 3) == ["temperature 1.5"]


# -- through a real client: `Comparison.image()` and `save` over loopback ------------------


@pytest.fixture
def client(server: OfflineServer, tmp_path: Path) -> Iterator[mai.Client]:
    with mai.Client(base_url=server.url, history=tmp_path / "h", max_workers=1) as c:
        yield c


def loopback_grid(client: mai.Client, temperatures: tuple[float, ...]) -> mai.Comparison:
    return client.compare(
        "a windmill", aspect_ratios=("1:1", "16:9"), temperatures=temperatures, progress=False
    )


def test_the_sheet_grows_with_the_grid(client: mai.Client) -> None:
    two = loopback_grid(client, (0.0, 1.0)).image()
    three = loopback_grid(client, (0.0, 1.0, 1.5)).image()
    assert isinstance(two, Image.Image)
    assert three.width > two.width
    assert three.height == two.height  # same rows


def test_a_failed_cell_still_gets_its_tile(client: mai.Client, server: OfflineServer) -> None:
    server.script(Fault.status(400))
    failed = loopback_grid(client, (0.0, 1.0))
    assert len(failed.failed) == 1
    whole = failed.retry_failed(progress=False)
    assert failed.image().size == whole.image().size
    assert failed.image().tobytes() != whole.image().tobytes()


def test_the_saved_sheet_is_a_png(client: mai.Client, tmp_path: Path) -> None:
    path = loopback_grid(client, (0.0,)).save(tmp_path / "sheet.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == loopback_grid(client, (0.0,)).image().size
