"""The pieces of the Compare grid: the parsed form, one cell's view, the temperature list.

Cells are filled from worker threads by assigning widget values only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ipywidgets as w

from mai_image_nb import display
from mai_image_nb.errors import CancelledError, ValidationError
from mai_image_nb.generation import Generation
from mai_image_nb.params import TEMPERATURE_MAX, TEMPERATURE_MIN

from .widgets import one_line

__all__ = ["CellView", "CompareForm", "parse_temperatures", "temperature_label"]

CELL_ERROR_CHARS = 90
_SPLIT = re.compile(r"[,;\s]+")


def temperature_label(value: float) -> str:
    """`0.2`, `1.0`, `0.35`: one decimal at least, two when needed."""
    return f"{value:.1f}" if round(value, 1) == value else f"{value:.2f}"


def parse_temperatures(text: str) -> tuple[float, ...]:
    """`"0.2, 1.0, 1.8"` as numbers, each in [0, 2] and given once.

    Raises:
        ValidationError: naming `temperatures`, with what is allowed.
    """
    allowed = (
        f"numbers from {TEMPERATURE_MIN:g} to {TEMPERATURE_MAX:g}, each once, "
        "separated by commas (e.g. 0.2, 1.0, 1.8)"
    )
    parts = [part for part in _SPLIT.split(text.strip()) if part]
    if not parts:
        raise ValidationError("temperatures", text, allowed)
    values: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValidationError("temperatures", text, allowed) from None
        if not TEMPERATURE_MIN <= value <= TEMPERATURE_MAX or value in values:
            raise ValidationError("temperatures", text, allowed)
        values.append(value)
    return tuple(values)


@dataclass(frozen=True)
class CompareForm:
    """The Compare tab's settings, validated."""

    prompt: str
    aspect_ratios: tuple[str, ...]
    temperatures: tuple[float, ...]
    repeats: int

    @property
    def slots(self) -> list[tuple[str, float, int]]:
        """(ratio, temperature, repeat) of every cell, in the grid's row order."""
        return [
            (r, t, k)
            for r in self.aspect_ratios
            for t in self.temperatures
            for k in range(self.repeats)
        ]


class CellView(w.VBox):  # type: ignore[misc]
    """One cell of the grid: a preview and an escaped label; `state` says where it stands."""

    def __init__(self, ratio: str, temperature: float, repeat: int, *, repeats: int) -> None:
        self.key = (ratio, temperature, repeat)
        self.state = "waiting"  # waiting, done, failed, cancelled
        self.generation: Generation | None = None
        self._place = f"{ratio} · t {temperature_label(temperature)}" + (
            f" · #{repeat + 1}" if repeats > 1 else ""
        )
        self.image_view = w.Image(format="jpeg", layout=w.Layout(display="none"))
        self.image_view.add_class("mai-thumb")
        self.caption = w.HTML()
        self.caption.add_class("mai-caption")
        super().__init__(
            [self.image_view, self.caption],
            layout=w.Layout(align_items="center", justify_content="center", min_height="90px"),
        )
        self.add_class("mai-card")
        self.wait()

    def wait(self) -> None:
        self.state = "waiting"
        self.generation = None
        self.remove_class("mai-failed")
        self.image_view.layout.display = "none"
        self._label("waiting…")

    def show_image(self, gen: Generation, preview: bytes) -> None:
        self.generation = gen
        self.image_view.value = preview
        self.image_view.layout.display = None
        self.remove_class("mai-failed")
        self.state = "done"
        self._label("from the history" if gen.cached else f"${gen.usd_spent:.4f}")

    def show_error(self, error: BaseException) -> None:
        cancelled = isinstance(error, CancelledError)
        self.state = "cancelled" if cancelled else "failed"
        self.add_class("mai-failed")
        self.image_view.layout.display = "none"
        self._label("cancelled" if cancelled else one_line(str(error), CELL_ERROR_CHARS), bad=True)

    def _label(self, note: str, *, bad: bool = False) -> None:
        tone = " mai-status-error" if bad else ""
        self.caption.value = (
            f"<div><b>{display.escape(self._place)}</b></div>"
            f'<div class="mai-muted{tone}">{display.escape(note)}</div>'
        )
