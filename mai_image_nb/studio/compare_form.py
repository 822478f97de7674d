"""The Compare tab's form: prompts (one per line), ratio toggles, temperatures, repeats.

Each field has its own message line under it; `read()` validates everything and says, under
each field, what is wrong in words for people; a fixed field's message goes away at once.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w

from mai_image_nb.batch import MAX_PROMPTS
from mai_image_nb.client import Client
from mai_image_nb.errors import MaiImageError, ValidationError
from mai_image_nb.params import ASPECT_RATIOS, validate_params

from .grid import CompareForm
from .messages import parse_temperatures, say
from .widgets import Html, field, ratio_label, ratio_size, reject_blank_prompt, status_html

__all__ = [
    "MAX_CELLS",
    "MAX_REPEATS",
    "CompareInputs",
    "FieldNote",
    "RatioToggles",
    "estimate_grid",
]

MAX_CELLS = 48  # a grid larger than this is hard to see and easy to pay too much for
MAX_REPEATS = 4


class FieldNote(Html):
    """The message line under one field: empty, or one escaped error sentence."""

    def __init__(self) -> None:
        super().__init__("")
        self.add_class("mai-field-note")
        self.text = ""

    def set(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self.value = status_html("error", text) if text else ""


class RatioToggles(w.HBox):  # type: ignore[misc]
    """The seven aspect ratios as toggle buttons (several may be on), as in Generate."""

    def __init__(self, value: tuple[str, ...]) -> None:
        self.buttons = {
            ratio: w.ToggleButton(
                value=ratio in value,
                description=ratio_label(ratio),
                tooltip=ratio_size(ratio),
                layout=w.Layout(width="auto"),
            )
            for ratio in ASPECT_RATIOS
        }
        super().__init__(
            list(self.buttons.values()),
            layout=w.Layout(flex_flow="row wrap", grid_gap="4px"),
        )
        self.add_class("mai-ratio")

    @property
    def value(self) -> tuple[str, ...]:
        """The ratios switched on, in the API's order."""
        return tuple(r for r, button in self.buttons.items() if button.value)

    @value.setter
    def value(self, ratios: tuple[str, ...]) -> None:
        for ratio, button in self.buttons.items():
            button.value = ratio in ratios

    def observe_value(self, callback: Callable[[object], None]) -> None:
        for button in self.buttons.values():
            button.observe(callback, names="value")


class CompareInputs(w.VBox):  # type: ignore[misc]
    """Prompts, ratios, temperatures and repeats, each with its message line."""

    def __init__(self, model: Callable[[], str]) -> None:
        self._model = model
        self.prompt_box = w.Textarea(
            placeholder="One prompt per line, e.g.\na red fox in fresh snow\na red fox at dusk",
            rows=3,
            layout=w.Layout(width="100%"),
        )
        self.ratio_toggles = RatioToggles(("1:1", "16:9", "9:16"))
        self.temperatures_box = w.Text(value="0.2, 1.0, 1.8", layout=w.Layout(width="100%"))
        self.repeats_box = w.BoundedIntText(
            value=1, min=1, max=MAX_REPEATS, layout=w.Layout(width="70px")
        )
        self.notes = {name: FieldNote() for name in ("prompt", "ratios", "temperatures", "grid")}
        super().__init__(
            [
                field(f"Prompts — one per line, up to {MAX_PROMPTS}", self.prompt_box),
                self.notes["prompt"],
                field("Aspect ratios — pick one or more", self.ratio_toggles),
                self.notes["ratios"],
                w.HBox(
                    [
                        field("Temperatures (0 to 2)", self.temperatures_box, width="100%"),
                        field("Repeats", self.repeats_box),
                    ],
                    layout=w.Layout(grid_gap="10px", width="100%"),
                ),
                self.notes["temperatures"],
                self.notes["grid"],
            ],
            layout=w.Layout(grid_gap="2px", width="100%"),
        )

    def observe_all(self, callback: Callable[[object], None]) -> None:
        """Call `callback` whenever any field changes."""
        for control in (self.prompt_box, self.temperatures_box, self.repeats_box):
            control.observe(callback, names="value")
        self.ratio_toggles.observe_value(callback)

    def prompts(self) -> tuple[str, ...]:
        """The non-empty lines of the prompt box, surrounding spaces removed."""
        return tuple(line.strip() for line in self.prompt_box.value.splitlines() if line.strip())

    def read(self, *, need_prompt: bool = True) -> CompareForm:
        """The settings, validated; every field's message line updated on the way.

        Raises:
            ValidationError: the first field that is wrong (its message is shown under it).
        """
        problems: dict[str, MaiImageError] = {}
        prompts = self.prompts()
        prompt_problem: ValidationError | None = None
        try:
            self._check_prompts(prompts)
        except ValidationError as exc:
            prompt_problem = exc
        if need_prompt and prompt_problem is not None:
            problems["prompt"] = prompt_problem
        ratios = self.ratio_toggles.value
        if not ratios:
            problems["ratios"] = ValidationError("aspect_ratios", (), "at least one aspect ratio")
        temps: tuple[float, ...] = ()
        try:
            temps = parse_temperatures(self.temperatures_box.value)
        except ValidationError as exc:
            problems["temperatures"] = exc
        repeats = int(self.repeats_box.value)
        form = CompareForm(prompts or ("",), ratios, temps, repeats)
        cells = len(form.slots)
        if not problems and cells > MAX_CELLS:
            problems["grid"] = ValidationError(
                "grid",
                f"{cells} cells",
                f"That is {cells} cells; pick fewer (at most {MAX_CELLS}).",
            )
        for name, note in self.notes.items():
            problem = problems.get(name)
            if name == "prompt" and not need_prompt:
                # While typing: a fixed prompt clears its message; a new one waits for Run.
                problem = prompt_problem if note.text else None
            note.set("" if problem is None else _sentence(problem))
        if problems:
            raise next(iter(problems.values()))
        return form

    def _check_prompts(self, prompts: tuple[str, ...]) -> None:
        if not prompts:
            reject_blank_prompt(self.prompt_box.value)
            raise ValidationError("prompt", "", "Type a prompt first.")
        if len(prompts) > MAX_PROMPTS:
            raise ValidationError("prompt", f"{len(prompts)} prompts", "prompt variants")
        if len(set(prompts)) != len(prompts):
            raise ValidationError("prompt", list(prompts), "prompt variants without repeats")
        for prompt in prompts:
            validate_params(prompt, model=self._model())


def _sentence(exc: MaiImageError) -> str:
    if isinstance(exc, ValidationError) and exc.field == "grid":
        return exc.allowed
    return say(exc)


def estimate_grid(client: Client, form: CompareForm) -> tuple[int, int, float]:
    """(new cells, cached cells, estimated USD of the new ones); cheap indexed look-ups.

    A prompt that is not valid yet counts its cells as new (its message is under the field).

    Raises:
        MaiImageError: the history cannot be read.
    """
    cached = 0
    try:
        for prompt, ratio, temp, repeat in form.slots:
            if prompt:
                params = validate_params(
                    prompt, aspect_ratio=ratio, temperature=temp, sample=repeat, model=client.model
                )
                cached += client.cached(params) is not None
    except ValidationError:
        cached = 0
    new = len(form.slots) - cached
    return new, cached, client.estimate(new)
