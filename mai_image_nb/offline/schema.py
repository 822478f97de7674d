"""The generations endpoint's request body: the bundled schema, strict JSON, validation.

Pure functions over the bundled `openapi.json`, and `RecordedRequest`, a request as the
simulator received it; standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "GENERATIONS_PATH",
    "SCHEMA_PATH",
    "RecordedRequest",
    "parse_json",
    "request_schema",
    "validate_body",
]

GENERATIONS_PATH = "/v1/images/generations"
SCHEMA_PATH = Path(__file__).with_name("openapi.json")
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "number": (int, float), "integer": int, "boolean": bool, "object": dict,
    "array": list,
}  # fmt: skip


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator received it (headers keyed in lower case)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    time: float
    connection: int = 0  # 1 for the server's first TCP connection, 2 for the next...


@lru_cache(maxsize=1)
def request_schema() -> dict[str, Any]:
    """The JSON schema of the generations body, from the bundled copy of the provider's spec."""
    spec = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    body = spec["paths"][GENERATIONS_PATH]["post"]["requestBody"]
    schema: dict[str, Any] = body["content"]["application/json"]["schema"]
    return schema


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return next((n for n, t in _JSON_TYPES.items() if isinstance(value, t)), "unknown")


def _check(name: str, value: object, rule: dict[str, Any]) -> list[str]:
    kind = rule.get("type")
    if value is None:
        return [] if rule.get("nullable") else [f"{name} must be a {kind}, got null"]
    is_type = kind is None or (
        isinstance(value, _JSON_TYPES[kind]) and (kind == "boolean" or not isinstance(value, bool))
    )
    if not is_type:
        article = "an" if kind == "integer" else "a"
        return [f"{name} must be {article} {kind}, got {_type_name(value)}"]
    problems = []
    if "enum" in rule and value not in rule["enum"]:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        allowed = ", ".join(repr(v) for v in rule["enum"])
        problems.append(f"{name} must be one of {allowed} (got {shown})")
    if isinstance(value, str):
        if len(value) < rule.get("minLength", 0):
            problems.append(f"{name} must be at least {rule['minLength']} characters long")
        if "maxLength" in rule and len(value) > rule["maxLength"]:
            problems.append(
                f"{name} must be at most {rule['maxLength']} characters long (got {len(value)})"
            )
    if isinstance(value, (int, float)):
        if "minimum" in rule and value < rule["minimum"]:
            problems.append(f"{name} must be >= {rule['minimum']} (got {value})")
        if "maximum" in rule and value > rule["maximum"]:
            problems.append(f"{name} must be <= {rule['maximum']} (got {value})")
    return problems


def validate_body(body: object, schema: dict[str, Any] | None = None) -> list[str]:
    """What is wrong with a parsed request body, each problem naming its field; [] when valid.

    Follows JSON Schema as OpenAPI 3.0 reads it: a bool is neither an integer nor a number,
    1.0 is not an integer, null only where `nullable`. Fields the schema does not name are
    ignored, as the provider's schema allows (it does not forbid additional properties).
    """
    schema = schema or request_schema()
    if not isinstance(body, dict):
        return [f"the body must be a JSON object, got {_type_name(body)}"]
    problems = [f"{name} is required" for name in schema.get("required", ()) if name not in body]
    for name, rule in schema.get("properties", {}).items():
        if name in body:
            problems += _check(name, body[name], rule)
    return problems


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_STRICT = json.JSONDecoder(parse_constant=_reject_constant)  # json.loads would build one a call


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN or Infinity. Raises ValueError."""
    return _STRICT.decode(raw.decode("utf-8"))
