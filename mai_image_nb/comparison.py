"""`Comparison` (a grid of aspect ratios × temperatures) and its `Cell`s.

A grid never loses a finished cell: each cell holds its image or its error, and
`retry_failed()` re-runs only the cells that hold an error. No widgets here.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from . import _files, display
from ._version import __version__
from .errors import MaiImageError
from .generation import Generation

__all__ = ["GRID_KEY", "Cell", "Comparison"]

GRID_KEY = "mai_image_nb:grid"  # the iTXt keyword holding a saved grid's parameters


@dataclass(frozen=True)
class Cell:
    """One place in the grid: exactly one of `generation` and `error` is set."""

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
        """JSON-safe: the cell's place, then its generation's fields or its error."""
        record: dict[str, Any] = {
            "aspect_ratio": self.aspect_ratio,
            "temperature": self.temperature,
            "repeat": self.repeat,
            "ok": self.ok,
            "error": None,
            "error_type": None,
        }
        if self.generation is not None:
            gen = self.generation.to_dict()
            record.update({k: v for k, v in gen.items() if k not in record})
        else:
            record["error"] = str(self.error)
            record["error_type"] = type(self.error).__name__
        return record


class Comparison:
    """The result of `Client.compare`: cells in row order (ratio, then temperature, then repeat)."""

    def __init__(
        self,
        *,
        prompt: str,
        aspect_ratios: Sequence[str],
        temperatures: Sequence[float],
        repeats: int,
        cells: Sequence[Cell],
        rerun: Callable[..., Comparison],
    ) -> None:
        self.prompt = prompt
        self.aspect_ratios = tuple(aspect_ratios)
        self.temperatures = tuple(temperatures)
        self.repeats = repeats
        self.cells = list(cells)
        self._rerun = rerun
        self._sheet: Image.Image | None = None

    def __getitem__(self, key: tuple[str, float]) -> Generation:
        """The image of repeat 0 at (aspect_ratio, temperature), as the values were passed.

        Raises:
            KeyError: no such cell, or that cell failed.
        """
        ratio, temperature = key
        for cell in self.cells:
            if cell.aspect_ratio == ratio and cell.temperature == temperature and not cell.repeat:
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

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-safe dict per cell, in row order."""
        return [cell.to_record() for cell in self.cells]

    def image(self) -> Image.Image:
        """The labelled contact sheet: rows are aspect ratios, columns temperatures.

        With repeats, each temperature column holds its repeats side by side (#1, #2, …).
        """
        if self._sheet is None:
            from .sheet import render_contact_sheet  # ImageDraw and fonts: only when drawn

            self._sheet = render_contact_sheet(
                self.cells,
                aspect_ratios=self.aspect_ratios,
                temperatures=self.temperatures,
                repeats=self.repeats,
                title=self.prompt,
            )
        return self._sheet

    def _grid_record(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "aspect_ratios": list(self.aspect_ratios),
            "temperatures": list(self.temperatures),
            "repeats": self.repeats,
            "total_usd": self.total_usd,
            "cells": [
                {
                    "aspect_ratio": c.aspect_ratio,
                    "temperature": c.temperature,
                    "repeat": c.repeat,
                    "id": c.generation.id if c.generation else None,
                    "error": None if c.error is None else str(c.error),
                }
                for c in self.cells
            ],
        }

    def png_bytes(self) -> bytes:
        """The contact sheet as a PNG whose text chunks carry the grid's parameters."""
        info = PngInfo()
        info.add_itxt(GRID_KEY, json.dumps(self._grid_record(), ensure_ascii=False))
        info.add_itxt("Title", display.short_prompt(self.prompt, 200))
        info.add_itxt("Description", self.prompt)
        info.add_itxt("Software", f"mai_image_nb {__version__}")
        buffer = io.BytesIO()
        self.image().save(buffer, format="PNG", pnginfo=info, compress_level=6)
        return buffer.getvalue()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the contact sheet as a PNG (written whole or not at all); returns the path.

        Raises:
            MaiImageError: a cell's image file (from the history) is missing or unreadable.
            OSError: the file cannot be written.
        """
        return _files.save_png(path, self.png_bytes())

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
        caption = (
            f"<b>{display.escape(display.short_prompt(self.prompt))}</b><br>"
            f"{done} of {len(self.cells)} cells · ${self.total_usd:.4f} in all · "
            f"${self.paid_usd:.4f} paid this run"
        )
        if self.failed:
            caption += f" · {len(self.failed)} failed (retry_failed() re-runs them)"
        return caption

    def __repr__(self) -> str:
        return (
            f"<Comparison {len(self.aspect_ratios)}×{len(self.temperatures)}"
            f"{f'×{self.repeats}' if self.repeats > 1 else ''} "
            f"{len(self.cells) - len(self.failed)} ok, {len(self.failed)} failed "
            f"${self.total_usd:.4f} prompt={self.prompt[:40]!r}>"
        )
