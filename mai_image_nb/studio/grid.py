"""The pieces of the Compare grid: the validated form, one cell's view, a group of repeats.

Cells are filled from worker threads by assigning widget values only. A cell opens large
(`Open`); when a cell has two or more repeats, their variation shows beside them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as w

from mai_image_nb import display
from mai_image_nb.analysis import variation_of
from mai_image_nb.errors import CancelledError
from mai_image_nb.generation import Generation

from .messages import money, temperature_label
from .widgets import Html, muted, one_line, ratio_label

__all__ = ["CellGroup", "CellView", "CompareForm", "GridLayout", "Slot", "layout_grid"]

CELL_ERROR_CHARS = 90
Slot = tuple[str, str, float, int]  # (prompt, aspect ratio, temperature, repeat)


@dataclass(frozen=True)
class CompareForm:
    """The Compare tab's settings, validated: 1-12 prompts × ratios × temperatures × repeats."""

    prompts: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    temperatures: tuple[float, ...]
    repeats: int

    @property
    def slots(self) -> list[Slot]:
        """(prompt, ratio, temperature, repeat) of every cell, in the grid's order."""
        return [
            (p, r, t, k)
            for p in self.prompts
            for r in self.aspect_ratios
            for t in self.temperatures
            for k in range(self.repeats)
        ]

    @property
    def prompt_arg(self) -> str | tuple[str, ...]:
        """What `client.compare` takes: the prompt itself when there is one."""
        return self.prompts[0] if len(self.prompts) == 1 else self.prompts


class CellView(w.VBox):  # type: ignore[misc]
    """One cell of the grid: a preview, an escaped label and Open; `state` says where it stands."""

    def __init__(self, slot: Slot, *, repeats: int, on_open: Callable[[CellView], None]) -> None:
        _prompt, ratio, temperature, repeat = slot
        self.key: Slot = slot
        self.state = "waiting"  # waiting, done, failed, cancelled
        self.generation: Generation | None = None
        self._place = f"{ratio} · t {temperature_label(temperature)}" + (
            f" · #{repeat + 1}" if repeats > 1 else ""
        )
        self.image_view = w.Image(format="jpeg", layout=w.Layout(display="none"))
        self.image_view.add_class("mai-thumb")
        self.caption = Html()
        self.caption.add_class("mai-caption")
        self.open_button = w.Button(
            description="Open",
            tooltip="See it large: use its settings, save or download it",
            disabled=True,
            layout=w.Layout(width="auto"),
        )
        self.open_button.on_click(lambda _b: on_open(self))
        super().__init__(
            [self.image_view, self.caption, self.open_button],
            layout=w.Layout(align_items="center", justify_content="center", min_height="90px"),
        )
        self.add_class("mai-card")
        self.wait()

    def wait(self) -> None:
        self.state = "waiting"
        self.generation = None
        self.remove_class("mai-failed")
        self.image_view.layout.display = "none"
        self.open_button.disabled = True
        self._label("waiting…")

    def show_image(self, gen: Generation, preview: bytes) -> None:
        self.generation = gen
        self.image_view.value = preview
        self.image_view.layout.display = None
        self.remove_class("mai-failed")
        self.state = "done"
        self.open_button.disabled = False
        self._label("from the history" if gen.cached else money(gen.usd_spent))

    def show_error(self, error: BaseException) -> None:
        cancelled = isinstance(error, CancelledError)
        self.state = "cancelled" if cancelled else "failed"
        self.add_class("mai-failed")
        self.image_view.layout.display = "none"
        self.open_button.disabled = True
        self._label("cancelled" if cancelled else one_line(str(error), CELL_ERROR_CHARS), bad=True)

    def _label(self, note: str, *, bad: bool = False) -> None:
        tone = " mai-status-error" if bad else ""
        self.caption.value = (
            f"<div><b>{display.escape(self._place)}</b></div>"
            f'<div class="mai-muted{tone}">{display.escape(note)}</div>'
        )


class CellGroup(w.VBox):  # type: ignore[misc]
    """The repeats of one (prompt, ratio, temperature) side by side, their variation beside them."""

    def __init__(self, views: list[CellView]) -> None:
        self.views = views
        self.variation: float | None = None
        self.variation_line: Html | None = None
        children: list[w.Widget] = list(views)
        if len(views) > 1:  # widgets made only when shown: none left unowned
            self.variation_line = Html()
            self.variation_line.add_class("mai-caption")
            row = w.HBox(views, layout=w.Layout(grid_gap="6px", width="100%"))
            children = [row, self.variation_line]
        super().__init__(children, layout=w.Layout(grid_gap="2px", min_width="0"))

    def update_variation(self) -> None:
        """Measure the variation once every repeat is done (runs on a worker thread)."""
        line = self.variation_line
        if line is None or self.variation is not None:
            return
        gens = [v.generation for v in self.views]
        if any(v.state == "waiting" for v in self.views):
            return
        done = [g for g in gens if g is not None]
        if len(done) < 2:
            line.value = '<span class="mai-muted">variation: too few images</span>'
            return
        self.variation = variation_of([g.image for g in done])
        line.value = (
            f'<span class="mai-muted" title="Mean pixel difference of the repeats at 64×64 '
            f'greyscale: 0 = identical">variation <b>{self.variation:.3f}</b></span>'
        )


@dataclass
class GridLayout:
    """The widgets of one grid: heads, block titles, row labels and cell groups, in order."""

    items: list[w.Widget]
    cells: list[CellView]
    groups: list[CellGroup]
    columns: str  # the CSS grid-template-columns


def layout_grid(form: CompareForm, *, on_open: Callable[[CellView], None]) -> GridLayout:
    """Rows of aspect ratios (a titled block per prompt), a column per temperature.

    The repeats of a cell sit side by side in its group, their variation under them.
    """
    cells = [CellView(slot, repeats=form.repeats, on_open=on_open) for slot in form.slots]
    columns, size = len(form.temperatures), form.repeats
    items: list[w.Widget] = [muted("")]
    items += [muted(f"temperature {temperature_label(t)}") for t in form.temperatures]
    groups: list[CellGroup] = []
    start = 0
    for prompt in form.prompts:
        if len(form.prompts) > 1:
            title = Html(f"<b>{display.escape(display.short_prompt(prompt, 160))}</b>")
            title.add_class("mai-block-title")
            title.layout.grid_column = "1 / -1"
            items.append(title)
        for ratio in form.aspect_ratios:
            items.append(muted(ratio_label(ratio)))
            for _ in range(columns):
                group = CellGroup(cells[start : start + size])
                start += size
                groups.append(group)
                items.append(group)
    return GridLayout(
        items, cells, groups, f"max-content repeat({columns}, minmax({64 * size}px, 1fr))"
    )
