"""History figures: rebuilding a lost database from the folder, and opening an intact one.

- Rebuild: opening a folder of N images whose database is missing (every record read back
  from its sidecar, validated, inserted and full-text indexed), against the floor of reading
  the same N sidecars alone (scandir + read + json.loads). Goal ≤ 1.5× and < 30 s at 10,000.
- Open: opening the intact history of N (which reconciles the folder with the database but
  must do no rebuild work), against a bare `sqlite3.connect` + `SELECT count(*)`. Goal: open
  ≤ 200 ms at 10,000.

The folder is written directly (tiny PNGs, sidecars made by the same `row_of` the history
uses) so building it takes seconds, not the fsyncs of 10,000 real saves.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import statistics
import tempfile
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image

from bench.harness import Row, interleave
from mai_image_nb import _records
from mai_image_nb.generation import Generation, Usage
from mai_image_nb.history import DB_NAME, History
from mai_image_nb.params import Params, cache_key

IMAGES = {True: 2_000, False: 10_000}
ROUNDS = {True: 3, False: 5}
REBUILD_GOAL_RATIO = 1.5
REBUILD_GOAL_S = 30.0
OPEN_GOAL_MS = 200.0


def _tiny_png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (seed % 256, seed // 256 % 256, 7)).save(out, format="PNG")
    return out.getvalue()


def build_folder(root: Path, n: int) -> Path:
    """A history folder of `n` images with their sidecars and no database."""
    images, records = root / "images", root / "records"
    images.mkdir(parents=True)
    records.mkdir()
    (root / "thumbs").mkdir()
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(n):
        params = Params(prompt=f"prompt number {i} of a lighthouse {i % 97}", sample=i % 3)
        data = _tiny_png(i)
        gen = Generation(
            id=f"g{i:06d}",
            params=params,
            service="offline",
            created=base + timedelta(seconds=i),
            width=8,
            height=8,
            image_format="png",
            url=None,
            usage=Usage(credits_used=1.0, usd_spent=0.0627),
            elapsed_s=0.5,
            data=data,
        )
        name = _records.file_name(gen.id, "png")
        row = _records.row_of(gen, cache_key=cache_key(params, "offline"), file=name, seq=i + 1)
        (images / name).write_bytes(data)
        (records / f"{name}.json").write_text(
            json.dumps({"record_format": 1, **row}, ensure_ascii=False, indent=1), "utf-8"
        )
    return root


def _forget_database(root: Path) -> None:
    for name in os.listdir(root):
        if name.startswith(DB_NAME):
            (root / name).unlink()


def _rebuild(root: Path, n: int) -> None:
    _forget_database(root)
    with History(root) as history:
        assert len(history) == n, len(history)


def _read_sidecars(root: Path, n: int) -> None:
    records = root / "records"
    with os.scandir(records) as entries:
        read = [json.loads((records / e.name).read_bytes()) for e in entries]
    assert len(read) == n


def _open(root: Path) -> None:
    History(root).close()


def _bare_count(root: Path, n: int) -> None:
    with closing(sqlite3.connect(root / DB_NAME)) as conn:
        assert conn.execute("SELECT count(*) FROM generations").fetchone()[0] == n


def run(quick: bool) -> list[Row]:
    n, rounds = IMAGES[quick], ROUNDS[quick]
    with tempfile.TemporaryDirectory(prefix="mai-bench-history-") as tmp:
        root = build_folder(Path(tmp) / "h", n)
        rebuild = interleave(
            {"rebuild": lambda: _rebuild(root, n), "read": lambda: _read_sidecars(root, n)},
            rounds=rounds,
            warmup=1,
        )
        _rebuild(root, n)  # leave an intact database for the open figures
        opened = interleave(
            {"open": lambda: _open(root), "bare": lambda: _bare_count(root, n)},
            rounds=rounds * 4,
        )
    rebuild_row = Row(
        f"history rebuild from the folder ({n:,} images, database missing)",
        rebuild["rebuild"],
        "read the sidecars alone",
        rebuild["read"],
        goal=f"≤ {REBUILD_GOAL_RATIO}× and < {REBUILD_GOAL_S:g} s",
        note=f"rebuild median {statistics.median(rebuild['rebuild']) / 1000:.2f} s",
    )
    ratio_ok = rebuild_row.ratio_median <= REBUILD_GOAL_RATIO
    time_ok = max(rebuild["rebuild"]) < REBUILD_GOAL_S * 1000
    open_median = statistics.median(opened["open"])
    return [
        Row(**{**rebuild_row.__dict__, "ok": ratio_ok and time_ok}),
        Row(
            f"history open, intact ({n:,} images: reconcile only, no rebuild)",
            opened["open"],
            "sqlite3.connect + SELECT count(*)",
            opened["bare"],
            goal=f"open ≤ {OPEN_GOAL_MS:g} ms",
            ok=open_median <= OPEN_GOAL_MS,
            note=f"open median {open_median:.0f} ms",
        ),
    ]
