"""The History tab: a paged, filterable gallery of stored thumbnails, newest first.

A fixed pool of tiles is reused page after page; pages render on a background thread that
coalesces requests (typing in the filter, new images arriving), so the notebook never waits.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import ipywidgets as w

from mai_image_nb.client import Client
from mai_image_nb.errors import MaiImageError
from mai_image_nb.generation import Generation
from mai_image_nb.history import History
from mai_image_nb.params import Params

from .gallery import LargeView, SideBySide, Tile
from .history_files import HistoryFiles
from .history_filters import HistoryFilters
from .jobs import Coalescer, JobRunner
from .widgets import (
    ConfirmRow,
    Html,
    Tone,
    muted,
    on_click,
    status_html,
)

__all__ = ["HistoryTab"]

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 12
LARGE_PX = 512  # the large view: a stored ≤512 px JPEG, made once
MAX_SIDE_BY_SIDE = 6


class HistoryTab(w.VBox):  # type: ignore[misc]
    """Gallery, filter and pages; the large view; side by side; Export; Delete (asks first).

    The gallery redraws itself when new images arrive (the Studio tells it), no reopening.
    """

    def __init__(
        self,
        client: Client,
        *,
        on_use: Callable[[Params], None],
        on_full: Callable[[Generation], None],
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self.client = client
        self.store: History | None = client.history
        self.page_size = max(1, int(page_size))
        self.page = 0
        self.total = 0
        self.selected: dict[str, Generation] = {}  # in the order they were ticked
        self.opened: Generation | None = None
        self._on_use = on_use
        self._pending_delete: list[str] = []
        self._renderer = Coalescer(self._render_safely, name="gallery")
        self.refreshed = self._renderer.idle  # set whenever no page render is pending

        self.filters = HistoryFilters()
        self.filter_box = self.filters.text_box
        self.ratio_filter = self.filters.ratio
        self.temperature_filter = self.filters.temperature
        self.count_line = self.filters.count_line
        self.status_line = Html(status_html("idle", ""))
        self.tiles = [Tile() for _ in range(self.page_size)]
        self.gallery = w.GridBox(
            self.tiles,
            layout=w.Layout(
                grid_template_columns="repeat(auto-fill, minmax(170px, 1fr))", grid_gap="10px"
            ),
        )
        self.prev_button = w.Button(description="‹ Newer", disabled=True)
        self.next_button = w.Button(description="Older ›", disabled=True)
        self.page_label = muted("")
        self.selection_line = muted("")
        auto = w.Layout(width="auto")
        self.side_by_side_button = w.Button(description="Side by side", disabled=True, layout=auto)
        self.clear_selection_button = w.Button(
            description="Clear selection", disabled=True, layout=w.Layout(width="auto")
        )
        self.delete_button = w.Button(
            description="Delete", icon="trash", disabled=True, layout=w.Layout(width="auto")
        )
        self.files = HistoryFiles(
            self.store, lambda: self.jobs, lambda: list(self.selected.values()), self._show
        )
        self.download_button, self.download_link = self.files.download_button, self.files.link
        self.export_folder_box = self.files.folder_box
        self.export_button = self.files.export_button
        self.confirm_row = ConfirmRow(yes="Yes, delete", no="No, keep")
        self.confirm_line = self.confirm_row.question
        self.confirm_yes_button = self.confirm_row.yes_button
        self.confirm_no_button = self.confirm_row.no_button
        self.detail_view = LargeView(on_use=on_use, on_full=on_full)
        self.detail_image = self.detail_view.image_view
        self.detail_info = self.detail_view.info
        self.use_button = self.detail_view.use_button
        self.close_detail_button = self.detail_view.close_button
        self.side_by_side = SideBySide(on_full=on_full)
        self.lightbox_slot = w.Box([], layout=w.Layout(width="100%"))  # the Studio's lightbox

        toolbar = self.filters
        pager = w.HBox(
            [self.prev_button, self.page_label, self.next_button],
            layout=w.Layout(grid_gap="10px", align_items="center", justify_content="center"),
        )
        actions = w.HBox(
            [
                self.selection_line,
                self.side_by_side_button,
                self.clear_selection_button,
                self.delete_button,
                self.download_button,
                self.download_link,
                self.export_folder_box,
                self.export_button,
            ],
            layout=w.Layout(grid_gap="8px", align_items="center", flex_flow="row wrap"),
        )
        body = w.VBox(
            [
                toolbar,
                self.status_line,
                self.confirm_row,
                self.detail_view,
                self.side_by_side,
                self.lightbox_slot,  # under the large view or side by side, over the gallery
                self.gallery,
                pager,
                actions,
            ],
            layout=w.Layout(grid_gap="8px"),
        )
        self.off_message = Html(
            '<div class="mai-details">The history is off for this client '
            "(<code>history=False</code>), so there is nothing to browse here. Images made in "
            "this session are kept in memory only; use <code>Client()</code> with a history "
            "to keep them.</div>"
        )
        if self.store is None:
            body.layout.display = "none"
        else:
            self.off_message.layout.display = "none"
        super().__init__([self.off_message, body], layout=w.Layout(padding="8px"))

        self.jobs = JobRunner(name="history", on_busy=self._set_busy, on_error=self._show_error)
        self.idle: threading.Event = self.jobs.idle
        for control in self.filters.controls:
            control.observe(self._on_filter, names="value")
        on_click(self.prev_button, lambda: self.show_page(self.page - 1), self._show_error)
        on_click(self.next_button, lambda: self.show_page(self.page + 1), self._show_error)
        for tile in self.tiles:
            on_click(tile.view_button, partial(self._open_tile, tile), self._show_error)
            tile.select_box.observe(lambda c, t=tile: self._on_select(t, c), names="value")
        on_click(self.close_detail_button, self.close_detail, self._show_error)
        on_click(self.side_by_side_button, self.show_side_by_side, self._show_error)
        on_click(self.clear_selection_button, self.clear_selection, self._show_error)
        on_click(self.delete_button, self.ask_delete, self._show_error)
        on_click(self.confirm_yes_button, self.confirm_delete, self._show_error)
        on_click(self.confirm_no_button, self.cancel_delete, self._show_error)
        on_click(self.export_button, self.files.start_export, self._show_error)
        on_click(self.download_button, self.files.start_download, self._show_error)
        for tile in self.tiles:
            on_click(tile.full_button, partial(self._full_tile, tile, on_full), self._show_error)
        self.refresh()

    # -- pages -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Render the current page again, on a background thread (requests coalesce)."""
        if self.store is not None:
            self._renderer.request()

    def _render_safely(self) -> None:
        try:
            self.render_page()
        except Exception as exc:  # the gallery must keep working after a bad page
            log.debug("gallery page failed", exc_info=True)
            self._show("error", f"Could not show the history: {exc}")

    def render_page(self) -> None:
        """Query the page and fill the tiles (runs on the caller's thread)."""
        store = self.store
        if store is None:
            return
        gens, page, total = self.filters.page(store, self.page, self.page_size)
        pages = max(1, math.ceil(total / self.page_size))
        self.page, self.total = page, total
        for index, tile in enumerate(self.tiles):
            if index >= len(gens):
                tile.hide()
                continue
            gen = gens[index]
            try:
                thumb = store.thumbnail(gen.id)
            except (KeyError, MaiImageError):
                thumb = b""  # deleted meanwhile, or its file is gone: keep the caption
            tile.show(gen, thumb, selected=gen.id in self.selected)
        self.page_label.value = f'<span class="mai-muted">Page {page + 1} of {pages}</span>'
        self.prev_button.disabled = page == 0
        self.next_button.disabled = page >= pages - 1

    def show_page(self, page: int) -> None:
        """Go to page `page` (0 is the newest)."""
        self.page = max(0, page)
        self.refresh()

    def _on_filter(self, _change: dict[str, Any]) -> None:
        self.page = 0
        self.refresh()

    def visible(self) -> list[Generation]:
        """The generations on the current page, in order."""
        return [tile.generation for tile in self.tiles if tile.generation is not None]

    # -- one large -------------------------------------------------------------------------

    def _open_tile(self, tile: Tile) -> None:
        if tile.generation is not None:
            self.open_generation(tile.generation.id)

    def open_generation(self, generation_id: str) -> None:
        """Show one generation large, with its parameters and "Use these settings"."""
        store = self.store
        if store is None:
            return
        try:
            gen = store[generation_id]
            preview = store.thumbnail(generation_id, LARGE_PX)
        except KeyError:
            self._show("error", "That image is no longer in the history.")
            self.refresh()
            return
        except MaiImageError as exc:
            self._show("error", str(exc))
            return
        self.opened = gen
        self.side_by_side.hide()  # one view at a time: the newest one
        self.detail_view.show(gen, preview)
        self.delete_button.disabled = self.jobs.busy
        self._show("idle", "")

    def close_detail(self) -> None:
        self.opened = None
        self.detail_view.hide()
        self._update_selection()

    def use_opened(self) -> None:
        """Fill the Generate tab with the opened generation's settings and switch to it."""
        self.detail_view.use()

    def _full_tile(self, tile: Tile, on_full: Callable[[Generation], None]) -> None:
        if tile.generation is not None:
            on_full(tile.generation)

    # -- selection -------------------------------------------------------------------------

    def _on_select(self, tile: Tile, change: dict[str, Any]) -> None:
        gen = tile.generation
        if gen is None:
            return
        if change["new"] and gen.id not in self.selected:
            self.selected[gen.id] = gen
        elif not change["new"] and gen.id in self.selected:
            del self.selected[gen.id]
        tile.mark(bool(change["new"]))
        self._update_selection()

    def select(self, ids: Sequence[str]) -> None:
        """Tick the tiles of `ids` on the current page (what a click on Select does)."""
        for tile in self.tiles:
            if tile.generation is not None and tile.generation.id in ids:
                tile.select_box.value = True

    def clear_selection(self) -> None:
        self.selected.clear()
        for tile in self.tiles:
            tile.select_box.value = False
            tile.mark(False)
        self._update_selection()

    def _update_selection(self, *, busy: bool | None = None) -> None:
        busy = self.jobs.busy if busy is None else busy
        count = len(self.selected)
        self.selection_line.value = (
            f'<span class="mai-muted">{count} selected</span>' if count else ""
        )
        self.side_by_side_button.disabled = count < 2
        self.download_button.disabled = busy or count == 0
        if count == 0:
            self.download_link.clear()
        self.clear_selection_button.disabled = count == 0
        self.delete_button.disabled = busy or (count == 0 and self.opened is None)
        self.export_button.description = f"Export {count} selected" if count else "Export all"

    def show_side_by_side(self) -> None:
        """The selected images next to each other, with their captions."""
        store = self.store
        chosen = list(self.selected.values())[:MAX_SIDE_BY_SIDE]
        if store is None or len(chosen) < 2:
            self._show("warn", "Tick Select under two or more images to see them side by side.")
            return
        items = []
        for gen in chosen:
            try:
                items.append((gen, store.thumbnail(gen.id)))
            except (KeyError, MaiImageError):
                items.append((gen, b""))
        self.close_detail()  # one view at a time: the old large view goes
        self.side_by_side.show(items)
        more = len(self.selected) - len(chosen)
        note = f" (the first {len(chosen)}; {more} more selected)" if more > 0 else ""
        self._show("idle", f"{len(chosen)} side by side{note}.")

    # -- delete (asks first) and export ----------------------------------------------------

    def _targets(self) -> list[str]:
        if self.selected:
            return list(self.selected)
        return [self.opened.id] if self.opened is not None else []

    def ask_delete(self) -> None:
        """Show "Delete N images? Yes / No"; nothing is deleted until Yes."""
        targets = self._targets()
        if not targets:
            self._show("warn", "Select images (or open one) to delete them.")
            return
        self._pending_delete = targets
        noun = "this image" if len(targets) == 1 else f"these {len(targets)} images"
        self.confirm_row.ask(f"Delete {noun} from the history?", "Their files are removed too.")

    def cancel_delete(self) -> None:
        self._pending_delete = []
        self.confirm_row.hide()
        self._show("idle", "Nothing was deleted.")

    def confirm_delete(self) -> bool:
        store, targets = self.store, self._pending_delete
        self._pending_delete = []
        self.confirm_row.hide()
        if store is None or not targets or self.jobs.busy:
            return False

        def delete(_cancel: threading.Event) -> int:
            gone = 0
            for generation_id in targets:
                try:
                    store.delete(generation_id)
                    gone += 1
                except KeyError:
                    pass  # already gone (another panel, another process)
            return gone

        def done(gone: int) -> None:
            for generation_id in targets:
                self.selected.pop(generation_id, None)
            if self.opened is not None and self.opened.id in targets:
                self.close_detail()
            self._update_selection()
            self._show("ok", f"Deleted {gone} image{'s' if gone != 1 else ''}.")
            self.refresh()

        self._show("busy", "Deleting…")
        return self.jobs.start(delete, done)

    # -- state -----------------------------------------------------------------------------

    def _show(self, tone: Tone, text: str) -> None:
        self.status_line.value = status_html(tone, text)

    def _show_error(self, text: str) -> None:
        self._show("error", text)

    def _set_busy(self, busy: bool) -> None:
        self.export_button.disabled = busy
        self.confirm_yes_button.disabled = busy
        self._update_selection(busy=busy)

    def wait_idle(self, timeout_s: float) -> bool:
        """True once no job and no page render is running."""
        return self.jobs.wait_idle(timeout_s) and self.refreshed.wait(timeout_s)

    def close_jobs(self) -> None:
        self._renderer.close()
        self.jobs.close()
