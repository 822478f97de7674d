"""SQLite plumbing for `History`: schema migrations, connections, error translation.

Imports nothing from the package but `errors`. Durability: the writer uses WAL with
`synchronous=FULL`, so a commit is fsynced to the WAL before `COMMIT` returns; a record
therefore survives SIGKILL (which keeps OS buffers anyway) and power loss alike.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import MaiImageError

__all__ = [
    "BUSY_TIMEOUT_S",
    "MIGRATIONS",
    "ReaderPool",
    "connect",
    "has_table",
    "immediate",
    "insert_many",
    "is_damage",
    "is_unwritable",
    "migrate",
    "newer_schema_error",
    "prompt_filter",
    "query",
    "translate",
]

BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another process's transaction

Row = sqlite3.Row


def _create_generations(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE generations (
            id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            cache_key TEXT NOT NULL,
            service TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt TEXT NOT NULL,
            aspect_ratio TEXT NOT NULL,
            temperature REAL NOT NULL,
            max_tokens INTEGER,
            max_completion_tokens INTEGER,
            sample INTEGER NOT NULL,
            created TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            image_format TEXT NOT NULL,
            file TEXT NOT NULL,
            url TEXT,
            credits_used REAL,
            usd_spent REAL,
            elapsed_s REAL NOT NULL
        )"""
    )
    conn.execute("CREATE UNIQUE INDEX generations_seq ON generations (seq)")
    conn.execute("CREATE INDEX generations_cache_key ON generations (cache_key, seq)")
    conn.execute("CREATE INDEX generations_model_service ON generations (model, service, seq)")


def fts5_available(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.mai_fts5_probe USING fts5(x)")
    except sqlite3.OperationalError:
        return False
    conn.execute("DROP TABLE temp.mai_fts5_probe")
    return True


_FTS_INSERT_TRIGGER = (
    "CREATE TRIGGER generations_fts_insert AFTER INSERT ON generations BEGIN "
    "INSERT INTO generations_fts (rowid, prompt) VALUES (new.seq, new.prompt); END"
)
BULK_ROWS = 500  # from this many rows at once, the full-text index is rebuilt once instead


def insert_many(conn: sqlite3.Connection, sql: str, rows: Iterable[Any], count: int) -> None:
    """`executemany` of `count` rows into `generations`; call inside a transaction.

    For a bulk insert (a rebuild) the full-text index is built once afterwards rather than
    row by row through its trigger: about twice as fast. Into an empty table (a lost
    database) the secondary indexes are also dropped first and created again after, from
    their own stored SQL, in one sorted pass each instead of 10,000 scattered insertions.
    """
    if count < BULK_ROWS:
        conn.executemany(sql, rows)
        return
    fts = has_table(conn, "generations_fts_insert")
    indexes: list[Row] = []
    if not query(conn, "SELECT 1 FROM generations LIMIT 1"):
        indexes = query(
            conn,
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'generations' AND sql IS NOT NULL",
        )
    for index in indexes:
        conn.execute(f'DROP INDEX "{index["name"]}"')
    if fts:
        conn.execute("DROP TRIGGER generations_fts_insert")
    conn.executemany(sql, rows)
    for index in indexes:
        conn.execute(index["sql"])
    if fts:
        conn.execute("INSERT INTO generations_fts (generations_fts) VALUES ('rebuild')")
        conn.execute(_FTS_INSERT_TRIGGER)


def _create_prompt_index(conn: sqlite3.Connection) -> None:
    """Full-text index on the prompt (FTS5, rowid = seq), kept in step by triggers."""
    if not fts5_available(conn):
        return  # search falls back to LIKE
    conn.execute(
        "CREATE VIRTUAL TABLE generations_fts USING fts5("
        "prompt, content='generations', content_rowid='seq')"
    )
    conn.execute(_FTS_INSERT_TRIGGER)
    conn.execute(
        "CREATE TRIGGER generations_fts_delete AFTER DELETE ON generations BEGIN "
        "INSERT INTO generations_fts (generations_fts, rowid, prompt) "
        "VALUES ('delete', old.seq, old.prompt); END"
    )
    conn.execute(
        "CREATE TRIGGER generations_fts_update AFTER UPDATE ON generations BEGIN "
        "INSERT INTO generations_fts (generations_fts, rowid, prompt) "
        "VALUES ('delete', old.seq, old.prompt); "
        "INSERT INTO generations_fts (rowid, prompt) VALUES (new.seq, new.prompt); END"
    )
    conn.execute("INSERT INTO generations_fts (generations_fts) VALUES ('rebuild')")


# Step i brings the schema from user_version i to i + 1. Append only; never edit a step.
def _index_files(conn: sqlite3.Connection) -> None:
    """Version 3: each image has a sidecar record in `records/` (History writes the missing
    ones on open); rows are found by image file when the folder is reconciled."""
    conn.execute("CREATE INDEX IF NOT EXISTS generations_file ON generations (file)")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _create_generations,
    _create_prompt_index,
    _index_files,
)


