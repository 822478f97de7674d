"""`Studio`: the panel (header, then the Generate, Compare and History tabs) over one Client.

It subscribes to the client so every new image, from this panel or any other, updates the
header and the gallery live. `close()` unsubscribes, stops the workers and closes the widgets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import ipywidgets as w

from mai_image_nb import display
from mai_image_nb.client import Client
from mai_image_nb.errors import MaiImageError
from mai_image_nb.generation import Generation
from mai_image_nb.params import Params

from .compare_tab import CompareTab
from .fallback import FALLBACK_TEXT, WIDGET_VIEW, fallback_html, studio_class
from .frontend import KeyListener
from .gallery import Lightbox
from .generate_tab import GenerateTab
from .history_tab import DEFAULT_PAGE_SIZE, HistoryTab
from .widgets import STYLESHEET, Html, muted, status_html, walk

__all__ = ["Header", "Studio"]

log = logging.getLogger(__name__)

TAB_TITLES = ("Generate", "Compare", "History")


class Header(w.HBox):  # type: ignore[misc]
    """Mode badge ("offline simulator" or the API host), spend, and the budget (editable).

    `refresh()` redraws the whole line; `extras` are callables returning escaped HTML pieces
    shown after the spend (e.g. what a class budget has left), so others can add to the line.
    """

    def __init__(self, client: Client, *, on_budget: Callable[[], None] = lambda: None) -> None:
        self.client = client
        self._on_budget = on_budget
        self.extras: list[Callable[[], str]] = [self._class_budget]
        self.line = Html()
        self.line.layout.flex = "1 1 0"
        self.line.layout.min_width = "0"
        self.budget_box = w.Text(
            value=_budget_text(client.budget_usd),
            placeholder="none",
            continuous_update=False,
            tooltip="Dollars this client may spend; empty for no budget",
            layout=w.Layout(width="80px"),
        )
        self.budget_note = Html()
        label = muted("budget $")
        super().__init__(
            [self.line, label, self.budget_box, self.budget_note],
            layout=w.Layout(align_items="center", grid_gap="6px", flex_flow="row wrap"),
        )
        self.add_class("mai-header")
        self.budget_box.observe(lambda _c: self.set_budget(self.budget_box.value), names="value")
        self.refresh()

    def set_budget(self, text: str) -> bool:
        """Set `client.budget_usd` from what was typed ("1.50", "1,50", "" for none)."""
        stripped = text.strip().replace(",", ".").lstrip("$").strip()
        try:
            value = None if not stripped else float(stripped)
            self.client.budget_usd = value
        except (ValueError, MaiImageError):
            self.budget_note.value = status_html(
                "error", "A dollar amount of 0 or more (e.g. 1.50), or empty for none."
            )
            return False
        self.budget_note.value = ""
        self.refresh()
        self._on_budget()
        return True

    @property
    def value(self) -> str:
        """The header line's HTML (badge, spend, budget)."""
        return str(self.line.value)

    def _class_budget(self) -> str:
        """What the student's class budget has left, when the client talks to a gateway."""
        from mai_image_nb.classroom.student import class_budget_text

        line = class_budget_text(self.client)
        return "" if line is None else f'<span class="mai-spend"> · {display.escape(line)}</span>'

    def refresh(self) -> None:
        client = self.client
        if client.mode == "offline":
            badge = '<span class="mai-badge">offline simulator</span>'
        else:
            badge = f'<span class="mai-badge mai-api">{display.escape(_host(client))}</span>'
        spent, budget = client.spent_usd, client.budget_usd
        if budget is None:
            money, tone = f"spent ${spent:.4f} · no budget set", ""
        else:
            left = max(0.0, budget - spent)
            money = f"spent ${spent:.4f} · ${left:.4f} left"
            tone = " mai-warn" if left < client.estimate(1) else ""
        extra = "".join(piece() for piece in self.extras)
        self.line.value = (
            '<div class="mai-header-line"><span class="mai-title">MAI-Image Studio</span>'
            f'{badge}<span class="mai-spend{tone}">{display.escape(money)}</span>{extra}</div>'
        )


def _budget_text(budget: float | None) -> str:
    return "" if budget is None else f"{budget:.2f}"


