"""The Generate tab: one prompt and its settings in, one image (a ≤512 px preview) out.

Clicks validate on the kernel's thread and hand the call to a `JobRunner`; the worker only
assigns widget values. The full PNG stays in the history; the widget holds a JPEG preview.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import ipywidgets as w

from mai_image_nb import previews
from mai_image_nb.client import Client
from mai_image_nb.errors import MaiImageError, ValidationError
from mai_image_nb.generation import Generation
from mai_image_nb.params import (
    PROMPT_MAX_CHARS,
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    Params,
    validate_params,
)

from .jobs import JobRunner
from .widgets import (
    Tone,
    details_html,
    error_text,
    field,
    file_name_for,
    muted,
    on_click,
    ratio_options,
    ratio_size,
    reject_blank_prompt,
    run_file_write,
    status_html,
)

__all__ = ["GenerateTab", "code_for", "parse_token_limit"]

MAX_SAMPLE_SEARCH = 10_000  # how far "New variation" looks for an unused sample index


def parse_token_limit(field_name: str, text: str) -> int | None:
    """The integer typed in a token-limit box; empty means "not sent".

    Raises:
        ValidationError: not a whole number >= 1.
    """
    stripped = text.strip()
    if not stripped:
        return None
    allowed = "a whole number ≥ 1, or empty to leave it out"
    try:
        number = int(stripped)
    except ValueError:
        raise ValidationError(field_name, text, allowed) from None
    if number < 1:
        raise ValidationError(field_name, text, allowed)
    return number


def code_for(params: Params) -> str:
    """The exact `client.generate(...)` call that reproduces `params` (the prompt via repr)."""
    kwargs = params.generate_kwargs()
    args = [repr(kwargs.pop("prompt"))]
    if not kwargs.get("sample"):
        kwargs.pop("sample", None)
    args.extend(f"{name}={value!r}" for name, value in kwargs.items())
    return f"client.generate({', '.join(args)})"


class GenerateTab(w.VBox):  # type: ignore[misc]
    """Prompt, ratio, temperature and token limits; Generate; the preview, details and Save."""

    def __init__(self, client: Client, *, on_settled: Callable[[], None]) -> None:
        self.client = client
        self._on_settled = on_settled
        self.generation: Generation | None = None  # the image shown
        self.last_timing: dict[str, float] = {}  # click-to-preview figures of the last run
        self._hint: Params | None = None  # settings taken from the history (keeps their sample)
        self._clicked_at = 0.0

        self.prompt_box = w.Textarea(
            placeholder="Describe the image: a lighthouse at dusk, warm light, wide shot",
            rows=4,
            layout=w.Layout(width="100%"),
        )
        self.prompt_count = muted(f"0 / {PROMPT_MAX_CHARS}")
        self.ratio_picker = w.ToggleButtons(
            options=ratio_options(),
            value="1:1",
            tooltips=[ratio_size(value) for _, value in ratio_options()],
            style={"button_width": "auto"},
        )
        self.ratio_picker.add_class("mai-ratio")
        self.temperature_slider = w.FloatSlider(
            value=1.0,
            min=TEMPERATURE_MIN,
            max=TEMPERATURE_MAX,
            step=0.05,
            readout_format=".2f",
            continuous_update=False,
            layout=w.Layout(width="100%"),
        )
        self.max_tokens_box = w.Text(placeholder="not sent", layout=w.Layout(width="150px"))
        self.max_completion_tokens_box = w.Text(
            placeholder="not sent", layout=w.Layout(width="150px")
        )
        advanced = w.VBox(
            [
                w.HBox(
                    [
                        field("max_tokens", self.max_tokens_box),
                        field("max_completion_tokens", self.max_completion_tokens_box),
                    ],
                    layout=w.Layout(grid_gap="12px"),
                ),
                muted("Whole numbers; an empty field is not sent."),
            ]
        )
        self.advanced = w.Accordion(children=[advanced], titles=("Advanced",), selected_index=None)
        self.generate_button = w.Button(
            description="Generate", button_style="primary", tooltip="Make the image"
        )
        self.variation_button = w.Button(
            description="New variation",
            tooltip="Same settings, another image (the next unused sample)",
            disabled=True,
        )
        self.status_line = w.HTML(status_html("idle", "Ready."))

        self.image_view = w.Image(format="jpeg", layout=w.Layout(display="none"))
        self.image_view.add_class("mai-preview")
        self.placeholder = muted("Your image appears here.")
        self.stage = w.Box(
            [self.placeholder, self.image_view],
            layout=w.Layout(
                justify_content="center", align_items="center", min_height="280px", width="100%"
            ),
        )
        self.stage.add_class("mai-stage")
        self.details = w.HTML("")
        self.details.add_class("mai-details")
        self.filename_box = w.Text(placeholder="file name.png", layout=w.Layout(flex="1 1 auto"))
        self.save_button = w.Button(description="Save", icon="download", disabled=True)
        self.copy_code = w.Textarea(rows=2, layout=w.Layout(width="100%"))
        self.copy_code.add_class("mai-code")
        self.code_panel = w.Accordion(
            children=[w.VBox([muted("Select and copy:"), self.copy_code])],
            titles=("Copy as code",),
            selected_index=None,
        )

        controls = w.VBox(
            [
                field("Prompt", self.prompt_box),
                self.prompt_count,
                field("Aspect ratio", self.ratio_picker),
                field("Temperature — 0 repeats itself, 2 surprises", self.temperature_slider),
                self.advanced,
                w.HBox(
                    [self.generate_button, self.variation_button], layout=w.Layout(grid_gap="8px")
                ),
                self.status_line,
            ],
            layout=w.Layout(flex="1 1 380px", max_width="500px", grid_gap="6px"),
        )
        result = w.VBox(
            [
                self.stage,
                self.details,
                w.HBox([self.filename_box, self.save_button], layout=w.Layout(grid_gap="8px")),
                self.code_panel,
            ],
            layout=w.Layout(flex="1 1 420px", grid_gap="6px"),
        )
        super().__init__(
            [w.HBox([controls, result], layout=w.Layout(flex_flow="row wrap", grid_gap="16px"))],
            layout=w.Layout(padding="8px"),
        )

        self.jobs = JobRunner(name="generate", on_busy=self._set_busy, on_error=self._show_error)
        self.idle: threading.Event = self.jobs.idle
        self.prompt_box.observe(self._on_prompt, names="value")
        for box in (self.max_tokens_box, self.max_completion_tokens_box):
            box.observe(self._on_limit, names="value")
        on_click(
            self.generate_button, partial(self.start_generate, new_sample=False), self._show_error
        )
        on_click(
            self.variation_button, partial(self.start_generate, new_sample=True), self._show_error
        )
        on_click(self.save_button, self.start_save, self._show_error)

    # -- form ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def read_form(self) -> Params:
        """The form's settings as validated `Params`.

        Raises:
            ValidationError: naming the field that is wrong.
        """
        prompt = self.prompt_box.value
        reject_blank_prompt(prompt)
        params = validate_params(
            prompt,
            aspect_ratio=self.ratio_picker.value,
            temperature=float(self.temperature_slider.value),
            max_tokens=parse_token_limit("max_tokens", self.max_tokens_box.value),
            max_completion_tokens=parse_token_limit(
                "max_completion_tokens", self.max_completion_tokens_box.value
            ),
            model=self.client.model,
        )
        hint = self._hint
        if hint is not None and dataclasses.replace(params, sample=hint.sample) == hint:
            return hint
        return params

    def apply(self, params: Params) -> None:
        """Fill the form with `params` ("Use these settings")."""
        self.prompt_box.value = params.prompt
        self.ratio_picker.value = params.aspect_ratio
        self.temperature_slider.value = params.temperature
        self.max_tokens_box.value = "" if params.max_tokens is None else str(params.max_tokens)
        self.max_completion_tokens_box.value = (
            "" if params.max_completion_tokens is None else str(params.max_completion_tokens)
        )
        self._hint = params
        self._show("idle", "Settings filled in from the history: press Generate.")

    def _on_prompt(self, change: dict[str, Any]) -> None:
        count = len(change["new"])
        over = " mai-status-error" if count > PROMPT_MAX_CHARS else ""
        self.prompt_count.value = (
            f'<span class="mai-muted{over}">{count} / {PROMPT_MAX_CHARS}</span>'
        )

    def _on_limit(self, change: dict[str, Any]) -> None:
        owner = change["owner"]
        name = "max_tokens" if owner is self.max_tokens_box else "max_completion_tokens"
        try:
            parse_token_limit(name, change["new"])
        except ValidationError as exc:
            self._show("error", error_text(exc))
        else:
            if "mai-status-error" in self.status_line.value and name in self.status_line.value:
                self._show("idle", "Ready.")

    # -- generate --------------------------------------------------------------------------

    def start_generate(self, *, new_sample: bool = False) -> bool:
        """Validate the form and start the call; False (and an error line) when refused."""
        if self.jobs.busy:
            return False
        clicked = time.perf_counter()
        try:
            params = self.read_form()
            if new_sample:
                params = self._next_free_sample(params)
        except MaiImageError as exc:  # ValidationError, or a history that cannot be read
            self._show("error", error_text(exc))
            return False
        self._clicked_at = clicked
        self._show("busy", "Generating…")
        return self.jobs.start(
            lambda cancel: self._make(params, cancel),
            self._present,
            on_tick=lambda s: self._show("busy", f"Generating… {s:.1f} s"),
        )

    def _next_free_sample(self, params: Params) -> Params:
        for sample in range(params.sample + 1, params.sample + MAX_SAMPLE_SEARCH):
            candidate = dataclasses.replace(params, sample=sample)
            if self.client.cached(candidate) is None:
                return candidate
        raise ValidationError("sample", params.sample, "an index with no stored image")

    def _make(self, params: Params, cancel: threading.Event) -> tuple[Generation, bytes, float]:
        started = time.perf_counter()
        # The form is validated already; `cancel` (set by close()) also ends a back-off wait.
        gen = self.client.generate_params(params, cache=True, cancel=cancel)
        call_s = time.perf_counter() - started
        return gen, previews.preview_bytes(gen.image), call_s

    def _present(self, made: tuple[Generation, bytes, float]) -> None:
        gen, preview, call_s = made
        self.generation = gen
        self._hint = None
        self.image_view.value = preview
        self.image_view.layout.display = None
        self.placeholder.layout.display = "none"
        self.details.value = details_html(gen)
        self.copy_code.value = code_for(gen.params)
        self.filename_box.value = file_name_for(gen.prompt)
        shown = time.perf_counter()
        total_s = shown - self._clicked_at
        self.last_timing = {
            "click_to_preview_s": total_s,
            "call_s": call_s,
            "overhead_s": total_s - call_s,
        }
        if gen.cached:
            self._show("ok", "From the history: no charge. New variation makes another.")
        else:
            self._show("ok", f"Done in {call_s:.2f} s · ${gen.usd_spent:.4f}")

    # -- save ------------------------------------------------------------------------------

    def start_save(self) -> bool:
        """Save the shown image as a PNG with its parameters, under the file name given."""
        gen = self.generation
        if gen is None or self.jobs.busy:
            return False
        name = self.filename_box.value.strip()
        if not name:
            self._show("error", "file name: type a file name, e.g. lighthouse.png")
            return False
        self._show("busy", "Saving…")
        return self.jobs.start(
            lambda _cancel: run_file_write(partial(gen.save, name), f"could not save {name}"),
            lambda path: self._show("ok", f"Saved to {path}"),
        )

    # -- state -----------------------------------------------------------------------------

    def _show(self, tone: Tone, text: str) -> None:
        self.status_line.value = status_html(tone, text)

    def _show_error(self, text: str) -> None:
        self._show("error", text)

    def _set_busy(self, busy: bool) -> None:
        self.generate_button.disabled = busy
        self.variation_button.disabled = busy or self.generation is None
        self.save_button.disabled = busy or self.generation is None
        if not busy:
            self._on_settled()

    def close_jobs(self) -> None:
        self.jobs.close()
