"""One generation as a record: the database row, the JSON sidecar beside its image, file names.

The row and the sidecar are the same dict, built from one column list (`COLUMNS`), so the two
can never drift apart: the sidecar is written before the row, and a database rebuilt from the
sidecars is the database that was lost. Imports nothing from the package but `_files`,
`errors`, `generation` and `params`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import _files
from .errors import MaiImageError, ValidationError
from .generation import Generation
from .params import (
    ASPECT_RATIOS,
    MODELS,
    PROMPT_MAX_CHARS,
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    Params,
)
from .usage import Usage

__all__ = [
    "COLUMNS",
    "RECORD_SUFFIX",
    "file_name",
    "generation_of",
    "load_image",
    "read_record",
    "remove_files",
    "replacement_name",
    "row_of",
    "write_record",
]

# The table's columns, in its order. Everything that reads or writes a row goes by these names.
COLUMNS = (
    "id",
    "seq",
    "cache_key",
    "service",
    "model",
    "prompt",
    "aspect_ratio",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "sample",
    "created",
    "width",
    "height",
    "image_format",
    "file",
    "url",
    "credits_used",
    "usd_spent",
    "elapsed_s",
)
RECORD_SUFFIX = ".json"
RECORD_FORMAT = 1  # the sidecar's own version, written into each one

_EXTENSIONS = {"png": "png", "jpeg": "jpg", "jpg": "jpg", "webp": "webp"}
_PLAIN_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")


def _file_stem(generation_id: str) -> str:
    """The id itself when it is a plain file name, else a slug plus a digest (always unique)."""
    if _PLAIN_ID.fullmatch(generation_id) and not _files.is_reserved_name(generation_id):
        return generation_id
    digest = hashlib.sha256(generation_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    slug = _files.slugify(generation_id, 40).encode("ascii", "ignore").decode()
    return f"{slug}~{digest}" if slug else digest


def file_name(generation_id: str, image_format: str) -> str:
    """The image file name of a generation.

    Raises:
        ValidationError: the image format is not PNG, JPEG or WebP.
    """
    ext = _EXTENSIONS.get(image_format.lower())
    if ext is None:
        raise ValidationError("image_format", image_format, "png, jpeg or webp")
    return f"{_file_stem(generation_id)}.{ext}"


def replacement_name(name: str) -> str:
    """Another name for a record's new image while its old one stays until the commit.

    "~v" never occurs in the other names (plain ids, or a slug then "~" and hex digits).
    """
    stem, _, ext = name.rpartition(".")
    return f"{stem}~v{secrets.token_hex(6)}.{ext}"


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def row_of(gen: Generation, *, cache_key: str, file: str, seq: int) -> dict[str, Any]:
    """The row (and sidecar) of `gen`, stored under `cache_key` as image `file`."""
    usage = gen.usage
    row = {
        "id": gen.id,
        "seq": seq,
        "cache_key": cache_key,
        "service": gen.service,
        "model": gen.model,
        "prompt": gen.prompt,
        "aspect_ratio": gen.aspect_ratio,
        "temperature": gen.temperature,
        "max_tokens": gen.max_tokens,
        "max_completion_tokens": gen.max_completion_tokens,
        "sample": gen.sample,
        "created": _utc_iso(gen.created),
        "width": gen.width,
        "height": gen.height,
        "image_format": gen.image_format,
        "file": file,
        "url": gen.url,
        "credits_used": usage.credits_used if usage else None,
        "usd_spent": usage.usd_spent if usage else None,
        "elapsed_s": gen.elapsed_s,
    }
    assert tuple(row) == COLUMNS  # one column list: a new column must be added here too
    return row


def load_image(path: Path, generation_id: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MaiImageError(
            f"the image of generation {generation_id!r} is missing: {path} was deleted or moved"
        ) from None
    except OSError as exc:
        raise MaiImageError(f"cannot read the image of {generation_id!r} ({exc})") from exc


def generation_of(row: Mapping[str, Any] | sqlite3.Row, images: Path) -> Generation:
    """The `Generation` a row (or sidecar) describes; its image is read from `images` on use."""
    gid = str(row["id"])
    image_path = images / row["file"]
    usd = row["usd_spent"]
    usage = None if usd is None else Usage(credits_used=row["credits_used"] or 0.0, usd_spent=usd)
    return Generation(
        id=gid,
        params=Params(
            prompt=row["prompt"],
            aspect_ratio=row["aspect_ratio"],
            temperature=row["temperature"],
            max_tokens=row["max_tokens"],
            max_completion_tokens=row["max_completion_tokens"],
            sample=row["sample"],
            model=row["model"],
        ),
        service=row["service"],
        created=datetime.fromisoformat(row["created"]),
        width=row["width"],
        height=row["height"],
        image_format=row["image_format"],
        url=row["url"],
        usage=usage,
        elapsed_s=row["elapsed_s"],
        cached=False,
        load_data=lambda: load_image(image_path, gid),
    )


def write_record(records: Path, row: Mapping[str, Any]) -> Path:
    """Write the sidecar of `row` (whole or not at all, fsynced) and return its path."""
    path = records / (str(row["file"]) + RECORD_SUFFIX)
    body = json.dumps({"record_format": RECORD_FORMAT, **row}, ensure_ascii=False, indent=1)
    _files.write_atomic(path, body.encode("utf-8"))
    return path


def read_record(records: str, name: str) -> dict[str, Any] | None:
    """The row the sidecar `name` in folder `records` holds, or None when it is unreadable or
    not a valid record of ours. Plain strings, not `Path`: a rebuild calls this 10,000 times.

    Read unbuffered in one call and decoded as UTF-8 (what `write_record` writes); bytes
    that are not plain UTF-8 (a BOM, UTF-16, UTF-32: a record edited by hand) go to
    `json.loads` as bytes, which detects their encoding.
    """
    try:
        with open(f"{records}{os.sep}{name}", "rb", buffering=0) as file:  # noqa: PTH123 - hot loop
            raw = file.readall()
        try:
            text: str | None = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        data = json.loads(raw) if text is None or text.startswith("\ufeff") else _parse(text)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or type(data.get("record_format")) is not int:
        return None
    try:
        row = {name: data[name] for name in COLUMNS}
    except KeyError:
        return None
    row["file"] = name[: -len(RECORD_SUFFIX)]  # the name on disk is the truth
    return row if _is_valid(row) else None


_RAW_DECODE = json.JSONDecoder().raw_decode


def _parse(text: str) -> Any:
    """`json.loads(text)` in one step for a document that starts with its value (as ours
    do); anything else (leading whitespace, an error) goes through `json.loads` itself.

    Raises:
        ValueError: not one JSON document.
    """
    try:
        value, end = _RAW_DECODE(text)
    except ValueError:
        return json.loads(text)
    if text[end:].strip(" \t\n\r"):  # JSON's whitespace only after the value
        return json.loads(text)  # raises "Extra data", as json.loads would
    return value


# A sidecar's values come from `json.loads`, so each is exactly a str, int, float, bool,
# None, list or dict: `type(v) is int` is "an integer, not a bool", as `validate_params` means.
_MODELS = frozenset(MODELS)
_ASPECT_RATIOS = frozenset(ASPECT_RATIOS)
_NUMBERS = frozenset((int, float))
_TEXT = ("id", "cache_key", "service", "created")
_SIZES = ("width", "height", "seq")
_OPTIONAL_COUNTS = ("max_tokens", "max_completion_tokens")
_OPTIONAL_NUMBERS = ("credits_used", "usd_spent")


def _is_valid(row: dict[str, Any]) -> bool:
    """Whether a sidecar's fields make a valid row and `Generation`, checked field by field
    with the rules of `validate_params` (prompt, model, aspect ratio, temperature, token
    limits, sample) plus the row's own: cheaper than building a `Params` per record, and
    stricter. `tests/unit/test_history_records.py` holds the two to the same answers."""
    prompt, temperature, sample = row["prompt"], row["temperature"], row["sample"]
    if not (
        type(prompt) is str
        and 1 <= len(prompt) <= PROMPT_MAX_CHARS
        and type(row["model"]) is str
        and row["model"] in _MODELS
        and type(row["aspect_ratio"]) is str
        and row["aspect_ratio"] in _ASPECT_RATIOS
        and type(temperature) in _NUMBERS
        and TEMPERATURE_MIN <= temperature <= TEMPERATURE_MAX  # also refuses NaN
        and type(sample) is int
        and sample >= 0
        and type(row["image_format"]) is str
        and row["image_format"] in _EXTENSIONS
        and type(row["elapsed_s"]) in _NUMBERS
        and (row["url"] is None or type(row["url"]) is str)
    ):
        return False
    for name in _TEXT:
        value = row[name]
        if type(value) is not str or not value:
            return False
    for name in _SIZES:
        value = row[name]
        if type(value) is not int or value <= 0:
            return False
    for name in _OPTIONAL_COUNTS:
        value = row[name]
        if value is not None and (type(value) is not int or value < 1):
            return False
    for name in _OPTIONAL_NUMBERS:
        value = row[name]
        if value is not None and type(value) not in _NUMBERS:
            return False
    try:
        prompt.encode("utf-8")  # a lone surrogate (a "\ud800" escape) cannot travel as JSON
        datetime.fromisoformat(row["created"])
    except (UnicodeEncodeError, ValueError):
        return False
    return True


def remove_files(paths: Sequence[Path]) -> None:
    """Best effort: a file that cannot be removed now is tried again on the next open."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
