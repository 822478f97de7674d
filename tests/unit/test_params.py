"""Validation of every field of the provider's schema, before any request."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from mai_image_nb import Client, ValidationError
from mai_image_nb.params import (
    ASPECT_RATIOS,
    GENERATE_FIELDS,
    IMAGE_SIZES,
    Params,
    cache_key,
    check_count,
    check_number,
    request_body,
    validate_params,
)

SCHEMA = Path(__file__).resolve().parents[2] / "mai_image_nb" / "offline" / "openapi.json"


def _request_schema() -> dict[str, object]:
    spec = json.loads(SCHEMA.read_text())
    post = spec["paths"]["/v1/images/generations"]["post"]
    return post["requestBody"]["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def test_allowed_values_match_the_schema() -> None:
    props = _request_schema()["properties"]
    assert isinstance(props, dict)
    assert tuple(props["aspect_ratio"]["enum"]) == ASPECT_RATIOS
    assert props["prompt"]["maxLength"] == 4000
    assert (props["temperature"]["minimum"], props["temperature"]["maximum"]) == (0, 2)
    assert props["model"]["enum"] == ["microsoft/mai-image-2.5"]


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        pytest.param({"prompt": ""}, "prompt", "1 to 4000", id="empty-prompt"),
        pytest.param({"prompt": "x" * 4001}, "prompt", "1 to 4000", id="long-prompt"),
        pytest.param({"prompt": None}, "prompt", "string", id="none-prompt"),
        pytest.param({"prompt": b"bytes"}, "prompt", "string", id="bytes-prompt"),
        pytest.param({"prompt": "a \ud800 b"}, "prompt", "surrogate", id="lone-surrogate"),
        pytest.param({"aspect_ratio": "5:4"}, "aspect_ratio", "'16:9'", id="ratio"),
        pytest.param({"aspect_ratio": "16/9"}, "aspect_ratio", "'16:9'", id="ratio-slash"),
        pytest.param({"temperature": -0.01}, "temperature", "0 to 2", id="temp-low"),
        pytest.param({"temperature": 2.01}, "temperature", "0 to 2", id="temp-high"),
        pytest.param({"temperature": True}, "temperature", "0 to 2", id="temp-bool"),
        pytest.param({"temperature": "1"}, "temperature", "0 to 2", id="temp-str"),
        pytest.param({"temperature": float("nan")}, "temperature", "0 to 2", id="temp-nan"),
        pytest.param({"max_tokens": 0}, "max_tokens", ">= 1", id="tokens-zero"),
        pytest.param({"max_tokens": 1.5}, "max_tokens", "integer", id="tokens-float"),
        pytest.param({"max_tokens": True}, "max_tokens", "integer", id="tokens-bool"),
        pytest.param({"max_completion_tokens": -3}, "max_completion_tokens", ">= 1", id="mct"),
        pytest.param({"max_completion_tokens": False}, "max_completion_tokens", "int", id="mct-b"),
        pytest.param({"sample": -1}, "sample", ">= 0", id="sample-neg"),
        pytest.param({"model": "openai/dall-e-3"}, "model", "microsoft/mai-image-2.5", id="model"),
    ],
)
def test_bad_field_names_field_value_and_allowed(
    kwargs: dict[str, object], field: str, allowed: str
) -> None:
    args: dict[str, object] = {"prompt": "a cat"} | kwargs
    prompt = args.pop("prompt")
    with pytest.raises(ValidationError) as info:
        validate_params(prompt, **args)
    message = str(info.value)
    assert info.value.field == field
    assert message.startswith(f"{field}=")
    assert allowed in message
    assert "\n" not in message
    assert len(message) < 400


def test_valid_values_are_normalised() -> None:
    params = validate_params("a cat", aspect_ratio="16:9", temperature=1, max_tokens=10)
    assert params == Params("a cat", "16:9", 1.0, 10, None, 0)
    assert isinstance(params.temperature, float)


def test_body_holds_schema_fields_only_and_never_sample() -> None:
    params = validate_params("a cat", sample=3, max_completion_tokens=5)
    body = request_body(params)
    props = _request_schema()["properties"]
    assert isinstance(props, dict)
    assert set(body) <= set(props)
    assert "sample" not in body
    assert body["max_completion_tokens"] == 5
    assert "max_tokens" not in body


def test_cache_key_separates_service_sample_and_values() -> None:
    base = validate_params("a cat")
    keys = {
        cache_key(base, "offline"),
        cache_key(base, "api.aimlapi.com"),
        cache_key(validate_params("a cat", sample=1), "offline"),
        cache_key(validate_params("a cat", temperature=0.5), "offline"),
        cache_key(validate_params("a cat", max_tokens=1), "offline"),
    }
    assert len(keys) == 5
    assert cache_key(base, "offline") == cache_key(validate_params("a cat"), "offline")


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_image_sizes_follow_the_ratio(ratio: str) -> None:
    width, height = IMAGE_SIZES[ratio]
    a, b = (int(x) for x in ratio.split(":"))
    assert abs(width / height - a / b) / (a / b) < 0.005
    assert min(width, height) >= 768
    assert 0.95e6 <= width * height <= 1.1e6 or ratio == "1:1"


def test_generate_fields_are_the_image_keywords_of_generate() -> None:
    keywords = set(inspect.signature(Client.generate).parameters) - {"self", "cache", "cancel"}
    assert keywords == GENERATE_FIELDS


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0, id="below"),
        pytest.param(True, id="bool"),
        pytest.param(2.0, id="float"),
        pytest.param("2", id="str"),
        pytest.param(None, id="none"),
    ],
)
def test_check_count_refuses(value: object) -> None:
    with pytest.raises(ValidationError, match=r"^max_workers=.* must be an integer >= 1$"):
        check_count("max_workers", value, minimum=1)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0.0, id="below"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(True, id="bool"),
        pytest.param("5", id="str"),
    ],
)
def test_check_number_refuses(value: object) -> None:
    with pytest.raises(ValidationError, match=r"^timeout=.* must be a number >= 0.001$"):
        check_number("timeout", value, minimum=0.001)


def test_checks_accept_their_minimum() -> None:
    check_count("n", 0, minimum=0)
    check_number("timeout", 0.001, minimum=0.001)
    check_number("timeout", 5, minimum=0.001)
