"""Views of stored images: a gallery tile, one image large, several side by side, the lightbox.

The History tab keeps a fixed pool of tiles; the Compare tab and the History tab both open
an image in a `LargeView` ("Use these settings", Save, Download, Full size).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import ipywidgets as w

from mai_image_nb import display
from mai_image_nb.generation import Generation
from mai_image_nb.params import Params

from .downloads import DownloadLink, human_size
from .frontend import REVEAL_CLASS, reveal_html
from .messages import money
from .widgets import (
    Html,
    Tone,
    close_tree,
    details_html,
    file_name_for,
    on_click,
    run_file_write,
    status_html,
)

__all__ = [
    "LargeView",
    "Lightbox",
    "Revealer",
    "SideBySide",
    "Tile",
    "caption_html",
    "settings_rows",
]

CAPTION_PROMPT_CHARS = 90


def caption_html(gen: Generation) -> str:
    """A tile's caption: escaped prompt, ratio, temperature and cost."""
    return (
        f"<div><b>{display.escape(display.short_prompt(gen.prompt, CAPTION_PROMPT_CHARS))}"
        f'</b></div><div class="mai-muted">{display.escape(gen.aspect_ratio)} · '
        f"t {gen.temperature:.2f}{f' · #{gen.sample}' if gen.sample else ''} · "
        f"{money(gen.usd_spent)}</div>"
    )


