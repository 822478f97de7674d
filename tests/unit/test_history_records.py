"""Sidecar records: the rebuild's field checks agree with `validate_params`, and a bulk rebuild
(past `_sqlite.BULK_ROWS`, where indexes and the full-text index are built after the insert)
gives the same schema, a sound file and a correct search."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mai_image_nb import _records, _sqlite
from mai_image_nb.errors import ValidationError
from mai_image_nb.generation import Generation, Usage
from mai_image_nb.history import DB_NAME, History
from mai_image_nb.params import DEFAULT_MODEL, GENERATE_FIELDS, Params, cache_key, validate_params

_BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _row(i: int, **params: Any) -> dict[str, Any]:
    p = Params(prompt=params.pop("prompt", f"lighthouse number {i}"), **params)
    gen = Generation(
        id=f"g{i:05d}",
        params=p,
        service="offline",
        created=_BASE + timedelta(seconds=i),
        width=8,
        height=8,
        image_format="png",
        url=None,
        usage=Usage(credits_used=1.0, usd_spent=0.0627),
        elapsed_s=0.5,
        data=b"not decoded by a rebuild",
    )
    name = _records.file_name(gen.id, "png")
    return _records.row_of(gen, cache_key=cache_key(p, "offline"), file=name, seq=i + 1)


def _write_folder(root: Path, rows: list[dict[str, Any]]) -> None:
    for sub in ("images", "records", "thumbs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for row in rows:
        (root / "images" / row["file"]).write_bytes(b"image")
        (root / "records" / (row["file"] + ".json")).write_text(
            json.dumps({"record_format": 1, **row}), "utf-8"
        )


# Values a sidecar could hold (after json.loads) for each field `validate_params` checks.
_TRIALS: dict[str, list[Any]] = {
    "prompt": ["", "x", "a" * 4000, "a" * 4001, "\ud800 lone", 7, None, ["a"], True],
    "aspect_ratio": ["1:1", "16:9", "banana", "", 1, None, ["1:1"], {"a": 1}],
    "temperature": [0, 0.0, 2, 2.0, 1.5, -0.1, 2.01, float("nan"), float("inf"), True, "1", None],
    "max_tokens": [None, 1, 0, -1, 100, 1.0, True, "5", [1]],
    "max_completion_tokens": [None, 1, 0, 2.5, False, "1"],
    "sample": [0, 1, 99, -1, 1.0, True, False, None, "0"],
    "model": [DEFAULT_MODEL, DEFAULT_MODEL.upper(), "mai-image-2.5", "", 3, None, [DEFAULT_MODEL]],
}


def _validate_params_accepts(row: dict[str, Any]) -> bool:
    try:
        validate_params(**{f: row[f] for f in (*GENERATE_FIELDS, "model")})
    except (ValidationError, TypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize(
    ("field", "value"), [(f, v) for f, values in _TRIALS.items() for v in values]
)
def test_the_rebuild_checks_accept_exactly_what_validate_params_accepts(
    tmp_path: Path, field: str, value: Any
) -> None:
    row = {**_row(1), field: value}
    (tmp_path / "r.png.json").write_text(json.dumps({"record_format": 1, **row}), "utf-8")
    loaded = json.loads((tmp_path / "r.png.json").read_text("utf-8"))  # what the rebuild sees
    read = _records.read_record(str(tmp_path), "r.png.json")
    assert (read is not None) == _validate_params_accepts(loaded), (field, value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", ""),
        ("id", 5),
        ("seq", 0),
        ("seq", "3"),
        ("seq", True),
        ("width", 8.0),
        ("height", -8),
        ("created", "yesterday"),
        ("created", 20260101),
        ("image_format", "gif"),
        ("image_format", ["png"]),
        ("url", 3),
        ("credits_used", "1"),
        ("usd_spent", True),
        ("elapsed_s", None),
        ("cache_key", ""),
        ("service", None),
        ("record_format", True),
        ("record_format", "1"),
    ],
)
def test_a_record_with_a_bad_row_field_is_refused(tmp_path: Path, field: str, value: Any) -> None:
    body = {"record_format": 1, **_row(1), field: value}
    (tmp_path / "r.png.json").write_text(json.dumps(body), "utf-8")
    assert _records.read_record(str(tmp_path), "r.png.json") is None


def test_a_valid_record_reads_back_as_its_row_whatever_its_encoding(tmp_path: Path) -> None:
    row = _row(3, prompt="phare à l’aube ✨")
    body = json.dumps({"record_format": 1, **row}, ensure_ascii=False)
    for n, encoding in enumerate(("utf-8", "utf-16", "utf-8-sig")):
        (tmp_path / f"{n}.png.json").write_bytes(body.encode(encoding))
        assert _records.read_record(str(tmp_path), f"{n}.png.json") == {
            **row,
            "file": f"{n}.png",
        }
    (tmp_path / "cut.png.json").write_bytes(body.encode("utf-8")[:-3])
    assert _records.read_record(str(tmp_path), "cut.png.json") is None


def _schema(db: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        return sorted(
            conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
        )


def test_a_bulk_rebuild_keeps_schema_search_and_integrity(tmp_path: Path) -> None:
    n = _sqlite.BULK_ROWS + 100
    rows = [_row(i, prompt=f"lighthouse {i} {'storm' if i % 7 == 0 else 'calm'}") for i in range(n)]
    rows[5] = {**rows[5], "aspect_ratio": "banana"}  # not adopted, its image kept
    folder = tmp_path / "h"
    _write_folder(folder, rows)
    fresh = tmp_path / "fresh"
    History(fresh).close()  # the schema a new history gets, index by index
    with History(folder) as history:
        assert len(history) == n - 1
        assert "g00005" not in history
        storms = [i for i in range(n) if i % 7 == 0 and i != 5]
        assert history.count("storm") == len(storms)
        assert {g.id for g in history.search("storm")} == {f"g{i:05d}" for i in storms}
        prefixed = {f"g{i:05d}" for i in range(n) if str(i).startswith("41")}  # words as prefixes
        assert {g.id for g in history.search("lighthouse 41")} == prefixed
        history.delete("g00007")  # the triggers are back: the full-text index follows
        assert history.count("storm") == len(storms) - 1
    assert (folder / "images" / "g00005.png").exists()
    assert _schema(folder / DB_NAME) == _schema(fresh / DB_NAME)
    with closing(sqlite3.connect(folder / DB_NAME)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # FTS5's own check against its content table: raises when the index is wrong
        conn.execute(
            "INSERT INTO generations_fts (generations_fts, rank) VALUES ('integrity-check', 1)"
        )
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == n - 2


@pytest.mark.parametrize(
    ("before", "after", "valid"),
    [("", "", True), (" \n\t", "\r\n ", True), ("", " {}", False), ("", "x", False)],
)
def test_a_record_is_one_json_document_as_json_loads_reads_it(
    tmp_path: Path, before: str, after: str, valid: bool
) -> None:
    row = _row(4)
    body = before + json.dumps({"record_format": 1, **row}, indent=1) + after
    (tmp_path / "r.png.json").write_text(body, "utf-8")
    read = _records.read_record(str(tmp_path), "r.png.json")
    assert read == ({**row, "file": "r.png"} if valid else None)
