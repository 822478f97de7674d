"""A grid as numbers: one record per cell, a tidy DataFrame, and how much repeats vary.

Pure functions over `Cell`s; pandas is optional and imported only by `records_frame`.
No widgets, no drawing beyond the 64×64 reductions `cell_variation` documents.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageChops, ImageStat

from .errors import MaiImageError
from .export import RECORD_FIELDS, record_of

if TYPE_CHECKING:
    from .comparison import Cell
    from .generation import Generation

__all__ = [
    "CELL_FIELDS",
    "VARIATION_SIDE_PX",
    "cell_record",
    "cell_variation",
    "records_frame",
    "variation_of",
]

VARIATION_SIDE_PX = 64
# The cell's place and outcome first, then the generation's record (without its own prompt,
# aspect ratio and temperature, which the cell already gives).
CELL_FIELDS: tuple[str, ...] = (
    "prompt", "aspect_ratio", "temperature", "repeat", "ok", "error", "error_type",
    *(f for f in RECORD_FIELDS if f not in ("prompt", "aspect_ratio", "temperature")),
    "cached",
)  # fmt: skip


_PLACE = frozenset({"prompt", "aspect_ratio", "temperature"})


def cell_record(cell: Cell, files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """JSON-safe: where the cell is, whether it worked, then its generation's record.

    A failed cell has the generation's fields set to None; `files` maps generation ids to
    their image files (from `History.to_records()`), else `file` is None.
    """
    record: dict[str, Any] = dict.fromkeys(CELL_FIELDS)
    record.update(
        prompt=cell.prompt,
        aspect_ratio=cell.aspect_ratio,
        temperature=cell.temperature,
        repeat=cell.repeat,
        ok=cell.ok,
    )
    if cell.generation is not None:
        gen = cell.generation
        generated = record_of(gen, (files or {}).get(gen.id))
        record.update({k: v for k, v in generated.items() if k not in _PLACE})
        record["cached"] = gen.cached
    else:
        record["error"] = str(cell.error)
        record["error_type"] = type(cell.error).__name__
    return record


def records_frame(records: Sequence[Mapping[str, Any]]) -> Any:
    """`records` as a pandas DataFrame with the columns of `CELL_FIELDS` (`created` as UTC).

    Raises:
        ImportError: pandas is not installed (`pip install pandas`).
    """
    try:
        import pandas as pd  # optional: imported only here
    except ImportError as exc:
        raise ImportError("Comparison.to_pandas() needs pandas: pip install pandas") from exc
    frame = pd.DataFrame.from_records(list(records), columns=list(CELL_FIELDS))
    if len(frame):
        frame["created"] = pd.to_datetime(frame["created"], utc=True, format="ISO8601")
    return frame


def _reduced(image: Image.Image) -> Image.Image:
    side = VARIATION_SIDE_PX
    return image.convert("L").resize((side, side), Image.Resampling.BILINEAR)


def _small(gen: Generation) -> Image.Image:
    """`gen`'s picture already reduced, decoded here so the Generation keeps no pixels."""
    try:
        with Image.open(io.BytesIO(gen.data)) as image:
            return _reduced(image)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MaiImageError(f"the image of {gen.id!r} cannot be decoded ({exc})") from exc


def variation_of(images: Sequence[Image.Image]) -> float:
    """Mean over pairs of the mean absolute pixel difference / 255 at 64×64 greyscale.

    0 for identical pictures; 1 only for a pure black and a pure white one.

    Raises:
        ValueError: fewer than two images.
    """
    if len(images) < 2:
        raise ValueError("variation needs at least two images")
    small = [_reduced(image) for image in images]
    pairs = list(itertools.combinations(small, 2))
    total = sum(ImageStat.Stat(ImageChops.difference(a, b)).mean[0] for a, b in pairs)
    return total / len(pairs) / 255.0


def cell_variation(cells: Iterable[Cell]) -> list[dict[str, Any]]:
    """`Comparison.variation()`: one dict per (prompt, ratio, temperature) with ≥ 2 repeats done.

    In the grid's order; each image is decoded, reduced and let go at once (the
    Generations keep no decoded pixels).

    Raises:
        MaiImageError: an image (from the history) is missing or cannot be decoded.
    """
    groups: dict[tuple[str, str, float], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.prompt, cell.aspect_ratio, cell.temperature), []).append(cell)
    result = []
    for (prompt, ratio, temperature), group in groups.items():
        done = [c.generation for c in group if c.generation is not None]
        if len(done) < 2:
            continue
        result.append(
            {
                "prompt": prompt,
                "aspect_ratio": ratio,
                "temperature": temperature,
                "n": len(done),
                "variation": variation_of([_small(g) for g in done]),
            }
        )
    return result
