"""The Generate tab's form: prompt, ratio, temperature, sample, how many, token limits.

Each field that can be wrong has its message line under it; `read()` validates and fills
them; a fixed field's message goes away as soon as it is fixed. `apply()` fills the form from
stored parameters ("Use these settings", or a PNG made by this toolkit).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from mai_image_nb import display
from mai_image_nb.errors import ValidationError
from mai_image_nb.params import (
    PROMPT_MAX_CHARS,
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    Params,
    validate_params,
)

from .compare_form import FieldNote
from .messages import say
from .widgets import field, muted, ratio_options, ratio_size, reject_blank_prompt

__all__ = ["MAX_BATCH", "GenerateInputs", "code_for", "copy_button_html", "parse_token_limit"]

MAX_BATCH = 8  # images per click
MAX_SAMPLE = 1_000_000


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


def copy_button_html(code: str) -> str:
    """A Copy button that puts `code` on the clipboard (a click handler in the browser only)."""
    return (
        f'<button class="mai-copy jupyter-button" type="button" data-code="{display.escape(code)}" '
        'onclick="navigator.clipboard.writeText(this.dataset.code).then('
        "() => { this.textContent = 'Copied ✓'; }, () => { this.textContent = 'Select and copy'; })"
        '">Copy</button>'
    )


class GenerateInputs(w.VBox):  # type: ignore[misc]
    """Every setting of one `generate()` call, plus how many images to make."""

    def __init__(self, model: Callable[[], str]) -> None:
        self._model = model
        self.prompt_box = w.Textarea(
            placeholder="Describe the image: a lighthouse at dusk, warm light, wide shot",
            rows=3,
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
        self.sample_box = w.BoundedIntText(
            value=0, min=0, max=MAX_SAMPLE, layout=w.Layout(width="90px"),
            tooltip="Same settings and sample give the same image (from the history, free)",
        )  # fmt: skip
        self.count_box = w.BoundedIntText(
            value=1, min=1, max=MAX_BATCH, layout=w.Layout(width="70px"),
            tooltip=f"Images per click (1 to {MAX_BATCH}): samples in a row from the sample given",
        )  # fmt: skip
        self.max_tokens_box = w.Text(placeholder="not sent", layout=w.Layout(width="140px"))
        self.max_completion_tokens_box = w.Text(
            placeholder="not sent", layout=w.Layout(width="140px")
        )
        self.notes = {name: FieldNote() for name in ("prompt", "max_tokens", "completion")}
        advanced = w.VBox(
            [
                w.HBox(
                    [
                        w.VBox(
                            [field("max_tokens", self.max_tokens_box), self.notes["max_tokens"]]
                        ),
                        w.VBox(
                            [
                                field("max_completion_tokens", self.max_completion_tokens_box),
                                self.notes["completion"],
                            ]
                        ),
                    ],
                    layout=w.Layout(grid_gap="12px", flex_flow="row wrap"),
                ),
                muted("Whole numbers; an empty field is not sent."),
            ]
        )
        self.advanced = w.Accordion(children=[advanced], titles=("Advanced",), selected_index=None)
        super().__init__(
            [
                field("Prompt", self.prompt_box),
                w.HBox(
                    [self.notes["prompt"], self.prompt_count],
                    layout=w.Layout(justify_content="space-between"),
                ),
                field("Aspect ratio", self.ratio_picker),
                field("Temperature — 0 repeats itself, 2 surprises", self.temperature_slider),
                w.HBox(
                    [field("Sample", self.sample_box), field("How many", self.count_box)],
                    layout=w.Layout(grid_gap="12px"),
                ),
                self.advanced,
            ],
            layout=w.Layout(grid_gap="2px", width="100%"),
        )
        self.prompt_box.observe(self._on_prompt, names="value")
        for box in (self.max_tokens_box, self.max_completion_tokens_box):
            box.observe(lambda _c: self._limits_as_typed(), names="value")

    def observe_all(self, callback: Callable[[object], None]) -> None:
        """Call `callback` whenever a setting that changes the cost or the cache changes."""
        for control in (
            self.prompt_box,
            self.ratio_picker,
            self.temperature_slider,
            self.sample_box,
            self.count_box,
            self.max_tokens_box,
            self.max_completion_tokens_box,
        ):
            control.observe(callback, names="value")

    def _on_prompt(self, change: dict[str, Any]) -> None:
        count = len(change["new"])
        over = " mai-status-error" if count > PROMPT_MAX_CHARS else ""
        self.prompt_count.value = (
            f'<span class="mai-muted{over}">{count} / {PROMPT_MAX_CHARS}</span>'
        )
        if self.notes["prompt"].text:  # a message is shown: clear it as soon as it is fixed
            try:
                self._check_prompt()
            except ValidationError as exc:
                self.notes["prompt"].set(say(exc))
            else:
                self.notes["prompt"].set("")

    def _check_prompt(self) -> None:
        prompt = self.prompt_box.value
        reject_blank_prompt(prompt)
        validate_params(prompt, model=self._model())

    def _limits_as_typed(self) -> None:
        """Each token-limit box's message, updated while typing (never raises)."""
        with contextlib.suppress(ValidationError):  # shown under the field
            self._check_limits()

    def _check_limits(self) -> tuple[int | None, int | None]:
        """Both token limits, each box's message updated (once, under its own field)."""
        values: list[int | None] = []
        first: ValidationError | None = None
        for name, box, note in (
            ("max_tokens", self.max_tokens_box, self.notes["max_tokens"]),
            ("max_completion_tokens", self.max_completion_tokens_box, self.notes["completion"]),
        ):
            try:
                values.append(parse_token_limit(name, box.value))
                note.set("")
            except ValidationError as exc:
                values.append(None)
                note.set(say(exc))
                first = first or exc
        if first is not None:
            self.advanced.selected_index = 0
            raise first
        return values[0], values[1]

    def read(self) -> tuple[Params, int]:
        """The settings as validated `Params`, and how many images (samples in a row).

        Raises:
            ValidationError: naming the field that is wrong (its message is under it).
        """
        try:
            self._check_prompt()
        except ValidationError as exc:
            self.notes["prompt"].set(say(exc))
            raise
        self.notes["prompt"].set("")
        max_tokens, max_completion_tokens = self._check_limits()
        params = validate_params(
            self.prompt_box.value,
            aspect_ratio=self.ratio_picker.value,
            temperature=float(self.temperature_slider.value),
            max_tokens=max_tokens,
            max_completion_tokens=max_completion_tokens,
            sample=int(self.sample_box.value),
            model=self._model(),
        )
        return params, int(self.count_box.value)

    def apply(self, params: Params) -> None:
        """Fill the form with `params` (its sample included)."""
        self.prompt_box.value = params.prompt
        self.ratio_picker.value = params.aspect_ratio
        self.temperature_slider.value = params.temperature
        self.sample_box.value = params.sample
        self.max_tokens_box.value = "" if params.max_tokens is None else str(params.max_tokens)
        self.max_completion_tokens_box.value = (
            "" if params.max_completion_tokens is None else str(params.max_completion_tokens)
        )
        for note in self.notes.values():
            note.set("")
