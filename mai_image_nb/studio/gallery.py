"""One gallery tile (thumbnail, escaped caption, View, Select) and the caption it shows.

The History tab keeps a fixed pool of tiles and refills them page after page.
"""

from __future__ import annotations

import ipywidgets as w

from mai_image_nb import display
from mai_image_nb.generation import Generation

from .widgets import close_tree, details_html

__all__ = ["LargeView", "SideBySide", "Tile", "caption_html"]

CAPTION_PROMPT_CHARS = 90


def caption_html(gen: Generation) -> str:
    """A tile's caption: escaped prompt, ratio, temperature and cost."""
    return (
        f"<div><b>{display.escape(display.short_prompt(gen.prompt, CAPTION_PROMPT_CHARS))}"
        f'</b></div><div class="mai-muted">{display.escape(gen.aspect_ratio)} · '
        f"t {gen.temperature:.2f}{f' · #{gen.sample}' if gen.sample else ''} · "
        f"${gen.usd_spent:.4f}</div>"
    )


class Tile(w.VBox):  # type: ignore[misc]
    """One gallery place: thumbnail, caption, View and Select; `generation` is what it shows."""

    def __init__(self) -> None:
        self.generation: Generation | None = None
        self.image_view = w.Image(format="jpeg")
        self.image_view.add_class("mai-thumb")
        self.thumb_box = w.Box(
            [self.image_view], layout=w.Layout(align_items="center", justify_content="center")
        )
        self.thumb_box.add_class("mai-thumb-box")
        self.caption = w.HTML()
        self.caption.add_class("mai-caption")
        self.view_button = w.Button(
            description="View",
            tooltip="See it large, with its settings",
            layout=w.Layout(width="64px"),
        )
        self.select_box = w.Checkbox(
            description="Select", indent=False, layout=w.Layout(width="auto")
        )
        super().__init__(
            [
                self.thumb_box,
                self.caption,
                w.HBox([self.view_button, self.select_box], layout=w.Layout(grid_gap="6px")),
            ],
            layout=w.Layout(display="none", align_items="center", grid_gap="4px"),
        )
        self.add_class("mai-card")

    def show(self, gen: Generation, thumb: bytes, *, selected: bool) -> None:
        self.generation = gen
        self.image_view.value = thumb
        self.caption.value = caption_html(gen)
        self.select_box.value = selected
        self.mark(selected)
        self.layout.display = None

    def hide(self) -> None:
        self.generation = None
        self.layout.display = "none"
        self.select_box.value = False

    def mark(self, selected: bool) -> None:
        if selected:
            self.add_class("mai-selected")
        else:
            self.remove_class("mai-selected")


class LargeView(w.HBox):  # type: ignore[misc]
    """One generation large (a stored ≤512 px JPEG), its parameters, "Use these settings"."""

    def __init__(self) -> None:
        self.image_view = w.Image(format="jpeg")
        self.image_view.add_class("mai-preview")
        self.info = w.HTML()
        self.info.add_class("mai-details")
        self.use_button = w.Button(
            description="Use these settings",
            button_style="primary",
            tooltip="Fill the Generate tab with these settings",
        )
        self.close_button = w.Button(description="Close")
        buttons = w.HBox([self.use_button, self.close_button], layout=w.Layout(grid_gap="8px"))
        super().__init__(
            [
                w.Box([self.image_view], layout=w.Layout(justify_content="center")),
                w.VBox([self.info, buttons], layout=w.Layout(grid_gap="8px", flex="1 1 240px")),
            ],
            layout=w.Layout(display="none", grid_gap="16px", flex_flow="row wrap"),
        )
        self.add_class("mai-stage")

    def show(self, gen: Generation, preview: bytes) -> None:
        self.image_view.value = preview
        self.info.value = details_html(gen)
        self.layout.display = None

    def hide(self) -> None:
        self.layout.display = "none"


class SideBySide(w.HBox):  # type: ignore[misc]
    """Several generations next to each other, each with its caption."""

    def __init__(self) -> None:
        super().__init__([], layout=w.Layout(display="none", grid_gap="10px", flex_flow="row wrap"))
        self.add_class("mai-stage")
        self._views: list[w.Widget] = []

    def show(self, items: list[tuple[Generation, bytes]]) -> None:
        views: list[w.Widget] = []
        for gen, thumb in items:
            image = w.Image(value=thumb, format="jpeg")
            image.add_class("mai-thumb")
            caption = w.HTML(caption_html(gen))
            caption.add_class("mai-caption")
            views.append(w.VBox([image, caption], layout=w.Layout(width="260px")))
        old, self._views = self._views, views
        self.children = tuple(views)
        self.layout.display = None
        for widget in old:
            close_tree(widget)
