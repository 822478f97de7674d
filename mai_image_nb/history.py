"""`History`: every generation kept on disk (SQLite records, image files as received).

Layout of the folder: `history.sqlite3`, `images/<id>.<ext>`, `thumbs/<id>.jpg`. An image
file is complete before its row exists (temporary file, fsync, rename, then the row in the
same write transaction), so a killed writer leaves at worst an orphan file, removed on the
next open. No widgets and no network here.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from . import _sqlite, display, pngmeta
from .errors import MaiImageError, ValidationError
from .export import RECORD_FIELDS, export_generations, record_of
from .generation import Generation, Usage
from .params import Params, check_count

__all__ = ["DB_NAME", "HOME_ENV", "History"]

HOME_ENV = "MAI_IMAGE_HOME"
DEFAULT_FOLDER = ".mai_image"
DB_NAME = "history.sqlite3"
THUMB_MAX_PX = 256
PAGE_ROWS = 256  # rows fetched at a time while iterating

_EXTENSIONS = {"png": "png", "jpeg": "jpg", "jpg": "jpg", "webp": "webp"}
_PLAIN_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
_COLUMN_NAMES = (
    "id", "seq", "cache_key", "service", "model", "prompt", "aspect_ratio", "temperature",
    "max_tokens", "max_completion_tokens", "sample", "created", "width", "height",
    "image_format", "file", "url", "credits_used", "usd_spent", "elapsed_s",
)  # fmt: skip
_SEQ = _COLUMN_NAMES.index("seq")
_FILE = _COLUMN_NAMES.index("file")
_COLUMNS = ", ".join(_COLUMN_NAMES)
_SELECT = f"SELECT {_COLUMNS} FROM generations"  # noqa: S608 - constant column list
_INSERT = (
    f"INSERT INTO generations ({_COLUMNS}) "  # noqa: S608 - constant column list
    f"VALUES ({', '.join('?' * len(_COLUMN_NAMES))})"
)


def _file_stem(generation_id: str) -> str:
    """The id itself when it is a plain file name, else a slug plus a digest (always unique)."""
    if _PLAIN_ID.fullmatch(generation_id) and not pngmeta.is_reserved_name(generation_id):
        return generation_id
    digest = hashlib.sha256(generation_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    slug = pngmeta.slugify(generation_id, 40).encode("ascii", "ignore").decode()
    return f"{slug}~{digest}" if slug else digest


def _file_name(generation_id: str, image_format: str) -> str:
    ext = _EXTENSIONS.get(image_format.lower())
    if ext is None:
        raise ValidationError("image_format", image_format, "png, jpeg or webp")
    return f"{_file_stem(generation_id)}.{ext}"


def _replacement_name(name: str) -> str:
    """Another name for a record's new image while its old one stays until the commit.

    "~v" never occurs in the other names (plain ids, or a slug then "~" and hex digits).
    """
    stem, _, ext = name.rpartition(".")
    return f"{stem}~v{secrets.token_hex(6)}.{ext}"


def _load_image(path: Path, generation_id: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MaiImageError(
            f"the image of generation {generation_id!r} is missing: {path} was deleted or moved"
        ) from None
    except OSError as exc:
        raise MaiImageError(f"cannot read the image of {generation_id!r} ({exc})") from exc


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def _remove(paths: Sequence[Path]) -> None:
    """Best effort: a file that cannot be removed now is tried again on the next open."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


