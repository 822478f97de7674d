"""`History`: every generation kept on disk (image files as received, a record beside each,
and a SQLite index over them).

Layout of the folder: `history.sqlite3`, `images/<id>.<ext>`, `records/<id>.<ext>.json` (the
image's record), `thumbs/<id>.jpg`. The images folder is the source of truth: a save writes
the record, then the image (each temporary file, fsync, rename), then the row, all inside one
write transaction; opening reconciles the database with the folder (`_reconcile`), so a
killed writer's image is adopted, and a missing, empty or damaged database is rebuilt. A
folder that cannot be written is served read-only. No widgets and no network here.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from . import _files, _records, _sqlite, previews
from ._opening import move_aside, open_database
from ._reconcile import Folder, insert_row, reconcile
from .errors import MaiImageError, ValidationError
from .export import RECORD_FIELDS, export_generations, record_of
from .generation import Generation
from .params import check_count

__all__ = ["DB_NAME", "HOME_ENV", "History"]

HOME_ENV = "MAI_IMAGE_HOME"
DEFAULT_FOLDER = ".mai_image"
DB_NAME = "history.sqlite3"
THUMB_MAX_PX = 256
PAGE_ROWS = 256  # rows fetched at a time while iterating
_IDS_PER_QUERY = 500  # under SQLite's oldest limit of 999 bound values
_NEXT_SEQ = "SELECT COALESCE(MAX(seq), 0) + 1 FROM generations"
_SELECT = f"SELECT {', '.join(_records.COLUMNS)} FROM generations"  # noqa: S608 - constant


class History:
    """Persistent store of every generation, safe from several threads and processes.

    `History(path=None)` uses env `MAI_IMAGE_HOME`, else `./.mai_image`; the folder is
    created when missing. Iteration is newest first. A folder that cannot be written
    (read-only, permissions) is opened read-only: it serves what it holds, and `add`
    raises `MaiImageError` naming the folder and the cause.

    Raises (on opening):
        MaiImageError: the folder cannot be created or read, the database is locked, or it
            is from a newer version of this package.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            path = os.environ.get(HOME_ENV) or DEFAULT_FOLDER
        self.path = Path(path).expanduser().absolute()
        self._folder = Folder(self.path)
        self._db_path = self.path / DB_NAME
        self._read_only_cause: str | None = None
        try:
            for sub in (self._folder.images, self._folder.records, self._folder.thumbs):
                sub.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if not self._folder.images.is_dir():
                message = f"cannot use {self.path} as the history folder ({exc})"
                raise MaiImageError(message) from exc
            self._read_only_cause = exc.strerror or str(exc)
        if self._read_only_cause is None and not os.access(self.path, os.W_OK):
            self._read_only_cause = "the folder is not writable"
        self._write_lock = threading.Lock()
        self._closed = False
        self._open(self._read_only_cause)

    def _open(self, read_only_cause: str | None) -> None:
        opened = open_database(self._folder, self._db_path, read_only_cause)
        self._writer = opened.writer
        self._read_only_cause = opened.read_only_cause
        self._has_fts = _sqlite.has_table(self._writer, "generations_fts")
        self._readers = _sqlite.ReaderPool(self._db_path, opened.connect_reader)

    # -- plumbing --------------------------------------------------------------------------

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[_sqlite.Row]:
        with self._readers.connection() as conn, _sqlite.translate(self._db_path):
            return _sqlite.query(conn, sql, args)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock, _sqlite.translate(self._db_path):
            if self._closed:
                raise MaiImageError(f"the history at {self.path} is closed")
            if self._read_only_cause is not None:
                raise MaiImageError(
                    f"the history folder {self.path} cannot be written "
                    f"({self._read_only_cause}); it is open read-only"
                )
            with _sqlite.immediate(self._writer) as conn:
                yield conn

    def _generation(self, row: _sqlite.Row) -> Generation:
        return _records.generation_of(row, self._folder.images)

    @staticmethod
    def _files_of(conn: sqlite3.Connection, generation_id: str) -> list[str]:
        rows = _sqlite.query(conn, "SELECT file FROM generations WHERE id = ?", (generation_id,))
        return [row["file"] for row in rows]

    def _paths_of(self, files: Sequence[str]) -> list[Path]:
        """Every file of these images: image, record and thumbnails."""
        found: list[Path] = []
        for name in files:
            found += [self._folder.images / name, self._folder.record_of(name)]
            found.extend(self._folder.thumbs.glob(f"{name.rsplit('.', 1)[0]}.*"))
        return found

    # -- writing ---------------------------------------------------------------------------

    def add(self, gen: Generation, *, cache_key: str) -> None:
        """Store `gen` (its bytes exactly as received); durable once this returns.

        Its record, then its image, are written atomically, then the row, all in one
        transaction. Adding an id again replaces that record.

        Raises:
            ValidationError: the image format is not PNG, JPEG or WebP.
            MaiImageError: the folder or the database cannot be written (full disk,
                read-only folder, permissions).
        """
        name = _records.file_name(gen.id, gen.image_format)
        data = gen.data
        old: list[str] = []
        written: list[Path] = []
        try:
            with self._writing() as conn:
                old = self._files_of(conn, gen.id)
                if name in old:  # never overwrite the image the committed row still shows
                    name = _records.replacement_name(name)
                (seq,) = conn.execute(_NEXT_SEQ).fetchone()
                row = _records.row_of(gen, cache_key=cache_key, file=name, seq=seq)
                written.append(self._folder.record_of(name))
                self._write_file(lambda: _records.write_record(self._folder.records, row))
                written.append(self._folder.images / name)
                self._write_file(lambda: _files.write_atomic(self._folder.images / name, data))
                self._insert_row(conn, row)
        except BaseException:
            _records.remove_files(written)  # rolled back: its new files (never old ones) go
            raise
        if old:  # a replaced record: its old image, record and thumbnails go
            _records.remove_files(self._paths_of([f for f in old if f != name]))
            _records.remove_files(list(self._folder.thumbs.glob(f"{name.rsplit('.', 1)[0]}.*")))

    def _write_file(self, write: Callable[[], object]) -> None:
        try:
            write()
        except OSError as exc:
            raise MaiImageError(f"cannot write to the history folder {self.path} ({exc})") from exc

    @staticmethod
    def _insert_row(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        conn.execute("DELETE FROM generations WHERE id = ?", (row["id"],))
        insert_row(conn, row)

    def rebuild(self) -> int:
        """Rebuild the database from the records beside the images; returns how many it holds.

        What opening does for a missing, empty or damaged database, on demand (a damaged
        file is kept as `history.sqlite3.damaged-<timestamp>`). No image is removed.

        Raises:
            MaiImageError: the history is closed or read-only, or the folder cannot be written.
        """
        try:
            with self._writing() as conn:
                reconcile(conn, self._folder, writable=True)  # records for rows without one
                conn.execute("DELETE FROM generations")
                reconcile(conn, self._folder, writable=True)
        except MaiImageError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, sqlite3.Error) and _sqlite.is_damage(cause)):
                raise
            with self._write_lock:
                self._writer.close()
                self._readers.close()
                move_aside(self._db_path)
                self._open(None)
        return len(self)

    def delete(self, id: str) -> None:
        """Remove one generation: its row, image, record and thumbnails.

        Raises:
            KeyError: no generation has this id.
        """
        with self._writing() as conn:
            files = self._files_of(conn, id)
            if not files:
                raise KeyError(f"no generation with id {id!r} in the history at {self.path}")
            conn.execute("DELETE FROM generations WHERE id = ?", (id,))
        _records.remove_files(self._paths_of(files))

    def clear(self) -> None:
        """Remove every generation, image, record and thumbnail."""
        with self._writing() as conn:
            files = [row["file"] for row in _sqlite.query(conn, "SELECT file FROM generations")]
            conn.execute("DELETE FROM generations")
        _records.remove_files(self._paths_of(files))

    def close(self) -> None:
        """Close every database connection (safe to call twice)."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            self._writer.close()
        self._readers.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------

    def lookup(self, cache_key: str) -> Generation | None:
        """The newest generation stored under `cache_key`, or None (the image is not read)."""
        rows = self._query(f"{_SELECT} WHERE cache_key = ? ORDER BY seq DESC LIMIT 1", (cache_key,))
        return self._generation(rows[0]) if rows else None

    def last_usd(self, model: str, service: str) -> float | None:
        """`usd_spent` of the newest generation of `model` on `service` that reported one."""
        rows = self._query(
            "SELECT usd_spent FROM generations WHERE model = ? AND service = ? "
            "AND usd_spent IS NOT NULL ORDER BY seq DESC LIMIT 1",
            (model, service),
        )
        return float(rows[0][0]) if rows else None

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM generations")[0][0])

    def _rows(self) -> Iterator[_sqlite.Row]:
        """Every row, newest first, fetched `PAGE_ROWS` at a time (no read left open between)."""
        before = 2**62
        while rows := self._query(
            f"{_SELECT} WHERE seq < ? ORDER BY seq DESC LIMIT {PAGE_ROWS}", (before,)
        ):
            yield from rows
            before = rows[-1]["seq"]

    def __iter__(self) -> Iterator[Generation]:
        return map(self._generation, self._rows())

    def __getitem__(self, id: str) -> Generation:
        """The generation with this id.

        Raises:
            KeyError: no generation has this id.
        """
        rows = self._query(f"{_SELECT} WHERE id = ?", (id,))
        if not rows:
            raise KeyError(f"no generation with id {id!r} in the history at {self.path}")
        return self._generation(rows[0])

    def __contains__(self, id: object) -> bool:
        if not isinstance(id, str):
            return False
        return bool(self._query("SELECT 1 FROM generations WHERE id = ?", (id,)))

    def search(
        self, text: str = "", *, limit: int | None = None, offset: int = 0
    ) -> list[Generation]:
        """Generations whose prompt matches `text` (every word, as a prefix), newest first.

        Empty text gives all.

        Raises:
            ValidationError: a negative `limit` or `offset`.
        """
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise ValidationError("limit", limit, "an integer >= 0 or None")
        if isinstance(offset, bool) or offset < 0:
            raise ValidationError("offset", offset, "an integer >= 0")
        where, args = _sqlite.prompt_filter(text, fts=self._has_fts)
        rows = self._query(
            f"{_SELECT}{where} ORDER BY seq DESC LIMIT ? OFFSET ?",
            (*args, -1 if limit is None else int(limit), int(offset)),
        )
        return [self._generation(row) for row in rows]

    def count(self, text: str = "") -> int:
        """How many generations `search(text)` would give without a limit."""
        where, args = _sqlite.prompt_filter(text, fts=self._has_fts)
        return int(self._query(f"SELECT COUNT(*) FROM generations{where}", args)[0][0])  # noqa: S608

    @property
    def total_usd(self) -> float:
        """What every stored generation cost when it was made."""
        return float(self._query("SELECT COALESCE(SUM(usd_spent), 0.0) FROM generations")[0][0])

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-safe dict per generation, newest first: `to_dict()` plus the image `file`."""
        return [
            record_of(self._generation(row), str(self._folder.images / row["file"]))
            for row in self._rows()
        ]

    def to_pandas(self) -> Any:
        """The records as a pandas DataFrame (`created` as UTC datetimes).

        Raises:
            ImportError: pandas is not installed (`pip install pandas`).
        """
        try:
            import pandas as pd  # optional: imported only here
        except ImportError as exc:
            raise ImportError("History.to_pandas() needs pandas: pip install pandas") from exc
        records = self.to_records()
        frame = pd.DataFrame.from_records(records, columns=list(RECORD_FIELDS))
        if records:
            frame["created"] = pd.to_datetime(frame["created"], utc=True, format="ISO8601")
        return frame

    def thumbnail(self, id: str, max_px: int = THUMB_MAX_PX) -> bytes:
        """A JPEG at most `max_px` on its long side, made once and kept in `thumbs/`.

        Raises:
            ValidationError: `max_px` is not an integer >= 1.
            KeyError: no generation has this id.
            MaiImageError: its image file is missing or unreadable.
        """
        check_count("max_px", max_px, minimum=1)
        rows = self._query("SELECT file FROM generations WHERE id = ?", (id,))
        if not rows:
            raise KeyError(f"no generation with id {id!r} in the history at {self.path}")
        stem = rows[0]["file"].rsplit(".", 1)[0]
        name = f"{stem}.jpg" if max_px == THUMB_MAX_PX else f"{stem}.{max_px}.jpg"
        path = self._folder.thumbs / name
        with contextlib.suppress(FileNotFoundError):
            return path.read_bytes()
        data = _records.load_image(self._folder.images / rows[0][0], id)
        try:
            with Image.open(io.BytesIO(data)) as image:
                thumb = previews.preview_bytes(image, max_px)
        except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
            raise MaiImageError(f"the image of {id!r} cannot be decoded ({exc})") from exc
        with contextlib.suppress(OSError):  # a cache: failing to keep it is not an error
            _files.write_atomic(path, thumb)
        return thumb

    def export(self, folder: str | os.PathLike[str]) -> Path:
        """Write every image as a PNG with its parameters, plus `index.csv`, `index.json` and
        `index.html` (an offline gallery of the exported images).

        Names come from the id and a slug of the prompt; nothing is written outside `folder`
        and no existing file is overwritten (a second export adds `-2`, ...). Returns `folder`.

        Raises:
            OSError: the folder or a file in it cannot be written.
        """
        return export_generations(self, folder)

    def __repr__(self) -> str:
        if self._closed:
            return f"<History {str(self.path)!r} (closed)>"
        mode = "" if self._read_only_cause is None else " (read-only)"
        return f"<History {str(self.path)!r} {len(self)} generations{mode}>"


def image_files(history: History, ids: Sequence[str]) -> dict[str, str]:
    """id -> image file for each of `ids` in `history`, reading those rows only (a comparison's
    records name their cells' files without reading every record of the history)."""
    wanted = list(dict.fromkeys(ids))
    files: dict[str, str] = {}
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        chunk = wanted[start : start + _IDS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))  # placeholders only: the ids are bound
        sql = f"SELECT id, file FROM generations WHERE id IN ({marks})"  # noqa: S608
        for row in history._query(sql, chunk):
            files[row["id"]] = str(history._folder.images / row["file"])
    return files
