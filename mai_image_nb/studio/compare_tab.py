"""The Compare tab: prompts (one per line) over aspect ratios × temperatures, cell by cell.

`Client.compare` does the work (progress=False, our own IntProgress); its `on_cell` callback
fills each cell from a worker thread. The estimate says what the grid costs and what is left
of the budget, and Run is disabled, with the reason, when the grid would pass the budget.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import partial

import ipywidgets as w

from mai_image_nb import display, previews
from mai_image_nb.client import Client
from mai_image_nb.comparison import Cell, Comparison
from mai_image_nb.errors import (
    BudgetExceededError,
    CancelledError,
    MaiImageError,
    ValidationError,
)
from mai_image_nb.generation import Generation
from mai_image_nb.params import Params

from .compare_form import MAX_CELLS, MAX_REPEATS, CompareInputs, estimate_grid
from .frontend import mark_submit
from .gallery import LargeView
from .grid import CellGroup, CellView, CompareForm, Slot, layout_grid
from .grid_files import GridFiles
from .jobs import JobRunner
from .messages import money, say
from .widgets import (
    Html,
    Tone,
    close_tree,
    file_name_for,
    on_click,
    one_line,
    status_html,
)

__all__ = ["MAX_CELLS", "MAX_REPEATS", "CompareTab"]

THUMB_PX = 256  # the history's stored thumbnail size: cells and gallery share one file
LARGE_PX = 512
RUN_TOOLTIP = "Run the grid (Ctrl+Enter)"


class CompareTab(w.HBox):  # type: ignore[misc]
    """The form and its estimate on the left; Run, the grid and an opened cell on the right."""

    def __init__(
        self,
        client: Client,
        *,
        on_settled: Callable[[], None],
        on_use: Callable[[Params], None],
        on_full: Callable[[Generation], None],
    ) -> None:
        self.client = client
        self._on_settled = on_settled
        self.comparison: Comparison | None = None
        self.cell_views: list[CellView] = []
        self.groups: list[CellGroup] = []
        self._views: dict[Slot, CellView] = {}
        self._done = 0
        self._count_lock = threading.Lock()
        self.over_budget = False

        self.inputs = CompareInputs(lambda: self.client.model)
        self.prompt_box = self.inputs.prompt_box
        self.ratio_toggles = self.inputs.ratio_toggles
        self.temperatures_box = self.inputs.temperatures_box
        self.repeats_box = self.inputs.repeats_box
        self.estimate_line = Html()
        self.run_button = w.Button(
            description="Run", button_style="primary", tooltip=RUN_TOOLTIP,
            layout=_auto(),
        )  # fmt: skip
        self.cancel_button = w.Button(description="Cancel", disabled=True, layout=_auto())
        self.retry_button = w.Button(description="Retry failed", disabled=True, layout=_auto())
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="160px"))
        self.status_line = Html(status_html("idle", "Ready."))
        self.grid_title = Html()
        self.grid = w.GridBox([], layout=w.Layout(grid_gap="8px", width="100%"))
        self.large = LargeView(on_use=on_use, on_full=on_full)
        self.lightbox_slot = w.Box([], layout=w.Layout(width="100%"))  # the Studio's lightbox
        self.files = GridFiles(lambda: self.jobs, lambda: self.comparison, self._show)
        self.grid_name_box = self.files.name_box
        self.save_grid_button = self.files.save_button
        self.download_grid_button = self.files.download_button
        self.grid_link = self.files.link

        wrap = w.Layout(grid_gap="6px", align_items="center", flex_flow="row wrap")
        form_column = w.VBox(
            [
                self.inputs,
                self.estimate_line,
                w.HBox([self.run_button, self.cancel_button, self.retry_button], layout=wrap),
                w.HBox([self.progress], layout=wrap),
                self.status_line,
            ],
            layout=w.Layout(flex="1 1 250px", max_width="360px", min_width="0", grid_gap="4px"),
        )
        result_column = w.VBox(
            [
                self.large,
                self.lightbox_slot,  # under the opened cell and its Full size button
                self.grid_title,
                self.grid,
                self.files,
            ],
            layout=w.Layout(flex="999 1 240px", min_width="0", grid_gap="6px"),
        )
        super().__init__(
            [form_column, result_column],
            layout=w.Layout(padding="8px", grid_gap="16px", flex_flow="row wrap"),
        )

        mark_submit(self, self.prompt_box, self.run_button)  # Ctrl+Enter presses Run
        self.jobs = JobRunner(name="compare", on_busy=self._set_busy, on_error=self._on_error)
        self.idle: threading.Event = self.jobs.idle
        self.inputs.observe_all(lambda _change: self.refresh_estimate())
        on_click(self.run_button, self.start_run, self._show_error)
        on_click(self.cancel_button, self.cancel, self._show_error)
        on_click(self.retry_button, self.start_retry, self._show_error)
        on_click(self.save_grid_button, self.files.start_save, self._show_error)
        on_click(self.download_grid_button, self.files.start_download, self._show_error)
        self.refresh_estimate()

    # -- form and estimate -----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def read_form(self, *, need_prompt: bool = True) -> CompareForm:
        """The settings, validated; each field's message shown under it.

        Raises:
            ValidationError: naming the first field that is wrong.
        """
        return self.inputs.read(need_prompt=need_prompt)

    def estimate(self) -> tuple[int, int, float]:
        """(new cells, cached cells, estimated USD of the new ones) for the current form.

        Raises:
            ValidationError: the form is not valid yet.
        """
        return estimate_grid(self.client, self.read_form(need_prompt=False))

    def refresh_estimate(self) -> None:
        """Recompute "9 cells · costs $0.56 · $0.31 left" and whether Run is allowed.

        Not while a grid runs: its own cells would be counted as cached half-way through.
        """
        if self.jobs.busy:
            return
        try:
            new, cached, usd = self.estimate()
        except ValidationError:  # an invalid form: the message is under its field
            self.estimate_line.value = ""
            self.over_budget = False
            return
        except MaiImageError as exc:  # e.g. a history closed under us
            self.estimate_line.value = status_html("error", say(exc))
            return
        cells = new + cached
        text = f"{cells} cell{'s' if cells != 1 else ''}"
        if cached:
            text += f" ({cached} from the history, free)"
        text += f" · costs {money(usd)}"
        budget = self.client.budget_usd
        if budget is not None:
            text += f" · {money(max(0.0, budget - self.client.spent_usd))} left"
        try:
            self.client.check_budget(new)
        except BudgetExceededError:
            self.over_budget = True
            self.estimate_line.value = status_html(
                "warn", f"{text}. Over the budget: raise it in the header or pick fewer cells."
            )
        else:
            self.over_budget = False
            self.estimate_line.value = status_html("idle", text)
        self.run_button.disabled = self.over_budget or self.jobs.busy
        self.run_button.tooltip = (
            "The grid would pass the budget" if self.over_budget else RUN_TOOLTIP
        )

    # -- run, retry, cancel ----------------------------------------------------------------

    def start_run(self) -> bool:
        """Validate and start the grid; False (and a message) when refused; nothing drawn then."""
        if self.jobs.busy:
            return False
        try:
            form = self.read_form()
            new, _cached, _usd = self.estimate()
            self.client.check_budget(new)
        except ValidationError:
            self._show("idle", "")  # the message is under its field, once
            return False
        except MaiImageError as exc:
            self._show("error", say(exc))
            self.refresh_estimate()
            return False
        self.comparison = None
        self.large.hide()
        self.grid_link.clear()
        self._build_grid(form)
        self._start_progress(done=0)
        return self.jobs.start(partial(self._run, form), self._finished, on_tick=self._tick)

    def _run(self, form: CompareForm, cancel: threading.Event) -> Comparison | None:
        try:
            return self.client.compare(
                form.prompt_arg,
                aspect_ratios=form.aspect_ratios,
                temperatures=form.temperatures,
                repeats=form.repeats,
                progress=False,
                cancel=cancel,
                on_cell=self._fill,
            )
        except BudgetExceededError as exc:  # spent elsewhere since the check: draw nothing
            self._clear_grid()
            self._show("error", say(exc))
            return None

    def start_retry(self) -> bool:
        """Re-run the failed and cancelled cells; the finished ones stay."""
        comparison = self.comparison
        if comparison is None or not comparison.failed or self.jobs.busy:
            return False
        for cell in comparison.failed:
            self._views[_slot(cell)].wait()
        self._start_progress(done=len(comparison.cells) - len(comparison.failed))
        return self.jobs.start(
            lambda cancel: comparison.retry_failed(
                progress=False, cancel=cancel, on_cell=self._fill
            ),
            self._finished,
            on_tick=self._tick,
        )

    def cancel(self) -> None:
        """Stop sending: cells not yet sent end as cancelled; those on the wire finish."""
        if self.jobs.busy:
            self.jobs.request_cancel()
            self.cancel_button.disabled = True
            self._show("busy", "Cancelling: requests already sent will finish…")

    def _start_progress(self, *, done: int) -> None:
        with self._count_lock:
            self._done = done
        self.progress.max = max(1, len(self.cell_views))
        self.progress.value = done
        self.progress.bar_style = ""
        self._show("busy", f"Running: {done} of {len(self.cell_views)} cells")

    def _tick(self, elapsed_s: float) -> None:
        if not self.jobs.cancel.is_set():
            total = len(self.cell_views)
            self._show("busy", f"Running: {self._done} of {total} cells · {elapsed_s:.1f} s")

    def _build_grid(self, form: CompareForm) -> None:
        old = list(self.grid.children)
        grid = layout_grid(form, on_open=self.open_cell)
        self.cell_views, self.groups = grid.cells, grid.groups
        self._views = {view.key: view for view in self.cell_views}
        self.grid.layout.grid_template_columns = grid.columns
        self.grid.children = tuple(grid.items)
        shown = form.prompts[0] if len(form.prompts) == 1 else f"{len(form.prompts)} prompts"
        self.grid_title.value = (
            f'<div class="mai-details"><b>{display.escape(display.short_prompt(shown))}</b></div>'
        )
        self.grid_name_box.value = file_name_for(
            form.prompts[0], fallback="grid", suffix="-grid.png"
        )
        for widget in old:
            close_tree(widget)

    def _clear_grid(self) -> None:
        old = list(self.grid.children)
        self.grid.children = ()
        self.cell_views, self._views, self.groups = [], {}, []
        self.grid_title.value = ""
        self.progress.value = 0
        for widget in old:
            close_tree(widget)

    def _fill(self, cell: Cell) -> None:
        """`on_cell`: runs on the worker thread that finished `cell`."""
        view = self._views.get(_slot(cell))
        if view is not None:
            if cell.generation is not None:
                view.show_image(cell.generation, self._preview(cell.generation, THUMB_PX))
            elif cell.error is not None:
                view.show_error(cell.error)
            for group in self.groups:
                if view in group.views:
                    group.update_variation()
        with self._count_lock:
            self._done += 1
            done = self._done
        self.progress.value = min(done, self.progress.max)

    def _preview(self, gen: Generation, px: int) -> bytes:
        history = self.client.history
        if history is not None:
            try:
                return history.thumbnail(gen.id, px)
            except (KeyError, MaiImageError):
                pass  # not stored (the history could not be written): make one from the image
        return previews.preview_bytes(gen.image, px)

    def open_cell(self, view: CellView) -> None:
        """Show a finished cell large, above the grid."""
        if view.generation is not None:
            self.large.show(view.generation, self._preview(view.generation, LARGE_PX))

    def _finished(self, comparison: Comparison | None) -> None:
        if comparison is None:
            return
        self.comparison = comparison
        total = len(comparison.cells)
        failed = comparison.failed
        cancelled = sum(isinstance(c.error, CancelledError) for c in failed)
        ok = total - len(failed)
        from_history = sum(1 for c in comparison.cells if c.generation and c.generation.cached)
        self.progress.value = self.progress.max
        if cancelled:
            self.progress.bar_style = "warning"
            self._show("warn", f"Cancelled: {ok} of {total} done. Retry failed runs the rest.")
        elif failed:
            self.progress.bar_style = "danger"
            first = one_line(str(failed[0].error), 160)
            self._show("warn", f"{ok} of {total} done, {len(failed)} failed ({first})")
        else:
            self.progress.bar_style = "success"
            self._show(
                "ok",
                f"Done: {total} images · {money(comparison.paid_usd)} paid · "
                f"{from_history} from the history",
            )

    def _show_error(self, text: str) -> None:
        self._show("error", text)

    def _on_error(self, text: str) -> None:
        self._show("error", text)
        for view in self.cell_views:
            if view.state == "waiting":
                view.show_error(MaiImageError("not run"))

    # -- state -----------------------------------------------------------------------------

    def _show(self, tone: Tone, text: str) -> None:
        self.status_line.value = status_html(tone, text)

    def _set_busy(self, busy: bool) -> None:
        self.run_button.disabled = busy or self.over_budget
        self.cancel_button.disabled = not busy
        failed = self.comparison is not None and bool(self.comparison.failed)
        self.retry_button.disabled = busy or not failed
        self.files.enable(not busy and self.comparison is not None)
        if not busy:
            self.refresh_estimate()
            self._on_settled()

    def cell(
        self, aspect_ratio: str, temperature: float, repeat: int = 0, *, prompt: str | None = None
    ) -> CellView:
        """The view of one cell (for tests and notebooks); `prompt` defaults to the first."""
        if prompt is None:
            prompt = self.cell_views[0].key[0]
        return self._views[(prompt, aspect_ratio, temperature, repeat)]

    def views_in(self, states: Sequence[str]) -> list[CellView]:
        return [view for view in self.cell_views if view.state in states]

    def close_jobs(self) -> None:
        self.jobs.close()


def _slot(cell: Cell) -> Slot:
    return (cell.prompt, cell.aspect_ratio, cell.temperature, cell.repeat)


def _auto() -> w.Layout:
    return w.Layout(width="auto")
