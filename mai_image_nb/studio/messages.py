"""What the panel says to people: readable messages for validation and budget errors.

The Python API keeps its precise exceptions (`ValidationError` names the field and the
allowed values); the panel turns them into a short sentence a person can act on, and parses
what people type (a decimal comma in "0,5" included).
"""

from __future__ import annotations

import re

from mai_image_nb.errors import BudgetExceededError, ValidationError
from mai_image_nb.params import PROMPT_MAX_CHARS, TEMPERATURE_MAX, TEMPERATURE_MIN

from .widgets import error_text, one_line

__all__ = ["money", "parse_temperatures", "say", "temperature_label"]

_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")  # "0,5": one comma between digits, no dot
_SEPARATORS = re.compile(r"[;\s]+")
TEMPERATURE_EXAMPLE = "0.2, 1.0, 1.8"


def money(usd: float) -> str:
    """`$0.56` (cents) or `$0.0627` (under a dollar-cent, four places)."""
    return f"${usd:.2f}" if usd == 0 or usd >= 0.1 else f"${usd:.4f}"


def temperature_label(value: float) -> str:
    """`0.2`, `1.0`, `0.35`: one decimal at least, two when needed."""
    return f"{value:.1f}" if round(value, 1) == value else f"{value:.2f}"


def _numbers(text: str) -> list[str]:
    """The typed numbers: separated by commas, semicolons or spaces; "0,5" alone is 0.5."""
    parts: list[str] = []
    for chunk in _SEPARATORS.split(text.strip()):
        if _DECIMAL_COMMA.match(chunk):
            parts.append(chunk.replace(",", "."))
        else:
            parts.extend(part for part in chunk.split(",") if part)
    return parts


def parse_temperatures(text: str) -> tuple[float, ...]:
    """`"0.2, 1.0, 1.8"` (or `"0,5; 1,5"`) as numbers, each in [0, 2] and given once.

    Raises:
        ValidationError: naming `temperatures`; `allowed` is a sentence for people.
    """
    parts = _numbers(text)
    if not parts:
        raise ValidationError(
            "temperatures", text, f"Type one or more temperatures, e.g. {TEMPERATURE_EXAMPLE}."
        )
    values: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValidationError(
                "temperatures",
                text,
                f"“{part}” is not a number: type temperatures like {TEMPERATURE_EXAMPLE}.",
            ) from None
        if not TEMPERATURE_MIN <= value <= TEMPERATURE_MAX:
            raise ValidationError(
                "temperatures",
                text,
                f"{part} is out of range: temperatures go from {TEMPERATURE_MIN:g} "
                f"to {TEMPERATURE_MAX:g}.",
            )
        if value in values:
            raise ValidationError("temperatures", text, f"{part} is there twice: each once.")
        values.append(value)
    return tuple(values)


def _prompt_sentence(value: object, allowed: str) -> str:
    if "without repeats" in allowed:
        return "Each prompt once: one of the lines is there twice."
    if "variants" in allowed:
        return "Type at most 12 prompts, one per line."
    text = value if isinstance(value, str) else ""
    if not text.strip():
        return "Type a prompt first."
    if len(text) > PROMPT_MAX_CHARS:
        return f"The prompt is {len(text)} characters; keep it to {PROMPT_MAX_CHARS}."
    return "The prompt has characters that cannot be sent; retype it."


def say(exc: BaseException) -> str:
    """One sentence for people about `exc` (not escaped)."""
    if isinstance(exc, BudgetExceededError):
        left = max(0.0, exc.budget_usd - exc.spent_usd)
        return (
            f"This costs about {money(exc.estimate_usd)} but only {money(left)} is left of the "
            f"{money(exc.budget_usd)} budget: raise the budget in the header, or ask for less."
        )
    if not isinstance(exc, ValidationError):
        return error_text(exc)
    field, allowed = exc.field, exc.allowed
    if field in ("prompt", "prompts"):
        return _prompt_sentence(exc.value, allowed)
    if field == "aspect_ratios":
        return "Pick at least one aspect ratio."
    if field == "temperatures":
        return allowed  # parse_temperatures words it for people
    if field in ("max_tokens", "max_completion_tokens"):
        return f"{field}: a whole number of 1 or more, or leave it empty."
    if field in ("sample", "count"):
        return one_line(f"{field.capitalize()}: {allowed}.")
    if field == "budget_usd":
        return "Budget: a dollar amount of 0 or more (e.g. 1.50), or empty for no budget."
    if field == "file name":
        return "Type a file name, e.g. lighthouse.png."
    return error_text(exc)
