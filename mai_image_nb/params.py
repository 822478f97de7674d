"""Allowed values, validation and the request body: pure functions, no I/O.

Every field of the provider's schema (`/v1/images/generations`) is checked here,
before anything is sent, with a message naming the field, the value and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

from .errors import ValidationError

__all__ = [
    "ASPECT_RATIOS",
    "DEFAULT_MODEL",
    "GENERATE_FIELDS",
    "IMAGE_SIZES",
    "MODELS",
    "PROMPT_MAX_CHARS",
    "TEMPERATURE_MAX",
    "TEMPERATURE_MIN",
    "AspectRatio",
    "Params",
    "cache_key",
    "check_count",
    "check_number",
    "request_body",
    "validate_params",
]

AspectRatio = Literal["1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3"]
ASPECT_RATIOS: tuple[str, ...] = get_args(AspectRatio)
DEFAULT_MODEL = "microsoft/mai-image-2.5"
MODELS: tuple[str, ...] = (DEFAULT_MODEL,)
PROMPT_MAX_CHARS = 4000
TEMPERATURE_MIN = 0.0
TEMPERATURE_MAX = 2.0

# Canvas size for each ratio: 1:1 is 1024x1024, the others about one megapixel with each
# side at least 768 px and the ratio exact (the simulator draws at these sizes).
IMAGE_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "4:3": (1152, 864),
    "3:4": (864, 1152),
    "16:9": (1376, 774),
    "9:16": (774, 1376),
    "3:2": (1248, 832),
    "2:3": (832, 1248),
}


@dataclass(frozen=True)
class Params:
    """One validated request, plus the client's own `sample` index (never sent)."""

    prompt: str
    aspect_ratio: str = "1:1"
    temperature: float = 1.0
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    sample: int = 0
    model: str = DEFAULT_MODEL

    def generate_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `Client.generate()` that reproduce this request."""
        kwargs: dict[str, Any] = {
            "prompt": self.prompt,
            "aspect_ratio": self.aspect_ratio,
            "temperature": self.temperature,
            "sample": self.sample,
        }
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self.max_completion_tokens is not None:
            kwargs["max_completion_tokens"] = self.max_completion_tokens
        return kwargs


# The keyword arguments of `Client.generate()` that describe an image: every field but `model`.
GENERATE_FIELDS = frozenset(f.name for f in fields(Params) if f.name != "model")


def _check_int(field: str, value: object, *, minimum: int, optional: bool) -> int | None:
    if value is None and optional:
        return None
    # bool is an int subclass; True is not a token limit.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValidationError(
            field, value, f"an integer >= {minimum}" + (" or None" if optional else "")
        )
    return int(value)


def check_count(field: str, value: object, *, minimum: int) -> None:
    """A setting that must be a plain `int` (not a bool) of at least `minimum`.

    Raises:
        ValidationError: naming the field, the value given and what is allowed.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(field, value, f"an integer >= {minimum}")


def check_number(field: str, value: object, *, minimum: float) -> None:
    """A setting that must be an `int` or `float` (not a bool, not NaN) of at least `minimum`.

    Raises:
        ValidationError: naming the field, the value given and what is allowed.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise ValidationError(field, value, f"a number >= {minimum:g}")


def validate_params(
    prompt: object,
    *,
    aspect_ratio: object = "1:1",
    temperature: object = 1.0,
    max_tokens: object = None,
    max_completion_tokens: object = None,
    sample: object = 0,
    model: object = DEFAULT_MODEL,
) -> Params:
    """Check every field against the provider's schema and return them as `Params`.

    Raises:
        ValidationError: naming the field, the value given and what is allowed.
    """
    if not isinstance(model, str) or model not in MODELS:
        raise ValidationError("model", model, "one of " + ", ".join(repr(m) for m in MODELS))
    if not isinstance(prompt, str):
        raise ValidationError("prompt", prompt, f"a string of 1 to {PROMPT_MAX_CHARS} characters")
    if not 1 <= len(prompt) <= PROMPT_MAX_CHARS:
        raise ValidationError(
            "prompt",
            prompt,
            f"a string of 1 to {PROMPT_MAX_CHARS} characters (got {len(prompt)})",
        )
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (from broken copy-paste) cannot travel as JSON text.
        raise ValidationError(
            "prompt", prompt, "valid Unicode text (it holds a lone surrogate)"
        ) from None
    if not isinstance(aspect_ratio, str) or aspect_ratio not in ASPECT_RATIOS:
        raise ValidationError(
            "aspect_ratio", aspect_ratio, "one of " + ", ".join(repr(r) for r in ASPECT_RATIOS)
        )
    # `not MIN <= t <= MAX` also refuses NaN, which compares false with everything.
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not TEMPERATURE_MIN <= float(temperature) <= TEMPERATURE_MAX
    ):
        raise ValidationError(
            "temperature", temperature, f"a number from {TEMPERATURE_MIN:g} to {TEMPERATURE_MAX:g}"
        )
    tokens = _check_int("max_tokens", max_tokens, minimum=1, optional=True)
    completion = _check_int(
        "max_completion_tokens", max_completion_tokens, minimum=1, optional=True
    )
    index = _check_int("sample", sample, minimum=0, optional=False)
    assert index is not None
    return Params(
        prompt=prompt,
        aspect_ratio=aspect_ratio,
        temperature=float(temperature),
        max_tokens=tokens,
        max_completion_tokens=completion,
        sample=index,
        model=model,
    )


def request_body(params: Params) -> dict[str, Any]:
    """The JSON body for `POST /v1/images/generations`: schema fields only, never `sample`."""
    body: dict[str, Any] = {
        "model": params.model,
        "prompt": params.prompt,
        "aspect_ratio": params.aspect_ratio,
        "temperature": params.temperature,
    }
    if params.max_tokens is not None:
        body["max_tokens"] = params.max_tokens
    if params.max_completion_tokens is not None:
        body["max_completion_tokens"] = params.max_completion_tokens
    return body


def cache_key(params: Params, service: str) -> str:
    """A stable digest of everything that decides an image: the request, `sample` and the service.

    The service ("offline", or the API host) is part of it, so an image made by the
    simulator never answers a call to the real API, nor the other way round.
    """
    material = json.dumps([service, *asdict(params).items()], sort_keys=False, ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()
