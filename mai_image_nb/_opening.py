"""Opening a history's database: migrated and reconciled, rebuilt when damaged, or read-only.

A damaged database is moved aside (never deleted) and rebuilt from the records beside the
images. A folder that cannot be written is served read-only: from its database file when it
opens and lists every image, else from an index in memory (the file's rows copied, and the
images it lacks adopted from their records; or, without a file, all rebuilt). Imports
nothing from the package but `_reconcile`, `_sqlite` and `errors`.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from . import _sqlite
from ._reconcile import Folder, has_orphans, reconcile

__all__ = ["Opened", "move_aside", "open_database"]

_memory_ids = itertools.count()
RECONCILE_WAIT_S = 0.25  # how long an open waits for another process's write to reconcile


@dataclass(frozen=True)
class Opened:
    writer: sqlite3.Connection
    connect_reader: Callable[[], sqlite3.Connection]
    read_only_cause: str | None  # why the folder is served read-only, None when writable


def move_aside(db_path: Path) -> Path:
    """Keep a damaged database (and its WAL files) as `<name>.damaged-<UTC timestamp>`."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = db_path.with_name(f"{db_path.name}.damaged-{stamp}")
    for n in itertools.count(2):
        if not target.exists():
            break
        target = db_path.with_name(f"{db_path.name}.damaged-{stamp}-{n}")
    db_path.replace(target)
    for suffix in ("-wal", "-shm"):
        extra = db_path.with_name(db_path.name + suffix)
        if extra.exists():
            extra.replace(target.with_name(target.name + suffix))
    return target


def open_database(folder: Folder, db_path: Path, read_only_cause: str | None) -> Opened:
    """The writer and a reader factory for the history in `folder`.

    Raises:
        MaiImageError: the database is locked, or from a newer version of the package.
    """
    if read_only_cause is None:
        opened = _open_writable(folder, db_path)
        if isinstance(opened, Opened):
            return opened
        read_only_cause = opened
    return _open_read_only(folder, db_path, read_only_cause)


def _open_writable(folder: Folder, db_path: Path) -> Opened | str:
    """The writer on the database file, or why it cannot be written (full disk, read-only)."""
    for attempt in range(2):
        conn: sqlite3.Connection | None = None
        try:
            conn = _sqlite.connect(db_path)
            _sqlite.migrate(conn, db_path)
            _reconcile_on_open(conn, folder)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            if _sqlite.is_damage(exc) and attempt == 0:
                move_aside(db_path)
                continue
            if _sqlite.is_unwritable(exc):
                return str(exc)  # full disk, read-only file, I/O: served read-only
            raise _sqlite.history_error(db_path, exc) from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return Opened(conn, lambda: _sqlite.connect(db_path, readonly=True), None)
    raise AssertionError("unreachable: the second attempt returns or raises")


def _reconcile_on_open(conn: sqlite3.Connection, folder: Folder) -> None:
    """Reconcile the folder; when the database has rows, only if the write lock is free soon.

    An empty database (new, or lost) must be rebuilt before anything is served, so that
    waits as long as any write. Otherwise adopting a killed writer's orphan can wait for
    the next open: a reader opening while another process writes continuously is not kept
    waiting for the lock, and the orphan's files stay where they are meanwhile.
    """
    must = conn.execute("SELECT 1 FROM generations LIMIT 1").fetchone() is None
    if not must:
        conn.execute(f"PRAGMA busy_timeout = {int(RECONCILE_WAIT_S * 1000)}")
    try:
        with _sqlite.immediate(conn):
            reconcile(conn, folder, writable=True)
    except sqlite3.OperationalError as exc:
        if must or "locked" not in str(exc):
            raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(_sqlite.BUSY_TIMEOUT_S * 1000)}")


def _open_read_only(folder: Folder, db_path: Path, cause: str) -> Opened:
    """The database file opened read-only, or an index in memory (the file lacks images that
    have records; or it is missing or damaged), so a folder that cannot be written still
    serves every image it holds."""
    if db_path.exists():
        # immutable=1 (no -shm needed, the WAL ignored) only where nothing can write anyway
        frozen = not os.access(db_path.parent, os.W_OK)
        for options in ("mode=ro", "mode=ro&immutable=1") if frozen else ("mode=ro",):
            uri = f"file:{quote(str(db_path))}?{options}"
            opened = _try_read_only(uri, db_path, cause)
            if opened is None:
                continue
            try:
                orphaned = has_orphans(opened.writer, folder)
            except BaseException:
                opened.writer.close()
                raise
            if not orphaned:
                return opened
            # A writer killed between an image and its row left an orphan that no open
            # could adopt since: list it too, from a copy in memory.
            with closing(opened.writer):
                return _in_memory(folder, db_path, cause, copy_of=opened.writer)
    return _in_memory(folder, db_path, cause, copy_of=None)


def _in_memory(
    folder: Folder, db_path: Path, cause: str, *, copy_of: sqlite3.Connection | None
) -> Opened:
    """An index in memory: `copy_of`'s rows (else none), with the folder's orphans adopted."""
    name = f"file:mai-history-{os.getpid()}-{next(_memory_ids)}?mode=memory&cache=shared"
    conn = _sqlite.connect(name, uri=True)
    try:
        if copy_of is not None:
            copy_of.backup(conn)
        _sqlite.migrate(conn, db_path)
        with _sqlite.immediate(conn):
            reconcile(conn, folder, writable=False)
    except BaseException:
        conn.close()
        raise
    return Opened(conn, lambda: _sqlite.connect(name, readonly=True, uri=True), cause)


def _try_read_only(uri: str, db_path: Path, cause: str) -> Opened | None:
    try:
        conn = _sqlite.connect(uri, readonly=True, uri=True)
    except sqlite3.Error:
        return None
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        conn.execute("SELECT COUNT(*) FROM generations").fetchone()
    except sqlite3.Error:
        conn.close()
        return None
    if version > len(_sqlite.MIGRATIONS):
        conn.close()
        raise _sqlite.newer_schema_error(db_path, version)
    return Opened(conn, lambda: _sqlite.connect(uri, readonly=True, uri=True), cause)
