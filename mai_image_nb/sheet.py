"""The labelled contact sheet of a grid: one picture a class can read at a glance.

Layout: a title band (the prompt), a header row (temperatures, and #1, #2, … when
there are repeats), a header column (aspect ratios, each with a small outline of
its shape), then one tile per cell. Every image is scaled to a common height
without distortion; a failed cell is a labelled placeholder of the same shape.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from .errors import CancelledError
from .params import IMAGE_SIZES

if TYPE_CHECKING:
    from .comparison import Cell

__all__ = ["TILE_HEIGHT_PX", "render_contact_sheet"]

TILE_HEIGHT_PX = 256
GAP_PX = 8
MARGIN_PX = 12
ROW_LABEL_WIDTH_PX = 110
TITLE_FONT_PX = 20
LABEL_FONT_PX = 18
SMALL_FONT_PX = 13
BACKGROUND = (255, 255, 255)
BAND = (238, 240, 243)
INK = (32, 33, 36)
MUTED = (95, 99, 104)
FAILED_FILL = (253, 232, 232)
FAILED_INK = (165, 29, 42)
CANCELLED_FILL = (240, 240, 240)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _tile_size(width: int, height: int, tile_height: int) -> tuple[int, int]:
    """The size of a `width`×`height` image scaled to `tile_height` without distortion."""
    return max(1, round(tile_height * width / height)), tile_height


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: Font, max_width: int) -> str:
    """`text` cut with an ellipsis so it fits `max_width` pixels."""
    if draw.textlength(text, font=font) <= max_width:
        return text
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if draw.textlength(text[:mid] + "…", font=font) <= max_width:
            low = mid
        else:
            high = mid - 1
    return text[:low] + "…"


def _centred_text(
    draw: ImageDraw.ImageDraw,
    text: str,
    *,
    left: float,
    width: float,
    top: float,
    size: int,
    fill: tuple[int, int, int] = INK,
) -> None:
    font = _font(size)
    draw.text(
        (left + (width - draw.textlength(text, font=font)) / 2, top), text, font=font, fill=fill
    )


def _scaled(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    tile = image if image.mode == "RGB" else image.convert("RGB")
    if tile.size != size:
        # As Image.thumbnail does: a cheap box reduce first, then a bicubic resample.
        tile = tile.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    return tile


def _placeholder(cell: Cell, size: tuple[int, int]) -> Image.Image:
    cancelled = isinstance(cell.error, CancelledError)
    tile = Image.new("RGB", size, CANCELLED_FILL if cancelled else FAILED_FILL)
    draw = ImageDraw.Draw(tile)
    ink = MUTED if cancelled else FAILED_INK
    draw.rectangle((0, 0, size[0] - 1, size[1] - 1), outline=ink, width=2)
    heading = "cancelled" if cancelled else "failed"
    draw.text((10, 10), heading, font=_font(LABEL_FONT_PX), fill=ink)
    chars_per_line = max(8, (size[0] - 20) // 7)
    lines = textwrap.wrap(str(cell.error), width=chars_per_line)[:6]
    draw.multiline_text((10, 40), "\n".join(lines), font=_font(SMALL_FONT_PX), fill=ink, spacing=3)
    return tile


def render_contact_sheet(
    cells: Sequence[Cell],
    *,
    aspect_ratios: Sequence[str],
    temperatures: Sequence[float],
    repeats: int,
    title: str = "",
    tile_height: int = TILE_HEIGHT_PX,
) -> Image.Image:
    """Draw the grid: rows are aspect ratios, columns temperatures (repeats side by side)."""
    tile_sizes = {ratio: _tile_size(*IMAGE_SIZES[ratio], tile_height) for ratio in aspect_ratios}
    for cell in cells:  # the service's own sizes may differ a little from the nominal ratio
        if cell.generation is not None:
            gen = cell.generation
            tile_sizes[cell.aspect_ratio] = _tile_size(gen.width, gen.height, tile_height)
    slot_width = max(width for width, _ in tile_sizes.values())
    group_width = repeats * slot_width + (repeats - 1) * GAP_PX
    header_height = 34 + (22 if repeats > 1 else 0)
    title_height = 40 if title else 0
    width = MARGIN_PX * 2 + ROW_LABEL_WIDTH_PX + len(temperatures) * (group_width + GAP_PX)
    height = (
        MARGIN_PX * 2 + title_height + header_height + len(aspect_ratios) * (tile_height + GAP_PX)
    )
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    if title:
        draw.rectangle((0, 0, width, MARGIN_PX + title_height - 6), fill=BAND)
        text = _fit_text(draw, " ".join(title.split()), _font(TITLE_FONT_PX), width - 2 * MARGIN_PX)
        draw.text((MARGIN_PX, MARGIN_PX), text, font=_font(TITLE_FONT_PX), fill=INK)

    top = MARGIN_PX + title_height
    grid_left = MARGIN_PX + ROW_LABEL_WIDTH_PX
    draw.rectangle((grid_left - GAP_PX // 2, top, width, top + header_height - 4), fill=BAND)
    for column, temperature in enumerate(temperatures):
        left = grid_left + column * (group_width + GAP_PX)
        label = f"temperature {temperature:g}"
        _centred_text(draw, label, left=left, width=group_width, top=top + 7, size=LABEL_FONT_PX)
        for repeat in range(repeats if repeats > 1 else 0):
            sub_left = left + repeat * (slot_width + GAP_PX)
            _centred_text(draw, f"#{repeat + 1}", left=sub_left, width=slot_width, top=top + 34,
                          size=SMALL_FONT_PX, fill=MUTED)  # fmt: skip

    rows_top = top + header_height
    draw.rectangle((0, rows_top, MARGIN_PX + ROW_LABEL_WIDTH_PX - GAP_PX, height), fill=BAND)
    for row, ratio in enumerate(aspect_ratios):
        row_top = rows_top + row * (tile_height + GAP_PX)
        draw.text((MARGIN_PX + 4, row_top + 8), ratio, font=_font(LABEL_FONT_PX + 4), fill=INK)
        # A small outline of the shape, so the ratio reads without the numbers.
        outline_w, outline_h = _tile_size(*IMAGE_SIZES[ratio], 48)
        scale = min(1.0, 80 / outline_w)
        outline_w, outline_h = round(outline_w * scale), round(outline_h * scale)
        box_top = row_top + 44
        draw.rectangle(
            (MARGIN_PX + 6, box_top, MARGIN_PX + 6 + outline_w, box_top + outline_h),
            outline=MUTED,
            width=2,
        )

    index = {(c.aspect_ratio, c.temperature, c.repeat): c for c in cells}
    for row, ratio in enumerate(aspect_ratios):
        size = tile_sizes[ratio]
        row_top = rows_top + row * (tile_height + GAP_PX)
        for column, temperature in enumerate(temperatures):
            for repeat in range(repeats):
                found = index.get((ratio, temperature, repeat))
                if found is None:
                    continue
                if found.generation is not None:
                    tile = _scaled(found.generation.image, size)
                else:
                    tile = _placeholder(found, size)
                slot_left = (
                    grid_left + column * (group_width + GAP_PX) + repeat * (slot_width + GAP_PX)
                )
                sheet.paste(tile, (slot_left + (slot_width - size[0]) // 2, row_top))
    return sheet
