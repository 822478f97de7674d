"""`Comparison` (a grid of prompts × aspect ratios × temperatures × repeats) and its `Cell`s.

A grid never loses a finished cell: each cell holds its image or its error, and
`retry_failed()` re-runs only the cells that hold an error. No widgets here; the
sheet (`sheet.py`), the numbers (`analysis.py`) and the HTML page (`report.py`)
are drawn on demand.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from . import _files, display
from ._version import __version__
from .errors import MaiImageError
from .generation import Generation

if TYPE_CHECKING:
    from .history import History

__all__ = ["GRID_KEY", "Cell", "Comparison"]

GRID_KEY = "mai_image_nb:grid"  # the iTXt keyword holding a saved grid's parameters


@dataclass(frozen=True)
class Cell:
    """One place in the grid: exactly one of `generation` and `error` is set."""

    prompt: str
    aspect_ratio: str
    temperature: float
    repeat: int
    generation: Generation | None = None
    error: MaiImageError | None = None

    def __post_init__(self) -> None:
        if (self.generation is None) == (self.error is None):
            raise TypeError("a Cell holds exactly one of generation and error")

    @property
    def ok(self) -> bool:
        return self.generation is not None

    def to_record(self) -> dict[str, Any]:
        """JSON-safe: the cell's place, `ok` and `error`, then its generation's record."""
        from .analysis import cell_record  # the record's fields live with the other analyses

        return cell_record(self)


class Comparison:
    """The result of `Client.compare`: cells in order of prompt, ratio, temperature, repeat."""

    def __init__(
        self,
        *,
        prompts: Sequence[str],
        aspect_ratios: Sequence[str],
        temperatures: Sequence[float],
        repeats: int,
        cells: Sequence[Cell],
        rerun: Callable[..., Comparison],
        history: History | None = None,
    ) -> None:
        self.prompts = tuple(prompts)
        self.aspect_ratios = tuple(aspect_ratios)
        self.temperatures = tuple(temperatures)
        self.repeats = repeats
        self.cells = list(cells)
        self._rerun = rerun
        self._history = history
        self._sheets: dict[tuple[str, str], Image.Image] = {}

    @property
    def prompt(self) -> str:
        """The prompt of a one-prompt grid; with variants, the first of `prompts`."""
        return self.prompts[0]

    def __getitem__(self, key: tuple[str, float] | tuple[str, str, float]) -> Generation:
        """The image of repeat 0 at `[ratio, temperature]` (one prompt) or `[prompt, ratio, temp]`.

        Values match as they were passed (`1` finds `1.0`).

        Raises:
            KeyError: no such cell, that cell failed, or a two-part key on a grid of
                several prompts.
        """
        if len(key) not in (2, 3):
            raise KeyError(f"{key!r}: use [aspect_ratio, temperature] or [prompt, ratio, temp]")
        if len(key) == 2:
            if len(self.prompts) != 1:
                raise KeyError(
                    f"{key!r}: this grid has {len(self.prompts)} prompts; "
                    "use [prompt, aspect_ratio, temperature]"
                )
            prompt, ratio, temperature = self.prompts[0], key[0], key[1]
        else:
            prompt, ratio, temperature = key
        for cell in self.cells:
            if (
                cell.prompt == prompt
                and cell.aspect_ratio == ratio
                and cell.temperature == temperature
                and not cell.repeat
            ):
                if cell.generation is None:
                    raise KeyError(f"cell {key!r} failed: {cell.error}")
                return cell.generation
        raise KeyError(key)

    def __len__(self) -> int:
        return len(self.cells)

    def __iter__(self) -> Iterator[Cell]:
        return iter(self.cells)

    @property
    def failed(self) -> list[Cell]:
        """Cells that hold an error (cancelled ones included)."""
        return [cell for cell in self.cells if cell.error is not None]

    def retry_failed(
        self,
        *,
        progress: bool = True,
        cancel: threading.Event | None = None,
        on_cell: Callable[[Cell], None] | None = None,
    ) -> Comparison:
        """Run only the failed or cancelled cells again; the finished ones are kept as they are.

        Raises:
            BudgetExceededError: the cells to re-run would pass the budget.
        """
        failed = [i for i, cell in enumerate(self.cells) if cell.error is not None]
        if not failed:
            return self
        return self._rerun(failed, progress=progress, cancel=cancel, on_cell=on_cell)

    @property
    def total_usd(self) -> float:
        """What the grid's images cost when they were made, cached ones included."""
        return sum(c.generation.usd_spent for c in self.cells if c.generation is not None)

    @property
    def paid_usd(self) -> float:
        """What this run paid: cells answered from the cache count 0."""
        return sum(
            c.generation.usd_spent
            for c in self.cells
            if c.generation is not None and not c.generation.cached
        )

    # -- numbers (analysis.py) ------------------------------------------------------------

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-safe dict per cell, in grid order.

        Keys: `prompt`, `aspect_ratio`, `temperature`, `repeat`, `ok`, `error`,
        `error_type`, then the generation's record as in `History.to_records()`
        (`id`, `sample`, `usd_spent`, `file`, ...; None for a failed cell).
        """
        from .analysis import cell_record
        from .history import image_files

        ids = [cell.generation.id for cell in self.cells if cell.generation is not None]
        files = image_files(self._history, ids) if self._history is not None and ids else {}
        return [cell_record(cell, files) for cell in self.cells]

    def to_pandas(self) -> Any:
        """`to_records()` as a tidy pandas DataFrame, one row per cell.

        Raises:
            ImportError: pandas is not installed (`pip install pandas`).
        """
        from .analysis import records_frame

        return records_frame(self.to_records())

    def variation(self) -> list[dict[str, Any]]:
        """How much the repeats of each cell differ: 0 = identical pixels, 1 = black vs white.

        For each (prompt, aspect_ratio, temperature) with two or more finished repeats,
        `{"prompt", "aspect_ratio", "temperature", "n", "variation"}` where `n` is the
        number of finished repeats and `variation` is computed by hand like this:

            small = [g.image.convert("L").resize((64, 64), Image.Resampling.BILINEAR)
                     for g in finished_repeats]
            pairs = itertools.combinations(small, 2)
            variation = mean(mean(abs(a[i] - b[i]) for each of the 4096 pixels) / 255
                             for a, b in pairs)

        i.e. both images reduced to 64×64 greyscale with an antialiasing (BILINEAR)
        resize, the mean absolute difference of their pixels divided by 255, averaged
        over every pair of repeats. Cells with fewer than two finished repeats are left out.

        Raises:
            MaiImageError: an image (from the history) is missing or cannot be decoded.
        """
        from .analysis import cell_variation

        return cell_variation(self.cells)

    # -- the contact sheet (sheet.py) ------------------------------------------------------

    def image(self, rows: str = "aspect_ratio", cols: str = "temperature") -> Image.Image:
        """The labelled contact sheet with `rows` and `cols` any two of prompt,
        aspect_ratio, temperature and repeat.

        The axes left over that have more than one value become titled blocks stacked one
        under another; repeats (when not an axis) sit side by side within a cell.

        Raises:
            ValidationError: `rows`/`cols` is not prompt, aspect_ratio, temperature or
                repeat, or both name the same axis.
            MaiImageError: a cell's image file (from the history) is missing or unreadable.
        """
        from .sheet import check_axes, render_contact_sheet  # ImageDraw and fonts: when drawn

        check_axes(rows, cols)
        if (rows, cols) not in self._sheets:
            self._sheets[rows, cols] = render_contact_sheet(self, rows=rows, cols=cols)
        return self._sheets[rows, cols]

    def _grid_record(self) -> dict[str, Any]:
        return {
            "prompts": list(self.prompts),
            "aspect_ratios": list(self.aspect_ratios),
            "temperatures": list(self.temperatures),
            "repeats": self.repeats,
            "total_usd": self.total_usd,
            "cells": [
                {
                    "prompt": c.prompt,
                    "aspect_ratio": c.aspect_ratio,
                    "temperature": c.temperature,
                    "repeat": c.repeat,
                    "id": c.generation.id if c.generation else None,
                    "error": None if c.error is None else str(c.error),
                }
                for c in self.cells
            ],
        }

    def png_bytes(self, rows: str = "aspect_ratio", cols: str = "temperature") -> bytes:
        """The contact sheet as a PNG whose text chunks carry the grid's parameters."""
        info = PngInfo()
        info.add_itxt(GRID_KEY, json.dumps(self._grid_record(), ensure_ascii=False))
        info.add_itxt("Title", display.short_prompt(" | ".join(self.prompts), 200))
        info.add_itxt("Description", "\n".join(self.prompts))
        info.add_itxt("Software", f"mai_image_nb {__version__}")
        buffer = io.BytesIO()
        self.image(rows, cols).save(buffer, format="PNG", pnginfo=info, compress_level=6)
        return buffer.getvalue()

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        rows: str = "aspect_ratio",
        cols: str = "temperature",
    ) -> Path:
        """Write the contact sheet (`image(rows, cols)`) as a PNG, whole or not at all.

        Raises:
            ValidationError: a bad axis name.
            MaiImageError: a cell's image file (from the history) is missing or unreadable.
            OSError: the file cannot be written.
        """
        return _files.save_png(path, self.png_bytes(rows, cols))

    # -- the report (report.py) ------------------------------------------------------------

    def to_html(
        self,
        path: str | os.PathLike[str],
        *,
        rows: str = "aspect_ratio",
        cols: str = "temperature",
    ) -> Path:
        """One self-contained HTML page of the grid, to mail to a colleague or post for a class.

        Images are embedded as ≤ 512 px JPEG previews; the sheet's layout (`rows`, `cols`,
        blocks as in `image()`) is an HTML table; prompts, parameters, costs and the
        variation between repeats are shown, every text escaped; nothing is loaded from
        the network. A folder (or a path ending in `/`) gets a file named from the first
        prompt; ".html" is added when missing. Returns the path written.

        Raises:
            ValidationError: a bad axis name.
            OSError: the file cannot be written.
        """
        from .report import write_comparison_html

        return write_comparison_html(self, path, rows=rows, cols=cols)

    # -- Jupyter ---------------------------------------------------------------------------

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.image().save(buffer, format="PNG", compress_level=3)
        return buffer.getvalue()

    def _repr_html_(self) -> str:
        sheet = self.image()
        return display.figure_html(self._repr_png_(), "image/png", self._caption(), sheet.width)

    def _ipython_display_(self) -> None:
        # The sheet once (image/png) and the caption apart: see `display.show_once`.
        sheet = self.image()
        display.show_once(self._repr_png_(), self._caption(), repr(self), sheet.width)

    def _caption(self) -> str:
        done = sum(1 for c in self.cells if c.ok)
        prompts = "<br>".join(
            f"<b>{display.escape(display.short_prompt(p))}</b>" for p in self.prompts
        )
        # Shown through `figure_html` / `show_once`, whose `display.no_math` keeps "$" as text.
        caption = (
            f"{prompts}<br>{done} of {len(self.cells)} cells · ${self.total_usd:.4f} in all · "
            f"${self.paid_usd:.4f} paid this run"
        )
        if self.failed:
            caption += f" · {len(self.failed)} failed (retry_failed() re-runs them)"
        return caption

    def __repr__(self) -> str:
        shape = f"{len(self.aspect_ratios)}×{len(self.temperatures)}"
        if len(self.prompts) > 1:
            shape = f"{len(self.prompts)}×{shape}"
        return (
            f"<Comparison {shape}{f'×{self.repeats}' if self.repeats > 1 else ''} "
            f"{len(self.cells) - len(self.failed)} ok, {len(self.failed)} failed "
            f"${self.total_usd:.4f} prompt={self.prompts[0][:40]!r}"
            f"{f' (+{len(self.prompts) - 1} more)' if len(self.prompts) > 1 else ''}>"
        )