class Studio(w.VBox):  # type: ignore[misc]
    """The MAI-Image panel: display it, or leave it as a cell's last expression.

    `Studio(client=None)` makes its own `Client()` (the simulator when no key is set) and closes
    it in `close()`; a client you pass stays yours.
    """

    def __init__(self, client: Client | None = None, *, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        self._owns_client = client is None
        self._closed = True  # until fully built: close() then only closes the widget itself
        self._unsubscribe: Callable[[], None] = _nothing
        self.client = client if client is not None else Client()
        self.header = Header(self.client, on_budget=self._budget_changed)
        self._redraw_after_generate = False
        self._redraw_after_compare = False
        self._redraw_lock = threading.Lock()
        self.lightbox = Lightbox()
        self.generate = GenerateTab(
            self.client, on_settled=self._generate_settled, on_full=self.show_full
        )
        self.compare = CompareTab(
            self.client,
            on_settled=self._compare_settled,
            on_use=self.use_settings,
            on_full=self.show_full,
        )
        self.history = HistoryTab(
            self.client, on_use=self.use_settings, on_full=self.show_full, page_size=page_size
        )
        self.tabs = w.Tab(children=[self.generate, self.compare, self.history], titles=TAB_TITLES)
        self.style_sheet = w.HTML(STYLESHEET, layout=w.Layout(display="none"))
        self.key_listener = KeyListener()  # Ctrl+Enter presses Generate / Run
        self.generate.lightbox_slot.children = (self.lightbox,)  # hidden until shown
        super().__init__([self.style_sheet, self.key_listener, self.header, self.tabs])
        self.add_class("mai-studio")
        self.add_class(studio_class(self.model_id))  # its note hides itself when this is drawn
        self._closed = False
        self._unsubscribe = self.client.on_generation(self._on_generation)

    def _on_generation(self, _gen: Generation) -> None:
        """A new image was stored (by any panel or call on this client): runs on its thread."""
        if self._closed:
            return
        self.header.refresh()
        if self.generate.jobs.in_worker():
            # Our own Generate: draw the gallery once the preview is shown, not competing with it.
            self._redraw_after_generate = True
            return
        with self._redraw_lock:
            if self.compare.busy:  # a grid is filling: one redraw when it ends, not one a cell
                self._redraw_after_compare = True
                return
        self.compare.refresh_estimate()
        self.history.refresh()

    def _compare_settled(self) -> None:
        """The Compare job ended: the header, and the gallery if images arrived meanwhile."""
        self.header.refresh()
        with self._redraw_lock:
            redraw, self._redraw_after_compare = self._redraw_after_compare, False
        if redraw and not self._closed:
            self.history.refresh()

    def _generate_settled(self) -> None:
        """The Generate job ended (on its worker thread, after the listener above)."""
        self.header.refresh()
        if self._redraw_after_generate and not self._closed:
            self._redraw_after_generate = False
            self.compare.refresh_estimate()
            self.history.refresh()

    def _repr_mimebundle_(self, **kwargs: object) -> dict[str, object]:
        """The widget view, and a line of text for front ends that cannot draw it."""
        bundle: dict[str, object] = dict(super()._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = FALLBACK_TEXT
        return bundle

    def _ipython_display_(self, **kwargs: object) -> None:
        """Two outputs: the widget view, then a note for when no kernel draws it (fallback.py).

        The widget output's text is empty, so a static view (nbconvert HTML, GitHub) shows the
        note once; in a live page the note hides itself, and in a reopened notebook it hides
        the widget output (Lab's "model not found", or a dead copy): see `fallback.py`.
        """
        from IPython.display import display

        view = self._repr_mimebundle_(**kwargs)
        if WIDGET_VIEW not in view:  # closed: no view to draw
            display(view, raw=True)  # type: ignore[no-untyped-call]
            return
        # an empty text, not none: nbconvert warns about an output it cannot show at all
        widget = {WIDGET_VIEW: view[WIDGET_VIEW], "text/plain": ""}
        display(widget, raw=True)  # type: ignore[no-untyped-call]
        note = {"text/plain": FALLBACK_TEXT, "text/html": fallback_html(self.model_id)}
        display(note, raw=True)  # type: ignore[no-untyped-call]

    def _budget_changed(self) -> None:
        self.generate.refresh_cost()
        self.compare.refresh_estimate()

    def show_full(self, gen: Generation) -> None:
        """The lightbox: `gen` at full resolution, at the top of the open tab's results.

        In the flow of the tab, not `position: fixed`: Lab, Notebook 7 and Voila hold outputs
        in containers (`contain`, scrolling panels) that would carry a fixed box off-screen.
        """
        tabs = (self.generate, self.compare, self.history)
        here = tabs[self.tabs.selected_index or 0]
        for tab in tabs:
            if tab is not here and tab.lightbox_slot.children:
                tab.lightbox_slot.children = ()
        here.lightbox_slot.children = (self.lightbox,)
        self.lightbox.show(gen)

    def use_settings(self, params: Params) -> None:
        """Fill the Generate tab with `params` and switch to it."""
        self.generate.apply(params)
        self.tabs.selected_index = 0

    @property
    def busy(self) -> bool:
        """True while any tab runs a job."""
        return self.generate.busy or self.compare.busy or self.history.jobs.busy

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Wait until no tab runs a job and the gallery is drawn; False on timeout."""
        deadline = time.monotonic() + timeout_s
        checks = (
            self.generate.idle.wait,
            self.compare.idle.wait,
            self.history.idle.wait,
            self.history.refreshed.wait,
        )
        return all(check(max(0.0, deadline - time.monotonic())) for check in checks)

    def close(self) -> None:
        """Unsubscribe, stop the workers, close every widget (and the client if we made it)."""
        if getattr(self, "_closed", True):
            super().close()
            return
        self._closed = True
        self._unsubscribe()
        for tab in (self.generate, self.compare, self.history):
            try:
                tab.close_jobs()
            except Exception:
                log.debug("stopping a tab's worker failed", exc_info=True)
        for widget in list(walk(self)):
            if widget is not self:
                widget.close()
        super().close()
        if self._owns_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"<mai_image_nb.Studio over {self.client!r}>"


def _nothing() -> None:
    return None


def _host(client: Client) -> str:
    """The API host (and port) only: never user info that a URL might carry."""
    parts = urlsplit(client.base_url)
    host = parts.hostname or client.service
    return f"{host}:{parts.port}" if parts.port else host
