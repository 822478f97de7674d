"""Export of generations to a folder: PNGs carrying their parameters, CSV and JSON indexes,
and `index.html`, a gallery of the exported images that works offline.

File names are made safe by `_files.safe_filename` and created with `write_new_file`, so
nothing lands outside the folder and nothing already there is overwritten.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import _files, pngmeta
from .errors import MaiImageError
from .generation import Generation
from .report import gallery_html

__all__ = ["RECORD_FIELDS", "export_generations", "record_of"]

# One record per generation: `Generation.to_dict()` without `cached`, plus the image file.
RECORD_FIELDS = (
    "id", "prompt", "aspect_ratio", "temperature", "max_tokens", "max_completion_tokens",
    "sample", "model", "service", "created", "width", "height", "image_format", "url",
    "credits_used", "usd_spent", "elapsed_s", "file",
)  # fmt: skip


def record_of(gen: Generation, file: str | None) -> dict[str, Any]:
    """The JSON-safe record of `gen` with `file` (the image's path or name)."""
    record = gen.to_dict()
    del record["cached"]
    record["file"] = file
    return record


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: object) -> object:
    """A prompt like `=HYPERLINK(...)` stays text when index.csv is opened in a spreadsheet."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv(records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RECORD_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _inert(v) for k, v in record.items()} for record in records)
    return out.getvalue()


def export_generations(generations: Iterable[Generation], folder: str | os.PathLike[str]) -> Path:
    """Write each generation as a PNG with its parameters, then `index.json`, `index.csv`
    and `index.html` (a gallery linking the PNGs beside it; nothing from the network).

    A generation whose image file is missing is listed with `"file": null`. Returns `folder`.
    """
    target = Path(folder).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    records = []
    for gen in generations:
        try:
            png = pngmeta.embed_params(gen.data, gen.to_dict())
        except MaiImageError:  # image missing or unreadable: listed, with no file
            records.append(record_of(gen, None))
            continue
        name = _files.safe_filename(gen.id, gen.prompt, ext="png")
        records.append(record_of(gen, _files.write_new_file(target, name, png).name))
    text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    _files.write_new_file(target, "index.json", text.encode("utf-8"))
    _files.write_new_file(target, "index.csv", _csv(records).encode("utf-8"))
    page = gallery_html(records, title=f"{len(records)} exported image(s)")
    _files.write_new_file(target, "index.html", page.encode("utf-8"))
    return target
