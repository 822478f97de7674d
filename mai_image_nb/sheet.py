"""The labelled contact sheet of a grid: one picture a class can read at a glance.

Any two of prompt / aspect_ratio / temperature / repeat make the rows and columns; the
axes left over with more than one value become titled blocks stacked one under another,
and repeats (unless an axis) sit side by side within a cell. Every image is scaled to a
common height without distortion; a failed cell is a labelled placeholder of its shape.
Long labels wrap at word boundaries; a cut is always marked with an ellipsis.
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw

from .errors import CancelledError, MaiImageError, ValidationError
from .labels import font, text_width, wrap_text
from .params import IMAGE_SIZES

if TYPE_CHECKING:
    from .comparison import Cell, Comparison
    from .generation import Generation

__all__ = [
    "AXES",
    "TILE_HEIGHT_PX",
    "axis_label",
    "check_axes",
    "render_contact_sheet",
    "sheet_layout",
]

AXES = ("prompt", "aspect_ratio", "temperature", "repeat")
TILE_HEIGHT_PX = 256  # the most a tile is; wide sheets use shorter tiles down to the minimum
MIN_TILE_HEIGHT_PX = 144
TILE_WORKERS = 4
TARGET_WIDTH_PX = 2400  # shorter tiles until the sheet is this wide (or tiles hit the minimum)
GAP_PX = 8
MARGIN_PX = 14
TITLE_FONT_PX = 22
LABEL_FONT_PX = 19
SMALL_FONT_PX = 15
LINE_GAP_PX = 4
MAX_TITLE_LINES = 3
MAX_HEADER_LINES = 4
PROMPT_LABEL_WIDTH_PX = 250
LABEL_WIDTH_PX = {"prompt": PROMPT_LABEL_WIDTH_PX, "aspect_ratio": 110, "temperature": 130,
                  "repeat": 70}  # fmt: skip
BACKGROUND = (255, 255, 255)
BAND = (238, 240, 243)
BLOCK_BAND = (222, 228, 238)
INK = (32, 33, 36)
MUTED = (95, 99, 104)
FAILED_FILL = (253, 232, 232)
FAILED_INK = (165, 29, 42)
CANCELLED_FILL = (240, 240, 240)


def check_axes(rows: object, cols: object) -> None:
    """Raises ValidationError unless `rows` and `cols` are two different names of `AXES`."""
    allowed = ", ".join(repr(a) for a in AXES)
    for field, value in (("rows", rows), ("cols", cols)):
        if not isinstance(value, str) or value not in AXES:
            raise ValidationError(field, value, f"one of {allowed}")
    if rows == cols:
        raise ValidationError("cols", cols, f"an axis other than rows={rows!r} ({allowed})")


def axis_label(axis: str, value: Any) -> str:
    """How a value of an axis reads in a header: "temperature 1.5", "16:9", "#2", the prompt."""
    if axis == "temperature":
        return f"temperature {value:g}"
    if axis == "repeat":
        return f"#{value + 1}"
    return str(value)


@dataclass(frozen=True)
class Layout:
    """Which axis goes where, and the values of each."""

    rows: str
    cols: str
    values: dict[str, tuple[Any, ...]]
    blocks: list[dict[str, Any]]  # one per titled block: the block axes' values
    inner: int  # images side by side within a cell (the repeats when not an axis)

    def place(self, block: dict[str, Any], row: Any, col: Any, k: int) -> tuple[Any, ...]:
        where = {axis: values[0] for axis, values in self.values.items()}
        where.update(block)
        where[self.rows], where[self.cols] = row, col
        if self.inner > 1:
            where["repeat"] = k
        return (where["prompt"], where["aspect_ratio"], where["temperature"], where["repeat"])


def sheet_layout(comparison: Comparison, rows: str, cols: str) -> Layout:
    """The axes of `comparison` arranged for `rows`/`cols` (validated)."""
    check_axes(rows, cols)
    values: dict[str, tuple[Any, ...]] = {
        "prompt": comparison.prompts,
        "aspect_ratio": comparison.aspect_ratios,
        "temperature": comparison.temperatures,
        "repeat": tuple(range(comparison.repeats)),
    }
    inner = comparison.repeats if "repeat" not in (rows, cols) else 1
    block_axes = [a for a in AXES if a not in (rows, cols, "repeat") and len(values[a]) > 1]
    blocks = [
        dict(zip(block_axes, combo, strict=True))
        for combo in itertools.product(*(values[a] for a in block_axes))
    ]
    return Layout(rows, cols, values, blocks, inner)


def _tile_size(width: int, height: int, tile_height: int) -> tuple[int, int]:
    """The size of a `width`×`height` image scaled to `tile_height` without distortion."""
    return max(1, round(tile_height * width / height)), tile_height


def _decode(gen: Generation) -> Image.Image:
    """The pixels of `gen`, decoded here so the Generation does not keep them."""
    try:
        with Image.open(io.BytesIO(gen.data)) as image:
            image.draft("RGB", (image.width // 2, image.height // 2))  # JPEG: decode at half
            return image.convert("RGB")
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MaiImageError(f"the image of {gen.id!r} cannot be decoded ({exc})") from exc


def _scaled(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image
    factor = min(image.width // size[0], image.height // size[1])
    if factor >= 2:  # a cheap whole-number box reduce first, as Image.thumbnail does
        image = image.reduce(factor)
    return image.resize(size, Image.Resampling.BICUBIC)


def _placeholder(cell: Cell | None, size: tuple[int, int]) -> Image.Image:
    cancelled = cell is None or isinstance(cell.error, CancelledError)
    tile = Image.new("RGB", size, CANCELLED_FILL if cancelled else FAILED_FILL)
    draw = ImageDraw.Draw(tile)
    ink = MUTED if cancelled else FAILED_INK
    draw.rectangle((0, 0, size[0] - 1, size[1] - 1), outline=ink, width=2)
    heading = "not run" if cell is None else "cancelled" if cancelled else "failed"
    draw.text((10, 10), heading, font=font(LABEL_FONT_PX), fill=ink)
    if cell is not None:
        lines = wrap_text(
            str(cell.error), SMALL_FONT_PX, size[0] - 20, max(1, (size[1] - 50) // 19)
        )
        draw.multiline_text((10, 42), "\n".join(lines), font=font(SMALL_FONT_PX), fill=ink,
                            spacing=LINE_GAP_PX)  # fmt: skip
    return tile


def _text_block(
    draw: ImageDraw.ImageDraw,
    lines: Sequence[str],
    *,
    left: float,
    top: float,
    width: float,
    size: int,
    fill: tuple[int, int, int] = INK,
    centred: bool = True,
) -> None:
    for i, line in enumerate(lines):
        x = left + (width - text_width(line, size)) / 2 if centred else left
        draw.text((x, top + i * (size + LINE_GAP_PX)), line, font=font(size), fill=fill)


def _lines_height(n: int, size: int) -> int:
    return n * (size + LINE_GAP_PX)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _title(comparison: Comparison) -> str:
    if len(comparison.prompts) == 1:
        return comparison.prompts[0]
    parts = [
        _count(len(comparison.prompts), "prompt"),
        _count(len(comparison.aspect_ratios), "aspect ratio"),
        _count(len(comparison.temperatures), "temperature"),
        _count(comparison.repeats, "repeat"),
    ]
    return " · ".join(parts)  # the default font has no "×"


def _block_title(block: dict[str, Any]) -> str:
    parts = [
        f"prompt: {value}" if axis == "prompt" else axis_label(axis, value)
        for axis, value in block.items()
    ]
    return " · ".join(parts)


def render_contact_sheet(
    comparison: Comparison,
    *,
    rows: str = "aspect_ratio",
    cols: str = "temperature",
    tile_height: int | None = None,
) -> Image.Image:
    """Draw `comparison` with `rows` × `cols` (see the module docstring for the layout)."""
    lay = sheet_layout(comparison, rows, cols)
    index = {(c.prompt, c.aspect_ratio, c.temperature, c.repeat): c for c in comparison.cells}
    shapes = {ratio: IMAGE_SIZES[ratio] for ratio in comparison.aspect_ratios}
    for cell in comparison.cells:  # the service's own sizes may differ a little from nominal
        if cell.generation is not None:
            shapes[cell.aspect_ratio] = (cell.generation.width, cell.generation.height)
    col_values, row_values = lay.values[cols], lay.values[rows]
    label_w = LABEL_WIDTH_PX[rows]

    def col_units(col: Any) -> float:  # a column's width in tile heights
        ratios = [col] if cols == "aspect_ratio" else list(shapes)
        return max(shapes[r][0] / shapes[r][1] for r in ratios) * lay.inner

    if tile_height is None:
        units = sum(col_units(c) for c in col_values)
        room = TARGET_WIDTH_PX - 2 * MARGIN_PX - label_w - len(col_values) * lay.inner * GAP_PX
        tile_height = max(MIN_TILE_HEIGHT_PX, min(TILE_HEIGHT_PX, int(room / units)))
    tile_h = tile_height
    slot_w = {c: round(col_units(c) / lay.inner * tile_h) for c in col_values}
    group_w = {c: lay.inner * slot_w[c] + (lay.inner - 1) * GAP_PX for c in col_values}
    width = MARGIN_PX * 2 + label_w + sum(group_w[c] + GAP_PX for c in col_values)

    title_lines = wrap_text(_title(comparison), TITLE_FONT_PX, width - 2 * MARGIN_PX,
                            MAX_TITLE_LINES)  # fmt: skip
    title_h = _lines_height(len(title_lines), TITLE_FONT_PX) + 2 * MARGIN_PX
    headers = {
        c: wrap_text(
            axis_label(cols, c),
            LABEL_FONT_PX,
            group_w[c] - 8,
            MAX_HEADER_LINES if cols == "prompt" else 1,
        )
        for c in col_values
    }
    header_h = _lines_height(max(len(h) for h in headers.values()), LABEL_FONT_PX) + 12
    sub_h = SMALL_FONT_PX + 10 if lay.inner > 1 else 0
    block_titles = [wrap_text(_block_title(b), LABEL_FONT_PX + 1, width - 2 * MARGIN_PX, 2)
                    for b in lay.blocks] if lay.blocks[0] else [[] for _ in lay.blocks]  # fmt: skip
    rows_h = len(row_values) * (tile_h + GAP_PX)
    height = title_h + MARGIN_PX + sum(
        (_lines_height(len(bt), LABEL_FONT_PX + 1) + 14 if bt else 0) + header_h + sub_h + rows_h
        + GAP_PX
        for bt in block_titles
    )  # fmt: skip

    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.rectangle((0, 0, width, title_h - MARGIN_PX // 2), fill=BAND)
    _text_block(draw, title_lines, left=MARGIN_PX, top=MARGIN_PX, width=width, size=TITLE_FONT_PX,
                centred=False)  # fmt: skip
    grid_left = MARGIN_PX + label_w
    col_left = {}
    x = grid_left
    for c in col_values:
        col_left[c] = x
        x += group_w[c] + GAP_PX

    top = title_h
    tiles: list[tuple[Cell | None, tuple[int, int], tuple[int, int]]] = []
    for block, block_title in zip(lay.blocks, block_titles, strict=True):
        if block_title:
            band_h = _lines_height(len(block_title), LABEL_FONT_PX + 1) + 10
            draw.rectangle((0, top, width, top + band_h), fill=BLOCK_BAND)
            _text_block(draw, block_title, left=MARGIN_PX, top=top + 6, width=width,
                        size=LABEL_FONT_PX + 1, centred=False)  # fmt: skip
            top += band_h + 4
        draw.rectangle((grid_left - GAP_PX // 2, top, width, top + header_h + sub_h - 4), fill=BAND)
        for c in col_values:
            _text_block(draw, headers[c], left=col_left[c], top=top + 6, width=group_w[c],
                        size=LABEL_FONT_PX)  # fmt: skip
            for k in range(lay.inner if lay.inner > 1 else 0):
                _text_block(draw, [f"#{k + 1}"], left=col_left[c] + k * (slot_w[c] + GAP_PX),
                            top=top + header_h, width=slot_w[c], size=SMALL_FONT_PX,
                            fill=MUTED)  # fmt: skip
        top += header_h + sub_h
        draw.rectangle((0, top, MARGIN_PX + label_w - GAP_PX, top + rows_h - GAP_PX), fill=BAND)
        for r_index, row in enumerate(row_values):
            row_top = top + r_index * (tile_h + GAP_PX)
            _row_label(draw, rows, row, left=MARGIN_PX + 4, top=row_top + 8,
                       width=label_w - GAP_PX - 8, height=tile_h - 16)  # fmt: skip
            for c in col_values:
                for k in range(lay.inner):
                    place = lay.place(block, row, c, k)
                    size = _tile_size(*shapes[place[1]], tile_h)
                    slot_left = col_left[c] + k * (slot_w[c] + GAP_PX)
                    at = (slot_left + (slot_w[c] - size[0]) // 2, row_top)
                    tiles.append((index.get(place), size, at))
        top += rows_h + GAP_PX
    # Decoding and shrinking release the GIL: a few threads make the tiles, one pastes them.
    with cf.ThreadPoolExecutor(max_workers=TILE_WORKERS) as pool:
        for tile, (_, _, at) in zip(pool.map(_tile, tiles), tiles, strict=True):
            sheet.paste(tile, at)
    return sheet


def _tile(job: tuple[Cell | None, tuple[int, int], tuple[int, int]]) -> Image.Image:
    found, size, _ = job
    if found is not None and found.generation is not None:
        return _scaled(_decode(found.generation), size)
    return _placeholder(found, size)


def _row_label(
    draw: ImageDraw.ImageDraw, axis: str, value: Any, *, left: int, top: int, width: int,
    height: int,
) -> None:  # fmt: skip
    if axis == "aspect_ratio":
        draw.text((left, top), str(value), font=font(LABEL_FONT_PX + 4), fill=INK)
        # A small outline of the shape, so the ratio reads without the numbers.
        ratio_w, ratio_h = IMAGE_SIZES[str(value)]
        outline_w, outline_h = _tile_size(ratio_w, ratio_h, 48)
        scale = min(1.0, 80 / outline_w)
        outline_w, outline_h = round(outline_w * scale), round(outline_h * scale)
        box_top = top + 36
        draw.rectangle((left + 2, box_top, left + 2 + outline_w, box_top + outline_h),
                       outline=MUTED, width=2)  # fmt: skip
    elif axis == "temperature":
        draw.text((left, top), "temperature", font=font(SMALL_FONT_PX), fill=MUTED)
        draw.text((left, top + SMALL_FONT_PX + 6), f"{value:g}", font=font(LABEL_FONT_PX + 8),
                  fill=INK)  # fmt: skip
    elif axis == "repeat":
        draw.text((left, top), axis_label(axis, value), font=font(LABEL_FONT_PX + 4), fill=INK)
    else:
        max_lines = max(1, height // (LABEL_FONT_PX + LINE_GAP_PX))
        lines = wrap_text(str(value), LABEL_FONT_PX, width, max_lines)
        _text_block(draw, lines, left=left, top=top, width=width, size=LABEL_FONT_PX,
                    centred=False)  # fmt: skip
