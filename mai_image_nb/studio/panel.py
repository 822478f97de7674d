"""`Studio`: the panel (header, then the Generate, Compare and History tabs) over one Client.

It subscribes to the client so every new image, from this panel or any other, updates the
header and the gallery live. `close()` unsubscribes, stops the workers and closes the widgets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import ipywidgets as w

from mai_image_nb import display
from mai_image_nb.client import Client
from mai_image_nb.generation import Generation
from mai_image_nb.params import Params

from .compare_tab import CompareTab
from .generate_tab import GenerateTab
from .history_tab import DEFAULT_PAGE_SIZE, HistoryTab
from .widgets import STYLESHEET, walk

__all__ = ["Header", "Studio"]

log = logging.getLogger(__name__)

TAB_TITLES = ("Generate", "Compare", "History")


class Header(w.HTML):  # type: ignore[misc]
    """Mode badge ("offline simulator" or the API host), spend and budget."""

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client
        self.add_class("mai-header-line")
        self.refresh()

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
            money = f"spent ${spent:.4f} of ${budget:.2f} budget · ${left:.4f} left"
            tone = " mai-warn" if left < client.estimate(1) else ""
        from mai_image_nb.classroom.student import class_budget_text  # a gateway's, if any

        if (class_line := class_budget_text(client)) is not None:
            money += f" · {class_line}"
        self.value = (
            '<div class="mai-header"><span class="mai-title">MAI-Image Studio</span>'
            f'{badge}<span class="mai-spend{tone}">{display.escape(money)}</span></div>'
        )


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
        self.header = Header(self.client)
        self._redraw_after_generate = False
        self.generate = GenerateTab(self.client, on_settled=self._generate_settled)
        self.compare = CompareTab(self.client, on_settled=self.header.refresh)
        self.history = HistoryTab(self.client, on_use=self.use_settings, page_size=page_size)
        self.tabs = w.Tab(children=[self.generate, self.compare, self.history], titles=TAB_TITLES)
        self.style_sheet = w.HTML(STYLESHEET, layout=w.Layout(display="none"))
        super().__init__([self.style_sheet, self.header, self.tabs])
        self.add_class("mai-studio")
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
        self.compare.refresh_estimate()
        self.history.refresh()

    def _generate_settled(self) -> None:
        """The Generate job ended (on its worker thread, after the listener above)."""
        self.header.refresh()
        if self._redraw_after_generate and not self._closed:
            self._redraw_after_generate = False
            self.compare.refresh_estimate()
            self.history.refresh()

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
