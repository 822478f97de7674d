"""The Compare tab: one prompt over aspect ratios × temperatures, filled in cell by cell.

`Client.compare` does the work (progress=False, our own IntProgress); its `on_cell` callback
fills each cell from a worker thread. Cancel stops what is not yet sent; Retry re-runs failures.
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
from mai_image_nb.params import ASPECT_RATIOS, validate_params

from .grid import CellView, CompareForm, parse_temperatures, temperature_label
from .jobs import JobRunner
from .widgets import (
    Tone,
    close_tree,
    error_text,
    field,
    file_name_for,
    muted,
    on_click,
    one_line,
    ratio_label,
    ratio_options,
    reject_blank_prompt,
    run_file_write,
    status_html,
)

__all__ = ["CompareTab"]

MAX_CELLS = 48  # a grid larger than this is hard to see and easy to pay too much for
MAX_REPEATS = 4
THUMB_PX = 256  # the history's stored thumbnail size: cells and gallery share one file


class CompareTab(w.VBox):  # type: ignore[misc]
    """Prompt, ratios, temperatures and repeats; a live estimate; Run, Cancel, the grid."""

    def __init__(self, client: Client, *, on_settled: Callable[[], None]) -> None:
        self.client = client
        self._on_settled = on_settled
        self.comparison: Comparison | None = None
        self.cell_views: list[CellView] = []
        self._views: dict[tuple[str, float, int], CellView] = {}
        self._done = 0
        self._count_lock = threading.Lock()

        self.prompt_box = w.Textarea(
            placeholder="One prompt, many settings: a red fox in fresh snow",
            rows=3,
            layout=w.Layout(width="100%"),
        )
        self.ratio_select = w.SelectMultiple(
            options=ratio_options(),
            value=("1:1", "16:9", "9:16"),
            rows=7,
            layout=w.Layout(width="120px"),
        )
        self.temperatures_box = w.Text(value="0.2, 1.0, 1.8", layout=w.Layout(width="200px"))
        self.repeats_box = w.BoundedIntText(
            value=1, min=1, max=MAX_REPEATS, layout=w.Layout(width="80px")
        )
        self.estimate_line = w.HTML()
        self.run_button = w.Button(description="Run", button_style="primary")
        self.cancel_button = w.Button(description="Cancel", disabled=True)
        self.retry_button = w.Button(description="Retry failed", disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="220px"))
        self.status_line = w.HTML(status_html("idle", "Ready."))
        self.grid_title = w.HTML()
        self.grid = w.GridBox([], layout=w.Layout(grid_gap="8px", width="100%"))
        self.grid_name_box = w.Text(placeholder="grid.png", layout=w.Layout(width="260px"))
        self.save_grid_button = w.Button(description="Save grid", icon="download", disabled=True)

        form = w.HBox(
            [
                field("Aspect ratios (Ctrl/⌘-click for several)", self.ratio_select),
                w.VBox(
                    [
                        field("Temperatures", self.temperatures_box),
                        field("Repeats of each cell", self.repeats_box),
                        self.estimate_line,
                    ],
                    layout=w.Layout(grid_gap="6px"),
                ),
            ],
            layout=w.Layout(grid_gap="24px", flex_flow="row wrap"),
        )
        actions = w.HBox(
            [self.run_button, self.cancel_button, self.progress, self.retry_button],
            layout=w.Layout(grid_gap="8px", align_items="center", flex_flow="row wrap"),
        )
        save_row = w.HBox(
            [self.grid_name_box, self.save_grid_button], layout=w.Layout(grid_gap="8px")
        )
        super().__init__(
            [
                field("Prompt", self.prompt_box),
                form,
                actions,
                self.status_line,
                self.grid_title,
                self.grid,
                save_row,
            ],
            layout=w.Layout(padding="8px", grid_gap="8px"),
        )

        self.jobs = JobRunner(name="compare", on_busy=self._set_busy, on_error=self._on_error)
        self.idle: threading.Event = self.jobs.idle
        for control in (
            self.prompt_box,
            self.ratio_select,
            self.temperatures_box,
            self.repeats_box,
        ):
            control.observe(lambda _change: self.refresh_estimate(), names="value")
        on_click(self.run_button, self.start_run, self._show_error)
        on_click(self.cancel_button, self.cancel, self._show_error)
        on_click(self.retry_button, self.start_retry, self._show_error)
        on_click(self.save_grid_button, self.start_save, self._show_error)
        self.refresh_estimate()

    # -- form and estimate -----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def read_form(self, *, need_prompt: bool = True) -> CompareForm:
        """The settings, validated (the prompt only when `need_prompt`).

        Raises:
            ValidationError: naming the field that is wrong.
        """
        prompt = self.prompt_box.value
        if need_prompt:
            reject_blank_prompt(prompt)
            validate_params(prompt, model=self.client.model)
        chosen = set(self.ratio_select.value)
        ratios = tuple(r for r in ASPECT_RATIOS if r in chosen)
        if not ratios:
            raise ValidationError("aspect_ratios", (), "at least one aspect ratio")
        temps = parse_temperatures(self.temperatures_box.value)
        repeats = int(self.repeats_box.value)
        form = CompareForm(prompt, ratios, temps, repeats)
        if len(form.slots) > MAX_CELLS:
            raise ValidationError(
                "grid", f"{len(form.slots)} cells", f"at most {MAX_CELLS} cells; choose fewer"
            )
        return form

    def estimate(self) -> tuple[int, int, float]:
        """(new cells, cached cells, estimated USD of the new ones) for the current form.

        Raises:
            ValidationError: the form is not valid yet.
        """
        form = self.read_form(need_prompt=False)
        cached = 0
        if form.prompt.strip():
            try:
                for ratio, temp, repeat in form.slots:
                    params = validate_params(
                        form.prompt,
                        aspect_ratio=ratio,
                        temperature=temp,
                        sample=repeat,
                        model=self.client.model,
                    )
                    cached += self.client.cached(params) is not None
            except ValidationError:
                cached = 0
        new = len(form.slots) - cached
        return new, cached, self.client.estimate(new)

    def refresh_estimate(self) -> None:
        """Recompute the "9 new ≈ $0.56, 3 cached" line (cheap: indexed cache look-ups)."""
        try:
            new, cached, usd = self.estimate()
        except MaiImageError as exc:  # an invalid form, or e.g. a history closed under us
            self.estimate_line.value = status_html("error", error_text(exc))
            return
        text = f"{new} new ≈ ${usd:.2f}, {cached} cached"
        budget = self.client.budget_usd
        try:
            self.client.check_budget(new)
        except BudgetExceededError:
            left = max(0.0, (budget or 0.0) - self.client.spent_usd)
            self.estimate_line.value = status_html(
                "warn", f"{text} — would pass the budget (${left:.2f} left of ${budget:.2f})"
            )
        else:
            self.estimate_line.value = status_html("idle", text)

    # -- run, retry, cancel ----------------------------------------------------------------

    def start_run(self) -> bool:
        """Validate and start the grid; False (and an error line) when refused."""
        if self.jobs.busy:
            return False
        try:
            form = self.read_form()
        except ValidationError as exc:
            self._show("error", error_text(exc))
            return False
        self.comparison = None
        self._build_grid(form)
        self._start_progress(done=0)
        return self.jobs.start(
            lambda cancel: self.client.compare(
                form.prompt,
                aspect_ratios=form.aspect_ratios,
                temperatures=form.temperatures,
                repeats=form.repeats,
                progress=False,
                cancel=cancel,
                on_cell=self._fill,
            ),
            self._finished,
            on_tick=self._tick,
        )

    def start_retry(self) -> bool:
        """Re-run the failed and cancelled cells; the finished ones stay."""
        comparison = self.comparison
        if comparison is None or not comparison.failed or self.jobs.busy:
            return False
        for cell in comparison.failed:
            self._views[(cell.aspect_ratio, cell.temperature, cell.repeat)].wait()
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
        columns = [(t, k) for t in form.temperatures for k in range(form.repeats)]
        self.cell_views = [CellView(r, t, k, repeats=form.repeats) for r, t, k in form.slots]
        self._views = {view.key: view for view in self.cell_views}
        heads: list[w.Widget] = [muted("")]
        heads += [
            muted(f"t {temperature_label(t)}" + (f" #{k + 1}" if form.repeats > 1 else ""))
            for t, k in columns
        ]
        rows: list[w.Widget] = []
        for index, ratio in enumerate(form.aspect_ratios):
            rows.append(muted(ratio_label(ratio)))
            start = index * len(columns)
            rows.extend(self.cell_views[start : start + len(columns)])
        self.grid.layout.grid_template_columns = (
            f"max-content repeat({len(columns)}, minmax(110px, 1fr))"
        )
        self.grid.children = tuple(heads + rows)
        self.grid_title.value = (
            f'<div class="mai-details"><b>{display.escape(display.short_prompt(form.prompt))}'
            f"</b></div>"
        )
        self.grid_name_box.value = file_name_for(form.prompt, fallback="grid", suffix="-grid.png")
        for widget in old:
            close_tree(widget)

    def _fill(self, cell: Cell) -> None:
        """`on_cell`: runs on the worker thread that finished `cell`."""
        view = self._views.get((cell.aspect_ratio, cell.temperature, cell.repeat))
        if view is not None:
            if cell.generation is not None:
                view.show_image(cell.generation, self._preview(cell.generation))
            elif cell.error is not None:
                view.show_error(cell.error)
        with self._count_lock:
            self._done += 1
            done = self._done
        self.progress.value = min(done, self.progress.max)

    def _preview(self, gen: Generation) -> bytes:
        history = self.client.history
        if history is not None:
            try:
                return history.thumbnail(gen.id, THUMB_PX)
            except (KeyError, MaiImageError):
                pass  # not stored (the history could not be written): make one from the image
        return previews.preview_bytes(gen.image, THUMB_PX)

    def _finished(self, comparison: Comparison) -> None:
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
                f"Done: {total} images · ${comparison.paid_usd:.4f} paid · "
                f"{from_history} from the history",
            )

    def _show_error(self, text: str) -> None:
        self._show("error", text)

    def _on_error(self, text: str) -> None:
        self._show("error", text)
        for view in self.cell_views:
            if view.state == "waiting":
                view.show_error(MaiImageError("not run"))

    # -- save ------------------------------------------------------------------------------

    def start_save(self) -> bool:
        """Save the contact sheet as a PNG carrying the grid's parameters."""
        comparison = self.comparison
        if comparison is None or self.jobs.busy:
            return False
        name = self.grid_name_box.value.strip()
        if not name:
            self._show("error", "file name: type a file name, e.g. grid.png")
            return False
        self._show("busy", "Saving the grid…")
        return self.jobs.start(
            lambda _cancel: run_file_write(
                partial(comparison.save, name), f"could not save {name}"
            ),
            lambda path: self._show("ok", f"Saved to {path}"),
        )

    # -- state -----------------------------------------------------------------------------

    def _show(self, tone: Tone, text: str) -> None:
        self.status_line.value = status_html(tone, text)

    def _set_busy(self, busy: bool) -> None:
        self.run_button.disabled = busy
        self.cancel_button.disabled = not busy
        failed = self.comparison is not None and bool(self.comparison.failed)
        self.retry_button.disabled = busy or not failed
        self.save_grid_button.disabled = busy or self.comparison is None
        if not busy:
            self.refresh_estimate()
            self._on_settled()

    def cell(self, aspect_ratio: str, temperature: float, repeat: int = 0) -> CellView:
        """The view of one cell (for tests and notebooks)."""
        return self._views[(aspect_ratio, temperature, repeat)]

    def views_in(self, states: Sequence[str]) -> list[CellView]:
        return [view for view in self.cell_views if view.state in states]

    def close_jobs(self) -> None:
        self.jobs.close()