def connect(
    database: str | Path, *, readonly: bool = False, uri: bool = False
) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable across threads.

    Rows come back as `sqlite3.Row`, read by column name. `uri=True` takes an SQLite URI
    (a read-only `mode=ro`/`immutable=1` file, or a shared in-memory database).
    """
    conn = sqlite3.connect(
        database, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, uri=uri
    )
    conn.row_factory = sqlite3.Row
    try:
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        elif not uri:
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            conn.execute("PRAGMA synchronous = FULL")
    except BaseException:
        conn.close()
        raise
    return conn


def is_unwritable(exc: sqlite3.Error) -> bool:
    """True when `exc` says the database cannot be written: full disk, read-only, no access."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(
        cause in text
        for cause in ("readonly", "read-only", "disk is full", "unable to open", "disk i/o")
    )


def is_damage(exc: sqlite3.Error) -> bool:
    """True when `exc` says the file is not a usable SQLite database (not locked, not I/O)."""
    text = str(exc)
    return isinstance(exc, sqlite3.DatabaseError) and (
        type(exc) is sqlite3.DatabaseError or "malformed" in text or "not a database" in text
    )


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: BEGIN IMMEDIATE (takes the write lock now), COMMIT or ROLLBACK."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # also when COMMIT itself failed
            conn.execute("ROLLBACK")
        raise


def query(conn: sqlite3.Connection, sql: str, args: Sequence[Any] = ()) -> list[Row]:
    """All rows at once, so no statement (and no read snapshot) is left open."""
    cursor = conn.execute(sql, args)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    return bool(query(conn, "SELECT 1 FROM sqlite_master WHERE name = ?", (name,)))


def newer_schema_error(db_path: Path, version: int) -> MaiImageError:
    return MaiImageError(
        f"the history database {db_path} has schema version {version}, newer than this "
        f"mai_image_nb understands ({len(MIGRATIONS)}); upgrade mai_image_nb to open it"
    )


def migrate(conn: sqlite3.Connection, db_path: Path) -> None:
    """Run the steps this database has not had, each committed with its version bump."""
    (version,) = query(conn, "PRAGMA user_version")[0]
    if version > len(MIGRATIONS):
        raise newer_schema_error(db_path, version)
    for target in range(version + 1, len(MIGRATIONS) + 1):
        with immediate(conn):
            (current,) = query(conn, "PRAGMA user_version")[0]
            if current >= target:  # another process got there first
                continue
            MIGRATIONS[target - 1](conn)
            conn.execute(f"PRAGMA user_version = {int(target)}")


def prompt_filter(text: str, *, fts: bool) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause matching every word of `text` in the prompt, and its arguments.

    With FTS5 each word is a quoted prefix (user text is never FTS syntax); without it,
    or for text with no word characters, each word is a LIKE substring with wildcards
    escaped. Empty text gives no clause.
    """
    tokens = re.findall(r"\w+", text)
    if fts and tokens:
        match = " ".join('"' + token.replace('"', '""') + '"*' for token in tokens)
        return (
            " WHERE seq IN (SELECT rowid FROM generations_fts WHERE generations_fts MATCH ?)",
            (match,),
        )
    words = text.split()
    if not words:
        return "", ()
    escaped = [w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for w in words]
    clause = " AND ".join(["prompt LIKE ? ESCAPE '\\'"] * len(words))
    return f" WHERE {clause}", tuple(f"%{w}%" for w in escaped)


def history_error(db_path: Path, exc: sqlite3.Error) -> MaiImageError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return MaiImageError(
            f"the history database {db_path} stayed locked by another process for more "
            f"than {BUSY_TIMEOUT_S:g} s ({text})"
        )
    if is_damage(exc):
        return MaiImageError(
            f"the history database {db_path} is damaged or not a SQLite file ({text}); "
            "the images and their records are safe: History.rebuild(), or opening the folder "
            "again, rebuilds the database from them (the damaged file is kept aside)"
        )
    return MaiImageError(f"history database {db_path}: {text}")


@contextmanager
def translate(db_path: Path) -> Iterator[None]:
    """sqlite3 errors leave as `MaiImageError` naming the database file."""
    try:
        yield
    except sqlite3.Error as exc:
        raise history_error(db_path, exc) from exc


class ReaderPool:
    """Read-only connections handed out one per concurrent reader; all closed by `close()`.

    WAL lets these read while the writer writes, so a cache look-up never waits for an
    image being fsynced.
    """

    def __init__(self, db_path: Path, connector: Callable[[], sqlite3.Connection]) -> None:
        self._db_path = db_path
        self._connector = connector
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise MaiImageError(f"the history at {self._db_path.parent} is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            with translate(self._db_path):
                conn = self._connector()
        try:
            yield conn
        finally:
            with self._lock:
                keep = not self._closed
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
