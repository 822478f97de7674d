"""The History tab's filters: words in the prompt, an aspect ratio, a temperature range.

`page()` gives one page of what matches and the total: the text filter runs in the history's
index; the ratio and temperature filters (when set) on the text matches, then paged here.
"""

from __future__ import annotations

import ipywidgets as w

from mai_image_nb import display
from mai_image_nb.generation import Generation
from mai_image_nb.history import History
from mai_image_nb.params import TEMPERATURE_MAX, TEMPERATURE_MIN

from .widgets import muted, ratio_options

__all__ = ["HistoryFilters"]

_EPS = 1e-9


class HistoryFilters(w.HBox):  # type: ignore[misc]
    """Text, ratio and temperature filters, and the "N images match" line."""

    def __init__(self) -> None:
        self.text_box = w.Text(
            placeholder="Filter: words in the prompt", layout=w.Layout(width="220px")
        )
        self.ratio = w.Dropdown(
            options=[("any ratio", ""), *ratio_options()], value="",
            layout=w.Layout(width="110px"),
        )  # fmt: skip
        self.temperature = w.FloatRangeSlider(
            value=(TEMPERATURE_MIN, TEMPERATURE_MAX), min=TEMPERATURE_MIN, max=TEMPERATURE_MAX,
            step=0.05, readout_format=".2f", continuous_update=False, description="temperature",
            style={"description_width": "auto"}, layout=w.Layout(width="280px"),
        )  # fmt: skip
        self.count_line = muted("")
        super().__init__(
            [self.text_box, self.ratio, self.temperature, self.count_line],
            layout=w.Layout(grid_gap="10px", align_items="center", flex_flow="row wrap"),
        )

    @property
    def controls(self) -> tuple[w.Widget, ...]:
        return (self.text_box, self.ratio, self.temperature)

    @property
    def by_settings(self) -> bool:
        """True when the ratio or temperature filter leaves something out."""
        low, high = self.temperature.value
        return bool(self.ratio.value) or low > TEMPERATURE_MIN or high < TEMPERATURE_MAX

    def keeps(self, gen: Generation) -> bool:
        low, high = self.temperature.value
        ratio = self.ratio.value
        return bool(not ratio or gen.aspect_ratio == ratio) and (
            low - _EPS <= gen.temperature <= high + _EPS
        )

    def page(self, store: History, page: int, size: int) -> tuple[list[Generation], int, int]:
        """(the generations of page `page` clamped to what exists, that page, the total)."""
        text = self.text_box.value
        matches: list[Generation] = []
        if self.by_settings:
            matches = [gen for gen in store.search(text) if self.keeps(gen)]
            total = len(matches)
        else:
            total = store.count(text)
        pages = max(1, -(-total // size))
        page = min(max(0, page), pages - 1)
        if self.by_settings:
            gens = matches[page * size : (page + 1) * size]
        else:
            gens = store.search(text, limit=size, offset=page * size)
        noun = "image" if total == 1 else "images"
        match = f" match “{text.strip()}”" if text.strip() else ""
        if self.by_settings:
            match += (" and" if match else " match") + " the settings chosen"
        self.count_line.value = (
            f'<span class="mai-muted">{total} {noun}{display.escape(match)}</span>'
        )
        return gens, page, total
