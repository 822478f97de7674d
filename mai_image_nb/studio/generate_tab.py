"""The Generate tab: one prompt and its settings in, one image (or a small batch) out.

Clicks validate on the kernel's thread and hand the call to a `JobRunner`; the worker only
assigns widget values. The full PNG stays in the history; the widget holds a JPEG preview;
Download offers the full PNG (parameters embedded) to the browser.

Ctrl+Enter in the prompt presses Generate: an ordinary click (see `frontend.mark_submit`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from functools import partial

import ipywidgets as w

from mai_image_nb import imagemeta, previews
from mai_image_nb.client import Client
from mai_image_nb.errors import (
    BudgetExceededError,
    CancelledError,
    MaiImageError,
    ValidationError,
)
from mai_image_nb.generation import Generation
from mai_image_nb.params import Params, validate_params

from .downloads import DownloadLink
from .frontend import mark_submit
from .generate_form import GenerateInputs, code_for, copy_button_html, parse_token_limit
from .jobs import JobRunner
from .messages import money, say
from .widgets import (
    Html,
    Tone,
    details_html,
    file_name_for,
    muted,
    on_click,
    run_file_write,
    status_html,
)

__all__ = ["GenerateTab", "code_for", "copy_button_html", "parse_token_limit"]

MAX_SAMPLE_SEARCH = 10_000  # how far "New variation" looks for an unused sample index
STRIP_PX = 128


class GenerateTab(w.HBox):  # type: ignore[misc]
    """The form, the cost and Generate on the left; the image, Save and Download on the right."""

    def __init__(
        self,
        client: Client,
        *,
        on_settled: Callable[[], None],
        on_full: Callable[[Generation], None],
    ) -> None:
        self.client = client
        self._on_settled = on_settled
        self._on_full = on_full
        self.generation: Generation | None = None  # the image shown
        self.batch: list[Generation] = []
        self.over_budget = False

        self.inputs = GenerateInputs(lambda: self.client.model)
        self.prompt_box = self.inputs.prompt_box
        self.ratio_picker = self.inputs.ratio_picker
        self.temperature_slider = self.inputs.temperature_slider
        self.sample_box = self.inputs.sample_box
        self.count_box = self.inputs.count_box
        self.max_tokens_box = self.inputs.max_tokens_box
        self.max_completion_tokens_box = self.inputs.max_completion_tokens_box
        self.cost_line = Html()
        self.generate_button = w.Button(
            description="Generate", button_style="primary", tooltip="Generate (Ctrl+Enter)",
            layout=_auto(),
        )  # fmt: skip
        self.cancel_button = w.Button(description="Cancel", disabled=True, layout=_auto())
        self.variation_button = w.Button(
            description="New variation", disabled=True, layout=_auto(),
            tooltip="Same settings, another image (the next unused sample)",
        )  # fmt: skip
        self.upload = w.FileUpload(
            accept=".png,.jpg,.jpeg,.webp,image/png,image/jpeg,image/webp", multiple=False,
            description="Open image", layout=_auto(),
            tooltip="A PNG, JPEG or WebP saved by this toolkit: its settings fill this form",
        )  # fmt: skip
        self.status_line = Html(status_html("idle", "Ready."))

        self.image_view = w.Image(format="jpeg", layout=w.Layout(display="none"))
        self.image_view.add_class("mai-preview")
        self.placeholder = muted("Your image appears here.")
        self.stage = w.Box(
            [self.placeholder, self.image_view],
            layout=w.Layout(justify_content="center", align_items="center", min_height="200px"),
        )
        self.stage.add_class("mai-stage")
        self.lightbox_slot = w.Box([], layout=w.Layout(width="100%"))  # the Studio's lightbox
        self.strip = w.HBox([], layout=w.Layout(grid_gap="6px", flex_flow="row wrap"))
        self.details = Html("")
        self.details.add_class("mai-details")
        self.filename_box = w.Text(placeholder="file name.png", layout=w.Layout(width="200px"))
        self.save_button = w.Button(
            description="Save", icon="save", disabled=True, layout=_auto(),
            tooltip="Save into the kernel's folder",
        )  # fmt: skip
        self.download_button = w.Button(
            description="Download", icon="download", disabled=True, layout=_auto(),
            tooltip="The full PNG with its parameters, for this computer",
        )  # fmt: skip
        self.full_button = w.Button(
            description="Full size", icon="expand", disabled=True, layout=_auto()
        )
        self.link = DownloadLink()
        self.copy_code = w.Textarea(rows=2, layout=w.Layout(width="100%"))
        self.copy_code.add_class("mai-code")
        self.copy_button = Html("")
        self.code_panel = w.Accordion(
            children=[w.VBox([self.copy_code, self.copy_button])],
            titles=("Copy as code",),
            selected_index=None,
        )

        wrap = w.Layout(grid_gap="6px", flex_flow="row wrap", align_items="center")
        controls = w.VBox(
            [
                self.inputs,
                self.cost_line,
                w.HBox(
                    [self.generate_button, self.cancel_button, self.variation_button], layout=wrap
                ),
                self.status_line,
                self.upload,
            ],
            layout=w.Layout(flex="1 1 250px", max_width="400px", min_width="0", grid_gap="4px"),
        )
        result = w.VBox(
            [
                self.stage,
                self.strip,
                self.details,
                w.HBox([self.full_button, self.download_button, self.link], layout=wrap),
                self.lightbox_slot,  # right under the Full size button
                w.HBox([self.filename_box, self.save_button], layout=wrap),
                self.code_panel,
            ],
            layout=w.Layout(flex="999 1 240px", min_width="0", grid_gap="6px"),
        )
        super().__init__(
            [controls, result],
            layout=w.Layout(padding="8px", grid_gap="16px", flex_flow="row wrap"),
        )

        mark_submit(self, self.prompt_box, self.generate_button)  # Ctrl+Enter presses Generate
        self.jobs = JobRunner(name="generate", on_busy=self._set_busy, on_error=self._show_error)
        self.idle: threading.Event = self.jobs.idle
        self.inputs.observe_all(lambda _c: self.refresh_cost())
        self.upload.observe(lambda _c: self._on_upload(), names="value")
        on_click(self.generate_button, self.start_generate, self._show_error)
        on_click(self.cancel_button, self.cancel, self._show_error)
        on_click(
            self.variation_button, partial(self.start_generate, new_sample=True), self._show_error
        )
        on_click(self.save_button, self.start_save, self._show_error)
        on_click(self.download_button, self.download, self._show_error)
        on_click(self.full_button, self.full, self._show_error)
        self.refresh_cost()

    # -- form and cost ---------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def read_form(self) -> Params:
        """The form's settings as validated `Params` (the first of a batch).

        Raises:
            ValidationError: naming the field that is wrong.
        """
        return self.inputs.read()[0]

    def apply(self, params: Params) -> None:
        """Fill the form with `params` ("Use these settings")."""
        self.inputs.apply(params)
        self._show("idle", "Settings filled in: press Generate.")

    def _batch_params(self, params: Params, count: int) -> list[Params]:
        return [dataclasses.replace(params, sample=params.sample + k) for k in range(count)]

    def refresh_cost(self) -> None:
        """The cost before Generate is pressed: "costs $0.0627 · $0.31 left", or "free"."""
        if self.jobs.busy:
            return
        try:
            self._refresh_cost()
        except MaiImageError as exc:  # e.g. a history closed under us: one line, no traceback
            self.cost_line.value = status_html("error", say(exc))

    def _refresh_cost(self) -> None:
        try:
            params, count = self.inputs.read() if self.prompt_box.value.strip() else (None, 0)
        except MaiImageError:
            self.cost_line.value = ""
            return
        if params is None:
            count = int(self.count_box.value)
            new = count
        else:
            new = sum(self.client.cached(p) is None for p in self._batch_params(params, count))
        if new == 0:
            text = "free: already in the history"
        else:
            text = f"costs {money(self.client.estimate(new))}"
            if count > new:
                text += f" ({count - new} from the history)"
        budget = self.client.budget_usd
        if budget is not None:
            text += f" · {money(max(0.0, budget - self.client.spent_usd))} left"
        try:
            self.client.check_budget(new)
            self.over_budget = False
            self.cost_line.value = status_html("idle", text)
        except BudgetExceededError:
            self.over_budget = True
            self.cost_line.value = status_html("warn", f"{text}. Over the budget: raise it above.")
        self.generate_button.disabled = self.over_budget

    # -- generate --------------------------------------------------------------------------

    def start_generate(self, *, new_sample: bool = False) -> bool:
        """Validate the form and start the call(s); False (and a message) when refused."""
        if self.jobs.busy:
            return False
        try:
            params, count = self.inputs.read()
            if new_sample:
                params = self._next_free_sample(params)
                self.sample_box.value = params.sample
                count = 1
            batch = self._batch_params(params, count)
            self.client.check_budget(sum(self.client.cached(p) is None for p in batch))
        except ValidationError:
            self._show("idle", "")  # the message is under its field, once
            return False
        except MaiImageError as exc:
            self._show("error", say(exc))
            return False
        self.link.clear()
        self._show("busy", "Generating…" if count == 1 else f"Generating {count} images…")
        return self.jobs.start(
            partial(self._make, batch),
            self._present,
            on_tick=lambda s: self._show("busy", f"Generating… {s:.1f} s"),
        )

    def cancel(self) -> None:
        """Stop: a request not yet sent is not sent; one on the wire finishes (and is kept)."""
        if self.jobs.busy:
            self.jobs.request_cancel()
            self.cancel_button.disabled = True
            self._show("busy", "Cancelling…")

    def _next_free_sample(self, params: Params) -> Params:
        for sample in range(params.sample + 1, params.sample + MAX_SAMPLE_SEARCH):
            candidate = dataclasses.replace(params, sample=sample)
            if self.client.cached(candidate) is None:
                return candidate
        raise MaiImageError("No unused sample nearby: type another sample number.")

    def _make(self, batch: list[Params], cancel: threading.Event) -> list[tuple[Generation, bytes]]:
        made: list[tuple[Generation, bytes]] = []
        for params in batch:  # in order; the form is validated already
            try:
                gen = self.client.generate_params(params, cache=True, cancel=cancel)
            except CancelledError:
                if made:
                    break
                raise
            made.append((gen, previews.preview_bytes(gen.image)))
            if len(batch) > 1:
                self._show("busy", f"Generating… {len(made)} of {len(batch)}")
        return made

    def _present(self, made: list[tuple[Generation, bytes]]) -> None:
        gen, preview = made[0]
        self.batch = [g for g, _ in made]
        self.show(gen, preview)
        self._draw_strip(made if len(made) > 1 else [])
        if len(made) > 1:
            paid = sum(g.usd_spent for g, _ in made if not g.cached)
            self._show("ok", f"{len(made)} images · {money(paid)} paid")
        elif gen.cached:
            self._show("ok", "From the history: no charge. New variation makes another.")
        else:
            self._show("ok", f"Done in {gen.elapsed_s:.2f} s · {money(gen.usd_spent)}")

    def show(self, gen: Generation, preview: bytes) -> None:
        """Show `gen` in the stage with its details, file name and code."""
        self.generation = gen
        self.image_view.value = preview
        self.image_view.layout.display = None
        self.placeholder.layout.display = "none"
        self.details.value = details_html(gen)
        code = code_for(gen.params)
        self.copy_code.value = code
        self.copy_button.value = copy_button_html(code)
        self.filename_box.value = file_name_for(gen.prompt)
        self.link.clear()
        for button in (self.save_button, self.download_button, self.full_button):
            button.disabled = self.jobs.busy and not self.jobs.in_worker()

    def _draw_strip(self, made: list[tuple[Generation, bytes]]) -> None:
        cards: list[w.Widget] = []
        for gen, preview in made:
            thumb = previews.preview_bytes(gen.image, STRIP_PX)
            image = w.Image(value=thumb, format="jpeg")
            image.add_class("mai-strip-thumb")
            button = w.Button(description=f"#{gen.sample}", layout=_auto(), tooltip="Show this one")
            button.on_click(lambda _b, g=gen, p=preview: self.show(g, p))
            card = w.VBox([image, button], layout=w.Layout(align_items="center"))
            card.add_class("mai-card")
            cards.append(card)
        old = list(self.strip.children)
        self.strip.children = tuple(cards)
        for widget in old:
            widget.close()

    # -- save, download, full size, upload -------------------------------------------------

    def start_save(self) -> bool:
        """Save the shown image as a PNG with its parameters (into the kernel's folder)."""
        gen = self.generation
        if gen is None or self.jobs.busy:
            return False
        name = self.filename_box.value.strip()
        if not name:
            self._show("error", "Type a file name, e.g. lighthouse.png.")
            return False
        self._show("busy", "Saving…")
        return self.jobs.start(
            lambda _cancel: run_file_write(partial(gen.save, name), f"could not save {name}"),
            lambda path: self._show("ok", f"Saved to {path}"),
        )

    def download(self) -> None:
        """Offer the full PNG (parameters embedded) as a link that saves it on this computer."""
        gen = self.generation
        if gen is not None:
            name = self.filename_box.value.strip() or file_name_for(gen.prompt)
            self.link.offer(name if name.lower().endswith(".png") else f"{name}.png",
                            gen.png_bytes(), "image/png")  # fmt: skip

    def full(self) -> None:
        if self.generation is not None:
            self._on_full(self.generation)

    def _on_upload(self) -> None:
        files = self.upload.value
        if not files:
            return
        item = files[0]
        name, content = item["name"], bytes(item["content"])
        self.upload.value = ()  # the file's bytes do not stay in the widget (or the notebook)
        try:
            kwargs = imagemeta.read_params(content)
        except (MaiImageError, OSError, ValueError):
            self._show("error", f"{name} has no settings from this toolkit: pick one it saved.")
            return
        self.inputs.apply(validate_params(**kwargs, model=self.client.model))
        self._show("ok", f"Settings from {name} filled in: press Generate.")

    # -- state -----------------------------------------------------------------------------

    def _show(self, tone: Tone, text: str) -> None:
        self.status_line.value = status_html(tone, text)

    def _show_error(self, text: str) -> None:
        self._show("error", text)

    def _set_busy(self, busy: bool) -> None:
        self.generate_button.disabled = busy or self.over_budget
        self.cancel_button.disabled = not busy
        self.variation_button.disabled = busy or self.generation is None
        for button in (self.save_button, self.download_button, self.full_button):
            button.disabled = busy or self.generation is None
        if not busy:
            self.refresh_cost()
            self._on_settled()

    def close_jobs(self) -> None:
        self.jobs.close()


def _auto() -> w.Layout:
    return w.Layout(width="auto")