class History:
    """Persistent store of every generation, safe from several threads and processes.

    `History(path=None)` uses env `MAI_IMAGE_HOME`, else `./.mai_image`; the folder is
    created when missing. Iteration is newest first.

    Raises (on opening):
        MaiImageError: the folder cannot be created, or the database is locked, damaged or
            from a newer version of this package.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            path = os.environ.get(HOME_ENV) or DEFAULT_FOLDER
        self.path = Path(path).expanduser().absolute()
        self._images = self.path / "images"
        self._thumbs = self.path / "thumbs"
        self._db_path = self.path / DB_NAME
        try:
            self._images.mkdir(parents=True, exist_ok=True)
            self._thumbs.mkdir(exist_ok=True)
        except OSError as exc:
            raise MaiImageError(f"cannot use {self.path} as the history folder ({exc})") from exc
        self._write_lock = threading.Lock()
        self._closed = False
        with _sqlite.translate(self._db_path):
            self._writer = _sqlite.connect(self._db_path)
            try:
                _sqlite.migrate(self._writer, self._db_path)
                self._has_fts = _sqlite.has_table(self._writer, "generations_fts")
                self._remove_leftovers()
            except BaseException:
                self._writer.close()
                raise
        self._readers = _sqlite.ReaderPool(self._db_path)

    # -- plumbing --------------------------------------------------------------------------

    def _remove_leftovers(self) -> None:
        """Delete temporary files of a killed writer and files that have no row.

        Runs inside a write transaction: no writer (here or in another process) is between
        its image file and its row meanwhile, so a file without a row is truly an orphan.
        """
        with _sqlite.immediate(self._writer) as conn:
            files = {name for (name,) in _sqlite.query(conn, "SELECT file FROM generations")}
            stems = {name.rsplit(".", 1)[0] for name in files}
            _remove(
                [entry for entry in self._images.iterdir() if entry.name not in files]
                + [e for e in self._thumbs.iterdir() if e.name.split(".", 1)[0] not in stems]
            )

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[_sqlite.Row]:
        with self._readers.connection() as conn, _sqlite.translate(self._db_path):
            return _sqlite.query(conn, sql, args)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock, _sqlite.translate(self._db_path):
            if self._closed:
                raise MaiImageError(f"the history at {self.path} is closed")
            with _sqlite.immediate(self._writer) as conn:
                yield conn

    def _generation(self, row: _sqlite.Row) -> Generation:
        (gid, _seq, _key, service, model, prompt, ratio, temperature, max_tokens,
         max_completion, sample, created, width, height, image_format, file, url, credits,
         usd, elapsed) = row  # fmt: skip
        image_path = self._images / file
        return Generation(
            id=gid,
            params=Params(
                prompt=prompt,
                aspect_ratio=ratio,
                temperature=temperature,
                max_tokens=max_tokens,
                max_completion_tokens=max_completion,
                sample=sample,
                model=model,
            ),
            service=service,
            created=datetime.fromisoformat(created),
            width=width,
            height=height,
            image_format=image_format,
            url=url,
            usage=None if usd is None else Usage(credits_used=credits or 0.0, usd_spent=usd),
            elapsed_s=elapsed,
            cached=False,
            load_data=lambda: _load_image(image_path, gid),
        )

    @staticmethod
    def _files_of(conn: sqlite3.Connection, generation_id: str) -> list[str]:
        rows = _sqlite.query(conn, "SELECT file FROM generations WHERE id = ?", (generation_id,))
        return [name for (name,) in rows]

    def _thumb_paths(self, files: Sequence[str]) -> list[Path]:
        found: list[Path] = []
        for name in files:
            found.extend(self._thumbs.glob(f"{name.rsplit('.', 1)[0]}.*"))
        return found

    # -- writing ---------------------------------------------------------------------------

    def add(self, gen: Generation, *, cache_key: str) -> None:
        """Store `gen` (its bytes exactly as received); durable once this returns.

        The image file is written atomically first, then the row, in one transaction.
        Adding an id again replaces that record.

        Raises:
            ValidationError: the image format is not PNG, JPEG or WebP.
            MaiImageError: the folder or the database cannot be written.
        """
        name = _file_name(gen.id, gen.image_format)
        data = gen.data
        old: list[str] = []
        written = False
        try:
            with self._writing() as conn:
                old = self._files_of(conn, gen.id)
                if name in old:  # never overwrite the image the committed row still shows
                    name = _replacement_name(name)
                self._write_image(name, data)
                written = True
                self._insert_row(conn, gen, cache_key, name)
        except BaseException:
            if written:  # rolled back: its new image (never an old one) must not linger
                _remove([self._images / name])
            raise
        if old:  # a replaced record: its thumbnails are stale, its file may have another name
            _remove(self._thumb_paths(old) + [self._images / f for f in old if f != name])

    def _write_image(self, name: str, data: bytes) -> None:
        try:
            pngmeta.write_atomic(self._images / name, data)
        except OSError as exc:
            raise MaiImageError(f"cannot write the image to {self._images} ({exc})") from exc

    @staticmethod
    def _insert_row(conn: sqlite3.Connection, gen: Generation, key: str, name: str) -> None:
        (seq,) = _sqlite.query(conn, "SELECT COALESCE(MAX(seq), 0) + 1 FROM generations")[0]
        conn.execute("DELETE FROM generations WHERE id = ?", (gen.id,))
        usage = gen.usage
        conn.execute(
            _INSERT,
            (gen.id, seq, key, gen.service, gen.model, gen.prompt, gen.aspect_ratio,
             gen.temperature, gen.max_tokens, gen.max_completion_tokens, gen.sample,
             _utc_iso(gen.created), gen.width, gen.height, gen.image_format, name, gen.url,
             usage.credits_used if usage else None, usage.usd_spent if usage else None,
             gen.elapsed_s),
        )  # fmt: skip

    def delete(self, id: str) -> None:
        """Remove one generation: its row, image and thumbnails.

        Raises:
            KeyError: no generation has this id.
        """
        with self._writing() as conn:
            files = self._files_of(conn, id)
            if not files:
                raise KeyError(f"no generation with id {id!r} in the history at {self.path}")
            conn.execute("DELETE FROM generations WHERE id = ?", (id,))
        _remove(self._thumb_paths(files) + [self._images / f for f in files])

    def clear(self) -> None:
        """Remove every generation, image and thumbnail."""
        with self._writing() as conn:
            files = [f for (f,) in _sqlite.query(conn, "SELECT file FROM generations")]
            conn.execute("DELETE FROM generations")
        _remove(self._thumb_paths(files) + [self._images / f for f in files])

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
            before = rows[-1][_SEQ]

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
            record_of(self._generation(row), str(self._images / row[_FILE])) for row in self._rows()
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
        stem = rows[0][0].rsplit(".", 1)[0]
        path = self._thumbs / (f"{stem}.jpg" if max_px == THUMB_MAX_PX else f"{stem}.{max_px}.jpg")
        with contextlib.suppress(FileNotFoundError):
            return path.read_bytes()
        data = _load_image(self._images / rows[0][0], id)
        try:
            with Image.open(io.BytesIO(data)) as image:
                thumb = display.preview_bytes(image, max_px)
        except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
            raise MaiImageError(f"the image of {id!r} cannot be decoded ({exc})") from exc
        with contextlib.suppress(OSError):  # a cache: failing to keep it is not an error
            pngmeta.write_atomic(path, thumb)
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
        return f"<History {str(self.path)!r} {len(self)} generations>"
