"""Bring the database back in line with the images folder, which is the source of truth.

Run on opening (inside the write transaction, so no writer is between its files and its
row; skipped when another process holds that lock for long, see `_opening`) and by
`History.rebuild()` on an emptied table:
- an image with a sidecar but no row (its writer was killed between the two, or the database
  was lost) is adopted: its row is inserted again, never its file deleted;
- a row whose image has no sidecar (a folder from before sidecars) gets one written;
- temporary files of killed writers, and sidecars whose image never landed, are removed.
An image with neither row nor sidecar is left where it is: nothing says what it was.
"""

from __future__ import annotations

import operator
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _records, _sqlite
from ._records import COLUMNS, RECORD_SUFFIX

__all__ = ["Folder", "Outcome", "has_orphans", "insert_row", "reconcile"]

_INSERT = (
    f"INSERT INTO generations ({', '.join(COLUMNS)}) "  # noqa: S608 - constant column list
    f"VALUES ({', '.join(':' + name for name in COLUMNS)})"
)
# The bulk insert of a rebuild binds the same column list as tuples: SQLite reads a tuple
# faster than it looks names up in a dict (about 20 ms per 10,000 rows).
_INSERT_BULK = (
    f"INSERT INTO generations ({', '.join(COLUMNS)}) "  # noqa: S608 - constant column list
    f"VALUES ({', '.join('?' * len(COLUMNS))})"
)
_VALUES = operator.itemgetter(*COLUMNS)


@dataclass(frozen=True)
class Folder:
    """The paths of one history folder."""

    root: Path

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def records(self) -> Path:
        return self.root / "records"

    @property
    def thumbs(self) -> Path:
        return self.root / "thumbs"

    def record_of(self, file: str) -> Path:
        return self.records / (file + RECORD_SUFFIX)


@dataclass
class Outcome:
    """What one reconciliation did (counts), for `rebuild()` and the benchmarks."""

    adopted: int = 0
    records_written: int = 0
    removed: list[Path] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)  # images nothing describes


def insert_row(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    conn.execute(_INSERT, row)


def _names(folder: Path) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [entry.name for entry in entries]
    except FileNotFoundError:
        return []


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def has_orphans(conn: sqlite3.Connection, folder: Folder) -> bool:
    """Whether an image with a sidecar has no row (what `reconcile` would adopt)."""
    images = {name for name in _names(folder.images) if not _is_temp(name)}
    if not images:
        return False
    rows = {file for (file,) in conn.execute("SELECT file FROM generations")}
    record_names = set(_names(folder.records))
    return any(name + RECORD_SUFFIX in record_names for name in images - rows)


def reconcile(conn: sqlite3.Connection, folder: Folder, *, writable: bool) -> Outcome:
    """Adopt orphans, write missing sidecars, drop leftovers; call inside a write transaction.

    With `writable=False` (a read-only folder) only rows are inserted (into a database that
    may live in memory); no file is written or removed.
    """
    outcome = Outcome()
    image_names = _names(folder.images)
    record_names = set(_names(folder.records))
    rows = {
        row["file"]: (row["id"], row["seq"])
        for row in conn.execute("SELECT id, seq, file FROM generations").fetchall()
    }
    by_id = {gid: (seq, file) for file, (gid, seq) in rows.items()}
    images = {name for name in image_names if not _is_temp(name)}
    if writable:
        outcome.removed += [folder.images / n for n in image_names if _is_temp(n)]
        outcome.removed += [folder.records / n for n in record_names if _is_temp(n)]
        described = images | rows.keys()
        outcome.removed += [
            folder.records / n
            for n in record_names
            if not _is_temp(n) and n[: -len(RECORD_SUFFIX)] not in described
        ]
        stems = {name.rsplit(".", 1)[0] for name in described}
        outcome.removed += [  # thumbnails are a cache: those of nothing, or half-written, go
            folder.thumbs / n for n in _names(folder.thumbs) if n.split(".", 1)[0] not in stems
        ]
        _write_missing_records(conn, folder, sorted(rows.keys() & images), record_names, outcome)
    orphans: list[dict[str, Any]] = []
    records_dir, read_record = str(folder.records), _records.read_record  # a 10,000-turn loop
    for name in sorted(images - rows.keys()):
        sidecar = name + RECORD_SUFFIX
        record = read_record(records_dir, sidecar) if sidecar in record_names else None
        if record is None:
            outcome.unrecorded.append(name)
        else:
            orphans.append(record)
    _adopt(conn, folder, orphans, by_id, outcome, writable=writable)
    if writable:
        _records.remove_files(outcome.removed)
    return outcome


def _write_missing_records(
    conn: sqlite3.Connection,
    folder: Folder,
    files: list[str],
    record_names: set[str],
    outcome: Outcome,
) -> None:
    """Migration: a record for each row made before sidecars (best effort: a full disk
    leaves the rest for the next open)."""
    for file in files:
        if file + RECORD_SUFFIX in record_names:
            continue
        found = conn.execute("SELECT * FROM generations WHERE file = ?", (file,)).fetchone()
        try:
            _records.write_record(folder.records, {name: found[name] for name in COLUMNS})
        except OSError:
            return
        outcome.records_written += 1


def _adopt(
    conn: sqlite3.Connection,
    folder: Folder,
    orphans: Iterable[dict[str, Any]],  # taken over: their "seq" is renumbered in place
    by_id: dict[str, tuple[int, str]],
    outcome: Outcome,
    *,
    writable: bool,
) -> None:
    """Insert the orphans' rows, oldest first; of two versions of one id the later one wins.

    A sidecar's `seq` is the one its writer took under the write lock, so among versions of
    one id a higher `seq` was written later. The loser is a replaced version whose removal
    its writer did not get to finish, and is removed as that writer would have.
    """
    (next_seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM generations").fetchone()
    adopted: dict[str, dict[str, Any]] = {}  # by id, in insertion order
    for record in sorted(orphans, key=lambda r: (r["seq"], r["created"], r["file"])):
        current = by_id.get(record["id"])
        if current is not None:
            seq, file = current
            if record["seq"] <= seq:  # an older version: its replacement is committed
                stale = record["file"]
                outcome.removed += [folder.images / stale, folder.record_of(stale)]
                continue
            conn.execute("DELETE FROM generations WHERE id = ?", (record["id"],))
            if writable:
                outcome.removed += [folder.images / file, folder.record_of(file)]
                outcome.removed += list(folder.thumbs.glob(f"{file.rsplit('.', 1)[0]}.*"))
            adopted.pop(record["id"], None)
        by_id[record["id"]] = (record["seq"], record["file"])
        record["seq"] = next_seq  # each record is read for this call alone: no copy needed
        adopted[record["id"]] = record
        next_seq += 1
    _sqlite.insert_many(conn, _INSERT_BULK, map(_VALUES, adopted.values()), len(adopted))
    outcome.adopted += len(adopted)