def settings_rows(gen: Generation) -> list[tuple[str, str]]:
    """(name, value) of the settings that make `gen`, for side-by-side comparison."""
    return [
        ("prompt", display.short_prompt(gen.prompt, CAPTION_PROMPT_CHARS)),
        ("aspect ratio", f"{gen.aspect_ratio} ({gen.width}×{gen.height})"),
        ("temperature", f"{gen.temperature:.2f}"),
        ("sample", str(gen.sample)),
        ("max_tokens", "not sent" if gen.max_tokens is None else str(gen.max_tokens)),
        (
            "max_completion_tokens",
            "not sent" if gen.max_completion_tokens is None else str(gen.max_completion_tokens),
        ),
        ("cost", money(gen.usd_spent)),
    ]


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
        self.caption = Html()
        self.caption.add_class("mai-caption")
        self.view_button = w.Button(
            description="View", tooltip="See it large, with its settings", layout=_AUTO()
        )
        self.full_button = w.Button(
            description="⤢", tooltip="Full size", layout=w.Layout(width="34px")
        )
        self.select_box = w.Checkbox(description="Select", indent=False, layout=_AUTO())
        super().__init__(
            [
                self.thumb_box,
                self.caption,
                w.HBox(
                    [self.view_button, self.full_button, self.select_box],
                    layout=w.Layout(grid_gap="4px", flex_flow="row wrap", align_items="center"),
                ),
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


def _AUTO() -> w.Layout:  # noqa: N802 - reads as a constant at the call sites
    return w.Layout(width="auto")


class Revealer(w.HTML):  # type: ignore[misc]
    """Invisible; `run()` scrolls the enclosing `REVEAL_CLASS` box into view (frontend.py)."""

    def __init__(self) -> None:
        super().__init__("", layout=w.Layout(display="none"))
        self.count = 0

    def run(self) -> None:
        self.count += 1  # a new value each time: the browser draws it, and the script runs
        self.value = reveal_html(self.count)


class Lightbox(w.VBox):  # type: ignore[misc]
    """One image at full resolution over the page; Close (or another image) replaces it.

    The full image sits in the widget only while it is shown, so a saved notebook stays small.
    """

    def __init__(self) -> None:
        self.generation: Generation | None = None
        self.image_view = w.Image(format="png")
        self.image_view.add_class("mai-lightbox-image")
        self.info = Html()
        self.info.add_class("mai-details")
        self.close_button = w.Button(description="Close", icon="times", layout=_AUTO())
        self.close_button.add_class("mai-reveal-close")  # back to what opened it
        self.close_button.on_click(lambda _b: self.hide())
        self.reveal = Revealer()
        bar = w.HBox(
            [self.info, self.close_button],
            layout=w.Layout(justify_content="space-between", align_items="center", width="100%"),
        )
        super().__init__([bar, self.image_view, self.reveal], layout=w.Layout(display="none"))
        self.add_class("mai-lightbox")
        self.add_class(REVEAL_CLASS)

    def show(self, gen: Generation) -> None:
        """Show `gen` full size, scrolled into view wherever the click came from."""
        data = gen.data
        self.generation = gen
        self.image_view.format = gen.image_format if gen.image_format != "jpg" else "jpeg"
        self.image_view.value = data
        self.info.value = (
            f"<b>{display.escape(display.short_prompt(gen.prompt, CAPTION_PROMPT_CHARS))}</b> "
            f'<span class="mai-muted">{gen.width}×{gen.height} · full size · '
            f"{human_size(len(data))}</span>"
        )
        self.layout.display = None
        self.reveal.run()

    def hide(self) -> None:
        self.generation = None
        self.image_view.value = b""
        self.reveal.value = ""
        self.layout.display = "none"

    @property
    def showing(self) -> bool:
        return self.generation is not None


class LargeView(w.HBox):  # type: ignore[misc]
    """One image large (a ≤512 px JPEG) and its settings; Use, Save, Download, Full size."""

    def __init__(
        self,
        *,
        on_use: Callable[[Params], None],
        on_full: Callable[[Generation], None],
    ) -> None:
        self.generation: Generation | None = None
        self._on_use = on_use
        self._on_full = on_full
        self.image_view = w.Image(format="jpeg")
        self.image_view.add_class("mai-preview")
        self.info = Html()
        self.info.add_class("mai-details")
        self.use_button = w.Button(
            description="Use these settings",
            button_style="primary",
            tooltip="Fill the Generate tab with these settings",
            layout=_AUTO(),
        )
        self.full_button = w.Button(description="Full size", icon="expand", layout=_AUTO())
        self.download_button = w.Button(
            description="Download", icon="download", tooltip="Prepare the PNG for your computer",
            layout=_AUTO(),
        )  # fmt: skip
        self.close_button = w.Button(description="Close", layout=_AUTO())
        self.name_box = w.Text(placeholder="file name.png", layout=w.Layout(width="220px"))
        self.save_button = w.Button(
            description="Save", icon="save", tooltip="Save into the kernel's folder", layout=_AUTO()
        )
        self.link = DownloadLink()
        self.status_line = Html()
        self.close_button.add_class("mai-reveal-close")
        self.reveal = Revealer()  # opened from a cell or tile far down: brought into view
        wrap = w.Layout(grid_gap="6px", flex_flow="row wrap", align_items="center")
        side = w.VBox(
            [
                self.reveal,
                self.info,
                w.HBox([self.use_button, self.full_button, self.close_button], layout=wrap),
                w.HBox([self.download_button, self.link], layout=wrap),
                w.HBox([self.name_box, self.save_button], layout=wrap),
                self.status_line,
            ],
            layout=w.Layout(grid_gap="6px", flex="1 1 240px", min_width="0"),
        )
        super().__init__(
            [w.Box([self.image_view], layout=w.Layout(flex="0 1 auto", min_width="0")), side],
            layout=w.Layout(display="none", grid_gap="16px", flex_flow="row wrap"),
        )
        self.add_class("mai-stage")
        self.add_class("mai-large")
        self.add_class(REVEAL_CLASS)
        on_click(self.use_button, self.use, self._error)
        on_click(self.full_button, self.full, self._error)
        on_click(self.download_button, self.download, self._error)
        on_click(self.save_button, self.save, self._error)
        on_click(self.close_button, self.hide, self._error)

    def show(self, gen: Generation, preview: bytes) -> None:
        self.generation = gen
        self.image_view.value = preview
        self.info.value = details_html(gen)
        self.name_box.value = file_name_for(gen.prompt)
        self.link.clear()
        self.status_line.value = ""
        self.layout.display = None
        self.reveal.run()

    def hide(self) -> None:
        self.generation = None
        self.link.clear()
        self.reveal.value = ""
        self.layout.display = "none"

    @property
    def showing(self) -> bool:
        return self.generation is not None

    def use(self) -> None:
        if self.generation is not None:
            self._on_use(self.generation.params)

    def full(self) -> None:
        if self.generation is not None:
            self._on_full(self.generation)

    def download(self) -> None:
        """Offer the full PNG, parameters embedded, as a link that saves it on this computer."""
        if self.generation is not None:
            self.link.offer(self.name_box.value.strip() or file_name_for(
                self.generation.prompt), self.generation.png_bytes(), "image/png")  # fmt: skip

    def save(self) -> None:
        gen, name = self.generation, self.name_box.value.strip()
        if gen is None:
            return
        if not name:
            self._show("error", "Type a file name, e.g. lighthouse.png.")
            return
        path = run_file_write(partial(gen.save, name), f"could not save {name}")
        self._show("ok", f"Saved to {path}")

    def _show(self, tone: Tone, text: str) -> None:
        self.status_line.value = status_html(tone, text)

    def _error(self, text: str) -> None:
        self._show("error", text)


class SideBySide(w.HBox):  # type: ignore[misc]
    """Several generations in one row of equal-height cards; settings that differ in bold."""

    def __init__(self, *, on_full: Callable[[Generation], None]) -> None:
        self.close_button = w.Button(description="Close", layout=_AUTO())
        self.close_button.on_click(lambda _b: self.hide())
        self._on_full = on_full
        self.row = w.HBox([], layout=w.Layout(grid_gap="8px", align_items="stretch", width="100%"))
        self.row.add_class("mai-side-row")
        super().__init__([], layout=w.Layout(display="none", width="100%"))
        self.children = (w.VBox([self.row, self.close_button], layout=w.Layout(width="100%")),)
        self.add_class("mai-stage")
        self._views: list[w.Widget] = []
        self.shown: list[Generation] = []

    def show(self, items: Sequence[tuple[Generation, bytes]]) -> None:
        rows = [settings_rows(gen) for gen, _ in items]
        differs = {name for i, (name, _) in enumerate(rows[0]) if len({r[i][1] for r in rows}) > 1}
        views: list[w.Widget] = []
        for (gen, thumb), settings in zip(items, rows, strict=True):
            image = w.Image(value=thumb, format="jpeg")
            image.add_class("mai-thumb")
            lines = "".join(
                f'<div class="{"mai-differs" if name in differs else "mai-muted"}">'
                + (
                    f"<b>{display.escape(name)}: {display.escape(value)}</b>"
                    if name in differs
                    else f"{display.escape(name)}: {display.escape(value)}"
                )
                + "</div>"
                for name, value in settings
            )
            caption = Html(lines)
            caption.add_class("mai-caption")
            full = w.Button(description="Full size", icon="expand", layout=_AUTO())
            full.on_click(lambda _b, g=gen: self._on_full(g))
            card = w.VBox(
                [image, caption, full],
                layout=w.Layout(flex="1 1 0", min_width="0", align_items="center", grid_gap="4px"),
            )
            card.add_class("mai-card")
            views.append(card)
        old, self._views = self._views, views
        self.shown = [gen for gen, _ in items]
        self.row.children = tuple(views)
        self.layout.display = None
        for widget in old:
            close_tree(widget)

    def hide(self) -> None:
        self.shown = []
        self.layout.display = "none"

    @property
    def showing(self) -> bool:
        return bool(self.shown)
